//! A mailbox's OAuth access tokens, as its connector asks for them while it syncs:
//! refreshed before they expire, once more when a server refuses one, and written back
//! sealed. A refresh token the provider refuses is an authentication failure, which stops the
//! sync in NEEDS_REAUTH. The apps and the exchanges themselves are [`crate::accounts::oauth`].

use chrono::{DateTime, Utc};
use concierge_connector_sdk::{AccessTokenSource, ConnectorError, Secret, async_trait};

use super::model::MailboxId;
use super::store;
pub use crate::accounts::oauth::{EARLY, Grant, OAuthApp, OAuthApps, ProviderError};
use crate::crypto::SecretBox;
use crate::db::Db;

/// The sealed OAuth part of a mailbox's credentials.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredTokens {
    pub refresh_token: String,
    pub access_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Access tokens for one mailbox: cached, refreshed a minute before they expire (one
/// refresh at a time), and written back sealed so a restart does not refresh again.
pub struct MailboxTokens {
    apps: OAuthApps,
    kind: String,
    db: Db,
    secrets: SecretBox,
    mailbox_id: MailboxId,
    username: String,
    state: tokio::sync::Mutex<StoredTokens>,
}

impl MailboxTokens {
    pub fn new(
        apps: OAuthApps,
        kind: &str,
        db: Db,
        secrets: SecretBox,
        mailbox_id: MailboxId,
        username: String,
        tokens: StoredTokens,
    ) -> Self {
        MailboxTokens { apps, kind: kind.to_owned(), db, secrets, mailbox_id, username, state: tokio::sync::Mutex::new(tokens) }
    }

    async fn renew(&self, state: &mut StoredTokens) -> Result<Secret, ConnectorError> {
        let grant = self.apps.refresh(&self.kind, &state.refresh_token).await.map_err(ProviderError::into_connector)?;
        if let Some(rotated) = grant.refresh_token {
            state.refresh_token = rotated;
        }
        state.access_token = Some(grant.access_token.clone());
        state.expires_at = grant.expires_at;
        let sealed = super::sync::StoredCredentials::OAuth2 { username: self.username.clone(), tokens: state.clone() }
            .seal(&self.secrets, self.mailbox_id);
        match sealed {
            Ok(sealed) => {
                // A mailbox being connected has no row yet: nothing to update, and that is fine.
                if let Err(e) = store::update_credentials(&self.db, self.mailbox_id, &sealed).await {
                    tracing::warn!(mailbox_id = %self.mailbox_id.0, error = %e, "cannot store the refreshed access token");
                }
            }
            Err(e) => tracing::warn!(mailbox_id = %self.mailbox_id.0, error = ?e, "cannot seal the refreshed access token"),
        }
        tracing::debug!(mailbox_id = %self.mailbox_id.0, "refreshed the mailbox's access token");
        Ok(Secret::new(grant.access_token))
    }
}

#[async_trait]
impl AccessTokenSource for MailboxTokens {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        let mut state = self.state.lock().await;
        if let (Some(token), Some(expires)) = (&state.access_token, state.expires_at) {
            if expires - chrono::Duration::from_std(EARLY).unwrap_or_default() > Utc::now() {
                return Ok(Secret::new(token.clone()));
            }
        } else if let (Some(token), None) = (&state.access_token, state.expires_at) {
            // No expiry given: use it until a server refuses it.
            return Ok(Secret::new(token.clone()));
        }
        self.renew(&mut state).await
    }

    async fn refresh(&self) -> Result<Secret, ConnectorError> {
        let mut state = self.state.lock().await;
        self.renew(&mut state).await
    }
}
