//! The connect forms (generic IMAP/SMTP and Gmail by app password), the fixed servers of a
//! provider preset, and how either resolves into one [`ServerSettings`], the only shape the
//! IMAP and SMTP code ever sees.
//!
//! Everything here is pure: no I/O, so the form rules are unit-tested on their own.

use std::net::IpAddr;

use concierge_connector_sdk::trust::{self, Fingerprint};
use concierge_connector_sdk::{AuthMethod, Capabilities, Choice, Descriptor, Field, FieldError, FieldKind, Settings};
use serde_json::Value;

/// How a connection to a server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    SslTls,
    /// A plain connection upgraded with STARTTLS before signing in; the upgrade is required.
    StartTls,
    /// No encryption at all: only to loopback, or when the operator opted in.
    None,
}

impl Security {
    /// The form value (`SSL_TLS`, `STARTTLS`, `NONE`).
    pub fn key(self) -> &'static str {
        match self {
            Security::SslTls => "SSL_TLS",
            Security::StartTls => "STARTTLS",
            Security::None => "NONE",
        }
    }

    fn from_key(key: &str) -> Option<Security> {
        match key {
            "SSL_TLS" => Some(Security::SslTls),
            "STARTTLS" => Some(Security::StartTls),
            "NONE" => Some(Security::None),
            _ => None,
        }
    }

    fn imap_port(self) -> u16 {
        match self {
            Security::SslTls => 993,
            Security::StartTls | Security::None => 143,
        }
    }

    fn smtp_port(self) -> u16 {
        match self {
            Security::SslTls => 465,
            Security::StartTls => 587,
            Security::None => 25,
        }
    }
}

/// One server to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// Where an account's mail lives, whichever form it was entered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    pub imap: Endpoint,
    pub smtp: Endpoint,
    /// The sign-in name when the form set one; otherwise the credentials' user name (or the
    /// address) is used.
    pub username: Option<String>,
    /// The folder that is synced, opened read-only.
    pub folder: String,
    /// Where sent mail is kept, when the user named it; otherwise the folder the server marks
    /// `\Sent` (or one of the usual names).
    pub sent_folder: Option<String>,
    /// Certificates the user chose to trust for this account's servers (IMAP and SMTP),
    /// by SHA-256 fingerprint, whoever issued them.
    pub pins: Vec<Fingerprint>,
}

/// Which form (and so which servers) a connector instance uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Generic,
    /// Gmail by app password: Google's servers, unless the operator points them elsewhere
    /// (a relay, a test lab), as for Gmail by OAuth.
    GmailPassword {
        imap: Option<Endpoint>,
        smtp: Option<Endpoint>,
    },
    /// A provider preset (Gmail or Outlook by OAuth2): servers fixed by the operator's
    /// configuration, no server fields in the form.
    Fixed {
        imap: Endpoint,
        smtp: Endpoint,
    },
}

const GMAIL_IMAP: &str = "imap.gmail.com";
const GMAIL_SMTP: &str = "smtp.gmail.com";

fn security_field(key: &'static str, label: &str) -> Field {
    Field::new(key, label, FieldKind::Select)
        .choices([Choice::new("SSL_TLS", "SSL/TLS"), Choice::new("STARTTLS", "STARTTLS"), Choice::new("NONE", "None (unencrypted)")])
        .default_value("SSL_TLS")
}

/// The generic form (kind `imap`).
pub(crate) fn generic_descriptor() -> Descriptor {
    Descriptor {
        kind: crate::GENERIC_KIND,
        display_name: "IMAP / SMTP".into(),
        auth: AuthMethod::Password,
        capabilities: Capabilities { send: true, provider_saves_sent: false, calendars: false },
        fields: vec![
            Field::new("imapHost", "IMAP server", FieldKind::Host).required(),
            security_field("imapSecurity", "IMAP security"),
            Field::new("imapPort", "IMAP port", FieldKind::Port).help("993 for SSL/TLS, 143 otherwise"),
            Field::new("smtpHost", "SMTP server", FieldKind::Host).required(),
            security_field("smtpSecurity", "SMTP security"),
            Field::new("smtpPort", "SMTP port", FieldKind::Port).help("465 for SSL/TLS, 587 for STARTTLS, 25 for none"),
            Field::new("username", "User name", FieldKind::Text).help("Leave empty to sign in with the email address"),
            Field::new("folder", "Folder", FieldKind::Text).default_value("INBOX"),
            Field::new("sentFolder", "Sent folder", FieldKind::Text)
                .help("Where mail sent from the platform is kept; leave empty for the folder the server marks as Sent"),
            trust::pin_field(),
        ],
        help: None,
    }
}

