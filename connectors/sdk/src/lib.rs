//! The seam between Concierge and its connectors.
//!
//! A connector is a plug-in that knows one kind of mail (or calendar, see [`calendar`]) account (an IMAP/SMTP server, Gmail,
//! Outlook, a partner's own system). It implements [`MailConnector`]: it describes itself and
//! its connect form ([`Descriptor`]), validates settings, opens a [`MailSession`] that lists,
//! fetches and waits for messages, and sends mail. It never touches Concierge's database: it
//! hands back raw messages and opaque [`Checkpoint`]s, and the gateway parses, stores and
//! deduplicates them. Errors are typed ([`ConnectorError`]) so the gateway knows whether to
//! retry, back off, resync or ask the user to re-authorise.
//!
//! This crate does not depend on the gateway. The [`kit`] module is a conformance suite a
//! connector runs against a real server to show it behaves.

mod account;
pub mod calendar;
mod descriptor;
mod error;
pub mod ical;
pub mod kit;
mod oauth;
pub mod outbound;
mod session;
pub mod trust;

pub use account::{AccessTokenSource, Account, Credentials, Secret};
pub use calendar::{
    CalendarChanges, CalendarConnector, CalendarObject, CalendarSession, KnownObject, RemoteCalendar, SharedCalendarConnector, SyncToken,
    WriteReceipt,
};
pub use descriptor::{AuthMethod, Capabilities, Choice, Descriptor, Field, FieldKind, Settings};
pub use error::{CONNECTION_REFUSED, ConnectorError, Disposition, FieldError};
pub use oauth::OAuthProvider;
pub use outbound::{OutboundError, OutboundPolicy, Refusal};
pub use session::{Checkpoint, MailSession, MessageRef, Outgoing, RawMessage, SendReceipt, Wake};

pub use async_trait::async_trait;

use std::sync::Arc;

/// A kind of mail account Concierge can sync: the one trait a partner implements.
///
/// ```ignore
/// registry.register(Arc::new(MyConnector::default()));
/// ```
#[async_trait]
pub trait MailConnector: Send + Sync + 'static {
    /// What this connector is and the form that connects an account with it.
    fn descriptor(&self) -> &Descriptor;

    /// Checks settings as the user filled in the form, and returns them complete (defaults
    /// filled in). The default checks them against the descriptor's fields; override to add
    /// checks of your own, calling [`Descriptor::validate`] first.
    fn validate(&self, settings: &Settings) -> Result<Settings, FieldError> {
        self.descriptor().validate(settings)
    }

    /// Connects and signs in. The gateway calls this when a user connects a mailbox (a wrong
    /// password, host, port or TLS type must fail here, typed) and whenever it (re)starts a
    /// sync. `account.settings` has been through [`MailConnector::validate`].
    async fn open(&self, account: &Account) -> Result<Box<dyn MailSession>, ConnectorError>;

    /// Sends one message through the account (SMTP, or the provider's API). `raw` is the
    /// whole RFC 5322 message; the envelope recipients are `message.recipients` (Bcc
    /// included). Connectors that cannot send keep the default.
    async fn send(&self, account: &Account, message: Outgoing<'_>) -> Result<SendReceipt, ConnectorError> {
        let _ = (account, message);
        Err(ConnectorError::Unsupported { what: "sending".into() })
    }

    /// Checks the sending side without sending anything: for SMTP, connect, TLS, EHLO and
    /// AUTH, then QUIT. The gateway calls it when a user connects a mailbox that can send,
    /// after [`MailConnector::open`] succeeded, so a wrong SMTP port, TLS type or password is
    /// refused then rather than at the first send. Connectors that cannot send, or have
    /// nothing to check, keep the default.
    async fn check_send(&self, account: &Account) -> Result<(), ConnectorError> {
        let _ = account;
        Ok(())
    }

    /// The OAuth2 provider a connector with [`AuthMethod::OAuth2`] signs in with; `None`
    /// for password connectors.
    fn oauth(&self) -> Option<&OAuthProvider> {
        None
    }
}

/// Shorthand for a connector shared across the gateway.
pub type SharedConnector = Arc<dyn MailConnector>;
