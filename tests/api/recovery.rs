//! Getting back in and proving an address, through the real server and a real SMTP server
//! (the mail lab's exim): "forgot password" links, the reset, email verification, and what
//! each refuses.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, WsEvent, codes, error_of};
use crate::mail_lab::{Mail, MailLab, parse};
use crate::security::{enrol, totp_now};

const REQUEST: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
const RESET: &str = "mutation($t: String!, $p: String!, $c: String!) { resetPassword(token: $t, newPassword: $p, confirmPassword: $c) }";
const VERIFY: &str = "mutation($t: String!) { verifyEmail(token: $t) }";
const NEW_PASSWORD: &str = "Brand-New-Horse-42!";

fn fresh(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn link_token(text: &str) -> String {
    let at = text.find("token=").unwrap_or_else(|| panic!("no link in {text}"));
    text[at + 6..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

async fn mail_app(lab: &MailLab, adjust: impl FnOnce(&mut concierge::config::Config)) -> TestApp {
    let smtp = lab.smtp_url();
    TestApp::spawn_with(|c| {
        c.smtp_url = Some(concierge::config::Redacted(smtp));
        adjust(c);
    })
    .await
}

const RESET_SUBJECT: &str = "Reset your Concierge password";
const VERIFY_SUBJECT: &str = crate::mail_lab::SIGN_UP_VERIFICATION;

/// The messages to `address` with this subject, once there are `n` (other mail, such as
/// security notifications, arrives in between in no fixed order).
async fn mails(lab: &MailLab, address: &str, subject: &str, n: usize) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found: Vec<Mail> = lab.all_messages_to(address).await.iter().map(|raw| parse(raw)).filter(|m| m.subject == subject).collect();
        if found.len() >= n {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{n} message(s) \"{subject}\" for {address} did not arrive (got {})", found.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The link token of the `n`th message (1-based) to `address` with this subject.
async fn emailed_token(lab: &MailLab, address: &str, subject: &str, n: usize) -> String {
    link_token(&mails(lab, address, subject, n).await[n - 1].text)
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Value {
    app.gql(None, RESET, json!({ "t": token, "p": password, "c": password })).await
}

#[tokio::test]
async fn a_forgotten_password_is_reset_once_by_the_emailed_link_and_every_session_ends() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let email = fresh("ada");
    let ada = app.user(&email).await;
    let mut ws = app.ws_signed_in(&ada.token).await;
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { meUpdated { id } }" } })).await;

    let r = app.gql(None, REQUEST, json!({ "e": email.to_uppercase() })).await;

    assert_eq!(r["data"]["requestPasswordReset"], true, "{r}");
    let token = emailed_token(&lab, &email, RESET_SUBJECT, 1).await;
    assert!(token.starts_with("cpr_"), "{token}");
    let r = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(r["data"]["resetPassword"], true, "{r}");

    assert_eq!(codes(&app.gql(Some(&ada.token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"], "the old session ended");
    match ws.next_within(Duration::from_secs(10)).await {
        WsEvent::Closed(code) => assert_eq!(code, Some(4401)),
        other => panic!("a socket of the old session stayed open: {other:?}"),
    }
    assert_eq!(codes(&app.log_in(&email, PASSWORD).await), ["UNAUTHENTICATED"], "the old password no longer works");
    let fresh_session =
        app.log_in(&email, NEW_PASSWORD).await["data"]["logIn"]["token"].as_str().expect("the new password works").to_owned();
    let again = reset(&app, &token, "Third-Horse-5#battery").await;
    assert_eq!(error_of(&again), ("BAD_USER_INPUT".into(), Some("token".into())), "the link works once");

    let me =
        app.gql(Some(&fresh_session), "{ me { emailVerified securityEvents(first: 5) { edges { node { kind } } } } }", json!({})).await;
    assert_eq!(me["data"]["me"]["emailVerified"], true, "opening the link proved the address: {me}");
    let kinds: Vec<&str> =
        me["data"]["me"]["securityEvents"]["edges"].as_array().unwrap().iter().filter_map(|e| e["node"]["kind"].as_str()).collect();
    assert!(kinds.contains(&"PASSWORD_RESET"), "{kinds:?}");
    mails(&lab, &email, "Your password was reset", 1).await;
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_answer_and_no_email() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let known = fresh("ada");
    let unknown = fresh("nobody");
    app.user(&known).await;

    let a = app.gql(None, REQUEST, json!({ "e": known })).await;
    let b = app.gql(None, REQUEST, json!({ "e": unknown })).await;

    assert_eq!(a, b, "the answers differ");
    mails(&lab, &known, RESET_SUBJECT, 1).await;
    assert!(lab.all_messages_to(&unknown).await.is_empty(), "nothing is sent to an address without an account");
    let malformed = app.gql(None, REQUEST, json!({ "e": "not an address" })).await;
    assert_eq!(error_of(&malformed), ("BAD_USER_INPUT".into(), Some("email".into())));
}

#[tokio::test]
async fn requests_are_throttled_per_address_whether_or_not_it_has_an_account() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |c| c.account_emails_per_address = 2).await;
    let known = fresh("ada");
    app.user(&known).await;
    let unknown = fresh("nobody");

    for address in [&known, &unknown] {
        for _ in 0..2 {
            assert!(app.gql(None, REQUEST, json!({ "e": address })).await.get("errors").is_none());
        }
        let refused = app.gql(None, REQUEST, json!({ "e": address })).await;
        assert_eq!(codes(&refused), ["RATE_LIMITED"], "{refused}");
        assert!(refused["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|s| s > 0));
    }
}

#[tokio::test]
async fn a_reset_refuses_weak_passwords_without_spending_the_link_and_forged_or_expired_tokens() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let email = fresh("ada");
    app.user(&email).await;
    app.gql(None, REQUEST, json!({ "e": email })).await;
    let token = emailed_token(&lab, &email, RESET_SUBJECT, 1).await;

    let weak = reset(&app, &token, "password").await;
    assert_eq!(error_of(&weak), ("BAD_USER_INPUT".into(), Some("newPassword".into())), "{weak}");
    assert!(weak["errors"][0]["extensions"]["unmet"].as_array().is_some_and(|u| u.len() > 1), "every unmet rule: {weak}");
    let mismatch = app.gql(None, RESET, json!({ "t": token, "p": NEW_PASSWORD, "c": "Something-Else-42!" })).await;
    assert_eq!(error_of(&mismatch), ("BAD_USER_INPUT".into(), Some("newPassword".into())));
    for forged in ["cpr_not-a-real-token", "", &"x".repeat(10_000), &token.replacen("cpr_", "cve_", 1)] {
        let r = reset(&app, forged, NEW_PASSWORD).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("token".into())), "{r}");
    }
    // A verification link is not a reset link, even for the same account.
    let verification = emailed_token(&lab, &email, VERIFY_SUBJECT, 1).await;
    assert_eq!(error_of(&reset(&app, &verification, NEW_PASSWORD).await), ("BAD_USER_INPUT".into(), Some("token".into())));

    let past = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let db = &app.services.db;
    concierge::on_pool!(db, p => sqlx::query("UPDATE account_link SET expires_at = $1").bind(past).execute(p).await.map(drop)).unwrap();
    let expired = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(error_of(&expired), ("BAD_USER_INPUT".into(), Some("token".into())));
    assert!(app.log_in(&email, PASSWORD).await["data"]["logIn"]["token"].is_string(), "the password is unchanged");
}

#[tokio::test]
async fn only_the_newest_link_works_and_tokens_are_stored_hashed() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let email = fresh("ada");
    app.user(&email).await;
    app.gql(None, REQUEST, json!({ "e": email })).await;
    let first = emailed_token(&lab, &email, RESET_SUBJECT, 1).await;
    app.gql(None, REQUEST, json!({ "e": email })).await;
    let second = emailed_token(&lab, &email, RESET_SUBJECT, 2).await;

    assert_eq!(error_of(&reset(&app, &first, NEW_PASSWORD).await), ("BAD_USER_INPUT".into(), Some("token".into())));
    let db = &app.services.db;
    let stored: Vec<Vec<u8>> =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT token_hash FROM account_link").fetch_all(p).await).unwrap();
    for t in [&first, &second] {
        assert!(!stored.iter().any(|h| h == t.as_bytes()), "a token is stored as it was sent");
    }
    assert_eq!(reset(&app, &second, NEW_PASSWORD).await["data"]["resetPassword"], true);
}

#[tokio::test]
async fn with_two_factor_on_a_reset_still_leaves_the_second_factor_to_pass() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let email = fresh("ada");
    let ada = app.user(&email).await;
    let (secret, _) = enrol(&app, &ada).await;
    app.gql(None, REQUEST, json!({ "e": email })).await;
    let token = emailed_token(&lab, &email, RESET_SUBJECT, 1).await;

    assert_eq!(reset(&app, &token, NEW_PASSWORD).await["data"]["resetPassword"], true);

    let r = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token twoFactorChallenge { challenge } } }",
            json!({ "e": email, "p": NEW_PASSWORD }),
        )
        .await;
    assert!(r["data"]["logIn"]["token"].is_null(), "no session without the second factor: {r}");
    let challenge = r["data"]["logIn"]["twoFactorChallenge"]["challenge"].as_str().unwrap_or_else(|| panic!("a challenge: {r}")).to_owned();
    let r = app
        .gql(
            None,
            "mutation($ch: String!, $c: String!) { completeTwoFactorLogIn(challenge: $ch, code: $c) { token } }",
            json!({ "ch": challenge, "c": totp_now(&secret, 1).await }),
        )
        .await;
    assert!(r["data"]["completeTwoFactorLogIn"]["token"].is_string(), "{r}");
}

