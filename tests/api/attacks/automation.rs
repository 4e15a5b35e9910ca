//! Anti-automation and a quieter surface: sign-ups are throttled per client address (each
//! alias and each operation of a batch counts), failed token checks (bearer tokens,
//! email-change links) are counted per address and then refused, the enrolment code shares
//! the second-factor limit, introspection and field suggestions follow
//! `CONCIERGE_INTROSPECTION`, error messages never send a long input back, and WebSocket
//! close codes follow the refusal's `extensions.code`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, WsEvent, codes};
use concierge::config::Introspection;

fn sign_up_alias(i: usize) -> String {
    format!(
        "a{i}: signUp(input: {{email: \"bot{i}@example.com\", password: \"{PASSWORD}\", firstName: \"Bot\", lastName: \"Net\"}}) {{ user {{ id }} }}"
    )
}

fn assert_rate_limited(error: &Value) {
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{error}");
    assert!(error["extensions"]["retryAfter"].as_u64().is_some_and(|s| s >= 1), "{error}");
}

#[tokio::test]
async fn fifty_aliased_sign_ups_in_one_request_create_only_the_hourly_quota() {
    let app = TestApp::spawn().await; // the default quota: 20 an hour per address
    let aliases: Vec<String> = (0..50).map(sign_up_alias).collect();

    let r = app.gql(None, &format!("mutation {{ {} }}", aliases.join(" ")), json!({})).await;

    // `signUp` is non-null, so the refused ones null `data` (as the specification says); what
    // was created is counted in the database.
    assert!(r["data"].is_null(), "{r}");
    let db = &app.services.db;
    let created: i64 =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM account").fetch_one(p).await).expect("a count");
    assert_eq!(created, 20, "{r}");
    let errors = r["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 30);
    errors.iter().for_each(assert_rate_limited);
    // The ones refused were never created.
    let r = app.log_in("bot49@example.com", PASSWORD).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");
}

#[tokio::test]
async fn sign_ups_in_a_batch_count_one_by_one() {
    let app = TestApp::spawn_with(|c| c.signups_per_address = 3).await;
    let batch: Vec<Value> = (0..5).map(|i| json!({ "query": format!("mutation {{ {} }}", sign_up_alias(i)) })).collect();

    let (status, _, body) = app.post_raw("application/json", Value::Array(batch).to_string()).await;

    assert_eq!(status, StatusCode::OK);
    let answers: Vec<Value> = serde_json::from_str(&body).expect("a JSON list");
    let mut outcomes: Vec<String> = answers.iter().map(|a| codes(a).join("")).collect();
    // The operations run at once; with the limit in a shared database, which of them come
    // first is the database's order, not the batch's. Three pass, two are refused.
    let refused = answers.iter().find(|a| codes(a) == ["RATE_LIMITED"]).cloned().unwrap_or_else(|| panic!("{body}"));
    outcomes.sort();
    assert_eq!(outcomes, ["", "", "", "RATE_LIMITED", "RATE_LIMITED"], "{body}");
    assert_rate_limited(&refused["errors"][0]);
    // And the next request from the address waits too.
    assert_eq!(codes(&app.sign_up("late@example.com", "Late", "Comer").await), ["RATE_LIMITED"]);
}

const ME: &str = "{ me { id } }";

#[tokio::test]
async fn a_flood_of_invalid_bearer_tokens_is_rate_limited_and_then_no_token_is_checked() {
    let app = TestApp::spawn_with(|c| c.token_failures_per_address = 5).await;
    let ada = app.user("ada@example.com").await;

    for n in 0..5 {
        let r = app.gql(Some(&format!("cs_guess{n}")), ME, json!({})).await;
        assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");
    }
    let r = app.gql(Some("cs_guess5"), ME, json!({})).await;
    assert_rate_limited(&r["errors"][0]);

    // Throttled, the address's tokens are not even checked: a guess that would be right
    // learns nothing, so Ada (behind the same address) waits too.
    let r = app.gql(Some(&ada.token), ME, json!({})).await;
    assert_rate_limited(&r["errors"][0]);
    // Anonymous requests are not token checks.
    assert_eq!(app.gql(None, "{ __typename }", json!({})).await["data"]["__typename"], "Query");
    // Over WebSocket the refusal closes the connection with 4429, from its code.
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", ada.token) } })).await;
    match ws.next_within(Duration::from_secs(5)).await {
        WsEvent::Closed(code) => assert_eq!(code, Some(4429)),
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_that_does_not_authenticate_still_closes_the_websocket_with_4403() {
    let app = TestApp::spawn().await;

    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut ws = app.ws(protocol).await;
        ws.send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer cs_forged" } })).await;
        let code = loop {
            match ws.next_within(Duration::from_secs(5)).await {
                WsEvent::Closed(code) => break code,
                // The legacy protocol says `connection_error` first.
                WsEvent::Json(m) => assert_eq!(m["type"], "connection_error", "{m}"),
            }
        };
        assert_eq!(code, Some(4403), "{protocol}");
    }
}

#[tokio::test]
async fn guessing_email_change_links_is_rate_limited_per_address() {
    let app = TestApp::spawn_with(|c| c.token_failures_per_address = 3).await;
    let confirm = "mutation($t: String!) { confirmEmailChange(token: $t) { email } }";

    for n in 0..3 {
        let r = app.gql(None, confirm, json!({ "t": format!("guess-{n}") })).await;
        assert_eq!(codes(&r), ["BAD_USER_INPUT"], "{r}");
    }
    let r = app.gql(None, confirm, json!({ "t": "guess-3" })).await;
    assert_rate_limited(&r["errors"][0]);
    let r = app.gql(None, confirm, json!({ "t": "guess-4" })).await;
    assert_rate_limited(&r["errors"][0]);
}

#[tokio::test]
async fn confirming_totp_enrolment_shares_the_second_factor_limit() {
    let app = TestApp::spawn_with(|c| c.login_attempts_per_account = 3).await;
    let mallory = app.user("mallory@example.com").await;
    let r = app.gql(Some(&mallory.token), "mutation { beginTotpEnrollment { secret } }", json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    let confirm = "mutation($c: String!) { confirmTotpEnrollment(code: $c) { codes } }";

    let mut answers = Vec::new();
    for guess in ["000000", "111111", "222222", "333333"] {
        answers.push(app.gql(Some(&mallory.token), confirm, json!({ "c": guess })).await);
    }

    for r in &answers[..3] {
        assert_eq!(codes(r), ["BAD_USER_INPUT"], "{r}");
    }
    assert_rate_limited(&answers[3]["errors"][0]);
}

const SCHEMA: &str = "{ __schema { queryType { name } } }";
const TYPE: &str = "{ t: __type(name: \"User\") { fields { name } } }";
/// A typo async-graphql would answer with `Did you mean "email"?`.
const TYPO: &str = "{ me { emai } }";

fn no_suggestion(r: &Value) {
    assert_eq!(codes(r), ["BAD_USER_INPUT"], "{r}");
    let message = r["errors"][0]["message"].as_str().expect("a message");
    assert!(!message.contains("Did you mean") && !message.contains("\"email\""), "{message}");
}

#[tokio::test]
async fn with_introspection_off_nobody_reads_the_schema_or_gets_suggestions() {
    let app = TestApp::spawn_with(|c| c.introspection = Introspection::Off).await;
    let ada = app.user("ada@example.com").await;

    for token in [None, Some(ada.token.as_str())] {
        for query in [SCHEMA, TYPE] {
            let r = app.gql(token, query, json!({})).await;
            assert_eq!(codes(&r), ["FORBIDDEN"], "{r}");
            assert!(r.get("data").is_none_or(Value::is_null), "{r}");
        }
        no_suggestion(&app.gql(token, TYPO, json!({})).await);
    }
    assert_eq!(app.gql(None, "{ __typename }", json!({})).await["data"]["__typename"], "Query");
}

#[tokio::test]
async fn with_introspection_for_the_authenticated_only_anonymous_callers_are_refused() {
    let app = TestApp::spawn_with(|c| c.introspection = Introspection::Authenticated).await;
    let ada = app.user("ada@example.com").await;

    for query in [SCHEMA, TYPE] {
        assert_eq!(codes(&app.gql(None, query, json!({})).await), ["UNAUTHENTICATED"]);
        assert_eq!(codes(&app.gql(Some("cs_forged"), query, json!({})).await), ["UNAUTHENTICATED"]);
    }
    no_suggestion(&app.gql(None, TYPO, json!({})).await);
    // Over WebSocket, an anonymous connection is refused alike.
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": {} })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": SCHEMA } })).await;
    let m = ws.next_json().await;
    let errors = if m["type"] == "error" { m["payload"].clone() } else { m["payload"]["errors"].clone() };
    assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED", "{m}");

    let r = app.gql(Some(&ada.token), SCHEMA, json!({})).await;
    assert_eq!(r["data"]["__schema"]["queryType"]["name"], "Query", "{r}");
    let r = app.gql(Some(&ada.token), TYPO, json!({})).await;
    assert!(r["errors"][0]["message"].as_str().is_some_and(|m| m.contains("Did you mean")), "signed in, suggestions stay: {r}");
}

