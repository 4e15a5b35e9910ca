//! The calendar lab (scripts/calendar-lab: Radicale + a bearer front on 127.0.0.1), its
//! users, and scripts/caldav-client as the tests' own independent CalDAV client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use concierge_connector_caldav::{CaldavConnector, Options};
use concierge_connector_sdk::{Account, CalendarConnector, CalendarSession, Credentials, Secret};
use serde_json::{Value, json};

/// One lab: the shared one of the run (`CONCIERGE_TEST_CALENDAR_LAB`, started by
/// scripts/test) or a private one, stopped on drop.
pub struct Lab {
    pub dir: PathBuf,
    owned: bool,
    /// Radicale, e.g. `http://127.0.0.1:PORT/`.
    pub url: String,
    /// The bearer front playing Google's CalDAV API.
    pub bearer_url: String,
    /// The OAuth2 stand-in the bearer front asks about tokens.
    pub oauth_url: String,
    admin: User,
}

/// A calendar user of the lab.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

impl Lab {
    pub fn start() -> Lab {
        let shared = std::env::var("CONCIERGE_TEST_CALENDAR_LAB").ok().filter(|d| !d.is_empty());
        let (dir, owned) = match shared {
            Some(dir) => (PathBuf::from(dir), false),
            None => {
                let out = Command::new("mktemp").args(["-d", "/tmp/cl-XXXXXX"]).output().expect("mktemp");
                let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                let status = Command::new(script("calendar-lab"))
                    .arg("start")
                    .arg(&dir)
                    .stdout(std::process::Stdio::null())
                    .status()
                    .expect("run scripts/calendar-lab");
                assert!(status.success(), "scripts/calendar-lab start {} failed", dir.display());
                (dir, true)
            }
        };
        let info: Value = serde_json::from_slice(&std::fs::read(dir.join("lab.json")).expect("lab.json")).expect("lab.json is JSON");
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_else(|| panic!("lab.json has no {k}")).to_owned();
        Lab {
            url: text(&info, "url"),
            bearer_url: text(&info, "bearer_url"),
            oauth_url: text(&info, "oauth_url"),
            admin: User { name: text(&info["admin"], "user"), password: text(&info["admin"], "password") },
            dir,
            owned,
        }
    }

    /// A fresh user with a unique, lower-case name.
    pub async fn user(&self) -> User {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("u{}x{}x{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let password = format!("pw-{name}");
        let status = tokio::process::Command::new(script("calendar-lab"))
            .arg("add-user")
            .arg(&self.dir)
            .arg(&name)
            .arg(&password)
            .status()
            .await
            .expect("run add-user");
        assert!(status.success(), "add-user {name} failed");
        User { name, password }
    }

    /// The generic connector, as the gateway builds it.
    pub fn connector(&self) -> CaldavConnector {
        CaldavConnector::generic(lab_options())
    }

    /// The connector comparing ETags instead of using sync tokens.
    pub fn connector_without_sync_tokens(&self) -> CaldavConnector {
        CaldavConnector::generic(Options { use_sync_collection: false, ..lab_options() })
    }

    /// An account of `user` whose form says `url`, validated like the gateway does.
    pub fn account_at(&self, user: &User, url: &str) -> Account {
        let settings = json!({ "url": url }).as_object().cloned().unwrap_or_default();
        let settings = self.connector().validate(&settings).unwrap_or_else(|e| panic!("settings do not validate: {e}"));
        Account {
            address: format!("{}@lab.test", user.name),
            settings,
            credentials: Credentials::Password { username: user.name.clone(), password: Secret::new(user.password.clone()) },
        }
    }

    pub fn account(&self, user: &User) -> Account {
        self.account_at(user, &self.url)
    }

    /// A signed-in session of `user` with the generic connector.
    pub async fn session(&self, user: &User) -> Box<dyn CalendarSession> {
        self.connector().open(&self.account(user)).await.expect("open")
    }

    /// The independent client, signed in as `user`.
    pub fn client(&self, user: &User) -> Client {
        Client { url: self.url.clone(), user: user.clone() }
    }

    /// The independent client as the lab's admin (who may create read-only calendars).
    pub fn admin(&self) -> Client {
        Client { url: self.url.clone(), user: self.admin.clone() }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script("calendar-lab")).arg("stop").arg(&self.dir).stdout(std::process::Stdio::null()).status();
        }
    }
}

/// scripts/caldav-client for one user.
pub struct Client {
    url: String,
    user: User,
}

