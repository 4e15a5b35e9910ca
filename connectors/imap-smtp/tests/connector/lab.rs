//! The real mail lab (scripts/mail-lab: Dovecot + exim on 127.0.0.1) and a plain IMAP client
//! of the tests' own, used to put mail in and look at it, never through the connector.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_imap::Session;
use chrono::{DateTime, Utc};
use concierge_connector_imap_smtp::{ImapSmtpConnector, Options};
use concierge_connector_sdk::{Account, Credentials, MailConnector, Secret, SharedConnector, async_trait, kit};
use futures_util::TryStreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// One lab: the shared one of the run (`CONCIERGE_TEST_MAIL_LAB`, started by scripts/test),
/// or a private one this test starts and stops on drop.
pub struct Lab {
    pub dir: PathBuf,
    owned: bool,
    pub imap: u16,
    pub imaps: u16,
    pub submission: u16,
    /// The lab's OAuth2 stand-in (scripts/oauth-standin), if the lab has one: see
    /// [`Lab::oauth`].
    oauth: Option<u16>,
    pub cert_pem: Vec<u8>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mail-lab")
}

impl Lab {
    pub fn start() -> Lab {
        Self::start_with(false, None)
    }

    /// A lab of the test's own whose IMAP does not offer IDLE.
    pub fn start_without_idle() -> Lab {
        Self::start_with(true, None)
    }

    /// A lab of the test's own whose Dovecot allows one IMAP session per user: the next is
    /// refused with `NO [LIMIT]`, Dovecot's own throttling.
    pub fn start_allowing_one_session() -> Lab {
        Self::start_with(false, Some(1))
    }

