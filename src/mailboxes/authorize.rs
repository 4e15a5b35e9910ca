//! Connecting a mailbox by signing in at its provider (Gmail, Outlook): the OAuth2
//! authorisation code flow with PKCE.
//!
//! 1. `startMailboxAuthorization` stores a single-use, expiring request (the `state` hashed,
//!    the PKCE verifier sealed) bound to the user, and returns the provider's URL.
//! 2. The provider sends the browser to `GET /oauth/callback/{connector}`: the state is used
//!    up, the code exchanged, the address learnt from the user-info endpoint, the mailbox
//!    signed in to for real, then saved (or, for a mailbox being re-authorised, given its
//!    new tokens with its checkpoint kept) and its sync started.
//! 3. The browser goes on to the configured return URL with the outcome.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use concierge_connector_sdk::{Account, Credentials, Settings};
use rand::Rng as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::model::MailboxId;
use super::oauth::{MailboxTokens, StoredTokens};
use super::service::{MailboxService, check_sync_from};
use super::store::{self, OAuthRequest};
use super::sync::StoredCredentials;
use crate::contacts::model::address_key;
use crate::error::{Error, Result};
use crate::identity::service::{ClientMeta, Viewer};
use crate::workspace::model::WorkspaceId;

/// How long the callback may spend signing in to the new mailbox.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(30);

/// What a started authorisation gives the client: where to send the browser.
pub struct Authorization {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// What `startMailboxAuthorization` asks for.
pub struct StartInput {
    pub connector: String,
    pub sync_from: Option<NaiveDate>,
    pub workspace_id: Option<WorkspaceId>,
    /// Re-authorise this mailbox (NEEDS_REAUTH) instead of connecting a new one.
    pub mailbox_id: Option<MailboxId>,
    pub login_hint: Option<String>,
}

/// The provider's answer at the callback, as the browser brings it.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// How a callback ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Connected(MailboxId),
    /// An OAuth-style error code: the provider's (`access_denied`) or ours
    /// (`invalid_state`, `invalid_grant`, `wrong_account`, `authentication_failed`, …).
    Failed(String),
}

fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

