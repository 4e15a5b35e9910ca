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
    owned: bool,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/mail-lab")
}

async fn run(args: &[&str]) -> String {
    let out = tokio::process::Command::new(script()).args(args).output().await.expect("scripts/mail-lab runs");
    assert!(out.status.success(), "scripts/mail-lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

impl MailLab {
    pub async fn get() -> MailLab {
        let (dir, owned) = match std::env::var("CONCIERGE_TEST_MAIL_LAB") {
            Ok(dir) => (PathBuf::from(dir), false),
            Err(_) => {
                let dir = tempfile::Builder::new().prefix("ml-").tempdir_in("/tmp").expect("lab dir").keep();
                run(&["start", dir.to_str().expect("path")]).await;
                (dir, true)
            }
        };
        let lab: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).expect("lab.json")).expect("lab JSON");
        let port = |k: &str| lab[k].as_u64().and_then(|p| u16::try_from(p).ok()).expect("port");
        MailLab { smtp: port("smtp"), dir, owned }
    }

    /// The SMTP URL the gateway sends through (the lab's exim: no auth, no TLS, local only).
    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.smtp)
    }

    /// Every message delivered for `address` so far (raw RFC 5322 text).
    pub async fn messages_to(&self, address: &str) -> Vec<String> {
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
