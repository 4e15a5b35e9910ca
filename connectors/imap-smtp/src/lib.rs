//! Concierge's IMAP/SMTP connector: any IMAP server for receiving (read-only, IDLE when the
//! server has it) and its SMTP server for sending, plus a Gmail-by-app-password preset that
//! asks only for the SMTP type.
//!
//! ```ignore
//! let imap = ImapSmtpConnector::generic(Options::default());
//! let gmail = ImapSmtpConnector::gmail_app_password(Options::default());
//! registry.register(Arc::new(imap));
//! ```
//!
//! Layout: [`settings`] (the forms and the resolved [`ServerSettings`]), `tls` (rustls
//! with ring), `connect` and `session` (IMAP), `smtp` (lettre), `wire` (pure wire↔type
//! mapping) and `classify` (every error becomes a typed [`ConnectorError`] there).

mod classify;
mod connect;
mod session;
pub mod settings;
mod smtp;
mod tls;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use concierge_connector_sdk::{
    Account, ConnectorError, Descriptor, FieldError, MailConnector, MailSession, Outgoing,
    SendReceipt, Settings, async_trait,
};

pub use settings::{Endpoint, Security, ServerSettings};

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
        }
    }
}

/// What every session and send of one connector shares.
pub(crate) struct Context {
    pub options: Options,
    /// The TLS configuration, or why it could not be built (a bad extra root bundle); the
    /// error surfaces on every connect as [`ConnectorError::Tls`].
    pub tls: Result<tls::TlsSetup, String>,
}

/// The IMAP/SMTP connector. One instance per form: [`ImapSmtpConnector::generic`] (kind
/// `imap`) or [`ImapSmtpConnector::gmail_app_password`] (kind `gmail-password`).
pub struct ImapSmtpConnector {
    flavor: Flavor,
    descriptor: Descriptor,
    ctx: Arc<Context>,
}

impl fmt::Debug for ImapSmtpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSmtpConnector")
            .field("kind", &self.descriptor.kind)
            .field("options", &self.ctx.options)
            .finish()
    }
}

impl ImapSmtpConnector {
    /// Any IMAP and SMTP server: the user enters hosts, security types, ports.
    pub fn generic(options: Options) -> ImapSmtpConnector {
        ImapSmtpConnector::new(Flavor::Generic, options)
    }

    /// Gmail with an app password: imap.gmail.com:993 and smtp.gmail.com (465 or 587); the
    /// user picks only the SMTP type.
    pub fn gmail_app_password(options: Options) -> ImapSmtpConnector {
        ImapSmtpConnector::new(Flavor::GmailPassword, options)
    }

    fn new(flavor: Flavor, options: Options) -> ImapSmtpConnector {
        let tls = tls::setup(options.extra_root_certs_pem.as_deref());
        if let Err(why) = &tls {
            tracing::warn!(
                kind = flavor.descriptor().kind,
                "IMAP/SMTP connector TLS setup failed: {why}"
            );
        }
        ImapSmtpConnector {
            flavor,
            descriptor: flavor.descriptor(),
            ctx: Arc::new(Context { options, tls }),
        }
    }

    /// The servers validated settings resolve to (for display, and for tests).
    pub fn server_settings(&self, settings: &Settings) -> Result<ServerSettings, FieldError> {
        self.flavor
            .resolve(settings, self.ctx.options.allow_plaintext_remote)
    }

    /// The sign-in name: the form's `username` if set, else the credentials' user name, else
    /// the email address.
    fn login(resolved: &ServerSettings, account: &Account) -> String {
        resolved
            .username
            .clone()
            .or_else(|| {
                Some(account.credentials.username().trim().to_owned()).filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| account.address.trim().to_owned())
    }
}

#[async_trait]
impl MailConnector for ImapSmtpConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    fn validate(&self, settings: &Settings) -> Result<Settings, FieldError> {
        self.flavor.validate(
            &self.descriptor,
            settings,
            self.ctx.options.allow_plaintext_remote,
        )
    }

    async fn open(&self, account: &Account) -> Result<Box<dyn MailSession>, ConnectorError> {
        let resolved = self
            .server_settings(&account.settings)
            .map_err(ConnectorError::Settings)?;
        let target = connect::Target {
            login: ImapSmtpConnector::login(&resolved, account),
            endpoint: resolved.imap,
            folder: resolved.folder,
            credentials: account.credentials.clone(),
        };
        let session = session::ImapSession::open(Arc::clone(&self.ctx), target).await?;
        Ok(Box::new(session))
    }

    async fn send(
        &self,
        account: &Account,
        message: Outgoing<'_>,
    ) -> Result<SendReceipt, ConnectorError> {
        let resolved = self
            .server_settings(&account.settings)
            .map_err(ConnectorError::Settings)?;
        let login = ImapSmtpConnector::login(&resolved, account);
        let response = smtp::send(
            &self.ctx,
            &resolved.smtp,
            &login,
            &account.credentials,
            message,
        )
        .await?;
        Ok(SendReceipt {
            response,
            saved_to_sent: self.descriptor.capabilities.provider_saves_sent,
        })
    }
}
