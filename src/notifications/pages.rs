//! `/email-preferences`: what a notification email's signed link opens when the platform has
//! no settings page of its own, and where mail clients' "unsubscribe" button posts (RFC 8058
//! one-click). Opening the page changes nothing (mail scanners open links); its button, or a
//! one-click POST, turns off exactly what the email was about.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::links::Unsubscribe;
use crate::app::AppState;
use crate::db::StoredEnum as _;
use crate::transport::page::{escape, page};

#[derive(serde::Deserialize)]
pub struct TokenParam {
    #[serde(default)]
    token: String,
}

fn what(scope: &Unsubscribe) -> String {
    match scope {
        Unsubscribe::Digest => "the daily summary email".to_owned(),
        Unsubscribe::Events(events) => {
            let names: Vec<String> = events.iter().map(|e| e.stored_name().to_lowercase().replace('_', " ")).collect();
            format!("emails about: {}", names.join(", "))
        }
    }
}

fn not_valid() -> Response {
    page(StatusCode::BAD_REQUEST, "<h1>This link is not valid</h1><p>Use the link from the email itself, whole.</p>")
}

/// `GET /email-preferences?token=…`: what the link would turn off, and a button.
pub async fn email_preferences_page(State(state): State<AppState>, Query(p): Query<TokenParam>) -> Response {
    let Some((_, scope)) = state.services.delivery.links().verify(&p.token) else { return not_valid() };
    let body = format!(
        "<h1>Stop these emails?</h1><p>You will no longer get {}. In-app notifications stay as they are.</p>\
         <form method=\"post\" action=\"/email-preferences\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\"><button type=\"submit\">Stop them</button></form>",
        escape(&what(&scope)),
        escape(p.token.trim())
    );
    page(StatusCode::OK, &body)
}

/// `POST /email-preferences` with the token in the form (the page's button) or in the query
/// (a mail client's one-click unsubscribe, whose body is `List-Unsubscribe=One-Click`).
pub async fn unsubscribe(State(state): State<AppState>, Query(q): Query<TokenParam>, Form(f): Form<OptionalToken>) -> Response {
    let token = f.token.filter(|t| !t.is_empty()).unwrap_or(q.token);
    let Some((account_id, scope)) = state.services.delivery.links().verify(&token) else { return not_valid() };
    match state.services.notifications.unsubscribe(account_id, &scope).await {
        Ok(()) => page(StatusCode::OK, &format!("<h1>Done</h1><p>You will no longer get {}.</p>", escape(&what(&scope)))),
        Err(e) => {
            tracing::error!(error = ?e, "turning emails off from a link");
            page(StatusCode::INTERNAL_SERVER_ERROR, "<h1>Something went wrong</h1><p>Try the link again later.</p>")
        }
    }
}

#[derive(serde::Deserialize)]
pub struct OptionalToken {
    token: Option<String>,
}
