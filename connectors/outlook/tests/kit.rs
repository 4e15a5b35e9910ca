//! The SDK's conformance kit against the lab's real Dovecot, signed in with XOAUTH2 and
//! tokens from the lab's OAuth2 stand-in playing Microsoft.

use concierge_connector_sdk::kit;

// The IMAP/SMTP connector's lab client and the OAuth2 kit harness of the Gmail crate,
// shared rather than copied.
#[allow(dead_code)]
#[path = "../../imap-smtp/tests/connector/lab.rs"]
mod lab;
#[path = "../../gmail/tests/support/oauth_kit.rs"]
mod oauth_kit;

use lab::Lab;
use oauth_kit::OAuthHarness;

#[tokio::test]
async fn outlook_passes_the_conformance_kit_with_xoauth2() {
    let report = kit::run(&OAuthHarness::new(Lab::start(), concierge_connector_outlook::connector)).await;
    assert_eq!(report.skipped, [], "every check applies");
}
