//! What resolvers read from the context: the services, and who is asking (authenticated
//! lazily, so operations that need no account cost no lookup). That is a user (`viewer`,
//! through a session or a personal access token) or a workspace's service account
//! (`service_account`); neither ever stands in for the other: a service-account token asking
//! for a user's data is FORBIDDEN, and so is a user asking for a service account's operation.

use std::sync::Arc;

use async_graphql::Context;
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::graphql::loaders::Loaders;
use crate::identity::service::{ClientMeta, Viewer};
use crate::service_accounts::model::{Principal, ServiceAccountPrincipal, ServiceScope};
use crate::services::Services;
use crate::tokens::model::Scope;

/// Whose language a request's error messages are in.
#[derive(Clone, Debug)]
pub enum Reader {
    /// A signed-in user's chosen language.
    User(String),
    /// A browser's `Accept-Language` header, negotiated only when there is an error to word.
    Browser(String),
}

impl Reader {
    pub fn language(&self) -> Option<String> {
        match self {
            Reader::User(language) => Some(language.clone()),
            Reader::Browser(header) => crate::i18n::from_accept_language(header),
        }
    }
}

/// Per request (or per WebSocket connection): the bearer token and who it turned out to be.
pub struct RequestAuth {
    token: Option<String>,
    principal: OnceCell<Option<Principal>>,
    /// Set when the request itself signs in (`logIn`, `completeTwoFactorLogIn`), so the
    /// payload's `user` resolves its private fields for the account that just signed in.
    signed_in: std::sync::OnceLock<Viewer>,
    pub meta: ClientMeta,
}

impl RequestAuth {
    pub fn new(token: Option<String>, meta: ClientMeta) -> Self {
        RequestAuth { token, principal: OnceCell::new(), signed_in: std::sync::OnceLock::new(), meta }
    }

    /// Already authenticated (a WebSocket connection checks its token once, at `connection_init`).
    pub fn resolved(viewer: Option<Viewer>, meta: ClientMeta) -> Self {
        let principal = viewer.map(|v| Principal::User(Viewer { meta: meta.clone(), ..v }));
        RequestAuth { token: None, principal: OnceCell::new_with(Some(principal)), signed_in: std::sync::OnceLock::new(), meta }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Who reads this request's errors: the signed-in user, if this request looked them up
    /// already (no lookup is made for this), else the browser's `Accept-Language`.
    pub fn reader(&self) -> Option<Reader> {
        let viewer = self.signed_in.get().or(match self.principal.get() {
            Some(Some(Principal::User(viewer))) => Some(viewer),
            _ => None,
        });
        match viewer {
            Some(viewer) => Some(Reader::User(viewer.account.language.clone())),
            None => self.meta.accept_language.clone().map(Reader::Browser),
        }
    }

    /// Makes the rest of this request act as a session it just opened.
    pub fn sign_in(&self, viewer: Viewer) {
        let _ = self.signed_in.set(viewer);
    }

    /// The user making the request, if any. A service-account token is FORBIDDEN here: it
    /// never acts as a user.
    pub async fn viewer(&self, services: &Services) -> Result<Option<Viewer>> {
        if let Some(viewer) = self.signed_in.get() {
            return Ok(Some(viewer.clone()));
        }
        match self.principal(services).await? {
            None => Ok(None),
            Some(Principal::User(viewer)) => Ok(Some(viewer)),
            Some(Principal::ServiceAccount(_)) => Err(Error::forbidden("a service account cannot act as a user")),
        }
    }

    /// Who the bearer token stands for: a user or a service account. A token that does not
    /// authenticate counts against the client's address (RATE_LIMITED once it has sent too many).
    pub async fn principal(&self, services: &Services) -> Result<Option<Principal>> {
        if let Some(viewer) = self.signed_in.get() {
            return Ok(Some(Principal::User(viewer.clone())));
        }
        self.principal
            .get_or_try_init(|| async {
                let Some(token) = &self.token else { return Ok(None) };
                Ok(match services.authenticate_principal_from(token, self.meta.ip.as_deref()).await? {
                    Some(Principal::User(v)) => Some(Principal::User(Viewer { meta: self.meta.clone(), ..v })),
                    other => other,
                })
            })
            .await
            .cloned()
    }
}

/// `Authorization: Bearer <token>` (scheme case-insensitive), or None.
pub fn bearer(header: Option<&str>) -> Option<String> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

pub trait ContextExt {
    /// The services (always in the schema's data; a missing one is an internal error, not a panic).
    fn services(&self) -> Result<&Services>;
    /// The schema's one shared copy of the services, for a subscription to keep: each event it
    /// loads takes a reference count, not a copy of every service.
    fn shared_services(&self) -> Result<Arc<Services>>;
    fn auth(&self) -> Option<&RequestAuth>;
    /// The request's DataLoaders (always in the schema's data, like the services).
    fn loaders(&self) -> Result<&Loaders>;
    /// The signed-in viewer, or UNAUTHENTICATED. Check a scope (`viewer_for`) or the session
    /// (`Viewer::require_session`) before acting.
    fn viewer(&self) -> impl std::future::Future<Output = Result<Viewer>> + Send;
    /// The viewer, if their credential carries `scope` (sessions carry every scope).
    fn viewer_for(&self, scope: Scope) -> impl std::future::Future<Output = Result<Viewer>> + Send;
    /// The service account whose token made the request, if the token carries `scope`.
    /// No token: UNAUTHENTICATED; a user's session or personal token: FORBIDDEN.
    fn service_account(&self, scope: ServiceScope) -> impl std::future::Future<Output = Result<ServiceAccountPrincipal>> + Send;
}

/// The services the schema was built with (a missing one is an internal error, not a panic).
fn shared<'a>(ctx: &'a Context<'_>) -> Result<&'a Arc<Services>> {
    ctx.data::<Arc<Services>>().map_err(|e| Error::Internal(anyhow::anyhow!("services missing: {}", e.message)))
}

impl ContextExt for Context<'_> {
    fn services(&self) -> Result<&Services> {
        shared(self).map(|s| &**s)
    }

    fn shared_services(&self) -> Result<Arc<Services>> {
        shared(self).cloned()
    }

    fn auth(&self) -> Option<&RequestAuth> {
        self.data_opt::<RequestAuth>()
    }

    fn loaders(&self) -> Result<&Loaders> {
        self.data::<Loaders>().map_err(|e| Error::Internal(anyhow::anyhow!("loaders missing: {}", e.message)))
    }

    async fn viewer(&self) -> Result<Viewer> {
        let Some(auth) = self.auth() else { return Err(Error::Unauthenticated) };
        auth.viewer(self.services()?).await?.ok_or(Error::Unauthenticated)
    }

    async fn viewer_for(&self, scope: Scope) -> Result<Viewer> {
        let viewer = self.viewer().await?;
        viewer.require(scope)?;
        Ok(viewer)
    }

    async fn service_account(&self, scope: ServiceScope) -> Result<ServiceAccountPrincipal> {
        let Some(auth) = self.auth() else { return Err(Error::Unauthenticated) };
        match auth.principal(self.services()?).await? {
            None => Err(Error::Unauthenticated),
            Some(Principal::User(_)) => Err(Error::forbidden("this needs a service-account token")),
            Some(Principal::ServiceAccount(account)) => {
                account.require(scope)?;
                Ok(account)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(bearer(Some("Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(bearer(Some("bearer   abc ")).as_deref(), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
