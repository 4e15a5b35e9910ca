//! Concierge's IMAP/SMTP connector: any IMAP server for receiving (the configured folder
//! and the Sent folder, read-only, IDLE when the server has it) and its SMTP server for
//! sending, plus a Gmail-by-app-password form that asks only for the SMTP type, and
//! [`Preset`]s, on which provider crates (Gmail, Outlook by OAuth2) build.
//!
//! ```ignore
//! let imap = ImapSmtpConnector::generic(Options::default());
//! let gmail = ImapSmtpConnector::gmail_app_password(Options::default());
//! registry.register(Arc::new(imap));
//! ```
//!
//! Layout: [`settings`] (the forms and the resolved [`ServerSettings`]), `tls` (rustls
//! with ring), `connect` (reaching and signing in), `conn` (one connection's commands),
//! `session` (listing, fetching, waiting), `sent` (finding the Sent folder, keeping copies),
//! `smtp` (lettre), `checkpoint` and `wire` (pure wire↔type mapping) and `classify` (every
//! error becomes a typed [`ConnectorError`] there).

mod checkpoint;
mod classify;
mod conn;
mod connect;
mod sent;
mod session;
pub mod settings;
mod smtp;
mod tls;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use concierge_connector_sdk::{
    Account, ConnectorError, Descriptor, FieldError, MailConnector, MailSession, OAuthProvider, OutboundPolicy, Outgoing, SendReceipt,
    Settings, async_trait,
};

pub use settings::{Endpoint, Security, ServerSettings};

/// The kind of the generic IMAP/SMTP connector (any server, its form asks for the servers).
pub const GENERIC_KIND: &str = "imap";

use settings::Flavor;

/// How an [`ImapSmtpConnector`] behaves, set by the operator (not by users).
#[derive(Clone, Debug)]
pub struct Options {
    /// A PEM bundle trusted in addition to the webpki roots (a company CA, a test server's
    /// self-signed certificate).
    pub extra_root_certs_pem: Option<Vec<u8>>,
    /// Allow the `NONE` security type to hosts other than loopback. Off by default: it sends
    /// passwords and mail in clear.
    pub allow_plaintext_remote: bool,
    /// How long one IMAP IDLE runs before it is renewed (RFC 2177: under 29 minutes).
    pub idle_renew: Duration,
    /// How often a server without IDLE is polled.
    pub poll_interval: Duration,
    /// Budget for TCP connect, TLS handshake and the greeting, each.
    pub connect_timeout: Duration,
    /// Budget for each command step (and each read of a long FETCH).
    pub command_timeout: Duration,
    /// How often a waiting session looks at the Sent folder (a STATUS), since IDLE watches
    /// only the configured folder. Mail sent from another client shows within this.
    pub sent_check_interval: Duration,
    /// Which addresses hosts the user typed may resolve to (public ones only by default).
    /// A [`Preset`]'s servers come from the operator and are not checked.
    pub outbound: OutboundPolicy,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            extra_root_certs_pem: None,
            allow_plaintext_remote: false,
            idle_renew: Duration::from_secs(25 * 60),
            poll_interval: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
            command_timeout: Duration::from_secs(60),
            sent_check_interval: Duration::from_secs(5 * 60),
            outbound: OutboundPolicy::strict(),
        }
    }
}

/// What every session and send of one connector shares.
pub(crate) struct Context {
    pub options: Options,
    /// The TLS configuration, or why it could not be built (a bad extra root bundle); the
    /// error surfaces on every connect as [`ConnectorError::Tls`].
    pub tls: Result<tls::TlsSetup, String>,
    /// Use Gmail's message ids (X-GM-MSGID) when the server offers X-GM-EXT-1.
    pub gmail_extensions: bool,
}

/// A provider whose servers are known: fixed IMAP and SMTP endpoints, sign-in with OAuth2
/// (XOAUTH2 on both) or a password, nothing for the user to fill in. A provider crate builds one and turns
/// it into a connector with [`ImapSmtpConnector::preset`]:
///
/// ```ignore
/// let connector = ImapSmtpConnector::preset(concierge_connector_gmail::preset(), options);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Preset {
    /// What the connector is. `auth` is [`concierge_connector_sdk::AuthMethod::OAuth2`] and
    /// `fields` is normally empty (settings `{}`). `capabilities.provider_saves_sent` says
    /// whether the provider keeps sent mail in the Sent folder itself; when it does not,
    /// the connector APPENDs a copy after each send.
    pub descriptor: Descriptor,
    /// The OAuth2 provider the gateway signs users in with ([`MailConnector::oauth`]); `None`
    /// for a provider whose users sign in with a password (usually an app password).
    pub oauth: Option<OAuthProvider>,
    pub imap: Endpoint,
    pub smtp: Endpoint,
    /// Gmail: when the server has X-GM-EXT-1, message ids are `gm/<X-GM-MSGID>`, so a
    /// message in both INBOX and Sent (two labels) is one message.
    pub gmail_extensions: bool,
}

