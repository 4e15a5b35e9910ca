//! Subscriptions over WebSocket: both subprotocols, authentication in `connection_init`, and
//! clean closing on shutdown.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, WsEvent};

const ME_UPDATED: &str = "subscription { meUpdated { email memberships { role workspace { id } } } }";

#[tokio::test]
async fn a_subscriber_with_a_token_hears_its_own_account_change() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", ada.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": ME_UPDATED } })).await;

    // Someone else's change is not delivered; Ada's is.
    app.add_member(&bob, &bob.workspace_id, "ada@example.com", "ADMIN").await;

    let next = ws.next_json().await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["id"], "1");
    let memberships = next["payload"]["data"]["meUpdated"]["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 2, "{next}");
    assert!(memberships.iter().any(|m| m["role"] == "ADMIN" && m["workspace"]["id"] == bob.workspace_id.as_str()));
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works_too() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut ws = app.ws("graphql-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", ada.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "7", "type": "start", "payload": { "query": ME_UPDATED } })).await;

    app.add_member(&bob, &bob.workspace_id, "ada@example.com", "MEMBER").await;

    let data = loop {
        let m = ws.next_json().await;
        if m["type"] != "ka" {
            break m;
        }
    };
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["meUpdated"]["email"], "ada@example.com");
}

#[tokio::test]
async fn without_a_token_the_connection_opens_but_account_subscriptions_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");

    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": ME_UPDATED } })).await;

    let m = ws.next_json().await;
    let code = if m["type"] == "error" { &m["payload"][0]["extensions"]["code"] } else { &m["payload"]["errors"][0]["extensions"]["code"] };
    assert_eq!(code, "UNAUTHENTICATED", "{m}");
}

#[tokio::test]
async fn a_token_that_does_not_authenticate_is_refused_with_4403() {
    let app = TestApp::spawn().await;
    let mut ws = app.ws("graphql-transport-ws").await;

    ws.send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer cs_forged" } })).await;

    match ws.next_within(Duration::from_secs(5)).await {
        WsEvent::Closed(code) => assert_eq!(code, Some(4403)),
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

#[tokio::test]
async fn shutting_down_closes_subscriptions_cleanly() {
    let mut app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", ada.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": ME_UPDATED } })).await;

    app.begin_shutdown();

    match ws.next_within(Duration::from_secs(10)).await {
        WsEvent::Closed(code) => assert_eq!(code, Some(1001)),
        other => panic!("expected a close frame, got {other:?}"),
    }
    app.stopped(Duration::from_secs(10)).await.expect("the server stops cleanly");
}
