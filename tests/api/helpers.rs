//! The test harness: `TestApp::spawn()` starts the real server on 127.0.0.1:0 with its own
//! database (a temp SQLite file, or a fresh PostgreSQL schema when CONCIERGE_TEST_DB=postgres,
//! dropped afterwards), and a client that speaks to it over HTTP and WebSocket.

use std::time::Duration;

use concierge::app::Application;
use concierge::config::Config;
use concierge::services::Services;
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "Correct-Horse-9!battery";

pub struct TestApp {
    pub base: String,
    pub port: u16,
    /// Where `/metrics` listens when `metrics_bind` gives it an address of its own.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The database the server uses, for a second process's worth of services on it.
    pub database_url: String,
    pub services: Services,
    /// The schema the server answers with (what the data-export builder reads through).
    pub schema: concierge::graphql::ConciergeSchema,
    client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    pg_schema: Option<(String, String)>,
}

/// A signed-up, logged-in account.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
    pub workspace_id: String,
}

fn pg_url() -> String {
    std::env::var("CONCIERGE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn on_postgres() -> bool {
    std::env::var("CONCIERGE_TEST_DB").is_ok_and(|v| v == "postgres")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the server with the test defaults changed by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with_clock(adjust, std::sync::Arc::new(concierge::clock::SystemClock)).await
    }

    /// Starts the server on `clock` without its background queue workers (emails and pushes,
    /// daily summaries, webhook deliveries, calendar syncs and writes, deletions, exports):
    /// the test steps them with `run_once`, moving the clock where a wait must pass.
    pub async fn spawn_stepped(adjust: impl FnOnce(&mut Config), clock: &std::sync::Arc<concierge::clock::ManualClock>) -> TestApp {
        Self::spawn_with_clock(
            |c| {
                c.queue_workers = false;
                adjust(c);
            },
            clock.clone(),
        )
        .await
    }

    /// Starts the server with scheduled work (deliveries, daily summaries) on `clock`.
    pub async fn spawn_with_clock(adjust: impl FnOnce(&mut Config), clock: concierge::clock::SharedClock) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            concierge::telemetry::init_tracing("info,concierge=debug", Default::default(), std::io::stdout);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::defaults();
        config.bind = "127.0.0.1:0".parse().expect("address");
        config.data_dir = dir.path().join("data");
        config.public_url = None;
        let mut pg_schema = None;
        if on_postgres() {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&pg_url()).await.expect("PostgreSQL at CONCIERGE_TEST_PG_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.expect("create schema");
            admin.close().await;
            config.database_url = Some(format!("{}?options[search_path]={schema}", pg_url()));
            pg_schema = Some((pg_url(), schema));
        } else {
            config.database_url = None; // the embedded default inside the temp data folder
        }
        adjust(&mut config);
        let database_url = config.database_url();
        let app = Application::build_with_clock(config, clock).await.expect("application starts");
        let port = app.port();
        let metrics_addr = app.metrics_addr();
        let services = app.services().clone();
        let schema = app.schema().clone();
        let shutdown = app.shutdown_handle();
        let server = tokio::spawn(app.run());
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            port,
            metrics_addr,
            database_url,
            services,
            schema,
            client: reqwest::Client::new(),
            shutdown,
            server: Some(server),
            _dir: dir,
            pg_schema,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// POSTs a GraphQL request and returns the JSON body (whatever the status).
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("request sent");
        res.json().await.expect("JSON body")
    }

    /// Like `gql`, sent with a `User-Agent` header.
    pub async fn gql_as(&self, user_agent: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("user-agent", user_agent)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request sent").json().await.expect("JSON body")
    }

    /// POSTs raw bytes with the given content type and returns status, headers and body.
    pub async fn post_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> (StatusCode, HeaderMap, String) {
        let res = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("content-type", content_type)
            .header("accept", "application/graphql-response+json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, res.text().await.expect("body"))
    }

    pub async fn get(&self, path: &str, accept: &str) -> (StatusCode, HeaderMap, String) {
        let res = self.client.get(format!("{}{path}", self.base)).header("accept", accept).send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, res.text().await.expect("body"))
    }

    pub async fn sign_up(&self, email: &str, first: &str, last: &str) -> Value {
        self.gql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { user { id email fullName status } } }",
            json!({ "i": { "email": email, "password": PASSWORD, "firstName": first, "lastName": last } }),
        )
        .await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { token expiresAt user { id } } }",
            json!({ "i": { "email": email, "password": password } }),
        )
        .await
    }

    /// Logs in with the password of an account with two-factor on; the challenge to complete.
    pub async fn two_factor_challenge(&self, email: &str) -> String {
        let r = self
            .gql(
                None,
                "mutation($i: LogInInput!) { logIn(input: $i) { token twoFactorChallenge { challenge } } }",
                json!({ "i": { "email": email, "password": PASSWORD } }),
            )
            .await;
        assert!(r["data"]["logIn"]["token"].is_null(), "{r}");
        r["data"]["logIn"]["twoFactorChallenge"]["challenge"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
    }

    /// Signs up `email` and logs in; returns the user with its token and personal workspace.
    pub async fn user(&self, email: &str) -> TestUser {
        let r = self.sign_up(email, "Test", "User").await;
        assert!(r.get("errors").is_none(), "sign-up failed: {r}");
        let r = self.log_in(email, PASSWORD).await;
        let token = r["data"]["logIn"]["token"].as_str().unwrap_or_else(|| panic!("log-in failed: {r}")).to_owned();
        let me = self.gql(Some(&token), "{ me { id email memberships { workspace { id } } } }", json!({})).await;
        TestUser {
            id: me["data"]["me"]["id"].as_str().expect("id").to_owned(),
            email: me["data"]["me"]["email"].as_str().expect("email").to_owned(),
            workspace_id: me["data"]["me"]["memberships"][0]["workspace"]["id"].as_str().expect("workspace").to_owned(),
            token,
        }
    }

    /// A personal access token of `user` carrying `scopes`.
    pub async fn access_token(&self, user: &TestUser, scopes: &[&str]) -> String {
        let r = self
            .gql(
                Some(&user.token),
                "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { token } }",
                json!({ "i": { "name": format!("integration {}", uuid::Uuid::now_v7()), "scopes": scopes } }),
            )
            .await;
        r["data"]["createAccessToken"]["token"].as_str().unwrap_or_else(|| panic!("createAccessToken: {r}")).to_owned()
    }

    /// Invites `email` to the workspace as `actor`; the answer's `data.inviteWorkspaceMember`
    /// is the invitation (`id email role state`).
    pub async fn invite(&self, actor: &TestUser, workspace_id: &str, email: &str, role: &str) -> Value {
        self.gql(
            Some(&actor.token),
            "mutation($i: InviteWorkspaceMemberInput!) { inviteWorkspaceMember(input: $i) { id email role state } }",
            json!({ "i": { "workspaceId": workspace_id, "email": email, "role": role } }),
        )
        .await
    }

    /// Joins a workspace the way anyone does: `actor` invites `email`, and the invitee (an
    /// account signed up with the test password) signs in and accepts. Returns the failed
    /// invitation's answer, or the acceptance (`data.acceptInvitation { role status user { email } }`).
    pub async fn add_member(&self, actor: &TestUser, workspace_id: &str, email: &str, role: &str) -> Value {
        let invited = self.invite(actor, workspace_id, email, role).await;
        let Some(id) = invited["data"]["inviteWorkspaceMember"]["id"].as_str() else { return invited };
        let Some(token) = self.log_in(email, PASSWORD).await["data"]["logIn"]["token"].as_str().map(str::to_owned) else {
            return invited;
        };
        let accept = "mutation($i: AnswerInvitationInput!) { acceptInvitation(input: $i) { role status user { email } } }";
        self.gql(Some(&token), accept, json!({ "i": { "id": id } })).await
    }

    pub async fn ws(&self, protocol: &str) -> WsClient {
        let mut request = format!("ws://127.0.0.1:{}/graphql", self.port).into_client_request().expect("ws request");
        request.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (stream, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket connects");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server must agree on the subprotocol"
        );
        WsClient { stream }
    }

    /// A `graphql-transport-ws` connection signed in with `token`, acknowledged.
    pub async fn ws_signed_in(&self, token: &str) -> WsClient {
        let mut ws = self.ws("graphql-transport-ws").await;
        ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;
        let ack = ws.next_json().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    /// Waits (up to 5 s) until this server has `n` listeners for `topic`: a subscription sent
    /// over WebSocket is registered once its listener is.
    pub async fn listening(&self, topic: concierge::fanout::Topic, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.services.fanout.listeners(topic) < n {
            assert!(tokio::time::Instant::now() < deadline, "no {n} listeners for {topic:?} within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Starts a graceful shutdown, as SIGTERM would.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits for the server task to finish after `begin_shutdown`.
    pub async fn stopped(&mut self, within: Duration) -> anyhow::Result<()> {
        let server = self.server.take().expect("server running");
        tokio::time::timeout(within, server).await.expect("server stops in time").expect("server task")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((url, schema)) = self.pg_schema.take() {
            // Dropping needs async I/O; do it on a thread of its own so Drop works inside a runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                        drop_schema(&pool, &schema).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Drops a test's schema. The server's connections may still hold locks in it: a task that
/// was inside a transaction when the server stopped leaves its connection idle in that
/// transaction until this runtime (blocked here, in `Drop`) rolls it back. So the drop waits
/// a little, then ends the sessions holding locks on the schema's tables, and tries again.
async fn drop_schema(pool: &sqlx::PgPool, schema: &str) {
    for _ in 0..5 {
        let Ok(mut conn) = pool.acquire().await else { return };
        let _ = sqlx::query("SET lock_timeout = '2s'").execute(&mut *conn).await;
        if sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&mut *conn).await.is_ok() {
            return;
        }
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
        )
        .bind(schema)
        .execute(&mut *conn)
        .await;
    }
}

pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// What the server sent next.
#[derive(Debug)]
pub enum WsEvent {
    Json(Value),
    Closed(Option<u16>),
}

impl WsClient {
    pub async fn send(&mut self, message: Value) {
        self.stream.send(Message::Text(message.to_string().into())).await.expect("ws send");
    }

    /// The next text message or close, skipping pings; panics after `within`.
    pub async fn next_within(&mut self, within: Duration) -> WsEvent {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next()).await.expect("a WebSocket message in time");
            match msg {
                Some(Ok(Message::Text(t))) => return WsEvent::Json(serde_json::from_str(&t).expect("JSON message")),
                Some(Ok(Message::Close(frame))) => return WsEvent::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return WsEvent::Closed(None),
            }
        }
    }

    /// Whatever the server sends within `within`, or None if it stays silent.
    pub async fn within(&mut self, within: Duration) -> Option<WsEvent> {
        loop {
            match tokio::time::timeout(within, self.stream.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => return Some(WsEvent::Json(serde_json::from_str(&t).expect("JSON message"))),
                Ok(Some(Ok(Message::Close(frame)))) => return Some(WsEvent::Closed(frame.map(|f| u16::from(f.code)))),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return Some(WsEvent::Closed(None)),
            }
        }
    }

    pub async fn next_json(&mut self) -> Value {
        match self.next_within(Duration::from_secs(10)).await {
            WsEvent::Json(v) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The `extensions.code` of each error in a response.
pub fn codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|es| es.iter().filter_map(|e| e["extensions"]["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The first error's code and field.
pub fn error_of(response: &Value) -> (String, Option<String>) {
    let e = &response["errors"][0];
    (
        e["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {response}")).to_owned(),
        e["extensions"]["field"].as_str().map(str::to_owned),
    )
}

/// Runs a script of tests/js with Node and `args` (without blocking the runtime the server
/// runs on); its packages come from `scripts/test` (npm ci). Whether it exited 0, and its stdout.
pub async fn node(script: &str, args: &[&str]) -> (bool, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(dir.join("node_modules").exists(), "tests/js/node_modules is missing: run scripts/test (it runs npm ci)");
    let out = tokio::process::Command::new("node").arg(dir.join(script)).args(args).current_dir(&dir).output().await.expect("node runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A TLS acceptor with a self-signed certificate made the common way (`openssl req -x509`,
/// which marks it CA:TRUE), as a self-hosted server has, for `subject_alt_name` (e.g.
/// `IP:127.0.0.1` or `DNS:a.test,DNS:b.test`); and the certificate's PEM file in `dir`.
pub async fn self_signed_acceptor(
    dir: &std::path::Path,
    subject: &str,
    subject_alt_name: &str,
) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = tokio::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"])
        .args(["-subj", &format!("/CN={subject}"), "-addext", &format!("subjectAltName={subject_alt_name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .await
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let chain = vec![CertificateDer::from_pem_file(&cert).expect("certificate")];
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, PrivateKeyDer::from_pem_file(&key).expect("key"))
    .expect("server config");
    (tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)), cert)
}

/// Makes the database refuse a row of `table` whose `column` is `value` (a trigger), so a
/// test can fail one statement of a transaction on either backend; [`allow_inserts`] undoes it.
pub async fn refuse_inserts(db: &concierge::db::Db, table: &str, column: &str, value: &str) {
    let statements = match db.backend() {
        concierge::db::Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN NEW.{column} = '{value}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
        concierge::db::Backend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION refuse_by_test() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                .to_owned(),
            format!(
                "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW WHEN (NEW.{column} = '{value}') \
                 EXECUTE FUNCTION refuse_by_test()"
            ),
        ],
    };
    for sql in statements {
        concierge::on_pool!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(p).await.map(drop))
            .expect("the trigger is made");
    }
}

/// Undoes [`refuse_inserts`].
pub async fn allow_inserts(db: &concierge::db::Db, table: &str) {
    let sql = match db.backend() {
        concierge::db::Backend::Sqlite => format!("DROP TRIGGER refuse_{table}"),
        concierge::db::Backend::Postgres => format!("DROP TRIGGER refuse_{table} ON {table}"),
    };
    concierge::on_pool!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(p).await.map(drop)).expect("the trigger is dropped");
}
