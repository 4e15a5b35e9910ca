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

/// Every message the server sends until it has been quiet for `quiet`.
async fn drain(ws: &mut crate::helpers::WsClient, quiet: Duration) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    while let Some(event) = ws.within(quiet).await {
        match event {
            WsEvent::Json(m) => seen.push(m),
            WsEvent::Closed(code) => panic!("the connection closed ({code:?}) after {seen:?}"),
        }
    }
    seen
}

#[tokio::test]
async fn subscriptions_sharing_a_connection_each_hear_only_their_own_changes() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mut ws = app.ws_signed_in(&ada.token).await;
    ws.send(json!({ "id": "notes", "type": "subscribe", "payload": { "query": "subscription { notifications { event } }" } })).await;
    ws.send(json!({ "id": "me", "type": "subscribe", "payload": { "query": "subscription { meUpdated { jobTitle } }" } })).await;
    let account = concierge::identity::model::AccountId::parse("id", &ada.id).unwrap();
    // The connection's own credential watch, and the two subscriptions.
    app.listening(concierge::fanout::Topic::Account(account), 3).await;

    let r = app.gql(Some(&ada.token), "mutation { updateProfile(input: {jobTitle: \"Pilot\"}) { id } }", json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let heard = ws.next_json().await;
    assert_eq!(heard["id"], "me", "{heard}");
    assert_eq!(heard["payload"]["data"]["meUpdated"]["jobTitle"], "Pilot");
    let more = drain(&mut ws, Duration::from_millis(300)).await;
    assert!(more.is_empty(), "only meUpdated hears a profile change: {more:?}");

    let r = app
        .gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"ci\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let heard = ws.next_json().await;
    assert_eq!(heard["id"], "notes", "{heard}");
    assert_eq!(heard["payload"]["data"]["notifications"]["event"], "SECURITY_EVENT");
    let more = drain(&mut ws, Duration::from_millis(300)).await;
    assert!(more.is_empty(), "only notifications hears a new notification: {more:?}");
}

#[tokio::test]
async fn a_query_sent_over_the_socket_is_answered_once_and_completed() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mut ws = app.ws_signed_in(&ada.token).await;

    ws.send(json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ me { email } }" } })).await;

    let next = ws.next_json().await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["payload"]["data"]["me"]["email"], "ada@example.com");
    let complete = ws.next_json().await;
    assert_eq!(complete, json!({ "id": "q", "type": "complete" }));
}

#[tokio::test]
async fn a_subscription_that_falls_behind_is_told_how_many_changes_it_missed() {
    use concierge::fanout::Change;
    use futures_util::StreamExt as _;

    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let viewer = app.services.authenticate(&ada.token).await.unwrap().expect("Ada's session authenticates");
    let account_id = viewer.account_id();
    let mut session = async_graphql::Data::default();
    session.insert(concierge::graphql::context::RequestAuth::resolved(Some(viewer), Default::default()));
    let schema = concierge::graphql::build_schema(&concierge::config::Config::defaults(), app.services.clone());
    let executor = concierge::graphql::live::LiveExecutor(schema);
    let mut stream = async_graphql::Executor::execute_stream(
        &executor,
        async_graphql::Request::new("subscription { notifications { id } }"),
        Some(std::sync::Arc::new(session)),
    );
    // Set up and idle: nothing to say yet.
    assert!(tokio::time::timeout(Duration::from_millis(200), stream.next()).await.is_err());

    // 40 changes while nobody reads: the topic keeps the last 32. A second listener shows when
    // all 40 have arrived (on PostgreSQL they come back through NOTIFY).
    let mut probe = app.services.fanout.subscribe(concierge::fanout::Topic::Account(account_id));
    for _ in 0..40 {
        app.services.fanout.publish(Change::Notification { account_id, notification_id: uuid::Uuid::now_v7() }).await;
    }
    let mut arrived = 0;
    while arrived < 40 {
        match tokio::time::timeout(Duration::from_secs(5), probe.next()).await.expect("the changes arrive").expect("open") {
            Ok(_) => arrived += 1,
            Err(concierge::fanout::Lagged(missed)) => arrived += missed,
        }
    }

    let first = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an item").expect("the stream goes on");
    assert_eq!(first.errors.len(), 1, "{first:?}");
    let extensions = first.errors[0].extensions.as_ref().expect("extensions");
    assert_eq!(extensions.get("code"), Some(&async_graphql::Value::from("LAGGED")));
    assert_eq!(extensions.get("missed"), Some(&async_graphql::Value::from(8u64)));
    // Then the 32 it kept, one item each (these notifications were never stored: an error each).
    for _ in 0..32 {
        let item = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("an item").expect("the stream goes on");
        assert_ne!(item.errors[0].extensions.as_ref().and_then(|e| e.get("code")), Some(&async_graphql::Value::from("LAGGED")));
    }
}

#[tokio::test]
async fn a_subscription_with_two_root_fields_is_refused() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mut ws = app.ws_signed_in(&ada.token).await;

    ws.send(json!({ "id": "two", "type": "subscribe", "payload": { "query": "subscription { notifications { id } meUpdated { id } }" } }))
        .await;

    let m = ws.next_json().await;
    let errors = if m["type"] == "error" { &m["payload"] } else { &m["payload"]["errors"] };
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{m}");
    assert_eq!(errors[0]["locations"][0]["column"], 37, "the second field is at fault: {m}");
}

#[tokio::test]
async fn a_store_failure_while_a_change_is_checked_is_reported_and_the_subscription_goes_on() {
    use concierge::activity::model::EventId;
    use concierge::contacts::model::ContactId;
    use concierge::fanout::{Change, Topic};
    use concierge::workspace::model::WorkspaceId;

    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let r = crate::contacts::create(&app, &ada, Some("Carol"), &["carol@customer.test"]).await;
    let contact = r["data"]["createContact"]["id"].as_str().expect("a contact").to_owned();
    let mut ws = app.ws_signed_in(&ada.token).await;
    ws.send(json!({ "id": "a", "type": "subscribe", "payload": {
        "query": "subscription($c: ID) { activityEvents(contactId: $c) { id } }", "variables": { "c": contact } } }))
        .await;
    let workspace_id = WorkspaceId(uuid::Uuid::parse_str(&ada.workspace_id).unwrap());
    app.listening(Topic::Workspace(workspace_id), 1).await;
    let contact_id = Some(ContactId(uuid::Uuid::parse_str(&contact).unwrap()));
    let activity = || Change::Activity { workspace_id, event_id: EventId(uuid::Uuid::now_v7()), contact_id };

    // The contact cannot be read while the change is checked: the store is failing.
    let db = &app.services.db;
    concierge::on_pool!(db, p => { sqlx::query("ALTER TABLE contact RENAME TO contact_away").execute(p).await.unwrap(); });
    app.services.fanout.publish(activity()).await;
    let m = ws.next_json().await;
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "INTERNAL", "{m}");

    // That was no reason to stop: once the store is back, the next change is checked and heard.
    concierge::on_pool!(db, p => { sqlx::query("ALTER TABLE contact_away RENAME TO contact").execute(p).await.unwrap(); });
    app.services.fanout.publish(activity()).await;
    let m = ws.next_json().await;
    assert_eq!(m["type"], "next", "the subscription is still there: {m}");
    assert_eq!(m["id"], "a");
    // (The change names an event that was never stored, so the item is an error of its own.)
    assert_ne!(m["payload"]["errors"][0]["extensions"]["code"], "INTERNAL", "{m}");
}
