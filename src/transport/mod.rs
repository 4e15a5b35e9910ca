//! The HTTP transport, between the socket and the handlers: serving connections, who the
//! client is (behind proxies too), request ids, the caching and error-body rules every answer
//! follows, and who may read `/metrics`.

mod client_addr;
pub mod page;
pub mod serve;
pub mod upload;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

pub use client_addr::{Client, TrustedProxies, client_addr, client_ip, client_meta};

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-supplied request id kept.
const MAX_REQUEST_ID: usize = 128;

/// Whether a caller's `x-request-id` is kept: short, and only `[A-Za-z0-9._-]`, so it cannot
/// bloat or forge log lines.
pub fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops a caller's request id that is not [`acceptable_request_id`] (all of them, if sent
/// twice), so the next layer makes a new one.
pub async fn drop_unfit_request_id(mut request: Request) -> Request {
    let ids = request.headers().get_all(&REQUEST_ID);
    let mut ids = ids.iter();
    let fit = match (ids.next(), ids.next()) {
        (Some(id), None) => acceptable_request_id(id),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !fit {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// What every answer gets on the way out: `Cache-Control: no-store` unless the handler chose
/// (answers carry tokens and personal data; photos and assets set their own long caching), and
/// a JSON error body with a code on the statuses the router and layers answer by themselves.
pub async fn finish_response(response: Response) -> Response {
    let mut response = match error_code(response.status()) {
        Some((code, limit, message)) if !has_own_body(response.headers()) => error_response(response, code, limit, message),
        _ => response,
    };
    response.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The code (and limit) a status answered without a handler's body gets.
fn error_code(status: StatusCode) -> Option<(&'static str, Option<&'static str>, &'static str)> {
    Some(match status {
        StatusCode::NOT_FOUND => ("NOT_FOUND", None, "nothing is served at this path"),
        StatusCode::METHOD_NOT_ALLOWED => ("BAD_USER_INPUT", None, "this path does not answer this method; see the Allow header"),
        StatusCode::REQUEST_TIMEOUT => ("TIMEOUT", None, "the request took longer than the server allows"),
        StatusCode::PAYLOAD_TOO_LARGE => ("BAD_USER_INPUT", Some("size"), "the request body is larger than the server allows"),
        _ => return None,
    })
}

/// Whether a handler already wrote a body meant for clients (JSON, or a page for a browser);
/// the router's and layers' own answers are empty or plain text.
fn has_own_body(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.ends_with("json") || essence.ends_with("+json") || essence == "text/html"
}

fn error_response(response: Response, code: &str, limit: Option<&str>, message: &str) -> Response {
    let (mut parts, _) = response.into_parts();
    let mut extensions = serde_json::json!({ "code": code });
    if let Some(limit) = limit {
        extensions["limit"] = limit.into();
    }
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    Response::from_parts(parts, Body::from(body))
}

/// Whether `headers` carry `Authorization: Bearer <token>`, compared in constant time (both
/// sides hashed first, so not even the length shows).
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(token.as_bytes()));
    !presented.is_empty() && bool::from(a.ct_eq(&b))
}

/// The refusal of a request to `/metrics` without its token.
pub fn metrics_unauthorized() -> Response {
    let body = r#"{"errors":[{"message":"send the metrics token as a bearer token","extensions":{"code":"UNAUTHENTICATED"}}]}"#;
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8")),
            (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_plain_request_ids_are_kept_and_others_are_not() {
        for ok in ["trace-me-42", "a", "0f8fad5b-d9cb-469f-a165-70867728950e", "svc.app_1-2", &"x".repeat(128)] {
            assert!(acceptable_request_id(&HeaderValue::from_str(ok).unwrap()), "{ok}");
        }
        for bad in ["", "two words", "quote\"", "new\tline", "semi;colon", "slash/", &"x".repeat(129)] {
            assert!(!acceptable_request_id(&HeaderValue::from_str(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn the_metrics_token_must_match_exactly() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(bearer_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(&with("bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cret2"), "s3cret"));
        assert!(!bearer_matches(&with("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer "), ""));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }
}
