//! Sign-up, log-in, log-out, sessions and account status.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, codes, error_of};

#[tokio::test]
async fn sign_up_creates_an_active_account_that_owns_a_personal_workspace() {
    let app = TestApp::spawn().await;

    let r = app.sign_up("  Ada@Example.com ", "Ada", "Lovelace").await;

    let user = &r["data"]["signUp"]["user"];
    assert_eq!(user["email"], "ada@example.com", "{r}");
    assert_eq!(user["fullName"], "Ada Lovelace");
    assert_eq!(user["status"], "ACTIVE");
    let token = app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned();
    let me = app.gql(Some(&token), "{ me { id memberships { role permissions workspace { id name } } } }", json!({})).await;
    let memberships = me["data"]["me"]["memberships"].as_array().unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0]["role"], "OWNER");
    assert_eq!(memberships[0]["workspace"]["name"], "Ada's workspace");
    assert!(memberships[0]["permissions"].as_array().unwrap().contains(&json!("MANAGE_ROLES")));
}

#[tokio::test]
async fn a_token_from_log_in_reads_me_and_stops_working_after_log_out() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let me = app.gql(Some(&ada.token), "{ me { id email fullName status createdAt } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], ada.id.as_str());
    assert_eq!(me["data"]["me"]["fullName"], "Test User");

    let out = app.gql(Some(&ada.token), "mutation { logOut }", json!({})).await;
    assert_eq!(out["data"]["logOut"], true, "{out}");
    let me = app.gql(Some(&ada.token), "{ me { id } }", json!({})).await;
    assert_eq!(codes(&me), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn the_same_email_in_another_case_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;

    let r = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            json!({ "i": { "email": "ADA@example.com", "password": "Another-Pass-77!", "firstName": "X", "lastName": "Y" } }),
        )
        .await;

    assert_eq!(error_of(&r), ("CONFLICT".into(), Some("email".into())));
    assert_eq!(codes(&app.log_in("ada@example.com", "Another-Pass-77!").await), ["UNAUTHENTICATED"]);
    assert!(app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].is_string());
}

#[tokio::test]
async fn bad_sign_up_input_is_refused_naming_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(101);
    let cases = [
        (json!({ "email": "not-an-email", "password": PASSWORD, "firstName": "A", "lastName": "B" }), "email"),
        (json!({ "email": "", "password": PASSWORD, "firstName": "A", "lastName": "B" }), "email"),
        (json!({ "email": "a@example.com", "password": PASSWORD, "firstName": "  ", "lastName": "B" }), "firstName"),
        (json!({ "email": "a@example.com", "password": PASSWORD, "firstName": "A", "lastName": long }), "lastName"),
        (json!({ "email": "a@example.com", "password": "short", "firstName": "A", "lastName": "B" }), "password"),
    ];
    for (input, field) in cases {
        let r = app.gql(None, "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }", json!({ "i": input })).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some(field.into())), "{input}: {r}");
    }
    // Nothing was written: the address is still free.
    let r = app.sign_up("a@example.com", "A", "B").await;
    assert!(r.get("errors").is_none(), "{r}");
}

#[tokio::test]
async fn a_weak_password_is_refused_with_every_unmet_rule_at_once() {
    let app = TestApp::spawn().await;

    let r = app
        .gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            json!({ "i": { "email": "ada@example.com", "password": "ada", "firstName": "Ada", "lastName": "L" } }),
        )
        .await;

    let unmet: Vec<&str> = r["errors"][0]["extensions"]["unmet"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for rule in ["MIN_LENGTH", "UPPERCASE", "DIGIT", "SPECIAL", "CONTAINS_PERSONAL_DATA"] {
        assert!(unmet.contains(&rule), "{rule} missing from {unmet:?}");
    }
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;

    let wrong_password = app.log_in("ada@example.com", "Wrong-Horse-9!battery").await;
    let no_such_user = app.log_in("nobody@example.com", "Wrong-Horse-9!battery").await;
    let malformed = app.log_in("nobody", "Wrong-Horse-9!battery").await;

    assert_eq!(codes(&wrong_password), ["UNAUTHENTICATED"]);
    assert_eq!(wrong_password["errors"][0]["message"], no_such_user["errors"][0]["message"]);
    assert_eq!(wrong_password["errors"][0]["extensions"], no_such_user["errors"][0]["extensions"]);
    assert_eq!(wrong_password["errors"][0]["extensions"], malformed["errors"][0]["extensions"]);
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let app = TestApp::spawn_with(|c| c.session_ttl_hours = 0).await;
    app.sign_up("ada@example.com", "Ada", "L").await;
    let token = app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned();

    let me = app.gql(Some(&token), "{ me { id } }", json!({})).await;

    assert_eq!(codes(&me), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn malformed_and_forged_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mut forged = ada.token.clone();
    forged.pop();
    forged.push(if ada.token.ends_with('A') { 'B' } else { 'A' });

    for token in ["not-a-real-token", forged.as_str(), "cs_"] {
        let me = app.gql(Some(token), "{ me { id } }", json!({})).await;
        assert_eq!(codes(&me), ["UNAUTHENTICATED"], "{token}");
    }
}

#[tokio::test]
async fn secrets_are_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let db = &app.services.db;
    let (hash,): (String,) = concierge::on_pool!(db, p => sqlx::query_as("SELECT password_hash FROM account").fetch_one(p).await).unwrap();
    let tokens: Vec<Vec<u8>> =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT token_hash FROM session").fetch_all(p).await).unwrap();

    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(!hash.contains(crate::helpers::PASSWORD));
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].len(), 32, "a SHA-256, not the token");
    assert!(!tokens[0].windows(8).any(|w| ada.token.as_bytes().windows(8).any(|t| t == w)));
}