    fn start_with(no_idle: bool, max_connections: Option<u32>) -> Lab {
        let own = no_idle || max_connections.is_some();
        let shared = std::env::var("CONCIERGE_TEST_MAIL_LAB").ok().filter(|d| !d.is_empty() && !own);
        let (dir, owned) = match shared {
            Some(dir) => (PathBuf::from(dir), false),
            None => {
                // Short path: Dovecot's sockets live under it (107-byte limit).
                let out = Command::new("mktemp").args(["-d", "/tmp/ml-XXXXXX"]).output().expect("mktemp");
                let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                let status = Command::new(script())
                    .arg("start")
                    .arg(&dir)
                    .env("MAIL_LAB_NO_IDLE", if no_idle { "1" } else { "0" })
                    .env("MAIL_LAB_MAX_CONNECTIONS", max_connections.unwrap_or(1000).to_string())
                    .stdout(std::process::Stdio::null())
                    .status()
                    .expect("run scripts/mail-lab");
                assert!(status.success(), "scripts/mail-lab start {} failed", dir.display());
                (dir, true)
            }
        };
        let info: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("lab.json")).expect("lab.json")).expect("lab.json is JSON");
        let port = |k: &str| info[k].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap_or_else(|| panic!("lab.json has no {k}"));
        Lab {
            imap: port("imap"),
            imaps: port("imaps"),
            submission: port("submission"),
            // A lab started by an older scripts/mail-lab has none; only the OAuth2 tests care.
            oauth: info["oauth"].as_u64().and_then(|p| u16::try_from(p).ok()),
            cert_pem: std::fs::read(dir.join("tls/cert.pem")).expect("lab certificate"),
            dir,
            owned,
        }
    }

    /// A fresh user with a unique, lower-case name.
    pub async fn add_user(&self, prefix: &str) -> (String, String) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("{prefix}{}x{}x{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let password = format!("pw-{name}");
        let status = tokio::process::Command::new(script())
            .arg("adduser")
            .arg(&self.dir)
            .arg(&name)
            .arg(&password)
            .status()
            .await
            .expect("run adduser");
        assert!(status.success(), "adduser {name} failed");
        // Dovecot re-reads the users file at most once a second, so a user added in the
        // same second as another sign-in is unknown for a moment: wait until it resolves.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let known = tokio::process::Command::new("doveadm")
                .arg("-c")
                .arg(self.dir.join("dovecot.conf"))
                .args(["auth", "lookup", &name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await
                .expect("run doveadm auth lookup");
            if known.success() {
                break;
            }
            assert!(Instant::now() < deadline, "Dovecot did not learn about user {name} within 5 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (name, password)
    }

    /// The lab's OAuth2 stand-in, which Dovecot asks about every XOAUTH2 token.
    pub fn oauth(&self) -> StandIn {
        StandIn {
            port: self.oauth.unwrap_or_else(|| {
                panic!(
                    "the lab in {} has no OAuth2 stand-in (no \"oauth\" in lab.json): restart it with the current scripts/mail-lab",
                    self.dir.display()
                )
            }),
        }
    }

    pub fn doveadm(&self, args: &[&str]) {
        let status = Command::new("doveadm").arg("-c").arg(self.dir.join("dovecot.conf")).args(args).status().expect("run doveadm");
        assert!(status.success(), "doveadm {args:?} failed");
    }

    pub fn options(&self) -> Options {
        Options {
            extra_root_certs_pem: Some(self.cert_pem.clone()),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(20),
            // The lab listens on loopback, which the outbound policy refuses by default.
            outbound: concierge_connector_sdk::OutboundPolicy::allowing([
                "127.0.0.0/8".parse().expect("CIDR"),
                "::1/128".parse().expect("CIDR"),
            ]),
            ..Options::default()
        }
    }

    /// Settings for the generic connector with this IMAP security type (SMTP: submission
    /// with STARTTLS).
    pub fn settings(&self, imap_security: &str) -> concierge_connector_sdk::Settings {
        let port = if imap_security == "SSL_TLS" { self.imaps } else { self.imap };
        json!({
            "imapHost": "127.0.0.1", "imapSecurity": imap_security, "imapPort": port,
            "smtpHost": "127.0.0.1", "smtpSecurity": "STARTTLS", "smtpPort": self.submission,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    pub fn account(&self, connector: &dyn MailConnector, name: &str, password: &str, imap_security: &str) -> Account {
        let settings = connector.validate(&self.settings(imap_security)).unwrap_or_else(|e| panic!("lab settings do not validate: {e}"));
        Account {
            address: format!("{name}@maillab.test"),
            settings,
            credentials: Credentials::Password { username: name.to_owned(), password: Secret::new(password) },
        }
    }

    /// The tests' own IMAP client, plain on the loopback port.
    pub async fn client(&self, user: &str, password: &str) -> Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.imap)).await.expect("connect to the lab");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting").expect("greeting");
        client.login(user, password).await.map_err(|(e, _)| e).expect("test client login")
    }

    /// APPENDs one message with an internal date, as a delivery would.
    pub async fn deliver(&self, user: &str, password: &str, raw: &[u8], received_at: DateTime<Utc>) {
        let mut s = self.client(user, password).await;
        let date = received_at.format("\"%d-%b-%Y %H:%M:%S +0000\"").to_string();
        s.append("INBOX", None, Some(&date), raw).await.expect("APPEND");
        let _ = s.logout().await;
    }

    /// Seeds many messages fast: MULTIAPPEND with LITERAL+, 200 per command.
    pub async fn deliver_many(&self, user: &str, password: &str, messages: &[Vec<u8>], received_at: DateTime<Utc>) {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.imap)).await.expect("connect");
        let mut tag = 0;
        read_until(&mut tcp, b"* OK").await;
        tcp.write_all(format!("l LOGIN {user} {password}\r\n").as_bytes()).await.expect("write");
        read_until(&mut tcp, b"l OK").await;
        let date = received_at.format("\"%d-%b-%Y %H:%M:%S +0000\"").to_string();
        for batch in messages.chunks(200) {
            tag += 1;
            let mut command = format!("a{tag} APPEND INBOX").into_bytes();
            for m in batch {
                command.extend_from_slice(format!(" {date} {{{}+}}\r\n", m.len()).as_bytes());
                command.extend_from_slice(m);
            }
            command.extend_from_slice(b"\r\n");
            tcp.write_all(&command).await.expect("write");
            read_until(&mut tcp, format!("a{tag} OK").as_bytes()).await;
        }
        tcp.write_all(b"z LOGOUT\r\n").await.expect("write");
    }

    /// UIDs in a user's INBOX with their \Seen flag, read with EXAMINE (changes nothing).
    pub async fn seen_flags(&self, user: &str, password: &str) -> Vec<(u32, bool)> {
        let mut s = self.client(user, password).await;
        let mailbox = s.examine("INBOX").await.expect("EXAMINE");
        let mut out = Vec::new();
        if mailbox.exists > 0 {
            let fetches: Vec<_> = s.fetch("1:*", "(UID FLAGS)").await.expect("FETCH").try_collect().await.expect("FETCH");
            for f in fetches {
                let seen = f.flags().any(|flag| flag == async_imap::types::Flag::Seen);
                out.push((f.uid.unwrap_or(0), seen));
            }
        }
        let _ = s.logout().await;
        out
    }

    /// Every message of a user's folder, read with EXAMINE and BODY.PEEK (changes nothing).
    pub async fn messages(&self, user: &str, password: &str, folder: &str) -> Vec<Vec<u8>> {
        let mut s = self.client(user, password).await;
        let mailbox = s.examine(folder).await.expect("EXAMINE");
        let mut out = Vec::new();
        if mailbox.exists > 0 {
            let fetches: Vec<_> = s.fetch("1:*", "BODY.PEEK[]").await.expect("FETCH").try_collect().await.expect("FETCH");
            out = fetches.iter().filter_map(|f| f.body().map(<[u8]>::to_vec)).collect();
        }
        let _ = s.logout().await;
        out
    }

    /// The subjects of the INBOX's messages without \Seen, read with EXAMINE.
    pub async fn unread_subjects(&self, user: &str, password: &str) -> Vec<String> {
        let mut s = self.client(user, password).await;
        let mailbox = s.examine("INBOX").await.expect("EXAMINE");
        let mut out = Vec::new();
        if mailbox.exists > 0 {
            let fetches: Vec<_> = s.fetch("1:*", "(FLAGS BODY.PEEK[])").await.expect("FETCH").try_collect().await.expect("FETCH");
            for f in fetches {
                if !f.flags().any(|flag| flag == async_imap::types::Flag::Seen) {
                    out.extend(f.body().and_then(|b| kit::header(b, "Subject")));
                }
            }
        }
        let _ = s.logout().await;
        out
    }

    /// Renumbers a user's INBOX as a server rebuilding its index would: the messages move
    /// out and back (new UIDs), then the folder gets a new UIDVALIDITY.
    pub async fn renumber(&self, user: &str, password: &str) {
        let old = self.uidvalidity(user, password).await;
        self.doveadm(&["mailbox", "create", "-u", user, "KitRenumber"]);
        self.doveadm(&["move", "-u", user, "KitRenumber", "mailbox", "INBOX", "all"]);
        self.doveadm(&["move", "-u", user, "INBOX", "mailbox", "KitRenumber", "all"]);
        self.doveadm(&["mailbox", "delete", "-u", user, "KitRenumber"]);
        self.doveadm(&["mailbox", "update", "-u", user, "--uid-validity", &(old + 1000).to_string(), "INBOX"]);
    }

    pub async fn uidvalidity(&self, user: &str, password: &str) -> u32 {
        let mut s = self.client(user, password).await;
        let mailbox = s.examine("INBOX").await.expect("EXAMINE");
        let _ = s.logout().await;
        mailbox.uid_validity.expect("UIDVALIDITY")
    }

    /// Waits (polling, with a deadline) until the user's INBOX holds `count` messages, and
    /// returns their bodies.
    pub async fn await_messages(&self, user: &str, password: &str, count: usize, within: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + within;
        let mut s = self.client(user, password).await;
        loop {
            let mailbox = s.examine("INBOX").await.expect("EXAMINE");
            if mailbox.exists as usize >= count {
                let fetches: Vec<_> = s.fetch("1:*", "BODY.PEEK[]").await.expect("FETCH").try_collect().await.expect("FETCH");
                let _ = s.logout().await;
                return fetches.iter().filter_map(|f| f.body().map(<[u8]>::to_vec)).collect();
            }
            assert!(Instant::now() < deadline, "{user}'s INBOX did not reach {count} messages within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Signs in at the submission port (AUTH PLAIN; the lab allows it without TLS on loopback)
/// and returns the open session.
pub async fn submission_session(lab: &Lab, login: &str, password: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", lab.submission)).await.expect("connect to submission");
    read_until(&mut tcp, b"220 ").await;
    tcp.write_all(b"EHLO kit.test\r\n").await.expect("write");
    read_until(&mut tcp, b"250 ").await;
    let plain = base64(format!("\0{login}\0{password}").as_bytes());
    tcp.write_all(format!("AUTH PLAIN {plain}\r\n").as_bytes()).await.expect("write");
    read_until(&mut tcp, b"235 ").await;
    tcp
}

/// Standard base64, padded (for AUTH PLAIN; the provider crates sharing this file have no
/// base64 crate).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn read_until(tcp: &mut TcpStream, marker: &[u8]) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(marker.len()).any(|w| w == marker) {
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await.expect("lab answered in time").expect("read");
        assert!(n > 0, "the lab closed the connection; so far: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script()).arg("stop").arg(&self.dir).stdout(std::process::Stdio::null()).status();
        }
    }
}

/// The lab's users as the conformance kit sees them, whatever the connector signs in with:
/// their passwords (so the kit's mail goes in and is read back without the connector), and
/// the kit's capabilities a lab provides: sending to another user, renumbering, the \Seen
/// flag, and (in a second lab allowing one session per user) Dovecot's throttling.
pub struct KitLab {
    pub lab: Lab,
    /// user name → password.
    passwords: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The lab allowing one IMAP session per user, started when first needed.
    one_session: std::sync::OnceLock<Lab>,
    /// The IMAP sessions that use up a user's one session there.
    held: tokio::sync::Mutex<Vec<Session<TcpStream>>>,
    /// The submission sessions that do the same for sending.
    held_submission: tokio::sync::Mutex<Vec<TcpStream>>,
}

impl KitLab {
    pub fn new(lab: Lab) -> KitLab {
        KitLab {
            lab,
            passwords: Default::default(),
            one_session: Default::default(),
            held: Default::default(),
            held_submission: Default::default(),
        }
    }

    /// A fresh user, remembered.
    pub async fn add_user(&self, prefix: &str) -> (String, String) {
        let (name, password) = self.lab.add_user(prefix).await;
        if let Ok(mut map) = self.passwords.lock() {
            map.insert(name.clone(), password.clone());
        }
        (name, password)
    }

    /// The lab user behind an account or an address (`name@maillab.test`) and their password.
    pub fn user(&self, address: &str) -> (String, String) {
        let name = address.split('@').next().unwrap_or(address).to_owned();
        let password = self.passwords.lock().ok().and_then(|m| m.get(&name).cloned()).unwrap_or_else(|| panic!("{address} is no kit user"));
        (name, password)
    }

    /// A user of the lab allowing one session, whose one IMAP session and one submission
    /// session are in use: the next sign-in to either is throttled. The lab, and the user's name and password. Dovecot counts
    /// sessions per user name as signed in with, so the session in use signs in as the
    /// connector will: with the address when `as_address` (OAuth2 providers), else the name.
    pub async fn throttled_user(&self, as_address: bool) -> (&Lab, String, String) {
        let lab = self.one_session.get_or_init(Lab::start_allowing_one_session);
        let (name, password) = lab.add_user("busy").await;
        let login = if as_address { format!("{name}@maillab.test") } else { name.clone() };
        let session = lab.client(&login, &password).await;
        self.held.lock().await.push(session);
        let submission = submission_session(lab, &login, &password).await;
        self.held_submission.lock().await.push(submission);
        (lab, name, password)
    }
}

#[async_trait]
impl kit::Sending for KitLab {
    async fn new_recipient(&self) -> String {
        let (name, _) = self.add_user("rcpt").await;
        format!("{name}@maillab.test")
    }

    async fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        let (name, password) = self.user(address);
        self.lab.messages(&name, &password, "INBOX").await
    }

    /// Gmail and Outlook keep sent mail themselves; the lab's Dovecot does not, so it is
    /// appended (read) to Sent here, as those providers do.
    async fn provider_keeps_copy(&self, account: &Account, raw: &[u8]) {
        let (name, password) = self.user(&account.address);
        let mut s = self.lab.client(&name, &password).await;
        s.append("Sent", Some(r"(\Seen)"), None, raw).await.expect("APPEND to Sent");
        let _ = s.logout().await;
    }
}

#[async_trait]
impl kit::Renumbering for KitLab {
    async fn renumber(&self, account: &Account) {
        let (name, password) = self.user(&account.address);
        self.lab.renumber(&name, &password).await;
    }
}

#[async_trait]
impl kit::ReadState for KitLab {
    async fn unread_subjects(&self, account: &Account) -> Vec<String> {
        let (name, password) = self.user(&account.address);
        self.lab.unread_subjects(&name, &password).await
    }
}

/// The conformance kit's view of the lab: the generic connector with one IMAP security
/// type, or a preset with a password (how the gateway's built-in providers are made).
pub struct LabHarness {
    pub users: KitLab,
    /// `None`: a preset (settings `{}`).
    pub security: Option<&'static str>,
    pub connector: SharedConnector,
}

impl LabHarness {
    pub fn start(security: &'static str) -> LabHarness {
        let lab = Lab::start();
        let connector: SharedConnector = Arc::new(ImapSmtpConnector::generic(lab.options()));
        LabHarness { users: KitLab::new(lab), security: Some(security), connector }
    }

    /// A password preset whose servers are the lab's, as the gateway builds Yahoo's or
    /// Fastmail's from their servers.
    pub fn start_preset() -> LabHarness {
        let lab = Lab::start();
        let connector: SharedConnector = Arc::new(lab_preset(&lab));
        LabHarness { users: KitLab::new(lab), security: None, connector }
    }

    fn account(&self, connector: &dyn MailConnector, lab: &Lab, name: &str, password: &str) -> Account {
        match self.security {
            Some(security) => lab.account(connector, name, password, security),
            None => Account {
                address: format!("{name}@maillab.test"),
                settings: connector.validate(&Default::default()).unwrap_or_else(|e| panic!("a preset must take empty settings: {e}")),
                credentials: Credentials::Password { username: name.to_owned(), password: Secret::new(password) },
            },
        }
    }
}

/// A preset signing in with a password, its servers the lab's IMAP (SSL/TLS) and submission
/// (STARTTLS); it keeps sent mail itself, by APPEND, as most providers' presets do.
pub fn lab_preset(lab: &Lab) -> ImapSmtpConnector {
    use concierge_connector_imap_smtp::{Endpoint, Preset, Security};
    use concierge_connector_sdk::{AuthMethod, Capabilities, Descriptor};
    let preset = Preset {
        descriptor: Descriptor {
            kind: "kit-preset",
            display_name: "Kit preset".into(),
            auth: AuthMethod::Password,
            capabilities: Capabilities { send: true, provider_saves_sent: false, calendars: false },
            fields: Vec::new(),
            help: None,
        },
        oauth: None,
        imap: Endpoint { host: "127.0.0.1".into(), port: lab.imaps, security: Security::SslTls },
        smtp: Endpoint { host: "127.0.0.1".into(), port: lab.submission, security: Security::StartTls },
        gmail_extensions: false,
    };
    ImapSmtpConnector::preset(preset, lab.options())
}

#[async_trait]
impl kit::Harness for LabHarness {
    fn connector(&self) -> SharedConnector {
        Arc::clone(&self.connector)
    }

    async fn new_account(&self) -> Account {
        let (name, password) = self.users.add_user("kit").await;
        self.account(self.connector.as_ref(), &self.users.lab, &name, &password)
    }

    async fn deliver(&self, account: &Account, raw: &[u8], received_at: DateTime<Utc>) {
        let (name, password) = self.users.user(&account.address);
        self.users.lab.deliver(&name, &password, raw, received_at).await;
    }

    fn with_wrong_password(&self, account: &Account) -> Account {
        let mut wrong = account.clone();
        wrong.credentials =
            Credentials::Password { username: account.credentials.username().to_owned(), password: Secret::new("definitely-wrong") };
        wrong
    }

    fn sending(&self) -> Option<&dyn kit::Sending> {
        Some(&self.users)
    }

    fn renumbering(&self) -> Option<&dyn kit::Renumbering> {
        Some(&self.users)
    }

    fn read_state(&self) -> Option<&dyn kit::ReadState> {
        Some(&self.users)
    }

    fn throttling(&self) -> Option<&dyn kit::Throttling> {
        Some(self)
    }

    /// Password sign-in only.
    fn oauth(&self) -> Option<&dyn kit::OAuthTokens> {
        None
    }
}

#[async_trait]
impl kit::Throttling for LabHarness {
    async fn throttled(&self, _account: &Account) -> (SharedConnector, Account) {
        let (lab, name, password) = self.users.throttled_user(false).await;
        let connector = if self.security.is_some() { ImapSmtpConnector::generic(lab.options()) } else { lab_preset(lab) };
        let account = self.account(&connector, lab, &name, &password);
        (Arc::new(connector), account)
    }
}

/// The lab's OAuth2 stand-in (scripts/oauth-standin: its header is the contract), playing
/// Google or Microsoft. Its admin endpoints issue, expire and revoke tokens without a
/// browser, and count what happened per email.
#[derive(Clone, Copy, Debug)]
pub struct StandIn {
    pub port: u16,
}

/// The one client the stand-in knows.
pub const CLIENT_ID: &str = "concierge-test";
pub const CLIENT_SECRET: &str = "concierge-test-secret";

/// What `POST /admin/issue` hands out.
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// `GET /admin/stats`: successful grants and introspections (Dovecot's token checks) for
/// one email.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenStats {
    pub authorization_code: u64,
    pub refresh_token: u64,
    pub introspect: u64,
}

