//! What the gateway serves outside GraphQL for the profile: the page an email-change link
//! opens, and the photo files.
//!
//! The link's page asks for a click before anything changes (`GET` is safe: mail scanners
//! that open links must not confirm a change), then posts the token back as a plain form.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::Form;

use crate::app::AppState;
use crate::error::Error;
use crate::transport::Client;

const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(serde::Deserialize)]
pub struct TokenParam {
    #[serde(default)]
    token: String,
}

/// `GET /confirm-email?token=…`: a button that confirms.
pub async fn confirm_email_page(Query(p): Query<TokenParam>) -> Response {
    let body = format!(
        "<h1>Confirm your new login email</h1>\
         <form method=\"post\" action=\"/confirm-email\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <button type=\"submit\">Confirm</button></form>",
        escape(&p.token)
    );
    page(StatusCode::OK, &body)
}

/// `POST /confirm-email`: switches the login email and says how it went.
pub async fn confirm_email(
    State(state): State<AppState>,
    Client(meta): Client,
    Form(p): Form<TokenParam>,
) -> Response {
    match state.services.profile.confirm_email_change(p.token.trim(), &meta).await {
        Ok(account) => page(
            StatusCode::OK,
            &format!("<h1>Done</h1><p>Your login email is now <b>{}</b>.</p>", escape(&account.email)),
        ),
        Err(Error::Internal(e)) => {
            tracing::error!(error = format!("{e:#}"), "confirming an email change");
            page(StatusCode::INTERNAL_SERVER_ERROR, "<h1>Something went wrong</h1><p>Try the link again later.</p>")
        }
        Err(e) => page(StatusCode::BAD_REQUEST, &format!("<h1>This link cannot be used</h1><p>{}</p>", escape(&e.message()))),
    }
}

/// `GET /media/photos/{account}/{version}/{size}.{ext}`: a photo rendition. Its URL changes
/// with every upload, so it is cached for a year.
pub async fn photo(State(state): State<AppState>, Path((account, version, file)): Path<(String, String, String)>) -> Response {
    match state.services.profile.photo_file(&account, &version, &file).await {
        Ok(Some((bytes, content_type))) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'")),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "serving a photo");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub(crate) fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Concierge</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}</style>\
         </head><body>{body}</body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        html,
    )
        .into_response()
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
