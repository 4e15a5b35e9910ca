//! The security log, the brute-force limits, and the password-change notice by email.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, codes, error_of};
use crate::mail_lab::{MailLab, parse};
use crate::security::{enrol, totp_now};

const EVENTS: &str = "query($first: Int, $after: String) { me { securityEvents(first: $first, after: $after) { \
    edges { cursor node { kind occurredAt ip userAgent detail } } pageInfo { hasNextPage endCursor } } } }";
const LOG_IN: &str = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token twoFactorChallenge { challenge } } }";
const CHANGE: &str = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n, confirmPassword: $n) }";

fn kinds(page: &Value) -> Vec<String> {
    page["data"]["me"]["securityEvents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {page}"))
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_log_records_what_happened_newest_first_with_address_and_user_agent() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.gql_as("Firefox/140 (test)", None, LOG_IN, json!({ "e": "ada@example.com", "p": "Wrong-Password-1!" })).await;
    let r = app
        .gql(
            Some(&ada.token),
            "mutation { createAccessToken(input: {name: \"CI\", scopes: [\"profile:read\"]}) { accessToken { id } } }",
            json!({}),
        )
        .await;
    let token_id = r["data"]["createAccessToken"]["accessToken"]["id"].as_str().unwrap().to_owned();
    app.gql(Some(&ada.token), "mutation($id: ID!) { revokeAccessToken(id: $id) { id } }", json!({ "id": token_id })).await;

    let r = app.gql(Some(&ada.token), EVENTS, json!({})).await;

    assert_eq!(kinds(&r), ["ACCESS_TOKEN_REVOKED", "ACCESS_TOKEN_CREATED", "SIGN_IN_FAILED", "SIGN_IN_SUCCEEDED"], "{r}");
    let edges = &r["data"]["me"]["securityEvents"]["edges"];
    assert_eq!(edges[0]["node"]["detail"], "CI");
    assert_eq!(edges[2]["node"]["ip"], "127.0.0.1");
    assert_eq!(edges[2]["node"]["userAgent"], "Firefox/140 (test)");
    assert!(!edges[2]["node"]["detail"].as_str().unwrap().contains("Wrong-Password"), "no secret is logged");
}

#[tokio::test]
async fn the_log_pages_by_cursor_and_refuses_a_bad_one() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    for _ in 0..3 {
        app.log_in("ada@example.com", PASSWORD).await;
    }

    let first = app.gql(Some(&ada.token), EVENTS, json!({ "first": 3 })).await;
    let info = &first["data"]["me"]["securityEvents"]["pageInfo"];
    assert_eq!(info["hasNextPage"], true);
    let rest = app.gql(Some(&ada.token), EVENTS, json!({ "first": 3, "after": info["endCursor"] })).await;

    assert_eq!(kinds(&first).len() + kinds(&rest).len(), 4, "4 sign-ins in all: {rest}");
    assert_eq!(rest["data"]["me"]["securityEvents"]["pageInfo"]["hasNextPage"], false);
    let bad = app.gql(Some(&ada.token), EVENTS, json!({ "after": "nope" })).await;
    assert_eq!(error_of(&bad), ("BAD_USER_INPUT".into(), Some("after".into())));
    let bad = app.gql(Some(&ada.token), EVENTS, json!({ "first": 1000 })).await;
    assert_eq!(error_of(&bad), ("BAD_USER_INPUT".into(), Some("first".into())));
}

