//! Mail sync against a real, local Dovecot (a private lab started by `scripts/mail-lab`):
//!
//! (a) **Initial sync rate.** A mailbox of `BENCH_MESSAGES` messages (default 10,000; about
//!     2.5 KB each, multipart/alternative text + HTML, from 200 senders) is synced by a fresh
//!     gateway into `message.receive` events (connect → the mailbox's recorded count reaches
//!     the total), side by side with a bare async-imap `UID FETCH 1:* BODY.PEEK[]` of the same
//!     mailbox over the same transport (plain IMAP on loopback). Rounds alternate; goal: the
//!     gateway at least 0.8× the bare fetch rate.
//! (b) **Live latency.** With the mailbox LIVE, a WebSocket client subscribes to
//!     `activityEvents`; `BENCH_APPENDS` times (default 40) a message is APPENDed on another
//!     connection and the time from just before the APPEND to the subscriber's `next` is
//!     taken. A bare IMAP IDLE client on the same folder shows how much of that is Dovecot's
//!     own notification delay. Goal: p50 ≤ 50 ms, p99 ≤ 200 ms.
//!
//! The gateway runs in this process (release build, SQLite in a temp dir; `BENCH_DB=postgres`
//! uses a fresh schema on `CONCIERGE_TEST_PG_URL`). `BENCH_ROUNDS` (default 3) sets the rounds
//! of (a); `BENCH_LOG=warn,concierge::mailboxes=debug` logs each batch's fetch, parse and store
//! times. Needs root (the lab). Run with `scripts/bench` or `cargo bench --bench mail_sync`;
//! figures go into BENCHMARKS.md.
#![recursion_limit = "256"] // the schema's merged Mutation object (see src/lib.rs)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::Message;

const PASSWORD: &str = "Correct-Horse-9!battery";
const MAIL_PASSWORD: &str = "bench-pw";
fn rounds() -> usize {
    env_usize("BENCH_ROUNDS", 3)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

struct Lab {
    dir: PathBuf,
    imap: u16,
    /// Submission over implicit TLS, under the lab's own certificate (`cert`).
    submissions: u16,
    cert: PathBuf,
}

impl Lab {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/mail-lab")
    }

    fn start() -> anyhow::Result<Lab> {
        let dir = tempfile::Builder::new().prefix("ml-").tempdir_in("/tmp")?.keep();
        let out = std::process::Command::new(Self::script()).arg("start").arg(&dir).output()?;
        if !out.status.success() {
            bail!("mail lab did not start: {}", String::from_utf8_lossy(&out.stderr));
        }
        let lab: Value = serde_json::from_slice(&out.stdout)?;
        let imap = lab["imap"].as_u64().context("imap port")? as u16;
        // The gateway checks the SMTP server when a mailbox is connected: the lab's submission
        // port, signed in with the mailbox's password.
        let submissions = lab["submissions"].as_u64().context("submissions port")? as u16;
        let cert = PathBuf::from(lab["cert"].as_str().context("lab certificate")?);
        let status = std::process::Command::new(Self::script()).arg("adduser").arg(&dir).args(["bench", MAIL_PASSWORD]).status()?;
        if !status.success() {
            bail!("adduser failed");
        }
        Ok(Lab { dir, imap, submissions, cert })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script()).arg("stop").arg(&self.dir).output();
    }
}

/// A typical customer email: about 2.5 KB, text and HTML alternatives.
fn message(i: usize) -> Vec<u8> {
    let sender = i % 200;
    let paragraph = "Thanks for getting back to me so quickly. I went through the proposal with the team and we have a few \
                     questions about the delivery schedule, the support hours and the price of the extra seats. ";
    let text = paragraph.repeat(4);
    let html = format!("<html><body><p>{}</p><p>Best regards,<br>Customer {sender}</p></body></html>", paragraph.repeat(4));
    format!(
        "From: Customer {sender} <customer{sender}@example.org>\r\nTo: Bench <bench@lab.test>\r\nSubject: Re: Proposal #{i}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench-{i}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"b{i}\"\r\n\r\n--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --b{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b{i}--\r\n"
    )
    .into_bytes()
}

