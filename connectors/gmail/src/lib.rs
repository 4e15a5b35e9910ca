//! Gmail for Concierge: Gmail's own IMAP and SMTP servers, signed in with Google OAuth2
//! (XOAUTH2). Everything but the description is the IMAP/SMTP connector's: this crate is
//! its [`Preset`] for Google.
//!
//! ```ignore
//! // Google's servers:
//! registry.register(Arc::new(concierge_connector_gmail::connector(options, None, None)));
//! ```
//!
//! Gmail keeps sent mail in its Sent folder itself (also over SMTP), so nothing is
//! appended after a send. Message ids are Gmail's own (`gm/<X-GM-MSGID>`), so a message
//! in INBOX and in Sent (two labels) is one message.

use concierge_connector_imap_smtp::{Endpoint, ImapSmtpConnector, Options, Preset, Security};
use concierge_connector_sdk::{AuthMethod, Capabilities, Descriptor, OAuthProvider};

/// The connector's kind, stored with every mailbox.
pub const KIND: &str = "gmail";

/// Gmail as Google runs it: the OAuth2 endpoints and scopes, and the servers.
pub fn preset() -> Preset {
    Preset {
        descriptor: Descriptor {
            kind: KIND,
            display_name: "Gmail".into(),
            auth: AuthMethod::OAuth2,
            capabilities: Capabilities { send: true, provider_saves_sent: true, calendars: true },
            fields: Vec::new(),
            help: None,
        },
        oauth: Some(OAuthProvider {
            name: "Google".into(),
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            // Full mail access is the only scope Gmail's IMAP and SMTP accept.
            scopes: vec![
                "https://mail.google.com/".into(),
                // The calendars of the same account, over Google's CalDAV API.
                "https://www.googleapis.com/auth/calendar".into(),
                "openid".into(),
                "email".into(),
            ],
            // Without these Google issues a refresh token only on the first consent.
            extra_authorize_params: vec![("access_type".into(), "offline".into()), ("prompt".into(), "consent".into())],
        }),
        imap: Endpoint { host: "imap.gmail.com".into(), port: 993, security: Security::SslTls },
        smtp: Endpoint { host: "smtp.gmail.com".into(), port: 465, security: Security::SslTls },
        gmail_extensions: true,
    }
}

/// The Gmail connector. `imap` and `smtp` replace Google's servers when given: how the
/// gateway's configuration (and the tests) point it at another server.
pub fn connector(options: Options, imap: Option<Endpoint>, smtp: Option<Endpoint>) -> ImapSmtpConnector {
    ImapSmtpConnector::preset(preset().with_servers(imap, smtp), options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_connector_sdk::{MailConnector, Settings};

    #[test]
    fn gmail_signs_in_with_google_and_asks_for_nothing() {
        let gmail = connector(Options::default(), None, None);
        let d = gmail.descriptor();
        assert_eq!((d.kind, d.display_name.as_str(), d.auth), ("gmail", "Gmail", AuthMethod::OAuth2));
        assert!(d.fields.is_empty());
        assert!(d.capabilities.send && d.capabilities.provider_saves_sent);
        assert_eq!(gmail.validate(&Settings::new()), Ok(Settings::new()));
        let mut unknown = Settings::new();
        unknown.insert("imapHost".into(), "evil.example".into());
        assert_eq!(gmail.validate(&unknown).unwrap_err().field, "imapHost");
    }

    #[test]
    fn the_oauth_provider_is_googles_with_offline_access() {
        let gmail = connector(Options::default(), None, None);
        let google = gmail.oauth().expect("an OAuth2 provider");
        assert_eq!(Some(google), preset().oauth.as_ref());
        assert_eq!(google.authorize_url, "https://accounts.google.com/o/oauth2/v2/auth");
        assert_eq!(google.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(google.userinfo_url, "https://openidconnect.googleapis.com/v1/userinfo");
        assert_eq!(google.scopes, ["https://mail.google.com/", "https://www.googleapis.com/auth/calendar", "openid", "email"]);
        let params: Vec<(&str, &str)> = google.extra_authorize_params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(params, [("access_type", "offline"), ("prompt", "consent")]);
    }

    #[test]
    fn it_talks_to_googles_servers_unless_told_otherwise() {
        let google = connector(Options::default(), None, None).server_settings(&Settings::new()).expect("resolves");
        assert_eq!((google.imap.host.as_str(), google.imap.port, google.imap.security), ("imap.gmail.com", 993, Security::SslTls));
        assert_eq!((google.smtp.host.as_str(), google.smtp.port, google.smtp.security), ("smtp.gmail.com", 465, Security::SslTls));
        assert_eq!(google.folder, "INBOX");

        let local = Endpoint { host: "127.0.0.1".into(), port: 10993, security: Security::SslTls };
        let elsewhere = connector(Options::default(), Some(local.clone()), None).server_settings(&Settings::new()).expect("resolves");
        assert_eq!((elsewhere.imap, elsewhere.smtp.host.as_str()), (local, "smtp.gmail.com"));
    }
}
