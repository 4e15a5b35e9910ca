//! Latency of `query { me { id } }` with a personal access token while 100 log-ins run at
//! once, against the same latency on an idle gateway. Log-in hashes with argon2id (19 MiB,
//! t=2), which takes tens of milliseconds of CPU each; the figure shows whether that work
//! stays off the async workers that answer everything else.
//!
//! The gateway runs on its own runtime (the default worker count) in this process; the load
//! (100 log-in loops) and the probe (one `me` at a time, each timed) run on a second runtime.
//! Run with `scripts/bench` or `cargo bench --bench me_during_logins`; figures go into
//! BENCHMARKS.md.
#![recursion_limit = "256"] // the schema's merged Mutation object (see src/lib.rs)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use concierge::app::Application;
use concierge::config::Config;
use serde_json::{Value, json};

const PASSWORD: &str = "Correct-Horse-9!battery";
const LOGINS: usize = 100;

fn seconds() -> u64 {
    std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(15)
}

struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    fn at(&self, q: f64) -> f64 {
        let mut v = self.samples.clone();
        v.sort();
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    }

    fn line(&self, label: &str, extra: &str) -> String {
        format!(
            "| {label} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |{extra}",
            self.samples.len(),
            self.at(0.50),
            self.at(0.95),
            self.at(0.99),
            self.at(1.0)
        )
    }
}

async fn gql(client: &reqwest::Client, url: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut req = client.post(url).json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request").json().await.expect("JSON")
}

/// Times `me` one request after another for `for_secs`.
async fn probe(client: &reqwest::Client, url: &str, token: &str, for_secs: u64) -> Latencies {
    let end = Instant::now() + Duration::from_secs(for_secs);
    let mut samples = Vec::new();
    while Instant::now() < end {
        let start = Instant::now();
        let r = gql(client, url, Some(token), "{ me { id } }", json!({})).await;
        samples.push(start.elapsed());
        assert!(r["data"]["me"]["id"].is_string(), "{r}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Latencies { samples }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().join("data");
    config.database_url = std::env::var("BENCH_DATABASE_URL").ok();
    // The load is deliberate: lift the brute-force limits for it.
    config.login_attempts_per_account = u32::MAX / 2;
    config.login_attempts_per_address = u32::MAX / 2;

    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("server runtime");
    let app = server_rt.block_on(Application::build(config)).expect("gateway starts");
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    server_rt.spawn(app.run());

    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("client runtime");
    client_rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(LOGINS + 8).build().unwrap();
        let signup = "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }";
        gql(
            &client,
            &url,
            None,
            signup,
            json!({ "i": { "email": "bench@example.com", "password": PASSWORD, "firstName": "Bench", "lastName": "Mark" } }),
        )
        .await;
        let login = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
        let r = gql(&client, &url, None, login, json!({ "e": "bench@example.com", "p": PASSWORD })).await;
        let session = r["data"]["logIn"]["token"].as_str().expect("session").to_owned();
        let r = gql(
            &client,
            &url,
            Some(&session),
            "mutation { createAccessToken(input: {name: \"bench\", scopes: [\"profile:read\"]}) { token } }",
            json!({}),
        )
        .await;
        let token = r["data"]["createAccessToken"]["token"].as_str().expect("token").to_owned();

        // Warm up, then the idle baseline.
        probe(&client, &url, &token, 2).await;
        let idle = probe(&client, &url, &token, seconds()).await;

        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut loops = Vec::new();
        for _ in 0..LOGINS {
            let (client, url, stop, done) = (client.clone(), url.clone(), stop.clone(), done.clone());
            loops.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let r = gql(&client, &url, None, login, json!({ "e": "bench@example.com", "p": PASSWORD })).await;
                    assert!(r["data"]["logIn"]["token"].is_string(), "{r}");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Let the log-in queue fill before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = done.load(Ordering::Relaxed);
        let started = Instant::now();
        let loaded = probe(&client, &url, &token, seconds()).await;
        let logins_per_sec = (done.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for l in loops {
            let _ = l.await;
        }

        println!("| load | `me` requests | p50 | p95 | p99 | max |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        println!("{}", idle.line("idle", ""));
        println!("{}", loaded.line(&format!("{LOGINS} concurrent log-ins ({logins_per_sec:.1} log-ins/s)"), ""));
        let p99 = loaded.at(0.99);
        println!("\np99 of `me` under log-in load: {p99:.2} ms (goal: at most 20 ms) {}", if p99 <= 20.0 { "MET" } else { "NOT MET" });
    });
}
