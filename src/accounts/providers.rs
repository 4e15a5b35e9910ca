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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    #[serde(default)]
    mail_provider: Vec<toml::Spanned<MailProvider>>,
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
pub fn load(file: Option<&Path>) -> anyhow::Result<Vec<MailProvider>> {
    let mut providers = parse(BUILT_IN, "the built-in providers")?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {} (CONCIERGE_PROVIDERS_FILE)", path.display()))?;
        let origin = format!("{} (CONCIERGE_PROVIDERS_FILE)", path.display());
        for provider in parse(&text, &origin)? {
            providers.retain(|p| p.kind != provider.kind);
            providers.push(provider);
        }
    }
    Ok(providers)
}

/// Parses and checks one file's providers; an error names the file, the line and the reason.
fn parse(text: &str, origin: &str) -> anyhow::Result<Vec<MailProvider>> {
    let file: ProvidersFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {}", e.to_string().trim_end()))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(file.mail_provider.len());
    for spanned in file.mail_provider {
        let line = text[..spanned.span().start.min(text.len())].matches('\n').count() + 1;
        let provider = spanned.into_inner();
        check(&provider).map_err(|why| anyhow::anyhow!("{origin}, line {line}: mail_provider {:?}: {why}", provider.kind))?;
        if !seen.insert(provider.kind.clone()) {
            bail!("{origin}, line {line}: mail_provider {:?} appears twice", provider.kind);
        }
        out.push(provider);
    }
    Ok(out)
}

fn check(p: &MailProvider) -> Result<(), String> {
    let kind_ok = !p.kind.is_empty()
        && p.kind.len() <= 40
        && p.kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !p.kind.starts_with('-');
    if !kind_ok {
        return Err("kind must be lower-case letters, digits and '-' (at most 40)".into());
    }
    if CODE_KINDS.contains(&p.kind.as_str()) {
        return Err(format!("kind {:?} is a built-in connector, not a preset: choose another kind", p.kind));
    }
    if p.label.trim().is_empty() {
        return Err("label must not be empty".into());
    }
    for domain in &p.domains {
        let ok = domain.contains('.')
            && domain.len() <= 253
            && domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!("domain {domain:?} must be a lower-case domain name"));
        }
    }
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
        let providers = load(None).expect("built-in providers");
        let kinds: Vec<&str> = providers.iter().map(|p| p.kind.as_str()).collect();
        for kind in ["yahoo", "icloud", "fastmail", "zoho", "gmx", "aol", "yandex"] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        let yahoo = providers.iter().find(|p| p.kind == "yahoo").unwrap();
        assert!(yahoo.domains.iter().any(|d| d == "yahoo.com"));
        assert_eq!((yahoo.imap.host.as_str(), yahoo.imap.port), ("imap.mail.yahoo.com", 993));
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
        let providers = load(Some(&path)).unwrap();
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
        ];
        for (text, expected) in cases {
            let err = parse(text, "providers.toml").unwrap_err().to_string();
            assert!(err.contains(expected) && err.starts_with("providers.toml"), "{expected:?} in {err:?}");
        }
    }
}