impl Preset {
    /// The same provider with its servers replaced where given: how an operator's
    /// configuration (or a test) points a provider's connector at other servers.
    pub fn with_servers(mut self, imap: Option<Endpoint>, smtp: Option<Endpoint>) -> Preset {
        if let Some(imap) = imap {
            self.imap = imap;
        }
        if let Some(smtp) = smtp {
            self.smtp = smtp;
        }
        self
    }
}

/// The IMAP/SMTP connector. One instance per form: [`ImapSmtpConnector::generic`] (kind
/// `imap`), [`ImapSmtpConnector::gmail_app_password`] (kind `gmail-password`) or a provider
/// [`ImapSmtpConnector::preset`].
pub struct ImapSmtpConnector {
    flavor: Flavor,
    descriptor: Descriptor,
    oauth: Option<OAuthProvider>,
    ctx: Arc<Context>,
}

impl fmt::Debug for ImapSmtpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSmtpConnector").field("kind", &self.descriptor.kind).field("options", &self.ctx.options).finish()
    }
}

impl ImapSmtpConnector {
    /// Any IMAP and SMTP server: the user enters hosts, security types, ports.
    pub fn generic(options: Options) -> ImapSmtpConnector {
        ImapSmtpConnector::new(Flavor::Generic, settings::generic_descriptor(), None, false, options)
    }

    /// Gmail with an app password: imap.gmail.com:993 and smtp.gmail.com (465 or 587); the
    /// user picks only the SMTP type.
    ///
    /// Its ids stay `FOLDER/UIDVALIDITY/UID` (no Gmail ids), so accounts connected before
    /// keep theirs.
    pub fn gmail_app_password(options: Options) -> ImapSmtpConnector {
        ImapSmtpConnector::gmail_app_password_at(options, None, None)
    }

    /// Gmail with an app password, at the servers the operator configured instead of
    /// Google's where given (a relay, or a test lab standing in for Gmail). The user's SMTP
    /// choice applies only to Google's own SMTP server.
    pub fn gmail_app_password_at(options: Options, imap: Option<Endpoint>, smtp: Option<Endpoint>) -> ImapSmtpConnector {
        ImapSmtpConnector::new(Flavor::GmailPassword { imap, smtp }, settings::gmail_password_descriptor(), None, false, options)
    }

    /// A provider's fixed servers, signed in with OAuth2 (Gmail, Outlook) or a password (the
    /// gateway's configured presets): see [`Preset`].
    /// Settings are the descriptor's fields only (normally none: `{}`).
    pub fn preset(preset: Preset, options: Options) -> ImapSmtpConnector {
        ImapSmtpConnector::new(
            Flavor::Fixed { imap: preset.imap, smtp: preset.smtp },
            preset.descriptor,
            preset.oauth,
            preset.gmail_extensions,
            options,
        )
    }

    fn new(
        flavor: Flavor,
        descriptor: Descriptor,
        oauth: Option<OAuthProvider>,
        gmail_extensions: bool,
        options: Options,
    ) -> ImapSmtpConnector {
        let tls = tls::setup(options.extra_root_certs_pem.as_deref());
        if let Err(why) = &tls {
            tracing::warn!(kind = descriptor.kind, "IMAP/SMTP connector TLS setup failed: {why}");
        }
        ImapSmtpConnector { flavor, descriptor, oauth, ctx: Arc::new(Context { options, tls, gmail_extensions }) }
    }

    /// The servers validated settings resolve to (for display, and for tests).
    pub fn server_settings(&self, settings: &Settings) -> Result<ServerSettings, FieldError> {
        self.flavor.resolve(settings, self.ctx.options.allow_plaintext_remote)
    }

    /// The policy the servers of an account are reached under: a preset's servers were
    /// configured by the operator; any other host was typed by a user (Gmail by app password
    /// included: its hosts are fixed, but nothing is lost by checking them).
    fn outbound(&self) -> OutboundPolicy {
        match self.flavor {
            Flavor::Fixed { .. } => OutboundPolicy::operator_configured(),
            // Servers the operator put in place of Google's are theirs to allow.
            Flavor::GmailPassword { ref imap, ref smtp } if imap.is_some() || smtp.is_some() => OutboundPolicy::operator_configured(),
            Flavor::Generic | Flavor::GmailPassword { .. } => self.ctx.options.outbound.clone(),
        }
    }

