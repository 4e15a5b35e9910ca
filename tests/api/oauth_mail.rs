//! Gmail and Outlook by OAuth, followed as a browser would: start, the provider's consent
//! (the stand-in of scripts/oauth-standin, since Google and Microsoft can't be reached from
//! here), the callback on the gateway, the redirect to the frontend, and the mailbox LIVE.
//! The connectors are the real ones with their endpoints moved to the lab: Dovecot checks
//! every XOAUTH2 token against the stand-in's introspection endpoint.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_of};
use crate::mail_lab::{MailLab, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
use crate::mailboxes::{imap_date, live_with, mailbox, message, sync_from};

pub const FRONTEND: &str = "http://frontend.test/settings/mail";

/// A gateway whose Gmail and Outlook apps point at the lab's stand-in and servers.
pub async fn oauth_gateway() -> (TestApp, MailLab) {
    oauth_gateway_on(MailLab::get().await, |_| {}).await
}

/// The same on `lab`, with more settings changed by `adjust`.
pub async fn oauth_gateway_on(lab: MailLab, adjust: impl FnOnce(&mut concierge::config::Config) + Send + 'static) -> (TestApp, MailLab) {
    let cert = lab.cert();
    let base = lab.oauth_url();
    let (imaps, submissions) = (lab.imaps, lab.submissions);
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        c.mail_retry_ms = 200;
        c.oauth_return_url = Some(FRONTEND.into());
        c.gmail_client_id = Some(OAUTH_CLIENT_ID.into());
        c.gmail_client_secret = Some(concierge::config::Redacted(OAUTH_CLIENT_SECRET.into()));
        c.gmail_authorize_url = Some(format!("{base}/authorize"));
        c.gmail_token_url = Some(format!("{base}/token"));
        c.gmail_userinfo_url = Some(format!("{base}/userinfo"));
        c.gmail_imap = Some(format!("127.0.0.1:{imaps}"));
        c.gmail_smtp = Some(format!("127.0.0.1:{submissions}"));
        c.outlook_client_id = Some(OAUTH_CLIENT_ID.into());
        c.outlook_client_secret = Some(concierge::config::Redacted(OAUTH_CLIENT_SECRET.into()));
        c.outlook_authorize_url = Some(format!("{base}/authorize"));
        c.outlook_token_url = Some(format!("{base}/token"));
        c.outlook_userinfo_url = Some(format!("{base}/userinfo"));
        c.outlook_imap = Some(format!("127.0.0.1:{imaps}"));
        // Outlook submits over STARTTLS; the lab's port for that is `submission`, so the
        // Outlook tests use Gmail's implicit-TLS path for sending and this for signing in.
        c.outlook_smtp = Some(format!("127.0.0.1:{submissions}"));
        adjust(c);
    })
    .await;
    (app, lab)
}

/// A client that shows redirects instead of following them, like a test of a browser flow must.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

pub async fn start(app: &TestApp, user: &TestUser, input: Value) -> Value {
    app.gql(
        Some(&user.token),
        "mutation($connector: String!, $syncFrom: NaiveDate, $workspaceId: ID, $mailboxId: ID, $loginHint: String) { \
           startMailboxAuthorization(connector: $connector, syncFrom: $syncFrom, workspaceId: $workspaceId, mailboxId: $mailboxId, loginHint: $loginHint) { url expiresAt } }",
        input,
    )
    .await
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location on {}", response.status()))
        .to_owned()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).expect("a URL").query_pairs().into_owned().collect()
}

/// At the stand-in: opens the consent page, then approves (as `email`) or denies. Returns
/// the callback URL the provider sends the browser to.
async fn consent(authorize_url: &str, email: &str, approve: bool) -> String {
    let browser = browser();
    let page = browser.get(authorize_url).send().await.expect("consent page");
    assert_eq!(page.status(), 200, "the provider shows its consent page");
    let mut form: Vec<(String, String)> = query_of(authorize_url).into_iter().collect();
    form.push(("email".into(), email.into()));
    form.push(("decision".into(), if approve { "approve" } else { "deny" }.into()));
    let base = authorize_url.split('?').next().expect("a URL");
    let answer = browser.post(base).form(&form).send().await.expect("consent answer");
    assert_eq!(answer.status(), 302, "the provider redirects back");
    location(&answer)
}

