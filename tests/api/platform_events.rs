//! Service accounts and the events the platform's other services publish through them:
//! managed by owners and admins, tokens shown once and stored hashed, never acting as a user;
//! `publishEvents` checks each event, stores it once per idempotency key and routes it to
//! its recipients' notification matrix (live in-app, email through the real SMTP server of
//! the mail lab), and the daily summary lists the day's tasks and appointments.

use std::time::Duration;

use chrono::{DateTime, Utc};
use concierge::clock::ManualClock;
use concierge::fanout::Topic;
use concierge::identity::model::AccountId;
use concierge::workspace::model::WorkspaceId;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::helpers::{TestApp, TestUser, WsClient, codes, error_of};
use crate::mail_lab::{MailLab, parse};

const CREATE_ACCOUNT: &str = "mutation($w: ID!, $n: String!, $s: [String!]!) { \
    createServiceAccount(workspaceId: $w, name: $n, scopes: $s) { id name scopes enabled } }";
const CREATE_TOKEN: &str = "mutation($a: ID!, $n: String!, $s: [String!]!) { \
    createServiceAccountToken(serviceAccountId: $a, name: $n, scopes: $s) { token serviceAccountToken { id name prefix scopes lastUsedAt expiresAt } } }";
const PUBLISH: &str = "mutation($e: [PlatformEventInput!]!) { \
    publishEvents(events: $e) { results { index status eventId error { code field message } } } }";

fn fresh(local: &str) -> String {
    format!("{local}-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn account(user: &TestUser) -> AccountId {
    AccountId::parse("id", &user.id).expect("an account id")
}

fn workspace(user: &TestUser) -> WorkspaceId {
    WorkspaceId::parse("id", &user.workspace_id).expect("a workspace id")
}

/// An owner's workspace with a service account holding `scopes`, and a token carrying them.
async fn service_account(app: &TestApp, owner: &TestUser, scopes: &[&str]) -> (String, String) {
    // Named after its scopes: names are unique in a workspace.
    let name = format!("CRM {}", scopes.join(" "));
    let r = app.gql(Some(&owner.token), CREATE_ACCOUNT, json!({ "w": owner.workspace_id, "n": name, "s": scopes })).await;
    let id = r["data"]["createServiceAccount"]["id"].as_str().unwrap_or_else(|| panic!("no service account: {r}")).to_owned();
    let r = app.gql(Some(&owner.token), CREATE_TOKEN, json!({ "a": id, "n": "production", "s": scopes })).await;
    let token = r["data"]["createServiceAccountToken"]["token"].as_str().unwrap_or_else(|| panic!("no token: {r}")).to_owned();
    (id, token)
}

/// A `task.assigned` for the given users.
fn task_for(users: &[&TestUser], key: &str) -> Value {
    json!({
        "kind": "task.assigned",
        "recipients": { "userIds": users.iter().map(|u| u.id.clone()).collect::<Vec<_>>() },
        "subject": { "type": "task", "id": "T-1", "title": "Call Bob back", "url": "https://crm.example/tasks/T-1" },
        "actor": { "type": "user", "id": "u-9", "name": "Eve Adams" },
        "occurredAt": "2026-11-23T09:00:00Z",
        "data": { "dueAt": "2026-11-24T15:00:00Z", "priority": "high" },
        "idempotencyKey": key,
    })
}

async fn publish(app: &TestApp, token: &str, events: Value) -> Value {
    app.gql(Some(token), PUBLISH, json!({ "e": events })).await
}

fn results(r: &Value) -> &Vec<Value> {
    r["data"]["publishEvents"]["results"].as_array().unwrap_or_else(|| panic!("no results in {r}"))
}

/// A webhook of the owner's workspace for `task.assigned`, to a port nothing answers: its
/// deliveries stay queued.
async fn task_webhook(app: &TestApp, owner: &TestUser) -> String {
    let r = app
        .gql(
            Some(&owner.token),
            "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }",
            json!({ "i": { "workspaceId": owner.workspace_id, "url": "http://127.0.0.1:9/hooks", "eventKinds": ["task.assigned"] } }),
        )
        .await;
    r["data"]["createWebhook"]["webhook"]["id"].as_str().unwrap_or_else(|| panic!("no webhook: {r}")).to_owned()
}

async fn stored(app: &TestApp, owner: &TestUser) -> i64 {
    app.services.platform_events.count(workspace(owner)).await.expect("count")
}

/// The owner's workspace with `member` added to it.
async fn join(app: &TestApp, owner: &TestUser, member: &TestUser, role: &str) {
    let r = app.add_member(owner, &owner.workspace_id, &member.email, role).await;
    assert!(r["errors"].is_null(), "{r}");
}

async fn subscribe(app: &TestApp, user: &TestUser) -> WsClient {
    let topic = Topic::Account(account(user));
    // The connection listens to its account (for credential changes), and so does the subscription.
    let before = app.services.fanout.listeners(topic);
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", user.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(
        json!({ "id": "n", "type": "subscribe", "payload": { "query": "subscription { notifications { id event title body audible } }" } }),
    )
    .await;
    app.listening(topic, before + 2).await;
    ws
}

