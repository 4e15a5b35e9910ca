//! Token scopes mean what the README says: the `workspaces:*` scopes reach neither webhooks
//! (an outbound channel that outlives the token) nor service accounts, and a delivery's
//! payload is never readable with less than reading the same data directly needs.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, codes, error_of};

const CREATE_WEBHOOK: &str = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret webhook { id } } }";
const ROTATE: &str = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }";
const LIST_WEBHOOKS: &str = "query($w: ID!) { webhooks(workspaceId: $w) { id } }";
const WORKSPACE_WEBHOOKS: &str = "query($w: ID!) { workspace(id: $w) { name webhooks { id } } }";
const PAYLOADS: &str = "query($id: ID!) { webhook(id: $id) { deliveries(first: 5) { edges { node { eventType payload } } } } }";
const DELIVERY_TYPES: &str = "query($id: ID!) { webhook(id: $id) { deliveries(first: 5) { edges { node { eventType } } } } }";
const SERVICE_ACCOUNTS: &str = "query($w: ID!) { serviceAccounts(workspaceId: $w) { id tokens { prefix } } }";
const WORKSPACE_SERVICE_ACCOUNTS: &str = "query($w: ID!) { workspace(id: $w) { serviceAccounts { id } } }";

/// A public address the policy lets through; nothing here waits for a delivery to land.
const HOOK_URL: &str = "https://93.184.215.14/hook";

fn webhook_input(user: &TestUser) -> Value {
    json!({ "i": { "workspaceId": user.workspace_id, "url": HOOK_URL, "eventKinds": ["contact.created"] } })
}

/// A webhook made from the owner's session, with one delivery queued: a new contact's name
/// and address, which `contacts` only shows with `activity:read`.
async fn webhook_with_a_delivery(app: &TestApp, owner: &TestUser) -> String {
    let r = app.gql(Some(&owner.token), CREATE_WEBHOOK, webhook_input(owner)).await;
    let id = r["data"]["createWebhook"]["webhook"]["id"].as_str().unwrap_or_else(|| panic!("createWebhook: {r}")).to_owned();
    let r = app
        .gql(
            Some(&owner.token),
            "mutation($i: CreateContactInput!) { createContact(input: $i) { id } }",
            json!({ "i": { "workspaceId": owner.workspace_id, "name": "Grace Hopper", "emails": ["grace@example.net"] } }),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = app.gql(Some(&owner.token), PAYLOADS, json!({ "id": id })).await;
    let payload = r["data"]["webhook"]["deliveries"]["edges"][0]["node"]["payload"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(payload.contains("grace@example.net"), "the delivery carries the contact: {payload}");
    id
}

#[tokio::test]
async fn a_token_with_both_workspace_scopes_cannot_create_list_or_rotate_webhooks() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let webhook = webhook_with_a_delivery(&app, &owner).await;
    let pat = app.access_token(&owner, &["workspaces:read", "workspaces:write", "activity:read"]).await;
    let w = json!({ "w": owner.workspace_id });

    assert_eq!(codes(&app.gql(Some(&pat), CREATE_WEBHOOK, webhook_input(&owner)).await), ["FORBIDDEN"]);
    assert_eq!(codes(&app.gql(Some(&pat), ROTATE, json!({ "id": webhook })).await), ["FORBIDDEN"]);
    assert_eq!(codes(&app.gql(Some(&pat), LIST_WEBHOOKS, w.clone()).await), ["FORBIDDEN"]);
    let r = app.gql(Some(&pat), WORKSPACE_WEBHOOKS, w).await;
    assert_eq!(codes(&r), ["FORBIDDEN"], "{r}");
    assert_eq!(codes(&app.gql(Some(&pat), PAYLOADS, json!({ "id": webhook })).await), ["FORBIDDEN"]);

    let r = app.gql(Some(&owner.token), LIST_WEBHOOKS, json!({ "w": owner.workspace_id })).await;
    assert_eq!(r["data"]["webhooks"].as_array().map(Vec::len), Some(1), "nothing was created: {r}");
}

#[tokio::test]
async fn a_webhook_token_reads_payloads_only_when_it_could_read_the_contacts_directly() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let webhook = webhook_with_a_delivery(&app, &owner).await;
    let id = json!({ "id": webhook });

    let log_only = app.access_token(&owner, &["webhooks:read"]).await;
    let r = app.gql(Some(&log_only), DELIVERY_TYPES, id.clone()).await;
    assert_eq!(r["data"]["webhook"]["deliveries"]["edges"][0]["node"]["eventType"], "contact.created", "{r}");
    let r = app.gql(Some(&log_only), PAYLOADS, id.clone()).await;
    assert_eq!(codes(&r), ["FORBIDDEN"], "the payload holds a contact: {r}");
    let contacts = app
        .gql(Some(&log_only), "query($w: ID!) { contacts(workspaceId: $w) { edges { node { id } } } }", json!({ "w": owner.workspace_id }))
        .await;
    assert_eq!(codes(&contacts), ["FORBIDDEN"], "and the contacts themselves are refused the same way: {contacts}");

    let with_activity = app.access_token(&owner, &["webhooks:read", "activity:read"]).await;
    let r = app.gql(Some(&with_activity), PAYLOADS, id).await;
    let payload = r["data"]["webhook"]["deliveries"]["edges"][0]["node"]["payload"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(payload.contains("grace@example.net"));
}

#[tokio::test]
async fn creating_a_webhook_with_a_token_needs_webhooks_write_and_activity_read_named_explicitly() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;

    let write_only = app.access_token(&owner, &["webhooks:write"]).await;
    let r = app.gql(Some(&write_only), CREATE_WEBHOOK, webhook_input(&owner)).await;
    assert_eq!(codes(&r), ["FORBIDDEN"], "deliveries would carry data the token cannot read: {r}");

    let both = app.access_token(&owner, &["webhooks:write", "activity:read"]).await;
    let r = app.gql(Some(&both), CREATE_WEBHOOK, webhook_input(&owner)).await;
    assert!(r["data"]["createWebhook"]["secret"].is_string(), "{r}");

    for wildcard in ["webhooks:*", "*", "webhooks", "webhooks:manage", "admin"] {
        let r = app
            .gql(
                Some(&owner.token),
                "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { token } }",
                json!({ "i": { "name": "x", "scopes": [wildcard] } }),
            )
            .await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("scopes".into())), "{wildcard}: {r}");
    }
}