impl Client {
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Value {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new(script("caldav-client"))
            .arg(format!("--url={}", self.url))
            .arg(format!("--user={}", self.user.name))
            .arg(format!("--password={}", self.user.password))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run scripts/caldav-client");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.unwrap_or("").as_bytes()).await.expect("write stdin");
        drop(input);
        let out = child.wait_with_output().await.expect("caldav-client output");
        assert!(out.status.success(), "caldav-client {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("caldav-client prints JSON")
    }

    /// A new calendar; its id (`/user/ID/`).
    pub async fn make_calendar(&self, name: &str, id: &str, colour: Option<&str>) -> String {
        let mut args = vec!["make-calendar", name, "--id", id];
        if let Some(colour) = colour {
            args.extend(["--colour", colour]);
        }
        self.run(&args, None).await["id"].as_str().expect("id").to_owned()
    }

    /// A calendar in `owner`'s home, made by this client (the admin: the owner may not).
    /// The owner signs in first, so that Radicale has made their home.
    pub async fn make_calendar_for(&self, owner: &Client, name: &str, id: &str) -> String {
        owner.run(&["principal"], None).await;
        self.run(&["make-calendar", name, "--id", id, "--owner", &owner.user.name], None).await["id"].as_str().expect("id").to_owned()
    }

    pub async fn delete_calendar(&self, id: &str) {
        self.run(&["delete-calendar", id], None).await;
    }

    /// Stores an event (or a task); its href.
    pub async fn put(&self, calendar: &str, ics: &str) -> String {
        self.run(&["put", calendar, "-"], Some(ics)).await["href"].as_str().expect("href").to_owned()
    }

    pub async fn delete_event(&self, calendar: &str, uid: &str) {
        self.run(&["delete-event", calendar, uid], None).await;
    }

    /// `[{uid, summary, dtstart, dtend, location, organizer, attendees, href, raw}]`.
    pub async fn events(&self, calendar: &str) -> Vec<Value> {
        self.run(&["events", calendar], None).await.as_array().cloned().expect("a list")
    }
}

/// One event as iCalendar text.
pub fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n\
         DTSTART:20300105T100000Z\r\nDTEND:20300105T110000Z\r\nSUMMARY:{summary}\r\nLOCATION:Room 4\r\n\
         ORGANIZER:mailto:owner@lab.test\r\nATTENDEE:mailto:guest@lab.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// One task (no event) as iCalendar text.
pub fn task(uid: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge tests//EN\r\nBEGIN:VTODO\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n\
         SUMMARY:A task\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
}

/// The SUMMARY of an iCalendar text.
pub fn summary(ical: &str) -> Option<&str> {
    ical.lines().find_map(|l| l.trim_end().strip_prefix("SUMMARY:"))
}

/// An OAuth2 token source backed by the lab's stand-in, as the gateway's would be: it hands
/// out the current access token and refreshes with the refresh token, counting refreshes.
pub struct StandInTokens {
    oauth_url: String,
    refresh_token: String,
    access: tokio::sync::Mutex<String>,
    pub refreshes: AtomicU32,
}

impl StandInTokens {
    /// Tokens for `email`; `ttl` 0 gives an access token that has already expired.
    pub async fn issue(lab: &Lab, email: &str, ttl: Option<u64>) -> Arc<StandInTokens> {
        let mut body = json!({ "email": email });
        if let Some(ttl) = ttl {
            body["ttl"] = json!(ttl);
        }
        let answer: Value = post_json(&format!("{}/admin/issue", lab.oauth_url), &body).await;
        Arc::new(StandInTokens {
            oauth_url: lab.oauth_url.clone(),
            refresh_token: answer["refresh_token"].as_str().expect("refresh_token").to_owned(),
            access: tokio::sync::Mutex::new(answer["access_token"].as_str().expect("access_token").to_owned()),
            refreshes: AtomicU32::new(0),
        })
    }

    /// The user withdraws consent: every token of `email` stops working.
    pub async fn revoke(lab: &Lab, email: &str) {
        post_json(&format!("{}/admin/revoke", lab.oauth_url), &json!({ "email": email })).await;
    }
}

async fn post_json(url: &str, body: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert!(response.status().is_success(), "POST {url}: {}", response.status());
    serde_json::from_str(&response.text().await.expect("body")).expect("JSON")
}

#[concierge_connector_sdk::async_trait]
impl concierge_connector_sdk::AccessTokenSource for StandInTokens {
    async fn access_token(&self) -> Result<Secret, concierge_connector_sdk::ConnectorError> {
        Ok(Secret::new(self.access.lock().await.clone()))
    }

    async fn refresh(&self) -> Result<Secret, concierge_connector_sdk::ConnectorError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let form = format!(
            "grant_type=refresh_token&refresh_token={}&client_id=concierge-test&client_secret=concierge-test-secret",
            self.refresh_token
        );
        let response = reqwest::Client::new()
            .post(format!("{}/token", self.oauth_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| concierge_connector_sdk::ConnectorError::Unreachable { message: e.to_string() })?;
        if !response.status().is_success() {
            return Err(concierge_connector_sdk::ConnectorError::Authentication { message: "refresh refused".into() });
        }
        let answer: Value = serde_json::from_str(&response.text().await.unwrap_or_default()).unwrap_or_default();
        let token = answer["access_token"].as_str().unwrap_or_default().to_owned();
        *self.access.lock().await = token.clone();
        Ok(Secret::new(token))
    }
}

/// The lab listens on loopback, which the outbound policy refuses by default.
pub fn lab_options() -> Options {
    Options {
        outbound: concierge_connector_sdk::OutboundPolicy::allowing([
            "127.0.0.0/8".parse().expect("CIDR"),
            "::1/128".parse().expect("CIDR"),
        ]),
        ..Options::default()
    }
}