#[tokio::test]
async fn the_reset_page_sets_the_password_only_when_its_form_is_sent() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let email = fresh("ada");
    app.user(&email).await;
    app.gql(None, REQUEST, json!({ "e": email })).await;
    let text = mails(&lab, &email, RESET_SUBJECT, 1).await.remove(0).text;
    let link = text.lines().find(|l| l.contains("/reset-password?token=")).expect("a link to the gateway's page").trim().to_owned();
    assert!(link.starts_with(&app.base), "{link}");

    let (status, headers, page) = app.get(link.trim_start_matches(&app.base), "text/html").await;

    assert_eq!(status, 200);
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert!(page.contains("type=\"password\"") && !page.contains("<script"));
    assert!(app.log_in(&email, PASSWORD).await["data"]["logIn"]["token"].is_string(), "opening the page changed nothing");
    let token = link_token(&text);
    let weak = app
        .client()
        .post(format!("{}/reset-password", app.base))
        .form(&[("token", token.as_str()), ("password", "short"), ("confirm", "short")])
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 400);
    let res = app
        .client()
        .post(format!("{}/reset-password", app.base))
        .form(&[("token", token.as_str()), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(app.log_in(&email, NEW_PASSWORD).await["data"]["logIn"]["token"].is_string());
}

#[tokio::test]
async fn the_link_points_at_the_platforms_own_page_when_one_is_configured() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |c| c.password_reset_url = Some("https://app.example.com/account/reset?from=mail".into())).await;
    let email = fresh("ada");
    app.user(&email).await;
    app.gql(None, REQUEST, json!({ "e": email })).await;
    let text = mails(&lab, &email, RESET_SUBJECT, 1).await.remove(0).text;
    assert!(text.contains("https://app.example.com/account/reset?from=mail&token=cpr_"), "{text}");
}