impl MailboxService {
    /// Starts connecting (or re-authorising) a mailbox at its provider.
    pub async fn start_authorization(&self, viewer: &Viewer, input: StartInput) -> Result<Authorization> {
        let registry = self.sync.registry();
        let kind = input.connector.trim();
        let connector =
            registry.get(kind).ok_or_else(|| Error::invalid("connector", format!("no connector {kind:?}; see mailConnectors")))?;
        if connector.oauth().is_none() {
            return Err(Error::invalid("connector", "this connector signs in with a password: use connectMailbox"));
        }
        if !registry.configured(kind) {
            return Err(Error::Connector {
                code: "CONNECTOR_NOT_CONFIGURED",
                field: "connector".into(),
                message: format!("the operator has not configured an OAuth app for {kind}"),
            });
        }
        let (workspace_id, sync_from) = match input.mailbox_id {
            Some(id) => {
                let mailbox = self.mailbox(viewer, id).await.map_err(|_| Error::invalid("mailboxId", "not a mailbox of yours"))?;
                if mailbox.connector != kind {
                    return Err(Error::invalid("mailboxId", format!("this mailbox is connected with {}, not {kind}", mailbox.connector)));
                }
                (mailbox.workspace_id, input.sync_from.unwrap_or(mailbox.sync_from))
            }
            None => {
                let sync_from = input.sync_from.ok_or_else(|| Error::invalid("syncFrom", "is required to connect a new mailbox"))?;
                (self.workspace_for(viewer, input.workspace_id).await?, sync_from)
            }
        };
        check_sync_from(sync_from)?;
        let hint = input.login_hint.map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
        if hint.as_deref().is_some_and(|h| !email_address::EmailAddress::is_valid(h)) {
            return Err(Error::invalid("loginHint", "must be an email address"));
        }

        let mut random = [0u8; 32];
        rand::rng().fill_bytes(&mut random);
        let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random);
        let hash = state_hash(&state);
        let apps = registry.oauth();
        let (url, verifier) = apps.authorize_url(kind, &state, hint.as_deref()).map_err(|e| Error::Connector {
            code: "CONNECTOR_NOT_CONFIGURED",
            field: "connector".into(),
            message: e.to_string(),
        })?;
        let now = Utc::now();
        let expires_at = now + apps.state_ttl();
        let request = OAuthRequest {
            account_id: viewer.account_id(),
            workspace_id,
            connector: kind.to_owned(),
            mailbox_id: input.mailbox_id,
            sync_from,
            verifier: self.secrets.seal(verifier.as_bytes(), &hash)?,
        };
        store::insert_oauth_request(&self.db, &hash, &request, now, expires_at).await?;
        Ok(Authorization { url, expires_at })
    }

    /// Finishes an authorisation at the callback. Every failure is an error code for the
    /// browser's return URL; nothing is saved unless the mailbox really signed in.
    pub async fn finish_authorization(&self, kind: &str, params: CallbackParams, meta: &ClientMeta) -> Outcome {
        match self.finish(kind, params, meta).await {
            Ok(id) => Outcome::Connected(id),
            Err(code) => {
                tracing::info!(connector = kind, error = %code, "a mailbox authorisation failed");
                Outcome::Failed(code)
            }
        }
    }

    async fn finish(&self, kind: &str, params: CallbackParams, meta: &ClientMeta) -> std::result::Result<MailboxId, String> {
        let internal = |e: &dyn std::fmt::Display| {
            tracing::error!(connector = kind, error = %e, "finishing a mailbox authorisation");
            "server_error".to_owned()
        };
        let state = params.state.filter(|s| !s.is_empty() && s.len() <= 512).ok_or("invalid_state")?;
        let hash = state_hash(&state);
        let request =
            store::take_oauth_request(&self.db, &hash, kind, Utc::now()).await.map_err(|e| internal(&e))?.ok_or("invalid_state")?;
        if let Some(error) = params.error {
            // The user declined, or the provider refused the request: its code, cleaned.
            let code: String = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect();
            return Err(if code.is_empty() { "access_denied".to_owned() } else { code });
        }
        let code = params.code.filter(|c| !c.is_empty() && c.len() <= 4096).ok_or("invalid_request")?;
        let verifier = self.secrets.open(&request.verifier, &hash).map_err(|e| internal(&e))?;
        let verifier = String::from_utf8(verifier).map_err(|e| internal(&e))?;
        let apps = self.sync.registry().oauth().clone();
        let grant = apps.exchange(kind, &code, verifier).await.map_err(|e| e.code().to_owned())?;
        let refresh_token = grant.refresh_token.clone().ok_or("no_refresh_token")?;
        let address = apps.address(kind, &grant.access_token).await.map_err(|e| e.code().to_owned())?;

        let existing = match request.mailbox_id {
            Some(id) => {
                let mailbox = store::find_mailbox(&self.db, id).await.map_err(|e| internal(&e))?.ok_or("invalid_state")?;
                if mailbox.account_id != request.account_id {
                    return Err("invalid_state".into());
                }
                // Re-authorising must sign in to the same mailbox, or its history would mix.
                if address_key(&mailbox.email_address) != address_key(&address) {
                    return Err("wrong_account".into());
                }
                Some(mailbox)
            }
            None => None,
        };
        let address = existing.as_ref().map(|m| m.email_address.clone()).unwrap_or(address);
        let tokens = StoredTokens { refresh_token, access_token: Some(grant.access_token), expires_at: grant.expires_at };

        // Sign in for real before saving anything.
        let connector = self.sync.registry().get(kind).cloned().ok_or("invalid_state")?;
        let settings = connector.validate(&Settings::new()).map_err(|e| internal(&e))?;
        let probe = MailboxTokens::new(
            apps,
            kind,
            self.db.clone(),
            self.secrets.clone(),
            existing.as_ref().map(|m| m.mailbox_id).unwrap_or_else(MailboxId::new),
            address.clone(),
            tokens.clone(),
        );
        let account = Account {
            address: address.clone(),
            settings: settings.clone(),
            credentials: Credentials::OAuth2 { username: address.clone(), tokens: std::sync::Arc::new(probe) },
        };
        match tokio::time::timeout(SIGN_IN_TIMEOUT, connector.open(&account)).await {
            Ok(Ok(session)) => session.close().await,
            Ok(Err(e)) => return Err(e.code().to_ascii_lowercase()),
            Err(_) => return Err("unreachable".into()),
        }
        let credentials = StoredCredentials::OAuth2 { username: address.clone(), tokens };
        self.save(request.account_id, request.workspace_id, kind, &address, settings, credentials, request.sync_from, meta).await.map_err(
            |e| match e {
                Error::Internal(e) => internal(&e),
                other => other.code().to_ascii_lowercase(),
            },
        )
    }
}
