//! Several gateway processes on one database: the lease that keeps a piece of work to one
//! process, and takeover after a process dies.
//!
//! The first tests run on either database. The rest (`takeover_*`) need PostgreSQL
//! (CONCIERGE_TEST_DB=postgres; on SQLite they print a note and return): each starts three
//! real gateway processes (the debug binary, each with a data folder of its own) on one
//! PostgreSQL database, behind a real HAProxy that balances round robin, checks `/readyz` and
//! adds `X-Forwarded-For`, and kills the process doing the work with SIGKILL in the middle of
//! it. Counted afterwards: nothing lost, nothing recorded twice; where a delivery can only be
//! at least once (a webhook the receiver took just before the sender died), every id arrives
//! and a repeat carries the same id. The time from the kill to another process taking the
//! work over is measured (printed, and at most 30 s with the default lease settings).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use concierge::db::{Db, StoredEnum as _};
use concierge::jobs::lease::{self, CALENDAR_ACCOUNT, Claim, MAILBOX};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use uuid::Uuid;

use crate::calendar_lab::CalendarLab;
use crate::helpers::{PASSWORD, TestApp, TestUser, on_postgres};
use crate::mail_lab::{MailLab, parse};
use crate::mailboxes::{connected, imap_settings, live_with, message, sync_from};
use crate::webhooks::Receiver;

/// The longest a takeover may take with the default settings (the bound).
const TAKEOVER_BOUND: Duration = Duration::from_secs(30);

// --- the lease, on either database --------------------------------------------------------

#[tokio::test]
async fn a_lease_is_claimed_renewed_refused_to_others_stolen_once_run_out_and_released() {
    let (_app, db, mailbox) = stopped_with_a_mailbox("lease").await;
    let db = &db;

    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // Whole milliseconds: PostgreSQL keeps microseconds.
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
    let length = Duration::from_secs(15);
    assert_eq!(lease::claim(db, MAILBOX, mailbox, a, now, length).await.unwrap(), Claim::Taken, "a free lease is taken");
    assert_eq!(lease::claim(db, MAILBOX, mailbox, a, now, length).await.unwrap(), Claim::Taken, "its holder renews it");
    let until = now + chrono::Duration::seconds(15);
    assert_eq!(lease::claim(db, MAILBOX, mailbox, b, now, length).await.unwrap(), Claim::HeldUntil(until), "others are told until when");
    assert!(lease::claimable(db, MAILBOX, now).await.unwrap().is_empty());
    assert!(lease::expired(db, MAILBOX, now).await.unwrap().is_empty());

    // Its holder died: once the lease has run out, another takes it, and the old holder is refused.
    let later = now + chrono::Duration::seconds(16);
    assert_eq!(lease::expired(db, MAILBOX, later).await.unwrap(), [mailbox]);
    assert_eq!(lease::claimable(db, MAILBOX, later).await.unwrap(), [mailbox]);
    assert_eq!(lease::claim(db, MAILBOX, mailbox, b, later, length).await.unwrap(), Claim::Taken, "stolen once run out");
    assert!(matches!(lease::claim(db, MAILBOX, mailbox, a, later, length).await.unwrap(), Claim::HeldUntil(_)));
    // Only the holder's release counts.
    lease::release(db, MAILBOX, mailbox, a).await.unwrap();
    assert_eq!(lease::holder_of(db, MAILBOX, mailbox).await.unwrap().and_then(|h| h.0), Some(b));
    lease::release(db, MAILBOX, mailbox, b).await.unwrap();
    assert_eq!(lease::holder_of(db, MAILBOX, mailbox).await.unwrap(), Some((None, None)));
    assert_eq!(lease::claim(db, MAILBOX, mailbox, a, later, length).await.unwrap(), Claim::Taken, "free again once released");
    // A row that is gone says so; the calendar table is leased the same way.
    assert_eq!(lease::claim(db, CALENDAR_ACCOUNT, Uuid::new_v4(), a, now, length).await.unwrap(), Claim::Missing);
}

#[tokio::test]
async fn a_lease_is_renewed_while_the_work_runs_and_lost_when_another_process_took_it() {
    let (_app, db, mailbox) = stopped_with_a_mailbox("renew").await;
    let (db, mailbox) = (&db, concierge::mailboxes::model::MailboxId(mailbox));

    let me = Uuid::new_v4();
    let length = Duration::from_millis(900);
    assert_eq!(lease::claim(db, MAILBOX, mailbox.0, me, Utc::now(), length).await.unwrap(), Claim::Taken);
    let held = lease::Held::renew(db.clone(), MAILBOX, mailbox.0, me, length);
    // Three lease lengths later it is still ours: renewed every third of it.
    tokio::time::sleep(length * 3).await;
    assert!(!held.lost().is_cancelled());
    let (holder, until) = lease::holder_of(db, MAILBOX, mailbox.0).await.unwrap().expect("row");
    assert_eq!(holder, Some(me));
    assert!(until.expect("an expiry") > Utc::now(), "renewed into the future");

    // Another process steals it (this one "stalled" past it): the renewal notices and says so.
    let thief = Uuid::new_v4();
    let stolen = lease::claim(db, MAILBOX, mailbox.0, thief, Utc::now() + chrono::Duration::seconds(5), length).await.unwrap();
    assert_eq!(stolen, Claim::Taken);
    tokio::time::timeout(length * 2, held.lost().cancelled()).await.expect("the loss is noticed within a renewal");
    assert_eq!(lease::holder_of(db, MAILBOX, mailbox.0).await.unwrap().and_then(|h| h.0), Some(thief), "the thief keeps it");
}

/// A gateway that connected a mailbox and then stopped (releasing its lease), and a pool of
/// the test's own on its database: only the test touches the mailbox's lease from then on.
async fn stopped_with_a_mailbox(prefix: &str) -> (TestApp, Db, Uuid) {
    let lab = MailLab::get().await;
    let mut app = TestApp::spawn_with(mail_settings_for(Some(lab.cert()))).await;
    let user = app.user(&fresh(prefix)).await;
    let (mail_user, password) = lab.new_user(prefix).await;
    let id = connected(&app, &user, &lab, &mail_user, &password).await;
    live_with(&app, &user, &id, 0).await;
    app.begin_shutdown();
    app.stopped(Duration::from_secs(30)).await.expect("stops");
    let db = Db::connect(&app.database_url, Some(2)).await.expect("a pool");
    let mailbox: Uuid = id.parse().expect("a UUID");
    assert_eq!(lease::holder_of(&db, MAILBOX, mailbox).await.unwrap(), Some((None, None)), "released at shutdown");
    (app, db, mailbox)
}

