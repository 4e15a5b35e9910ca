//! Section 7: the client's address behind a proxy. Forwarding headers are believed only from
//! the proxies the operator names, and then only their right-most untrusted entry, so a client
//! can neither pick the address its session and security log record nor escape its log-in
//! limit by writing headers of its own.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, codes};

const LOG_IN: &str = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
const SESSIONS: &str = "{ me { sessions { current ip } } }";
const EVENTS: &str = "{ me { securityEvents(first: 10) { edges { node { kind ip } } } } }";

/// The test server is reached over loopback, so loopback plays the load balancer.
fn behind_a_proxy(config: &mut concierge::config::Config) {
    config.trusted_proxies = "127.0.0.1/32".parse().expect("CIDR");
}

/// Logs `email` in with the forwarding headers a proxy (or a client pretending) sent.
async fn log_in_with(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> Value {
    let mut request =
        app.client().post(format!("{}/graphql", app.base)).json(&json!({ "query": LOG_IN, "variables": { "e": email, "p": PASSWORD } }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent").json().await.expect("JSON body")
}

/// The address the session of `token` recorded.
async fn session_ip(app: &TestApp, token: &str) -> String {
    let r = app.gql(Some(token), SESSIONS, json!({})).await;
    let sessions = r["data"]["me"]["sessions"].as_array().unwrap_or_else(|| panic!("no sessions: {r}"));
    let current = sessions.iter().find(|s| s["current"] == true).unwrap_or_else(|| panic!("no current session: {r}"));
    current["ip"].as_str().unwrap_or_else(|| panic!("no ip: {r}")).to_owned()
}

/// Signs `email` up, then logs in through `headers`; returns the session's token.
async fn signed_in_through(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> String {
    let r = app.sign_up(email, "Eve", "Example").await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = log_in_with(app, email, headers).await;
    r["data"]["logIn"]["token"].as_str().unwrap_or_else(|| panic!("log-in failed: {r}")).to_owned()
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_for_header_is_ignored() {
    let app = TestApp::spawn().await;

    let token = signed_in_through(&app, "eve@example.com", &[("x-forwarded-for", "203.0.113.7"), ("forwarded", "for=203.0.113.7")]).await;

    assert_eq!(session_ip(&app, &token).await, "127.0.0.1");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_session_and_security_log_record_the_right_most_untrusted_address() {
    let app = TestApp::spawn_with(behind_a_proxy).await;

    let token = signed_in_through(&app, "ada@example.com", &[("x-forwarded-for", "198.51.100.9, 203.0.113.7")]).await;

    assert_eq!(session_ip(&app, &token).await, "203.0.113.7");
    let r = app.gql(Some(&token), EVENTS, json!({})).await;
    let sign_in = &r["data"]["me"]["securityEvents"]["edges"][0]["node"];
    assert_eq!((sign_in["kind"].as_str(), sign_in["ip"].as_str()), (Some("SIGN_IN_SUCCEEDED"), Some("203.0.113.7")), "{r}");
}

#[tokio::test]
async fn a_client_cannot_choose_its_address_by_writing_entries_left_of_the_proxys() {
    let app = TestApp::spawn_with(behind_a_proxy).await;

    // The client sent "X-Forwarded-For: 10.0.0.1, 203.0.113.7"; the proxy appended the
    // address it really saw.
    let token = signed_in_through(&app, "eve@example.com", &[("x-forwarded-for", "10.0.0.1, 203.0.113.7, 198.51.100.20")]).await;

    assert_eq!(session_ip(&app, &token).await, "198.51.100.20");
}

#[tokio::test]
async fn the_forwarded_header_is_honoured_too_with_quoted_ipv6_and_wins_over_x_forwarded_for() {
    let app = TestApp::spawn_with(behind_a_proxy).await;

    let token = signed_in_through(
        &app,
        "ada@example.com",
        &[("forwarded", "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\""), ("x-forwarded-for", "198.51.100.9")],
    )
    .await;

    assert_eq!(session_ip(&app, &token).await, "2001:db8:cafe::17");
}

#[tokio::test]
async fn a_malformed_forwarding_header_falls_back_to_the_proxy_itself() {
    let app = TestApp::spawn_with(behind_a_proxy).await;

    let token = signed_in_through(&app, "eve@example.com", &[("x-forwarded-for", "203.0.113.7, <script>")]).await;

    assert_eq!(session_ip(&app, &token).await, "127.0.0.1");
}

#[tokio::test]
async fn two_clients_behind_one_proxy_have_separate_log_in_limits() {
    let app = TestApp::spawn_with(|c| {
        behind_a_proxy(c);
        c.login_attempts_per_address = 3;
    })
    .await;
    let mallory = [("x-forwarded-for", "203.0.113.66")];
    for n in 0..3 {
        log_in_with(&app, &format!("guess{n}@example.com"), &mallory).await;
    }
    assert_eq!(codes(&log_in_with(&app, "guess3@example.com", &mallory).await), ["RATE_LIMITED"]);
    // Nor does a header of Mallory's own, left of the proxy's entry, give a fresh bucket.
    let spoofed = [("x-forwarded-for", "192.0.2.1, 203.0.113.66")];
    assert_eq!(codes(&log_in_with(&app, "guess4@example.com", &spoofed).await), ["RATE_LIMITED"]);

    let r = log_in_with(&app, "nobody@example.com", &[("x-forwarded-for", "203.0.113.7")]).await;

    assert_ne!(codes(&r), ["RATE_LIMITED"], "another client behind the same proxy is not throttled: {r}");
}

#[tokio::test]
async fn without_trusted_proxies_a_made_up_address_does_not_escape_the_log_in_limit() {
    let app = TestApp::spawn_with(|c| c.login_attempts_per_address = 3).await;
    for n in 0..3 {
        log_in_with(&app, &format!("guess{n}@example.com"), &[("x-forwarded-for", &format!("203.0.113.{n}"))]).await;
    }

    let r = log_in_with(&app, "guess3@example.com", &[("x-forwarded-for", "203.0.113.99")]).await;

    assert_eq!(codes(&r), ["RATE_LIMITED"]);
}