async fn unread(app: &TestApp, user: &TestUser) -> i64 {
    let r = app.gql(Some(&user.token), "{ me { unreadNotificationCount } }", json!({})).await;
    r["data"]["me"]["unreadNotificationCount"].as_i64().unwrap_or_else(|| panic!("{r}"))
}

// --- publishing and routing ---------------------------------------------------------------

#[tokio::test]
async fn a_published_task_reaches_its_recipients_open_subscription_and_no_one_else() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    join(&app, &owner, &bob, "MEMBER").await;
    join(&app, &owner, &carol, "MEMBER").await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let mut bob_ws = subscribe(&app, &bob).await;
    let mut carol_ws = subscribe(&app, &carol).await;

    let r = publish(&app, &token, json!([task_for(&[&bob], "T-1:assigned")])).await;

    let result = &results(&r)[0];
    assert_eq!(
        (result["index"].clone(), result["status"].clone(), result["error"].clone()),
        (json!(0), json!("ACCEPTED"), Value::Null),
        "{r}"
    );
    assert!(result["eventId"].is_string(), "{r}");
    let live = bob_ws.next_json().await;
    let n = &live["payload"]["data"]["notifications"];
    assert_eq!(
        (n["event"].clone(), n["title"].clone(), n["body"].clone()),
        (json!("TASK_ASSIGNED"), json!("Call Bob back"), json!("Eve Adams")),
        "{live}"
    );
    if let Some(event) = carol_ws.within(Duration::from_millis(700)).await {
        panic!("carol's client heard something: {event:?}");
    }
    assert_eq!(stored(&app, &owner).await, 1);
}

#[tokio::test]
async fn the_same_idempotency_key_again_is_a_duplicate_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    join(&app, &owner, &bob, "MEMBER").await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;

    let first = publish(&app, &token, json!([task_for(&[&bob], "T-1:assigned")])).await;
    // Again, and twice within one batch.
    let again = publish(
        &app,
        &token,
        json!([task_for(&[&bob], "T-1:assigned"), task_for(&[&bob], "T-2:assigned"), task_for(&[&bob], "T-2:assigned")]),
    )
    .await;

    let statuses: Vec<&Value> = results(&again).iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, [&json!("DUPLICATE"), &json!("ACCEPTED"), &json!("DUPLICATE")], "{again}");
    assert_eq!(results(&again)[0]["eventId"], results(&first)[0]["eventId"], "a duplicate names the event stored first");
    assert_eq!(results(&again)[2]["eventId"], results(&again)[1]["eventId"]);
    assert_eq!(stored(&app, &owner).await, 2);
    assert_eq!(unread(&app, &bob).await, 2, "one notification per event");
}

#[tokio::test]
async fn retries_racing_with_one_idempotency_key_store_one_event() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;

    let racing = (0..6).map(|_| publish(&app, &token, json!([task_for(&[&owner], "T-1:assigned")])));
    let answers = futures_util::future::join_all(racing).await;

    let statuses: Vec<String> = answers.iter().map(|r| results(r)[0]["status"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "ACCEPTED").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "DUPLICATE").count(), 5, "{statuses:?}");
    let ids: std::collections::HashSet<&str> = answers.iter().filter_map(|r| results(r)[0]["eventId"].as_str()).collect();
    assert_eq!(ids.len(), 1, "every answer names the one event");
    assert_eq!(stored(&app, &owner).await, 1);
    assert_eq!(unread(&app, &owner).await, 1);
}

#[tokio::test]
async fn a_user_whose_matrix_turns_the_kind_off_in_app_gets_no_in_app_notification() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    join(&app, &owner, &bob, "MEMBER").await;
    let r = app
        .gql(
            Some(&bob.token),
            "mutation { updateNotificationPreferences(changes: [{event: TASK_ASSIGNED, channel: IN_APP, enabled: false}]) { audio } }",
            json!({}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let mut bob_ws = subscribe(&app, &bob).await;

    let r = publish(&app, &token, json!([task_for(&[&bob], "T-1:assigned")])).await;

    assert_eq!(results(&r)[0]["status"], "ACCEPTED", "{r}");
    if let Some(event) = bob_ws.within(Duration::from_millis(700)).await {
        panic!("bob's client heard something: {event:?}");
    }
    assert_eq!(unread(&app, &bob).await, 0);
}

#[tokio::test]
async fn roles_reach_every_active_member_holding_them() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let admin = app.user("admin@example.com").await;
    let member = app.user("member@example.com").await;
    join(&app, &owner, &admin, "ADMIN").await;
    join(&app, &owner, &member, "MEMBER").await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let event = json!({
        "kind": "billing.updated",
        "recipients": { "roles": ["OWNER", "ADMIN"] },
        "subject": { "type": "invoice", "id": "INV-7", "title": "Invoice INV-7 is available" },
        "occurredAt": "2026-11-23T09:00:00Z",
        "data": { "status": "invoice_available", "amount": 49.0, "currency": "EUR" },
        "idempotencyKey": "INV-7",
    });

    let r = publish(&app, &token, json!([event])).await;

    assert_eq!(results(&r)[0]["status"], "ACCEPTED", "{r}");
    assert_eq!((unread(&app, &owner).await, unread(&app, &admin).await, unread(&app, &member).await), (1, 1, 0));
}

