//! `/passkeys`: a small page the gateway serves itself (no CDN) to sign in with a passkey,
//! confirm a password log-in with one, and add one, all through the public GraphQL API. For
//! platforms without a page of their own, and the browser test's target.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Scripts only from the gateway; the page talks to `/graphql` on the same origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; \
                   form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

static PAGE: &str = include_str!("../../assets/passkeys/index.html");
static SCRIPT: &str = include_str!("../../assets/passkeys/passkeys.js");

/// `GET /passkeys`.
pub async fn page() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /assets/passkeys.js`.
pub async fn script() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        SCRIPT,
    )
        .into_response()
}