#[tokio::test]
async fn a_mailbox_connected_through_a_gateway_that_then_stopped_is_synced_by_another_one() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let mut first = TestApp::spawn_with(mail_settings_for(Some(cert.clone()))).await;
    let url = first.database_url.clone();
    // The second gateway starts before the mailbox exists: its start-up never saw it.
    let second = TestApp::spawn_with({
        let url = url.clone();
        move |c| {
            mail_settings_for(Some(cert))(c);
            c.database_url = Some(url);
        }
    })
    .await;
    let ada = first.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("adopt").await;
    let to = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "one", "b"), None)]).await;
    let id = connected(&first, &ada, &lab, &mail_user, &password).await;
    live_with(&first, &ada, &id, 1).await;

    // The gateway it was connected through stops (a rolling update); mail keeps coming.
    first.begin_shutdown();
    first.stopped(Duration::from_secs(30)).await.expect("stops");
    lab.append(&mail_user, &password, &[(message("c@customer.test", &to, "two", "b"), None)]).await;
    let ada = TestUser {
        token: second.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].as_str().expect("token").to_owned(),
        ..ada
    };
    live_with(&second, &ada, &id, 2).await;
}

/// Test settings for a gateway syncing the mail lab; with `cert`, trusting its certificate.
/// A short lease, so the in-process tests above run in seconds.
fn mail_settings_for(cert: Option<PathBuf>) -> impl FnOnce(&mut concierge::config::Config) {
    move |c| {
        if let Some(cert) = cert {
            c.mail_ca_file = Some(cert);
        }
        c.allow_loopback();
        c.secret_key = Some(concierge::config::Redacted(key()));
        c.mail_lease_secs = 3;
    }
}

fn key() -> String {
    base64::engine::general_purpose::STANDARD.encode([9u8; 32])
}

// --- the cluster: real processes behind a real HAProxy, on PostgreSQL -----------------------

/// How many gateway processes a cluster runs.
const REPLICAS: usize = 3;

/// One gateway process.
struct Replica {
    child: Option<tokio::process::Child>,
    port: u16,
    /// Its lease-holder identity (instance.id in its data folder).
    instance: Uuid,
    log: PathBuf,
    _data: tempfile::TempDir,
}

