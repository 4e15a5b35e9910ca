//! The pages recovery links open when the platform has none of its own: "choose a new
//! password" and "confirm your address". Like `/confirm-email`, opening a page changes
//! nothing (mail scanners open links); only submitting its form does.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::AppState;
use crate::error::{Error, PasswordRule};
use crate::transport::Client;
use crate::transport::page::{escape, page};

#[derive(serde::Deserialize)]
pub struct TokenParam {
    #[serde(default)]
    token: String,
}

#[derive(serde::Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// `GET /reset-password?token=…`: the form.
pub async fn reset_password_page(Query(p): Query<TokenParam>) -> Response {
    page(StatusCode::OK, &reset_form(&p.token, None))
}

fn reset_form(token: &str, problem: Option<&str>) -> String {
    let problem = problem.map(|p| format!("<p role=\"alert\">{}</p>", escape(p))).unwrap_or_default();
    format!(
        "<h1>Choose a new password</h1>{problem}\
         <form method=\"post\" action=\"/reset-password\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <p><label>New password<br><input type=\"password\" name=\"password\" autocomplete=\"new-password\" required></label></p>\
         <p><label>Repeat it<br><input type=\"password\" name=\"confirm\" autocomplete=\"new-password\" required></label></p>\
         <button type=\"submit\">Set the password</button></form>",
        escape(token)
    )
}

/// `POST /reset-password`: sets it and says how it went.
pub async fn reset_password(State(state): State<AppState>, Client(meta): Client, Form(f): Form<ResetForm>) -> Response {
    match state.services.recovery.reset_password(&f.token, f.password, f.confirm, &meta).await {
        Ok(_) => page(StatusCode::OK, "<h1>Done</h1><p>Your password is set. Sign in with it; every other session was signed out.</p>"),
        Err(Error::WeakPassword { unmet, .. }) => {
            let rules: Vec<&str> = unmet.iter().map(|r| rule_text(*r)).collect();
            page(StatusCode::BAD_REQUEST, &reset_form(&f.token, Some(&rules.join(" "))))
        }
        Err(e) => outcome_error(e, "resetting a password"),
    }
}

/// `GET /verify-email?token=…`: a button that confirms.
pub async fn verify_email_page(Query(p): Query<TokenParam>) -> Response {
    page(
        StatusCode::OK,
        &format!(
            "<h1>Confirm your email address</h1>\
             <form method=\"post\" action=\"/verify-email\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <button type=\"submit\">Confirm</button></form>",
            escape(&p.token)
        ),
    )
}

/// `POST /verify-email`: verifies the address.
pub async fn verify_email(State(state): State<AppState>, Client(meta): Client, Form(p): Form<TokenParam>) -> Response {
    match state.services.recovery.verify_email(&p.token, &meta).await {
        Ok(account) => page(StatusCode::OK, &format!("<h1>Done</h1><p><b>{}</b> is verified.</p>", escape(&account.email))),
        Err(e) => outcome_error(e, "verifying an address"),
    }
}

/// What the form says of an unmet rule (the API gives the rule's code; this page is the
/// gateway's own fallback, in English).
fn rule_text(rule: PasswordRule) -> &'static str {
    match rule {
        PasswordRule::MinLength => "Use at least 10 characters.",
        PasswordRule::MaxLength => "Use at most 128 characters.",
        PasswordRule::Uppercase => "Add an uppercase letter.",
        PasswordRule::Digit => "Add a digit.",
        PasswordRule::Special => "Add a special character.",
        PasswordRule::ContainsPersonalData => "Leave out your email address and names.",
        PasswordRule::TooCommon => "Choose something less common or easy to guess.",
        PasswordRule::ConfirmationMismatch => "The two passwords differ.",
    }
}

fn outcome_error(e: Error, doing: &str) -> Response {
    match e {
        Error::Internal(e) => {
            tracing::error!(error = format!("{e:#}"), "{doing}");
            page(StatusCode::INTERNAL_SERVER_ERROR, "<h1>Something went wrong</h1><p>Try the link again later.</p>")
        }
        e => page(StatusCode::BAD_REQUEST, &format!("<h1>This link cannot be used</h1><p>{}</p>", escape(&e.message()))),
    }
}
