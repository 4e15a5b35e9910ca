//! Bad and abusive requests: each gets a clear, typed error, nothing is written, and the
//! server keeps answering.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, codes, error_of};

async fn still_serves(app: &TestApp) {
    let r = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(r["data"]["__typename"], "Query", "the server must keep answering: {r}");
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let app = TestApp::spawn().await;

    let (status, headers, body) = app.post_raw("application/json", "{\"query\": \"{ me { id } }\"").await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/graphql-response+json"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    assert!(body.get("data").is_none(), "a refused request has no data entry");
    still_serves(&app).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_415() {
    let app = TestApp::spawn().await;

    let (status, _, body) = app.post_raw("text/plain", "{ me { id } }").await;

    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(codes(&serde_json::from_str(&body).unwrap()), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn unknown_fields_and_wrong_types_are_refused_before_execution() {
    let app = TestApp::spawn().await;

    let unknown = app.gql(None, "{ me { id favouriteColour } }", json!({})).await;
    let wrong_type = app.gql(None, "mutation { logIn(email: 42, password: \"x\") { token } }", json!({})).await;
    let wrong_variable =
        app.gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }", json!({ "i": { "email": 1 } })).await;

    for r in [unknown, wrong_type, wrong_variable] {
        assert_eq!(codes(&r), ["BAD_USER_INPUT"], "{r}");
    }
}

#[tokio::test]
async fn over_long_strings_are_refused_by_field() {
    let app = TestApp::spawn().await;
    let huge = "a".repeat(20_000);

    let r = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            json!({ "i": { "email": format!("{huge}@example.com"), "password": PASSWORD, "firstName": "A", "lastName": "B" } }),
        )
        .await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("email".into())));

    let r = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            json!({ "i": { "email": "a@example.com", "password": format!("Aa1!{huge}"), "firstName": "A", "lastName": "B" } }),
        )
        .await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("password".into())));
    assert_eq!(r["errors"][0]["extensions"]["unmet"], json!(["MAX_LENGTH"]));
}

#[tokio::test]
async fn a_query_nested_too_deep_is_refused_before_execution() {
    let app = TestApp::spawn().await;
    let deep = format!("{{ __schema {{ types {{ fields {{ type {}{{ name }}{} }} }} }} }}", "{ ofType ".repeat(40), " }".repeat(40));

    let r = app.gql(None, &deep, json!({})).await;

    assert_eq!(codes(&r), ["BAD_USER_INPUT"], "{r}");
    assert!(r.get("data").is_none());
    still_serves(&app).await;
}

#[tokio::test]
async fn a_thousand_aliases_are_refused_and_nothing_runs() {
    let app = TestApp::spawn().await;
    let mutations: String = (0..1000)
        .map(|i| format!("a{i}: signUp(input: {{email: \"u{i}@example.com\", password: \"{PASSWORD}\", firstName: \"A\", lastName: \"B\"}}) {{ user {{ id }} }} "))
        .collect();

    let r = app.gql(None, &format!("mutation {{ {mutations} }}"), json!({})).await;

    assert_eq!(codes(&r), ["BAD_USER_INPUT"]);
    assert_eq!(r["errors"][0]["extensions"]["limit"], "aliases");
    // Not one of them ran: the first address is still free.
    let r = app.sign_up("u0@example.com", "A", "B").await;
    assert!(r.get("errors").is_none(), "{r}");
}

#[tokio::test]
async fn a_query_too_complex_is_refused() {
    let app = TestApp::spawn_with(|c| c.max_query_complexity = 5).await;

    let r = app.gql(None, "{ me { id email firstName lastName fullName status createdAt } }", json!({})).await;

    assert_eq!(r["errors"][0]["extensions"]["limit"], "complexity", "{r}");
}

#[tokio::test]
async fn a_one_mebibyte_query_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let big = json!({ "query": format!("{{ me {{ id }} }}{}", " ".repeat(1 << 20)) }).to_string();

    let (status, _, body) = app.post_raw("application/json", big).await;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"][0]["extensions"]["limit"], "size");
    still_serves(&app).await;
}

#[tokio::test]
async fn batches_are_answered_in_order_up_to_the_limit() {
    let app = TestApp::spawn_with(|c| c.max_batch = 3).await;
    let op = json!({ "query": "{ __typename }" });

    let (status, _, body) = app.post_raw("application/json", json!([op, op]).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(2));

    let (status, _, body) = app.post_raw("application/json", json!([op, op, op, op]).to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["errors"][0]["extensions"]["limit"], "batch");
}

#[tokio::test]
async fn a_request_without_a_query_is_refused() {
    let app = TestApp::spawn().await;

    let (status, _, body) = app.post_raw("application/json", "{\"variables\": {}}").await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(codes(&serde_json::from_str(&body).unwrap()), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn a_query_seen_before_is_checked_again_on_every_request() {
    let app = TestApp::spawn().await;
    let login = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";

    for _ in 0..2 {
        assert_eq!(codes(&app.gql(None, "{ me { id favouriteColour } }", json!({})).await), ["BAD_USER_INPUT"]);
    }
    let good = app.gql(None, login, json!({ "e": "a@example.com", "p": "x" })).await;
    assert_eq!(codes(&good), ["UNAUTHENTICATED"], "{good}");
    let bad = app.gql(None, login, json!({ "e": 42, "p": "x" })).await;
    assert_eq!(codes(&bad), ["BAD_USER_INPUT"], "variables are checked each time: {bad}");
}
