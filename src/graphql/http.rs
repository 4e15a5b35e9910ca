//! GraphQL over HTTP (POST and GET, JSON), as the GraphQL-over-HTTP spec describes it, and
//! GraphiQL for browsers, served from the gateway's own files.

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request as GqlRequest, Response as GqlResponse, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};

use super::context::{RequestAuth, bearer};
use super::limits::limit_error;
use crate::app::AppState;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// The media type a response uses, from the request's `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaType {
    /// `application/graphql-response+json`: HTTP status codes tell request errors apart.
    GraphqlResponse,
    /// `application/json` (legacy clients): well-formed requests always get 200.
    Json,
}

fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    // The first acceptable type in the client's list wins (q-values are rarely used here).
    for item in accept.split(',') {
        let media = item.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            "application/graphql-response+json" => return Some(MediaType::GraphqlResponse),
            "application/json" | "application/*" | "*/*" => return Some(MediaType::Json),
            _ => {}
        }
    }
    None
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/html")))
}

/// An error response for a request that never reached execution.
fn request_error(status: StatusCode, media: MediaType, error: ServerError) -> Response {
    // Not a well-formed GraphQL-over-HTTP request: a 4xx whatever the media type (only a
    // well-formed request's validation errors get 200 under application/json).
    let body = serde_json::json!({ "errors": [error] });
    json_response(status, media, &body)
}

fn json_response<T: serde::Serialize>(status: StatusCode, media: MediaType, body: &T) -> Response {
    let content_type = match media {
        MediaType::GraphqlResponse => GRAPHQL_RESPONSE,
        MediaType::Json => JSON,
    };
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], bytes).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn bad_request(message: impl Into<String>, limit: Option<&'static str>) -> ServerError {
    match limit {
        Some(limit) => limit_error(limit, message.into()),
        None => {
            let mut e = ServerError::new(message, None);
            e.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
            e
        }
    }
}

fn auth_for(state: &AppState, parts: &Parts) -> RequestAuth {
    let token = bearer(parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    RequestAuth::new(token, crate::transport::client_meta(parts, &state.config.trusted_proxies))
}

/// `POST /graphql`: a JSON request, or a batch of at most `max_batch` of them.
pub async fn post(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(media) = negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let batch = match essence.as_str() {
        "application/json" => read_json(&state, body, media).await,
        // File uploads, by the GraphQL multipart request spec (apollo-upload-client's format).
        "multipart/form-data" => read_multipart(&state, &content_type, body, media).await,
        _ => Err(request_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            bad_request("send the request as application/json (or multipart/form-data with files)", None),
        )),
    };
    let batch = match batch {
        Ok(b) => b,
        Err(response) => return response,
    };
    let requests = match batch {
        BatchRequest::Single(r) => vec![r],
        BatchRequest::Batch(rs) => rs,
    };
    if requests.len() > state.config.max_batch {
        return request_error(
            StatusCode::BAD_REQUEST,
            media,
            bad_request(format!("a batch may hold at most {} operations", state.config.max_batch), Some("batch")),
        );
    }
    if requests.iter().any(|r| r.query.trim().is_empty()) {
        return request_error(StatusCode::BAD_REQUEST, media, bad_request("the request has no query", None));
    }
    let single = requests.len() == 1;
    let requests: Vec<GqlRequest> = requests.into_iter().map(|r| r.data(auth_for(&state, &parts))).collect();
    let response = if single {
        let mut requests = requests;
        match requests.pop() {
            Some(r) => BatchResponse::Single(state.schema.execute(r).await),
            None => return request_error(StatusCode::BAD_REQUEST, media, bad_request("empty batch", None)),
        }
    } else {
        state.schema.execute_batch(BatchRequest::Batch(requests)).await
    };
    respond(media, response)
}

async fn read_body(body: Body, max: usize, media: MediaType) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, max).await.map_err(|_| {
        request_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            media,
            bad_request(format!("the request body is larger than {max} bytes"), Some("size")),
        )
    })
}

async fn read_json(state: &AppState, body: Body, media: MediaType) -> Result<BatchRequest, Response> {
    let bytes = read_body(body, state.config.max_request_bytes, media).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| request_error(StatusCode::BAD_REQUEST, media, bad_request(format!("the body is not a GraphQL request: {e}"), None)))
}

/// Most files one multipart request carries (a message's attachments).
const MAX_FILES: usize = 20;

