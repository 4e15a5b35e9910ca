//! The real mail servers tests talk to: the lab `scripts/test` started for the whole run
//! (CONCIERGE_TEST_MAIL_LAB=its folder), or, when a test runs on its own, a private lab
//! started here and stopped when dropped. Mail to an address no lab user owns lands in the
//! `sink` user's INBOX with an `X-Original-To` header, so each test uses fresh addresses.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub struct MailLab {
    dir: PathBuf,
    pub smtp: u16,
    /// IMAP with STARTTLS offered (plaintext login allowed on loopback).
    pub imap: u16,
    /// IMAP over implicit TLS.
    pub imaps: u16,
    /// Dovecot submission over implicit TLS (AUTH PLAIN and XOAUTH2), relaying through exim.
    pub submissions: u16,
    /// The OAuth2 stand-in (scripts/oauth-standin) Dovecot checks tokens with.
    pub oauth: u16,
    owned: bool,
}

/// The one client the OAuth stand-in knows.
pub const OAUTH_CLIENT_ID: &str = "concierge-test";
pub const OAUTH_CLIENT_SECRET: &str = "concierge-test-secret";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/mail-lab")
}

async fn run(args: &[&str]) -> String {
    run_with(args, &[]).await
}

async fn run_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new(script()).args(args).envs(env.iter().copied()).output().await.expect("scripts/mail-lab runs");
    assert!(out.status.success(), "scripts/mail-lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

impl MailLab {
    pub async fn get() -> MailLab {
        match std::env::var("CONCIERGE_TEST_MAIL_LAB") {
            Ok(dir) => Self::open(PathBuf::from(dir), false),
            Err(_) => Self::private().await,
        }
    }

    /// A lab of this test's own, for tests that take its servers down.
    pub async fn private() -> MailLab {
        Self::private_with(&[]).await
    }

    /// A lab of this test's own, started with `scripts/mail-lab`'s environment settings
    /// (`MAIL_LAB_CERT=common`, …).
    pub async fn private_with(env: &[(&str, &str)]) -> MailLab {
        let dir = tempfile::Builder::new().prefix("ml-").tempdir_in("/tmp").expect("lab dir").keep();
        run_with(&["start", dir.to_str().expect("path")], env).await;
        Self::open(dir, true)
    }

    fn open(dir: PathBuf, owned: bool) -> MailLab {
        let lab: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).expect("lab.json")).expect("lab JSON");
        let port = |k: &str| lab[k].as_u64().and_then(|p| u16::try_from(p).ok()).expect("port");
        MailLab {
            smtp: port("smtp"),
            imap: port("imap"),
            imaps: port("imaps"),
            submissions: port("submissions"),
            oauth: port("oauth"),
            dir,
            owned,
        }
    }

    /// The certificate every TLS port of the lab presents (trust it as the only extra root).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("tls/cert.pem")
    }

    /// A new mail user with a random name starting with `prefix`; returns (name, password).
    pub async fn new_user(&self, prefix: &str) -> (String, String) {
        let name = format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        self.set_password(&name, &password).await;
        (name, password)
    }

    pub async fn set_password(&self, user: &str, password: &str) {
        run(&["adduser", self.dir.to_str().expect("path"), user, password]).await;
    }

    /// Takes Dovecot down (an outage); mail is kept.
    pub async fn stop_imap(&self) {
        run(&["stop-imap", self.dir.to_str().expect("path")]).await;
    }

    pub async fn start_imap(&self) {
        run(&["start-imap", self.dir.to_str().expect("path")]).await;
    }

    /// Runs `doveadm` against the lab's Dovecot.
    pub async fn doveadm(&self, args: &[&str]) -> String {
        let conf = self.dir.join("dovecot.conf");
        let out = tokio::process::Command::new("doveadm").arg("-c").arg(&conf).args(args).output().await.expect("doveadm runs");
        assert!(out.status.success(), "doveadm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Signs in to the user's INBOX over plain IMAP on loopback (the test's own client, not
    /// the connector under test).
    pub async fn imap_session(&self, user: &str, password: &str) -> ImapSession {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.imap)).await.expect("IMAP connects");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting").expect("greeting");
        client.login(user, password).await.map_err(|(e, _)| e).expect("IMAP login")
    }

    /// The OAuth stand-in's base URL.
    pub fn oauth_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.oauth)
    }

    /// Calls one of the stand-in's admin endpoints (`expire`, `revoke`, `ttl`, `issue`).
    pub async fn oauth_admin(&self, action: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}/admin/{action}", self.oauth_url()))
            .json(&body)
            .send()
            .await
            .expect("the OAuth stand-in answers");
        assert!(response.status().is_success(), "admin/{action}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    /// How many token requests of each grant the stand-in has served for `email`.
    pub async fn oauth_stats(&self, email: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/admin/stats", self.oauth_url()))
            .query(&[("email", email)])
            .send()
            .await
            .expect("the OAuth stand-in answers")
            .json()
            .await
            .expect("stats JSON")
    }

    /// Every message in one of the user's folders, raw, in UID order.
    pub async fn folder(&self, user: &str, password: &str, folder: &str) -> Vec<String> {
        use futures_util::TryStreamExt as _;
        let mut session = self.imap_session(user, password).await;
        let selected = session.examine(folder).await.expect("EXAMINE");
        let mut out = Vec::new();
        if selected.exists > 0 {
            let fetches: Vec<_> = session.uid_fetch("1:*", "BODY.PEEK[]").await.expect("FETCH").try_collect().await.expect("FETCH");
            out = fetches.iter().filter_map(|f| f.body().map(|b| String::from_utf8_lossy(b).into_owned())).collect();
        }
        session.logout().await.ok();
        out
    }

    /// Waits (up to 15 s) until the user's folder holds `n` messages.
    pub async fn wait_in_folder(&self, user: &str, password: &str, folder: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.folder(user, password, folder).await;
            if found.len() >= n {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "{n} message(s) did not reach {user}'s {folder} (got {})", found.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// APPENDs each message to the user's INBOX, with the given internal date when set
    /// (`"01-Jan-2026 10:00:00 +0000"`).
    pub async fn append(&self, user: &str, password: &str, messages: &[(Vec<u8>, Option<String>)]) {
        let mut session = self.imap_session(user, password).await;
        for (raw, date) in messages {
            let quoted = date.as_ref().map(|d| format!("\"{d}\""));
            session.append("INBOX", None, quoted.as_deref(), raw).await.expect("APPEND");
        }
        session.logout().await.ok();
    }

    /// The \Seen flag of each message in the INBOX, in UID order.
    pub async fn seen_flags(&self, user: &str, password: &str) -> Vec<bool> {
        use futures_util::TryStreamExt as _;
        let mut session = self.imap_session(user, password).await;
        session.examine("INBOX").await.expect("EXAMINE");
        let fetches: Vec<_> = session.uid_fetch("1:*", "FLAGS").await.expect("FETCH").try_collect().await.expect("FETCH");
        let seen = fetches.iter().map(|f| f.flags().any(|fl| matches!(fl, async_imap::types::Flag::Seen))).collect();
        session.logout().await.ok();
        seen
    }

    /// The SMTP URL the gateway sends through (the lab's exim: no auth, no TLS, local only).
    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.smtp)
    }

    /// The messages delivered for `address` so far (raw RFC 5322 text), but for the
    /// verification email every sign-up sends: tests of other mail count only theirs.
    pub async fn messages_to(&self, address: &str) -> Vec<String> {
        let mut all = self.all_messages_to(address).await;
        all.retain(|raw| parse(raw).subject != SIGN_UP_VERIFICATION);
        all
    }

    /// Every message delivered for `address` so far (raw RFC 5322 text).
    pub async fn all_messages_to(&self, address: &str) -> Vec<String> {
        let out = run(&["messages", self.dir.to_str().expect("path"), "sink"]).await;
        let header = format!("x-original-to: {}", address.to_lowercase());
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|m| m["raw"].as_str().map(str::to_owned))
            .filter(|raw| raw.to_lowercase().lines().any(|l| l.trim_end() == header))
            .collect()
    }

    /// Waits (up to 15 s) until `n` messages have been delivered for `address`.
    pub async fn wait_for(&self, address: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.messages_to(address).await;
            if found.len() >= n {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "{n} message(s) for {address} did not arrive (got {})", found.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The subject of the email a new account gets (in English, the language of a new account).
pub const SIGN_UP_VERIFICATION: &str = "Confirm your email address";

pub type ImapSession = async_imap::Session<tokio::net::TcpStream>;

impl Drop for MailLab {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::process::Command::new(script()).arg("stop").arg(&self.dir).output();
        }
    }
}

/// A decoded message: subject, plain-text body and the HTML alternative, if any.
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub message_id: Option<String>,
}

pub fn parse(raw: &str) -> Mail {
    let m = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("a parseable message");
    Mail {
        subject: m.subject().unwrap_or_default().to_owned(),
        text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        // body_html converts a text-only message to HTML; only a real HTML part counts.
        html: (!m.html_body.is_empty() && m.html_body != m.text_body).then(|| m.body_html(0).map(|t| t.into_owned()).unwrap_or_default()),
        message_id: m.message_id().map(str::to_owned),
    }
}