#[tokio::test]
async fn a_new_address_is_unverified_until_the_emailed_link_and_an_email_change_verifies_the_new_one() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let email = fresh("ada");
    let ada = app.user(&email).await;
    let verified = |r: Value| r["data"]["me"]["emailVerified"].clone();
    assert_eq!(verified(app.gql(Some(&ada.token), "{ me { emailVerified } }", json!({})).await), false);

    let token = emailed_token(&lab, &email, VERIFY_SUBJECT, 1).await;
    assert_eq!(error_of(&app.gql(None, VERIFY, json!({ "t": "cve_forged" })).await), ("BAD_USER_INPUT".into(), Some("token".into())));
    let r = app.gql(None, VERIFY, json!({ "t": token })).await;
    assert_eq!(r["data"]["verifyEmail"], true, "{r}");
    assert_eq!(verified(app.gql(Some(&ada.token), "{ me { emailVerified } }", json!({})).await), true);
    assert_eq!(error_of(&app.gql(None, VERIFY, json!({ "t": token })).await), ("BAD_USER_INPUT".into(), Some("token".into())), "once");

    let new = fresh("ada-new");
    app.gql(
        Some(&ada.token),
        "mutation($e: String!, $p: String!) { requestEmailChange(newEmail: $e, password: $p) }",
        json!({ "e": new, "p": PASSWORD }),
    )
    .await;
    let change = link_token(&parse(&lab.wait_for(&new, 1).await[0]).text);
    let r = app.gql(None, "mutation($t: String!) { confirmEmailChange(token: $t) { email } }", json!({ "t": change })).await;
    assert_eq!(r["data"]["confirmEmailChange"]["email"], new.as_str(), "{r}");
    let me = app.gql(Some(&ada.token), "{ me { email emailVerified } }", json!({})).await;
    assert_eq!(me["data"]["me"]["emailVerified"], true, "the link opened from the new address proves it: {me}");
}

