//! Sending through the lab's submission port (STARTTLS, the user's own password).

use std::time::Duration;

use chrono::Utc;
use concierge_connector_imap_smtp::ImapSmtpConnector;
use concierge_connector_sdk::{ConnectorError, Credentials, MailConnector, Outgoing, Secret, kit};

use crate::lab::Lab;

#[tokio::test]
async fn send_through_submission_delivers_to_another_users_inbox() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, alice_pw) = lab.add_user("alice").await;
    let (bob, bob_pw) = lab.add_user("bob").await;
    let account = lab.account(&connector, &alice, &alice_pw, "SSL_TLS");

    let raw = kit::message("hello bob", Utc::now());
    let recipients = vec![format!("{bob}@maillab.test")];
    let from = format!("{alice}@maillab.test");
    let receipt =
        connector.send(&account, Outgoing { from: &from, recipients: &recipients, raw: &raw, sent_copy: None }).await.expect("send");
    assert!(receipt.response.starts_with("250"), "{}", receipt.response);
    // A generic server does not save to Sent by itself: the connector appended a copy
    // (see sent.rs).
    assert!(receipt.saved_to_sent, "{receipt:?}");

    let inbox = lab.await_messages(&bob, &bob_pw, 1, Duration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Subject: hello bob"));
}

#[tokio::test]
async fn sending_with_a_wrong_password_is_an_authentication_error() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, _) = lab.add_user("alice").await;
    let mut account = lab.account(&connector, &alice, "x", "SSL_TLS");
    account.credentials = Credentials::Password { username: alice.clone(), password: Secret::new("Zq7-not-the-password") };
    let raw = kit::message("never", Utc::now());
    let recipients = vec!["someone@maillab.test".to_owned()];
    match connector.send(&account, Outgoing { from: "a@maillab.test", recipients: &recipients, raw: &raw, sent_copy: None }).await {
        Err(ConnectorError::Authentication { message }) => {
            assert!(!message.contains("Zq7"), "no password in: {message}")
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
}
