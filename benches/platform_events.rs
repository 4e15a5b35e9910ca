//! Platform events in: a service account publishes 10,000 `task.assigned` events for 1,000
//! users of one workspace, each user with an open `notifications` subscription. Measures the
//! publishing throughput (events accepted per second, `publishEvents` batches of 100 with a
//! few requests in flight) and the latency from `publishEvents` returning to the recipient's
//! subscription receiving the event (p50, p99, max). An event that reaches its subscriber
//! before its batch's answer reaches the publisher counts as 0.
//!
//! The gateway is the release binary as a child process (SQLite in a temp dir); this process
//! is the publisher and every subscriber. `BENCH_USERS` (default 1,000), `BENCH_EVENTS`
//! (10,000) and `BENCH_IN_FLIGHT` (4) change the run. Run with `scripts/bench` or
//! `cargo bench --bench platform_events`; figures go into BENCHMARKS.md. Exits non-zero when
//! an event is lost.

#[path = "support/gateway.rs"]
mod gateway;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};

use gateway::Gateway;

const PASSWORD: &str = "Correct-Horse-9!battery";
const BATCH: usize = 100;
/// Sign-ups at once (each is an argon2 hash on the gateway).
const SIGNING_UP_AT_ONCE: usize = 4;
const DELIVERY_DEADLINE: Duration = Duration::from_secs(120);

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    ws_url: String,
}

impl Client {
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> anyhow::Result<Value> {
        gateway::gql(&self.http, &self.url, token, query, variables).await
    }

    /// Signs up and logs in; returns (user id, session token).
    async fn user(&self, email: &str) -> anyhow::Result<(String, String)> {
        gateway::sign_up(&self.http, &self.url, email, PASSWORD).await
    }