#[tokio::test]
async fn a_verification_link_for_an_old_address_does_not_verify_the_new_one() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |_| {}).await;
    let email = fresh("ada");
    let ada = app.user(&email).await;
    let stale = emailed_token(&lab, &email, VERIFY_SUBJECT, 1).await;
    let db = &app.services.db;
    let other = fresh("elsewhere");
    concierge::on_pool!(db, p => sqlx::query("UPDATE account SET email = $1").bind(&other).execute(p).await.map(drop)).unwrap();

    let r = app.gql(None, VERIFY, json!({ "t": stale })).await;

    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("token".into())), "{r}");
    assert_eq!(app.gql(Some(&ada.token), "{ me { emailVerified } }", json!({})).await["data"]["me"]["emailVerified"], false);
}

#[tokio::test]
async fn when_verified_addresses_are_required_an_unverified_account_cannot_log_in_and_a_taken_address_looks_free() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab, |c| c.require_verified_email = true).await;
    let email = fresh("ada");
    app.sign_up(&email, "Ada", "Lovelace").await;

    let refused = app.log_in(&email, PASSWORD).await;
    assert_eq!(codes(&refused), ["FORBIDDEN"], "{refused}");
    assert_eq!(codes(&app.log_in(&email, "Wrong-Horse-9!battery").await), ["UNAUTHENTICATED"], "a wrong password says nothing more");
    let token = emailed_token(&lab, &email, VERIFY_SUBJECT, 1).await;
    app.gql(None, VERIFY, json!({ "t": token })).await;
    assert!(app.log_in(&email, PASSWORD).await["data"]["logIn"]["token"].is_string());

    let again = app.sign_up(&email.to_uppercase(), "Mallory", "Probe").await;
    let unused = fresh("new");
    let new = app.sign_up(&unused, "Mallory", "Probe").await;
    assert!(again.get("errors").is_none(), "a taken address answers like a free one: {again}");
    assert_eq!(again["data"]["signUp"]["user"]["email"], email.as_str());
    assert_eq!(new["data"]["signUp"]["user"]["email"], unused.as_str());
    mails(&lab, &email, "Someone tried to sign up with your address", 1).await;
    assert!(app.log_in(&email, PASSWORD).await["data"]["logIn"]["token"].is_string(), "the owner's account is untouched");

    let r = app.gql(None, "mutation($e: String!) { resendVerificationEmail(email: $e) }", json!({ "e": unused })).await;
    assert_eq!(r["data"]["resendVerificationEmail"], true);
    mails(&lab, &unused, VERIFY_SUBJECT, 2).await;
}
