//! How a connector that signs in with OAuth2 describes its provider. The gateway runs the
//! authorisation code flow (with PKCE) from this description: it sends the user to
//! `authorize_url`, exchanges the code at `token_url`, learns the account's address from
//! `userinfo_url`, and keeps the refresh token. Every URL can be overridden by the
//! operator's configuration, so self-hosters and tests can point a connector elsewhere.

use serde::Serialize;

/// One OAuth2 provider, as a connector knows it by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OAuthProvider {
    /// The provider's name for people ("Google", "Microsoft").
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    /// An OpenID Connect user-info endpoint answering `{"email": …}` for the access token.
    pub userinfo_url: String,
    /// Every scope the connector needs (mail access, `offline_access`, `openid`, `email`).
    pub scopes: Vec<String>,
    /// Extra query parameters of the authorisation request (Google's
    /// `access_type=offline` and `prompt=consent`, which make it issue a refresh token).
    pub extra_authorize_params: Vec<(String, String)>,
}

impl OAuthProvider {
    /// The same provider with every endpoint under `base` instead (`{base}/authorize`,
    /// `{base}/token`, `{base}/userinfo`): how a stand-in or a proxy is configured.
    pub fn at_base(&self, base: &str) -> OAuthProvider {
        let base = base.trim_end_matches('/');
        OAuthProvider {
            authorize_url: format!("{base}/authorize"),
            token_url: format!("{base}/token"),
            userinfo_url: format!("{base}/userinfo"),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_base_moves_every_endpoint_and_keeps_the_scopes() {
        let google = OAuthProvider {
            name: "Google".into(),
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            scopes: vec!["https://mail.google.com/".into()],
            extra_authorize_params: vec![("access_type".into(), "offline".into())],
        };
        let local = google.at_base("http://127.0.0.1:9000/");
        assert_eq!(local.authorize_url, "http://127.0.0.1:9000/authorize");
        assert_eq!(local.token_url, "http://127.0.0.1:9000/token");
        assert_eq!(local.userinfo_url, "http://127.0.0.1:9000/userinfo");
        assert_eq!(local.scopes, google.scopes);
        assert_eq!(local.extra_authorize_params, google.extra_authorize_params);
    }
}