#[tokio::test]
async fn another_workspaces_owner_with_every_scope_reaches_no_webhook_or_service_account() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let webhook = webhook_with_a_delivery(&app, &owner).await;
    let all =
        app.access_token(&mallory, &["webhooks:read", "webhooks:write", "activity:read", "service_accounts:read", "workspaces:read"]).await;
    let w = json!({ "w": owner.workspace_id });

    for credential in [mallory.token.as_str(), all.as_str()] {
        assert_eq!(codes(&app.gql(Some(credential), CREATE_WEBHOOK, webhook_input(&owner)).await), ["NOT_FOUND"]);
        assert_eq!(codes(&app.gql(Some(credential), LIST_WEBHOOKS, w.clone()).await), ["NOT_FOUND"]);
        assert_eq!(codes(&app.gql(Some(credential), PAYLOADS, json!({ "id": webhook })).await), ["NOT_FOUND"]);
        assert_eq!(codes(&app.gql(Some(credential), ROTATE, json!({ "id": webhook })).await), ["NOT_FOUND"]);
        assert_eq!(codes(&app.gql(Some(credential), SERVICE_ACCOUNTS, w.clone()).await), ["NOT_FOUND"]);
    }
}

#[tokio::test]
async fn service_account_lists_need_their_own_scope_and_anonymous_or_revoked_callers_get_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let r = app
        .gql(
            Some(&owner.token),
            "mutation($w: ID!) { createServiceAccount(workspaceId: $w, name: \"CRM\", scopes: [\"events:publish\"]) { id } }",
            json!({ "w": owner.workspace_id }),
        )
        .await;
    let account = r["data"]["createServiceAccount"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let r = app
        .gql(
            Some(&owner.token),
            "mutation($a: ID!) { createServiceAccountToken(serviceAccountId: $a, name: \"prod\", scopes: [\"events:publish\"]) { token } }",
            json!({ "a": account }),
        )
        .await;
    assert!(r["data"]["createServiceAccountToken"]["token"].is_string(), "{r}");
    let w = json!({ "w": owner.workspace_id });

    let workspaces = app.access_token(&owner, &["workspaces:read"]).await;
    assert_eq!(codes(&app.gql(Some(&workspaces), SERVICE_ACCOUNTS, w.clone()).await), ["FORBIDDEN"]);
    assert_eq!(codes(&app.gql(Some(&workspaces), WORKSPACE_SERVICE_ACCOUNTS, w.clone()).await), ["FORBIDDEN"]);
    let one = app.gql(Some(&workspaces), "query($i: ID!) { serviceAccount(id: $i) { id } }", json!({ "i": account })).await;
    assert_eq!(codes(&one), ["FORBIDDEN"]);

    let named = app.access_token(&owner, &["service_accounts:read"]).await;
    let r = app.gql(Some(&named), SERVICE_ACCOUNTS, w.clone()).await;
    assert!(r["data"]["serviceAccounts"][0]["tokens"][0]["prefix"].as_str().is_some_and(|p| p.starts_with("csat_")), "{r}");

    let r = app.gql(Some(&owner.token), "{ me { accessTokens { id } } }", json!({})).await;
    for t in r["data"]["me"]["accessTokens"].as_array().expect("tokens") {
        app.gql(Some(&owner.token), "mutation($i: ID!) { revokeAccessToken(id: $i) { id } }", json!({ "i": t["id"] })).await;
    }
    assert_eq!(codes(&app.gql(Some(&named), SERVICE_ACCOUNTS, w.clone()).await), ["UNAUTHENTICATED"], "revoked");
    assert_eq!(codes(&app.gql(None, SERVICE_ACCOUNTS, w.clone()).await), ["UNAUTHENTICATED"]);
    assert_eq!(codes(&app.gql(None, LIST_WEBHOOKS, w).await), ["UNAUTHENTICATED"]);
}