impl StandIn {
    /// Tokens for `email` as if the user had consented; `ttl` is the access token's
    /// lifetime in seconds (0: it has already expired).
    pub async fn issue(&self, email: &str, ttl: Option<u64>) -> IssuedTokens {
        let mut body = json!({ "email": email });
        if let Some(ttl) = ttl {
            body["ttl"] = json!(ttl);
        }
        let (status, answer) = self.admin("POST", "/admin/issue", Some(body)).await;
        assert_eq!(status, 200, "admin/issue: {answer}");
        let field = |k: &str| answer[k].as_str().unwrap_or_else(|| panic!("admin/issue answered without {k}")).to_owned();
        IssuedTokens { access_token: field("access_token"), refresh_token: field("refresh_token") }
    }

    /// Every access token of `email` expires now; its refresh tokens still work.
    pub async fn expire(&self, email: &str) {
        let (status, answer) = self.admin("POST", "/admin/expire", Some(json!({ "email": email }))).await;
        assert_eq!(status, 200, "admin/expire: {answer}");
    }

    /// The user withdrew consent: `email`'s refresh and access tokens stop working.
    pub async fn revoke(&self, email: &str) {
        let (status, answer) = self.admin("POST", "/admin/revoke", Some(json!({ "email": email }))).await;
        assert_eq!(status, 200, "admin/revoke: {answer}");
    }

