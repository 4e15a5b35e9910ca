//! The real CalDAV server tests talk to: the Radicale lab `scripts/test` started for the run
//! (CONCIERGE_TEST_CALENDAR_LAB=its folder), or a private one started here when a test runs
//! on its own. What Concierge wrote is read back with `scripts/caldav-client`, which uses
//! the PyPI `caldav` package: an independent client.

use std::path::PathBuf;

use serde_json::Value;

pub struct CalendarLab {
    dir: PathBuf,
    /// Radicale's base URL.
    pub url: String,
    admin: (String, String),
    owned: bool,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

async fn run(name: &str, args: &[&str]) -> String {
    let command = tokio::process::Command::new(script(name)).args(args).kill_on_drop(true).output();
    // A server that stops answering fails the test with what it was asked, never hangs it.
    let out = tokio::time::timeout(std::time::Duration::from_secs(90), command)
        .await
        .unwrap_or_else(|_| panic!("scripts/{name} {args:?} did not finish within 90 s"))
        .expect("the script runs");
    assert!(out.status.success(), "scripts/{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

impl CalendarLab {
    pub async fn get() -> CalendarLab {
        match std::env::var("CONCIERGE_TEST_CALENDAR_LAB") {
            Ok(dir) if !dir.is_empty() => Self::open(PathBuf::from(dir), false),
            _ => {
                let dir = tempfile::Builder::new().prefix("cl-").tempdir_in("/tmp").expect("lab dir").keep();
                std::fs::remove_dir(&dir).ok();
                run("calendar-lab", &["start", dir.to_str().expect("path")]).await;
                Self::open(dir, true)
            }
        }
    }

    fn open(dir: PathBuf, owned: bool) -> CalendarLab {
        let lab: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).expect("lab.json")).expect("lab JSON");
        let text = |k: &str| lab[k].as_str().unwrap_or_else(|| panic!("lab.json lacks {k}")).to_owned();
        CalendarLab {
            url: text("url"),
            admin: (
                lab["admin"]["user"].as_str().expect("admin user").to_owned(),
                lab["admin"]["password"].as_str().expect("admin password").to_owned(),
            ),
            dir,
            owned,
        }
    }

    /// One more Google stand-in on this lab's Radicale, checking bearer tokens with the
    /// OAuth stand-in at `oauth_url` (the mail lab's, so one grant serves mail and calendars).
    /// Returns its base URL.
    pub async fn start_bearer(&self, oauth_url: &str) -> String {
        let out = run("calendar-lab", &["start-bearer", self.dir.to_str().expect("path"), oauth_url]).await;
        let started: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("start-bearer printed {out:?}: {e}"));
        started["bearer_url"].as_str().expect("bearer_url").to_owned()
    }

    /// A new CalDAV user: (name, password).
    pub async fn new_user(&self, prefix: &str) -> (String, String) {
        let name = format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        self.set_password(&name, &password).await;
        (name, password)
    }

    pub async fn set_password(&self, user: &str, password: &str) {
        run("calendar-lab", &["add-user", self.dir.to_str().expect("path"), user, password]).await;
    }

    /// The independent client, signed in as `user`.
    pub async fn client(&self, user: &str, password: &str, args: &[&str]) -> Value {
        let mut all = vec!["--url", self.url.as_str(), "--user", user, "--password", password];
        all.extend_from_slice(args);
        let out = run("caldav-client", &all).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("caldav-client printed {out:?}: {e}"))
    }

    /// Makes a calendar in `user`'s home; returns its path.
    pub async fn make_calendar(&self, user: &str, password: &str, id: &str, name: &str, colour: Option<&str>) -> String {
        let mut args = vec!["make-calendar", name, "--id", id];
        if let Some(c) = colour {
            args.extend_from_slice(&["--colour", c]);
        }
        let r = self.client(user, password, &args).await;
        r["id"].as_str().expect("calendar path").to_owned()
    }

    /// A calendar `user` may only read (the lab's rights make `ro-…` calendars read-only for
    /// their owner; the lab's admin creates it).
    pub async fn make_read_only_calendar(&self, user: &str, password: &str, id: &str, name: &str) -> String {
        assert!(id.starts_with("ro-"));
        // The owner's first sign-in creates their home.
        self.client(user, password, &["principal"]).await;
        let (admin, admin_pw) = self.admin.clone();
        let r = self.client(&admin, &admin_pw, &["make-calendar", name, "--id", id, "--owner", user]).await;
        r["id"].as_str().expect("calendar path").to_owned()
    }

    /// Stores an event (iCalendar text) in a calendar, as another client would.
    pub async fn put(&self, user: &str, password: &str, calendar: &str, ics: &str) {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), ics).expect("write ics");
        self.client(user, password, &["put", calendar, file.path().to_str().expect("path")]).await;
    }

    /// Where Radicale keeps the calendar at `path` (as [`Self::make_calendar`] returns it):
    /// an event file written there is an event of the calendar.
    pub fn collection(&self, path: &str) -> PathBuf {
        let path = path.strip_prefix(&self.url).unwrap_or(path);
        self.dir.join("collections/collection-root").join(path.trim_matches('/'))
    }

    pub async fn events(&self, user: &str, password: &str, calendar: &str) -> Vec<Value> {
        self.client(user, password, &["events", calendar]).await.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for CalendarLab {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::process::Command::new(script("calendar-lab")).arg("stop").arg(&self.dir).output();
        }
    }
}

/// scripts/graph-standin: Microsoft Graph's calendar API, checking tokens with an OAuth
/// stand-in; stopped when dropped.
pub struct GraphStandin {
    _process: tokio::process::Child,
    /// The Graph base the connector takes.
    pub url: String,
    admin: String,
}

impl GraphStandin {
    pub async fn start(oauth_url: &str) -> GraphStandin {
        use tokio::io::AsyncBufReadExt as _;
        let mut process = tokio::process::Command::new(script("graph-standin"))
            .args(["--oauth", oauth_url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("scripts/graph-standin starts");
        let stdout = process.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::io::BufReader::new(stdout).read_line(&mut line).await.expect("its first line");
        let started: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("graph-standin printed {line:?}: {e}"));
        GraphStandin {
            url: started["url"].as_str().expect("url").to_owned(),
            admin: started["admin"].as_str().expect("admin").to_owned(),
            _process: process,
        }
    }

    /// Calls an admin endpoint (`/calendars`, `/events?calendar=…`); returns its JSON.
    pub async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.admin);
        let request = match method {
            "GET" => client.get(&url),
            "DELETE" => client.delete(&url),
            "PATCH" => client.patch(&url).json(&body),
            _ => client.post(&url).json(&body),
        };
        let response = request.send().await.expect("the stand-in answers");
        assert!(response.status().is_success(), "{method} {path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }
}