/// The Gmail-by-app-password form (kind `gmail-password`).
pub(crate) fn gmail_password_descriptor() -> Descriptor {
    Descriptor {
        kind: "gmail-password",
        display_name: "Gmail (app password)".into(),
        auth: AuthMethod::Password,
        capabilities: Capabilities {
            send: true,
            provider_saves_sent: true,
            calendars: false,
        },
        fields: vec![
            Field::new("smtpSecurity", "SMTP type", FieldKind::Select)
                .choices([
                    Choice::new("SSL_TLS", "SSL/TLS (port 465)"),
                    Choice::new("STARTTLS", "STARTTLS (port 587)"),
                ])
                .default_value("SSL_TLS")
                .help("Sign in with the email address and an app password"),
        ],
        help: Some("Gmail takes an app password here (Google Account → Security → App passwords), with 2-Step Verification on; or connect Gmail by OAuth instead".into()),
    }
}

impl Flavor {
    /// The form's own checks, then the ones a field list cannot express: port defaults that
    /// follow the security choice, and no plaintext to a remote host without the operator's
    /// opt-in (a password sent in clear over the internet is never what a user meant).
    pub(crate) fn validate(
        &self,
        descriptor: &Descriptor,
        settings: &Settings,
        allow_plaintext_remote: bool,
    ) -> Result<Settings, FieldError> {
        let mut out = descriptor.validate(settings)?;
        if *self == Flavor::Generic {
            for (host, security, port, default_port) in [
                ("imapHost", "imapSecurity", "imapPort", Security::imap_port as fn(Security) -> u16),
                ("smtpHost", "smtpSecurity", "smtpPort", Security::smtp_port),
            ] {
                let sec = security_of(&out, security)?;
                if !out.contains_key(port) {
                    out.insert(port.to_owned(), Value::from(default_port(sec)));
                }
                check_plaintext(&out, host, security, sec, allow_plaintext_remote)?;
            }
            trust::pins(&out)?;
        }
        Ok(out)
    }

    /// Resolves validated settings. Defensive: it applies the same defaults and the same
    /// plaintext rule, so settings stored before a rule changed cannot bypass it.
    pub(crate) fn resolve(&self, settings: &Settings, allow_plaintext_remote: bool) -> Result<ServerSettings, FieldError> {
        match self {
            Flavor::Fixed { imap, smtp } => {
                for (endpoint, key) in [(imap, "imapSecurity"), (smtp, "smtpSecurity")] {
                    if endpoint.security == Security::None && !allow_plaintext_remote && !is_loopback(&endpoint.host) {
                        return Err(FieldError::new(key, PLAINTEXT_REFUSED));
                    }
                }
                Ok(ServerSettings {
                    imap: imap.clone(),
                    smtp: smtp.clone(),
                    username: None,
                    folder: "INBOX".into(),
                    sent_folder: None,
                    pins: Vec::new(),
                })
            }
            Flavor::GmailPassword { imap, smtp } => {
                let smtp_security = match settings.get("smtpSecurity") {
                    None | Some(Value::Null) => Security::SslTls,
                    Some(_) => security_of(settings, "smtpSecurity")?,
                };
                let smtp_security = match smtp_security {
                    Security::None => {
                        return Err(FieldError::new("smtpSecurity", "must be SSL/TLS or STARTTLS for Gmail"));
                    }
                    other => other,
                };
                Ok(ServerSettings {
                    imap: imap.clone().unwrap_or_else(|| Endpoint { host: GMAIL_IMAP.into(), port: 993, security: Security::SslTls }),
                    smtp: smtp.clone().unwrap_or_else(|| Endpoint {
                        host: GMAIL_SMTP.into(),
                        port: smtp_security.smtp_port(),
                        security: smtp_security,
                    }),
                    username: None,
                    folder: "INBOX".into(),
                    sent_folder: None,
                    pins: Vec::new(),
                })
            }
            Flavor::Generic => {
                let endpoint = |host: &'static str, security: &'static str, port: &'static str, default_port: fn(Security) -> u16| {
                    let sec = match settings.get(security) {
                        None | Some(Value::Null) => Security::SslTls,
                        Some(_) => security_of(settings, security)?,
                    };
                    check_plaintext(settings, host, security, sec, allow_plaintext_remote)?;
                    let host_name = text(settings, host).ok_or_else(|| FieldError::new(host, "is required"))?;
                    let port_number = match settings.get(port) {
                        None | Some(Value::Null) => default_port(sec),
                        Some(v) => port_of(v).ok_or_else(|| FieldError::new(port, "must be a port between 1 and 65535"))?,
                    };
                    Ok::<_, FieldError>(Endpoint { host: host_name, port: port_number, security: sec })
                };
                Ok(ServerSettings {
                    imap: endpoint("imapHost", "imapSecurity", "imapPort", Security::imap_port)?,
                    smtp: endpoint("smtpHost", "smtpSecurity", "smtpPort", Security::smtp_port)?,
                    username: text(settings, "username"),
                    folder: text(settings, "folder").unwrap_or_else(|| "INBOX".into()),
                    sent_folder: text(settings, "sentFolder"),
                    pins: trust::pins(settings)?,
                })
            }
        }
    }
}