/// HAProxy in front of the replicas.
struct Balancer {
    /// Killed when dropped.
    _child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

struct Cluster {
    replicas: Vec<Replica>,
    balancer: Balancer,
    /// A pool of the test's own on the shared database, to look at leases and counts.
    db: Db,
    /// Connects from 127.0.0.2, so the address HAProxy forwards differs from its own.
    client: reqwest::Client,
    /// Made the database (and drops it last); stopped before the replicas start.
    _setup: TestApp,
}

/// What every replica of a test is started with (the lease settings stay at their defaults).
fn replica_env(url: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", url.to_owned()),
        ("CONCIERGE_BIND", "127.0.0.1:0".to_owned()),
        ("CONCIERGE_SECRET_KEY", key()),
        // HAProxy connects from 127.0.0.1; only it is believed about the client's address.
        ("CONCIERGE_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
        // The labs and the webhook receiver listen on loopback.
        ("CONCIERGE_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128".to_owned()),
        ("CONCIERGE_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "warn,concierge::app=info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// True (with a note) on SQLite: replicas share one PostgreSQL.
fn skipped(name: &str) -> bool {
    if on_postgres() {
        return false;
    }
    println!("replicas::{name}: skipped: several gateway processes share one PostgreSQL (run with CONCIERGE_TEST_DB=postgres)");
    true
}

fn haproxy() -> Option<PathBuf> {
    ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

impl Cluster {
    /// Three replicas on a fresh database behind HAProxy; None (with a note) on SQLite.
    async fn start(name: &str, extra: &[(&str, &str)]) -> Option<Cluster> {
        if skipped(name) {
            return None;
        }
        let haproxy = haproxy().unwrap_or_else(|| {
            panic!("HAProxy is not installed (/usr/sbin/haproxy): `apt-get install haproxy`, or run scripts/test, which installs it")
        });
        let mut setup = TestApp::spawn().await;
        let url = setup.database_url.clone();
        setup.begin_shutdown();
        setup.stopped(Duration::from_secs(30)).await.expect("the set-up gateway stops");
        let mut env = replica_env(&url);
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let replicas = futures_util::future::join_all((0..REPLICAS).map(|_| Replica::start(&env))).await;
        let balancer = Balancer::start(&haproxy, &replicas.iter().map(|r| r.port).collect::<Vec<_>>()).await;
        let db = Db::connect(&url, Some(4)).await.expect("a pool on the shared database");
        let client = reqwest::Client::builder()
            .no_proxy()
            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Some(Cluster { replicas, balancer, db, client, _setup: setup })
    }

    /// POSTs a GraphQL request through the balancer.
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(format!("http://127.0.0.1:{}/graphql", self.balancer.port))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the balancer answers");
        let status = resp.status();
        resp.json().await.unwrap_or_else(|e| panic!("not JSON ({status}): {e}"))
    }

    /// Signs up `email` and logs in, through the balancer.
    async fn user(&self, email: &str) -> TestUser {
        let r = self
            .gql(
                None,
                "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
                json!({ "i": { "email": email, "password": PASSWORD, "firstName": "Test", "lastName": "User" } }),
            )
            .await;
        assert!(r.get("errors").is_none(), "sign-up failed: {r}");
        let r = self
            .gql(None, "mutation($i: LogInInput!) { logIn(input: $i) { token } }", json!({ "i": { "email": email, "password": PASSWORD } }))
            .await;
        let token = r["data"]["logIn"]["token"].as_str().unwrap_or_else(|| panic!("log-in failed: {r}")).to_owned();
        let me = self.gql(Some(&token), "{ me { id email memberships { workspace { id } } } }", json!({})).await;
        TestUser {
            id: me["data"]["me"]["id"].as_str().expect("id").to_owned(),
            email: me["data"]["me"]["email"].as_str().expect("email").to_owned(),
            workspace_id: me["data"]["me"]["memberships"][0]["workspace"]["id"].as_str().expect("workspace").to_owned(),
            token,
        }
    }

    /// The replica whose identity is `instance`.
    fn replica_of(&self, instance: Uuid) -> usize {
        self.replicas.iter().position(|r| r.instance == instance).unwrap_or_else(|| panic!("no replica is {instance}"))
    }

    /// Kills replica `i` with SIGKILL; returns when it died.
    async fn kill(&mut self, i: usize) -> Instant {
        let replica = &mut self.replicas[i];
        let mut child = replica.child.take().expect("alive");
        // tokio's start_kill is SIGKILL on Unix: no shutdown, no lease released, nothing flushed.
        child.start_kill().expect("SIGKILL");
        let killed = Instant::now();
        let status = child.wait().await.expect("reaped");
        assert!(!status.success(), "{status}");
        killed
    }

    /// The log lines of every replica (for failure messages).
    fn logs(&self) -> String {
        self.replicas
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let text = std::fs::read_to_string(&r.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
                format!("--- replica {i} ({}):\n{}", r.instance, tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until the holder of `what`'s lease on `id` satisfies `ok`, up to `within`.
    async fn lease_holder(&self, what: lease::Leased, id: Uuid, within: Duration, ok: impl Fn(Option<Uuid>) -> bool) -> Option<Uuid> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let holder = lease::holder_of(&self.db, what, id).await.expect("lease").expect("row").0;
            if ok(holder) {
                return holder;
            }
            assert!(tokio::time::Instant::now() < deadline, "the lease holder is still {holder:?}\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Replica {
    async fn start(env: &[(String, String)]) -> Replica {
        let data = tempfile::tempdir().expect("data dir");
        let log = data.path().join("gateway.log");
        let out = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CONCIERGE_DATA_DIR", data.path().join("data"))
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("the gateway binary starts");
        // The JSON log's `serving` line names the address it bound.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let serving = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|l| l["message"] == "serving");
            if let Some(line) = serving {
                let addr: std::net::SocketAddr = line["addr"].as_str().expect("addr").parse().expect("an address");
                break addr.port();
            }
            assert!(tokio::time::Instant::now() < deadline, "the gateway did not start:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let instance = std::fs::read_to_string(data.path().join("data/instance.id")).expect("instance.id");
        Replica { child: Some(child), port, instance: instance.trim().parse().expect("a UUID"), log, _data: data }
    }
}

/// The HAProxy configuration the tests use (also shown in the README).
fn haproxy_config(dir: &Path, port: u16, servers: &[u16]) -> String {
    let mut cfg = format!(
        "global
    stats socket {dir}/admin.sock mode 600 level admin
    maxconn 1024

defaults
    mode http
    option forwardfor
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h

frontend concierge
    bind 127.0.0.1:{port}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
",
        dir = dir.display()
    );
    for (i, p) in servers.iter().enumerate() {
        cfg.push_str(&format!("    server g{i} 127.0.0.1:{p} check\n"));
    }
    cfg
}

impl Balancer {
    async fn start(haproxy: &Path, servers: &[u16]) -> Balancer {
        let dir = tempfile::tempdir().expect("haproxy dir");
        // HAProxy cannot report a port it chose: take a free one, and try another if it was
        // taken in between.
        'attempt: for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            let cfg = dir.path().join("haproxy.cfg");
            std::fs::write(&cfg, haproxy_config(dir.path(), port, servers)).expect("config");
            let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("log");
            let mut child = tokio::process::Command::new(haproxy)
                .arg("-db")
                .arg("-f")
                .arg(&cfg)
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("haproxy starts");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    continue 'attempt; // the port was taken: try another
                }
                if server_states(dir.path()).await.values().filter(|s| s.as_str() == "UP").count() == servers.len() {
                    return Balancer { _child: child, port, dir };
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "HAProxy did not see every gateway ready:\n{}",
                    std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("HAProxy could not bind a port in 5 tries")
    }

    /// What HAProxy's health checks say of each server: name → status (`UP`, `DOWN`, …).
    async fn servers(&self) -> HashMap<String, String> {
        server_states(self.dir.path()).await
    }
}

/// HAProxy's `show stat` on its admin socket in `dir`: each gateway's status.
async fn server_states(dir: &Path) -> HashMap<String, String> {
    let Ok(mut sock) = tokio::net::UnixStream::connect(dir.join("admin.sock")).await else { return HashMap::new() };
    if sock.write_all(b"show stat\n").await.is_err() {
        return HashMap::new();
    }
    let mut csv = String::new();
    let _ = sock.read_to_string(&mut csv).await;
    let mut lines = csv.lines();
    let Some(header) = lines.next() else { return HashMap::new() };
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(st)) = (at("pxname"), at("svname"), at("status")) else { return HashMap::new() };
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.get(px) == Some(&"gateways") && f.get(sv).is_some_and(|s| s.starts_with('g')))
        .map(|f| (f[sv].to_owned(), f[st].to_owned()))
        .collect()
}

// --- helpers of the scenarios -----------------------------------------------------------------

fn fresh(local: &str) -> String {
    format!("{local}-{}@example.com", Uuid::new_v4().simple())
}

/// Seeds `user`'s INBOX with `n` messages: MULTIAPPEND with LITERAL+, 200 per command.
async fn seed(lab: &MailLab, user: &str, password: &str, n: usize) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", lab.imap)).await.expect("IMAP");
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.expect("greeting");
    w.write_all(format!("l LOGIN {user} {password}\r\n").as_bytes()).await.expect("LOGIN");
    expect_tagged(&mut r, "l").await;
    let to = format!("{user}@lab.test");
    for (c, chunk) in (0..n).collect::<Vec<_>>().chunks(200).enumerate() {
        let mut cmd = format!("a{c} APPEND INBOX").into_bytes();
        for i in chunk {
            let m = message(&format!("customer{}@customer.test", i % 50), &to, &format!("Seeded {i}"), "A message from before.");
            cmd.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
            cmd.extend_from_slice(&m);
        }
        cmd.extend_from_slice(b"\r\n");
        w.write_all(&cmd).await.expect("APPEND");
        expect_tagged(&mut r, &format!("a{c}")).await;
    }
}

/// Reads IMAP answers up to the tagged one, which must be OK.
async fn expect_tagged(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, tag: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).await.expect("IMAP answer") > 0, "IMAP closed");
        if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
            assert!(rest.starts_with("OK"), "{line}");
            return;
        }
    }
}

/// Connects the lab user's mailbox through the balancer; its id.
async fn connect_mailbox(cluster: &Cluster, user: &TestUser, lab: &MailLab, mail_user: &str, password: &str) -> Uuid {
    let r = cluster
        .gql(
            Some(&user.token),
            "mutation($i: ConnectMailboxInput!) { connectMailbox(input: $i) { id } }",
            json!({ "i": {
                "connector": "imap", "emailAddress": format!("{mail_user}@lab.test"), "password": password,
                "syncFrom": sync_from(30), "settings": imap_settings(lab),
            }}),
        )
        .await;
    r["data"]["connectMailbox"]["id"].as_str().unwrap_or_else(|| panic!("connectMailbox failed: {r}")).parse().expect("a UUID")
}

async fn find_mailbox(cluster: &Cluster, id: Uuid) -> concierge::mailboxes::model::Mailbox {
    concierge::mailboxes::store::find_mailbox(&cluster.db, concierge::mailboxes::model::MailboxId(id))
        .await
        .expect("read")
        .expect("the mailbox")
}

/// Waits until the mailbox is LIVE with `n` messages recorded.
async fn mailbox_live_with(cluster: &Cluster, id: Uuid, n: i64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = find_mailbox(cluster, id).await;
        if m.status == "LIVE" && m.message_count == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mailbox did not reach LIVE with {n}: {} with {} ({:?})\n{}",
            m.status,
            m.message_count,
            m.status_reason,
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The workspace's activity through the balancer: (events, distinct Message-IDs).
async fn message_ids(cluster: &Cluster, user: &TestUser) -> (usize, usize) {
    let mut ids = std::collections::HashSet::new();
    let mut total = 0;
    let mut after: Option<String> = None;
    loop {
        let r = cluster
            .gql(
                Some(&user.token),
                "query($a: String) { activity(first: 100, after: $a) { edges { node { type message { messageId } } } pageInfo { hasNextPage endCursor } } }",
                json!({ "a": after }),
            )
            .await;
        let page = &r["data"]["activity"];
        for e in page["edges"].as_array().unwrap_or_else(|| panic!("{r}")) {
            assert_eq!(e["node"]["type"], "MESSAGE_RECEIVE", "{e}");
            total += 1;
            ids.insert(e["node"]["message"]["messageId"].as_str().expect("a Message-ID").to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return (total, ids.len());
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

fn report(scenario: &str, takeover: Duration) {
    println!("replicas: {scenario}: SIGKILL -> another replica took the work over in {:.2} s", takeover.as_secs_f64());
}

// --- a. the initial sync of a 5,000-message mailbox --------------------------------------------

#[tokio::test]
async fn takeover_of_the_initial_sync_of_5000_messages_records_each_once() {
    if skipped("takeover_of_the_initial_sync_of_5000_messages_records_each_once") {
        return;
    }
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let extra = [("CONCIERGE_MAIL_CA_FILE", cert.to_str().expect("path"))];
    let Some(mut cluster) = Cluster::start("takeover_of_the_initial_sync_of_5000_messages", &extra).await else { return };
    let (mail_user, password) = lab.new_user("big").await;
    seed(&lab, &mail_user, &password, 5000).await;
    let ada = cluster.user(&fresh("big")).await;
    let id = connect_mailbox(&cluster, &ada, &lab, &mail_user, &password).await;

    // Whichever replica took the sync: killed once it has recorded some, far from all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let holder = loop {
        let m = find_mailbox(&cluster, id).await;
        let holder = lease::holder_of(&cluster.db, MAILBOX, id).await.expect("lease").expect("row").0;
        if let (true, Some(h)) = (m.message_count >= 250, holder) {
            assert!(m.message_count < 5000, "the sync finished before the kill");
            println!("replicas: initial sync: killing the syncing replica at {} of 5000 recorded", m.message_count);
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "no replica is syncing: {m:?}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let victim = cluster.replica_of(holder);
    let killed = cluster.kill(victim).await;
    cluster.lease_holder(MAILBOX, id, Duration::from_secs(60), |h| h.is_some_and(|h| h != holder)).await;
    let takeover = killed.elapsed();
    report("initial sync of 5,000 messages", takeover);

    mailbox_live_with(&cluster, id, 5000, Duration::from_secs(240)).await;
    assert_eq!(message_ids(&cluster, &ada).await, (5000, 5000), "each message recorded once, none lost");
    assert!(takeover <= TAKEOVER_BOUND, "takeover took {takeover:?}");
}

// --- b. live arrivals --------------------------------------------------------------------------

#[tokio::test]
async fn takeover_during_live_arrivals_records_and_notifies_each_message_once() {
    if skipped("takeover_during_live_arrivals_records_and_notifies_each_message_once") {
        return;
    }
    const ARRIVALS: usize = 24;
    let lab = Arc::new(MailLab::get().await);
    let cert = lab.cert();
    let extra = [("CONCIERGE_MAIL_CA_FILE", cert.to_str().expect("path"))];
    let Some(mut cluster) = Cluster::start("takeover_during_live_arrivals", &extra).await else { return };
    let (mail_user, password) = lab.new_user("live").await;
    let to = format!("{mail_user}@lab.test");
    lab.append(&mail_user, &password, &[(message("first@customer.test", &to, "before", "b"), None)]).await;
    let ada = cluster.user(&fresh("live")).await;
    let id = connect_mailbox(&cluster, &ada, &lab, &mail_user, &password).await;
    mailbox_live_with(&cluster, id, 1, Duration::from_secs(60)).await;
    let holder = cluster.lease_holder(MAILBOX, id, Duration::from_secs(10), |h| h.is_some()).await.expect("a holder");

    // Mail keeps arriving, before, during and after the kill.
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::channel::<usize>(ARRIVALS);
    let arrivals = tokio::spawn({
        let (lab, mail_user, password, to) = (lab.clone(), mail_user.clone(), password.clone(), to.clone());
        async move {
            for i in 0..ARRIVALS {
                let m = message(&format!("sender{}@customer.test", i % 3), &to, &format!("live {i}"), "b");
                lab.append(&mail_user, &password, &[(m, None)]).await;
                let _ = sent_tx.send(i).await;
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
        }
    });
    while sent_rx.recv().await.is_some_and(|i| i < 3) {}
    let victim = cluster.replica_of(holder);
    let killed = cluster.kill(victim).await;
    cluster.lease_holder(MAILBOX, id, Duration::from_secs(60), |h| h.is_some_and(|h| h != holder)).await;
    let takeover = killed.elapsed();
    report("live arrivals", takeover);
    arrivals.await.expect("arrivals");

    mailbox_live_with(&cluster, id, 1 + ARRIVALS as i64, Duration::from_secs(60)).await;
    assert_eq!(message_ids(&cluster, &ada).await, (1 + ARRIVALS, 1 + ARRIVALS), "each message recorded once");
    // Each arrival notified its owner once (the message listed at connection time is old mail).
    let account: Uuid = ada.id.parse().expect("a UUID");
    let received = concierge::notifications::model::NotificationEvent::MessageReceived.stored_name();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let bodies: Vec<String> = loop {
        let bodies: Vec<String> = concierge::on_pool!(&cluster.db, p => sqlx::query_scalar(
            "SELECT body FROM notification WHERE account_id = $1 AND event = $2 ORDER BY body")
            .bind(account)
            .bind(received)
            .fetch_all(p)
            .await)
        .expect("notifications");
        if bodies.len() >= ARRIVALS || tokio::time::Instant::now() >= deadline {
            break bodies;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut expected: Vec<String> = (0..ARRIVALS).map(|i| format!("live {i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected, "one notification per arrival");
    assert!(takeover <= TAKEOVER_BOUND, "takeover took {takeover:?}");
}

// --- c. a calendar sync ------------------------------------------------------------------------

#[tokio::test]
async fn takeover_of_a_calendar_sync_stores_every_event_once() {
    if skipped("takeover_of_a_calendar_sync_stores_every_event_once") {
        return;
    }
    const CALENDARS: usize = 4;
    const EVENTS: usize = 400;
    let lab = CalendarLab::get().await;
    let Some(mut cluster) = Cluster::start("takeover_of_a_calendar_sync", &[]).await else { return };
    let (name, password) = lab.new_user("rep").await;
    for c in 0..CALENDARS {
        let path = lab.make_calendar(&name, &password, &format!("c{c}"), &format!("Calendar {c}"), None).await;
        // Written straight into Radicale's storage: the same as PUTting each, in a fraction of the time.
        let folder = lab.collection(&path);
        for i in 0..EVENTS {
            let uid = format!("c{c}-e{i}@replicas");
            let day = 1 + i % 28;
            let ics = format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n\
                 DTSTART:203003{day:02}T{h:02}0000Z\r\nDTEND:203003{day:02}T{h:02}3000Z\r\nSUMMARY:Event {c}/{i}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
                h = 8 + i % 10
            );
            std::fs::write(folder.join(format!("c{c}-e{i}.ics")), ics).expect("an event file");
        }
    }
    let total = (CALENDARS * EVENTS) as i64;
    let ada = cluster.user(&fresh("cal")).await;
    let r = cluster
        .gql(
            Some(&ada.token),
            "mutation($i: ConnectCalendarAccountInput!) { connectCalendarAccount(input: $i) { id } }",
            json!({ "i": { "connector": "caldav", "username": name, "password": password, "settings": { "url": lab.url } } }),
        )
        .await;
    let account: Uuid =
        r["data"]["connectCalendarAccount"]["id"].as_str().unwrap_or_else(|| panic!("not connected: {r}")).parse().expect("id");
    let stored = |db: &Db| {
        let db = db.clone();
        async move {
            let (n, distinct): (i64, i64) = concierge::on_pool!(&db, p => sqlx::query_as(
                "SELECT COUNT(*), COUNT(DISTINCT c.calendar_id::text || ' ' || e.uid) FROM calendar_event e \
                 JOIN calendar c ON c.calendar_id = e.calendar_id WHERE c.calendar_account_id = $1")
                .bind(account)
                .fetch_one(p)
                .await)
            .expect("count");
            (n, distinct)
        }
    };

    // The first sync reads the primary calendar; then the user has the others checked for
    // conflicts too, which syncs them, and the replica doing that is killed in the middle.
    let account_status = |db: Db| async move {
        concierge::calendars::store::find_account(&db, concierge::calendars::model::CalendarAccountId(account))
            .await
            .expect("read")
            .expect("the account")
            .status
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !(account_status(cluster.db.clone()).await == "LIVE" && stored(&cluster.db).await.0 == EVENTS as i64) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first sync did not finish ({:?})\n{}",
            stored(&cluster.db).await,
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = cluster.gql(Some(&ada.token), "{ me { calendars { id primary } } }", json!({})).await;
    let others: Vec<Value> = r["data"]["me"]["calendars"]
        .as_array()
        .expect("calendars")
        .iter()
        .filter(|c| c["primary"] == false)
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(others.len(), CALENDARS - 1, "{r}");
    let r =
        cluster.gql(Some(&ada.token), "mutation($ids: [ID!]!) { setConflictCalendars(ids: $ids) { id } }", json!({ "ids": others })).await;
    assert!(r["errors"].is_null(), "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let holder = loop {
        let holder = lease::holder_of(&cluster.db, CALENDAR_ACCOUNT, account).await.expect("lease").expect("row").0;
        let (n, _) = stored(&cluster.db).await;
        if let (true, Some(h)) = (n > EVENTS as i64, holder) {
            assert!(n < total, "the sync finished before the kill");
            println!("replicas: calendar sync: killing the syncing replica at {n} of {total} events stored");
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "no replica is syncing ({n} stored)\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let victim = cluster.replica_of(holder);
    let killed = cluster.kill(victim).await;
    // Taken by another replica (and, once its sync is done, released: the dead one cannot).
    let now_held = cluster.lease_holder(CALENDAR_ACCOUNT, account, Duration::from_secs(60), |h| h != Some(holder)).await;
    let takeover = killed.elapsed();
    println!("replicas: calendar sync: after the kill the lease is {now_held:?}, {} events stored", stored(&cluster.db).await.0);
    report("calendar sync", takeover);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let a = concierge::calendars::store::find_account(&cluster.db, concierge::calendars::model::CalendarAccountId(account))
            .await
            .expect("read")
            .expect("the account");
        let (n, distinct) = stored(&cluster.db).await;
        if a.status == "LIVE" && n == total {
            assert_eq!(distinct, total, "each event stored once");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{n} of {total} events, status {}\n{}", a.status, cluster.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(takeover <= TAKEOVER_BOUND, "takeover took {takeover:?}");
}

// --- d. webhook deliveries to a receiver that was down ---------------------------------------

#[tokio::test]
async fn takeover_of_webhook_deliveries_delivers_every_event_at_least_once_under_its_id() {
    const BURST: usize = 30;
    // The retry schedule is shortened (it is not a lease); the delivery lease stays at its default.
    let Some(mut cluster) = Cluster::start("takeover_of_webhook_deliveries", &[("CONCIERGE_WEBHOOK_RETRY_MS", "100")]).await else {
        return;
    };
    let receiver = Receiver::start("whsec_placeholder").await;
    let ada = cluster.user(&fresh("hooks")).await;
    let r = cluster
        .gql(
            Some(&ada.token),
            "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret webhook { id } } }",
            json!({ "i": { "workspaceId": ada.workspace_id, "url": receiver.url("/hook"), "eventKinds": ["contact.created"] } }),
        )
        .await;
    let secret = r["data"]["createWebhook"]["secret"].as_str().unwrap_or_else(|| panic!("createWebhook: {r}")).to_owned();
    // The receiver is down (its front answers 503) while the burst is queued, through every replica.
    receiver.control(json!({ "secret": secret, "fail": 1_000_000, "status": 503 })).await;
    let mut created = Vec::new();
    for i in 0..BURST {
        let r = cluster
            .gql(
                Some(&ada.token),
                "mutation($i: CreateContactInput!) { createContact(input: $i) { id } }",
                json!({ "i": { "workspaceId": ada.workspace_id, "emails": [format!("burst{i}@customer.test")] } }),
            )
            .await;
        created.push(r["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("createContact: {r}")).to_owned());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while receiver.requests().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no attempt reached the receiver\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // It comes back, slowly: the next attempt hangs there, and the replica making it is killed.
    receiver.control(json!({ "fail": 0, "hold": true })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (delivery, holder) = loop {
        if !receiver.lines("held.jsonl").is_empty() {
            let held: Option<(Uuid, Uuid)> = concierge::on_pool!(&cluster.db, p => sqlx::query_as(
                "SELECT delivery_id, locked_by FROM webhook_delivery WHERE locked_by IS NOT NULL AND status = 'PENDING'")
                .fetch_optional(p)
                .await)
            .expect("deliveries");
            if let Some(held) = held {
                break held;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt is held\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let victim = cluster.replica_of(holder);
    let killed = cluster.kill(victim).await;
    // The receiver then handles the request it held: the receiver has it, its sender never heard.
    receiver.control(json!({ "hold": false })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, by): (String, Option<Uuid>) = concierge::on_pool!(&cluster.db, p => sqlx::query_as(
            "SELECT status, locked_by FROM webhook_delivery WHERE delivery_id = $1")
            .bind(delivery)
            .fetch_one(p)
            .await)
        .expect("the delivery");
        if status == "DELIVERED" || by.is_some_and(|b| b != holder) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the killed replica's delivery was not taken over\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let takeover = killed.elapsed();
    report("webhook deliveries", takeover);

    // Every event arrives, under one webhook-id each, in the order they happened; a repeat
    // (the held attempt, then the retry) carries the same id and the same event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let got = loop {
        let got = receiver.received();
        let distinct: std::collections::HashSet<&str> = got.iter().filter_map(|d| d["id"].as_str()).collect();
        if distinct.len() >= BURST {
            break got;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} of {BURST} events arrived\n{}", distinct.len(), cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut event_of: HashMap<String, Value> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for d in &got {
        let id = d["id"].as_str().expect("webhook-id").to_owned();
        match event_of.get(&id) {
            Some(first) => assert_eq!(first, &d["payload"], "a repeat of {id} is the same event"),
            None => {
                event_of.insert(id, d["payload"].clone());
                order.push(d["payload"]["data"]["contactId"].as_str().expect("contactId").to_owned());
            }
        }
    }
    assert_eq!(order, created, "every event, in the order it happened, under an id of its own");
    let repeats = got.len() - BURST;
    println!("replicas: webhook deliveries: {BURST} events, {repeats} delivered twice (at least once, same webhook-id)");
    assert!(repeats <= 1, "only the attempt in flight at the kill may repeat: {repeats}");
    assert!(takeover <= TAKEOVER_BOUND, "takeover took {takeover:?}");
}

// --- e. the digest minute, and the client address through the balancer -----------------------

/// A TCP relay in front of the lab's SMTP server that can hold new connections unanswered
/// (a slow mail server) and then drop them unrelayed, or keep from the sender the server's
/// answer to the end of a message (the server took it; the sender never hears so).
struct SmtpGate {
    port: u16,
    state: Arc<std::sync::Mutex<GateState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct GateState {
    holding: bool,
    /// Answers to the end of a message's data are kept from the sender.
    swallowing: bool,
    /// How many such answers were kept.
    swallowed: usize,
    held: Vec<tokio::net::TcpStream>,
    relays: Vec<tokio::task::JoinHandle<()>>,
}

impl SmtpGate {
    async fn start(upstream: u16) -> SmtpGate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state: Arc<std::sync::Mutex<GateState>> = Arc::default();
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let mut gate = state.lock().expect("gate");
                    if gate.holding {
                        gate.held.push(client);
                        continue;
                    }
                    let state = state.clone();
                    gate.relays.push(tokio::spawn(async move {
                        if let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                            SmtpGate::relay(client, server, state).await;
                        }
                    }));
                }
            }
        });
        SmtpGate { port, state, task }
    }

    /// Relays both ways. The server's first answer after a message's data ended
    /// (`CRLF . CRLF` from the sender) is kept from the sender while swallowing, and so is
    /// everything after it on that connection.
    async fn relay(client: tokio::net::TcpStream, server: tokio::net::TcpStream, state: Arc<std::sync::Mutex<GateState>>) {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_server, mut to_server) = server.into_split();
        let ended = Arc::new(AtomicBool::new(false));
        let up = {
            let ended = ended.clone();
            async move {
                let (mut buf, mut tail) = ([0u8; 8192], Vec::new());
                while let Ok(n @ 1..) = from_client.read(&mut buf).await {
                    tail.extend_from_slice(&buf[..n]);
                    tail.drain(..tail.len().saturating_sub(5));
                    if tail == b"\r\n.\r\n" {
                        ended.store(true, Ordering::SeqCst);
                    }
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        };
        let down = async move {
            let (mut buf, mut mute) = ([0u8; 8192], false);
            while let Ok(n @ 1..) = from_server.read(&mut buf).await {
                if ended.swap(false, Ordering::SeqCst) {
                    let mut gate = state.lock().expect("gate");
                    if gate.swallowing {
                        gate.swallowed += 1;
                        mute = true;
                    }
                }
                if !mute && to_client.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(up, down);
    }

    /// Swallowing: see [`SmtpGate::relay`].
    fn swallow(&self, on: bool) {
        self.state.lock().expect("gate").swallowing = on;
    }

    fn swallowed(&self) -> usize {
        self.state.lock().expect("gate").swallowed
    }

    /// Holding: open connections are cut (a client's pooled connection too) and new ones
    /// wait unanswered. Released: those are closed, unrelayed, and new ones are relayed.
    fn hold(&self, on: bool) {
        let mut gate = self.state.lock().expect("gate");
        gate.holding = on;
        if on {
            for relay in gate.relays.drain(..) {
                relay.abort();
            }
        } else {
            gate.held.clear();
        }
    }

    fn held(&self) -> usize {
        self.state.lock().expect("gate").held.len()
    }
}

impl Drop for SmtpGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn takeover_at_the_digest_minute_sends_the_summary_once_and_the_balancer_forwards_the_client_address() {
    if skipped("takeover_at_the_digest_minute_sends_the_summary_once_and_the_balancer_forwards_the_client_address") {
        return;
    }
    let Some((lab, gate, mut cluster)) = behind_a_gate("takeover_at_the_digest_minute").await else { return };
    let ada = cluster.user(&fresh("digest")).await;

    // X-Forwarded-For: HAProxy forwards the client's address (127.0.0.2), which the gateways
    // believe because HAProxy (127.0.0.1) is their trusted proxy.
    let sessions = cluster.gql(Some(&ada.token), "{ me { sessions { ip current } } }", json!({})).await;
    let current: Vec<&Value> =
        sessions["data"]["me"]["sessions"].as_array().expect("sessions").iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current[0]["ip"], "127.0.0.2", "the address HAProxy forwarded: {sessions}");
    // The same header sent straight to a gateway by anyone else proves nothing.
    let direct = reqwest::Client::builder().no_proxy().local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3))).build().expect("client");
    let logged: Value = direct
        .post(format!("http://127.0.0.1:{}/graphql", cluster.replicas[0].port))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "query": "mutation($i: LogInInput!) { logIn(input: $i) { token } }", "variables": { "i": { "email": ada.email, "password": PASSWORD } } }))
        .send()
        .await
        .expect("a direct request")
        .json()
        .await
        .expect("JSON");
    let token = logged["data"]["logIn"]["token"].as_str().unwrap_or_else(|| panic!("{logged}"));
    let sessions = cluster.gql(Some(token), "{ me { sessions { ip current } } }", json!({})).await;
    let current =
        sessions["data"]["me"]["sessions"].as_array().expect("sessions").iter().find(|s| s["current"] == true).cloned().expect("current");
    assert_eq!(current["ip"], "127.0.0.3", "a forged X-Forwarded-For from an untrusted peer is ignored: {sessions}");

    // Something to report: a new access token is a security event, notified in the app.
    new_access_token(&cluster, &ada, "replicas").await;
    let account: Uuid = ada.id.parse().expect("a UUID");
    // Its email goes out first, so the mail server is free for the summary.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pending_jobs(&cluster.db, account).await > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The summary is due at the start of the next minute (UTC); the mail server is slow then.
    let now = Utc::now();
    let mut due = now + chrono::Duration::seconds(60 - i64::from(chrono::Timelike::second(&now)));
    if due - now < chrono::Duration::seconds(5) {
        due += chrono::Duration::minutes(1);
    }
    let time = due.format("%H:%M").to_string();
    let r = cluster
        .gql(
            Some(&ada.token),
            "mutation($s: DailySummaryInput!) { updatePreferences(input: { dailySummary: $s }) { dailySummary { enabled } } }",
            json!({ "s": { "enabled": true, "deliveryTime": time, "timeZone": "UTC" } }),
        )
        .await;
    assert_eq!(r["data"]["updatePreferences"]["dailySummary"]["enabled"], true, "{r}");
    gate.hold(true);
    println!("replicas: digest: due at {time} UTC, waiting");

    let (job, holder) = claimed_job(&cluster, account, "kind = 'DIGEST'", Duration::from_secs(150), || gate.held() > 0).await;
    // The replica sending it dies mid-conversation; the mail server never got the message.
    let victim = cluster.replica_of(holder);
    let killed = cluster.kill(victim).await;
    gate.hold(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let state = loop {
        let (state, by): (String, Option<Uuid>) = concierge::on_pool!(&cluster.db, p => sqlx::query_as(
            "SELECT state, locked_by FROM delivery_job WHERE job_id = $1")
            .bind(job)
            .fetch_one(p)
            .await)
        .expect("the job");
        if state != "PENDING" || by.is_some_and(|b| b != holder) {
            break state;
        }
        assert!(tokio::time::Instant::now() < deadline, "the summary was not taken over\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let takeover = killed.elapsed();
    report("digest minute", takeover);
    assert_ne!(state, "FAILED");

    let summary = |raw: &String| parse(raw).subject.starts_with("Your daily summary");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = lab.messages_to(&ada.email).await.iter().filter(|raw| summary(raw)).count();
        if n >= 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no summary arrived\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing more comes: one claim of the day, one email.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let summaries: Vec<String> = lab.messages_to(&ada.email).await.into_iter().filter(summary).collect();
    assert_eq!(summaries.len(), 1, "exactly one summary");
    let jobs: i64 = concierge::on_pool!(&cluster.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM delivery_job WHERE account_id = $1 AND kind = 'DIGEST'")
        .bind(account)
        .fetch_one(p)
        .await)
    .expect("jobs");
    assert_eq!(jobs, 1, "one summary queued, whichever replica was first");
    assert!(takeover <= TAKEOVER_BOUND, "takeover took {takeover:?}");

    // HAProxy's health check (GET /readyz) took the dead replica out; every request through
    // it is still answered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let servers = cluster.balancer.servers().await;
        if servers.get(&format!("g{victim}")).is_some_and(|s| s.starts_with("DOWN")) {
            assert_eq!(servers.values().filter(|s| s.as_str() == "UP").count(), REPLICAS - 1, "{servers:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "HAProxy still sends to the dead replica: {servers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..2 * REPLICAS {
        let me = cluster.gql(Some(&ada.token), "{ me { id } }", json!({})).await;
        assert_eq!(me["data"]["me"]["id"], ada.id.as_str(), "{me}");
    }
}

/// Creates an access token for `user`: a security event, notified in the app and by email.
async fn new_access_token(cluster: &Cluster, user: &TestUser, name: &str) {
    let r = cluster
        .gql(
            Some(&user.token),
            "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { token } }",
            json!({ "i": { "name": name, "scopes": ["profile:read"] } }),
        )
        .await;
    assert!(r["data"]["createAccessToken"]["token"].is_string(), "{r}");
}

/// A cluster that sends mail to the lab through an [`SmtpGate`].
async fn behind_a_gate(name: &str) -> Option<(MailLab, SmtpGate, Cluster)> {
    let lab = MailLab::get().await;
    let gate = SmtpGate::start(lab.smtp).await;
    let smtp = format!("smtp://127.0.0.1:{}", gate.port);
    let cluster = Cluster::start(name, &[("CONCIERGE_SMTP_URL", smtp.as_str())]).await?;
    Some((lab, gate, cluster))
}

/// The one outbox job of `account` that `which` (an SQL condition) picks, once a replica
/// claimed it and `ready` holds: its id and its holder.
async fn claimed_job(cluster: &Cluster, account: Uuid, which: &str, within: Duration, ready: impl Fn() -> bool) -> (Uuid, Uuid) {
    let sql = format!("SELECT job_id, locked_by FROM delivery_job WHERE account_id = $1 AND {which}");
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let claimed: Option<(Uuid, Option<Uuid>)> = concierge::on_pool!(&cluster.db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(account)
            .fetch_optional(p)
            .await)
        .expect("jobs");
        if let Some((job, Some(holder))) = claimed
            && ready()
        {
            return (job, holder);
        }
        assert!(tokio::time::Instant::now() < deadline, "the job was not claimed: {claimed:?}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The outbox jobs of `account` still to send.
async fn pending_jobs(db: &Db, account: Uuid) -> i64 {
    concierge::on_pool!(db, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM delivery_job WHERE account_id = $1 AND state = 'PENDING'")
        .bind(account)
        .fetch_one(p)
        .await)
    .expect("jobs")
}

#[tokio::test]
async fn takeover_after_the_mail_server_took_an_email_sends_it_again_under_the_same_message_id() {
    if skipped("takeover_after_the_mail_server_took_an_email_sends_it_again_under_the_same_message_id") {
        return;
    }
    let Some((lab, gate, mut cluster)) = behind_a_gate("takeover_after_acceptance").await else { return };
    let ada = cluster.user(&fresh("accepted")).await;
    let account: Uuid = ada.id.parse().expect("a UUID");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pending_jobs(&cluster.db, account).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the sign-up's emails are still queued\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = lab.messages_to(&ada.email).await.len();

    // A new access token is a security event: one email. The mail server takes it, and the
    // replica sending it dies before it hears so.
    gate.swallow(true);
    new_access_token(&cluster, &ada, "accepted").await;
    let (job, holder) =
        claimed_job(&cluster, account, "state = 'PENDING' AND channel = 'EMAIL'", Duration::from_secs(30), || gate.swallowed() == 1).await;
    let killed = cluster.kill(cluster.replica_of(holder)).await;
    gate.swallow(false);

    // Another replica takes the job over and sends it again: at least once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state: String = concierge::on_pool!(&cluster.db, p => sqlx::query_scalar("SELECT state FROM delivery_job WHERE job_id = $1")
            .bind(job)
            .fetch_one(p)
            .await)
        .expect("the job");
        if state != "PENDING" {
            assert_eq!(state, "SENT", "{}", cluster.logs());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the email was not taken over\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let takeover = killed.elapsed();
    report("email the mail server took", takeover);
    assert!(takeover <= TAKEOVER_BOUND, "takeover took {takeover:?}");

    // Both copies arrive, under the one Message-ID the receiver can tell them apart by.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let copies = loop {
        let copies: Vec<_> = lab.messages_to(&ada.email).await.iter().skip(before).map(|raw| parse(raw)).collect();
        if copies.len() >= 2 {
            break copies;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} copies arrived", copies.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lab.messages_to(&ada.email).await.len() - before, 2, "sent twice, no more");
    let expected = format!("{job}@");
    for copy in &copies {
        let id = copy.message_id.as_deref().expect("a Message-ID");
        assert!(id.starts_with(&expected), "the job's Message-ID: {id}");
        assert_eq!(copy.message_id, copies[0].message_id);
        assert_eq!(copy.subject, copies[0].subject);
    }
}