#[tokio::test]
async fn by_default_anyone_may_introspect() {
    let app = TestApp::spawn().await;

    let r = app.gql(None, SCHEMA, json!({})).await;

    assert_eq!(r["data"]["__schema"]["queryType"]["name"], "Query", "{r}");
}

#[tokio::test]
async fn error_messages_echo_at_most_a_short_excerpt_of_a_long_input() {
    let app = TestApp::spawn().await;
    let long = "A".repeat(200_000);

    let unknown_field = app.gql(None, &format!("{{ {long} }}"), json!({})).await;
    let bad_variable = app.gql(None, "query($b: Boolean!) { __typename @skip(if: $b) }", json!({ "b": long })).await;
    let bad_literal = app.gql(None, &format!("{{ __type(name: {long}) {{ name }} }}"), json!({})).await;
    let bad_enum =
        app.gql(None, &format!("{{ __type(name: \"User\") {{ fields(includeDeprecated: {long}) {{ name }} }} }}"), json!({})).await;

    assert!(unknown_field.to_string().contains(&format!("\\\"{}…", "A".repeat(64))), "an excerpt is still shown: {unknown_field}");
    for r in [unknown_field, bad_variable, bad_literal, bad_enum] {
        let body = r.to_string();
        assert_eq!(codes(&r), ["BAD_USER_INPUT"], "{}", &body[..500.min(body.len())]);
        assert!(body.len() < 1_000, "{} bytes came back: {}", body.len(), &body[..500]);
    }
}
