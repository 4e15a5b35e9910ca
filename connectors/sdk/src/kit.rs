//! The conformance kit: checks any connector must pass against a real server.
//!
//! A connector's tests implement [`Harness`] (how to make a fresh account on the test
//! server and put mail into it) and call [`run`], or the checks one by one. Each check
//! panics with what the connector got wrong.
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_connector_conforms() {
//!     concierge_connector_sdk::kit::run(&MyHarness::start().await).await;
//! }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Account, Checkpoint, ConnectorError, MailSession, MessageRef, SharedConnector, Wake};

/// What the kit needs from a connector's test environment.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The connector under test.
    fn connector(&self) -> SharedConnector;
    /// A new, empty account on the real server (a fresh user), with settings that pass the
    /// connector's validation and working credentials.
    async fn new_account(&self) -> Account;
    /// Puts `raw` into the account's inbox as if the server had received it at
    /// `received_at` (for IMAP: APPEND with that internal date). Must not go through the
    /// connector under test.
    async fn deliver(&self, account: &Account, raw: &[u8], received_at: DateTime<Utc>);
    /// The same account with a password (or token) the server refuses.
    fn with_wrong_password(&self, account: &Account) -> Account;
}

/// Runs every check in turn.
pub async fn run(h: &dyn Harness) {
    lists_messages_since_a_date_oldest_first(h).await;
    resumes_from_a_checkpoint(h).await;
    sees_new_mail_live(h).await;
    reports_a_bad_password_as_an_authentication_error(h).await;
    validates_its_own_defaults(h).await;
}

/// A small message with a unique subject, CRLF line ends.
pub fn message(subject: &str, date: DateTime<Utc>) -> Vec<u8> {
    format!(
        "From: Kit Sender <sender@kit.test>\r\nTo: Kit Receiver <receiver@kit.test>\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{}@kit.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody of {subject}.\r\n",
        date.to_rfc2822(),
        subject.replace(' ', "-"),
    )
    .into_bytes()
}

fn days_ago(n: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(n)
}

async fn open(h: &dyn Harness, account: &Account) -> Box<dyn MailSession> {
    match h.connector().open(account).await {
        Ok(session) => session,
        Err(e) => panic!("open() with working credentials failed: {e}"),
    }
}

async fn subjects(session: &mut dyn MailSession, refs: &[MessageRef]) -> Vec<String> {
    let fetched = session.fetch(refs).await.unwrap_or_else(|e| panic!("fetch() failed: {e}"));
    assert_eq!(fetched.len(), refs.len(), "fetch() returned {} messages for {} refs", fetched.len(), refs.len());
    fetched
        .iter()
        .zip(refs)
        .map(|(m, r)| {
            assert_eq!(&m.reference.id, &r.id, "fetch() must keep the order of the refs");
            let text = String::from_utf8_lossy(&m.bytes);
            text.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_else(|| panic!("fetched message {} has no Subject line", r.id))
                .trim_end()
                .to_owned()
        })
        .collect()
}

/// `list(since, None)` returns exactly the messages received on or after `since`, oldest
/// first, and `fetch` returns their bytes.
pub async fn lists_messages_since_a_date_oldest_first(h: &dyn Harness) {
    let account = h.new_account().await;
    h.deliver(&account, &message("kit old", days_ago(20)), days_ago(20)).await;
    h.deliver(&account, &message("kit recent one", days_ago(2)), days_ago(2)).await;
    h.deliver(&account, &message("kit recent two", days_ago(1)), days_ago(1)).await;

    let mut session = open(h, &account).await;
    let refs = session.list(days_ago(5), None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
    assert_eq!(refs.len(), 2, "list(since 5 days ago) must skip the 20-day-old message: {refs:?}");
    let ids: std::collections::HashSet<&str> = refs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "message ids must be unique: {refs:?}");
    assert_eq!(subjects(session.as_mut(), &refs).await, ["kit recent one", "kit recent two"], "oldest first");
    session.close().await;
}

/// A checkpoint from one session lists, in a later session, only what came after it.
pub async fn resumes_from_a_checkpoint(h: &dyn Harness) {
    let account = h.new_account().await;
    h.deliver(&account, &message("kit first", days_ago(1)), days_ago(1)).await;
    h.deliver(&account, &message("kit second", days_ago(1)), days_ago(1)).await;

    let mut session = open(h, &account).await;
    let refs = session.list(days_ago(3), None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
    assert_eq!(refs.len(), 2);
    let after_first: Checkpoint = refs[0].checkpoint.clone();
    let after_second: Checkpoint = refs[1].checkpoint.clone();
    session.close().await;

    h.deliver(&account, &message("kit third", Utc::now()), Utc::now()).await;
    let mut session = open(h, &account).await;
    let rest = session.list(days_ago(3), Some(&after_second)).await.unwrap_or_else(|e| panic!("list(checkpoint) failed: {e}"));
    assert_eq!(subjects(session.as_mut(), &rest).await, ["kit third"], "after the second checkpoint only the new message");
    let rest = session.list(days_ago(3), Some(&after_first)).await.unwrap_or_else(|e| panic!("list(checkpoint) failed: {e}"));
    assert_eq!(subjects(session.as_mut(), &rest).await, ["kit second", "kit third"], "after the first checkpoint");
    session.close().await;
}

/// A session waiting for mail wakes when a message arrives, and the next listing has it.
pub async fn sees_new_mail_live(h: &dyn Harness) {
    let account = h.new_account().await;
    let mut session = open(h, &account).await;
    let since = days_ago(1);
    let before = session.list(since, None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
    assert!(before.is_empty(), "a new account starts empty: {before:?}");

    let waiting = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "the new message was not seen within 30 s");
            match session.wait(left).await {
                Ok(Wake::Changed) | Ok(Wake::TimedOut) => {}
                Err(e) => panic!("wait() failed: {e}"),
            }
            let refs = session.list(since, None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
            if !refs.is_empty() {
                break refs;
            }
        }
    };
    let delivering = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.deliver(&account, &message("kit live", Utc::now()), Utc::now()).await;
    };
    let (refs, ()) = tokio::join!(waiting, delivering);
    assert_eq!(subjects(session.as_mut(), &refs).await, ["kit live"]);
    session.close().await;
}

/// A refused password is an authentication error, nothing vaguer.
pub async fn reports_a_bad_password_as_an_authentication_error(h: &dyn Harness) {
    let account = h.with_wrong_password(&h.new_account().await);
    match h.connector().open(&account).await {
        Ok(_) => panic!("open() with a wrong password succeeded"),
        Err(ConnectorError::Authentication { .. }) => {}
        Err(other) => panic!("a wrong password must be ConnectorError::Authentication, got {other:?}"),
    }
}

/// The descriptor is well formed and the settings the harness uses pass validation.
pub async fn validates_its_own_defaults(h: &dyn Harness) {
    let connector = h.connector();
    let d = connector.descriptor();
    assert!(!d.kind.is_empty() && d.kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "kind {:?}", d.kind);
    let mut keys = std::collections::HashSet::new();
    for f in &d.fields {
        assert!(keys.insert(f.key), "field key {} appears twice", f.key);
        assert!(!f.label.is_empty(), "field {} has no label", f.key);
        if f.kind == crate::FieldKind::Select {
            assert!(!f.choices.is_empty(), "select field {} has no choices", f.key);
        }
    }
    let account = h.new_account().await;
    if let Err(e) = connector.validate(&account.settings) {
        panic!("the harness's settings fail validation: {e}");
    }
}
