//! The SDK's conformance kit, run against the lab.

use concierge_connector_sdk::kit;

use crate::lab::LabHarness;

#[tokio::test]
async fn the_generic_connector_passes_the_conformance_kit_over_ssl_tls() {
    kit::run(&LabHarness::start("SSL_TLS")).await;
}

#[tokio::test]
async fn a_wrong_password_over_starttls_is_an_authentication_error() {
    kit::reports_a_bad_password_as_an_authentication_error(&LabHarness::start("STARTTLS")).await;
}
