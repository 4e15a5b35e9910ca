//! Sessions: listed with the current one marked, revoked one by one or all but this one;
//! a revoked session's next request fails and its subscriptions close.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, WsEvent, codes, error_of};

const SESSIONS: &str = "{ me { sessions { id current userAgent ip createdAt lastSeenAt } } }";

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.log_in("ada@example.com", PASSWORD).await;

    let r = app.gql(Some(&ada.token), SESSIONS, json!({})).await;

    let sessions = r["data"]["me"]["sessions"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn a_revoked_session_fails_at_once_and_its_subscriptions_close() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let phone = app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned();
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {phone}") } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { meUpdated { id } }" } })).await;
    let r = app.gql(Some(&ada.token), SESSIONS, json!({})).await;
    let other = r["data"]["me"]["sessions"].as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"].clone();

    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": other })).await;

    assert_eq!(r["data"]["revokeSession"], true, "{r}");
    assert_eq!(codes(&app.gql(Some(&phone), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    match ws.next_within(Duration::from_secs(10)).await {
        WsEvent::Closed(code) => assert_eq!(code, Some(4401)),
        other => panic!("the revoked session's socket stayed open: {other:?}"),
    }
    assert!(app.gql(Some(&ada.token), "{ me { id } }", json!({})).await["data"]["me"].is_object());
}

#[tokio::test]
async fn revoking_other_sessions_keeps_only_this_one() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let others: Vec<String> = futures_util::future::join_all((0..3).map(|_| app.log_in("ada@example.com", PASSWORD)))
        .await
        .iter()
        .map(|r| r["data"]["logIn"]["token"].as_str().unwrap().to_owned())
        .collect();

    let r = app.gql(Some(&ada.token), "mutation { revokeOtherSessions }", json!({})).await;

    assert_eq!(r["data"]["revokeOtherSessions"], true, "{r}");
    for token in others {
        assert_eq!(codes(&app.gql(Some(&token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    }
    let r = app.gql(Some(&ada.token), SESSIONS, json!({})).await;
    assert_eq!(r["data"]["me"]["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn sessions_of_others_and_malformed_ids_are_refused() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let r = app.gql(Some(&bob.token), SESSIONS, json!({})).await;
    let bobs = r["data"]["me"]["sessions"][0]["id"].clone();

    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": bobs })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"]);
    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": "nope" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())));
    assert!(app.gql(Some(&bob.token), "{ me { id } }", json!({})).await["data"]["me"].is_object(), "bob's session lives on");
}
