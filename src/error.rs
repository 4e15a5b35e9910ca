//! The gateway's one error vocabulary. Every failure a client can see is one of these
//! variants, and each maps to exactly one `extensions.code`.

use std::borrow::Cow;

use async_graphql::ErrorExtensions as _;

/// A rule of the password policy that a candidate password does not meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum PasswordRule {
    /// Shorter than the minimum length.
    MinLength,
    /// Longer than the maximum length (in characters or in bytes).
    MaxLength,
    /// No uppercase letter.
    Uppercase,
    /// No digit.
    Digit,
    /// No special character.
    Special,
    /// Contains the email address or a name of the account.
    ContainsPersonalData,
    /// Among the most common passwords, or otherwise guessed quickly (offline estimate).
    TooCommon,
    /// The new password and its confirmation differ.
    ConfirmationMismatch,
}

/// Deliberately not `Display`: async-graphql converts any `Display` type into an error that
/// keeps only its text, so this type converts through its own `From`, keeping its code.
#[derive(Debug)]
pub enum Error {
    /// No valid session or token accompanied the request.
    Unauthenticated,
    /// The caller is known but not allowed to do this.
    Forbidden(Cow<'static, str>),
    /// A field of the input is malformed or breaks a rule.
    Invalid { field: Cow<'static, str>, message: Cow<'static, str> },
    /// A password breaks the policy: every unmet rule is listed at once.
    WeakPassword { field: &'static str, unmet: Vec<PasswordRule> },
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound(&'static str),
    /// The change clashes with existing data, e.g. an email already in use.
    Conflict { field: Cow<'static, str>, message: Cow<'static, str> },
    /// Too many attempts; retry later.
    RateLimited { retry_after_secs: u64 },
    /// A connected account's server (mail or calendar) refused or failed the connection.
    /// `code` says how (`AUTHENTICATION_FAILED`, `UNREACHABLE`, `TLS_FAILED`, `PROTOCOL_ERROR`,
    /// `THROTTLED`), and `field` names the input most likely at fault.
    Connector { code: &'static str, field: Cow<'static, str>, message: String },
    /// Anything else. Its details are logged, never shown.
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Error::Invalid { field: field.into(), message: message.into() }
    }

    pub fn conflict(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Error::Conflict { field: field.into(), message: message.into() }
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Error::Forbidden(message.into())
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            Error::Unauthenticated => "sign in first".into(),
            Error::Forbidden(m) => m.to_string(),
            Error::Invalid { message, .. } | Error::Conflict { message, .. } => message.to_string(),
            Error::WeakPassword { .. } => "the password does not meet the policy".into(),
            Error::NotFound(what) => format!("{what} not found"),
            Error::RateLimited { .. } => "too many attempts, try again later".into(),
            Error::Connector { message, .. } => message.clone(),
            Error::Internal(_) => "internal error".into(),
        }
    }

    /// The stable code clients branch on (`extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::Invalid { .. } | Error::WeakPassword { .. } => "BAD_USER_INPUT",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Conflict { .. } => "CONFLICT",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Connector { code, .. } => code,
            Error::Internal(_) => "INTERNAL",
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Self {
        Error::Internal(err)
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Error::Internal(anyhow::Error::new(err))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Self {
        Error::Internal(anyhow::Error::new(err))
    }
}

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        if let Error::Internal(inner) = &err {
            // The one place an internal error is logged: inside the request's span, so the
            // line carries the request id. The client only learns that it happened.
            tracing::error!(error = format!("{inner:#}"), "internal error");
        }
        let code = err.code();
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code);
            match &err {
                Error::Invalid { field, .. } | Error::Conflict { field, .. } | Error::Connector { field, .. } => {
                    ext.set("field", field.as_ref())
                }
                Error::WeakPassword { field, unmet } => {
                    ext.set("field", *field);
                    let unmet: Vec<async_graphql::Value> = unmet
                        .iter()
                        .map(|r| async_graphql::Value::Enum(async_graphql::Name::new(crate::db::StoredEnum::stored_name(*r))))
                        .collect();
                    ext.set("unmet", async_graphql::Value::List(unmet));
                }
                Error::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
                _ => {}
            }
        })
    }
}
