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

/// Why a field was refused: a stable code a UI can branch on or translate
/// (`extensions.reason`), with the values its message names (`extensions.params`). The message
/// itself follows the caller's language (`locales/*/errors.ftl`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Empty, and a value is needed.
    Required,
    /// Longer than `max` characters.
    TooLong { max: usize },
    /// Contains control characters (line breaks, tabs, escapes).
    ControlCharacters,
    /// Not a phone number in any notation people write.
    NotAPhoneNumber,
    /// Not a language tag, or one no supported language matches.
    UnsupportedLanguage,
    /// Not an IANA time zone name.
    UnknownTimeZone,
    /// Not a time of day (`HH:MM`).
    NotATimeOfDay,
    /// An end that is not after its start.
    EndBeforeStart,
    /// Listed twice.
    Duplicate,
    /// A date before today.
    InThePast,
    /// An interval overlapping another.
    Overlaps,
    /// Anything else: the message says what.
    Invalid,
}

impl Reason {
    /// The stable code (`TOO_LONG`).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Required => "REQUIRED",
            Reason::TooLong { .. } => "TOO_LONG",
            Reason::ControlCharacters => "CONTROL_CHARACTERS",
            Reason::NotAPhoneNumber => "NOT_A_PHONE_NUMBER",
            Reason::UnsupportedLanguage => "UNSUPPORTED_LANGUAGE",
            Reason::UnknownTimeZone => "UNKNOWN_TIME_ZONE",
            Reason::NotATimeOfDay => "NOT_A_TIME_OF_DAY",
            Reason::EndBeforeStart => "END_BEFORE_START",
            Reason::Duplicate => "DUPLICATE",
            Reason::InThePast => "IN_THE_PAST",
            Reason::Overlaps => "OVERLAPS",
            Reason::Invalid => "INVALID",
        }
    }

    /// The values the message names, by their Fluent argument names.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            Reason::TooLong { max } => vec![("max", max.to_string())],
            _ => Vec::new(),
        }
    }

    /// The message in English (the Fluent text of `locales/en/errors.ftl`).
    pub fn english(&self) -> String {
        let args: Vec<(&'static str, String)> = self.params();
        let args: Vec<(&'static str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::i18n::text("en", &self.message_id(), &args)
    }

    /// Its message's id in `errors.ftl`.
    pub fn message_id(&self) -> String {
        format!("error-{}", self.code().to_ascii_lowercase().replace('_', "-"))
    }
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
    Invalid { field: Cow<'static, str>, message: Cow<'static, str>, reason: Reason },
    /// Several fields of one input are refused: all of them are reported at once, each as an
    /// error of its own (every one is `Invalid` or `WeakPassword`).
    Fields(Vec<Error>),
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
    /// A connected account's server presented a certificate nobody trusts (TLS_FAILED).
    /// `certificate` is shown (fingerprint, subject, issuer, why) so the user can check it
    /// with the server's operator and pin it in the account's settings.
    UntrustedCertificate { field: Cow<'static, str>, message: String, certificate: Box<CertificateShown> },
    /// Anything else. Its details are logged, never shown.
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A refused server certificate as a client is shown it (`extensions.certificate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateShown {
    /// SHA-256 over the DER, `AB:CD:…`: what a user pins.
    pub sha256: String,
    pub subject: String,
    pub issuer: String,
    /// Why it was refused.
    pub reason: String,
    /// The settings key that pins it.
    pub pin_setting: &'static str,
}

impl Error {
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Error::Invalid { field: field.into(), message: message.into(), reason: Reason::Invalid }
    }

    /// A field refused for a reason with a stable code; the message is the reason's.
    pub fn because(field: impl Into<Cow<'static, str>>, reason: Reason) -> Self {
        Error::Invalid { field: field.into(), message: reason.english().into(), reason }
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
            Error::Fields(errors) => errors.first().map(Error::message).unwrap_or_default(),
            Error::NotFound(what) => format!("{what} not found"),
            Error::RateLimited { .. } => "too many attempts, try again later".into(),
            Error::Connector { message, .. } | Error::UntrustedCertificate { message, .. } => message.clone(),
            Error::Internal(_) => "internal error".into(),
        }
    }

    /// The stable code clients branch on (`extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::Invalid { .. } | Error::WeakPassword { .. } | Error::Fields(_) => "BAD_USER_INPUT",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Conflict { .. } => "CONFLICT",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Connector { code, .. } => code,
            Error::UntrustedCertificate { .. } => "TLS_FAILED",
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
                Error::Invalid { field, reason, .. } => {
                    ext.set("field", field.as_ref());
                    ext.set("reason", reason.code());
                    let params = reason.params();
                    if !params.is_empty() {
                        ext.set("params", async_graphql::Value::from_json(params_json(&params)).unwrap_or_default());
                    }
                }
                Error::Fields(errors) => {
                    // One error per field: `crate::graphql::errors` spreads these out (each
                    // with the path and locations of the field that failed).
                    ext.set("fieldErrors", async_graphql::Value::List(errors.iter().map(field_entry).collect()));
                }
                Error::Conflict { field, .. } | Error::Connector { field, .. } => ext.set("field", field.as_ref()),
                Error::WeakPassword { field, unmet } => {
                    ext.set("field", *field);
                    let unmet: Vec<async_graphql::Value> = unmet
                        .iter()
                        .map(|r| async_graphql::Value::Enum(async_graphql::Name::new(crate::db::StoredEnum::stored_name(*r))))
                        .collect();
                    ext.set("unmet", async_graphql::Value::List(unmet));
                }
                Error::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
                Error::UntrustedCertificate { field, certificate, .. } => {
                    ext.set("field", field.as_ref());
                    let shown = serde_json::json!({
                        "sha256": certificate.sha256,
                        "subject": certificate.subject,
                        "issuer": certificate.issuer,
                        "reason": certificate.reason,
                        "pinSetting": certificate.pin_setting,
                    });
                    ext.set("certificate", async_graphql::Value::from_json(shown).unwrap_or_default());
                }
                _ => {}
            }
        })
    }
}