/// A raw IMAP line-level session, for what async-imap cannot batch: MULTIAPPEND.
async fn raw_login(port: u16) -> anyhow::Result<(BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf)> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    w.write_all(format!("l LOGIN bench {MAIL_PASSWORD}\r\n").as_bytes()).await?;
    expect_tagged(&mut r, "l").await?;
    Ok((r, w))
}

async fn expect_tagged(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, tag: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            bail!("connection closed");
        }
        if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
            return if rest.starts_with("OK") { Ok(()) } else { bail!("{tag}: {line}") };
        }
    }
}

/// Seeds the INBOX with MULTIAPPEND and LITERAL+, 200 messages per command.
async fn seed(port: u16, n: usize) -> anyhow::Result<()> {
    let (mut r, mut w) = raw_login(port).await?;
    for (c, chunk) in (0..n).collect::<Vec<_>>().chunks(200).enumerate() {
        let mut cmd = format!("a{c} APPEND INBOX").into_bytes();
        for i in chunk {
            let m = message(*i);
            cmd.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
            cmd.extend_from_slice(&m);
        }
        cmd.extend_from_slice(b"\r\n");
        w.write_all(&cmd).await?;
        expect_tagged(&mut r, &format!("a{c}")).await?;
    }
    Ok(())
}

/// The bare client: one `UID FETCH 1:* BODY.PEEK[]`; returns (messages, bytes, seconds).
async fn bare_fetch(port: u16) -> anyhow::Result<(usize, usize, f64)> {
    let started = Instant::now();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?.context("greeting")?;
    let mut session = client.login("bench", MAIL_PASSWORD).await.map_err(|(e, _)| e)?;
    session.examine("INBOX").await?;
    let fetches: Vec<_> = session.uid_fetch("1:*", "BODY.PEEK[]").await?.try_collect().await?;
    let bytes: usize = fetches.iter().filter_map(|f| f.body()).map(<[u8]>::len).sum();
    let took = started.elapsed().as_secs_f64();
    session.logout().await.ok();
    Ok((fetches.len(), bytes, took))
}

struct Gateway {
    app_port: u16,
    services: concierge::services::Services,
    stop: tokio_util::sync::CancellationToken,
    _data: tempfile::TempDir,
    token: String,
    /// On PostgreSQL: (URL, schema), dropped with the gateway.
    pg_schema: Option<(String, String)>,
}