    /// Checks that both servers resolve to addresses the policy allows, without connecting
    /// to either: a refused host is the settings field that names it.
    async fn check_servers(&self, resolved: &ServerSettings) -> Result<(), ConnectorError> {
        let policy = self.outbound();
        for (field, endpoint) in [("imapHost", &resolved.imap), ("smtpHost", &resolved.smtp)] {
            if let Err(concierge_connector_sdk::OutboundError::Refused(refusal)) = policy.resolve(&endpoint.host, endpoint.port).await {
                return Err(ConnectorError::Settings(FieldError::new(field, refusal.to_string())));
            }
        }
        Ok(())
    }

    /// The sign-in name: the form's `username` if set, else the credentials' user name, else
    /// the email address.
    fn login(resolved: &ServerSettings, account: &Account) -> String {
        resolved
            .username
            .clone()
            .or_else(|| Some(account.credentials.username().trim().to_owned()).filter(|u| !u.is_empty()))
            .unwrap_or_else(|| account.address.trim().to_owned())
    }
}

#[async_trait]
impl MailConnector for ImapSmtpConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn validate(&self, settings: &Settings) -> Result<Settings, FieldError> {
        self.flavor.validate(&self.descriptor, settings, self.ctx.options.allow_plaintext_remote)
    }

    async fn open(&self, account: &Account) -> Result<Box<dyn MailSession>, ConnectorError> {
        let resolved = self.server_settings(&account.settings).map_err(ConnectorError::Settings)?;
        // Both servers before either is connected to: opening is how a mailbox is checked
        // when it is connected, and a refused SMTP host must not wait for its first send.
        self.check_servers(&resolved).await?;
        let target = connect::Target {
            login: ImapSmtpConnector::login(&resolved, account),
            endpoint: resolved.imap,
            folder: resolved.folder,
            sent_folder: resolved.sent_folder,
            credentials: account.credentials.clone(),
            outbound: self.outbound(),
            pins: resolved.pins.clone(),
        };
        let session = session::ImapSession::open(Arc::clone(&self.ctx), target).await?;
        Ok(Box::new(session))
    }

    /// Signs in at the SMTP server (connect, TLS, EHLO, AUTH) and quits, sending nothing.
    async fn check_send(&self, account: &Account) -> Result<(), ConnectorError> {
        let resolved = self.server_settings(&account.settings).map_err(ConnectorError::Settings)?;
        let login = ImapSmtpConnector::login(&resolved, account);
        let smtp = smtp::Server { endpoint: &resolved.smtp, pins: &resolved.pins };
        smtp::check(&self.ctx, &self.outbound(), smtp, &login, &account.credentials).await
    }

    /// Sends over SMTP; then, unless the provider keeps sent mail itself, APPENDs the same
    /// bytes (marked read) to the Sent folder. A failed copy is a warning in the receipt,
    /// never an error: the mail went out. A failed send appends nothing.
    async fn send(&self, account: &Account, message: Outgoing<'_>) -> Result<SendReceipt, ConnectorError> {
        let resolved = self.server_settings(&account.settings).map_err(ConnectorError::Settings)?;
        let login = ImapSmtpConnector::login(&resolved, account);
        let smtp = smtp::Server { endpoint: &resolved.smtp, pins: &resolved.pins };
        let response = smtp::send(&self.ctx, &self.outbound(), smtp, &login, &account.credentials, message).await?;
        if self.descriptor.capabilities.provider_saves_sent {
            return Ok(SendReceipt { response, saved_to_sent: true, sent_copy_error: None });
        }
        let target = connect::Target {
            login,
            endpoint: resolved.imap,
            folder: resolved.folder,
            sent_folder: resolved.sent_folder,
            credentials: account.credentials.clone(),
            outbound: self.outbound(),
            pins: resolved.pins.clone(),
        };
        let copy = sent::save_copy(&self.ctx, &target, message.sent_copy.unwrap_or(message.raw)).await;
        Ok(SendReceipt { response, saved_to_sent: copy.is_ok(), sent_copy_error: copy.err() })
    }

    fn oauth(&self) -> Option<&OAuthProvider> {
        self.oauth.as_ref()
    }
}
