//! The SDK's conformance kit against the lab's real Dovecot, signed in with XOAUTH2 and
//! tokens from the lab's OAuth2 stand-in playing Google. (The lab has no X-GM-EXT-1, so
//! ids are the folder form here; Gmail's own are unit-tested in the IMAP/SMTP crate.)

use std::sync::Arc;

use concierge_connector_sdk::kit;

// The IMAP/SMTP connector's lab client, shared rather than copied.
#[allow(dead_code)]
#[path = "../../imap-smtp/tests/connector/lab.rs"]
mod lab;
#[path = "support/oauth_kit.rs"]
mod oauth_kit;

use lab::Lab;
use oauth_kit::{OAuthHarness, lab_endpoints};

#[tokio::test]
async fn gmail_passes_the_conformance_kit_with_xoauth2() {
    let lab = Lab::start();
    let (imap, smtp) = lab_endpoints(&lab);
    let connector = concierge_connector_gmail::connector(lab.options(), Some(imap), Some(smtp));
    kit::run(&OAuthHarness::new(lab, Arc::new(connector))).await;
}
