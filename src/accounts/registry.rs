//! The connectors this gateway offers, and the OAuth apps the operator registered for the
//! ones that sign in at a provider. Adding a connector is one `register` line in
//! [`Registry::builtin`].
//!
//! Outbound trust: hosts a user types (generic IMAP/SMTP, CalDAV URLs) are reached under the
//! outbound policy (`imap.outbound`, `CONCIERGE_OUTBOUND_ALLOW`). What the operator
//! configured here is trusted and not checked: the mail and calendar presets' servers
//! (built in or from `CONCIERGE_PROVIDERS_FILE`), the Gmail and Outlook
//! presets' IMAP/SMTP servers (`ImapSmtpConnector::preset` reaches them with
//! `OutboundPolicy::operator_configured`), their OAuth endpoints (called by the gateway's
//! own OAuth client), Google's CalDAV base URL (`CaldavConnector::google`) and Microsoft
//! Graph (the Outlook calendar connector's own client).

use std::collections::HashMap;
use std::sync::Arc;

use concierge_connector_caldav::{CaldavConnector, Options as CaldavOptions, Preset as CaldavPreset};
use concierge_connector_imap_smtp::{Endpoint, ImapSmtpConnector, Options as ImapOptions, Preset, Security};
use concierge_connector_sdk::outbound::OutboundPolicy;
use concierge_connector_sdk::{
    AuthMethod, Capabilities, Descriptor, MailConnector as _, OAuthProvider, SharedCalendarConnector, SharedConnector,
};

use super::oauth::{OAuthApp, OAuthApps};
use super::providers::{MailProvider, ServerEntry};
use crate::config::Config;

#[derive(Clone, Default)]
pub struct Registry {
    connectors: Vec<SharedConnector>,
    calendars: Vec<SharedCalendarConnector>,
    oauth: OAuthApps,
    /// Which mail connector serves an address domain (lower case), for discovery.
    domains: HashMap<String, &'static str>,
    /// The address domains each calendar preset serves.
    calendar_domains: HashMap<&'static str, Vec<String>>,
}

