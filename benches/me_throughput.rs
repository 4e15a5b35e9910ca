//! Throughput and p99 latency of `query { me { id fullName } }` with a session token, side by
//! side with a bare axum handler that authenticates the same token and reads the same row
//! from the same database, in one run. Load comes from wrk (a second process) with 64
//! keep-alive connections. Run with `scripts/bench` (or `cargo bench --bench me_throughput`);
//! the figures go into BENCHMARKS.md.
#![recursion_limit = "256"] // the schema's merged Mutation object (see src/lib.rs)

use std::process::Command;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use concierge::app::Application;
use concierge::config::Config;
use concierge::graphql::context::bearer;
use concierge::identity::model::NewAccount;
use concierge::identity::service::{ClientMeta, LogInOutcome, SignUp};
use concierge::services::Services;

fn connections() -> u32 {
    std::env::var("BENCH_CONNECTIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
}

/// Rounds per path, interleaved (bare, GraphQL, bare, …), so drift on a shared machine hits both.
fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn seconds() -> u32 {
    std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10)
}

/// The bare handler: the same authentication and the same row, serialised by hand.
async fn bare_me(State(services): State<Services>, headers: HeaderMap) -> impl IntoResponse {
    let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let viewer = match token {
        Some(t) => services.authenticate(&t).await.ok().flatten(),
        None => None,
    };
    match viewer {
        Some(v) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "data": { "me": { "id": v.account.account_id.to_string(), "fullName": v.account.full_name() } } })
                .to_string(),
        ),
        None => (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "application/json")], "{}".to_owned()),
    }
}

struct Figures {
    rps: f64,
    p99_ms: f64,
}

fn wrk(url: &str, token: &str, body: &str) -> Figures {
    let script = std::env::temp_dir().join(format!("concierge-bench-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = {body:?}\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"
        ),
    )
    .expect("write wrk script");
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{}", connections()), &format!("-d{}s", seconds()), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk is installed (scripts/bench installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("Non-2xx"), "requests failed:\n{text}");
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no throughput in wrk output:\n{text}"));
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| parse_ms(v.trim()))
        .unwrap_or_else(|| panic!("no p99 in wrk output:\n{text}"));
    Figures { rps, p99_ms: p99 }
}

fn parse_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::NAN,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::defaults();
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().join("data");
        config.database_url = std::env::var("BENCH_DATABASE_URL").ok();
        config.db_max_connections = std::env::var("BENCH_DB_CONNECTIONS").ok().and_then(|s| s.parse().ok());
        let app = Application::build(config).await.expect("gateway starts");
        let gql_port = app.port();
        let services = app.services().clone();
        tokio::spawn(app.run());

        let new = NewAccount::try_from(SignUp {
            email: "bench@example.com".into(),
            password: "Correct-Horse-9!battery".into(),
            first_name: "Bench".into(),
            last_name: "Mark".into(),
        })
        .expect("valid");
        services.identity.sign_up(new, None).await.expect("sign up");
        let session = match services
            .identity
            .log_in("bench@example.com", "Correct-Horse-9!battery".into(), ClientMeta::default())
            .await
            .expect("log in")
        {
            LogInOutcome::Session(session) => session,
            LogInOutcome::Challenge { .. } => unreachable!("the bench account has no second factor"),
        };

        let bare = axum::Router::new().route("/me", post(bare_me)).with_state(services.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare_port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, bare).await });
        tokio::time::sleep(Duration::from_millis(200)).await;

        let token = session.token.clone();
        let rounds = tokio::task::spawn_blocking(move || {
            let query = r#"{"query":"query { me { id fullName } }"}"#;
            let bare_url = format!("http://127.0.0.1:{bare_port}/me");
            let gql_url = format!("http://127.0.0.1:{gql_port}/graphql");
            // Warm both paths (connections, statement caches) before measuring.
            for url in [&bare_url, &gql_url] {
                let _ = Command::new("wrk").args(["-t1", "-c8", "-d2s", url.as_str()]).output();
            }
            (0..rounds()).map(|_| (wrk(&bare_url, &token, ""), wrk(&gql_url, &token, query))).collect::<Vec<_>>()
        })
        .await
        .unwrap();

        let backend = format!("{:?}", services.db.backend());
        println!(
            "me_throughput ({backend}, {} connections, {} rounds of {}s per path, interleaved, wrk -t2)",
            connections(),
            rounds.len(),
            seconds()
        );
        println!("| round | bare req/s | bare p99 | GraphQL req/s | GraphQL p99 | ratio |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
        for (i, (bare, gql)) in rounds.iter().enumerate() {
            println!(
                "| {} | {:.0} | {:.2} ms | {:.0} | {:.2} ms | {:.2} |",
                i + 1,
                bare.rps,
                bare.p99_ms,
                gql.rps,
                gql.p99_ms,
                gql.rps / bare.rps
            );
        }
        let bare = median(rounds.iter().map(|r| r.0.rps).collect());
        let gql = median(rounds.iter().map(|r| r.1.rps).collect());
        let bare_p99 = median(rounds.iter().map(|r| r.0.p99_ms).collect());
        let gql_p99 = median(rounds.iter().map(|r| r.1.p99_ms).collect());
        println!("| median | {bare:.0} | {bare_p99:.2} ms | {gql:.0} | {gql_p99:.2} ms | {:.2} |", gql / bare);
    });
}
