//! Mail providers as configuration, as EmailEngine and Thunderbird keep them: each preset
//! names its IMAP and SMTP servers, how users sign in (a password, usually an app password,
//! or OAuth2 with the operator's app), the domains it serves and the help a form shows.
//!
//! The built-in ones are in `providers.toml` beside this file. An operator adds providers, or
//! replaces a built-in one by its kind, in a TOML file of the same `[[mail_provider]]` tables
//! named by `CONCIERGE_PROVIDERS_FILE`. A bad file stops the gateway at start, naming the
//! line and the reason. Every preset becomes an IMAP/SMTP connector with fixed servers, so
//! `mailConnectors` lists it and `discoverMailSettings` finds it by an address's domain.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// The built-in presets.
const BUILT_IN: &str = include_str!("providers.toml");

/// The connectors that are code, not presets: a file cannot take their kinds.
const CODE_KINDS: &[&str] = &["imap", "gmail", "gmail-password", "outlook"];
/// The same for calendar connectors.
const CALENDAR_CODE_KINDS: &[&str] = &["caldav", "gmail", "outlook"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    #[serde(default)]
    mail_provider: Vec<toml::Spanned<MailProvider>>,
    #[serde(default)]
    calendar_provider: Vec<toml::Spanned<CalendarProvider>>,
}

/// Every preset: the built-in ones with the operator's file applied.
#[derive(Debug, Default)]
pub struct Providers {
    pub mail: Vec<MailProvider>,
    pub calendar: Vec<CalendarProvider>,
}

/// One CalDAV provider: where its calendars are, for users who sign in with a password
/// (usually an app password).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarProvider {
    /// The connector's kind (`connectCalendarAccount(input: {connector})`). The same kind as
    /// a mail provider is fine: they are listed apart.
    pub kind: String,
    /// What the form is called ("Fastmail").
    pub label: String,
    /// The address domains it serves.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Shown above the form ("Use an app password from …").
    pub help: Option<String>,
    /// Where CalDAV discovery starts: the server (its `/.well-known/caldav`), a principal or a
    /// calendar home. `{username}` stands for the sign-in name.
    pub url: String,
}

/// One mail provider.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailProvider {
    /// The connector's kind (`connectMailbox(input: {connector})`): lower case, digits, `-`.
    pub kind: String,
    /// What the form is called ("Yahoo Mail").
    pub label: String,
    /// The address domains it serves, for discovery.
    #[serde(default)]
    pub domains: Vec<String>,
    pub auth: ProviderAuth,
    /// Shown above the form ("Use an app password from …").
    pub help: Option<String>,
    pub imap: ServerEntry,
    pub smtp: ServerEntry,
    /// Whether the provider keeps sent mail in the Sent folder itself (else the connector
    /// appends a copy after each send).
    #[serde(default)]
    pub keeps_sent_mail: bool,
    /// The OAuth2 app, for `auth = "oauth2"`.
    pub oauth: Option<OAuthEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderAuth {
    Password,
    Oauth2,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    pub host: String,
    pub port: u16,
    /// `SSL_TLS`, `STARTTLS` or `NONE`.
    pub security: String,
}

/// A provider's OAuth2 endpoints and scopes, and where the operator's app is.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthEntry {
    /// Who users sign in at ("Acme").
    pub provider: Option<String>,
    pub authorize_url: String,
    pub token_url: String,
    /// An endpoint answering the signed-in address (`email`), read after the code exchange.
    pub userinfo_url: String,
    pub scopes: Vec<String>,
    /// The environment variables holding the app's client id and secret.
    pub client_id_env: String,
    pub client_secret_env: Option<String>,
}

/// The built-in presets, then the operator's file (which adds, or replaces by kind).
pub fn load(file: Option<&Path>) -> anyhow::Result<Providers> {
    let mut providers = parse(BUILT_IN, "the built-in providers")?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {} (CONCIERGE_PROVIDERS_FILE)", path.display()))?;
        let origin = format!("{} (CONCIERGE_PROVIDERS_FILE)", path.display());
        let theirs = parse(&text, &origin)?;
        for provider in theirs.mail {
            providers.mail.retain(|p| p.kind != provider.kind);
            providers.mail.push(provider);
        }
        for provider in theirs.calendar {
            providers.calendar.retain(|p| p.kind != provider.kind);
            providers.calendar.push(provider);
        }
    }
    Ok(providers)
}