impl Gateway {
    async fn start(lab_cert: &std::path::Path) -> anyhow::Result<Gateway> {
        let data = tempfile::tempdir()?;
        let mut config = concierge::config::Config::defaults();
        config.bind = "127.0.0.1:0".parse()?;
        config.data_dir = data.path().join("data");
        // The bench's IMAP server listens on loopback, which the outbound policy refuses by default.
        config.allow_loopback();
        config.mail_ca_file = Some(lab_cert.to_owned());
        let mut pg_schema = None;
        if std::env::var("BENCH_DB").is_ok_and(|v| v == "postgres") {
            let url = std::env::var("CONCIERGE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await?;
            admin.close().await;
            config.database_url = Some(format!("{url}?options[search_path]={schema}"));
            pg_schema = Some((url, schema));
        }
        let app = concierge::app::Application::build(config).await?;
        let app_port = app.port();
        let services = app.services().clone();
        let stop = app.shutdown_handle();
        tokio::spawn(app.run());
        let mut g = Gateway { app_port, services, stop, _data: data, token: String::new(), pg_schema };
        g.gql(
            "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            json!({ "i": {
            "email": "bench@example.com", "password": PASSWORD, "firstName": "Bench", "lastName": "Mark" } }),
        )
        .await?;
        let data =
            g.gql("mutation { logIn(email: \"bench@example.com\", password: \"Correct-Horse-9!battery\") { token } }", json!({})).await?;
        g.token = data["logIn"]["token"].as_str().context("token")?.to_owned();
        Ok(g)
    }

    async fn gql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let mut req =
            client.post(format!("http://127.0.0.1:{}/graphql", self.app_port)).json(&json!({ "query": query, "variables": variables }));
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        let reply: Value = req.send().await?.json().await?;
        if !reply["errors"].is_null() {
            bail!("GraphQL errors: {reply}");
        }
        Ok(reply["data"].clone())
    }

    /// Connects the bench mailbox and returns its id and the seconds until `n` are recorded.
    async fn sync(&self, imap: u16, smtp: u16, n: usize) -> anyhow::Result<(String, f64)> {
        let started = Instant::now();
        let data = self
            .gql(
                "mutation($i: ConnectMailboxInput!) { connectMailbox(input: $i) { id } }",
                json!({ "i": { "connector": "imap", "emailAddress": "bench@lab.test", "password": MAIL_PASSWORD, "syncFrom": "2026-01-01",
                    "settings": { "imapHost": "127.0.0.1", "imapPort": imap, "imapSecurity": "NONE", "username": "bench",
                                  "smtpHost": "127.0.0.1", "smtpPort": smtp, "smtpSecurity": "SSL_TLS" } } }),
            )
            .await?;
        let id = data["connectMailbox"]["id"].as_str().context("mailbox id")?.to_owned();
        let mailbox_id = concierge::mailboxes::model::MailboxId::parse("id", &id).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        loop {
            let m = concierge::mailboxes::store::find_mailbox(&self.services.db, mailbox_id).await?.context("mailbox")?;
            if m.message_count as usize >= n {
                return Ok((id, started.elapsed().as_secs_f64()));
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("sync stalled at {} of {n}: {:?}", m.message_count, m.status_reason);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some((url, schema)) = self.pg_schema.take() {
            // Drop needs async I/O: on a thread of its own, so it works inside the runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&pool).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(lab: &Lab, gateway: &Gateway, appends: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    // The subscriber.
    let mut request = format!("ws://127.0.0.1:{}/graphql", gateway.app_port).into_client_request()?;
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", gateway.token) } }).to_string(),
    ))
    .await?;
    ws.next().await.context("ack")??;
    ws.send(Message::text(
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { activityEvents { message { title } } }" } })
            .to_string(),
    ))
    .await?;
    // The bare IDLE client.
    let (mut ir, mut iw) = raw_login(lab.imap).await?;
    iw.write_all(b"s SELECT INBOX\r\n").await?;
    expect_tagged(&mut ir, "s").await?;
    let (mut ar, mut aw) = raw_login(lab.imap).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut gateway_ms, mut idle_ms) = (Vec::new(), Vec::new());
    for k in 0..appends {
        iw.write_all(format!("i{k} IDLE\r\n").as_bytes()).await?;
        let mut line = String::new();
        ir.read_line(&mut line).await?; // "+ idling"
        tokio::time::sleep(Duration::from_millis(300)).await;
        let m = message(1_000_000 + k);
        let title = format!("Re: Proposal #{}", 1_000_000 + k);
        let t0 = Instant::now();
        aw.write_all(format!("x{k} APPEND INBOX {{{}+}}\r\n", m.len()).as_bytes()).await?;
        aw.write_all(&m).await?;
        aw.write_all(b"\r\n").await?;
        let idle = async {
            loop {
                line.clear();
                ir.read_line(&mut line).await?;
                if line.contains("EXISTS") {
                    return anyhow::Ok(t0.elapsed());
                }
            }
        };
        let sub = async {
            loop {
                match ws.next().await {
                    // Only this message's event counts (events of the initial sync may still be
                    // arriving, on PostgreSQL through NOTIFY).
                    Some(Ok(Message::Text(t))) if t.contains(&title) => return anyhow::Ok(t0.elapsed()),
                    Some(Ok(_)) => continue,
                    other => bail!("subscription ended: {other:?}"),
                }
            }
        };
        let (i, g) = tokio::join!(idle, sub);
        idle_ms.push(i?.as_secs_f64() * 1000.0);
        gateway_ms.push(g?.as_secs_f64() * 1000.0);
        expect_tagged(&mut ar, &format!("x{k}")).await?;
        iw.write_all(b"DONE\r\n").await?;
        expect_tagged(&mut ir, &format!("i{k}")).await?;
    }
    gateway_ms.sort_by(f64::total_cmp);
    idle_ms.sort_by(f64::total_cmp);
    Ok((gateway_ms, idle_ms))
}

