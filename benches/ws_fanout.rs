//! Subscription fan-out: many idle `notifications` subscribers of one user on one gateway.
//! Measures (a) the gateway's memory per idle subscriber (growth of its resident set over
//! the subscribers, goal at most 10 KiB) and (b) how long one event takes to reach all of
//! them (from just before the triggering request to the last subscriber's `next`, goal at
//! most 1 s), for three events in a row.
//!
//! The gateway is the release binary, run as a child process (SQLite in a temp dir), so its
//! RSS is its own; this process is only the client. Every subscriber uses the same session,
//! so each event (a personal access token created: a security event, which raises an in-app
//! notification) goes to all of them. `BENCH_SUBSCRIBERS` sets how many (default 10,000).
//! Each subscriber is a socket on both sides: raise the open-file limit first
//! (`ulimit -n 20000`; `scripts/bench` does). Run with `scripts/bench` or
//! `cargo bench --bench ws_fanout`; figures go into BENCHMARKS.md. Exits non-zero when a
//! subscriber misses an event.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _, stream};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};

#[path = "support/gateway.rs"]
mod gateway;

use gateway::{Gateway, rss_kib};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PASSWORD: &str = "Correct-Horse-9!battery";
const EVENTS: usize = 3;
/// Connections being opened at once.
const OPENING_AT_ONCE: usize = 200;
/// Idle time after the last subscription before RSS is read, so the gateway has settled.
const SETTLE: Duration = Duration::from_secs(2);
/// How long one event may take to reach everyone before it counts as missed. Far above the
/// goal, so a slow fan-out is measured rather than cut short.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);
/// Sockets and files a process needs besides its subscribers.
const SPARE_FILES: u64 = 256;
const SUBSCRIPTION: &str = "subscription { notifications { id title } }";
const TITLE: &str = "A personal access token was created";

fn subscribers() -> usize {
    std::env::var("BENCH_SUBSCRIBERS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000)
}

/// The soft open-file limit this process (and the gateway, which inherits it) runs with.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

struct Client {
    http: reqwest::Client,
    url: String,
    /// Where subscribers connect: each replica's, in turn.
    ws_urls: Vec<String>,
    session: String,
}

impl Client {
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> anyhow::Result<Value> {
        gateway::gql(&self.http, &self.url, token, query, variables).await
    }

    /// Signs up one user and logs in once; every subscriber shares the session.
    /// Requests go to the first of `ports`; subscribers connect to each in turn.
    async fn sign_in(ports: &[u16]) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let mut client = Client {
            http,
            url: format!("http://127.0.0.1:{}/graphql", ports[0]),
            ws_urls: ports.iter().map(|port| format!("ws://127.0.0.1:{port}/graphql")).collect(),
            session: String::new(),
        };
        let email = "fanout@example.com";
        let sign_up = "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }";
        let person = json!({ "email": email, "password": PASSWORD, "firstName": "Fan", "lastName": "Out" });
        client.gql(None, sign_up, json!({ "i": person })).await?;
        let log_in = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
        let data = client.gql(None, log_in, json!({ "e": email, "p": PASSWORD })).await?;
        client.session = data["logIn"]["token"].as_str().context("logIn gave no token")?.to_owned();
        Ok(client)
    }

    /// Creates a personal access token: the event every subscriber should hear about.
    async fn trigger(&self, n: usize) -> anyhow::Result<()> {
        let create = "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { token } }";
        let data =
            self.gql(Some(&self.session), create, json!({ "i": { "name": format!("fanout {n}"), "scopes": ["profile:read"] } })).await?;
        data["createAccessToken"]["token"].as_str().context("createAccessToken gave no token")?;
        Ok(())
    }

    /// Read-path statements the gateway has sent to its database so far, from `/metrics`.
    async fn db_statements(&self) -> Option<u64> {
        let metrics_url = self.url.replace("/graphql", "/metrics");
        let body = self.http.get(metrics_url).send().await.ok()?.text().await.ok()?;
        body.lines().find_map(|l| l.strip_prefix("concierge_db_statements_total ")).and_then(|v| v.trim().parse().ok())
    }

    /// Opens one connection, authenticates it and subscribes; the server sends nothing more
    /// until an event.
    async fn subscriber(&self) -> anyhow::Result<Ws> {
        self.connection(0, true).await
    }

    /// Opens the `i`th connection (to a replica in turn) and authenticates it; subscribes
    /// when `subscribe`.
    async fn connection(&self, i: usize, subscribe: bool) -> anyhow::Result<Ws> {
        let mut request = self.ws_urls[i % self.ws_urls.len()].as_str().into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        // Small buffers, as the gateway uses: 10,000 clients at tungstenite's 128 KiB default
        // would need over a gigabyte here.
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await.context("WebSocket connect")?;
        let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", self.session) } });
        ws.send(Message::text(init.to_string())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let m: Value = serde_json::from_str(&t)?;
                    match m["type"].as_str() {
                        Some("connection_ack") => break,
                        Some("ping" | "pong") => continue,
                        _ => bail!("expected connection_ack, got {t}"),
                    }
                }
                Some(Ok(Message::Close(frame))) => bail!("closed before connection_ack: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("closed before connection_ack"),
            }
        }
        if subscribe {
            let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION } });
            ws.send(Message::text(subscribe.to_string())).await?;
        }
        Ok(ws)
    }
}

