//! Talking to Microsoft Graph: bearer tokens with one refresh on 401, bounded reads, links
//! kept on Graph's own origin, and the one classifier that turns a Graph reply into a
//! [`ConnectorError`].

use std::sync::Arc;
use std::time::Duration;

use concierge_connector_sdk::{AccessTokenSource, ConnectorError};
use reqwest::header::{HeaderMap, IF_MATCH, RETRY_AFTER};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::Value;

/// Graph pages are small; anything this large is not a Graph answer.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Every request asks for UTC times, so events need no zone data here.
const PREFER_UTC: &str = "outlook.timezone=\"UTC\"";

/// What a request is about, so the classifier can say what a 404 means.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The signed-in user (`/me`, `/me/calendars`).
    Account,
    /// One calendar (its delta, creating an event in it).
    Calendar(&'a str),
    /// One event (`/me/events/{id}`).
    Event(&'a str),
}

/// A signed-in Graph client for one account.
pub struct Graph {
    http: Client,
    base: Url,
    tokens: Arc<dyn AccessTokenSource>,
}

/// A successful reply: its status and JSON body (`Null` when there was none).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Graph {
    pub fn new(http: Client, base: Url, tokens: Arc<dyn AccessTokenSource>) -> Graph {
        Graph { http, base, tokens }
    }

    /// `{base}/seg/seg…`, each segment percent-encoded (Graph ids hold `=`, `+`, `/`).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A `@odata.nextLink` or `@odata.deltaLink`, followed only on Graph's own origin: a
    /// server reply must never send the account's token elsewhere.
    pub fn link(&self, link: &str) -> Result<Url, ConnectorError> {
        match Url::parse(link) {
            Ok(url) if url.origin() == self.base.origin() => Ok(url),
            _ => Err(ConnectorError::Protocol { message: "Graph sent a paging link to another origin".into() }),
        }
    }

    /// Sends one request with the current token; on 401 gets a new token once and tries
    /// again. Anything but a 2xx is classified.
    pub async fn call(&self, method: Method, url: Url, body: Option<&Value>, target: Target<'_>) -> Result<Reply, ConnectorError> {
        self.call_if_match(method, url, body, target, None).await
    }

    /// [`Graph::call`], applied only to the version with ETag `if_match` when given (Graph
    /// answers 412 when the event has changed since: [`ConnectorError::Conflict`]).
    pub async fn call_if_match(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        target: Target<'_>,
        if_match: Option<&str>,
    ) -> Result<Reply, ConnectorError> {
        let token = self.tokens.access_token().await?;
        let first = self.send(method.clone(), url.clone(), body, token.expose(), if_match).await?;
        let (status, headers, bytes) = if first.0 == StatusCode::UNAUTHORIZED {
            let token = self.tokens.refresh().await?;
            self.send(method, url, body, token.expose(), if_match).await?
        } else {
            first
        };
        if !status.is_success() {
            return Err(classify(status, &headers, &bytes, target));
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|_| ConnectorError::Protocol { message: format!("Graph answered {status} with a body that is not JSON") })?
        };
        Ok(Reply { status, body })
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        token: &str,
        if_match: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), ConnectorError> {
        let mut request =
            self.http.request(method, url).bearer_auth(token).header("Prefer", PREFER_UTC).header("Accept", "application/json");
        if let Some(etag) = if_match {
            request = request.header(IF_MATCH, etag);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(ConnectorError::Protocol { message: format!("Graph's answer is larger than {MAX_BODY} bytes") });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, headers, bytes))
    }
}

/// Network trouble. The URL is left out: paging links carry Graph's state tokens.
fn transport(e: reqwest::Error) -> ConnectorError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    ConnectorError::Unreachable { message: format!("Microsoft Graph: {what}: {}", e.without_url()) }
}