async fn run() -> anyhow::Result<bool> {
    let n = env_usize("BENCH_MESSAGES", 10_000);
    let appends = env_usize("BENCH_APPENDS", 40);
    let lab = Lab::start()?;
    let seeded = Instant::now();
    seed(lab.imap, n).await?;
    println!("seeded {n} messages in {:.1} s", seeded.elapsed().as_secs_f64());

    println!("\n(a) initial sync of {n} messages (msg/s), rounds alternate");
    println!("| round | bare UID FETCH | gateway sync | ratio |\n| ---: | ---: | ---: | ---: |");
    let mut ratios = Vec::new();
    let mut last = None;
    for round in 1..=rounds() {
        let (got, bytes, bare_s) = bare_fetch(lab.imap).await?;
        if got != n {
            bail!("bare fetch got {got} of {n}");
        }
        let gateway = Gateway::start(&lab.cert).await?;
        let (id, sync_s) = gateway.sync(lab.imap, lab.submissions, n).await?;
        let (bare_rate, sync_rate) = (n as f64 / bare_s, n as f64 / sync_s);
        ratios.push(sync_rate / bare_rate);
        println!(
            "| {round} | {bare_rate:.0} ({:.2} s, {:.1} MB) | {sync_rate:.0} ({sync_s:.2} s) | {:.2} |",
            bare_s,
            bytes as f64 / 1e6,
            sync_rate / bare_rate
        );
        last = Some((gateway, id));
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    println!("median ratio {ratio:.2} (goal ≥ 0.80): {}", if ratio >= 0.8 { "met" } else { "NOT met" });

    let (gateway, _) = last.context("a gateway")?;
    let (g, idle) = latency(&lab, &gateway, appends).await?;
    println!("\n(b) APPEND → subscriber, {appends} messages (ms)");
    println!("| path | p50 | p99 | max |\n| --- | ---: | ---: | ---: |");
    println!("| gateway subscriber | {:.0} | {:.0} | {:.0} |", percentile(&g, 0.5), percentile(&g, 0.99), g[g.len() - 1]);
    println!(
        "| bare IDLE client (Dovecot's own delay) | {:.0} | {:.0} | {:.0} |",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        idle[idle.len() - 1]
    );
    let added: Vec<f64> = {
        let mut v: Vec<f64> = g.iter().zip(&idle).map(|(a, b)| a - b).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    println!(
        "| gateway's share (subscriber − IDLE, per message) | {:.0} | {:.0} | {:.0} |",
        percentile(&added, 0.5),
        percentile(&added, 0.99),
        added[added.len() - 1]
    );
    let met = percentile(&g, 0.5) <= 50.0 && percentile(&g, 0.99) <= 200.0;
    println!("latency goal (p50 ≤ 50 ms, p99 ≤ 200 ms end to end): {}", if met { "met" } else { "NOT met" });
    Ok(ratio >= 0.8)
}

fn main() -> std::process::ExitCode {
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        concierge::telemetry::init_tracing(&filter, Default::default(), std::io::stderr);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match rt.block_on(run()) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mail_sync bench failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
