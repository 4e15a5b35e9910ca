//! Passkeys: registered and used in headless Chromium with a virtual authenticator through
//! the gateway's own page, and every refusal a hostile or careless client can meet.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_of, node};
use crate::security::enrol;

const BEGIN_REGISTRATION: &str = "mutation { beginPasskeyRegistration { id options expiresAt } }";
const FINISH_REGISTRATION: &str =
    "mutation($id: ID!, $c: JSON!, $n: String) { finishPasskeyRegistration(ceremony: $id, credential: $c, name: $n) { id name } }";
const BEGIN_LOG_IN: &str = "mutation($c: String) { beginPasskeyLogIn(challenge: $c) { id options } }";
const FINISH_LOG_IN: &str = "mutation($id: ID!, $c: JSON!) { finishPasskeyLogIn(ceremony: $id, credential: $c) { token } }";
const PASSKEYS: &str = "{ me { passkeys { id name createdAt lastUsedAt } } }";

/// A registration answer shaped like a browser's, whose contents are nonsense.
fn forged_registration() -> Value {
    json!({ "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" } })
}

fn forged_assertion() -> Value {
    json!({ "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": "AAAA" } })
}

#[tokio::test]
async fn a_passkey_registers_confirms_a_log_in_and_signs_in_alone_in_chromium_and_a_clone_is_refused() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (_, recovery_codes) = enrol(&app, &ada).await;
    let localhost = format!("http://localhost:{}", app.port);

    let (ok, report) = node("passkeys.mjs", &[&localhost, "ada@example.com", PASSWORD, &ada.token]).await;

    let report: Value = serde_json::from_str(report.trim()).unwrap_or_else(|_| panic!("no report: {report}"));
    assert_eq!(report["externalRequests"], json!([]), "{report}");
    assert_eq!(report["consoleErrors"], json!([]), "{report}");
    for step in ["registered", "secondFactor", "passwordless", "cloneRefused"] {
        assert_eq!(report[step], true, "{step}: {report}");
    }
    assert!(ok, "{report}");
    // The page signed the injected session out; a recovery code opens a new one.
    let challenge = app.two_factor_challenge("ada@example.com").await;
    let r = app
        .gql(
            None,
            "mutation($ch: String!, $c: String!) { completeTwoFactorLogIn(challenge: $ch, code: $c) { token } }",
            json!({ "ch": challenge, "c": recovery_codes[0] }),
        )
        .await;
    let token = r["data"]["completeTwoFactorLogIn"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();

    let r = app.gql(Some(&token), PASSKEYS, json!({})).await;
    let keys = r["data"]["me"]["passkeys"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    assert_eq!(keys.len(), 1, "{r}");
    assert_eq!(keys[0]["name"], "Laptop");
    assert!(keys[0]["lastUsedAt"].is_string(), "{r}");
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    let r = app.gql(Some(&token), "{ me { securityEvents(first: 50) { edges { node { kind detail } } } } }", json!({})).await;
    let events: Vec<(String, String)> = r["data"]["me"]["securityEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["kind"].as_str().unwrap().to_owned(), e["node"]["detail"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(events.contains(&("PASSKEY_ADDED".into(), "Laptop".into())), "{events:?}");
    assert!(events.contains(&("SIGN_IN_FAILED".into(), "passkey refused".into())), "the clone is logged: {events:?}");

    // Another account can neither rename nor remove it.
    let r = app.gql(Some(&bob.token), "mutation($id: ID!) { renamePasskey(id: $id, name: \"Mine\") { id } }", json!({ "id": id })).await;
    assert_eq!(error_of(&r).0, "NOT_FOUND", "{r}");
    let r = app
        .gql(
            Some(&bob.token),
            "mutation($id: ID!, $p: String) { removePasskey(id: $id, password: $p) }",
            json!({ "id": id, "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_of(&r).0, "NOT_FOUND", "{r}");
    // Its holder renames it, and removes it only with the password (or a code).
    let r = app
        .gql(Some(&token), "mutation($id: ID!) { renamePasskey(id: $id, name: \"  Work laptop \") { name } }", json!({ "id": id }))
        .await;
    assert_eq!(r["data"]["renamePasskey"]["name"], "Work laptop", "{r}");
    let remove = "mutation($id: ID!, $p: String, $c: String) { removePasskey(id: $id, password: $p, code: $c) }";
    let r = app.gql(Some(&token), remove, json!({ "id": id })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("password".into())), "{r}");
    let r = app.gql(Some(&token), remove, json!({ "id": id, "p": "Wrong-Horse-9!battery" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("password".into())), "{r}");
    let r = app.gql(Some(&token), remove, json!({ "id": id, "c": recovery_codes[1] })).await;
    assert_eq!(r["data"]["removePasskey"], true, "{r}");
    assert_eq!(app.gql(Some(&token), PASSKEYS, json!({})).await["data"]["me"]["passkeys"], json!([]));
}

#[tokio::test]
async fn creation_options_ask_for_a_discoverable_user_verifying_passkey_of_this_relying_party() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = app.gql(Some(&ada.token), BEGIN_REGISTRATION, json!({})).await;

    let pk = &r["data"]["beginPasskeyRegistration"]["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost", "a loopback gateway is `localhost` to browsers: {r}");
    assert_eq!(pk["user"]["name"], "ada@example.com");
    assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 43), "{r}");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required", "{r}");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required", "{r}");
    let again = app.gql(Some(&ada.token), BEGIN_REGISTRATION, json!({})).await;
    assert_ne!(again["data"]["beginPasskeyRegistration"]["options"]["publicKey"]["challenge"], pk["challenge"]);
}

#[tokio::test]
async fn the_relying_party_and_origins_are_settings() {
    let app = TestApp::spawn_with(|c| {
        c.webauthn_rp_id = Some("example.com".into());
        c.webauthn_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let ada = app.user("ada@example.com").await;

    let r = app.gql(Some(&ada.token), BEGIN_REGISTRATION, json!({})).await;
    assert_eq!(r["data"]["beginPasskeyRegistration"]["options"]["publicKey"]["rp"]["id"], "example.com", "{r}");
    let r = app.gql(None, BEGIN_LOG_IN, json!({})).await;
    assert_eq!(r["data"]["beginPasskeyLogIn"]["options"]["publicKey"]["rpId"], "example.com", "{r}");
}

#[tokio::test]
async fn registering_needs_a_session_of_ones_own() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let token = app.access_token(&ada, &["profile:read", "profile:write"]).await;

    let r = app.gql(None, BEGIN_REGISTRATION, json!({})).await;
    assert_eq!(error_of(&r).0, "UNAUTHENTICATED", "{r}");
    let r = app.gql(Some(&token), BEGIN_REGISTRATION, json!({})).await;
    assert_eq!(error_of(&r).0, "FORBIDDEN", "an access token cannot add a way in: {r}");
    let r = app.gql(Some(&token), PASSKEYS, json!({})).await;
    assert_eq!(error_of(&r).0, "FORBIDDEN", "{r}");

    // Bob's ceremony is not Ada's to answer, and survives her try.
    let r = app.gql(Some(&bob.token), BEGIN_REGISTRATION, json!({})).await;
    let bobs = r["data"]["beginPasskeyRegistration"]["id"].as_str().unwrap().to_owned();
    let r = app.gql(Some(&ada.token), FINISH_REGISTRATION, json!({ "id": bobs, "c": forged_registration() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("ceremony".into())), "{r}");
    let r = app.gql(Some(&bob.token), FINISH_REGISTRATION, json!({ "id": bobs, "c": forged_registration() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("credential".into())), "Bob's ceremony is still his: {r}");
}

#[tokio::test]
async fn a_malformed_or_forged_answer_is_refused_on_its_field_and_spends_the_ceremony() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let begin = || async {
        app.gql(Some(&ada.token), BEGIN_REGISTRATION, json!({})).await["data"]["beginPasskeyRegistration"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let id = begin().await;
    let r = app.gql(Some(&ada.token), FINISH_REGISTRATION, json!({ "id": id, "c": { "hello": 1 } })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("credential".into())), "{r}");
    let r = app.gql(Some(&ada.token), FINISH_REGISTRATION, json!({ "id": id, "c": forged_registration() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("ceremony".into())), "a ceremony takes one answer: {r}");

    let id = begin().await;
    let r = app.gql(Some(&ada.token), FINISH_REGISTRATION, json!({ "id": id, "c": forged_registration() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("credential".into())), "{r}");

    let id = begin().await;
    let huge = json!({ "id": "A", "rawId": "A".repeat(100_000), "type": "public-key", "response": {} });
    let r = app.gql(Some(&ada.token), FINISH_REGISTRATION, json!({ "id": id, "c": huge })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("credential".into())), "{r}");

    let id = begin().await;
    let r = app.gql(Some(&ada.token), FINISH_REGISTRATION, json!({ "id": id, "c": forged_registration(), "n": "x".repeat(65) })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("name".into())), "{r}");
    let r = app.gql(Some(&ada.token), FINISH_REGISTRATION, json!({ "id": "not-an-id", "c": forged_registration() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("ceremony".into())), "{r}");
    assert_eq!(app.gql(Some(&ada.token), PASSKEYS, json!({})).await["data"]["me"]["passkeys"], json!([]));
}

#[tokio::test]
async fn passwordless_sign_in_names_nobody_and_refuses_a_forged_or_reused_answer() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;

    let r = app.gql(None, BEGIN_LOG_IN, json!({})).await;
    let ceremony = &r["data"]["beginPasskeyLogIn"];
    let pk = &ceremony["options"]["publicKey"];
    assert_eq!(pk["rpId"], "localhost", "{r}");
    assert!(pk["allowCredentials"].as_array().is_none_or(|a| a.is_empty()), "no account is named before the browser picks: {r}");
    assert_eq!(pk["userVerification"], "required", "{r}");
    assert!(ceremony["options"].get("mediation").is_none_or(Value::is_null), "{r}");
    let id = ceremony["id"].as_str().unwrap();

    let r = app.gql(None, FINISH_LOG_IN, json!({ "id": id, "c": forged_assertion() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("credential".into())), "{r}");
    assert!(r["data"].is_null() || r["data"]["finishPasskeyLogIn"].is_null(), "{r}");
    let r = app.gql(None, FINISH_LOG_IN, json!({ "id": id, "c": forged_assertion() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("ceremony".into())), "{r}");
    let r = app.gql(None, FINISH_LOG_IN, json!({ "id": uuid::Uuid::now_v7().to_string(), "c": forged_assertion() })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("ceremony".into())), "{r}");
}

#[tokio::test]
async fn a_second_factor_ceremony_needs_a_live_challenge_of_an_account_with_a_passkey() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    enrol(&app, &ada).await;

    let r = app.gql(None, BEGIN_LOG_IN, json!({ "c": "clc_made-up" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("challenge".into())), "{r}");
    let challenge = app.two_factor_challenge("ada@example.com").await;
    let r = app.gql(None, BEGIN_LOG_IN, json!({ "c": challenge })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("challenge".into())), "no passkey yet, so a code it is: {r}");
}

#[tokio::test]
async fn starting_passkey_sign_ins_is_throttled_per_client_address() {
    let app = TestApp::spawn_with(|c| c.login_attempts_per_address = 3).await;

    for _ in 0..3 {
        let r = app.gql(None, BEGIN_LOG_IN, json!({})).await;
        assert!(r["data"]["beginPasskeyLogIn"]["id"].is_string(), "{r}");
    }
    let r = app.gql(None, BEGIN_LOG_IN, json!({})).await;
    assert_eq!(error_of(&r).0, "RATE_LIMITED", "{r}");
}

#[tokio::test]
async fn the_passkeys_page_and_its_script_come_from_the_gateway_under_a_strict_policy() {
    let app = TestApp::spawn().await;

    let (status, headers, page) = app.get("/passkeys", "text/html").await;

    assert_eq!(status, reqwest::StatusCode::OK);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(page.contains("src=\"/assets/passkeys.js\""), "{page}");
    assert!(!page.contains("http"), "nothing from elsewhere: {page}");
    let (status, headers, script) = app.get("/assets/passkeys.js", "*/*").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.contains("navigator.credentials.create") && script.contains("navigator.credentials.get"));
}