/// `operations` + `map` + the file parts. The body may be as large as the largest photo plus
/// the usual request allowance. An oversized file is a 413 that still names the `file` field.
async fn read_multipart(state: &AppState, content_type: &str, body: Body, media: MediaType) -> Result<BatchRequest, Response> {
    // Photos and mail attachments: each file, and all of them together, at most the larger limit.
    let max_file = state.config.max_photo_bytes.max(state.config.max_send_bytes);
    let bytes = read_body(body, state.config.max_request_bytes + max_file, media).await?;
    let options = async_graphql::http::MultipartOptions::default().max_file_size(max_file).max_num_files(MAX_FILES);
    async_graphql::http::receive_batch_body(Some(content_type), bytes.as_ref(), options).await.map_err(|e| match e {
        async_graphql::ParseRequestError::PayloadTooLarge => {
            let mut error = bad_request(format!("the file is larger than {max_file} bytes"), None);
            error.extensions.get_or_insert_with(Default::default).set("field", "file");
            request_error(StatusCode::PAYLOAD_TOO_LARGE, media, error)
        }
        other => request_error(StatusCode::BAD_REQUEST, media, bad_request(format!("malformed multipart request: {other}"), None)),
    })
}

/// `GET /graphql`: GraphiQL for a browser, otherwise a query from the URL (never a mutation).
pub async fn get(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(upgrade) => super::ws::upgrade(state, upgrade, &parts).await,
            Err(rejection) => rejection.into_response(),
        };
    }
    let query = parts.uri.query().unwrap_or("");
    if wants_html(&parts.headers) && !query.split('&').any(|kv| kv.starts_with("query=")) {
        return crate::assets::graphiql_page();
    }
    let Some(media) = negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let request = match async_graphql::http::parse_query_string(query) {
        Ok(r) if !r.query.trim().is_empty() => r,
        Ok(_) => return request_error(StatusCode::BAD_REQUEST, media, bad_request("the request has no query", None)),
        Err(e) => return request_error(StatusCode::BAD_REQUEST, media, bad_request(format!("malformed request: {e}"), None)),
    };
    // GET must be safe: find the operation that would run and refuse anything but a query.
    if let Ok(doc) = async_graphql::parser::parse_query(&request.query) {
        let op = doc
            .operations
            .iter()
            .find(|(name, _)| match (&request.operation_name, name) {
                (Some(wanted), Some(name)) => wanted.as_str() == name.as_str(),
                (None, _) => true,
                (Some(_), None) => false,
            })
            .map(|(_, op)| op.node.ty);
        if matches!(op, Some(OperationType::Mutation | OperationType::Subscription)) {
            let mut response =
                request_error(StatusCode::METHOD_NOT_ALLOWED, media, bad_request("only queries may be sent with GET; use POST", None));
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            return response;
        }
    }
    let request = request.data(auth_for(&state, &parts));
    respond(media, BatchResponse::Single(state.schema.execute(request).await))
}

/// Whether a response is a refusal before execution: no data, and no error tied to a field.
fn refused_before_execution(r: &GqlResponse) -> bool {
    r.data == async_graphql::Value::Null && !r.errors.is_empty() && r.errors.iter().all(|e| e.path.is_empty())
}

/// A response as JSON; a refusal before execution carries no `data` entry at all.
fn response_json(r: &GqlResponse) -> serde_json::Value {
    let mut value = serde_json::to_value(r).unwrap_or_else(|_| serde_json::json!({ "errors": [{ "message": "internal error" }] }));
    if refused_before_execution(r)
        && let Some(map) = value.as_object_mut()
    {
        map.remove("data");
    }
    value
}

fn respond(media: MediaType, response: BatchResponse) -> Response {
    match response {
        BatchResponse::Single(r) if refused_before_execution(&r) => {
            let status = if media == MediaType::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            json_response(status, media, &response_json(&r))
        }
        BatchResponse::Single(r) => json_response(StatusCode::OK, media, &r),
        BatchResponse::Batch(rs) => {
            let body: Vec<serde_json::Value> = rs.iter().map(response_json).collect();
            json_response(StatusCode::OK, media, &body)
        }
    }
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        Body::from(r#"{"errors":[{"message":"accept application/graphql-response+json or application/json","extensions":{"code":"BAD_USER_INPUT"}}]}"#),
    )
        .into_response()
}

/// Whether `method` is one `/graphql` answers (for the 405 on others).
pub fn allowed(method: &Method) -> bool {
    method == Method::GET || method == Method::POST
}