/// What the subscribers saw of one event: how many got it, and when the first and the last
/// did (nanoseconds after `Tally::base`).
struct Round {
    got: AtomicUsize,
    first: AtomicU64,
    last: AtomicU64,
    everyone: Notify,
}

/// Shared by every subscriber task: which event is in flight and what arrived of each.
struct Tally {
    base: Instant,
    subscribers: usize,
    current: AtomicUsize,
    rounds: Vec<Round>,
    unexpected: AtomicUsize,
    first_unexpected: Mutex<Option<String>>,
}

impl Tally {
    fn new(subscribers: usize) -> Tally {
        let round =
            || Round { got: AtomicUsize::new(0), first: AtomicU64::new(u64::MAX), last: AtomicU64::new(0), everyone: Notify::new() };
        Tally {
            base: Instant::now(),
            subscribers,
            current: AtomicUsize::new(0),
            rounds: (0..EVENTS).map(|_| round()).collect(),
            unexpected: AtomicUsize::new(0),
            first_unexpected: Mutex::new(None),
        }
    }

    fn since_base(&self, at: Instant) -> u64 {
        at.duration_since(self.base).as_nanos() as u64
    }

    fn arrived(&self, at: Instant) {
        let round = &self.rounds[self.current.load(Ordering::Acquire)];
        let at = self.since_base(at);
        round.first.fetch_min(at, Ordering::Relaxed);
        round.last.fetch_max(at, Ordering::Relaxed);
        if round.got.fetch_add(1, Ordering::AcqRel) + 1 == self.subscribers {
            round.everyone.notify_one();
        }
    }

    fn unexpected(&self, what: String) {
        if self.unexpected.fetch_add(1, Ordering::Relaxed) == 0 {
            *self.first_unexpected.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
        }
    }
}

/// Whether a message is the `next` of a notification this bench triggers.
fn is_our_event(m: &Value) -> bool {
    m["type"] == "next" && m["payload"]["errors"].is_null() && m["payload"]["data"]["notifications"]["title"] == TITLE
}

/// One subscriber, idle until events arrive; each one counts towards the event in flight.
async fn listen(mut ws: Ws, tally: Arc<Tally>) {
    while let Some(message) = ws.next().await {
        let at = Instant::now();
        match message {
            Ok(Message::Text(t)) => match serde_json::from_str::<Value>(&t) {
                Ok(m) if is_our_event(&m) => tally.arrived(at),
                Ok(m) if m["type"] == "ping" || m["type"] == "pong" => {}
                _ => tally.unexpected(t.to_string()),
            },
            Ok(Message::Close(frame)) => return tally.unexpected(format!("closed by the gateway: {frame:?}")),
            Ok(_) => {}
            Err(e) => return tally.unexpected(format!("connection failed: {e}")),
        }
    }
}

