//! The SDK's conformance kit, run against the lab: every check, none skipped.

use concierge_connector_sdk::kit;

use crate::lab::LabHarness;

#[tokio::test]
async fn the_generic_connector_passes_the_conformance_kit_over_ssl_tls() {
    let report = kit::run(&LabHarness::start("SSL_TLS")).await;
    assert_eq!(report.skipped, [("refreshes_an_expired_access_token", "OAuth2 sign-in")], "only OAuth2 does not apply: {report:?}");
}

#[tokio::test]
async fn a_password_preset_passes_the_conformance_kit() {
    let report = kit::run(&LabHarness::start_preset()).await;
    assert_eq!(report.skipped, [("refreshes_an_expired_access_token", "OAuth2 sign-in")], "only OAuth2 does not apply: {report:?}");
}

#[tokio::test]
async fn a_wrong_password_over_starttls_is_an_authentication_error() {
    kit::reports_a_bad_password_as_an_authentication_error(&LabHarness::start("STARTTLS")).await;
}
