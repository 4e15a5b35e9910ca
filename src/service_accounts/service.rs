//! Service-account rules: managed from a session by members whose role allows
//! MANAGE_INTEGRATIONS in the account's workspace; tokens shown once and stored hashed; a
//! token authenticates only while it is live and its account enabled.

use chrono::{DateTime, Utc};
use tracing::instrument;
use uuid::Uuid;

use super::model::{self, PREFIX, ServiceAccount, ServiceAccountId, ServiceAccountPrincipal, ServiceAccountToken, ServiceScope};
use super::store;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::identity::service::{TOUCH_EVERY, Viewer};
use crate::security::log::{SecurityEventKind, SecurityLog};
use crate::tokens::model as token_format;
use crate::workspace::model::{Permission, WorkspaceId};
use crate::workspace::store as workspace_store;

/// A token as asked for, checked.
pub struct NewServiceToken {
    pub name: String,
    pub scopes: Vec<ServiceScope>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewServiceToken {
    pub fn parse(name: &str, scopes: &[String], expires_at: Option<DateTime<Utc>>) -> Result<NewServiceToken> {
        let name = model::parse_name("name", name)?;
        let scopes = ServiceScope::parse_list("scopes", scopes)?;
        if expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(Error::invalid("expiresAt", "must be in the future"));
        }
        Ok(NewServiceToken { name, scopes, expires_at })
    }
}

#[derive(Clone)]
pub struct ServiceAccountService {
    db: Db,
    log: SecurityLog,
}

fn name_taken() -> Error {
    Error::conflict("name", "the workspace already has a service account with this name")
}

impl ServiceAccountService {
    pub fn new(db: Db, log: SecurityLog) -> Self {
        ServiceAccountService { db, log }
    }

    /// Refuses anyone but a member of `workspace_id` whose role manages integrations. A
    /// stranger learns nothing (NOT_FOUND, as for the workspace itself).
    async fn authorize(&self, viewer: &Viewer, workspace_id: WorkspaceId, missing: &'static str) -> Result<()> {
        let membership =
            workspace_store::find_active_membership(&self.db, workspace_id, viewer.account_id()).await?.ok_or(Error::NotFound(missing))?;
        if membership.role().allows(Permission::ManageIntegrations) {
            Ok(())
        } else {
            Err(Error::forbidden("your role does not allow managing the workspace's integrations"))
        }
    }

    /// The account, if the viewer may manage it.
    async fn managed(&self, viewer: &Viewer, id: ServiceAccountId) -> Result<ServiceAccount> {
        let account = store::find(&self.db, id).await?.ok_or(Error::NotFound("service account"))?;
        self.authorize(viewer, account.workspace_id, "service account").await?;
        Ok(account)
    }