/// The gateway's callback: returns where it sends the browser next.
async fn callback(url: &str) -> String {
    let response = browser().get(url).send().await.expect("callback");
    assert!(response.status().is_redirection(), "the callback redirects, got {}", response.status());
    location(&response)
}

/// Connects `mail_user`'s mailbox with `connector` by the whole browser flow; returns the
/// frontend URL's query.
pub async fn authorize(
    app: &TestApp,
    user: &TestUser,
    connector: &str,
    email: &str,
    extra: Value,
) -> std::collections::HashMap<String, String> {
    let mut input = json!({ "connector": connector, "syncFrom": sync_from(30) });
    input.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let r = start(app, user, input).await;
    let url = r["data"]["startMailboxAuthorization"]["url"].as_str().unwrap_or_else(|| panic!("start: {r}")).to_owned();
    let back = consent(&url, email, true).await;
    let done = callback(&back).await;
    assert!(done.starts_with(FRONTEND), "the browser ends at the frontend: {done}");
    query_of(&done)
}

#[tokio::test]
async fn gmail_connects_through_the_providers_consent_and_syncs_live() {
    let (app, lab) = oauth_gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("gm").await;
    let address = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("eve@customer.test", &address, "Before", "one"), imap_date(1))]).await;

    let r = start(&app, &ada, json!({ "connector": "gmail", "syncFrom": sync_from(30), "loginHint": address })).await;
    let url = r["data"]["startMailboxAuthorization"]["url"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let asked = query_of(&url);
    assert!(url.starts_with(&format!("{}/authorize?", lab.oauth_url())), "{url}");
    assert_eq!(asked["client_id"], OAUTH_CLIENT_ID);
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["access_type"], "offline", "Google issues a refresh token only when asked");
    assert_eq!(asked["login_hint"], address);
    assert_eq!(asked["redirect_uri"], format!("{}/oauth/callback/gmail", app.base));
    let scopes: Vec<&str> = asked["scope"].split(' ').collect();
    for scope in ["https://mail.google.com/", "openid", "email"] {
        assert!(scopes.contains(&scope), "scope {scope} in {scopes:?}");
    }

    let back = consent(&url, &address, true).await;
    let done = callback(&back).await;
    let outcome = query_of(&done);
    assert_eq!(outcome["status"], "connected", "{done}");
    assert_eq!(outcome["connector"], "gmail");
    let id = outcome["mailbox"].clone();

    let m = live_with(&app, &ada, &id, 1).await;
    assert_eq!(m["connector"], "gmail");
    assert_eq!(m["emailAddress"], address);
    // Mail arriving later is synced live over the same XOAUTH2 sign-in.
    lab.append(&mail_user, &password, &[(message("eve@customer.test", &address, "After", "two"), None)]).await;
    live_with(&app, &ada, &id, 2).await;

    // The browser's way back cannot be used twice: the state is spent.
    let again = query_of(&callback(&back).await);
    assert_eq!((again["status"].as_str(), again["error"].as_str()), ("error", "invalid_state"));
    // And the credentials never come back out.
    let r = app.gql(Some(&ada.token), "query($id: ID!) { mailbox(id: $id) { settings } }", json!({ "id": id })).await;
    assert!(!r.to_string().contains("access_token") && !r.to_string().contains("refresh"), "{r}");
}

#[tokio::test]
async fn outlook_asks_for_microsofts_scopes_and_connects_the_same_way() {
    let (app, lab) = oauth_gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, _password) = lab.new_user("ol").await;
    let address = format!("{mail_user}@lab.test");
    let r = start(&app, &ada, json!({ "connector": "outlook", "syncFrom": sync_from(30) })).await;
    let url = r["data"]["startMailboxAuthorization"]["url"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let scopes: Vec<String> = query_of(&url)["scope"].split(' ').map(str::to_owned).collect();
    for scope in
        ["https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access", "openid", "email"]
    {
        assert!(scopes.iter().any(|s| s == scope), "scope {scope} in {scopes:?}");
    }
    let outcome = query_of(&callback(&consent(&url, &address, true).await).await);
    assert_eq!(outcome["status"], "connected", "{outcome:?}");
    live_with(&app, &ada, &outcome["mailbox"], 0).await;
}

