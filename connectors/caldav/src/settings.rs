//! The connect forms (generic CalDAV) and presets (iCloud, Google), and how an account's
//! settings resolve into the URL discovery starts from. Pure: no I/O.

use concierge_connector_sdk::trust;
use concierge_connector_sdk::{AuthMethod, Capabilities, Descriptor, Field, FieldError, FieldKind, OAuthProvider, Settings};
use url::Url;

/// A kind of CalDAV account: its descriptor, where discovery starts, and how it signs in.
#[derive(Clone, Debug, PartialEq)]
pub struct Preset {
    pub descriptor: Descriptor,
    /// Where discovery starts. `None`: the form's `url` field. Otherwise a fixed URL in
    /// which `{username}` stands for the sign-in name (Google: `…/caldav/v2/{username}/user`).
    pub start_url: Option<String>,
    /// The OAuth2 provider, for presets that sign in with one.
    pub oauth: Option<OAuthProvider>,
}

const GOOGLE_CALDAV: &str = "https://apidata.googleusercontent.com/caldav/v2/";
const ICLOUD_CALDAV: &str = "https://caldav.icloud.com/";

impl Preset {
    /// Any CalDAV server: the user gives its URL (server, principal or calendar home).
    pub fn generic() -> Preset {
        Preset {
            descriptor: Descriptor {
                kind: "caldav",
                display_name: "CalDAV".into(),
                auth: AuthMethod::Password,
                capabilities: calendars_only(),
                fields: vec![
                    Field::new("url", "Server address", FieldKind::Text)
                        .required()
                        .help("The CalDAV server (https://cal.example.com/), your principal or your calendar home address"),
                    Field::new("username", "User name", FieldKind::Text).help("If it is not your email address"),
                    trust::pin_field(),
                ],
                help: None,
            },
            start_url: None,
            oauth: None,
        }
    }

    /// iCloud: caldav.icloud.com, with an app-specific password.
    pub fn icloud() -> Preset {
        Preset {
            descriptor: Descriptor {
                kind: "icloud",
                display_name: "iCloud".into(),
                auth: AuthMethod::Password,
                capabilities: calendars_only(),
                fields: Vec::new(),
                help: Some(Preset::ICLOUD_PASSWORD_HELP.into()),
            },
            start_url: Some(ICLOUD_CALDAV.into()),
            oauth: None,
        }
    }

    /// A provider's server at a fixed URL (`{username}` stands for the sign-in name), signed
    /// in to with a password: the form asks for nothing else. The gateway makes these from
    /// its calendar presets.
    pub fn fixed(kind: &'static str, label: &str, help: Option<String>, url: &str) -> Preset {
        Preset {
            descriptor: Descriptor {
                kind,
                display_name: label.into(),
                auth: AuthMethod::Password,
                capabilities: calendars_only(),
                fields: Vec::new(),
                help,
            },
            start_url: Some(url.into()),
            oauth: None,
        }
    }

    /// Help for the iCloud password field (the gateway shows it next to the password).
    pub const ICLOUD_PASSWORD_HELP: &'static str =
        "iCloud needs an app-specific password: create one at appleid.apple.com (Sign-In and Security → App-Specific Passwords)";

    /// Google Calendar's CalDAV API, signed in with Google OAuth2. Kind `gmail`: the same
    /// kind as the Gmail mail connector, since one grant (with both scopes) serves both.
    /// `base` replaces `https://apidata.googleusercontent.com/caldav/v2/` (a stand-in).
    pub fn google(base: Option<String>) -> Preset {
        let mut base = base.unwrap_or_else(|| GOOGLE_CALDAV.into());
        if !base.ends_with('/') {
            base.push('/');
        }
        Preset {
            descriptor: Descriptor {
                kind: "gmail",
                display_name: "Google".into(),
                auth: AuthMethod::OAuth2,
                capabilities: Capabilities { send: true, provider_saves_sent: true, calendars: true },
                fields: Vec::new(),
                help: None,
            },
            start_url: Some(format!("{base}{{username}}/user")),
            oauth: Some(OAuthProvider {
                name: "Google".into(),
                authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
                token_url: "https://oauth2.googleapis.com/token".into(),
                userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
                scopes: vec!["openid".into(), "email".into(), "https://www.googleapis.com/auth/calendar".into()],
                extra_authorize_params: vec![("access_type".into(), "offline".into()), ("prompt".into(), "consent".into())],
            }),
        }
    }

