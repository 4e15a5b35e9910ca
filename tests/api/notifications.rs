//! Preferences (the matrix, audio, daily summary), in-app notifications and their live
//! subscription, push subscription registration.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, WsClient, codes, error_of};

const PREFS: &str = "{ me { preferences { audio dailySummary { enabled deliveryTime timeZone } \
    notifications { event category channel enabled isDefault } } } }";
const SET_CELLS: &str = "mutation($c: [NotificationPreferenceChange!]!) { updateNotificationPreferences(changes: $c) { notifications { event channel enabled isDefault } } }";
const SET_PREFS: &str =
    "mutation($i: UpdatePreferencesInput!) { updatePreferences(input: $i) { audio dailySummary { enabled deliveryTime timeZone } } }";

fn cell<'a>(prefs: &'a Value, event: &str, channel: &str) -> &'a Value {
    prefs["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no matrix in {prefs}"))
        .iter()
        .find(|c| c["event"] == event && c["channel"] == channel)
        .unwrap_or_else(|| panic!("no {event}/{channel} cell"))
}

async fn prefs(app: &TestApp, user: &TestUser) -> Value {
    app.gql(Some(&user.token), PREFS, json!({})).await["data"]["me"]["preferences"].clone()
}

#[tokio::test]
async fn the_matrix_comes_back_full_with_defaults() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let p = prefs(&app, &ada).await;

    assert_eq!(p["notifications"].as_array().unwrap().len(), 21 * 3, "{p}");
    assert_eq!(cell(&p, "MESSAGE_RECEIVED", "IN_APP")["enabled"], true);
    assert_eq!(cell(&p, "MESSAGE_RECEIVED", "EMAIL")["enabled"], false, "high-volume events do not email by default");
    assert_eq!(cell(&p, "CONVERSATION_ASSIGNED", "EMAIL")["category"], "MESSAGES");
    assert_eq!(p["audio"], "ASSIGNED_TO_ME");
    assert_eq!(p["dailySummary"], json!({ "enabled": false, "deliveryTime": "08:00", "timeZone": "UTC" }));
}

#[tokio::test]
async fn cells_change_at_once_and_stick() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = app
        .gql(
            Some(&ada.token),
            SET_CELLS,
            json!({ "c": [
                { "event": "MESSAGE_RECEIVED", "channel": "EMAIL", "enabled": true },
                { "event": "BILLING_UPDATE", "channel": "PUSH", "enabled": true },
                { "event": "TASK_ASSIGNED", "channel": "IN_APP", "enabled": false },
            ] }),
        )
        .await;

    assert!(r["errors"].is_null(), "{r}");
    let p = prefs(&app, &ada).await;
    assert_eq!(
        cell(&p, "MESSAGE_RECEIVED", "EMAIL"),
        &json!({ "event": "MESSAGE_RECEIVED", "category": "MESSAGES", "channel": "EMAIL", "enabled": true, "isDefault": false })
    );
    assert_eq!(cell(&p, "BILLING_UPDATE", "PUSH")["enabled"], true);
    assert_eq!(cell(&p, "TASK_ASSIGNED", "IN_APP")["enabled"], false);
    assert_eq!(cell(&p, "TASK_ASSIGNED", "EMAIL")["isDefault"], true, "other cells untouched");
}

#[tokio::test]
async fn audio_and_the_daily_summary_are_set_and_bad_values_refused_without_changes() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = app
        .gql(
            Some(&ada.token),
            SET_PREFS,
            json!({ "i": { "audio": "ALL", "dailySummary": { "enabled": true, "deliveryTime": "07:30", "timeZone": "Europe/Warsaw" } } }),
        )
        .await;
    assert_eq!(
        r["data"]["updatePreferences"],
        json!({ "audio": "ALL", "dailySummary": { "enabled": true, "deliveryTime": "07:30", "timeZone": "Europe/Warsaw" } }),
        "{r}"
    );

    for (input, field) in [
        (json!({ "audio": "NONE", "dailySummary": { "deliveryTime": "25:00" } }), "deliveryTime"),
        (json!({ "dailySummary": { "deliveryTime": "7pm" } }), "deliveryTime"),
        (json!({ "audio": "NONE", "dailySummary": { "timeZone": "Mars/Olympus_Mons" } }), "timeZone"),
    ] {
        let r = app.gql(Some(&ada.token), SET_PREFS, json!({ "i": input })).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some(field.into())), "{input}: {r}");
    }
    let unknown =
        app.gql(Some(&ada.token), SET_CELLS, json!({ "c": [{ "event": "COFFEE_READY", "channel": "EMAIL", "enabled": true }] })).await;
    assert!(unknown["errors"][0]["message"].as_str().unwrap().contains("COFFEE_READY"), "{unknown}");
    let channel =
        app.gql(Some(&ada.token), SET_CELLS, json!({ "c": [{ "event": "MENTION", "channel": "PIGEON", "enabled": true }] })).await;
    assert!(channel["errors"][0]["message"].as_str().unwrap().contains("PIGEON"), "{channel}");

    let p = prefs(&app, &ada).await;
    assert_eq!(p["audio"], "ALL", "nothing changed");
    assert_eq!(p["dailySummary"]["deliveryTime"], "07:30");
    assert!(p["notifications"].as_array().unwrap().iter().all(|c| c["isDefault"] == true));
}

async fn subscribe(app: &TestApp, user: &TestUser) -> WsClient {
    let topic = concierge::fanout::Topic::Account(concierge::identity::model::AccountId(uuid::Uuid::parse_str(&user.id).unwrap()));
    // The connection listens to its account (for credential changes), and so does the subscription.
    let before = app.services.fanout.listeners(topic);
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", user.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(
        json!({ "id": "n", "type": "subscribe", "payload": { "query": "subscription { notifications { id event title audible read } }" } }),
    )
    .await;
    app.listening(topic, before + 2).await;
    ws
}

