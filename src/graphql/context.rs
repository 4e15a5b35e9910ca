//! What resolvers read from the context: the services, and the viewer (authenticated lazily,
//! so operations that need no account cost no lookup).

use async_graphql::Context;
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::identity::service::{ClientMeta, Viewer};
use crate::services::Services;
use crate::tokens::model::Scope;

/// Per request (or per WebSocket connection): the bearer token and who it turned out to be.
pub struct RequestAuth {
    token: Option<String>,
    viewer: OnceCell<Option<Viewer>>,
    /// Set when the request itself signs in (`logIn`, `completeTwoFactorLogIn`), so the
    /// payload's `user` resolves its private fields for the account that just signed in.
    signed_in: std::sync::OnceLock<Viewer>,
    pub meta: ClientMeta,
}

impl RequestAuth {
    pub fn new(token: Option<String>, meta: ClientMeta) -> Self {
        RequestAuth { token, viewer: OnceCell::new(), signed_in: std::sync::OnceLock::new(), meta }
    }

    /// Already authenticated (a WebSocket connection checks its token once, at `connection_init`).
    pub fn resolved(viewer: Option<Viewer>, meta: ClientMeta) -> Self {
        let viewer = viewer.map(|v| Viewer { meta: meta.clone(), ..v });
        RequestAuth { token: None, viewer: OnceCell::new_with(Some(viewer)), signed_in: std::sync::OnceLock::new(), meta }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Makes the rest of this request act as a session it just opened.
    pub fn sign_in(&self, viewer: Viewer) {
        let _ = self.signed_in.set(viewer);
    }

    pub async fn viewer(&self, services: &Services) -> Result<Option<Viewer>> {
        if let Some(viewer) = self.signed_in.get() {
            return Ok(Some(viewer.clone()));
        }
        self.viewer
            .get_or_try_init(|| async {
                let Some(token) = &self.token else { return Ok(None) };
                let viewer = services.authenticate(token).await?;
                Ok(viewer.map(|v| Viewer { meta: self.meta.clone(), ..v }))
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
    fn auth(&self) -> Option<&RequestAuth>;
    /// The signed-in viewer, or UNAUTHENTICATED. Check a scope (`viewer_for`) or the session
    /// (`Viewer::require_session`) before acting.
    fn viewer(&self) -> impl std::future::Future<Output = Result<Viewer>> + Send;
    /// The viewer, if their credential carries `scope` (sessions carry every scope).
    fn viewer_for(&self, scope: Scope) -> impl std::future::Future<Output = Result<Viewer>> + Send;
}

impl ContextExt for Context<'_> {
    fn services(&self) -> Result<&Services> {
        self.data::<Services>().map_err(|e| Error::Internal(anyhow::anyhow!("services missing: {}", e.message)))
    }

    fn auth(&self) -> Option<&RequestAuth> {
        self.data_opt::<RequestAuth>()
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
