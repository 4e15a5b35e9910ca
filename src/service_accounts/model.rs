//! Service-account types: ids, their own scopes (never a user's), their tokens, and the
//! principal a request authenticated with one becomes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;
use crate::workspace::model::WorkspaceId;

/// Every service-account token starts with this (personal access tokens: `cpat_`).
pub const PREFIX: &str = "csat_";

crate::ids::id_type!(ServiceAccountId, "a service account");

pub use crate::tokens::scopes::ServiceScope;

impl ServiceScope {
    pub fn parse(field: &'static str, raw: &str) -> Result<ServiceScope> {
        ServiceScope::from_name(raw)
            .ok_or_else(|| Error::invalid(field, format!("unknown service-account scope {raw:?}; use events:publish or webhooks:manage")))
    }

    /// A list as sent: at least one, each known, duplicates dropped.
    pub fn parse_list(field: &'static str, raw: &[String]) -> Result<Vec<ServiceScope>> {
        if raw.is_empty() {
            return Err(Error::invalid(field, "choose at least one scope"));
        }
        let mut scopes = Vec::new();
        for s in raw {
            let scope = ServiceScope::parse(field, s)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(scopes)
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ServiceAccount {
    pub service_account_id: ServiceAccountId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub scopes: String,
    pub created_by: Option<AccountId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl ServiceAccount {
    pub fn scopes(&self) -> Vec<ServiceScope> {
        ServiceScope::split(&self.scopes)
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ServiceAccountToken {
    pub service_account_token_id: Uuid,
    pub service_account_id: ServiceAccountId,
    pub name: String,
    pub display_prefix: String,
    pub scopes: String,
    pub created_by: Option<AccountId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ServiceAccountToken {
    pub fn scopes(&self) -> Vec<ServiceScope> {
        ServiceScope::split(&self.scopes)
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A request authenticated with a service-account token: which account, in which workspace,
/// with which scopes (the token's, within the account's).
#[derive(Clone, Debug)]
pub struct ServiceAccountPrincipal {
    pub id: ServiceAccountId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub scopes: Vec<ServiceScope>,
    pub token_id: Uuid,
}

impl ServiceAccountPrincipal {
    pub fn require(&self, scope: ServiceScope) -> Result<()> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("this service-account token lacks the {} scope", scope.as_str())))
        }
    }
}

/// Who a bearer credential stands for: a user (through a session or a personal access token)
/// or a service account. They never stand in for each other.
#[derive(Clone, Debug)]
#[expect(clippy::large_enum_variant, reason = "one per request, moved rarely: boxing would add an allocation for nothing")]
pub enum Principal {
    User(Viewer),
    ServiceAccount(ServiceAccountPrincipal),
}

/// A service-account or token name: trimmed, 1–100 characters.
pub use crate::tokens::model::parse_name;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::model as token_format;

    #[test]
    fn service_tokens_share_the_format_under_their_own_prefix() {
        let token = token_format::generate_with(PREFIX);
        assert!(token.starts_with("csat_") && token.len() == 41, "{token}");
        assert!(token_format::well_formed_with(PREFIX, &token));
        assert!(!token_format::well_formed(&token), "not a personal access token");
        assert!(!token_format::well_formed_with(PREFIX, &token_format::generate()), "a personal token is not a service token");
    }

    #[test]
    fn a_revoked_or_expired_token_is_not_live() {
        let now = Utc::now();
        let token = ServiceAccountToken {
            service_account_token_id: Uuid::now_v7(),
            service_account_id: ServiceAccountId::new(),
            name: "ci".into(),
            display_prefix: "csat_AbCd".into(),
            scopes: "events:publish".into(),
            created_by: None,
            created_at: now,
            expires_at: Some(now + chrono::Duration::hours(1)),
            last_used_at: None,
            revoked_at: None,
        };
        assert!(token.is_live(now));
        assert!(!token.is_live(now + chrono::Duration::hours(2)), "expired");
        assert!(!ServiceAccountToken { revoked_at: Some(now), ..token }.is_live(now), "revoked");
    }

    #[test]
    fn user_scopes_are_not_service_scopes() {
        for user in crate::tokens::model::Scope::ALL.iter().copied() {
            assert!(ServiceScope::parse("scopes", user.as_str()).is_err(), "{}", user.as_str());
        }
        for scope in ServiceScope::ALL.iter().copied() {
            assert!(crate::tokens::model::Scope::parse("scopes", scope.as_str()).is_err(), "{}", scope.as_str());
        }
        let joined = ServiceScope::join(ServiceScope::ALL);
        assert_eq!(ServiceScope::split(&joined), ServiceScope::ALL);
        assert!(ServiceScope::parse_list("scopes", &[]).is_err());
    }
}