#[tokio::test]
async fn the_kinds_email_reaches_the_smtp_server_in_the_recipients_language() {
    let lab = MailLab::get().await;
    let app = TestApp::spawn_with(|c| {
        c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url()));
        c.email_batch_secs = 0;
    })
    .await;
    let owner = app.user(&fresh("owner")).await;
    let bob = app.user(&fresh("bob")).await;
    join(&app, &owner, &bob, "MEMBER").await;
    let r = app.gql(Some(&bob.token), "mutation { updateProfile(input: {language: \"de\"}) { language } }", json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;

    let r = publish(&app, &token, json!([task_for(&[&bob], "T-1:assigned")])).await;
    assert_eq!(results(&r)[0]["status"], "ACCEPTED", "{r}");

    // The first message Bob got was his invitation to the owner's workspace.
    let mail = parse(&lab.wait_for(&bob.email, 2).await[1]);
    assert_eq!(mail.subject, "Call Bob back");
    assert!(mail.text.starts_with("Hallo Test User,"), "the German frame: {}", mail.text);
    assert!(mail.text.contains("Eve Adams"), "{}", mail.text);
    assert!(lab.messages_to(&owner.email).await.is_empty(), "only the recipient is mailed");
}

// --- bad input ------------------------------------------------------------------------------

#[tokio::test]
async fn bad_events_are_rejected_one_by_one_naming_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    let stranger = app.user("stranger@example.com").await;
    join(&app, &owner, &bob, "MEMBER").await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let mut unknown = task_for(&[&bob], "k0");
    unknown["kind"] = json!("task.exploded");
    let mut broken = task_for(&[&bob], "k1");
    broken["data"] = json!({ "dueAt": "tomorrow-ish" });
    let outsider = task_for(&[&bob, &stranger], "k2");
    let mut concierge_own = task_for(&[&bob], "k3");
    concierge_own["kind"] = json!("security.event");
    let mut bad_url = task_for(&[&bob], "k4");
    bad_url["subject"]["url"] = json!("javascript:alert(1)");
    let good = task_for(&[&bob], "k5");

    let r = publish(&app, &token, json!([unknown, broken, outsider, concierge_own, bad_url, good])).await;

    let got: Vec<(String, Value, Value)> = results(&r)
        .iter()
        .map(|x| (x["status"].as_str().unwrap_or_default().to_owned(), x["error"]["code"].clone(), x["error"]["field"].clone()))
        .collect();
    let rejected = |field: &str| ("REJECTED".to_owned(), json!("BAD_USER_INPUT"), json!(field));
    assert_eq!(
        got,
        [
            rejected("events[0].kind"),
            rejected("events[1].data/dueAt"),
            rejected("events[2].recipients.userIds[1]"),
            rejected("events[3].kind"),
            rejected("events[4].subject.url"),
            ("ACCEPTED".to_owned(), Value::Null, Value::Null),
        ],
        "{r}"
    );
    assert!(results(&r)[..5].iter().all(|x| x["eventId"].is_null()));
    assert_eq!(stored(&app, &owner).await, 1, "only the good event");
    assert_eq!(unread(&app, &bob).await, 1);
    assert_eq!(unread(&app, &stranger).await, 0);
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let app = TestApp::spawn_with(|c| c.publish_batch_max = 2).await;
    let owner = app.user("owner@example.com").await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;

    let r = publish(&app, &token, json!([task_for(&[&owner], "a"), task_for(&[&owner], "b"), task_for(&[&owner], "c")])).await;

    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("events".into())), "{r}");
    assert_eq!(stored(&app, &owner).await, 0);
}

