//! Validation cost is bounded before it is spent: the time the gateway takes to refuse a
//! fragment bomb (fragment `F{i}` spreading `F{i-1}` twice, `depth` levels: 2^depth fields
//! once expanded, in a document under 2 KB) is flat in the depth, because the selection budget
//! is counted on the parsed document with each fragment costed once, before async-graphql's
//! validation expands anything. Without it, 22 levels took 1.3-1.9 s and 30 pinned a core for
//! minutes.
//!
//! The gateway is the release binary as a child process (SQLite in a temp dir). For each depth
//! (10, 20, 30, 60) and for an anonymous and a signed-in caller, `BENCH_ROUNDS` (default 200)
//! bombs are sent one after another and each answer's round trip is timed; `{ __typename }`
//! gives the floor. Run with `cargo bench --bench validation_cost`; figures go into
//! BENCHMARKS.md. Exits non-zero when a bomb is not refused with `extensions.limit =
//! "selections"`, or when the slowest depth's median is more than 5 ms above the shallowest's.

#[path = "support/gateway.rs"]
mod gateway;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use gateway::Gateway;

const PASSWORD: &str = "Correct-Horse-9!battery";
const DEPTHS: [usize; 4] = [10, 20, 30, 60];

fn fragment_bomb(depth: usize) -> String {
    let mut doc = format!("query Bomb {{ ...F{depth} }} fragment F0 on Query {{ __typename }}");
    for i in 1..=depth {
        doc.push_str(&format!(" fragment F{i} on Query {{ ...F{p} ...F{p} }}", p = i - 1));
    }
    doc
}

/// Sends `query` `rounds` times, one after another; the round trips, sorted, and the last answer.
async fn time(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    rounds: usize,
) -> anyhow::Result<(Vec<Duration>, Value)> {
    let mut times = Vec::with_capacity(rounds);
    let mut last = Value::Null;
    for _ in 0..rounds {
        let mut request = http.post(url).json(&json!({ "query": query }));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let started = Instant::now();
        last = request.send().await.context("request")?.json().await.context("JSON answer")?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times, last))
}

fn at(times: &[Duration], q: f64) -> Duration {
    times[((times.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn run() -> anyhow::Result<bool> {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let gateway = Gateway::start()?;
    let url = format!("http://127.0.0.1:{}/graphql", gateway.port);
    let http = reqwest::Client::new();
    let (_, token) = gateway::sign_up(&http, &url, "bench@example.com", PASSWORD).await?;

    println!("| caller | document | bytes | answers | p50 | p95 | max |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let mut medians = Vec::new();
    for (caller, token) in [("anonymous", None), ("signed in", Some(token.as_str()))] {
        let (floor, _) = time(&http, &url, token, "{ __typename }", rounds).await?;
        println!(
            "| {caller} | `{{ __typename }}` | 14 | {rounds} | {} | {} | {} |",
            ms(at(&floor, 0.5)),
            ms(at(&floor, 0.95)),
            ms(at(&floor, 1.0))
        );
        for depth in DEPTHS {
            let bomb = fragment_bomb(depth);
            let (times, last) = time(&http, &url, token, &bomb, rounds).await?;
            let error = &last["errors"][0]["extensions"];
            if error["code"] != "BAD_USER_INPUT" || error["limit"] != "selections" {
                bail!("the depth-{depth} bomb was not refused by the selection budget ({caller}): {last}");
            }
            println!(
                "| {caller} | bomb, depth {depth} | {} | {rounds} | {} | {} | {} |",
                bomb.len(),
                ms(at(&times, 0.5)),
                ms(at(&times, 0.95)),
                ms(at(&times, 1.0))
            );
            medians.push(at(&times, 0.5));
        }
    }
    let (fastest, slowest) = (medians.iter().min().copied().unwrap_or_default(), medians.iter().max().copied().unwrap_or_default());
    let flat = slowest <= fastest + Duration::from_millis(5);
    println!("\nmedians from {} to {}: {}", ms(fastest), ms(slowest), if flat { "flat" } else { "NOT flat" });
    Ok(flat)
}

fn main() -> ExitCode {
    gateway::run_bench("validation_cost", run())
}