#[tokio::test]
async fn a_security_event_reaches_its_users_open_clients_and_no_one_else() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut ada_ws = subscribe(&app, &ada).await;
    let mut bob_ws = subscribe(&app, &bob).await;

    let r = app
        .gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"x\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    assert!(r["errors"].is_null(), "{r}");

    let live = ada_ws.next_json().await;
    let n = &live["payload"]["data"]["notifications"];
    assert_eq!(
        (n["event"].clone(), n["title"].clone(), n["read"].clone()),
        (json!("SECURITY_EVENT"), json!("A personal access token was created"), json!(false)),
        "{live}"
    );
    if let Some(event) = bob_ws.within(Duration::from_millis(700)).await {
        panic!("bob's client heard something: {event:?}");
    }
}

#[tokio::test]
async fn notifications_are_listed_counted_and_marked_read() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    for name in ["one", "two", "three"] {
        app.gql(
            Some(&ada.token),
            &format!("mutation {{ createAccessToken(input: {{name: \"{name}\", scopes: [\"profile:read\"]}}) {{ token }} }}"),
            json!({}),
        )
        .await;
    }
    let list = "query($u: Boolean) { me { unreadNotificationCount notifications(first: 2, unreadOnly: $u) { edges { node { id title read } } pageInfo { hasNextPage } } } }";

    let r = app.gql(Some(&ada.token), list, json!({})).await;
    assert_eq!(r["data"]["me"]["unreadNotificationCount"], 3, "{r}");
    assert_eq!(r["data"]["me"]["notifications"]["pageInfo"]["hasNextPage"], true);
    let newest = r["data"]["me"]["notifications"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();

    let marked = app.gql(Some(&ada.token), "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }", json!({ "ids": [newest] })).await;
    assert_eq!(marked["data"]["markNotificationsRead"], 1, "{marked}");
    let r = app.gql(Some(&ada.token), list, json!({ "u": true })).await;
    assert_eq!(r["data"]["me"]["unreadNotificationCount"], 2);
    assert!(!r.to_string().contains(&newest), "unreadOnly skips the read one");
    let bad = app.gql(Some(&ada.token), "mutation { markNotificationsRead(ids: [\"nope\"]) }", json!({})).await;
    assert_eq!(error_of(&bad), ("BAD_USER_INPUT".into(), Some("ids".into())));
    let all = app.gql(Some(&ada.token), "mutation { markAllNotificationsRead }", json!({})).await;
    assert_eq!(all["data"]["markAllNotificationsRead"], 2);
    assert_eq!(app.gql(Some(&ada.token), list, json!({})).await["data"]["me"]["unreadNotificationCount"], 0);
}

#[tokio::test]
async fn a_channel_turned_off_in_the_matrix_gets_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.gql(Some(&ada.token), SET_CELLS, json!({ "c": [{ "event": "SECURITY_EVENT", "channel": "IN_APP", "enabled": false }] })).await;

    app.gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"x\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;

    let r = app.gql(Some(&ada.token), "{ me { unreadNotificationCount } }", json!({})).await;
    assert_eq!(r["data"]["me"]["unreadNotificationCount"], 0, "{r}");
}

#[tokio::test]
async fn push_subscriptions_need_an_https_endpoint_and_well_formed_keys() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let register =
        "mutation($e: String!, $p: String!, $a: String!) { registerPushSubscription(endpoint: $e, keys: {p256dh: $p, auth: $a}) }";
    let p256dh = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM";
    let auth = "tBHItJI5svbpez7KI4CCXg";

    for (vars, field) in [
        (json!({ "e": "http://push.example.com/x", "p": p256dh, "a": auth }), "endpoint"),
        (json!({ "e": "https://push.example.com/x", "p": "not-a-key", "a": auth }), "p256dh"),
        (json!({ "e": "https://push.example.com/x", "p": p256dh, "a": "c2hvcnQ" }), "auth"),
    ] {
        let r = app.gql(Some(&ada.token), register, vars.clone()).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some(field.into())), "{vars}: {r}");
    }
    let ok = app.gql(Some(&ada.token), register, json!({ "e": "https://push.example.com/x", "p": p256dh, "a": auth })).await;
    assert_eq!(ok["data"]["registerPushSubscription"], true, "{ok}");
    let aid = concierge::identity::model::AccountId::parse("id", &ada.id).unwrap();
    assert_eq!(app.services.notifications.push_subscription_count(aid).await.unwrap(), 1, "only the good one was stored");

    let gone = app
        .gql(
            Some(&ada.token),
            "mutation($e: String!) { unregisterPushSubscription(endpoint: $e) }",
            json!({ "e": "https://push.example.com/x" }),
        )
        .await;
    assert_eq!(gone["data"]["unregisterPushSubscription"], true);
    let again = app
        .gql(
            Some(&ada.token),
            "mutation($e: String!) { unregisterPushSubscription(endpoint: $e) }",
            json!({ "e": "https://push.example.com/x" }),
        )
        .await;
    assert_eq!(codes(&again), ["NOT_FOUND"]);
}

#[tokio::test]
async fn the_log_in_payload_shows_the_new_sessions_own_fields() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;

    let r = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token user { email unreadNotificationCount \
             security { twoFactorEnabled } preferences { audio } } } }",
            json!({ "e": "ada@example.com", "p": crate::helpers::PASSWORD }),
        )
        .await;

    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["logIn"]["user"]["unreadNotificationCount"], 0);
    assert_eq!(r["data"]["logIn"]["user"]["preferences"]["audio"], "ASSIGNED_TO_ME");
}