    pub async fn stats(&self, email: &str) -> TokenStats {
        let path = format!("/admin/stats?email={}", form_encode(email));
        let (status, answer) = self.admin("GET", &path, None).await;
        assert_eq!(status, 200, "admin/stats: {answer}");
        let n = |k: &str| answer[k].as_u64().unwrap_or_else(|| panic!("stats without {k}"));
        TokenStats { authorization_code: n("authorization_code"), refresh_token: n("refresh_token"), introspect: n("introspect") }
    }

    /// `POST /token` with `grant_type=refresh_token`, as the gateway does (client secret
    /// in the form): the HTTP status and the JSON answer.
    pub async fn refresh(&self, refresh_token: &str) -> std::io::Result<(u16, serde_json::Value)> {
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]
                .iter()
                .map(|(k, v)| format!("{k}={}", form_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
        http(self.port, "POST", "/token", "application/x-www-form-urlencoded", form.as_bytes()).await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        http(self.port, method, path, "application/json", body.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("the OAuth2 stand-in did not answer {method} {path}: {e}"))
    }
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.1 request to the stand-in on 127.0.0.1 (`Connection: close`, so the answer
/// ends at EOF): the status and the body as JSON. Enough for a server of our own; the
/// crate has no HTTP client and needs none.
async fn http(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> std::io::Result<(u16, serde_json::Value)> {
    let exchange = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body).await?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 10 s"))??;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let status = std::str::from_utf8(&answer[..split])
        .ok()
        .and_then(|head| head.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let json = serde_json::from_slice(&answer[split + 4..]).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}