/// Parses and checks one file's providers; an error names the file, the line and the reason.
fn parse(text: &str, origin: &str) -> anyhow::Result<Providers> {
    let file: ProvidersFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {}", e.to_string().trim_end()))?;
    let line_of = |span: std::ops::Range<usize>| text[..span.start.min(text.len())].matches('\n').count() + 1;
    let mut out = Providers::default();
    let mut seen = std::collections::HashSet::new();
    for spanned in file.mail_provider {
        let line = line_of(spanned.span());
        let provider = spanned.into_inner();
        check(&provider).map_err(|why| anyhow::anyhow!("{origin}, line {line}: mail_provider {:?}: {why}", provider.kind))?;
        if !seen.insert(provider.kind.clone()) {
            bail!("{origin}, line {line}: mail_provider {:?} appears twice", provider.kind);
        }
        out.mail.push(provider);
    }
    let mut seen = std::collections::HashSet::new();
    for spanned in file.calendar_provider {
        let line = line_of(spanned.span());
        let provider = spanned.into_inner();
        check_calendar(&provider).map_err(|why| anyhow::anyhow!("{origin}, line {line}: calendar_provider {:?}: {why}", provider.kind))?;
        if !seen.insert(provider.kind.clone()) {
            bail!("{origin}, line {line}: calendar_provider {:?} appears twice", provider.kind);
        }
        out.calendar.push(provider);
    }
    Ok(out)
}

/// A preset's kind: what `connector` arguments take.
fn check_kind(kind: &str, code_kinds: &[&str]) -> Result<(), String> {
    let kind_ok = !kind.is_empty()
        && kind.len() <= 40
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !kind.starts_with('-');
    if !kind_ok {
        return Err("kind must be lower-case letters, digits and '-' (at most 40)".into());
    }
    if code_kinds.contains(&kind) {
        return Err(format!("kind {kind:?} is a built-in connector, not a preset: choose another kind"));
    }
    Ok(())
}

fn check_label_and_domains(label: &str, domains: &[String]) -> Result<(), String> {
    if label.trim().is_empty() {
        return Err("label must not be empty".into());
    }
    for domain in domains {
        let ok = domain.contains('.')
            && domain.len() <= 253
            && domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!("domain {domain:?} must be a lower-case domain name"));
        }
    }
    Ok(())
}