impl Registry {
    /// Adds a connector; a later one with the same kind replaces the earlier.
    pub fn register(&mut self, connector: SharedConnector) -> &mut Self {
        let kind = connector.descriptor().kind;
        self.connectors.retain(|c| c.descriptor().kind != kind);
        self.connectors.push(connector);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&SharedConnector> {
        self.connectors.iter().find(|c| c.descriptor().kind == kind)
    }

    pub fn all(&self) -> &[SharedConnector] {
        &self.connectors
    }

    /// Adds a calendar connector; a later one with the same kind replaces the earlier. A
    /// kind that is also a mail connector shares its sign-in (one OAuth grant serves both).
    pub fn register_calendar(&mut self, connector: SharedCalendarConnector) -> &mut Self {
        let kind = connector.descriptor().kind;
        self.calendars.retain(|c| c.descriptor().kind != kind);
        self.calendars.push(connector);
        self
    }

    pub fn calendar(&self, kind: &str) -> Option<&SharedCalendarConnector> {
        self.calendars.iter().find(|c| c.descriptor().kind == kind)
    }

    pub fn calendars(&self) -> &[SharedCalendarConnector] {
        &self.calendars
    }

    /// The mail connector whose provider serves `domain` (an address's, any case).
    pub fn for_domain(&self, domain: &str) -> Option<&SharedConnector> {
        let kind = self.domains.get(&domain.trim().trim_end_matches('.').to_ascii_lowercase())?;
        self.get(kind)
    }

    /// The address domains a mail connector's provider serves, sorted.
    pub fn domains_of(&self, kind: &str) -> Vec<&str> {
        let mut domains: Vec<&str> = self.domains.iter().filter(|(_, k)| **k == kind).map(|(d, _)| d.as_str()).collect();
        domains.sort_unstable();
        domains
    }

    fn serve(&mut self, kind: &'static str, domains: &[&str]) {
        self.domains.retain(|_, k| *k != kind);
        for domain in domains {
            self.domains.insert(domain.to_ascii_lowercase(), kind);
        }
    }

    /// The address domains a calendar connector's provider serves, sorted.
    pub fn calendar_domains_of(&self, kind: &str) -> &[String] {
        self.calendar_domains.get(kind).map_or(&[], Vec::as_slice)
    }

    /// The OAuth apps, by connector kind.
    pub fn oauth(&self) -> &OAuthApps {
        &self.oauth
    }

    /// Whether a connector can be used here: password connectors always, OAuth ones once
    /// the operator configured their app.
    pub fn configured(&self, kind: &str) -> bool {
        match self.get(kind) {
            Some(c) if c.oauth().is_some() => self.oauth.get(kind).is_some(),
            Some(_) => true,
            None => false,
        }
    }

    /// The connectors Concierge ships with: any IMAP/SMTP server, Gmail with an app
    /// password, and Gmail and Outlook by OAuth (usable once their client ids are set); for
    /// calendars, any CalDAV server, iCloud, and Google's and Microsoft's calendars.
    pub fn builtin(imap: ImapOptions, config: &Config) -> anyhow::Result<Registry> {
        let mut registry = Registry::default();
        // CONCIERGE_GMAIL_IMAP/SMTP point Gmail elsewhere, whichever way users sign in.
        let gmail_imap = endpoint(config.gmail_imap.as_deref(), Security::SslTls, "CONCIERGE_GMAIL_IMAP")?;
        let gmail_smtp = endpoint(config.gmail_smtp.as_deref(), Security::SslTls, "CONCIERGE_GMAIL_SMTP")?;
        registry.register(Arc::new(ImapSmtpConnector::generic(imap.clone()))).register(Arc::new(ImapSmtpConnector::gmail_app_password_at(
            imap.clone(),
            gmail_imap.clone(),
            gmail_smtp.clone(),
        )));
        let gmail = concierge_connector_gmail::connector(imap.clone(), gmail_imap, gmail_smtp);
        let outlook = concierge_connector_outlook::connector(
            imap.clone(),
            endpoint(config.outlook_imap.as_deref(), Security::SslTls, "CONCIERGE_OUTLOOK_IMAP")?,
            endpoint(config.outlook_smtp.as_deref(), Security::StartTls, "CONCIERGE_OUTLOOK_SMTP")?,
        );
        let mut apps = HashMap::new();
        let configured = [
            (
                gmail.oauth().cloned(),
                &config.gmail_client_id,
                &config.gmail_client_secret,
                [&config.gmail_authorize_url, &config.gmail_token_url, &config.gmail_userinfo_url],
            ),
            (
                outlook.oauth().cloned(),
                &config.outlook_client_id,
                &config.outlook_client_secret,
                [&config.outlook_authorize_url, &config.outlook_token_url, &config.outlook_userinfo_url],
            ),
        ];
        let kinds = [gmail.descriptor().kind, outlook.descriptor().kind];
        for ((provider, id, secret, [authorize, token, userinfo]), kind) in configured.into_iter().zip(kinds) {
            let (Some(mut provider), Some(id)) = (provider, id.as_ref().filter(|i| !i.trim().is_empty())) else { continue };
            override_url(&mut provider.authorize_url, authorize);
            override_url(&mut provider.token_url, token);
            override_url(&mut provider.userinfo_url, userinfo);
            apps.insert(
                kind.to_owned(),
                OAuthApp { provider, client_id: id.trim().to_owned(), client_secret: secret.as_ref().map(|s| s.0.clone()) },
            );
        }
        registry.register(Arc::new(gmail)).register(Arc::new(outlook));
        registry.serve(concierge_connector_gmail::KIND, &["gmail.com", "googlemail.com"]);
        registry.serve("outlook", &["outlook.com", "hotmail.com", "live.com", "msn.com"]);
        // The presets: built in, and the operator's file (CONCIERGE_PROVIDERS_FILE).
        let providers = super::providers::load(config.providers_file.as_deref())?;
        for provider in &providers.mail {
            let (connector, app) = preset_connector(provider, imap.clone())?;
            let kind = connector.descriptor().kind;
            if let Some(app) = app {
                apps.insert(kind.to_owned(), app);
            }
            registry.register(Arc::new(connector));
            let domains: Vec<&str> = provider.domains.iter().map(String::as_str).collect();
            registry.serve(kind, &domains);
        }
        // Calendars: any CalDAV server and iCloud by password; Google (CalDAV) and Microsoft
        // (Graph) through the same OAuth grant as their mailboxes.
        let caldav = CaldavOptions {
            extra_root_certs_pem: imap.extra_root_certs_pem.clone(),
            allow_plaintext_remote: imap.allow_plaintext_remote,
            outbound: imap.outbound.clone(),
            ..CaldavOptions::default()
        };
        registry
            .register_calendar(Arc::new(CaldavConnector::generic(caldav.clone())))
            .register_calendar(Arc::new(CaldavConnector::google(non_empty(&config.gmail_caldav_url))))
            .register_calendar(Arc::new(concierge_connector_outlook::calendar_connector(non_empty(&config.outlook_graph_url))));
        // Calendar presets (iCloud, Fastmail, …, and the operator's): their URLs are the
        // operator's configuration, like mail presets' servers, so not held to the policy
        // user-typed URLs are.
        let preset_options = CaldavOptions { outbound: OutboundPolicy::operator_configured(), ..caldav };
        for provider in providers.calendar {
            let kind: &'static str = Box::leak(provider.kind.into_boxed_str());
            let preset = CaldavPreset::fixed(kind, &provider.label, provider.help, &provider.url);
            registry.register_calendar(Arc::new(CaldavConnector::preset(preset, preset_options.clone())));
            let mut domains = provider.domains;
            domains.sort_unstable();
            registry.calendar_domains.insert(kind, domains);
        }
        let state_ttl = std::time::Duration::from_secs(u64::from(config.oauth_state_minutes.max(1)) * 60);
        registry.oauth = OAuthApps::new(apps, &config.public_url(), state_ttl)?;
        Ok(registry)
    }
}

/// One preset as an IMAP/SMTP connector with fixed servers, and its OAuth app when it signs
/// in with OAuth2 and the operator set the app's client id.
fn preset_connector(p: &MailProvider, options: ImapOptions) -> anyhow::Result<(ImapSmtpConnector, Option<OAuthApp>)> {
    let security = |s: &str| match s {
        "STARTTLS" => Security::StartTls,
        "NONE" => Security::None,
        _ => Security::SslTls,
    };
    let endpoint = |e: &ServerEntry| Endpoint { host: e.host.trim().to_owned(), port: e.port, security: security(&e.security) };
    // Presets are read once, at start, and live as long as the process: their kinds are
    // leaked to the `&'static str` every descriptor carries.
    let kind: &'static str = Box::leak(p.kind.clone().into_boxed_str());
    let oauth = p.oauth.as_ref().map(|o| OAuthProvider {
        name: o.provider.clone().unwrap_or_else(|| p.label.clone()),
        authorize_url: o.authorize_url.clone(),
        token_url: o.token_url.clone(),
        userinfo_url: o.userinfo_url.clone(),
        scopes: o.scopes.clone(),
        extra_authorize_params: Vec::new(),
    });
    let app = match (&oauth, &p.oauth) {
        (Some(provider), Some(o)) => std::env::var(&o.client_id_env).ok().filter(|id| !id.trim().is_empty()).map(|id| OAuthApp {
            provider: provider.clone(),
            client_id: id.trim().to_owned(),
            client_secret: o.client_secret_env.as_ref().and_then(|name| std::env::var(name).ok()),
        }),
        _ => None,
    };
    let descriptor = Descriptor {
        kind,
        display_name: p.label.clone(),
        auth: if oauth.is_some() { AuthMethod::OAuth2 } else { AuthMethod::Password },
        capabilities: Capabilities { send: true, provider_saves_sent: p.keeps_sent_mail, calendars: false },
        fields: Vec::new(),
        help: p.help.clone(),
    };
    let preset = Preset { descriptor, oauth, imap: endpoint(&p.imap), smtp: endpoint(&p.smtp), gmail_extensions: false };
    Ok((ImapSmtpConnector::preset(preset, options), app))
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn override_url(url: &mut String, configured: &Option<String>) {
    if let Some(c) = configured.as_ref().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        *url = c.to_owned();
    }
}

/// `host:port` from the configuration, with the provider's TLS mode.
fn endpoint(value: Option<&str>, security: Security, name: &str) -> anyhow::Result<Option<Endpoint>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let (host, port) = value.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("{name} must be host:port, not {value:?}"))?;
    let port: u16 = port.parse().map_err(|_| anyhow::anyhow!("{name} has no valid port: {value:?}"))?;
    if host.is_empty() {
        anyhow::bail!("{name} has no host: {value:?}");
    }
    Ok(Some(Endpoint { host: host.to_owned(), port, security }))
}
