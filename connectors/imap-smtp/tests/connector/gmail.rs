//! The Gmail-by-app-password preset: pure, no network.

use concierge_connector_imap_smtp::{Endpoint, ImapSmtpConnector, Options, Security};
use concierge_connector_sdk::{MailConnector, Settings};
use serde_json::json;

fn settings(v: serde_json::Value) -> Settings {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn gmail_password_validates_and_resolves_to_gmails_servers() {
    let gmail = ImapSmtpConnector::gmail_app_password(Options::default());
    let d = gmail.descriptor();
    assert_eq!((d.kind, d.display_name.as_str()), ("gmail-password", "Gmail (app password)"));
    assert!(d.capabilities.send && d.capabilities.provider_saves_sent);

    let starttls = gmail.validate(&settings(json!({"smtpSecurity": "STARTTLS"}))).expect("valid");
    let resolved = gmail.server_settings(&starttls).expect("resolves");
    assert_eq!(resolved.imap, Endpoint { host: "imap.gmail.com".into(), port: 993, security: Security::SslTls });
    assert_eq!(resolved.smtp, Endpoint { host: "smtp.gmail.com".into(), port: 587, security: Security::StartTls });

    let default = gmail.validate(&Settings::new()).expect("valid");
    assert_eq!(
        gmail.server_settings(&default).expect("resolves").smtp,
        Endpoint { host: "smtp.gmail.com".into(), port: 465, security: Security::SslTls }
    );

    assert_eq!(gmail.validate(&settings(json!({"smtpSecurity": "NONE"}))).unwrap_err().field, "smtpSecurity");
    assert_eq!(gmail.validate(&settings(json!({"imapHost": "evil.example"}))).unwrap_err().field, "imapHost");
}

#[test]
fn the_generic_descriptor_keeps_its_keys() {
    let generic = ImapSmtpConnector::generic(Options::default());
    let d = generic.descriptor();
    assert_eq!((d.kind, d.display_name.as_str()), ("imap", "IMAP / SMTP"));
    assert!(d.capabilities.send && !d.capabilities.provider_saves_sent);
    let keys: Vec<&str> = d.fields.iter().map(|f| f.key).collect();
    assert_eq!(
        keys,
        [
            "imapHost",
            "imapSecurity",
            "imapPort",
            "smtpHost",
            "smtpSecurity",
            "smtpPort",
            "username",
            "folder",
            "sentFolder",
            "tlsCertificateSha256"
        ]
    );
}
