//! Personal access tokens: created and managed only from a session, shown once, stored
//! hashed, checked against their scopes on every use.

use chrono::{DateTime, Utc};
use tracing::instrument;
use uuid::Uuid;

use super::model::{self, AccessToken, Scope};
use super::store;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::AccountStatus;
use crate::identity::service::{Credential, TOUCH_EVERY, Viewer};
use crate::security::log::{SecurityEventKind, SecurityLog};

pub struct NewToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewToken {
    pub fn parse(name: &str, scopes: &[String], expires_at: Option<DateTime<Utc>>) -> Result<NewToken> {
        let name = model::parse_name("name", name)?;
        if scopes.is_empty() {
            return Err(Error::invalid("scopes", "choose at least one scope"));
        }
        let mut parsed: Vec<Scope> = Vec::new();
        for s in scopes {
            let scope = Scope::parse("scopes", s)?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        if expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(Error::invalid("expiresAt", "must be in the future"));
        }
        Ok(NewToken { name, scopes: parsed, expires_at })
    }
}

#[derive(Clone)]
pub struct TokenService {
    db: Db,
    log: SecurityLog,
    fanout: Fanout,
}

impl TokenService {
    pub fn new(db: Db, log: SecurityLog, fanout: Fanout) -> Self {
        TokenService { db, log, fanout }
    }

    /// Creates a token; the secret is returned only here.
    #[instrument(skip_all)]
    pub async fn create(&self, viewer: &Viewer, new: NewToken) -> Result<(String, AccessToken)> {
        viewer.require_session()?;
        // Names tell tokens apart in the list: one name per live token of an account.
        let taken = store::list(&self.db, viewer.account_id()).await?;
        if taken.iter().any(|t| t.name.to_lowercase() == new.name.to_lowercase()) {
            return Err(Error::conflict("name", "you already have an access token with this name"));
        }
        let secret = model::generate();
        let token = AccessToken {
            access_token_id: Uuid::now_v7(),
            account_id: viewer.account_id(),
            name: new.name,
            display_prefix: model::display_prefix(&secret),
            scopes: Scope::join(&new.scopes),
            created_at: Utc::now(),
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        store::insert(&self.db, &token, &model::hash(&secret)).await?;
        tracing::info!(access_token_id = %token.access_token_id, "access token created");
        self.log.record(viewer.account_id(), SecurityEventKind::AccessTokenCreated, &viewer.meta, Some(&token.name)).await;
        Ok((secret, token))
    }

    pub async fn list(&self, viewer: &Viewer) -> Result<Vec<AccessToken>> {
        viewer.require_session()?;
        Ok(store::list(&self.db, viewer.account_id()).await?)
    }

    async fn own(&self, viewer: &Viewer, id: Uuid) -> Result<AccessToken> {
        viewer.require_session()?;
        store::find(&self.db, viewer.account_id(), id).await?.ok_or(Error::NotFound("access token"))
    }

    pub async fn revoke(&self, viewer: &Viewer, id: Uuid) -> Result<AccessToken> {
        let token = self.own(viewer, id).await?;
        store::revoke(&self.db, id, Utc::now()).await?;
        tracing::info!(access_token_id = %id, "access token revoked");
        // Live connections that authenticated with it close.
        self.fanout.publish(Change::Sessions { account_id: viewer.account_id() }).await;
        self.log.record(viewer.account_id(), SecurityEventKind::AccessTokenRevoked, &viewer.meta, Some(&token.name)).await;
        Ok(token)
    }

    /// A new secret with the same name, scopes and expiry; the old secret stops working.
    pub async fn regenerate(&self, viewer: &Viewer, id: Uuid) -> Result<(String, AccessToken)> {
        let mut token = self.own(viewer, id).await?;
        let secret = model::generate();
        token.display_prefix = model::display_prefix(&secret);
        token.last_used_at = None;
        store::replace_secret(&self.db, id, &model::hash(&secret), &token.display_prefix).await?;
        self.fanout.publish(Change::Sessions { account_id: viewer.account_id() }).await;
        self.log.record(viewer.account_id(), SecurityEventKind::AccessTokenRegenerated, &viewer.meta, Some(&token.name)).await;
        Ok((secret, token))
    }

    /// The viewer a token stands for. A malformed token or a bad checksum is refused without
    /// touching the database.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Viewer>> {
        if !model::well_formed(secret) {
            return Ok(None);
        }
        let Some((token, account)) = store::find_by_hash(&self.db, &model::hash(secret)).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if !token.is_live(now) || account.status() != AccountStatus::Active {
            return Ok(None);
        }
        if token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
            store::touch(&self.db, token.access_token_id, now).await?;
        }
        Ok(Some(Viewer {
            account,
            credential: Credential::AccessToken { id: token.access_token_id, scopes: token.scopes() },
            meta: Default::default(),
        }))
    }
}