#[tokio::test]
async fn only_a_service_token_with_events_publish_may_publish() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let (_, webhooks_only) = service_account(&app, &owner, &["webhooks:manage"]).await;
    let events = json!([task_for(&[&owner], "k")]);

    let session = publish(&app, &owner.token, events.clone()).await;
    let r = app
        .gql(Some(&owner.token), "mutation { createAccessToken(input: {name: \"x\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    let personal = publish(&app, r["data"]["createAccessToken"]["token"].as_str().expect("a token"), events.clone()).await;
    let unscoped = publish(&app, &webhooks_only, events.clone()).await;
    let anonymous = app.gql(None, PUBLISH, json!({ "e": events })).await;

    assert_eq!(codes(&session), ["FORBIDDEN"], "{session}");
    assert_eq!(codes(&personal), ["FORBIDDEN"], "{personal}");
    assert_eq!(codes(&unscoped), ["FORBIDDEN"], "{unscoped}");
    assert_eq!(codes(&anonymous), ["UNAUTHENTICATED"], "{anonymous}");
    assert_eq!(stored(&app, &owner).await, 0);
}

#[tokio::test]
async fn a_disabled_service_account_or_a_revoked_token_is_refused() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let (id, token) = service_account(&app, &owner, &["events:publish"]).await;

    let r =
        app.gql(Some(&owner.token), "mutation($i: ID!) { disableServiceAccount(id: $i) { enabled disabledAt } }", json!({ "i": id })).await;
    assert_eq!(r["data"]["disableServiceAccount"]["enabled"], false, "{r}");
    let disabled = publish(&app, &token, json!([task_for(&[&owner], "a")])).await;
    assert_eq!(codes(&disabled), ["UNAUTHENTICATED"], "{disabled}");

    app.gql(Some(&owner.token), "mutation($i: ID!) { enableServiceAccount(id: $i) { enabled } }", json!({ "i": id })).await;
    let enabled = publish(&app, &token, json!([task_for(&[&owner], "b")])).await;
    assert_eq!(results(&enabled)[0]["status"], "ACCEPTED", "{enabled}");

    let listed =
        app.gql(Some(&owner.token), "query($i: ID!) { serviceAccount(id: $i) { tokens { id lastUsedAt } } }", json!({ "i": id })).await;
    let tokens = &listed["data"]["serviceAccount"]["tokens"];
    assert!(tokens[0]["lastUsedAt"].is_string(), "last use recorded: {listed}");
    let r = app
        .gql(Some(&owner.token), "mutation($i: ID!) { revokeServiceAccountToken(id: $i) { id } }", json!({ "i": tokens[0]["id"] }))
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let revoked = publish(&app, &token, json!([task_for(&[&owner], "c")])).await;
    assert_eq!(codes(&revoked), ["UNAUTHENTICATED"], "{revoked}");
    assert_eq!(stored(&app, &owner).await, 1, "only while enabled and live");
}

// --- managing service accounts ----------------------------------------------------------------

#[tokio::test]
async fn a_member_cannot_create_a_service_account_and_a_stranger_cannot_see_the_workspaces() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let member = app.user("member@example.com").await;
    let stranger = app.user("stranger@example.com").await;
    join(&app, &owner, &member, "MEMBER").await;
    let (id, _) = service_account(&app, &owner, &["events:publish"]).await;
    let create = json!({ "w": owner.workspace_id, "n": "Billing", "s": ["events:publish"] });

    assert_eq!(codes(&app.gql(Some(&member.token), CREATE_ACCOUNT, create.clone()).await), ["FORBIDDEN"]);
    assert_eq!(codes(&app.gql(Some(&stranger.token), CREATE_ACCOUNT, create.clone()).await), ["NOT_FOUND"]);
    let list = "query($w: ID!) { serviceAccounts(workspaceId: $w) { id } }";
    assert_eq!(codes(&app.gql(Some(&member.token), list, json!({ "w": owner.workspace_id })).await), ["FORBIDDEN"]);
    let one = "query($i: ID!) { serviceAccount(id: $i) { id } }";
    assert_eq!(codes(&app.gql(Some(&stranger.token), one, json!({ "i": id })).await), ["NOT_FOUND"]);
    // A personal access token never manages credentials, whatever its scopes.
    let r = app
        .gql(
            Some(&owner.token),
            "mutation { createAccessToken(input: {name: \"x\", scopes: [\"workspaces:write\"]}) { token } }",
            json!({}),
        )
        .await;
    let personal = r["data"]["createAccessToken"]["token"].as_str().expect("a token").to_owned();
    assert_eq!(codes(&app.gql(Some(&personal), CREATE_ACCOUNT, create).await), ["FORBIDDEN"]);

    let admin = app.user("admin@example.com").await;
    join(&app, &owner, &admin, "ADMIN").await;
    let r = app.gql(Some(&admin.token), CREATE_ACCOUNT, json!({ "w": owner.workspace_id, "n": "Billing", "s": ["events:publish"] })).await;
    assert_eq!(r["data"]["createServiceAccount"]["name"], "Billing", "an admin may: {r}");
    let r = app.gql(Some(&owner.token), list, json!({ "w": owner.workspace_id })).await;
    assert_eq!(r["data"]["serviceAccounts"].as_array().map(Vec::len), Some(2), "{r}");
    let dup =
        app.gql(Some(&owner.token), CREATE_ACCOUNT, json!({ "w": owner.workspace_id, "n": "Billing", "s": ["events:publish"] })).await;
    assert_eq!(error_of(&dup), ("CONFLICT".into(), Some("name".into())), "{dup}");
}

