//! What the gateway serves outside GraphQL for the profile: the pages an email-change link
//! and a workspace invitation link open, and the photo files.
//!
//! A link's page asks for a click before anything changes (`GET` is safe: mail scanners
//! that open links must not confirm a change or accept an invitation), then posts the token
//! back as a plain form.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::db::StoredEnum as _;
use crate::error::Error;
use crate::transport::Client;
use crate::transport::page::{escape, page};

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
pub async fn confirm_email(State(state): State<AppState>, Client(meta): Client, Form(p): Form<TokenParam>) -> Response {
    match state.services.profile.confirm_email_change(p.token.trim(), &meta).await {
        Ok(account) => page(StatusCode::OK, &format!("<h1>Done</h1><p>Your login email is now <b>{}</b>.</p>", escape(&account.email))),
        Err(Error::Internal(e)) => {
            tracing::error!(error = format!("{e:#}"), "confirming an email change");
            page(StatusCode::INTERNAL_SERVER_ERROR, "<h1>Something went wrong</h1><p>Try the link again later.</p>")
        }
        Err(e) => page(StatusCode::BAD_REQUEST, &format!("<h1>This link cannot be used</h1><p>{}</p>", escape(&e.message()))),
    }
}

#[derive(serde::Deserialize)]
pub struct InvitationAnswer {
    #[serde(default)]
    token: String,
    /// `accept` or `decline`.
    #[serde(default)]
    answer: String,
}

/// `GET /invitation?token=…`: who invites the address where, with buttons to accept and
/// decline (or, for an address without an account yet, to sign up first).
pub async fn invitation_page(State(state): State<AppState>, Query(p): Query<TokenParam>) -> Response {
    match state.services.workspaces.invitation_by_token(p.token.trim()).await {
        Ok((view, has_account)) => {
            let inviter = view.invited_by_name.as_deref().unwrap_or("Someone");
            let intro = format!(
                "<h1>Join {}?</h1><p>{} invited <b>{}</b> to the workspace <b>{}</b> as {}.</p>",
                escape(&view.workspace_name),
                escape(inviter),
                escape(&view.invitation.email),
                escape(&view.workspace_name),
                view.invitation.role().stored_name().to_lowercase(),
            );
            let token = escape(p.token.trim());
            let button = |answer: &str, label: &str| {
                format!(
                    "<form method=\"post\" action=\"/invitation\" style=\"display:inline\">\
                     <input type=\"hidden\" name=\"token\" value=\"{token}\"><input type=\"hidden\" name=\"answer\" value=\"{answer}\">\
                     <button type=\"submit\">{label}</button></form> "
                )
            };
            let actions = if has_account {
                format!("{}{}", button("accept", "Accept"), button("decline", "Decline"))
            } else {
                format!(
                    "<p>Create your Concierge account with this address to accept: sign up with the invitation's token.</p>{}",
                    button("decline", "Decline")
                )
            };
            page(StatusCode::OK, &format!("{intro}{actions}"))
        }
        Err(e) => refused(e, "showing an invitation"),
    }
}

/// `POST /invitation`: accepts or declines with the link's token, and says how it went.
pub async fn answer_invitation(State(state): State<AppState>, Form(p): Form<InvitationAnswer>) -> Response {
    use crate::workspace::invitations::InvitationRef;
    let workspaces = &state.services.workspaces;
    let by = InvitationRef::Token(p.token.trim().to_owned());
    match p.answer.as_str() {
        "accept" => match workspaces.accept_invitation(None, by).await {
            Ok(_) => page(StatusCode::OK, "<h1>Welcome</h1><p>You joined the workspace. Open Concierge to start.</p>"),
            Err(e) => refused(e, "accepting an invitation"),
        },
        "decline" => match workspaces.decline_invitation(None, by).await {
            Ok(_) => page(StatusCode::OK, "<h1>Declined</h1><p>You did not join the workspace. Nothing else changed.</p>"),
            Err(e) => refused(e, "declining an invitation"),
        },
        _ => page(StatusCode::BAD_REQUEST, "<h1>This link cannot be used</h1><p>Choose accept or decline.</p>"),
    }
}

fn refused(e: Error, doing: &str) -> Response {
    match e {
        Error::Internal(e) => {
            tracing::error!(error = format!("{e:#}"), "{doing}");
            page(StatusCode::INTERNAL_SERVER_ERROR, "<h1>Something went wrong</h1><p>Try the link again later.</p>")
        }
        e => page(StatusCode::BAD_REQUEST, &format!("<h1>This link cannot be used</h1><p>{}</p>", escape(&e.message()))),
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