fn text(settings: &Settings, key: &str) -> Option<String> {
    match settings.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn port_of(value: &Value) -> Option<u16> {
    let n = match value {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|p| *p != 0)
}

fn security_of(settings: &Settings, key: &str) -> Result<Security, FieldError> {
    settings
        .get(key)
        .and_then(Value::as_str)
        .and_then(Security::from_key)
        .ok_or_else(|| FieldError::new(key, "must be one of SSL_TLS, STARTTLS, NONE"))
}

fn check_plaintext(settings: &Settings, host_key: &str, security_key: &str, security: Security, allowed: bool) -> Result<(), FieldError> {
    if security != Security::None || allowed {
        return Ok(());
    }
    match text(settings, host_key) {
        Some(host) if is_loopback(&host) => Ok(()),
        _ => Err(FieldError::new(security_key, PLAINTEXT_REFUSED)),
    }
}

const PLAINTEXT_REFUSED: &str = "must be SSL/TLS or STARTTLS: an unencrypted connection is only allowed to this machine (localhost) unless the operator allows plaintext to remote servers";

/// 127.0.0.0/8, ::1 and `localhost`: the only hosts where no encryption cannot leak a
/// password onto a network.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> Settings {
        v.as_object().cloned().unwrap_or_default()
    }

    fn generic(v: Value) -> Result<Settings, FieldError> {
        Flavor::Generic.validate(&generic_descriptor(), &settings(v), false)
    }

    #[test]
    fn ports_default_from_the_security_choice() {
        let out = generic(json!({"imapHost": "mail.example.com", "smtpHost": "mail.example.com"})).unwrap();
        assert_eq!((out["imapSecurity"].as_str(), out["imapPort"].as_i64()), (Some("SSL_TLS"), Some(993)));
        assert_eq!(out["smtpPort"], 465);
        assert_eq!(out["folder"], "INBOX");

        let out = generic(
            json!({"imapHost": "m.example.com", "imapSecurity": "STARTTLS", "smtpHost": "m.example.com", "smtpSecurity": "STARTTLS"}),
        )
        .unwrap();
        assert_eq!((out["imapPort"].as_i64(), out["smtpPort"].as_i64()), (Some(143), Some(587)));

        let out =
            generic(json!({"imapHost": "127.0.0.1", "imapSecurity": "NONE", "smtpHost": "localhost", "smtpSecurity": "NONE"})).unwrap();
        assert_eq!((out["imapPort"].as_i64(), out["smtpPort"].as_i64()), (Some(143), Some(25)));
    }

    #[test]
    fn an_explicit_port_is_kept() {
        let out =
            generic(json!({"imapHost": "m.example.com", "imapPort": "10993", "smtpHost": "m.example.com", "smtpPort": 2525})).unwrap();
        assert_eq!((out["imapPort"].as_i64(), out["smtpPort"].as_i64()), (Some(10993), Some(2525)));
    }

    #[test]
    fn plaintext_to_a_remote_host_is_refused_unless_allowed() {
        let remote = json!({"imapHost": "mail.example.com", "imapSecurity": "NONE", "smtpHost": "mail.example.com"});
        assert_eq!(generic(remote.clone()).unwrap_err().field, "imapSecurity");
        let remote_smtp = json!({"imapHost": "mail.example.com", "smtpHost": "10.0.0.5", "smtpSecurity": "NONE"});
        assert_eq!(generic(remote_smtp).unwrap_err().field, "smtpSecurity");
        let allowed = Flavor::Generic.validate(&generic_descriptor(), &settings(remote), true).unwrap();
        assert_eq!(allowed["imapPort"], 143);
    }

    #[test]
    fn loopback_means_127_slash_8_ipv6_one_and_localhost() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["128.0.0.1", "10.0.0.1", "localhost.example.com", "::2", "example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn generic_settings_resolve_to_endpoints() {
        let validated = generic(json!({"imapHost": "Imap.Example.com", "imapSecurity": "STARTTLS", "smtpHost": "smtp.example.com", "username": " bob ", "folder": "Archive/2024"})).unwrap();
        let resolved = Flavor::Generic.resolve(&validated, false).unwrap();
        assert_eq!(resolved.imap, Endpoint { host: "imap.example.com".into(), port: 143, security: Security::StartTls });
        assert_eq!(resolved.smtp, Endpoint { host: "smtp.example.com".into(), port: 465, security: Security::SslTls });
        assert_eq!(resolved.username.as_deref(), Some("bob"));
        assert_eq!(resolved.folder, "Archive/2024");
    }

    #[test]
    fn resolve_applies_the_plaintext_rule_too() {
        let stored =
            settings(json!({"imapHost": "mail.example.com", "imapSecurity": "NONE", "imapPort": 143, "smtpHost": "mail.example.com"}));
        assert_eq!(Flavor::Generic.resolve(&stored, false).unwrap_err().field, "imapSecurity");
    }

    #[test]
    fn gmail_asks_only_for_the_smtp_type_and_presets_the_rest() {
        let d = gmail_password_descriptor();
        assert_eq!(d.fields.iter().map(|f| f.key).collect::<Vec<_>>(), ["smtpSecurity"]);
        assert!(d.capabilities.provider_saves_sent);
        let out =
            Flavor::GmailPassword { imap: None, smtp: None }.validate(&d, &settings(json!({"smtpSecurity": "STARTTLS"})), false).unwrap();
        let resolved = Flavor::GmailPassword { imap: None, smtp: None }.resolve(&out, false).unwrap();
        assert_eq!(resolved.smtp, Endpoint { host: "smtp.gmail.com".into(), port: 587, security: Security::StartTls });
        assert_eq!(resolved.imap, Endpoint { host: "imap.gmail.com".into(), port: 993, security: Security::SslTls });
        let defaulted = Flavor::GmailPassword { imap: None, smtp: None }.validate(&d, &Settings::new(), false).unwrap();
        assert_eq!(Flavor::GmailPassword { imap: None, smtp: None }.resolve(&defaulted, false).unwrap().smtp.port, 465);
        assert!(Flavor::GmailPassword { imap: None, smtp: None }.validate(&d, &settings(json!({"smtpSecurity": "NONE"})), false).is_err());
        assert!(Flavor::GmailPassword { imap: None, smtp: None }.validate(&d, &settings(json!({"imapHost": "x.org"})), false).is_err());
    }

    #[test]
    fn a_preset_resolves_to_its_fixed_servers_under_the_same_plaintext_rule() {
        let at = |host: &str, port, security| Endpoint { host: host.into(), port, security };
        let fixed =
            Flavor::Fixed { imap: at("imap.example.com", 993, Security::SslTls), smtp: at("smtp.example.com", 587, Security::StartTls) };
        let resolved = fixed.resolve(&Settings::new(), false).unwrap();
        assert_eq!(resolved.imap, at("imap.example.com", 993, Security::SslTls));
        assert_eq!(resolved.smtp, at("smtp.example.com", 587, Security::StartTls));
        assert_eq!((resolved.username, resolved.folder.as_str()), (None, "INBOX"));

        let plain = Flavor::Fixed { imap: at("imap.example.com", 143, Security::SslTls), smtp: at("smtp.example.com", 25, Security::None) };
        assert_eq!(plain.resolve(&Settings::new(), false).unwrap_err().field, "smtpSecurity");
        assert!(plain.resolve(&Settings::new(), true).is_ok());
        let loopback = Flavor::Fixed { imap: at("127.0.0.1", 143, Security::None), smtp: at("localhost", 25, Security::None) };
        assert!(loopback.resolve(&Settings::new(), false).is_ok());
    }
}