/// The warm-up: a few requests, and one subscriber that receives one event and leaves, so
/// what RSS grows by afterwards is the subscribers, not first-use setup. It also checks the
/// whole path once before thousands of connections depend on it.
async fn warm_up(client: &Client) -> anyhow::Result<()> {
    for _ in 0..5 {
        client.gql(Some(&client.session), "{ me { id } }", json!({})).await?;
    }
    let mut ws = client.subscriber().await?;
    // The subscription is live once the server has processed `subscribe`; give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.trigger(0).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next()).await.context("warm-up: no event within 10 s")?;
        match message {
            Some(Ok(Message::Text(t))) if is_our_event(&serde_json::from_str(&t)?) => break,
            Some(Ok(Message::Text(t))) => bail!("warm-up: unexpected message {t}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("warm-up: connection closed"),
        }
    }
    ws.close(None).await?;
    Ok(())
}

struct Delivery {
    got: usize,
    first: Option<Duration>,
    last: Option<Duration>,
    response: Duration,
    db_statements: Option<u64>,
}

/// Triggers event `n` and waits until every subscriber has it (or the deadline passes).
async fn deliver(client: &Client, tally: &Tally, n: usize) -> anyhow::Result<Delivery> {
    tally.current.store(n, Ordering::Release);
    let round = &tally.rounds[n];
    let statements_before = client.db_statements().await;
    let start = Instant::now();
    client.trigger(n + 1).await?;
    let response = start.elapsed();
    let everyone = async {
        while round.got.load(Ordering::Acquire) < tally.subscribers {
            round.everyone.notified().await;
        }
    };
    let _ = tokio::time::timeout(DELIVERY_DEADLINE.saturating_sub(start.elapsed()), everyone).await;
    let got = round.got.load(Ordering::Acquire);
    let after_start = |nanos: u64| (got > 0).then(|| Duration::from_nanos(nanos.saturating_sub(tally.since_base(start))));
    let statements_after = client.db_statements().await;
    Ok(Delivery {
        got,
        first: after_start(round.first.load(Ordering::Relaxed)),
        last: after_start(round.last.load(Ordering::Relaxed)),
        response,
        db_statements: statements_before.zip(statements_after).map(|(b, a)| a - b),
    })
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "–".into())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "NOT MET" }
}

