//! The pages a provider's sign-in sends the browser back to. They finish connecting a
//! mailbox, then sign in again the calendar accounts the same grant serves: glue above both
//! the mailboxes and the calendars domain, so neither has to know the other.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::mailboxes::authorize::{CallbackParams, Outcome};
use crate::transport::Client;
use crate::transport::page::{escape, page};

/// `GET /oauth/callback/{connector}`: where the provider sends the browser back.
pub async fn callback(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Client(meta): Client,
    Query(params): Query<CallbackParams>,
) -> Response {
    let outcome = state.services.mailboxes.finish_authorization(&kind, params, &meta).await;
    if let Outcome::Connected(mailbox_id) = &outcome {
        // The same grant may serve the account's calendars: link (or sign them back in) and
        // sync them now.
        if let Err(e) = crate::calendars::store::mailbox_reauthorized(&state.services.db, *mailbox_id).await {
            tracing::warn!(error = ?e, "cannot restart the calendars of a mailbox signed in again");
        }
        state.services.calendars.sync().wake();
    }
    let base = state.config.oauth_return_url.clone().unwrap_or_else(|| format!("{}/oauth/done", state.config.public_url()));
    let mut url = match url::Url::parse(&base) {
        Ok(url) => url,
        Err(_) => return page(StatusCode::INTERNAL_SERVER_ERROR, "<h1>CONCIERGE_OAUTH_RETURN_URL is not a URL</h1>"),
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("connector", &kind);
        match &outcome {
            Outcome::Connected(id) => query.append_pair("status", "connected").append_pair("mailbox", &id.0.to_string()),
            Outcome::Failed(code) => query.append_pair("status", "error").append_pair("error", code),
        };
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
pub struct DoneParams {
    status: Option<String>,
    error: Option<String>,
    connector: Option<String>,
}

/// `GET /oauth/done`: the default return page, for gateways without a frontend of their own.
pub async fn done(Query(p): Query<DoneParams>) -> Response {
    let connector = escape(p.connector.as_deref().unwrap_or("the mailbox"));
    match p.status.as_deref() {
        Some("connected") => page(
            StatusCode::OK,
            &format!("<h1>Mailbox connected</h1><p>{connector} is connected and syncing. You can close this window.</p>"),
        ),
        _ => page(
            StatusCode::OK,
            &format!(
                "<h1>The mailbox was not connected</h1><p>{connector}: <code>{}</code>. Start again from the app.</p>",
                escape(p.error.as_deref().unwrap_or("unknown_error"))
            ),
        ),
    }
}
