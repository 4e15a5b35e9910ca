//! OAuth2 apps: the ones the operator registered at each provider (client id, secret,
//! endpoints), the authorisation URL with PKCE, the code exchange, the refresh, and the
//! account's address from the user-info endpoint. Shared by every connected account a
//! provider grant serves (mailboxes and the calendars that come with them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use concierge_connector_sdk::{ConnectorError, OAuthProvider};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardErrorResponse, TokenResponse as _, TokenUrl,
};
use serde::Deserialize;

/// A token is refreshed when it has less than this left.
pub const EARLY: Duration = Duration::from_secs(60);
/// How long a provider has to answer a token or user-info request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);

/// One provider app the operator registered: the connector's provider description with the
/// configured client and any endpoint the configuration moved.
#[derive(Clone, Debug)]
pub struct OAuthApp {
    pub provider: OAuthProvider,
    pub client_id: String,
    pub client_secret: Option<String>,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The configured apps by connector kind, and the HTTP client that talks to them.
#[derive(Clone, Default)]
pub struct OAuthApps {
    apps: Arc<HashMap<String, OAuthApp>>,
    /// `{public URL}/oauth/callback/` — the connector kind follows.
    callback_base: String,
    /// How long a started authorisation stays usable.
    state_ttl: Duration,
    http: reqwest::Client,
}

/// What the code exchange gives.
pub struct Grant {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&oauth2::basic::BasicTokenResponse> for Grant {
    fn from(token: &oauth2::basic::BasicTokenResponse) -> Grant {
        Grant {
            access_token: token.access_token().secret().clone(),
            refresh_token: token.refresh_token().map(|r| r.secret().clone()),
            expires_at: token.expires_in().and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| Utc::now() + d),
        }
    }
}

/// Why a provider request failed, in terms the callback reports.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the code or refresh token (`invalid_grant`): used, expired,
    /// revoked, or a PKCE mismatch.
    #[error("the provider refused the grant: {0}")]
    InvalidGrant(String),
    /// The provider refused our client (wrong id or secret).
    #[error("the provider refused the client: {0}")]
    InvalidClient(String),
    /// The provider could not be reached, or answered nonsense.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
}

impl ProviderError {
    /// The code the browser is sent back with.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::InvalidGrant(_) => "invalid_grant",
            ProviderError::InvalidClient(_) => "invalid_client",
            ProviderError::Unreachable(_) => "provider_unreachable",
        }
    }

    pub fn into_connector(self) -> ConnectorError {
        match self {
            ProviderError::InvalidGrant(m) | ProviderError::InvalidClient(m) => ConnectorError::Authentication {
                message: format!("the provider refused to refresh the access token ({m}); connect the mailbox again"),
            },
            ProviderError::Unreachable(message) => ConnectorError::Unreachable { message },
        }
    }
}

impl OAuthApps {
    pub fn new(apps: HashMap<String, OAuthApp>, public_url: &str, state_ttl: Duration) -> anyhow::Result<OAuthApps> {
        let http = reqwest::Client::builder()
            // A token endpoint that redirects is not followed (RFC 6749 §3.2 says it must not).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()?;
        let callback_base = format!("{}/oauth/callback/", public_url.trim_end_matches('/'));
        Ok(OAuthApps { apps: Arc::new(apps), callback_base, state_ttl, http })
    }