    /// A subscriber: authenticated, subscribed to `notifications`, acknowledged.
    async fn subscriber(&self, token: &str) -> anyhow::Result<Ws> {
        let mut request = self.ws_url.as_str().into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await.context("WebSocket connect")?;
        let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
        ws.send(Message::text(init.to_string())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("connection_ack") => break,
                Some(Ok(Message::Text(t))) if t.contains("\"ping\"") || t.contains("\"pong\"") => continue,
                Some(Ok(Message::Text(t))) => bail!("expected connection_ack, got {t}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before connection_ack"),
            }
        }
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { notifications { title } }" } });
        ws.send(Message::text(subscribe.to_string())).await?;
        Ok(ws)
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// When each event's batch was answered and when its subscriber got it.
struct Times {
    /// When its batch's request was sent.
    sent: Vec<Option<Instant>>,
    returned: Vec<Option<Instant>>,
    arrived: Vec<Option<Instant>>,
}

/// Reads one subscriber's stream, noting the arrival of each `bench <n>` notification.
async fn listen(mut ws: Ws, times: Arc<Mutex<Times>>) {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        let now = Instant::now();
        let Ok(m) = serde_json::from_str::<Value>(&text) else { continue };
        let title = m["payload"]["data"]["notifications"]["title"].as_str().unwrap_or_default();
        if let Some(n) = title.strip_prefix("bench ").and_then(|n| n.parse::<usize>().ok()) {
            let mut t = times.lock().expect("times");
            if let Some(slot) = t.arrived.get_mut(n) {
                slot.get_or_insert(now);
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn run() -> anyhow::Result<bool> {
    let users = setting("BENCH_USERS", 1000).max(1);
    let events = setting("BENCH_EVENTS", 10_000).max(1);
    let in_flight = setting("BENCH_IN_FLIGHT", 4).max(1);
    let gateway = Gateway::start_with(&[
        ("CONCIERGE_LOGIN_ATTEMPTS_PER_ADDRESS", "1000000"),
        // One owner invites every member.
        ("CONCIERGE_INVITATIONS_PER_INVITER", "1000000"),
        ("CONCIERGE_PUBLISH_BATCH_MAX", "100"),
        ("CONCIERGE_DB_MAX_CONNECTIONS", "8"),
    ])?;
    let client = Client {
        http: reqwest::Client::builder().no_proxy().pool_max_idle_per_host(64).build()?,
        url: format!("http://127.0.0.1:{}/graphql", gateway.port),
        ws_url: format!("ws://127.0.0.1:{}/graphql", gateway.port),
    };

    // The workspace, its members and the service account.
    let (_, owner) = client.user("owner@bench.example").await?;
    let me = client.gql(Some(&owner), "{ me { memberships { workspace { id } } } }", json!({})).await?;
    let workspace = me["me"]["memberships"][0]["workspace"]["id"].as_str().context("no workspace")?.to_owned();
    let started = Instant::now();
    let members: Vec<(String, String)> = stream::iter(0..users)
        .map(|i| {
            let client = client.clone();
            let (owner, workspace) = (owner.clone(), workspace.clone());
            async move {
                let email = format!("user{i}@bench.example");
                let (id, token) = client.user(&email).await?;
                // Joining is an invitation the member accepts.
                let invite = "mutation($i: InviteWorkspaceMemberInput!) { inviteWorkspaceMember(input: $i) { id } }";
                let input = json!({ "i": { "workspaceId": workspace, "email": email, "role": "MEMBER" } });
                let invitation = client.gql(Some(&owner), invite, input).await?;
                let invitation = invitation["inviteWorkspaceMember"]["id"].as_str().context("no invitation")?.to_owned();
                let accept = "mutation($id: ID!) { acceptInvitation(id: $id) { role } }";
                client.gql(Some(&token), accept, json!({ "id": invitation })).await?;
                anyhow::Ok((id, token))
            }
        })
        .buffered(SIGNING_UP_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    eprintln!("{users} members signed up in {:.1} s", started.elapsed().as_secs_f64());
    let create = "mutation($w: ID!) { createServiceAccount(workspaceId: $w, name: \"bench\", scopes: [\"events:publish\"]) { id } }";
    let account = client.gql(Some(&owner), create, json!({ "w": workspace })).await?;
    let account = account["createServiceAccount"]["id"].as_str().context("no service account")?.to_owned();
    let token =
        "mutation($a: ID!) { createServiceAccountToken(serviceAccountId: $a, name: \"bench\", scopes: [\"events:publish\"]) { token } }";
    let token = client.gql(Some(&owner), token, json!({ "a": account })).await?;
    let service_token = token["createServiceAccountToken"]["token"].as_str().context("no token")?.to_owned();

    // One subscriber per member.
    let times = Arc::new(Mutex::new(Times { sent: vec![None; events], returned: vec![None; events], arrived: vec![None; events] }));
    let sockets: Vec<Ws> = stream::iter(members.iter().map(|(_, token)| client.subscriber(token)))
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    for ws in sockets {
        tokio::spawn(listen(ws, Arc::clone(&times)));
    }
    // Let every subscription reach the gateway's fan-out before the first event.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Publish: batches of 100, a few requests in flight; event n goes to member n % users.
    let publish = "mutation($e: [PlatformEventInput!]!) { publishEvents(events: $e) { results { index status } } }";
    let now = chrono::Utc::now().to_rfc3339();
    let batches: Vec<Vec<usize>> = (0..events).collect::<Vec<_>>().chunks(BATCH).map(<[usize]>::to_vec).collect();
    let publishing = Instant::now();
    let outcomes: Vec<anyhow::Result<()>> = stream::iter(batches)
        .map(|batch| {
            let (client, members, times, service_token, now) =
                (client.clone(), &members, Arc::clone(&times), service_token.clone(), now.clone());
            async move {
                let input: Vec<Value> = batch
                    .iter()
                    .map(|&n| {
                        json!({
                            "kind": "task.assigned",
                            "recipients": { "userIds": [members[n % members.len()].0] },
                            "subject": { "type": "task", "id": format!("t{n}"), "title": format!("bench {n}") },
                            "occurredAt": now,
                            "data": { "priority": "normal" },
                            "idempotencyKey": format!("bench-{n}"),
                        })
                    })
                    .collect();
                let sent = Instant::now();
                let data = client.gql(Some(&service_token), publish, json!({ "e": input })).await?;
                let returned = Instant::now();
                let results = data["publishEvents"]["results"].as_array().context("no results")?;
                if let Some(bad) = results.iter().find(|r| r["status"] != "ACCEPTED") {
                    bail!("an event was not accepted: {bad}");
                }
                let mut t = times.lock().expect("times");
                for &n in &batch {
                    t.sent[n] = Some(sent);
                    t.returned[n] = Some(returned);
                }
                Ok(())
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let published_in = publishing.elapsed();
    for outcome in outcomes {
        outcome?;
    }

    // Wait for every event to reach its subscriber.
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    loop {
        let missing = times.lock().expect("times").arrived.iter().filter(|a| a.is_none()).count();
        if missing == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = times.lock().expect("times");
    let mut latencies = Vec::with_capacity(events);
    let mut from_request = Vec::with_capacity(events);
    let mut early = 0;
    let mut last_arrival = publishing;
    for ((sent, returned), arrived) in t.sent.iter().zip(&t.returned).zip(&t.arrived) {
        if let (Some(s), Some(r), Some(a)) = (sent, returned, arrived) {
            if a < r {
                early += 1;
            }
            latencies.push(a.saturating_duration_since(*r));
            from_request.push(a.saturating_duration_since(*s));
            last_arrival = last_arrival.max(*a);
        }
    }
    latencies.sort();
    from_request.sort();
    let lost = events - latencies.len();
    println!(
        "platform events on {}: {events} events for {users} users, batches of {BATCH}, {in_flight} requests in flight",
        gateway::store_name()
    );
    println!(
        "  publishEvents throughput: {:.0} events/s ({events} accepted in {:.2} s)",
        events as f64 / published_in.as_secs_f64(),
        published_in.as_secs_f64()
    );
    println!(
        "  end to end: the last event reached its subscriber {:.2} s after the first publish ({:.0} events/s)",
        (last_arrival - publishing).as_secs_f64(),
        latencies.len() as f64 / (last_arrival - publishing).as_secs_f64().max(1e-9)
    );
    println!(
        "  publishEvents returned → subscription received: p50 {}, p99 {}, max {} ({early} arrived before their batch's answer)",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "  publishEvents sent → subscription received (a batch of {BATCH}): p50 {}, p99 {}, max {}",
        ms(percentile(&from_request, 50.0)),
        ms(percentile(&from_request, 99.0)),
        ms(from_request.last().copied().unwrap_or_default())
    );
    println!("  lost: {lost}");
    Ok(lost == 0)
}

fn main() -> ExitCode {
    gateway::run_bench("platform_events", run())
}
