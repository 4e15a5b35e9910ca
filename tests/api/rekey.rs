//! Rotating the gateway's secret key: `concierge rekey` (the real binary) seals every stored
//! secret again, so calendar accounts, mailboxes and second factors keep working under the new
//! key; a key changed without it asks the owners to sign in again, and says why.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::calendar_lab::CalendarLab;
use crate::helpers::{TestApp, TestUser};
use crate::mail_lab::MailLab;
use crate::security::{enrol, totp_now};

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

const CONNECT_CALENDAR: &str = "mutation($i: ConnectCalendarAccountInput!) { connectCalendarAccount(input: $i) { id } }";
const SYNC_CALENDAR: &str = "mutation($id: ID!) { syncCalendarAccount(id: $id) { status statusReason lastError } }";

/// The gateway on `database` (None: a fresh one) under `secret`.
async fn gateway(database: Option<String>, secret: &str, lab: &MailLab) -> TestApp {
    let (secret, cert) = (secret.to_owned(), lab.cert());
    TestApp::spawn_with(move |c| {
        if database.is_some() {
            c.database_url = database;
        }
        c.secret_key = Some(concierge::config::Redacted(secret));
        c.mail_ca_file = Some(cert);
        c.calendar_poll_secs = 3600;
        // The mail and calendar labs listen on loopback.
        c.allow_loopback();
    })
    .await
}

/// Runs `concierge rekey` on `database`, with the new key in the environment.
async fn rekey(database: &str, new: &str, args: &[&str]) -> (bool, String, String) {
    let data = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
        .arg("rekey")
        .args(args)
        .env("DATABASE_URL", database)
        .env("CONCIERGE_DATA_DIR", data.path())
        .env("CONCIERGE_SECRET_KEY", new)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("the gateway binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The counts `rekey` printed for one column: (resealed, current, unreadable).
fn counts(report: &str, column: &str) -> (u64, u64, u64) {
    let line = report.lines().find(|l| l.starts_with(column)).unwrap_or_else(|| panic!("no {column} in {report}"));
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1], numbers[2])
}

async fn sync_calendar(app: &TestApp, user: &TestUser, id: &str) -> Value {
    app.gql(Some(&user.token), SYNC_CALENDAR, json!({ "id": id })).await["data"]["syncCalendarAccount"].clone()
}

async fn mailbox_status(app: &TestApp, user: &TestUser, id: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = crate::mailboxes::mailbox(app, user, id).await;
        if m["status"] == want {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "the mailbox did not reach {want}: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rekey_carries_every_secret_to_a_new_key_and_a_changed_key_asks_owners_to_sign_in_again() {
    let (mail, calendars) = (MailLab::get().await, CalendarLab::get().await);
    let (old, new, stranger) = (key(1), key(2), key(3));

    // Under the old key: a calendar account, a mailbox and a second factor.
    let mut first = gateway(None, &old, &mail).await;
    let database = first.database_url.clone();
    let ada = first.user("ada@example.com").await;
    let (cal_user, cal_password) = calendars.new_user("rekey").await;
    let r = first
        .gql(
            Some(&ada.token),
            CONNECT_CALENDAR,
            json!({ "i": { "connector": "caldav", "username": cal_user, "password": cal_password, "settings": { "url": calendars.url } } }),
        )
        .await;
    let calendar = r["data"]["connectCalendarAccount"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let (mail_user, mail_password) = mail.new_user("rekey").await;
    let mailbox = crate::mailboxes::connected(&first, &ada, &mail, &mail_user, &mail_password).await;
    mailbox_status(&first, &ada, &mailbox, "LIVE").await;
    let (totp_secret, _) = enrol(&first, &ada).await;
    first.begin_shutdown();
    first.stopped(Duration::from_secs(30)).await.expect("the first gateway stops");

    // Refused: no old key, the same key twice.
    let (ok, _, err) = rekey(&database, &new, &[]).await;
    assert!(!ok && err.contains("old key"), "{err}");
    let (ok, _, err) = rekey(&database, &old, &["--old-key", &old]).await;
    assert!(!ok && err.contains("the same key"), "{err}");

    // Rekeyed: every secret opened with the old key and sealed with the new one.
    let (ok, report, err) = rekey(&database, &new, &["--old-key", &old]).await;
    assert!(ok, "{err}");
    assert_eq!(counts(&report, "calendar_account.credentials"), (1, 0, 0), "{report}");
    assert_eq!(counts(&report, "mailbox.credentials"), (1, 0, 0), "{report}");
    assert_eq!(counts(&report, "account.totp_secret"), (1, 0, 0), "{report}");
    // Twice is harmless: everything is already under the new key.
    let (ok, report, _) = rekey(&database, &new, &["--old-key", &old]).await;
    assert!(ok);
    assert_eq!(counts(&report, "calendar_account.credentials"), (0, 1, 0), "{report}");
    assert_eq!(counts(&report, "mailbox.credentials"), (0, 1, 0), "{report}");

    // Under the new key, everything works without anyone signing in again.
    let second = gateway(Some(database.clone()), &new, &mail).await;
    let synced = sync_calendar(&second, &ada, &calendar).await;
    assert_eq!(synced["status"], "LIVE", "{synced}");
    mailbox_status(&second, &ada, &mailbox, "LIVE").await;
    let challenge = second.two_factor_challenge("ada@example.com").await;
    // The next step's code: the current one was spent on enrolment (codes work once).
    let code = totp_now(&totp_secret, 1).await;
    let r = second
        .gql(
            None,
            "mutation($c: String!, $code: String!) { completeTwoFactorLogIn(challenge: $c, code: $code) { token } }",
            json!({ "c": challenge, "code": code }),
        )
        .await;
    assert!(r["data"]["completeTwoFactorLogIn"]["token"].is_string(), "the second factor opens under the new key: {r}");
    drop(second);

    // A key changed without rekey: the accounts need their owner, and say it is not the
    // server's doing.
    let third = gateway(Some(database.clone()), &stranger, &mail).await;
    // (Sessions are not sealed: ada's stays signed in.)
    let synced = sync_calendar(&third, &ada, &calendar).await;
    assert_eq!(synced["status"], "NEEDS_REAUTH", "{synced}");
    assert!(synced["statusReason"].as_str().unwrap().contains("cannot read the saved credentials"), "{synced}");
    let m = mailbox_status(&third, &ada, &mailbox, "NEEDS_REAUTH").await;
    assert!(m["statusReason"].as_str().unwrap().contains("cannot read the saved credentials"), "{m}");
    assert!(!m["statusReason"].as_str().unwrap().contains("server refused"), "{m}");
}
