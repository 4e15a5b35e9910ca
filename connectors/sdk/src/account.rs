use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{ConnectorError, Settings};

/// A secret (password, access token). Its `Debug` and `Display` never show it, so it cannot
/// reach a log line by accident; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Hands out OAuth2 access tokens for one account. The gateway implements it: it stores the
/// refresh token encrypted, refreshes before expiry, and marks the mailbox for
/// re-authorisation when the provider refuses the refresh token.
#[async_trait]
pub trait AccessTokenSource: Send + Sync {
    /// A token valid for at least the next minute.
    async fn access_token(&self) -> Result<Secret, ConnectorError>;
    /// The server refused the last token: get a new one now. A refused refresh is
    /// [`ConnectorError::Authentication`].
    async fn refresh(&self) -> Result<Secret, ConnectorError>;
}

/// How the connector signs in. The username is the one to sign in with: the gateway has
/// already chosen it (a `username` setting of the form when the user gave one, else the
/// mailbox's address).
#[derive(Clone)]
pub enum Credentials {
    Password { username: String, password: Secret },
    OAuth2 { username: String, tokens: Arc<dyn AccessTokenSource> },
}

impl Credentials {
    pub fn username(&self) -> &str {
        match self {
            Credentials::Password { username, .. } | Credentials::OAuth2 { username, .. } => username,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { username, .. } => write!(f, "Password({username}, …)"),
            Credentials::OAuth2 { username, .. } => write!(f, "OAuth2({username}, …)"),
        }
    }
}

/// One connected account as a connector sees it.
#[derive(Clone, Debug)]
pub struct Account {
    /// The mailbox's address, as the user entered it.
    pub address: String,
    /// The connect form's values, validated and completed by [`crate::MailConnector::validate`].
    pub settings: Settings,
    pub credentials: Credentials,
}

impl Account {
    /// A setting as text (numbers and booleans are formatted), or `None` when absent or null.
    pub fn setting(&self, key: &str) -> Option<String> {
        match self.settings.get(key)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}