#[tokio::test]
async fn declining_at_the_provider_returns_access_denied_and_saves_nothing() {
    let (app, lab) = oauth_gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, _) = lab.new_user("gm").await;
    let r = start(&app, &ada, json!({ "connector": "gmail", "syncFrom": sync_from(30) })).await;
    let url = r["data"]["startMailboxAuthorization"]["url"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let back = consent(&url, &format!("{mail_user}@lab.test"), false).await;
    let outcome = query_of(&callback(&back).await);
    assert_eq!((outcome["status"].as_str(), outcome["error"].as_str()), ("error", "access_denied"));
    let r = app.gql(Some(&ada.token), "{ me { mailboxes { id } } }", json!({})).await;
    assert_eq!(r["data"]["me"]["mailboxes"], json!([]), "{r}");
}

#[tokio::test]
async fn a_forged_state_or_a_replayed_code_is_refused() {
    let (app, lab) = oauth_gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, _) = lab.new_user("gm").await;
    let address = format!("{mail_user}@lab.test");

    // A state the gateway never issued.
    let forged = callback(&format!("{}/oauth/callback/gmail?code=abc&state=not-ours", app.base)).await;
    assert_eq!(query_of(&forged)["error"], "invalid_state");
    // No state at all.
    let bare = callback(&format!("{}/oauth/callback/gmail?code=abc", app.base)).await;
    assert_eq!(query_of(&bare)["error"], "invalid_state");

    // A real code whose state is then swapped for another request's: the second request's
    // state is valid, but the provider refuses the code a second time (PKCE, single use).
    let first = start(&app, &ada, json!({ "connector": "gmail", "syncFrom": sync_from(30) })).await;
    let url = first["data"]["startMailboxAuthorization"]["url"].as_str().expect("url").to_owned();
    let back = consent(&url, &address, true).await;
    let code = query_of(&back)["code"].clone();
    assert_eq!(query_of(&callback(&back).await)["status"], "connected");
    let second = start(&app, &ada, json!({ "connector": "gmail", "syncFrom": sync_from(30) })).await;
    let state = query_of(second["data"]["startMailboxAuthorization"]["url"].as_str().expect("url"))["state"].clone();
    let replay = callback(&format!("{}/oauth/callback/gmail?code={code}&state={state}", app.base)).await;
    assert_eq!(query_of(&replay)["error"], "invalid_grant", "{replay}");
}

