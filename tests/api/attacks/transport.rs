//! Section 6, the HTTP transport: a client that never finishes its headers is cut off, every
//! refusal is JSON with a code, answers are never cached, request ids cannot be used to stuff
//! the logs, and `/metrics` can be kept away from the public.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{PASSWORD, TestApp};
use concierge::config::Redacted;

/// Reads until the server closes the connection (EOF or reset) and returns what came, or
/// `None` if it is still open after `within`.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    match tokio::time::timeout(within, socket.read_to_end(&mut received)).await {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

/// The code of a refusal's only error, checking it is JSON and says so.
fn json_code(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &str) -> String {
    let content_type = headers.get("content-type").map(|v| v.to_str().unwrap_or("")).unwrap_or("");
    assert!(content_type.contains("json"), "{status}: content type {content_type:?}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{status}: not JSON: {body:?}"));
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("{status}: no code in {body}")).to_owned()
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();

    socket.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n").await.unwrap();

    let answer = closed_within(&mut socket, Duration::from_secs(10)).await;
    assert!(answer.is_some(), "the server still holds a connection whose headers never ended");
}

#[tokio::test]
async fn an_idle_connection_that_sends_nothing_is_closed_too() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();

    let answer = closed_within(&mut socket, Duration::from_secs(10)).await;

    assert_eq!(answer.as_deref(), Some(""), "closed without an answer");
}

#[tokio::test]
async fn an_unknown_path_and_a_wrong_method_are_json_refusals_with_codes() {
    let app = TestApp::spawn().await;

    let (status, headers, body) = app.get("/wp-admin/setup.php", "*/*").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_code(status, &headers, &body), "NOT_FOUND");

    let res = app.client().delete(format!("{}/graphql", app.base)).send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers["allow"].to_str().unwrap().contains("POST"), "the Allow header stays");
    assert_eq!(json_code(status, &headers, &res.text().await.unwrap()), "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_oversized_body_is_a_json_refusal_naming_the_size_limit() {
    let app = TestApp::spawn_with(|c| c.max_request_bytes = 1024).await;

    let (status, headers, body) = app.post_raw("application/json", "x".repeat(4096)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_code(status, &headers, &body), "BAD_USER_INPUT");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["errors"][0]["extensions"]["limit"], "size");

    // The form endpoint's limit is the router's own (2 MB): its refusal is JSON all the same.
    let form = format!("token={}", "a".repeat(3 * 1024 * 1024));
    let res = app
        .client()
        .post(format!("{}/confirm-email", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_code(status, &headers, &res.text().await.unwrap()), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_gets_a_json_timeout() {
    let app = TestApp::spawn_with(|c| c.request_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();

    socket
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"query\"")
        .await
        .unwrap();

    let answer = closed_within(&mut socket, Duration::from_secs(10)).await.expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.to_lowercase().contains("content-type: application/json"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");
}

#[tokio::test]
async fn api_answers_are_never_cached_the_log_in_token_least_of_all() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", "Ada", "Lovelace").await;

    let res = app
        .client()
        .post(format!("{}/graphql", app.base))
        .json(&json!({ "query": "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }", "variables": { "e": "ada@example.com", "p": PASSWORD } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.text().await.unwrap().contains("token"));

    let (_, headers, _) = app.get("/graphql?query=%7B__typename%7D", "application/json").await;
    assert_eq!(headers["cache-control"], "no-store");
    let (_, headers, _) = app.get("/no-such-page", "*/*").await;
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn a_long_or_odd_request_id_is_replaced_and_a_plain_one_kept() {
    let app = TestApp::spawn().await;
    let id_for = |sent: String| {
        let request = app.client().get(format!("{}/healthz", app.base)).header("x-request-id", sent);
        async move { request.send().await.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned() }
    };

    for hostile in ["a".repeat(8 * 1024), "a".repeat(129), "id with spaces".into(), "x\" forged=\"1".into(), "ünïcode".into()] {
        let answered = id_for(hostile.clone()).await;
        assert_ne!(answered, hostile);
        assert_eq!(answered.len(), 36, "a fresh UUID instead of {hostile:.20}…: {answered}");
    }
    assert_eq!(id_for("a".repeat(128)).await, "a".repeat(128));
    assert_eq!(id_for("trace-me.42_b".into()).await, "trace-me.42_b");
}

#[tokio::test]
async fn metrics_with_a_token_refuse_callers_without_it() {
    let app = TestApp::spawn_with(|c| c.metrics_token = Some(Redacted("metrics-s3cret".into()))).await;
    let metrics = |token: Option<&'static str>| {
        let mut request = app.client().get(format!("{}/metrics", app.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let res = request.send().await.unwrap();
            (res.status(), res.headers().clone(), res.text().await.unwrap())
        }
    };

    for wrong in [None, Some("metrics-s3cre"), Some("metrics-s3cret-and-more"), Some("")] {
        let (status, headers, body) = metrics(wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(json_code(status, &headers, &body), "UNAUTHENTICATED");
        assert!(!body.contains("concierge_"), "no metric leaks: {body}");
    }
    let (status, _, body) = metrics(Some("metrics-s3cret")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("concierge_db_statements_total"), "{body}");
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_served_on_the_public_one() {
    let app = TestApp::spawn_with(|c| c.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await;
    let private = app.metrics_addr.expect("a metrics listener");

    let (status, headers, body) = app.get("/metrics", "text/plain").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_code(status, &headers, &body), "NOT_FOUND");

    let res = app.client().get(format!("http://{private}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("concierge_db_statements_total"));
    let res = app.client().post(format!("http://{private}/graphql")).json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the metrics address serves nothing else");
}
