//! Personal access tokens: shown once, hashed at rest, scoped, revocable, never able to touch
//! security settings.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, codes, error_of};

const CREATE: &str = "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { token accessToken { id name prefix scopes expiresAt lastUsedAt } } }";

async fn create(app: &TestApp, user: &TestUser, input: Value) -> Value {
    app.gql(Some(&user.token), CREATE, json!({ "i": input })).await
}

async fn token_for(app: &TestApp, user: &TestUser, scopes: &[&str]) -> (String, String) {
    let r = create(app, user, json!({ "name": "CI", "scopes": scopes })).await;
    let payload = &r["data"]["createAccessToken"];
    (payload["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned(), payload["accessToken"]["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_token_is_shown_once_and_works_within_its_scopes() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = create(&app, &ada, json!({ "name": " CI ", "scopes": ["profile:read", "profile:read"] })).await;
    let token = r["data"]["createAccessToken"]["token"].as_str().unwrap().to_owned();
    let listed = &r["data"]["createAccessToken"]["accessToken"];
    assert!(token.starts_with("cpat_") && token.len() == 41, "{token}");
    assert_eq!(listed["name"], "CI");
    assert_eq!(listed["scopes"], json!(["profile:read"]));
    assert!(token.starts_with(listed["prefix"].as_str().unwrap()));

    let me = app.gql(Some(&token), "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "ada@example.com", "{me}");
    let ws = app.gql(Some(&token), "query($w: ID!) { workspace(id: $w) { name } }", json!({ "w": ada.workspace_id })).await;
    assert_eq!(codes(&ws), ["FORBIDDEN"], "beyond its scopes");

    let list = app.gql(Some(&ada.token), "{ me { accessTokens { name prefix lastUsedAt } } }", json!({})).await;
    let tokens = list["data"]["me"]["accessTokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0]["lastUsedAt"].is_string(), "last use is recorded: {list}");
    assert!(!list.to_string().contains(&token), "the secret is never shown again");
}

#[tokio::test]
async fn a_token_can_never_manage_tokens_sessions_or_log_out() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (token, id) = token_for(&app, &ada, &["profile:read", "profile:write", "workspaces:write"]).await;

    let attempts = [
        app.gql(Some(&token), CREATE, json!({ "i": { "name": "x", "scopes": ["profile:read"] } })).await,
        app.gql(Some(&token), "mutation($id: ID!) { revokeAccessToken(id: $id) { id } }", json!({ "id": id })).await,
        app.gql(Some(&token), "mutation($id: ID!) { regenerateAccessToken(id: $id) { token } }", json!({ "id": id })).await,
        app.gql(Some(&token), "{ me { accessTokens { id } } }", json!({})).await,
        app.gql(Some(&token), "mutation { logOut }", json!({})).await,
    ];

    for r in attempts {
        assert_eq!(codes(&r), ["FORBIDDEN"], "{r}");
    }
    assert!(app.gql(Some(&token), "{ me { id } }", json!({})).await["data"]["me"].is_object(), "the token still works");
}

#[tokio::test]
async fn a_revoked_or_regenerated_secret_stops_working() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (old, id) = token_for(&app, &ada, &["profile:read"]).await;

    let r = app
        .gql(
            Some(&ada.token),
            "mutation($id: ID!) { regenerateAccessToken(id: $id) { token accessToken { id name scopes } } }",
            json!({ "id": id }),
        )
        .await;
    let new = r["data"]["regenerateAccessToken"]["token"].as_str().unwrap().to_owned();
    assert_eq!(r["data"]["regenerateAccessToken"]["accessToken"]["id"], id.as_str());
    assert_eq!(r["data"]["regenerateAccessToken"]["accessToken"]["scopes"], json!(["profile:read"]));
    assert_eq!(codes(&app.gql(Some(&old), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    assert!(app.gql(Some(&new), "{ me { id } }", json!({})).await["data"]["me"].is_object());

    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeAccessToken(id: $id) { id } }", json!({ "id": id })).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(codes(&app.gql(Some(&new), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    let again = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeAccessToken(id: $id) { id } }", json!({ "id": id })).await;
    assert_eq!(codes(&again), ["NOT_FOUND"]);
}

#[tokio::test]
async fn a_token_with_a_bad_checksum_or_past_its_expiry_is_refused() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (token, id) = token_for(&app, &ada, &["profile:read"]).await;
    let mut typo = token.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };

    assert_eq!(codes(&app.gql(Some(std::str::from_utf8(&typo).unwrap()), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);

    let db = &app.services.db;
    let past = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let id: uuid::Uuid = id.parse().unwrap();
    concierge::on_pool!(db, p => sqlx::query("UPDATE access_token SET expires_at = $1 WHERE access_token_id = $2").bind(past).bind(id).execute(p).await.map(drop)).unwrap();
    assert_eq!(codes(&app.gql(Some(&token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn bad_token_input_is_refused_by_field_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (_, bobs) = token_for(&app, &bob, &["profile:read"]).await;
    let cases = [
        (json!({ "name": "  ", "scopes": ["profile:read"] }), "name"),
        (json!({ "name": "x".repeat(101), "scopes": ["profile:read"] }), "name"),
        (json!({ "name": "CI", "scopes": [] }), "scopes"),
        (json!({ "name": "CI", "scopes": ["profile:admin"] }), "scopes"),
        (json!({ "name": "CI", "scopes": ["profile:read"], "expiresAt": "2001-01-01T00:00:00Z" }), "expiresAt"),
    ];
    for (input, field) in cases {
        let r = create(&app, &ada, input.clone()).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some(field.into())), "{input}: {r}");
    }
    let list = app.gql(Some(&ada.token), "{ me { accessTokens { id } } }", json!({})).await;
    assert_eq!(list["data"]["me"]["accessTokens"], json!([]), "nothing was created");

    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeAccessToken(id: $id) { id } }", json!({ "id": "nope" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())));
    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeAccessToken(id: $id) { id } }", json!({ "id": bobs })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "someone else's token is not yours to revoke");
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (token, _) = token_for(&app, &ada, &["profile:read"]).await;
    let db = &app.services.db;

    let hashes: Vec<Vec<u8>> =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT token_hash FROM access_token").fetch_all(p).await).unwrap();
    let prefixes: Vec<String> =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT display_prefix FROM access_token").fetch_all(p).await).unwrap();

    assert_eq!(hashes[0].len(), 32);
    assert_eq!(prefixes[0].len(), 9);
    assert!(!token.as_bytes().windows(12).any(|w| hashes[0].windows(12).any(|h| h == w)));
}

#[tokio::test]
async fn a_token_authenticates_a_websocket_connection() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (token, _) = token_for(&app, &ada, &["profile:read"]).await;
    let mut ws = app.ws("graphql-transport-ws").await;

    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;

    assert_eq!(ws.next_json().await["type"], "connection_ack");
}