#[tokio::test]
async fn the_log_is_for_a_session_not_a_token_and_only_ones_own() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let r = app
        .gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"all\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    let pat = r["data"]["createAccessToken"]["token"].as_str().unwrap().to_owned();

    assert_eq!(codes(&app.gql(Some(&pat), EVENTS, json!({})).await), ["FORBIDDEN"]);
    assert_eq!(codes(&app.gql(None, EVENTS, json!({})).await), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn two_factor_password_and_session_changes_are_logged() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let other = app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned();
    let (secret, recovery) = enrol(&app, &ada).await;
    let r = app.gql(None, LOG_IN, json!({ "e": "ada@example.com", "p": PASSWORD })).await;
    let challenge = r["data"]["logIn"]["twoFactorChallenge"]["challenge"].as_str().unwrap().to_owned();
    let complete = "mutation($c: String!, $code: String!) { completeTwoFactorLogIn(challenge: $c, code: $code) { token } }";
    app.gql(None, complete, json!({ "c": challenge, "code": "000000" })).await;
    app.gql(None, complete, json!({ "c": challenge, "code": recovery[0] })).await;
    let code = totp_now(&secret, 1).await;
    app.gql(
        Some(&ada.token),
        "mutation($p: String!, $c: String!) { disableTotp(password: $p, code: $c) }",
        json!({ "p": PASSWORD, "c": code }),
    )
    .await;
    app.gql(Some(&ada.token), "mutation { revokeOtherSessions }", json!({})).await;
    let r = app.gql(Some(&ada.token), CHANGE, json!({ "c": PASSWORD, "n": "Brand-New-Horse-42!" })).await;
    assert_eq!(r["data"]["changePassword"], true, "{r}");
    let _ = other;

    let r = app.gql(Some(&ada.token), EVENTS, json!({})).await;

    assert_eq!(
        kinds(&r)[..7],
        [
            "PASSWORD_CHANGED",
            "SESSION_REVOKED",
            "TWO_FACTOR_DISABLED",
            "SIGN_IN_SUCCEEDED",
            "RECOVERY_CODE_USED",
            "SIGN_IN_FAILED",
            "TWO_FACTOR_ENABLED"
        ],
        "{r}"
    );
}

#[tokio::test]
async fn a_changed_password_is_announced_by_email() {
    let lab = MailLab::get().await;
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url()))).await;
    let email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    let ada = app.user(&email).await;

    let r = app.gql(Some(&ada.token), CHANGE, json!({ "c": PASSWORD, "n": "Brand-New-Horse-42!" })).await;

    assert_eq!(r["data"]["changePassword"], true, "{r}");
    let mail = parse(&lab.wait_for(&email, 1).await[0]);
    assert_eq!(mail.subject, "Your password was changed");
    assert!(mail.text.contains("127.0.0.1"), "says where from: {}", mail.text);
    assert!(!mail.text.contains("Brand-New-Horse"), "never the password");
}