/// The one place a Graph error reply becomes a [`ConnectorError`]. Graph's error bodies
/// are `{"error": {"code", "message"}}`; only the code is kept (messages may quote data).
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], target: Target<'_>) -> ConnectorError {
    let code = serde_json::from_slice::<Value>(body).ok().and_then(|v| v["error"]["code"].as_str().map(str::to_owned)).unwrap_or_default();
    let said = if code.is_empty() { format!("Graph answered {status}") } else { format!("Graph answered {status} ({code})") };
    let retry_after = retry_after(headers);
    match status.as_u16() {
        401 => ConnectorError::Authentication { message: format!("{said}: the access token was refused, even after a refresh") },
        403 => ConnectorError::Authentication {
            message: format!("{said}: the grant lacks a scope; sign in again to allow Calendars.ReadWrite"),
        },
        404 => match target {
            Target::Calendar(id) => ConnectorError::Gone { what: format!("calendar {id}") },
            Target::Event(id) => ConnectorError::Gone { what: format!("event {id}") },
            Target::Account => ConnectorError::Protocol { message: said },
        },
        // A delta token Graph no longer knows (410, or 400 with a sync-state code).
        410 => ConnectorError::CheckpointReset { message: said },
        400 if matches!(code.as_str(), "syncStateNotFound" | "syncStateInvalid" | "resyncRequired") => {
            ConnectorError::CheckpointReset { message: said }
        }
        429 => ConnectorError::Throttled { retry_after, message: said },
        503 if retry_after.is_some() => ConnectorError::Throttled { retry_after, message: said },
        500..=599 => ConnectorError::Unreachable { message: said },
        // If-Match no longer matches, or the change key sent is stale: changed elsewhere.
        412 => ConnectorError::Conflict { message: said },
        409 if code == "ErrorIrresolvableConflict" => ConnectorError::Conflict { message: said },
        400 | 409 | 413 | 422 => ConnectorError::Rejected { message: said },
        _ => ConnectorError::Protocol { message: said },
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now()).num_seconds().max(0);
    Some(Duration::from_secs(wait.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(r) = retry {
            h.insert(RETRY_AFTER, HeaderValue::from_static(r));
        }
        h
    }

    fn code(status: u16, retry: Option<&'static str>, body: &str, target: Target<'_>) -> ConnectorError {
        classify(StatusCode::from_u16(status).unwrap(), &headers(retry), body.as_bytes(), target)
    }

    #[test]
    fn each_status_means_one_thing() {
        assert_eq!(code(401, None, "", Target::Account).code(), "AUTHENTICATION_FAILED");
        let scope = code(403, None, r#"{"error":{"code":"ErrorAccessDenied","message":"secret subject"}}"#, Target::Account);
        assert_eq!(scope.code(), "AUTHENTICATION_FAILED");
        assert!(scope.to_string().contains("Calendars.ReadWrite") && !scope.to_string().contains("secret subject"), "{scope}");
        assert_eq!(code(404, None, "", Target::Calendar("c1")), ConnectorError::Gone { what: "calendar c1".into() });
        assert_eq!(code(404, None, "", Target::Event("e1")), ConnectorError::Gone { what: "event e1".into() });
        assert_eq!(code(410, None, r#"{"error":{"code":"syncStateNotFound"}}"#, Target::Calendar("c")).code(), "CHECKPOINT_RESET");
        assert_eq!(code(400, None, r#"{"error":{"code":"syncStateInvalid"}}"#, Target::Calendar("c")).code(), "CHECKPOINT_RESET");
        assert_eq!(
            code(429, Some("7"), "", Target::Account),
            ConnectorError::Throttled { retry_after: Some(Duration::from_secs(7)), message: "Graph answered 429 Too Many Requests".into() }
        );
        assert!(
            matches!(code(503, Some("3"), "", Target::Account), ConnectorError::Throttled { retry_after: Some(d), .. } if d.as_secs() == 3)
        );
        assert_eq!(code(503, None, "<html>", Target::Account).code(), "UNREACHABLE");
        assert_eq!(code(502, None, "", Target::Account).code(), "UNREACHABLE");
        assert_eq!(code(400, None, r#"{"error":{"code":"ErrorInvalidRequest"}}"#, Target::Calendar("c")).code(), "REJECTED");
        assert_eq!(code(418, None, "", Target::Account).code(), "PROTOCOL_ERROR");
        assert_eq!(code(412, None, r#"{"error":{"code":"PreconditionFailed"}}"#, Target::Event("e")).code(), "CONFLICT");
        assert_eq!(code(409, None, r#"{"error":{"code":"ErrorIrresolvableConflict"}}"#, Target::Event("e")).code(), "CONFLICT");
        assert_eq!(code(409, None, r#"{"error":{"code":"ErrorInvalidRequest"}}"#, Target::Event("e")).code(), "REJECTED");
    }

    #[test]
    fn retry_after_may_be_a_date() {
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&h).unwrap().as_secs();
        assert!((115..=120).contains(&wait), "{wait}");
        assert_eq!(retry_after(&headers(Some("soon"))), None);
    }
}
