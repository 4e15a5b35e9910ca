#![allow(dead_code)]
//! The release gateway as a child process for the benchmarks: SQLite in a temp dir (or, with
//! `BENCH_DB=postgres`, a fresh database on `CONCIERGE_TEST_PG_URL`), its port read from its
//! `serving` log line, its resident set read from /proc, killed when dropped so a failing run
//! leaves nothing behind.

use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// The gateway as a child process; killed when dropped, so a failing run leaves nothing behind.
pub struct Gateway {
    child: Child,
    pub port: u16,
    _data: tempfile::TempDir,
    /// The PostgreSQL server and the database made for this run, dropped with it.
    postgres: Option<(String, String)>,
}

/// Whether the bench runs the gateway on PostgreSQL (`BENCH_DB=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("BENCH_DB").is_ok_and(|v| v == "postgres")
}

/// The store a figure was measured on, for the bench's report.
pub fn store_name() -> &'static str {
    if on_postgres() { "PostgreSQL" } else { "SQLite" }
}

/// A new database on the PostgreSQL server (`CONCIERGE_TEST_PG_URL`): (server URL, name).
fn new_database() -> anyhow::Result<(String, String)> {
    let server = std::env::var("CONCIERGE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    psql(&server, &format!("CREATE DATABASE {name}"))?;
    Ok((server, name))
}

fn database_url((server, name): &(String, String)) -> String {
    format!("{}/{name}", server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base))
}

fn psql(server: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql").args([server, "-v", "ON_ERROR_STOP=1", "-qc", sql]).output().context("running psql")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl Gateway {
    pub fn start() -> anyhow::Result<Gateway> {
        Gateway::start_with(&[])
    }

    /// Starts it with extra environment settings.
    pub fn start_with(settings: &[(&str, &str)]) -> anyhow::Result<Gateway> {
        let data = tempfile::tempdir().context("temp dir")?;
        let postgres = if on_postgres() { Some(new_database()?) } else { None };
        let database_url = match &postgres {
            Some(p) => database_url(p),
            None => format!("sqlite://{}", data.path().join("concierge.db").display()),
        };
        Gateway::spawn(data, &database_url, settings, postgres)
    }

    /// `n` replicas on one new PostgreSQL database, sharing one secret key, each with its own
    /// data folder (`BENCH_DB=postgres` is required for more than one). The first drops the
    /// database when it is dropped.
    pub fn start_replicas(n: usize) -> anyhow::Result<Vec<Gateway>> {
        if n == 1 {
            return Ok(vec![Gateway::start()?]);
        }
        if !on_postgres() {
            bail!("{n} replicas share one database: set BENCH_DB=postgres");
        }
        let postgres = new_database()?;
        let url = database_url(&postgres);
        let key = {
            use base64::Engine as _;
            let bytes: Vec<u8> = uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).copied().collect();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        let settings = [("CONCIERGE_SECRET_KEY", key.as_str())];
        let mut owner = Some(postgres);
        (0..n).map(|_| Gateway::spawn(tempfile::tempdir().context("temp dir")?, &url, &settings, owner.take())).collect()
    }

    fn spawn(
        data: tempfile::TempDir,
        database_url: &str,
        settings: &[(&str, &str)],
        postgres: Option<(String, String)>,
    ) -> anyhow::Result<Gateway> {
        let binary = env!("CARGO_BIN_EXE_concierge");
        if !std::path::Path::new(binary).exists() {
            bail!("no gateway binary at {binary}: run `cargo build --release` first");
        }
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Allocator tuning passes through, to compare settings.
            .envs(std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("MALLOC_")))
            .env("CONCIERGE_BIND", "127.0.0.1:0")
            .env("CONCIERGE_DATA_DIR", data.path())
            .env("DATABASE_URL", database_url)
            // JSON logs, so the bound port can be read from the `serving` line.
            .env("CONCIERGE_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,concierge::app=info")
            // The benches sign up their users (up to thousands) from this one address: the
            // per-address sign-up limit is lifted for them.
            .env("CONCIERGE_SIGNUPS_PER_ADDRESS", "1000000")
            .envs(settings.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let (found, port) = std::sync::mpsc::sync_channel(1);
        // Reads the log until the process ends: the port once, everything else to stderr.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let entry: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let addr = entry["addr"].as_str().filter(|_| entry["message"] == "serving");
                match addr.and_then(|a| a.parse::<std::net::SocketAddr>().ok()) {
                    Some(addr) => {
                        let _ = found.send(addr.port());
                    }
                    None => eprintln!("gateway: {line}"),
                }
            }
        });
        let mut gateway = Gateway { child, port: 0, _data: data, postgres };
        gateway.port =
            port.recv_timeout(Duration::from_secs(60)).context("the gateway exited or did not log its `serving` line within 60 s")?;
        Ok(gateway)
    }

    #[allow(dead_code)]
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(&format!("/proc/{}/status", self.child.id()))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((server, name)) = &self.postgres {
            let _ = psql(server, &format!("DROP DATABASE {name} WITH (FORCE)"));
        }
    }
}

/// `VmRSS` of a process, from its `/proc/<pid>/status`.
pub fn rss_kib(status: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(status).with_context(|| format!("reading {status}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {status}"))
}

/// One GraphQL request over HTTP: its `data`, or an error carrying the GraphQL errors.
pub async fn gql(http: &reqwest::Client, url: &str, token: Option<&str>, query: &str, variables: Value) -> anyhow::Result<Value> {
    let mut request = http.post(url).json(&serde_json::json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let reply: Value = request.send().await.context("GraphQL request")?.json().await.context("GraphQL reply")?;
    if !reply["errors"].is_null() {
        bail!("GraphQL errors: {reply}");
    }
    Ok(reply["data"].clone())
}

/// Signs a new user up and logs them in: (user id, session token).
pub async fn sign_up(http: &reqwest::Client, url: &str, email: &str, password: &str) -> anyhow::Result<(String, String)> {
    let sign_up = "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }";
    let person = serde_json::json!({ "email": email, "password": password, "firstName": "Bench", "lastName": "User" });
    let data = gql(http, url, None, sign_up, serde_json::json!({ "i": person })).await?;
    let id = data["signUp"]["user"]["id"].as_str().context("signUp gave no id")?.to_owned();
    let log_in = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
    let data = gql(http, url, None, log_in, serde_json::json!({ "e": email, "p": password })).await?;
    Ok((id, data["logIn"]["token"].as_str().context("logIn gave no token")?.to_owned()))
}

/// A bench's `main`: runs `bench` on a multi-threaded runtime and fails the process when it
/// errs or reports a goal not met (`Ok(false)`).
pub fn run_bench(name: &str, bench: impl Future<Output = anyhow::Result<bool>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{name} bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
