//! Each security type against the port that speaks it, and the typed errors for the rest.

use std::time::Duration;

use chrono::Utc;
use concierge_connector_imap_smtp::{ImapSmtpConnector, Options};
use concierge_connector_sdk::{ConnectorError, MailConnector};
use serde_json::json;

use crate::lab::Lab;

#[tokio::test]
async fn each_security_type_connects_to_its_port() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("tls").await;
    for security in ["SSL_TLS", "STARTTLS", "NONE"] {
        let account = lab.account(&connector, &name, &password, security);
        let mut session = connector.open(&account).await.unwrap_or_else(|e| panic!("{security}: {e}"));
        let refs = session.list(Utc::now() - chrono::Duration::days(1), None).await.unwrap_or_else(|e| panic!("{security}: {e}"));
        assert!(refs.is_empty(), "{security}: a new user has no mail");
        session.close().await;
    }
}

#[tokio::test]
async fn ssl_tls_against_the_plain_port_is_a_tls_error() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("tls").await;
    let mut account = lab.account(&connector, &name, &password, "SSL_TLS");
    account.settings.insert("imapPort".into(), json!(lab.imap));
    match connector.open(&account).await {
        Err(ConnectorError::Tls { message }) => {
            assert!(message.contains("127.0.0.1"), "names the server: {message}")
        }
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("TLS to a plaintext port must fail"),
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let lab = Lab::start();
    let strict = ImapSmtpConnector::generic(Options {
        connect_timeout: Duration::from_secs(5),
        outbound: lab.options().outbound,
        ..Options::default()
    });
    let (name, password) = lab.add_user("tls").await;
    let mut account = lab.account(&strict, &name, &password, "SSL_TLS");
    let certificate = match strict.open(&account).await {
        Err(ConnectorError::UntrustedCertificate { certificate, .. }) => certificate,
        Err(other) => panic!("expected an untrusted certificate, got {other:?}"),
        Ok(_) => {
            panic!("the lab's self-signed certificate must not be trusted without the extra root")
        }
    };
    // What it presented, for the user to check and pin.
    let der = rustls_pki_der(&lab.cert_pem);
    assert_eq!(certificate.sha256, concierge_connector_sdk::trust::Fingerprint::of(&der));
    assert_eq!(certificate.subject, "CN=localhost");

    // Pinned for this account: it opens, whoever issued the certificate.
    account.settings.insert("tlsCertificateSha256".into(), json!(certificate.sha256.to_string()));
    let session = strict.open(&account).await.expect("a pinned certificate is accepted");
    session.close().await;
}

/// The DER of the first certificate of a PEM file.
fn rustls_pki_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM is text");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).expect("base64")
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    // A port that was just free: bind, learn it, release it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
    let mut account = lab.account(&connector, "nobody", "x", "NONE");
    account.settings.insert("imapPort".into(), json!(closed));
    match connector.open(&account).await {
        Err(ConnectorError::Unreachable { .. }) => {}
        Err(other) => panic!("expected Unreachable, got {other:?}"),
        Ok(_) => panic!("nothing listens there"),
    }
}

#[test]
fn plaintext_to_a_remote_host_is_refused_unless_the_operator_allows_it() {
    let remote =
        json!({"imapHost": "mail.example.com", "imapSecurity": "NONE", "smtpHost": "mail.example.com", "smtpSecurity": "STARTTLS"});
    let remote = remote.as_object().cloned().unwrap_or_default();
    let strict = ImapSmtpConnector::generic(Options::default());
    let error = strict.validate(&remote).expect_err("refused");
    assert_eq!(error.field, "imapSecurity");
    let lenient = ImapSmtpConnector::generic(Options { allow_plaintext_remote: true, ..Options::default() });
    assert_eq!(lenient.validate(&remote).expect("allowed")["imapPort"], 143);
}