#[tokio::test]
async fn a_service_token_is_shown_once_stored_hashed_and_carries_only_service_scopes() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let r = app.gql(Some(&owner.token), CREATE_ACCOUNT, json!({ "w": owner.workspace_id, "n": "CRM", "s": ["events:publish"] })).await;
    let id = r["data"]["createServiceAccount"]["id"].as_str().expect("an id").to_owned();

    let r = app.gql(Some(&owner.token), CREATE_TOKEN, json!({ "a": id, "n": "production", "s": ["events:publish"] })).await;

    let token = r["data"]["createServiceAccountToken"]["token"].as_str().expect("a token").to_owned();
    assert!(token.starts_with("csat_") && token.len() == 41, "{token}");
    let node = &r["data"]["createServiceAccountToken"]["serviceAccountToken"];
    assert_eq!((node["prefix"].as_str(), node["scopes"].clone()), (Some(&token[..9]), json!(["events:publish"])));
    let listed = app
        .gql(
            Some(&owner.token),
            "query($i: ID!) { serviceAccount(id: $i) { name scopes tokens { name prefix scopes lastUsedAt expiresAt } } }",
            json!({ "i": id }),
        )
        .await;
    assert!(!listed.to_string().contains(&token), "never shown again: {listed}");
    assert_eq!(listed["data"]["serviceAccount"]["tokens"][0]["name"], "production");
    let rows: Vec<(Vec<u8>, String)> =
        concierge::on_pool!(&app.services.db, p => sqlx::query_as("SELECT token_hash, display_prefix FROM service_account_token")
        .fetch_all(p)
        .await)
        .expect("rows");
    assert_eq!(rows, [(Sha256::digest(token.as_bytes()).to_vec(), token[..9].to_owned())], "only the SHA-256 is kept");

    // Scopes stay in their own vocabulary, and within the account's.
    for scopes in [json!(["profile:read"]), json!(["webhooks:manage"])] {
        let r = app.gql(Some(&owner.token), CREATE_TOKEN, json!({ "a": id, "n": "x", "s": scopes })).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("scopes".into())), "{scopes}: {r}");
    }
    let r = app
        .gql(Some(&owner.token), "mutation { createAccessToken(input: {name: \"x\", scopes: [\"events:publish\"]}) { token } }", json!({}))
        .await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("scopes".into())), "a personal token cannot carry it: {r}");
}

#[tokio::test]
async fn a_service_token_is_not_a_user() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let (_, token) = service_account(&app, &owner, &["events:publish", "webhooks:manage"]).await;

    for query in [
        "{ me { id } }",
        "query($w: ID!) { workspace(id: $w) { name } }",
        "query($w: ID!) { serviceAccounts(workspaceId: $w) { id } }",
        "query($w: ID!) { contacts(workspaceId: $w, first: 1) { edges { node { id } } } }",
        "mutation { createAccessToken(input: {name: \"x\", scopes: [\"profile:read\"]}) { token } }",
    ] {
        let r = app.gql(Some(&token), query, json!({ "w": owner.workspace_id })).await;
        assert_eq!(codes(&r), ["FORBIDDEN"], "{query}: {r}");
    }
    // Nor can it open a WebSocket as one.
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;
    assert!(matches!(ws.next_within(Duration::from_secs(5)).await, crate::helpers::WsEvent::Closed(Some(4403))));
}

#[tokio::test]
async fn managing_service_accounts_is_in_the_security_log_and_deleting_one_ends_its_tokens() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let (id, token) = service_account(&app, &owner, &["events:publish"]).await;
    let r = app
        .gql(Some(&owner.token), "mutation($i: ID!) { renameServiceAccount(id: $i, name: \"CRM (EU)\") { name } }", json!({ "i": id }))
        .await;
    assert_eq!(r["data"]["renameServiceAccount"]["name"], "CRM (EU)", "{r}");
    assert_eq!(results(&publish(&app, &token, json!([task_for(&[&owner], "a")])).await)[0]["status"], "ACCEPTED");

    let r = app.gql(Some(&owner.token), "mutation($i: ID!) { deleteServiceAccount(id: $i) }", json!({ "i": id })).await;
    assert_eq!(r["data"]["deleteServiceAccount"], true, "{r}");

    assert_eq!(codes(&publish(&app, &token, json!([task_for(&[&owner], "b")])).await), ["UNAUTHENTICATED"]);
    assert_eq!(stored(&app, &owner).await, 1, "its events stay");
    let log = app.gql(Some(&owner.token), "{ me { securityEvents(first: 20) { edges { node { kind detail } } } } }", json!({})).await;
    let kinds: Vec<&str> =
        log["data"]["me"]["securityEvents"]["edges"].as_array().expect("edges").iter().filter_map(|e| e["node"]["kind"].as_str()).collect();
    for kind in ["SERVICE_ACCOUNT_CREATED", "SERVICE_ACCOUNT_TOKEN_CREATED", "SERVICE_ACCOUNT_DELETED"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(!log.to_string().contains(&token), "no secret in the log");
}