    #[instrument(skip_all, fields(workspace_id = %workspace_id.0))]
    pub async fn create(&self, viewer: &Viewer, workspace_id: WorkspaceId, name: &str, scopes: &[String]) -> Result<ServiceAccount> {
        viewer.require_session()?;
        let name = model::parse_name("name", name)?;
        let scopes = ServiceScope::parse_list("scopes", scopes)?;
        self.authorize(viewer, workspace_id, "workspace").await?;
        let now = Utc::now();
        let account = ServiceAccount {
            service_account_id: ServiceAccountId::new(),
            workspace_id,
            name,
            scopes: ServiceScope::join(&scopes),
            created_by: Some(viewer.account_id()),
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        store::insert(&self.db, &account).await.map_err(|e| if store::NAME_KEY.violated_by(&e) { name_taken() } else { e.into() })?;
        tracing::info!(service_account_id = %account.service_account_id, "service account created");
        self.log.record(viewer.account_id(), SecurityEventKind::ServiceAccountCreated, &viewer.meta, Some(&account.name)).await;
        Ok(account)
    }

    pub async fn list(&self, viewer: &Viewer, workspace_id: WorkspaceId) -> Result<Vec<ServiceAccount>> {
        self.authorize(viewer, workspace_id, "workspace").await?;
        Ok(store::list(&self.db, workspace_id).await?)
    }

    pub async fn get(&self, viewer: &Viewer, id: ServiceAccountId) -> Result<ServiceAccount> {
        self.managed(viewer, id).await
    }

    pub async fn rename(&self, viewer: &Viewer, id: ServiceAccountId, name: &str) -> Result<ServiceAccount> {
        viewer.require_session()?;
        let name = model::parse_name("name", name)?;
        let mut account = self.managed(viewer, id).await?;
        let now = Utc::now();
        store::rename(&self.db, id, &name, now).await.map_err(|e| if store::NAME_KEY.violated_by(&e) { name_taken() } else { e.into() })?;
        account.name = name;
        account.updated_at = now;
        Ok(account)
    }

    /// Disables (its tokens are refused at once) or enables the account.
    #[instrument(skip_all, fields(service_account_id = %id))]
    pub async fn set_enabled(&self, viewer: &Viewer, id: ServiceAccountId, enabled: bool) -> Result<ServiceAccount> {
        viewer.require_session()?;
        let mut account = self.managed(viewer, id).await?;
        let now = Utc::now();
        // Disabling twice keeps the first time.
        let disabled_at = if enabled { None } else { Some(account.disabled_at.unwrap_or(now)) };
        store::set_disabled(&self.db, id, disabled_at, now).await?;
        tracing::info!(enabled, "service account status changed");
        account.disabled_at = disabled_at;
        account.updated_at = now;
        Ok(account)
    }

    /// Deletes the account and its tokens. The events it published stay, without it.
    #[instrument(skip_all, fields(service_account_id = %id))]
    pub async fn delete(&self, viewer: &Viewer, id: ServiceAccountId) -> Result<()> {
        viewer.require_session()?;
        let account = self.managed(viewer, id).await?;
        let mut tx = self.db.begin().await?;
        if !store::delete(&mut tx, id).await? {
            return Err(Error::NotFound("service account"));
        }
        tx.commit().await?;
        tracing::info!("service account deleted");
        self.log.record(viewer.account_id(), SecurityEventKind::ServiceAccountDeleted, &viewer.meta, Some(&account.name)).await;
        Ok(())
    }

    /// The account's live and expired tokens (revoked ones are gone). The caller has already
    /// been allowed to see the account.
    pub async fn tokens(&self, id: ServiceAccountId) -> Result<Vec<ServiceAccountToken>> {
        Ok(store::tokens(&self.db, id).await?)
    }

    /// Creates a token; the secret is returned only here. Its scopes must be among the
    /// account's.
    #[instrument(skip_all, fields(service_account_id = %id))]
    pub async fn create_token(&self, viewer: &Viewer, id: ServiceAccountId, new: NewServiceToken) -> Result<(String, ServiceAccountToken)> {
        viewer.require_session()?;
        let account = self.managed(viewer, id).await?;
        let allowed = account.scopes();
        if let Some(extra) = new.scopes.iter().find(|s| !allowed.contains(s)) {
            return Err(Error::invalid("scopes", format!("the service account does not hold the {} scope", extra.as_str())));
        }
        let secret = token_format::generate_with(PREFIX);
        let token = ServiceAccountToken {
            service_account_token_id: Uuid::now_v7(),
            service_account_id: id,
            name: new.name,
            display_prefix: token_format::display_prefix_with(PREFIX, &secret),
            scopes: ServiceScope::join(&new.scopes),
            created_by: Some(viewer.account_id()),
            created_at: Utc::now(),
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        store::insert_token(&self.db, &token, &token_format::hash(&secret)).await?;
        tracing::info!(service_account_token_id = %token.service_account_token_id, "service account token created");
        let detail = format!("{}: {}", account.name, token.name);
        self.log.record(viewer.account_id(), SecurityEventKind::ServiceAccountTokenCreated, &viewer.meta, Some(&detail)).await;
        Ok((secret, token))
    }

    /// Revokes a token; its next request is refused.
    pub async fn revoke_token(&self, viewer: &Viewer, token_id: Uuid) -> Result<ServiceAccountToken> {
        viewer.require_session()?;
        let token = store::find_token(&self.db, token_id).await?.ok_or(Error::NotFound("service account token"))?;
        let account = match self.managed(viewer, token.service_account_id).await {
            Err(Error::NotFound(_)) => return Err(Error::NotFound("service account token")),
            other => other?,
        };
        store::revoke_token(&self.db, token_id, Utc::now()).await?;
        tracing::info!(service_account_token_id = %token_id, "service account token revoked");
        let detail = format!("{}: {}", account.name, token.name);
        self.log.record(viewer.account_id(), SecurityEventKind::ServiceAccountTokenRevoked, &viewer.meta, Some(&detail)).await;
        Ok(token)
    }

    /// The principal a service-account token stands for. A malformed token or a bad checksum
    /// is refused without a database read; a revoked or expired token, or one of a disabled
    /// account, is refused like an unknown one.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ServiceAccountPrincipal>> {
        if !token_format::well_formed_with(PREFIX, secret) {
            return Ok(None);
        }
        let Some((token, account)) = store::find_by_hash(&self.db, &token_format::hash(secret)).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if !token.is_live(now) || account.disabled_at.is_some() {
            return Ok(None);
        }
        if token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
            store::touch_token(&self.db, token.service_account_token_id, now).await?;
        }
        // The token's scopes, within what the account holds.
        let held = account.scopes();
        let scopes = token.scopes().into_iter().filter(|s| held.contains(s)).collect();
        Ok(Some(ServiceAccountPrincipal {
            id: account.service_account_id,
            workspace_id: account.workspace_id,
            name: account.name,
            scopes,
            token_id: token.service_account_token_id,
        }))
    }
}