    pub fn state_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.state_ttl).unwrap_or_else(|_| chrono::Duration::minutes(15))
    }

    pub fn get(&self, kind: &str) -> Option<&OAuthApp> {
        self.apps.get(kind)
    }

    /// Where the provider sends the browser back for this connector.
    pub fn redirect_uri(&self, kind: &str) -> String {
        format!("{}{kind}", self.callback_base)
    }

    fn client(&self, kind: &str) -> Result<Client, ProviderError> {
        let app = self.get(kind).ok_or_else(|| ProviderError::InvalidClient(format!("no OAuth app is configured for {kind}")))?;
        let bad = |what: &str, e: url::ParseError| ProviderError::InvalidClient(format!("the configured {what} is not a URL: {e}"));
        let mut client = BasicClient::new(ClientId::new(app.client_id.clone()))
            .set_auth_uri(AuthUrl::new(app.provider.authorize_url.clone()).map_err(|e| bad("authorize URL", e))?)
            .set_token_uri(TokenUrl::new(app.provider.token_url.clone()).map_err(|e| bad("token URL", e))?)
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri(kind)).map_err(|e| bad("public URL", e))?)
            // The secret travels in the form body: both Google and Microsoft take it there.
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &app.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(client)
    }

    /// The provider's authorisation URL for `state`, with a fresh PKCE challenge; returns
    /// the URL and the verifier to keep until the callback.
    pub fn authorize_url(&self, kind: &str, state: &str, login_hint: Option<&str>) -> Result<(String, String), ProviderError> {
        let app = self.get(kind).ok_or_else(|| ProviderError::InvalidClient(format!("no OAuth app is configured for {kind}")))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let client = self.client(kind)?;
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(app.provider.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        for (key, value) in &app.provider.extra_authorize_params {
            request = request.add_extra_param(key.clone(), value.clone());
        }
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, _) = request.url();
        Ok((url.to_string(), verifier.secret().clone()))
    }

    /// Exchanges an authorisation code (with its PKCE verifier) for tokens.
    pub async fn exchange(&self, kind: &str, code: &str, verifier: String) -> Result<Grant, ProviderError> {
        let client = self.client(kind)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(Grant::from(&token))
    }

    /// A new access token for a refresh token (and the refresh token to keep: providers that
    /// rotate them send a new one).
    pub async fn refresh(&self, kind: &str, refresh_token: &str) -> Result<Grant, ProviderError> {
        let client = self.client(kind)?;
        let token = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(Grant::from(&token))
    }

    /// The account's address, from the provider's OpenID Connect user-info endpoint.
    pub async fn address(&self, kind: &str, access_token: &str) -> Result<String, ProviderError> {
        #[derive(Deserialize)]
        struct UserInfo {
            email: Option<String>,
            email_verified: Option<bool>,
            preferred_username: Option<String>,
        }
        let app = self.get(kind).ok_or_else(|| ProviderError::InvalidClient(format!("no OAuth app is configured for {kind}")))?;
        let response = self
            .http
            .get(&app.provider.userinfo_url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(format!("user info: {e}")))?;
        if !response.status().is_success() {
            return Err(ProviderError::InvalidGrant(format!("user info answered {}", response.status())));
        }
        let info: UserInfo = response.json().await.map_err(|e| ProviderError::Unreachable(format!("user info: {e}")))?;
        if info.email_verified == Some(false) {
            return Err(ProviderError::InvalidGrant("the provider says the account's address is not verified".into()));
        }
        info.email
            .or(info.preferred_username)
            .map(|a| a.trim().to_owned())
            .filter(|a| email_address::EmailAddress::is_valid(a))
            .ok_or_else(|| ProviderError::InvalidGrant("the provider did not tell the account's email address".into()))
    }
}

fn token_error<RE: std::error::Error + 'static>(e: RequestTokenError<RE, StandardErrorResponse<BasicErrorResponseType>>) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let detail = r.error_description().cloned().unwrap_or_else(|| r.error().to_string());
            match r.error() {
                BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => ProviderError::InvalidClient(detail),
                _ => ProviderError::InvalidGrant(detail),
            }
        }
        RequestTokenError::Request(e) => ProviderError::Unreachable(e.to_string()),
        RequestTokenError::Parse(e, _) => ProviderError::Unreachable(format!("unreadable token response: {e}")),
        RequestTokenError::Other(m) => ProviderError::Unreachable(m),
    }
}
