use std::time::Duration;

/// A setting the user must correct, named by its form key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// What went wrong talking to the account, typed so the gateway knows what to do next
/// ([`ConnectorError::disposition`]). Messages are for people; they must never contain a
/// password, a token or mail content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The server refused the credentials (wrong password, revoked token).
    #[error("authentication failed: {message}")]
    Authentication { message: String },
    /// The server could not be reached (DNS, refused, reset, timed out).
    #[error("server unreachable: {message}")]
    Unreachable { message: String },
    /// The TLS handshake failed (wrong TLS type for the port, untrusted certificate).
    #[error("TLS failed: {message}")]
    Tls { message: String },
    /// The server's certificate is not trusted (unknown issuer, another host's name,
    /// expired). `certificate` is what it presented, for the user to check with the server's
    /// operator and pin (the connector's `tlsCertificateSha256` setting).
    #[error("TLS failed: {message}")]
    UntrustedCertificate { message: String, certificate: Box<crate::trust::PresentedCertificate> },
    /// The server answered something the connector did not expect.
    #[error("protocol error: {message}")]
    Protocol { message: String },
    /// The server asked us to slow down.
    #[error("throttled by the server: {message}")]
    Throttled { retry_after: Option<Duration>, message: String },
    /// The checkpoint no longer means anything (IMAP UIDVALIDITY changed): list again from
    /// the sync-from date. The gateway's Message-ID dedupe keeps events unique.
    #[error("checkpoint no longer valid: {message}")]
    CheckpointReset { message: String },
    /// The server refused this message for good (SMTP 5xx on a recipient or the content):
    /// sending it again cannot succeed, but the account itself is fine.
    #[error("message rejected: {message}")]
    Rejected { message: String },
    /// A setting is wrong (found while connecting, not by form validation).
    #[error("{0}")]
    Settings(FieldError),
    /// The connector does not do this.
    #[error("not supported by this connector: {what}")]
    Unsupported { what: String },
    /// What was asked for no longer exists on the server (a calendar deleted there).
    #[error("no longer on the server: {what}")]
    Gone { what: String },
    /// A write was refused because the object changed on the server since it was read (a
    /// stale ETag): read it again, then decide what to write.
    #[error("changed on the server meanwhile: {message}")]
    Conflict { message: String },
}

/// What the gateway does after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Reconnect after a backoff that grows with each failure.
    BackOff,
    /// Wait at least this long (or the backoff, if longer).
    WaitAtLeast(Duration),
    /// Stop and ask the user to sign in again.
    Reauthorize,
    /// Forget the checkpoint and list again from the sync-from date (after a conflicting
    /// write: read the object again before writing).
    Resync,
    /// Stop: the settings must change first.
    Fix,
    /// Give this message up (tell the sender); carry on with the account.
    GiveUp,
}

/// What an [`ConnectorError::Unreachable`] message says when the host answered but nothing
/// listens on the port (TCP connection refused): the gateway then names the port, not the
/// host, as the setting at fault. Connectors put it in their message for that case.
pub const CONNECTION_REFUSED: &str = "connection refused";

impl ConnectorError {
    /// Whether the server's host answered but refused the connection on the port.
    pub fn is_connection_refused(&self) -> bool {
        matches!(self, ConnectorError::Unreachable { message } if message.to_ascii_lowercase().contains(CONNECTION_REFUSED))
    }

    pub fn disposition(&self) -> Disposition {
        match self {
            ConnectorError::Authentication { .. } => Disposition::Reauthorize,
            ConnectorError::Unreachable { .. }
            | ConnectorError::Protocol { .. }
            | ConnectorError::Tls { .. }
            | ConnectorError::UntrustedCertificate { .. } => Disposition::BackOff,
            ConnectorError::Throttled { retry_after, .. } => Disposition::WaitAtLeast(retry_after.unwrap_or(Duration::from_secs(60))),
            ConnectorError::CheckpointReset { .. } | ConnectorError::Conflict { .. } => Disposition::Resync,
            ConnectorError::Settings(_) | ConnectorError::Unsupported { .. } | ConnectorError::Gone { .. } => Disposition::Fix,
            ConnectorError::Rejected { .. } => Disposition::GiveUp,
        }
    }

    /// A stable, upper-case code for the error's kind (`AUTHENTICATION_FAILED`, …).
    pub fn code(&self) -> &'static str {
        match self {
            ConnectorError::Authentication { .. } => "AUTHENTICATION_FAILED",
            ConnectorError::Unreachable { .. } => "UNREACHABLE",
            ConnectorError::Tls { .. } | ConnectorError::UntrustedCertificate { .. } => "TLS_FAILED",
            ConnectorError::Protocol { .. } => "PROTOCOL_ERROR",
            ConnectorError::Throttled { .. } => "THROTTLED",
            ConnectorError::CheckpointReset { .. } => "CHECKPOINT_RESET",
            ConnectorError::Settings(_) => "INVALID_SETTINGS",
            ConnectorError::Rejected { .. } => "REJECTED",
            ConnectorError::Unsupported { .. } => "UNSUPPORTED",
            ConnectorError::Gone { .. } => "GONE",
            ConnectorError::Conflict { .. } => "CONFLICT",
        }
    }
}