#[tokio::test]
async fn an_account_its_holder_deactivated_cannot_log_in_and_its_sessions_stop_at_once() {
    let app = TestApp::spawn().await;
    let bob = app.user("bob@example.com").await;
    let deactivate = "mutation($p: String!) { deactivateAccount(password: $p) }";

    let wrong = app.gql(Some(&bob.token), deactivate, json!({ "p": "Wrong-Horse-9!battery" })).await;
    assert_eq!(error_of(&wrong), ("BAD_USER_INPUT".into(), Some("password".into())));
    let r = app.gql(Some(&bob.token), deactivate, json!({ "p": PASSWORD })).await;
    assert_eq!(r["data"]["deactivateAccount"], true, "{r}");

    assert_eq!(codes(&app.gql(Some(&bob.token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    assert_eq!(codes(&app.log_in("bob@example.com", PASSWORD).await), ["FORBIDDEN"]);
    // A stranger guessing the password learns nothing about the account's state.
    assert_eq!(codes(&app.log_in("bob@example.com", "Wrong-Horse-9!battery").await), ["UNAUTHENTICATED"]);

    // Only the operator brings it back; old sessions stay ended.
    let email = concierge::identity::model::Email::parse("email", "bob@example.com").unwrap();
    let active = concierge::identity::model::AccountStatus::Active;
    concierge::identity::service::operator_set_account_status(&app.services.db, &app.services.fanout, &email, active).await.unwrap();
    assert_eq!(codes(&app.gql(Some(&bob.token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"], "old sessions stay ended");
    assert!(app.log_in("bob@example.com", PASSWORD).await["data"]["logIn"]["token"].is_string());
}

#[tokio::test]
async fn the_last_active_owner_of_a_shared_workspace_cannot_deactivate_their_account() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&owner, &owner.workspace_id, &bob.email, "MEMBER").await;
    let deactivate = "mutation($p: String!) { deactivateAccount(password: $p) }";

    let r = app.gql(Some(&owner.token), deactivate, json!({ "p": PASSWORD })).await;
    assert_eq!(error_of(&r).0, "CONFLICT", "{r}");
    assert!(app.gql(Some(&owner.token), "{ me { id } }", json!({})).await["data"]["me"]["id"].is_string());

    // Bob, sole owner of only his personal workspace, may leave.
    let r = app.gql(Some(&bob.token), deactivate, json!({ "p": PASSWORD })).await;
    assert_eq!(r["data"]["deactivateAccount"], true, "{r}");
}

#[tokio::test]
async fn a_personal_access_token_cannot_deactivate_the_account() {
    let app = TestApp::spawn().await;
    let bob = app.user("bob@example.com").await;
    let create = "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { token } }";
    let r = app.gql(Some(&bob.token), create, json!({ "i": { "name": "ci", "scopes": ["workspaces:write", "profile:write"] } })).await;
    let pat = r["data"]["createAccessToken"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();

    let r = app.gql(Some(&pat), "mutation($p: String!) { deactivateAccount(password: $p) }", json!({ "p": PASSWORD })).await;

    assert_eq!(codes(&r), ["FORBIDDEN"]);
    assert!(app.log_in("bob@example.com", PASSWORD).await["data"]["logIn"]["token"].is_string());
}