#[tokio::test]
async fn starting_an_authorisation_with_bad_input_is_a_typed_error() {
    let (app, _lab) = oauth_gateway().await;
    let ada = app.user("ada@example.com").await;
    let cases = [
        (json!({ "connector": "nope", "syncFrom": sync_from(1) }), "connector"),
        (json!({ "connector": "imap", "syncFrom": sync_from(1) }), "connector"),
        (json!({ "connector": "gmail" }), "syncFrom"),
        (json!({ "connector": "gmail", "syncFrom": "2999-01-01" }), "syncFrom"),
        (json!({ "connector": "gmail", "syncFrom": sync_from(1), "mailboxId": uuid::Uuid::new_v4().to_string() }), "mailboxId"),
        (json!({ "connector": "gmail", "syncFrom": sync_from(1), "loginHint": "not an address" }), "loginHint"),
    ];
    for (input, field) in cases {
        let r = start(&app, &ada, input.clone()).await;
        let (code, at) = error_of(&r);
        assert_eq!((code.as_str(), at.as_deref()), ("BAD_USER_INPUT", Some(field)), "{input} → {r}");
    }
    // Gmail by OAuth takes no password.
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: ConnectMailboxInput!) { connectMailbox(input: $i) { id } }",
            json!({ "i": { "connector": "gmail", "emailAddress": "ada@gmail.example", "password": "pw", "syncFrom": sync_from(1) } }),
        )
        .await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("connector".to_owned())), "{r}");
    // A gateway without Gmail configured says so.
    let bare = TestApp::spawn().await;
    let bob = bare.user("bob@example.com").await;
    let r = start(&bare, &bob, json!({ "connector": "gmail", "syncFrom": sync_from(1) })).await;
    assert_eq!(error_of(&r), ("CONNECTOR_NOT_CONFIGURED".to_owned(), Some("connector".to_owned())), "{r}");
    let r = bare.gql(Some(&bob.token), "{ mailConnectors { kind auth configured oauthProvider } }", json!({})).await;
    let gmail = r["data"]["mailConnectors"].as_array().unwrap().iter().find(|c| c["kind"] == "gmail").cloned().expect("gmail listed");
    assert_eq!(gmail, json!({ "kind": "gmail", "auth": "OAUTH2", "configured": false, "oauthProvider": "Google" }));
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_reauthorising_which_keeps_the_mailboxs_history() {
    let (app, lab) = oauth_gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("gm").await;
    let address = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("eve@customer.test", &address, "Kept", "one"), imap_date(1))]).await;
    let outcome = authorize(&app, &ada, "gmail", &address, json!({})).await;
    let id = outcome["mailbox"].clone();
    live_with(&app, &ada, &id, 1).await;

    // The user revokes the app at the provider; the next sign-in is refused, and so is the
    // refresh: the mailbox asks to be connected again.
    lab.oauth_admin("revoke", json!({ "email": address })).await;
    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { resyncMailbox(id: $id) { id } }", json!({ "id": id })).await;
    assert!(r["errors"].is_null(), "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = mailbox(&app, &ada, &id).await;
        if m["status"] == "NEEDS_REAUTH" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the mailbox did not ask to be re-authorised: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Re-authorising the same mailbox brings it back with what it had; nothing is recorded twice.
    lab.append(&mail_user, &password, &[(message("eve@customer.test", &address, "New", "two"), None)]).await;
    let again = authorize(&app, &ada, "gmail", &address, json!({ "mailboxId": id })).await;
    assert_eq!(again["status"], "connected", "{again:?}");
    assert_eq!(again["mailbox"], id, "the same mailbox");
    live_with(&app, &ada, &id, 2).await;
    let r = app.gql(Some(&ada.token), "{ me { mailboxes { id } } }", json!({})).await;
    assert_eq!(r["data"]["me"]["mailboxes"].as_array().map(Vec::len), Some(1), "{r}");

    // Another account's consent cannot re-authorise it.
    let (other, _) = lab.new_user("gm").await;
    let wrong = authorize(&app, &ada, "gmail", &format!("{other}@lab.test"), json!({ "mailboxId": id })).await;
    assert_eq!(wrong["error"], "wrong_account", "{wrong:?}");
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_transparently_when_sending() {
    let (app, lab) = oauth_gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, _) = lab.new_user("gm").await;
    let (contact, contact_password) = lab.new_user("gc").await;
    let address = format!("{mail_user}@lab.test");
    let outcome = authorize(&app, &ada, "gmail", &address, json!({})).await;
    let id = outcome["mailbox"].clone();
    live_with(&app, &ada, &id, 0).await;
    assert_eq!(lab.oauth_stats(&address).await["refresh_token"], 0);

    // The provider expires every token it gave; the gateway still believes its one is good,
    // so the submission server refuses it, and the gateway refreshes once and sends.
    lab.oauth_admin("expire", json!({ "email": address })).await;
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: SendEmailInput!) { sendEmail(input: $i) { messageId savedToSent events { type } } }",
            json!({ "i": { "mailboxId": id, "to": [format!("{contact}@lab.test")], "subject": "Over XOAUTH2", "html": "<p>hi</p>" } }),
        )
        .await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["sendEmail"]["savedToSent"], true, "Gmail keeps sent mail itself");
    assert_eq!(lab.oauth_stats(&address).await["refresh_token"], 1, "exactly one refresh");
    let inbox = lab.wait_in_folder(&contact, &contact_password, "INBOX", 1).await;
    assert!(inbox[0].contains("Over XOAUTH2"));
}