#[tokio::test]
async fn guessing_a_password_is_limited_per_account_and_then_even_the_right_one_waits() {
    let app = TestApp::spawn_with(|c| c.login_attempts_per_account = 3).await;
    app.user("ada@example.com").await; // one attempt used by the harness's log-in
    for _ in 0..2 {
        assert_eq!(codes(&app.log_in("ada@example.com", "Wrong-Password-1!").await), ["UNAUTHENTICATED"]);
    }

    let r = app.log_in("ada@example.com", PASSWORD).await;

    assert_eq!(codes(&r), ["RATE_LIMITED"], "{r}");
    assert!(r["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s >= 1), "{r}");
    // A stranger learns nothing from the limit: an address with no account is limited alike.
    for _ in 0..3 {
        app.log_in("nobody@example.com", PASSWORD).await;
    }
    let stranger = app.log_in("nobody@example.com", PASSWORD).await;
    assert_eq!(codes(&stranger), ["RATE_LIMITED"]);
    assert_eq!(stranger["errors"][0]["message"], r["errors"][0]["message"]);
    // Other accounts are unaffected.
    app.user("grace@example.com").await;
}

#[tokio::test]
async fn one_address_is_limited_across_accounts() {
    let app = TestApp::spawn_with(|c| c.login_attempts_per_address = 4).await;
    for n in 0..4 {
        app.log_in(&format!("u{n}@example.com"), PASSWORD).await;
    }

    let r = app.log_in("someone-else@example.com", PASSWORD).await;

    assert_eq!(codes(&r), ["RATE_LIMITED"], "{r}");
}

#[tokio::test]
async fn guessing_second_factor_codes_is_limited() {
    // Five: the enrolment's confirming code is a second-factor attempt too.
    let app = TestApp::spawn_with(|c| c.login_attempts_per_account = 5).await;
    let ada = app.user("ada@example.com").await;
    enrol(&app, &ada).await;
    let r = app.gql(None, LOG_IN, json!({ "e": "ada@example.com", "p": PASSWORD })).await;
    let challenge = r["data"]["logIn"]["twoFactorChallenge"]["challenge"].as_str().unwrap().to_owned();
    let complete = "mutation($c: String!, $code: String!) { completeTwoFactorLogIn(challenge: $c, code: $code) { token } }";
    let mut answers = Vec::new();
    for guess in ["000000", "111111", "222222", "333333", "444444"] {
        answers.push(codes(&app.gql(None, complete, json!({ "c": challenge, "code": guess })).await).join(""));
    }

    assert_eq!(answers[..4], ["BAD_USER_INPUT"; 4]);
    assert_eq!(answers[4], "RATE_LIMITED");
}

#[tokio::test]
async fn replicas_on_one_postgresql_share_the_log_in_and_sign_up_limits() {
    let first = TestApp::spawn_with(|c| {
        c.login_attempts_per_account = 4;
        c.signups_per_address = 2;
    })
    .await;
    first.user("ada@example.com").await;
    let url = first.database_url.clone();
    let second = TestApp::spawn_with(move |c| {
        c.login_attempts_per_account = 4;
        c.signups_per_address = 2;
        c.database_url = Some(url);
    })
    .await;

    // Wrong passwords for Ada, spread over both gateways as a balancer would spread them.
    let mut answers = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &first } else { &second };
        answers.push(codes(&app.gql(None, LOG_IN, json!({ "e": "ada@example.com", "p": "wrong password" })).await).join(""));
    }
    // The right password on the gateway that has seen only three guesses.
    let right = codes(&second.gql(None, LOG_IN, json!({ "e": "ada@example.com", "p": PASSWORD })).await).join("");
    if crate::helpers::on_postgres() {
        // One quota for the account, whichever replica answers (signing Ada up logged her in
        // once: that was the first of the four attempts).
        assert_eq!(answers[..3], ["UNAUTHENTICATED"; 3], "{answers:?}");
        assert_eq!(answers[3..], ["RATE_LIMITED"; 3], "{answers:?}");
        assert_eq!(right, "RATE_LIMITED", "a throttled account is refused unchecked, even with the right password");
    } else {
        // SQLite is one gateway: a second process on the same file counts for itself
        // (four attempts on each, Ada's log-in included on the first).
        assert_eq!(answers, ["UNAUTHENTICATED"; 6], "{answers:?}");
        assert_eq!(right, "", "three guesses on this process leave room for a fourth attempt");
    }

    // Sign-ups from one address: two in all, over both replicas (Ada's was the first).
    let sign_up = "mutation($e: String!) { signUp(input: {email: $e, password: \"Correct-Horse-9!battery\", firstName: \"S\", lastName: \"U\"}) { __typename } }";
    let mut answers = Vec::new();
    for (i, app) in [&first, &second, &first, &second].into_iter().enumerate() {
        answers.push(codes(&app.gql(None, sign_up, json!({ "e": format!("new{i}@example.com") })).await).join(""));
    }
    if crate::helpers::on_postgres() {
        assert_eq!(answers, ["", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"], "{answers:?}");
    } else {
        // `first` signed Ada up already: one left there, two on `second`.
        assert_eq!(answers, ["", "", "RATE_LIMITED", ""], "{answers:?}");
    }
}

#[tokio::test]
async fn attempts_arriving_together_get_the_whole_quota_and_no_more() {
    use concierge::security::throttle::AddressLimit;
    use std::time::Duration;
    let app = TestApp::spawn().await;

    // Like the aliases of one request: five attempts at once on a quota of three, on a limit
    // new to this process (on PostgreSQL its first use also sweeps the table), twenty times
    // over. Whatever order they reach the database in, three pass.
    for round in 0..20 {
        let limit = AddressLimit::new(3, Duration::from_secs(3600)).shared(&app.services.db, "together");
        let address = format!("192.0.2.{round}");
        let outcomes = futures_util::future::join_all((0..5).map(|_| limit.attempt(Some(&address)))).await;
        let allowed = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(allowed, 3, "round {round}: {outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Ok(()) | Err(concierge::error::Error::RateLimited { .. }))));
    }
}
