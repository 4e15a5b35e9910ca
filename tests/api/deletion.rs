//! Leaving: an account is deleted after its grace period unless its holder cancels; the
//! holder must prove who they are; the last owner of a shared workspace cannot leave it
//! ownerless; what the workspace recorded stays with it.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, TestUser, codes, error_of};
use crate::security::{enrol, totp_now};

const DELETE: &str = "mutation($p: String!, $c: String) { deleteAccount(password: $p, code: $c) }";

async fn delete(app: &TestApp, user: &TestUser, password: &str, code: Option<&str>) -> serde_json::Value {
    app.gql(Some(&user.token), DELETE, json!({ "p": password, "c": code })).await
}

#[tokio::test]
async fn a_deleted_account_is_gone_with_its_workspace_and_its_address_can_sign_up_again() {
    let app = TestApp::spawn_with(|c| c.account_deletion_grace_hours = 0).await;
    let ada = app.user("ada@example.com").await;
    let pat = app.access_token(&ada, &["profile:read"]).await;

    let r = delete(&app, &ada, PASSWORD, None).await;

    assert!(r["data"]["deleteAccount"].is_string(), "{r}");
    assert_eq!(codes(&app.log_in("ada@example.com", PASSWORD).await), ["UNAUTHENTICATED"]);
    assert_eq!(codes(&app.gql(Some(&ada.token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    assert_eq!(codes(&app.gql(Some(&pat), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"], "tokens go too");
    let db = &app.services.db;
    let left: i64 = concierge::on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM workspace").fetch_one(p).await).unwrap();
    assert_eq!(left, 0, "a workspace with nobody else goes with its owner");
    let record: i64 = concierge::on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM deleted_account").fetch_one(p).await).unwrap();
    assert_eq!(record, 1, "a minimal record stays");
    let again = app.sign_up("ada@example.com", "Ada", "Again").await;
    assert!(again.get("errors").is_none(), "{again}");
}

#[tokio::test]
async fn a_scheduled_deletion_waits_for_its_grace_period_and_can_be_cancelled() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = delete(&app, &ada, PASSWORD, None).await;

    let at = chrono::DateTime::parse_from_rfc3339(r["data"]["deleteAccount"].as_str().unwrap_or_else(|| panic!("{r}"))).unwrap();
    assert!(at > chrono::Utc::now() + chrono::TimeDelta::hours(167), "the default grace is a week: {at}");
    // Logging in during the grace period says so, for the client to offer cancelling.
    let log_in = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token deletionScheduledAt } }";
    let r = app.gql(None, log_in, json!({ "e": "ada@example.com", "p": PASSWORD })).await;
    let token = r["data"]["logIn"]["token"].as_str().unwrap_or_else(|| panic!("log-in still works: {r}")).to_owned();
    let offered =
        chrono::DateTime::parse_from_rfc3339(r["data"]["logIn"]["deletionScheduledAt"].as_str().unwrap_or_else(|| panic!("{r}"))).unwrap();
    assert!((offered - at).num_milliseconds().abs() < 1, "{offered} is when it was scheduled, {at}");
    let me = app.gql(Some(&token), "{ me { deletionScheduledAt } }", json!({})).await;
    assert!(me["data"]["me"]["deletionScheduledAt"].is_string(), "{me}");

    let r = app.gql(Some(&token), "mutation { cancelAccountDeletion }", json!({})).await;
    assert_eq!(r["data"]["cancelAccountDeletion"], true, "{r}");
    let me = app.gql(Some(&token), "{ me { deletionScheduledAt } }", json!({})).await;
    assert!(me["data"]["me"]["deletionScheduledAt"].is_null());
    let again = app.gql(Some(&token), "mutation { cancelAccountDeletion }", json!({})).await;
    assert_eq!(codes(&again), ["BAD_USER_INPUT"]);
    let r = app.gql(None, log_in, json!({ "e": "ada@example.com", "p": PASSWORD })).await;
    assert!(r["data"]["logIn"]["token"].is_string() && r["data"]["logIn"]["deletionScheduledAt"].is_null(), "{r}");
}

#[tokio::test]
async fn deleting_needs_the_password_the_second_factor_and_a_session() {
    let app = TestApp::spawn_with(|c| c.account_deletion_grace_hours = 0).await;
    let ada = app.user("ada@example.com").await;
    let (secret, _) = enrol(&app, &ada).await;
    let pat = app.access_token(&ada, &["profile:write"]).await;

    assert_eq!(error_of(&delete(&app, &ada, "Wrong-Horse-9!battery", None).await), ("BAD_USER_INPUT".into(), Some("password".into())));
    assert_eq!(error_of(&delete(&app, &ada, PASSWORD, None).await), ("BAD_USER_INPUT".into(), Some("code".into())));
    assert_eq!(error_of(&delete(&app, &ada, PASSWORD, Some("000000")).await), ("BAD_USER_INPUT".into(), Some("code".into())));
    assert_eq!(codes(&app.gql(Some(&pat), DELETE, json!({ "p": PASSWORD, "c": null })).await), ["FORBIDDEN"]);
    assert_eq!(codes(&app.gql(None, DELETE, json!({ "p": PASSWORD, "c": null })).await), ["UNAUTHENTICATED"]);
    assert!(app.gql(Some(&ada.token), "{ me { id } }", json!({})).await["data"]["me"].is_object(), "nothing happened");

    let r = delete(&app, &ada, PASSWORD, Some(&totp_now(&secret, 1).await)).await;
    assert!(r["data"]["deleteAccount"].is_string(), "{r}");
    assert_eq!(codes(&app.gql(Some(&ada.token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn the_only_owner_of_a_workspace_with_members_cannot_leave_it_without_an_owner() {
    let app = TestApp::spawn_with(|c| c.account_deletion_grace_hours = 0).await;
    let owner = app.user("owner@example.com").await;
    let member = app.user("member@example.com").await;
    app.add_member(&owner, &owner.workspace_id, &member.email, "MEMBER").await;
    let joined = app.gql(Some(&member.token), "{ me { memberships { workspace { id } } } }", json!({})).await;
    assert!(joined.to_string().contains(&owner.workspace_id), "the member joined: {joined}");

    let r = delete(&app, &owner, PASSWORD, None).await;

    assert_eq!(error_of(&r), ("CONFLICT".into(), Some("account".into())), "{r}");
    assert!(app.log_in(&owner.email, PASSWORD).await["data"]["logIn"]["token"].is_string(), "nothing happened");

    let r = delete(&app, &member, PASSWORD, None).await;
    assert!(r["data"]["deleteAccount"].is_string(), "a member may leave: {r}");
    let members = app
        .gql(
            Some(&owner.token),
            "query($w: ID!) { workspace(id: $w) { members { edges { node { user { email } } } } } }",
            json!({ "w": owner.workspace_id }),
        )
        .await;
    assert!(!members.to_string().contains("member@example.com"), "{members}");
    assert!(app.log_in(&owner.email, PASSWORD).await["data"]["logIn"]["token"].is_string());
}
