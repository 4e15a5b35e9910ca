//! Live notifications as frontends receive them: the graphql-ws npm client
//! (tests/js/subscribe.mjs) subscribed with a token.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::helpers::TestApp;

/// One `node subscribe.mjs` process and the JSON lines it prints.
struct NodeSubscriber {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl NodeSubscriber {
    async fn start(app: &TestApp, token: &str) -> NodeSubscriber {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js");
        assert!(dir.join("node_modules/graphql-ws").exists(), "tests/js/node_modules is missing: run scripts/test (it runs npm ci)");
        let mut child = Command::new("node")
            .arg(dir.join("subscribe.mjs"))
            .arg(format!("ws://127.0.0.1:{}/graphql", app.port))
            .arg(token)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            // graphql-ws logs close events to the console; the lines on stdout say what matters.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut me = NodeSubscriber { _child: child, lines };
        assert_eq!(me.next(Duration::from_secs(10)).await, Some(json!({ "connected": true })));
        // The subscribe message follows the ack; give the server a moment to register it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        me
    }

    /// The next line within `within`, or None.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        match tokio::time::timeout(within, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => Some(serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))),
            _ => None,
        }
    }
}

#[tokio::test]
async fn the_graphql_ws_client_gets_its_users_notifications_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut ada_client = NodeSubscriber::start(&app, &ada.token).await;
    let mut bob_client = NodeSubscriber::start(&app, &bob.token).await;

    let r = app
        .gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"ci\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    assert!(r["errors"].is_null(), "{r}");

    let got = ada_client.next(Duration::from_secs(10)).await.expect("ada's notification");
    let n = &got["next"]["notifications"];
    assert_eq!(
        (n["event"].clone(), n["title"].clone(), n["read"].clone()),
        (json!("SECURITY_EVENT"), json!("A personal access token was created"), json!(false)),
        "{got}"
    );
    assert_eq!(bob_client.next(Duration::from_millis(700)).await, None, "bob's client hears nothing");
}

#[tokio::test]
async fn revoking_the_token_a_client_subscribed_with_closes_its_subscription() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let created = app
        .gql(
            Some(&ada.token),
            "mutation { createAccessToken(input: {name: \"dashboard\", scopes: [\"notifications:read\"]}) { token accessToken { id } } }",
            json!({}),
        )
        .await;
    let pat = created["data"]["createAccessToken"]["token"].as_str().expect("a token").to_owned();
    let id = created["data"]["createAccessToken"]["accessToken"]["id"].as_str().expect("an id").to_owned();
    let mut client = NodeSubscriber::start(&app, &pat).await;

    let r = app.gql(Some(&ada.token), "mutation($id: ID!) { revokeAccessToken(id: $id) { id } }", json!({ "id": id })).await;
    assert!(r["errors"].is_null(), "{r}");

    // The revocation raises a notification too; the close follows it at the latest.
    let mut closed = None;
    while let Some(line) = client.next(Duration::from_secs(5)).await {
        if line.get("closed").is_some() {
            closed = Some(line);
            break;
        }
    }
    let closed = closed.expect("the subscription was closed");
    assert_eq!(closed["closed"]["code"], 4401, "{closed}");
}
