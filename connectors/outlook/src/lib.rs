//! Outlook for Concierge: Microsoft 365 and Outlook.com mailboxes over Microsoft's IMAP and
//! SMTP servers, and their calendars over Microsoft Graph, all signed in with one grant of
//! the Microsoft identity platform (OAuth2; XOAUTH2 for mail, bearer tokens for Graph).
//! The mail half is the IMAP/SMTP connector's [`Preset`] for Microsoft; the calendar half
//! is [`GraphCalendarConnector`], of the same kind.
//!
//! ```ignore
//! registry.register(Arc::new(concierge_connector_outlook::connector(options, None, None)));
//! calendars.register(Arc::new(concierge_connector_outlook::calendar_connector(None)));
//! ```
//!
//! Exchange Online keeps mail sent over SMTP in Sent Items itself, so nothing is appended
//! after a send.

use concierge_connector_imap_smtp::{Endpoint, ImapSmtpConnector, Options, Preset, Security};
use concierge_connector_sdk::{AuthMethod, Capabilities, Descriptor, OAuthProvider};

mod calendar;

pub use calendar::{CALENDAR_SCOPE, GRAPH_BASE, GraphCalendarConnector, calendar_connector};

/// The connector's kind, stored with every mailbox.
pub const KIND: &str = "outlook";

/// Outlook as Microsoft runs it: the identity platform's v2 endpoints for any account
/// (`common`: work, school and personal), the scopes (mail and, through Graph, calendars:
/// one grant serves both halves), and the servers.
pub fn preset() -> Preset {
    Preset {
        descriptor: Descriptor {
            kind: KIND,
            display_name: "Outlook".into(),
            auth: AuthMethod::OAuth2,
            capabilities: Capabilities { send: true, provider_saves_sent: true, calendars: true },
            fields: Vec::new(),
            help: None,
        },
        oauth: Some(OAuthProvider {
            name: "Microsoft".into(),
            authorize_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize".into(),
            token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(),
            userinfo_url: "https://graph.microsoft.com/oidc/userinfo".into(),
            // offline_access is what makes Microsoft issue a refresh token.
            scopes: [
                "https://outlook.office.com/IMAP.AccessAsUser.All",
                "https://outlook.office.com/SMTP.Send",
                CALENDAR_SCOPE,
                "offline_access",
                "openid",
                "email",
            ]
            .map(String::from)
            .to_vec(),
            extra_authorize_params: Vec::new(),
        }),
        imap: Endpoint { host: "outlook.office365.com".into(), port: 993, security: Security::SslTls },
        smtp: Endpoint { host: "smtp.office365.com".into(), port: 587, security: Security::StartTls },
        gmail_extensions: false,
    }
}

/// The Outlook connector. `imap` and `smtp` replace Microsoft's servers when given: how the
/// gateway's configuration (and the tests) point it at another server.
pub fn connector(options: Options, imap: Option<Endpoint>, smtp: Option<Endpoint>) -> ImapSmtpConnector {
    ImapSmtpConnector::preset(preset().with_servers(imap, smtp), options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_connector_sdk::{MailConnector, Settings};

    #[test]
    fn outlook_signs_in_with_microsoft_and_asks_for_nothing() {
        let outlook = connector(Options::default(), None, None);
        let d = outlook.descriptor();
        assert_eq!((d.kind, d.display_name.as_str(), d.auth), ("outlook", "Outlook", AuthMethod::OAuth2));
        assert!(d.fields.is_empty());
        assert!(d.capabilities.send && d.capabilities.provider_saves_sent && d.capabilities.calendars);
        assert_eq!(outlook.validate(&Settings::new()), Ok(Settings::new()));
        let mut unknown = Settings::new();
        unknown.insert("folder".into(), "Archive".into());
        assert_eq!(outlook.validate(&unknown).unwrap_err().field, "folder");
    }

    #[test]
    fn the_oauth_provider_is_microsofts_common_endpoint_with_mail_scopes() {
        let outlook = connector(Options::default(), None, None);
        let microsoft = outlook.oauth().expect("an OAuth2 provider");
        assert_eq!(Some(microsoft), preset().oauth.as_ref());
        assert_eq!(microsoft.authorize_url, "https://login.microsoftonline.com/common/oauth2/v2.0/authorize");
        assert_eq!(microsoft.token_url, "https://login.microsoftonline.com/common/oauth2/v2.0/token");
        assert_eq!(microsoft.userinfo_url, "https://graph.microsoft.com/oidc/userinfo");
        assert_eq!(
            microsoft.scopes.join(" "),
            "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send https://graph.microsoft.com/Calendars.ReadWrite offline_access openid email"
        );
        assert!(microsoft.extra_authorize_params.is_empty());
    }

    #[test]
    fn the_calendar_half_is_the_same_kind_with_the_same_grant() {
        use concierge_connector_sdk::CalendarConnector;
        let graph = calendar_connector(None);
        let d = graph.descriptor();
        assert_eq!((d.kind, d.auth), ("outlook", AuthMethod::OAuth2));
        assert!(d.fields.is_empty() && d.capabilities.calendars);
        assert_eq!(CalendarConnector::validate(&graph, &Settings::new()), Ok(Settings::new()));
        let microsoft = graph.oauth().expect("an OAuth2 provider");
        assert_eq!(Some(microsoft), preset().oauth.as_ref());
        assert!(microsoft.scopes.iter().any(|s| s == "https://graph.microsoft.com/Calendars.ReadWrite"));
        assert!(microsoft.scopes.iter().any(|s| s == "https://outlook.office.com/IMAP.AccessAsUser.All"));
    }

    #[test]
    fn it_talks_to_microsofts_servers_unless_told_otherwise() {
        let microsoft = connector(Options::default(), None, None).server_settings(&Settings::new()).expect("resolves");
        assert_eq!(
            (microsoft.imap.host.as_str(), microsoft.imap.port, microsoft.imap.security),
            ("outlook.office365.com", 993, Security::SslTls)
        );
        assert_eq!(
            (microsoft.smtp.host.as_str(), microsoft.smtp.port, microsoft.smtp.security),
            ("smtp.office365.com", 587, Security::StartTls)
        );

        let local = Endpoint { host: "127.0.0.1".into(), port: 10587, security: Security::StartTls };
        let elsewhere = connector(Options::default(), None, Some(local.clone())).server_settings(&Settings::new()).expect("resolves");
        assert_eq!((elsewhere.imap.host.as_str(), elsewhere.smtp), ("outlook.office365.com", local));
    }
}