fn check_calendar(p: &CalendarProvider) -> Result<(), String> {
    check_kind(&p.kind, CALENDAR_CODE_KINDS)?;
    check_label_and_domains(&p.label, &p.domains)?;
    let url = url::Url::parse(&p.url.replace("{username}", "user")).map_err(|e| format!("url is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none_or(str::is_empty) {
        return Err("url must be an https:// (or http://) URL with a host".into());
    }
    Ok(())
}

fn check(p: &MailProvider) -> Result<(), String> {
    check_kind(&p.kind, CODE_KINDS)?;
    check_label_and_domains(&p.label, &p.domains)?;
    for (name, server) in [("imap", &p.imap), ("smtp", &p.smtp)] {
        if server.host.trim().is_empty() {
            return Err(format!("{name}.host must not be empty"));
        }
        if server.port == 0 {
            return Err(format!("{name}.port must be 1 to 65535"));
        }
        if !matches!(server.security.as_str(), "SSL_TLS" | "STARTTLS" | "NONE") {
            return Err(format!("{name}.security must be SSL_TLS, STARTTLS or NONE"));
        }
    }
    match (p.auth, &p.oauth) {
        (ProviderAuth::Oauth2, None) => return Err("auth = \"oauth2\" needs a [mail_provider.oauth] table".into()),
        (ProviderAuth::Password, Some(_)) => return Err("an [mail_provider.oauth] table needs auth = \"oauth2\"".into()),
        (ProviderAuth::Oauth2, Some(o)) => {
            for (name, url) in [("authorize_url", &o.authorize_url), ("token_url", &o.token_url), ("userinfo_url", &o.userinfo_url)] {
                if !url.starts_with("https://") {
                    return Err(format!("oauth.{name} must be an https:// URL"));
                }
            }
            if o.scopes.is_empty() {
                return Err("oauth.scopes must name at least one scope".into());
            }
            if o.client_id_env.trim().is_empty() {
                return Err("oauth.client_id_env must name an environment variable".into());
            }
        }
        (ProviderAuth::Password, None) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_presets_read_and_serve_their_domains() {
        let providers = load(None).expect("built-in providers").mail;
        let kinds: Vec<&str> = providers.iter().map(|p| p.kind.as_str()).collect();
        for kind in ["yahoo", "icloud", "fastmail", "zoho", "gmx", "aol", "yandex"] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        let yahoo = providers.iter().find(|p| p.kind == "yahoo").unwrap();
        assert!(yahoo.domains.iter().any(|d| d == "yahoo.com"));
        assert_eq!((yahoo.imap.host.as_str(), yahoo.imap.port), ("imap.mail.yahoo.com", 993));
    }

    #[test]
    fn the_built_in_calendar_presets_read() {
        let calendars = load(None).expect("built-in providers").calendar;
        let kinds: Vec<&str> = calendars.iter().map(|p| p.kind.as_str()).collect();
        for kind in ["icloud", "fastmail", "yahoo", "zoho", "gmx", "aol", "yandex", "mailbox-org", "posteo"] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        assert!(calendars.iter().all(|p| p.url.starts_with("https://")), "built-in calendar presets are https");
    }

    #[test]
    fn an_operators_file_adds_and_replaces_presets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("providers.toml");
        std::fs::write(
            &path,
            r#"
[[mail_provider]]
kind = "acme"
label = "Acme Mail"
domains = ["acme.example"]
auth = "password"
imap = { host = "imap.acme.example", port = 993, security = "SSL_TLS" }
smtp = { host = "smtp.acme.example", port = 465, security = "SSL_TLS" }

[[mail_provider]]
kind = "yahoo"
label = "Yahoo (via our relay)"
auth = "password"
imap = { host = "imap.relay.example", port = 993, security = "SSL_TLS" }
smtp = { host = "smtp.relay.example", port = 587, security = "STARTTLS" }
"#,
        )
        .unwrap();
        let providers = load(Some(&path)).unwrap().mail;
        assert!(providers.iter().any(|p| p.kind == "acme" && p.domains == ["acme.example"]));
        let yahoo: Vec<&MailProvider> = providers.iter().filter(|p| p.kind == "yahoo").collect();
        assert_eq!(yahoo.len(), 1, "replaced, not doubled");
        assert_eq!(yahoo[0].imap.host, "imap.relay.example");
    }

    #[test]
    fn a_bad_file_is_refused_with_its_line_and_reason() {
        let cases = [
            ("[[mail_provider]]\nkind = \"acme\"\n", "missing field"),
            (
                "\n\n[[mail_provider]]\nkind = \"Acme!\"\nlabel = \"A\"\nauth = \"password\"\nimap = { host = \"i\", port = 993, security = \"SSL_TLS\" }\nsmtp = { host = \"s\", port = 465, security = \"SSL_TLS\" }\n",
                "line 3",
            ),
            (
                "[[mail_provider]]\nkind = \"acme\"\nlabel = \"A\"\nauth = \"oauth2\"\nimap = { host = \"i\", port = 993, security = \"SSL_TLS\" }\nsmtp = { host = \"s\", port = 465, security = \"SSL_TLS\" }\n",
                "needs a [mail_provider.oauth] table",
            ),
            (
                "[[mail_provider]]\nkind = \"acme\"\nlabel = \"A\"\nauth = \"password\"\nimap = { host = \"i\", port = 993, security = \"TLS9\" }\nsmtp = { host = \"s\", port = 465, security = \"SSL_TLS\" }\n",
                "imap.security",
            ),
            (
                "[[mail_provider]]\nkind = \"imap\"\nlabel = \"A\"\nauth = \"password\"\nimap = { host = \"i\", port = 993, security = \"SSL_TLS\" }\nsmtp = { host = \"s\", port = 465, security = \"SSL_TLS\" }\n",
                "built-in connector",
            ),
            ("this is = = not toml", "line 1"),
            ("[[calendar_provider]]\nkind = \"acme\"\nlabel = \"A\"\nurl = \"not a url\"\n", "url is not a URL"),
            ("[[calendar_provider]]\nkind = \"acme\"\nlabel = \"A\"\nurl = \"ftp://dav.acme.example/\"\n", "https://"),
            ("[[calendar_provider]]\nkind = \"caldav\"\nlabel = \"A\"\nurl = \"https://dav.acme.example/\"\n", "built-in connector"),
            (
                "\n[[calendar_provider]]\nkind = \"a\"\nlabel = \"A\"\nurl = \"https://a.example/\"\n[[calendar_provider]]\nkind = \"a\"\nlabel = \"B\"\nurl = \"https://b.example/\"\n",
                "line 6: calendar_provider \"a\" appears twice",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text, "providers.toml").unwrap_err().to_string();
            assert!(err.contains(expected) && err.starts_with("providers.toml"), "{expected:?} in {err:?}");
        }
    }
}
