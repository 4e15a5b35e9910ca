//! `GET /exports/{id}`: the archive, for its owner's session only.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::Error;
use crate::graphql::context::bearer;
use crate::service_accounts::model::Principal;
use crate::transport::Client;

pub async fn download(State(state): State<AppState>, Client(meta): Client, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    // Through the same throttle as every bearer token: guessing here costs what it costs on /graphql.
    let principal = match token {
        Some(token) => state.services.authenticate_principal_from(&token, meta.ip.as_deref()).await,
        None => Ok(None),
    };
    let viewer = match principal {
        Ok(Some(Principal::User(viewer))) => viewer,
        Ok(Some(Principal::ServiceAccount(_))) => return status(StatusCode::FORBIDDEN, "FORBIDDEN"),
        Ok(None) => return status(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        Err(e) => return failure(e),
    };
    let Ok(id) = uuid::Uuid::parse_str(&id) else { return status(StatusCode::NOT_FOUND, "NOT_FOUND") };
    match state.services.exports.archive(&viewer, id).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/zip")),
                (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"concierge-export.zip\"")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => failure(e),
    }
}

fn failure(e: Error) -> Response {
    match e {
        Error::NotFound(_) => status(StatusCode::NOT_FOUND, "NOT_FOUND"),
        Error::Forbidden(_) => status(StatusCode::FORBIDDEN, "FORBIDDEN"),
        Error::RateLimited { .. } => status(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
        Error::Internal(e) => {
            tracing::error!(error = format!("{e:#}"), "serving a data export");
            status(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        }
        _ => status(StatusCode::BAD_REQUEST, "BAD_USER_INPUT"),
    }
}

fn status(code: StatusCode, name: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": name.to_lowercase().replace('_', " "), "extensions": { "code": name } }] });
    (code, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], axum::Json(body)).into_response()
}