    /// Checks the form and, for the generic form, that `url` is usable.
    pub(crate) fn validate(&self, settings: &Settings, allow_plaintext_remote: bool) -> Result<Settings, FieldError> {
        let out = self.descriptor.validate(settings)?;
        if self.start_url.is_none() {
            let url = out.get("url").and_then(|v| v.as_str()).unwrap_or("");
            check_url(url, allow_plaintext_remote)?;
        }
        trust::pins(&out)?;
        Ok(out)
    }

    /// Where discovery starts for this account.
    pub(crate) fn start(&self, settings: &Settings, username: &str, allow_plaintext_remote: bool) -> Result<Url, FieldError> {
        match &self.start_url {
            Some(template) => check_url(&template.replace("{username}", username.trim()), allow_plaintext_remote),
            None => check_url(settings.get("url").and_then(|v| v.as_str()).unwrap_or(""), allow_plaintext_remote),
        }
    }
}

fn calendars_only() -> Capabilities {
    Capabilities { send: false, provider_saves_sent: false, calendars: true }
}

const NOT_A_URL: &str = "must be an http:// or https:// address";
const PLAINTEXT_REFUSED: &str =
    "must start with https://: an unencrypted connection is only allowed to this machine (localhost) unless the operator allows it";

/// Parses a URL the connector may use: http(s), a host, no user or password in it, and
/// plain http only to loopback unless the operator allows it.
pub(crate) fn check_url(raw: &str, allow_plaintext_remote: bool) -> Result<Url, FieldError> {
    let bad = |why: &str| FieldError::new("url", why);
    let raw = raw.trim();
    // A bare host name is a server address: assume https.
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let url = Url::parse(&with_scheme).map_err(|_| bad(NOT_A_URL))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(bad(NOT_A_URL));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    if url.scheme() == "http" && !allow_plaintext_remote && !is_loopback(&url) {
        return Err(bad(PLAINTEXT_REFUSED));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: serde_json::Value) -> Settings {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_generic_form_needs_a_usable_url() {
        let p = Preset::generic();
        assert_eq!(p.validate(&settings(json!({})), false).unwrap_err().field, "url");
        for bad in ["ftp://x.org/", "http://cal.example.com/", "https://u:p@x.org/", "https://"] {
            assert_eq!(p.validate(&settings(json!({"url": bad})), false).unwrap_err().field, "url", "{bad}");
        }
        for good in ["https://cal.example.com/dav/", "cal.example.com", "http://127.0.0.1:5232/", "http://localhost/", "http://[::1]:8/"] {
            assert!(p.validate(&settings(json!({"url": good, "username": "bob"})), false).is_ok(), "{good}");
        }
        assert!(p.validate(&settings(json!({"url": "http://cal.example.com/"})), true).is_ok());
    }

    #[test]
    fn google_starts_at_the_users_principal() {
        let p = Preset::google(Some("http://127.0.0.1:9/caldav/v2".into()));
        assert_eq!(p.descriptor.kind, "gmail");
        assert_eq!(p.descriptor.auth, AuthMethod::OAuth2);
        let url = p.start(&Settings::new(), "ann@example.com", false).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/caldav/v2/ann@example.com/user");
        let real = Preset::google(None).start(&Settings::new(), "ann@example.com", false).unwrap();
        assert_eq!(real.as_str(), "https://apidata.googleusercontent.com/caldav/v2/ann@example.com/user");
    }

    #[test]
    fn icloud_asks_for_nothing_and_has_a_fixed_server() {
        let p = Preset::icloud();
        assert_eq!(p.descriptor.kind, "icloud");
        assert!(p.descriptor.fields.is_empty());
        assert_eq!(p.validate(&Settings::new(), false).unwrap(), Settings::new());
        assert_eq!(p.start(&Settings::new(), "a@icloud.com", false).unwrap().as_str(), "https://caldav.icloud.com/");
    }
}
