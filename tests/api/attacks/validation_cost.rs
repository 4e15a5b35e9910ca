//! A document's validation cost is bounded before it is spent: fragment bombs (fragment
//! `F{i}` spreading `F{i-1}` twice) and fragment cycles are refused after parsing, before
//! async-graphql's validation expands anything, with `extensions.limit = "selections"`, over
//! HTTP, in batches and over WebSocket, whoever asks. These tests assert codes and limit
//! names; that the refusal is fast shows in `benches/validation_cost.rs` (and a regression
//! here would hang the test for minutes rather than pass).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsEvent, codes};

/// `depth` levels of fragments, each spreading the one below twice, over `leaf`: 2^depth
/// copies of `leaf` once expanded, in under a kilobyte.
fn fragment_bomb(depth: usize, leaf: &str) -> String {
    let mut doc = format!("query Bomb {{ ...F{depth} }} fragment F0 on Query {{ {leaf} }}");
    for i in 1..=depth {
        doc.push_str(&format!(" fragment F{i} on Query {{ ...F{p} ...F{p} }}", p = i - 1));
    }
    doc
}

fn refused_by_the_selection_budget(r: &Value) {
    assert_eq!(codes(r), ["BAD_USER_INPUT"], "{r}");
    assert_eq!(r["errors"][0]["extensions"]["limit"], "selections", "{r}");
    assert!(r.get("data").is_none_or(Value::is_null), "nothing ran: {r}");
}

async fn still_serves(app: &TestApp) {
    let r = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(r["data"]["__typename"], "Query", "the gateway keeps answering: {r}");
}

#[tokio::test]
async fn a_thirty_level_fragment_bomb_is_refused_for_an_anonymous_caller() {
    let app = TestApp::spawn().await;

    for leaf in ["me { id }", "__typename"] {
        let r = app.gql(None, &fragment_bomb(30, leaf), json!({})).await;
        refused_by_the_selection_budget(&r);
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn a_thirty_level_fragment_bomb_is_refused_for_a_signed_in_user_too() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;

    for leaf in ["me { id email }", "__typename"] {
        let r = app.gql(Some(&mallory.token), &fragment_bomb(30, leaf), json!({})).await;
        refused_by_the_selection_budget(&r);
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn a_fragment_bomb_inside_a_batch_is_refused_and_its_neighbours_answered() {
    let app = TestApp::spawn().await;
    let batch = json!([{ "query": "{ __typename }" }, { "query": fragment_bomb(30, "__typename") }, { "query": "{ __typename }" }]);

    let (status, _, body) = app.post_raw("application/json", batch.to_string()).await;

    assert_eq!(status, StatusCode::OK);
    let answers: Vec<Value> = serde_json::from_str(&body).expect("a JSON list");
    assert_eq!(answers[0]["data"]["__typename"], "Query");
    refused_by_the_selection_budget(&answers[1]);
    assert_eq!(answers[2]["data"]["__typename"], "Query");
}

/// The errors of the answer to subscription `id` (`next` with errors, or `error`).
async fn ws_errors(ws: &mut crate::helpers::WsClient, id: &str) -> Value {
    loop {
        match ws.next_within(Duration::from_secs(10)).await {
            WsEvent::Json(m) if m["id"] == id && m["type"] == "error" => return json!({ "errors": m["payload"] }),
            WsEvent::Json(m) if m["id"] == id && m["type"] == "next" => return m["payload"].clone(),
            WsEvent::Json(_) => continue,
            WsEvent::Closed(code) => panic!("closed ({code:?}) before answering"),
        }
    }
}

#[tokio::test]
async fn a_fragment_bomb_over_websocket_is_refused_and_the_connection_stays_usable() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;
    let mut anonymous = app.ws("graphql-transport-ws").await;
    anonymous.send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(anonymous.next_json().await["type"], "connection_ack");
    let mut signed_in = app.ws_signed_in(&mallory.token).await;

    for ws in [&mut anonymous, &mut signed_in] {
        ws.send(json!({ "id": "bomb", "type": "subscribe", "payload": { "query": fragment_bomb(30, "__typename") } })).await;
        refused_by_the_selection_budget(&ws_errors(ws, "bomb").await);

        ws.send(json!({ "id": "after", "type": "subscribe", "payload": { "query": "{ __typename }" } })).await;
        assert_eq!(ws_errors(ws, "after").await["data"]["__typename"], "Query");
    }
}

#[tokio::test]
async fn a_fragment_that_spreads_itself_is_refused_before_validation() {
    let app = TestApp::spawn().await;
    let cycles = [
        "{ ...A } fragment A on Query { __typename ...A }",
        "{ me { ...B } } fragment B on User { id ...C } fragment C on User { email ...B }",
    ];

    for doc in cycles {
        let r = app.gql(None, doc, json!({})).await;
        assert_eq!(codes(&r), ["BAD_USER_INPUT"], "{r}");
        assert!(r.get("data").is_none_or(Value::is_null), "{r}");
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn ordinary_queries_with_fragments_still_work() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let query = "query Me { me { ...Person memberships { ...Membership } } } \
                 fragment Person on User { id email ...Names } fragment Names on User { firstName lastName } \
                 fragment Membership on Membership { role workspace { id } }";

    let r = app.gql(Some(&ada.token), query, json!({})).await;

    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["me"]["email"], "ada@example.com");
    assert_eq!(r["data"]["me"]["memberships"][0]["workspace"]["id"], ada.workspace_id.as_str());
}

#[tokio::test]
async fn a_signed_in_caller_has_a_larger_budget_than_an_anonymous_one() {
    let app = TestApp::spawn_with(|c| {
        c.max_selections_anonymous = 20;
        c.max_selections = 200;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    // 1 + 40 selections: over the anonymous budget, well under the signed-in one.
    let wide = format!("{{ me {{ {} }} }}", "id ".repeat(40));
    let huge = format!("{{ me {{ {} }} }}", "id ".repeat(400));

    refused_by_the_selection_budget(&app.gql(None, &wide, json!({})).await);
    let r = app.gql(Some(&ada.token), &wide, json!({})).await;
    assert_eq!(r["data"]["me"]["id"], ada.id.as_str(), "{r}");
    refused_by_the_selection_budget(&app.gql(Some(&ada.token), &huge, json!({})).await);
    // A token that does not authenticate gets the anonymous budget.
    refused_by_the_selection_budget(&app.gql(Some("cs_forged"), &wide, json!({})).await);
}
