//! The connectors this gateway offers, and the OAuth apps the operator registered for the
//! ones that sign in at a provider. Adding a connector is one `register` line in
//! [`Registry::builtin`].
//!
//! Outbound trust: hosts a user types (generic IMAP/SMTP, CalDAV URLs, iCloud's discovered
//! servers) are reached under the outbound policy (`imap.outbound`, `CONCIERGE_OUTBOUND_ALLOW`).
//! What the operator configured here is trusted and not checked: the Gmail and Outlook
//! presets' IMAP/SMTP servers (`ImapSmtpConnector::preset` reaches them with
//! `OutboundPolicy::operator_configured`), their OAuth endpoints (called by the gateway's
//! own OAuth client), Google's CalDAV base URL (`CaldavConnector::google`) and Microsoft
//! Graph (the Outlook calendar connector's own client).

use std::collections::HashMap;
use std::sync::Arc;

use concierge_connector_caldav::{CaldavConnector, Options as CaldavOptions};
use concierge_connector_imap_smtp::{Endpoint, ImapSmtpConnector, Options as ImapOptions, Security};
use concierge_connector_sdk::{MailConnector as _, SharedCalendarConnector, SharedConnector};

use super::oauth::{OAuthApp, OAuthApps};
use crate::config::Config;

#[derive(Clone, Default)]
pub struct Registry {
    connectors: Vec<SharedConnector>,
    calendars: Vec<SharedCalendarConnector>,
    oauth: OAuthApps,
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
        registry
            .register(Arc::new(ImapSmtpConnector::generic(imap.clone())))
            .register(Arc::new(ImapSmtpConnector::gmail_app_password(imap.clone())));
        let gmail = concierge_connector_gmail::connector(
            imap.clone(),
            endpoint(config.gmail_imap.as_deref(), Security::SslTls, "CONCIERGE_GMAIL_IMAP")?,
            endpoint(config.gmail_smtp.as_deref(), Security::SslTls, "CONCIERGE_GMAIL_SMTP")?,
        );
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
            .register_calendar(Arc::new(CaldavConnector::icloud(caldav)))
            .register_calendar(Arc::new(CaldavConnector::google(non_empty(&config.gmail_caldav_url))))
            .register_calendar(Arc::new(concierge_connector_outlook::calendar_connector(non_empty(&config.outlook_graph_url))));
        let state_ttl = std::time::Duration::from_secs(u64::from(config.oauth_state_minutes.max(1)) * 60);
        registry.oauth = OAuthApps::new(apps, &config.public_url(), state_ttl)?;
        Ok(registry)
    }
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