// --- the daily summary -------------------------------------------------------------------------

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("an RFC 3339 time").with_timezone(&Utc)
}

#[tokio::test]
async fn the_daily_summary_lists_the_days_tasks_and_appointments_in_the_users_language() {
    let lab = MailLab::get().await;
    let clock = ManualClock::new(at("2026-11-23T05:00:00Z"));
    let app = TestApp::spawn_with_clock(|c| c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url())), clock.clone()).await;
    let owner = app.user(&fresh("agenda-owner")).await;
    let bob = app.user(&fresh("agenda")).await;
    join(&app, &owner, &bob, "MEMBER").await;
    let r = app
        .gql(
            Some(&bob.token),
            "mutation { updateProfile(input: {language: \"pl\"}) { language } updatePreferences(input: { dailySummary: { enabled: true, deliveryTime: \"08:00\", timeZone: \"Europe/Warsaw\" } }) { audio } }",
            json!({}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    // Bob only wants the summary: no notification per event (the summary's day does not
    // depend on them).
    let r = app
        .gql(
            Some(&bob.token),
            "mutation { updateNotificationPreferences(changes: [{event: TASK_ASSIGNED, channel: EMAIL, enabled: false}, \
               {event: TASK_ASSIGNED, channel: IN_APP, enabled: false}, {event: APPOINTMENT_BOOKED, channel: EMAIL, enabled: false}, \
               {event: APPOINTMENT_BOOKED, channel: IN_APP, enabled: false}]) { audio } }",
            json!({}),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let task = |key: &str, id: &str, title: &str, due: &str| {
        let mut e = task_for(&[&bob], key);
        e["subject"] = json!({ "type": "task", "id": id, "title": title });
        e["data"] = json!({ "dueAt": due });
        e
    };
    let demo = json!({
        "kind": "appointment.booked",
        "recipients": { "userIds": [bob.id] },
        "subject": { "type": "appointment", "id": "A-1", "title": "Demo with Acme" },
        "occurredAt": "2026-11-20T09:00:00Z",
        "data": { "startsAt": "2026-11-23T09:30:00Z", "endsAt": "2026-11-23T10:30:00Z" },
        "idempotencyKey": "A-1:booked",
    });
    let r = publish(
        &app,
        &token,
        json!([
            task("T-1", "T-1", "Call Bob back", "2026-11-23T14:00:00Z"), // 15:00 in Warsaw today
            task("T-2", "T-2", "Send the contract", "2026-11-24T09:00:00Z"), // tomorrow
            task("T-3", "T-3", "Late-night check", "2026-11-23T23:30:00Z"), // 00:30 tomorrow in Warsaw
            demo,
        ]),
    )
    .await;
    assert!(results(&r).iter().all(|x| x["status"] == "ACCEPTED"), "{r}");

    clock.set(at("2026-11-23T07:00:00Z")); // 08:00 in Warsaw

    let summary = lab
        .wait_for(&bob.email, 2) // the invitation to the owner's workspace, then the summary
        .await
        .iter()
        .map(|raw| parse(raw))
        .find(|m| m.subject.contains("2026-11-23"))
        .expect("the summary email");
    assert!(summary.text.contains("Dzisiejsze spotkania") && summary.text.contains("10:30 – Demo with Acme"), "{}", summary.text);
    assert!(summary.text.contains("Zadania na dziś") && summary.text.contains("Call Bob back (termin 15:00)"), "{}", summary.text);
    assert!(!summary.text.contains("Send the contract") && !summary.text.contains("Late-night check"), "{}", summary.text);
    assert!(summary.html.as_deref().is_some_and(|h| h.contains("Call Bob back (termin 15:00)")));
}

// --- webhooks -----------------------------------------------------------------------------------

#[tokio::test]
async fn an_accepted_event_is_queued_for_the_workspaces_webhooks_and_a_rejected_one_is_not() {
    let app = TestApp::spawn_with(|c| c.allow_loopback()).await;
    let owner = app.user("owner@example.com").await;
    let webhook = task_webhook(&app, &owner).await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let mut broken = task_for(&[&owner], "bad");
    broken["data"] = json!({ "dueAt": "never" });

    let r = publish(&app, &token, json!([task_for(&[&owner], "good"), broken])).await;

    let event_id = results(&r)[0]["eventId"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let deliveries = app
        .gql(
            Some(&owner.token),
            "query($i: ID!) { webhook(id: $i) { deliveries(first: 10) { edges { node { eventId eventType } } } } }",
            json!({ "i": webhook }),
        )
        .await;
    let edges = deliveries["data"]["webhook"]["deliveries"]["edges"].as_array().unwrap_or_else(|| panic!("{deliveries}"));
    assert_eq!(edges.len(), 1, "{deliveries}");
    assert_eq!(
        (edges[0]["node"]["eventId"].as_str(), edges[0]["node"]["eventType"].as_str()),
        (Some(event_id.as_str()), Some("task.assigned"))
    );
}

#[tokio::test]
async fn an_event_whose_notification_cannot_be_stored_is_rejected_whole_and_the_rest_of_its_batch_is_kept() {
    let app = TestApp::spawn_with(|c| c.allow_loopback()).await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    join(&app, &owner, &bob, "MEMBER").await;
    let webhook = task_webhook(&app, &owner).await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    // The database refuses the notification of one event, after its event row, recipients
    // and webhook delivery were written in the same transaction.
    crate::helpers::refuse_inserts(&app.services.db, "notification", "title", "Poisoned").await;
    let mut poisoned = task_for(&[&owner, &bob], "T-2:assigned");
    poisoned["subject"]["title"] = json!("Poisoned");

    let r = publish(&app, &token, json!([task_for(&[&bob], "T-1:assigned"), poisoned, task_for(&[&owner], "T-3:assigned")])).await;

    let statuses: Vec<&Value> = results(&r).iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, [&json!("ACCEPTED"), &json!("REJECTED"), &json!("ACCEPTED")], "{r}");
    assert_eq!(results(&r)[1]["error"]["code"], "INTERNAL", "{r}");
    assert_eq!(stored(&app, &owner).await, 2, "nothing of the rejected event is kept");
    assert_eq!((unread(&app, &bob).await, unread(&app, &owner).await), (1, 1));
    let deliveries = app
        .gql(
            Some(&owner.token),
            "query($i: ID!) { webhook(id: $i) { deliveries(first: 10) { edges { node { eventId } } } } }",
            json!({ "i": webhook }),
        )
        .await;
    let mut delivered: Vec<&str> = deliveries["data"]["webhook"]["deliveries"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{deliveries}"))
        .iter()
        .filter_map(|e| e["node"]["eventId"].as_str())
        .collect();
    delivered.sort();
    let mut accepted: Vec<&str> = [0, 2].iter().filter_map(|i| results(&r)[*i]["eventId"].as_str()).collect();
    accepted.sort();
    assert_eq!(delivered, accepted, "the rejected event's webhook delivery went with it");

    // Sent again once the database takes it, it is new, not a duplicate of a half-stored one.
    crate::helpers::allow_inserts(&app.services.db, "notification").await;
    let mut poisoned = task_for(&[&owner, &bob], "T-2:assigned");
    poisoned["subject"]["title"] = json!("Poisoned");
    let again = publish(&app, &token, json!([poisoned])).await;
    assert_eq!(results(&again)[0]["status"], "ACCEPTED", "{again}");
    assert_eq!((unread(&app, &bob).await, unread(&app, &owner).await), (2, 2));
}

#[tokio::test]
async fn a_service_account_with_webhooks_manage_manages_its_own_workspaces_webhooks_only() {
    let app = TestApp::spawn_with(|c| c.allow_loopback()).await;
    let owner = app.user("owner@example.com").await;
    let stranger = app.user("stranger@example.com").await;
    let create = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id eventKinds } secret } }";
    let input =
        |workspace: &str| json!({ "i": { "workspaceId": workspace, "url": "http://127.0.0.1:9/hooks", "eventKinds": ["task.assigned"] } });

    let (_, manager) = service_account(&app, &owner, &["webhooks:manage"]).await;
    let r = app.gql(Some(&manager), create, input(&owner.workspace_id)).await;
    assert!(r["errors"].is_null(), "{r}");
    assert!(r["data"]["createWebhook"]["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{r}");
    let r =
        app.gql(Some(&manager), "query($w: ID!) { webhooks(workspaceId: $w) { eventKinds } }", json!({ "w": owner.workspace_id })).await;
    assert_eq!(r["data"]["webhooks"], json!([{ "eventKinds": ["task.assigned"] }]), "{r}");

    // Another workspace is not its business, and a token without the scope manages nothing.
    let r = app.gql(Some(&manager), create, input(&stranger.workspace_id)).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    let (_, publisher) = service_account(&app, &owner, &["events:publish"]).await;
    let r = app.gql(Some(&publisher), create, input(&owner.workspace_id)).await;
    assert_eq!(codes(&r), ["FORBIDDEN"], "{r}");
    let r =
        app.gql(Some(&owner.token), "query($w: ID!) { workspace(id: $w) { webhooks { id } } }", json!({ "w": owner.workspace_id })).await;
    assert_eq!(r["data"]["workspace"]["webhooks"].as_array().map(Vec::len), Some(1), "{r}");
}

// --- audio alerts follow who the event's assignee is ----------------------------------------

#[tokio::test]
async fn audio_alerts_sound_for_the_assignee_alone_with_assigned_to_me_and_for_everyone_with_all() {
    let app = TestApp::spawn().await;
    let owner = app.user(&fresh("owner")).await;
    let bob = app.user(&fresh("bob")).await; // the assignee, ASSIGNED_TO_ME
    let carol = app.user(&fresh("carol")).await; // a follower, ASSIGNED_TO_ME
    let dave = app.user(&fresh("dave")).await; // a follower, ALL
    for (user, audio) in [(&bob, "ASSIGNED_TO_ME"), (&carol, "ASSIGNED_TO_ME"), (&dave, "ALL")] {
        join(&app, &owner, user, "MEMBER").await;
        let r = app
            .gql(Some(&user.token), &format!("mutation {{ updatePreferences(input: {{audio: {audio}}}) {{ audio }} }}"), json!({}))
            .await;
        assert_eq!(r["data"]["updatePreferences"]["audio"], audio, "{r}");
    }
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let kinds = [
        ("conversation.message_received", "conversation", json!({ "channel": "chat", "preview": "Hi" })),
        ("task.completed", "task", json!({})),
        ("appointment.booked", "appointment", json!({ "startsAt": "2040-01-01T09:00:00Z", "endsAt": "2040-01-01T10:00:00Z" })),
        ("workflow.completed", "workflow", json!({ "workflow": "Nightly import" })),
    ];
    let events: Vec<Value> = kinds
        .iter()
        .map(|(kind, subject, data)| {
            json!({
                "kind": kind,
                "recipients": { "userIds": [carol.id, dave.id], "assigneeIds": [bob.id] },
                "subject": { "type": subject, "id": format!("{subject}-1"), "title": format!("a {subject}") },
                "occurredAt": "2040-01-01T08:00:00Z",
                "data": data,
                "idempotencyKey": format!("audio-{kind}"),
            })
        })
        .collect();
    let r = publish(&app, &token, Value::Array(events)).await;
    assert!(results(&r).iter().all(|x| x["status"] == "ACCEPTED"), "{r}");

    let sounds = |user: &TestUser| {
        let (app, token) = (&app, user.token.clone());
        async move {
            let r = app.gql(Some(&token), "{ me { notifications(first: 20) { edges { node { title audible } } } } }", json!({})).await;
            let mut heard: Vec<(String, bool)> = r["data"]["me"]["notifications"]["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
                .iter()
                .map(|e| (e["node"]["title"].as_str().unwrap().to_owned(), e["node"]["audible"].as_bool().unwrap()))
                // Only the published events (the invitation to the workspace is a notice too).
                .filter(|(title, _)| title.starts_with("a "))
                .collect();
            heard.sort();
            heard
        }
    };
    let expect = |conversation: bool, task: bool, appointment: bool| {
        vec![
            ("a appointment".to_owned(), appointment),
            ("a conversation".to_owned(), conversation),
            ("a task".to_owned(), task),
            ("a workflow".to_owned(), false), // account notices never sound
        ]
    };
    assert_eq!(sounds(&bob).await, expect(true, true, true), "the assignee hears every one");
    assert_eq!(sounds(&carol).await, expect(false, false, false), "ASSIGNED_TO_ME: not hers");
    assert_eq!(sounds(&dave).await, expect(true, true, true), "ALL: everything answered");
}

#[tokio::test]
async fn an_assignee_from_outside_the_workspace_rejects_the_event_by_its_field() {
    let app = TestApp::spawn().await;
    let owner = app.user(&fresh("owner")).await;
    let bob = app.user(&fresh("bob")).await;
    let stranger = app.user(&fresh("stranger")).await;
    join(&app, &owner, &bob, "MEMBER").await;
    let (_, token) = service_account(&app, &owner, &["events:publish"]).await;
    let mut event = task_for(&[&bob], "outsider-assignee");
    event["recipients"]["assigneeIds"] = json!([bob.id, stranger.id]);

    let r = publish(&app, &token, json!([event])).await;

    assert_eq!(results(&r)[0]["status"], "REJECTED", "{r}");
    assert_eq!(results(&r)[0]["error"]["field"], "events[0].recipients.assigneeIds[1]", "{r}");
    assert_eq!(stored(&app, &owner).await, 0);
    let bad = publish(
        &app,
        &token,
        json!([{ "kind": "task.assigned", "recipients": { "assigneeIds": ["nope"] },
        "subject": { "type": "task", "id": "T", "title": "t" }, "occurredAt": "2040-01-01T00:00:00Z", "idempotencyKey": "k" }]),
    )
    .await;
    assert_eq!(results(&bad)[0]["error"]["field"], "events[0].recipients.assigneeIds[0]", "{bad}");
}