fn params_json(params: &[(&'static str, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        params
            .iter()
            .map(|(k, v)| {
                let value = v.parse::<i64>().map(serde_json::Value::from).unwrap_or_else(|_| serde_json::Value::from(v.clone()));
                ((*k).to_owned(), value)
            })
            .collect(),
    )
}

/// One entry of [`Error::Fields`]: the message and extensions its own error would have.
fn field_entry(err: &Error) -> async_graphql::Value {
    use async_graphql::{Name, Value};
    let mut entry = async_graphql::indexmap::IndexMap::new();
    entry.insert(Name::new("message"), Value::String(err.message()));
    entry.insert(Name::new("code"), Value::from(err.code()));
    match err {
        Error::Invalid { field, reason, .. } => {
            entry.insert(Name::new("field"), Value::from(field.as_ref()));
            entry.insert(Name::new("reason"), Value::from(reason.code()));
            let params = reason.params();
            if !params.is_empty() {
                entry.insert(Name::new("params"), Value::from_json(params_json(&params)).unwrap_or_default());
            }
        }
        Error::WeakPassword { field, unmet } => {
            entry.insert(Name::new("field"), Value::from(*field));
            let unmet = unmet.iter().map(|r| Value::Enum(Name::new(crate::db::StoredEnum::stored_name(*r)))).collect();
            entry.insert(Name::new("unmet"), Value::List(unmet));
        }
        _ => {}
    }
    Value::Object(entry)
}

/// Collects the field errors of one input, so a form learns every bad field at once.
#[derive(Default)]
pub struct Checks(Vec<Error>);

impl Checks {
    /// The value, or `None` with its error kept (a non-field error is kept too and wins).
    pub fn take<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.0.push(err);
                None
            }
        }
    }

    /// As [`Checks::take`], for a check that returns nothing.
    pub fn check(&mut self, result: Result<()>) {
        self.take(result);
    }

    /// `Ok` if every check passed; else the one error, or all of them as [`Error::Fields`].
    pub fn finish(mut self) -> Result<()> {
        if let Some(pos) = self.0.iter().position(|e| !matches!(e, Error::Invalid { .. } | Error::WeakPassword { .. })) {
            return Err(self.0.swap_remove(pos));
        }
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.remove(0)),
            _ => Err(Error::Fields(self.0)),
        }
    }
}