async fn run(n: usize) -> anyhow::Result<bool> {
    let files = n as u64 + SPARE_FILES;
    if let Some(limit) = open_file_limit()
        && limit < files
    {
        bail!("the open-file limit is {limit} and {n} subscribers need {files}: raise it (`ulimit -n {files}`) or lower BENCH_SUBSCRIBERS");
    }
    // BENCH_REPLICAS=3 (with BENCH_DB=postgres): the subscribers spread over three gateways
    // on one database; the event is raised on the first and reaches the others through it.
    let replicas = std::env::var("BENCH_REPLICAS").ok().and_then(|s| s.parse().ok()).unwrap_or(1usize).max(1);
    let gateways = Gateway::start_replicas(replicas)?;
    let ports: Vec<u16> = gateways.iter().map(|g| g.port).collect();
    let client = Client::sign_in(&ports).await?;
    warm_up(&client).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = || -> anyhow::Result<u64> { gateways.iter().map(Gateway::rss_kib).sum() };
    let rss_before = rss()?;
    let own_rss_before = rss_kib("/proc/self/status")?;

    let tally = Arc::new(Tally::new(n));
    let opening = Instant::now();
    // BENCH_CONNECT_ONLY=1: authenticated connections without a subscription, to tell what
    // a connection costs from what its subscription adds.
    let connect_only = std::env::var_os("BENCH_CONNECT_ONLY").is_some();
    let opened: Vec<anyhow::Result<Ws>> =
        stream::iter(0..n).map(|i| client.connection(i, !connect_only)).buffer_unordered(OPENING_AT_ONCE).collect().await;
    let mut listeners = Vec::with_capacity(n);
    for ws in opened {
        listeners.push(tokio::spawn(listen(ws.context("opening a subscriber")?, tally.clone())));
    }
    let open_secs = opening.elapsed().as_secs_f64();
    eprintln!("{n} subscribers connected in {open_secs:.1} s ({:.0}/s); settling for {} s", n as f64 / open_secs, SETTLE.as_secs());
    tokio::time::sleep(SETTLE).await;
    let rss_idle = rss()?;
    let own_rss_idle = rss_kib("/proc/self/status")?;
    if connect_only {
        let per = rss_idle.saturating_sub(rss_before) as f64 / n as f64;
        println!("| per idle connection without a subscription ({n}) | {per:.1} KiB |");
        return Ok(true);
    }

    let mut deliveries = Vec::with_capacity(EVENTS);
    for event in 0..EVENTS {
        deliveries.push(deliver(&client, &tally, event).await?);
    }
    let rss_after = rss()?;
    for l in &listeners {
        l.abort();
    }

    let per = |rss: u64| rss.saturating_sub(rss_before) as f64 / n as f64;
    let per_idle = per(rss_idle);
    println!("ws_fanout on {}, {replicas} replica(s)\n", gateway::store_name());
    println!("| gateway memory (all replicas), {n} idle subscribers | value | goal | |");
    println!("| --- | ---: | ---: | --- |");
    println!("| RSS before subscribing (after warm-up) | {} | | |", mib(rss_before));
    println!("| RSS with {n} idle subscribers | {} | | |", mib(rss_idle));
    println!("| per idle subscriber | {per_idle:.1} KiB | ≤ 10 KiB | {} |", verdict(per_idle <= 10.0));
    println!("| per subscriber after {EVENTS} events | {:.1} KiB | | |", per(rss_after));
    println!();
    println!("| event | subscribers reached | first `next` | last `next` | trigger response | DB reads during |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, d) in deliveries.iter().enumerate() {
        let reads = d.db_statements.map(|s| s.to_string()).unwrap_or_else(|| "–".into());
        println!("| {} | {}/{n} | {} | {} | {} | {reads} |", i + 1, d.got, ms(d.first), ms(d.last), ms(Some(d.response)));
    }
    let everyone = deliveries.iter().all(|d| d.got == n);
    let worst = deliveries.iter().filter_map(|d| d.last).max();
    println!(
        "| worst | | | {} | | |\n\nslowest event to reach all {n} subscribers: {} (goal: at most 1 s) {}",
        ms(worst),
        ms(worst),
        verdict(everyone && worst.is_some_and(|w| w <= Duration::from_secs(1)))
    );
    println!(
        "\nClient side (this process): {:.1} KiB per subscriber; opening took {open_secs:.1} s.",
        own_rss_idle.saturating_sub(own_rss_before) as f64 / n as f64
    );
    println!("Rerun: `scripts/bench`, or `ulimit -n 20000 && BENCH_SUBSCRIBERS={n} cargo bench --bench ws_fanout`.");

    let unexpected = tally.unexpected.load(Ordering::Relaxed);
    if unexpected > 0 {
        let first = tally.first_unexpected.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
        eprintln!("{unexpected} unexpected messages or closed connections; the first: {first}");
    }
    if !everyone {
        eprintln!("some subscribers missed an event (deadline {} s)", DELIVERY_DEADLINE.as_secs());
    }
    Ok(everyone && unexpected == 0)
}

fn main() -> ExitCode {
    let n = subscribers();
    gateway::run_bench("ws_fanout", run(n))
}
