//! The conformance kit: checks any connector must pass against a real server.
//!
//! A mail connector's tests implement [`Harness`] (how to make a fresh account on the test
//! server and put mail into it) and call [`run`], or the checks one by one. Each check
//! panics with what the connector got wrong. A calendar connector's tests do the same with
//! [`calendar::CalendarHarness`] and [`calendar::run`].
//!
//! Some checks need more than every connector has: sending, a server that renumbers, a read
//! state, throttling, OAuth2. The harness answers for each with `Some` (here is how to
//! provoke it) or `None` (the connector lacks it). The kit skips a check only on such a
//! `None`, names every skipped check in the [`Report`] (and on stderr), and refuses a
//! `None` the connector's own description contradicts: a descriptor that says it sends, or
//! a connector that signs in with OAuth2, must be checked doing so.
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_connector_conforms() {
//!     let report = concierge_connector_sdk::kit::run(&MyHarness::start().await).await;
//!     assert_eq!(report.skipped, []); // or the checks you expect to skip, and why
//! }
//! ```

pub mod calendar;

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Account, AuthMethod, Checkpoint, ConnectorError, MailSession, MessageRef, Outgoing, SharedConnector, Wake};

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

    /// How the kit sees what the connector sends arrive. `None` declares that the connector
    /// cannot send; refused when its descriptor says `capabilities.send`.
    fn sending(&self) -> Option<&dyn Sending>;
    /// How to make the server renumber an account's messages, so that checkpoints from
    /// before mean nothing. `None` declares that the connector's server never does.
    fn renumbering(&self) -> Option<&dyn Renumbering>;
    /// How to see which messages are marked read. `None` declares that the server keeps no
    /// read state.
    fn read_state(&self) -> Option<&dyn ReadState>;
    /// How to make the server tell the connector to slow down. `None` declares that the
    /// connector's server never throttles.
    fn throttling(&self) -> Option<&dyn Throttling>;
    /// How to expire an account's OAuth2 access token. `None` declares that the connector
    /// signs in with a password; refused when it has an OAuth2 provider.
    fn oauth(&self) -> Option<&dyn OAuthTokens>;
}

/// Sending, as the kit checks it: mail to another user of the test server arrives there,
/// and one copy is kept in the sender's Sent folder.
#[async_trait]
pub trait Sending: Send + Sync {
    /// The address of another, new user of the test server.
    async fn new_recipient(&self) -> String;
    /// Every message in that user's inbox now, read without the connector under test.
    async fn inbox(&self, address: &str) -> Vec<Vec<u8>>;
    /// For a connector whose provider keeps sent mail itself (`provider_saves_sent`): what
    /// the provider does after sending `raw` from `account`, when the test server does not do
    /// it by itself (the lab's Dovecot does not; Gmail does). The default does nothing.
    async fn provider_keeps_copy(&self, account: &Account, raw: &[u8]) {
        let _ = (account, raw);
    }
}

/// A server that renumbers (IMAP: a new UIDVALIDITY).
#[async_trait]
pub trait Renumbering: Send + Sync {
    /// Renumbers the account's inbox, as a server restored from a backup or rebuilding its
    /// index does: ids and checkpoints from before mean nothing now.
    async fn renumber(&self, account: &Account);
}

/// The server's read state (IMAP: `\Seen`).
#[async_trait]
pub trait ReadState: Send + Sync {
    /// The subjects of the inbox's messages not marked read, read without the connector.
    async fn unread_subjects(&self, account: &Account) -> Vec<String>;
}

/// A server that throttles.
#[async_trait]
pub trait Throttling: Send + Sync {
    /// The connector and account to use against a server that answers this account with
    /// "slow down" (IMAP: `NO [THROTTLED]` or `[LIMIT]`; SMTP: `421 4.7.x`; HTTP: 429): on
    /// signing in or the first command after, and, for a connector that sends, on sending.
    async fn throttled(&self, account: &Account) -> (SharedConnector, Account);
}

/// OAuth2 tokens at the test provider.
#[async_trait]
pub trait OAuthTokens: Send + Sync {
    /// Expires the account's current access token at the provider; its refresh token keeps
    /// working.
    async fn expire_access_token(&self, account: &Account);
    /// How often the account's token source has refreshed so far.
    async fn refreshes(&self, account: &Account) -> u32;
}

/// What a run checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks that ran and passed.
    pub passed: Vec<&'static str>,
    /// The checks skipped, each with the capability the harness said the connector lacks.
    pub skipped: Vec<(&'static str, &'static str)>,
}

impl Report {
    pub(crate) fn pass(&mut self, check: &'static str) {
        self.passed.push(check);
    }

    pub(crate) fn skip(&mut self, check: &'static str, lacking: &'static str) {
        eprintln!("kit: skipped {check}: the harness declares the connector has no {lacking}");
        self.skipped.push((check, lacking));
    }
}

/// Runs every check in turn; those needing a capability the harness declares missing are
/// skipped and reported.
pub async fn run(h: &dyn Harness) -> Report {
    let connector = h.connector();
    let descriptor = connector.descriptor();
    assert!(
        !descriptor.capabilities.send || h.sending().is_some(),
        "the descriptor of {} says it sends, but the harness's sending() is None: give the kit a recipient to send to",
        descriptor.kind
    );
    let signs_in_with_oauth = descriptor.auth == AuthMethod::OAuth2 || connector.oauth().is_some();
    assert!(
        !signs_in_with_oauth || h.oauth().is_some(),
        "{} signs in with OAuth2, but the harness's oauth() is None: give the kit a way to expire an access token",
        descriptor.kind
    );

    let mut report = Report::default();
    lists_messages_since_a_date_oldest_first(h).await;
    report.pass("lists_messages_since_a_date_oldest_first");
    resumes_from_a_checkpoint(h).await;
    report.pass("resumes_from_a_checkpoint");
    sees_new_mail_live(h).await;
    report.pass("sees_new_mail_live");
    reports_a_bad_password_as_an_authentication_error(h).await;
    report.pass("reports_a_bad_password_as_an_authentication_error");
    validates_its_own_defaults(h).await;
    report.pass("validates_its_own_defaults");

    match h.read_state() {
        Some(read) => {
            fetching_leaves_messages_unread(h, read).await;
            report.pass("fetching_leaves_messages_unread");
        }
        None => report.skip("fetching_leaves_messages_unread", "read state"),
    }
    match h.renumbering() {
        Some(server) => {
            a_renumbered_server_resets_the_checkpoint(h, server).await;
            report.pass("a_renumbered_server_resets_the_checkpoint");
        }
        None => report.skip("a_renumbered_server_resets_the_checkpoint", "server that renumbers"),
    }
    match h.sending() {
        Some(sending) => {
            sends_and_keeps_one_copy_in_sent(h, sending).await;
            report.pass("sends_and_keeps_one_copy_in_sent");
        }
        None => report.skip("sends_and_keeps_one_copy_in_sent", "sending"),
    }
    match h.throttling() {
        Some(server) => {
            reports_throttling_as_throttled(h, server).await;
            report.pass("reports_throttling_as_throttled");
        }
        None => report.skip("reports_throttling_as_throttled", "throttling server"),
    }
    match h.oauth() {
        Some(tokens) => {
            refreshes_an_expired_access_token(h, tokens).await;
            report.pass("refreshes_an_expired_access_token");
        }
        None => report.skip("refreshes_an_expired_access_token", "OAuth2 sign-in"),
    }
    report
}

/// A small message with a unique subject, CRLF line ends.
pub fn message(subject: &str, date: DateTime<Utc>) -> Vec<u8> {
    format!(
        "From: Kit Sender <sender@kit.test>\r\nTo: Kit Receiver <receiver@kit.test>\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody of {subject}.\r\n",
        date.to_rfc2822(),
        message_id(subject),
    )
    .into_bytes()
}

/// The Message-ID [`message`] gives a subject.
pub fn message_id(subject: &str) -> String {
    format!("<{}@kit.test>", subject.replace(' ', "-"))
}

fn days_ago(n: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(n)
}

/// A subject no other run of the kit uses, so mail from one check never counts in another.
fn unique(subject: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{subject} {nanos}")
}

/// The value of a header line (`Subject: …`), unfolded no further: the kit's messages keep
/// their headers on one line.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
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
            header(&m.bytes, "Subject").unwrap_or_else(|| panic!("fetched message {} has no Subject line", r.id))
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
    let ids: HashSet<&str> = refs.iter().map(|r| r.id.as_str()).collect();
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
    let mut keys = HashSet::new();
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

/// Listing and fetching change nothing on the server: unread mail stays unread.
pub async fn fetching_leaves_messages_unread(h: &dyn Harness, read: &dyn ReadState) {
    let account = h.new_account().await;
    h.deliver(&account, &message("kit unread one", days_ago(1)), days_ago(1)).await;
    h.deliver(&account, &message("kit unread two", days_ago(1)), days_ago(1)).await;
    let mut before = read.unread_subjects(&account).await;
    before.sort();
    assert_eq!(before, ["kit unread one", "kit unread two"], "the harness must see the delivered mail as unread");

    let mut session = open(h, &account).await;
    let refs = session.list(days_ago(3), None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
    assert_eq!(subjects(session.as_mut(), &refs).await.len(), 2);
    session.close().await;

    let mut after = read.unread_subjects(&account).await;
    after.sort();
    assert_eq!(after, before, "fetch() must not mark messages read");
}

/// When the server renumbers, an old checkpoint is [`ConnectorError::CheckpointReset`],
/// never a listing that skips or repeats mail; old ids never fetch other messages; and
/// listing from the date finds every message again.
pub async fn a_renumbered_server_resets_the_checkpoint(h: &dyn Harness, server: &dyn Renumbering) {
    let account = h.new_account().await;
    h.deliver(&account, &message("kit before one", days_ago(1)), days_ago(1)).await;
    h.deliver(&account, &message("kit before two", days_ago(1)), days_ago(1)).await;
    let mut session = open(h, &account).await;
    let refs = session.list(days_ago(3), None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
    assert_eq!(refs.len(), 2, "{refs:?}");
    let checkpoint = refs[1].checkpoint.clone();
    session.close().await;

    server.renumber(&account).await;
    h.deliver(&account, &message("kit after", Utc::now()), Utc::now()).await;

    let mut session = open(h, &account).await;
    match session.list(days_ago(3), Some(&checkpoint)).await {
        Err(ConnectorError::CheckpointReset { .. }) => {}
        other => panic!("a checkpoint from before the server renumbered must be CheckpointReset, got {other:?}"),
    }
    // Ids from before may fetch nothing, or the same messages, never others.
    match session.fetch(&refs).await {
        Err(ConnectorError::CheckpointReset { .. }) => {}
        Ok(fetched) => {
            for m in fetched {
                let at = refs.iter().position(|r| r.id == m.reference.id).unwrap_or(usize::MAX);
                let expected = ["kit before one", "kit before two"].get(at).copied();
                assert_eq!(header(&m.bytes, "Subject").as_deref(), expected, "an id from before the renumbering fetched another message");
            }
        }
        Err(other) => panic!("fetching ids from before the renumbering must be CheckpointReset or safe, got {other:?}"),
    }
    let relisted = session.list(days_ago(3), None).await.unwrap_or_else(|e| panic!("list() from the date failed: {e}"));
    assert_eq!(subjects(session.as_mut(), &relisted).await, ["kit before one", "kit before two", "kit after"]);
    session.close().await;
}

/// A message sent through the connector reaches every envelope recipient (a Bcc recipient
/// too, with no `Bcc:` header in what travels); one copy, the sender's with the `Bcc:`
/// header, is kept in the Sent folder, listed by the sender's next sync once (with the sent
/// Message-ID, so the gateway recognises it as the message it sent) and never again after
/// its checkpoint.
pub async fn sends_and_keeps_one_copy_in_sent(h: &dyn Harness, sending: &dyn Sending) {
    let connector = h.connector();
    let account = h.new_account().await;
    let to = sending.new_recipient().await;
    let bcc = sending.new_recipient().await;
    // A checkpoint from before the send: the sync the copy must show up in resumes from it.
    h.deliver(&account, &message("kit before sending", days_ago(1)), days_ago(1)).await;
    let mut session = open(h, &account).await;
    let refs = session.list(days_ago(3), None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
    assert_eq!(refs.len(), 1, "{refs:?}");
    let before = refs[0].checkpoint.clone();
    session.close().await;

    let subject = unique("kit sent");
    // The headers name neither recipient: the envelope alone says where it goes.
    let raw = message(&subject, Utc::now());
    let copy = with_bcc(&raw, &bcc);
    let recipients = vec![to.clone(), bcc.clone()];
    let sent = Outgoing { from: &account.address, recipients: &recipients, raw: &raw, sent_copy: Some(&copy) };
    let receipt = connector.send(&account, sent).await.unwrap_or_else(|e| panic!("send() failed: {e}"));
    assert!(receipt.saved_to_sent, "the send kept no copy in Sent: {:?}", receipt.sent_copy_error);
    if connector.descriptor().capabilities.provider_saves_sent {
        sending.provider_keeps_copy(&account, &copy).await;
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for address in [&to, &bcc] {
        let arrived = loop {
            let inbox = sending.inbox(address).await;
            if let Some(m) = inbox.into_iter().find(|m| header(m, "Subject").as_deref() == Some(subject.as_str())) {
                break m;
            }
            assert!(tokio::time::Instant::now() < deadline, "the sent message did not reach {address} within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(header(&arrived, "Bcc"), None, "the message {address} received must not name the Bcc recipient");
    }

    let mut session = open(h, &account).await;
    let copies = loop {
        let listed = session.list(days_ago(3), Some(&before)).await.unwrap_or_else(|e| panic!("list(checkpoint) failed: {e}"));
        if !listed.is_empty() || tokio::time::Instant::now() >= deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(copies.len(), 1, "the sync after a send lists exactly one copy of it: {copies:?}");
    let fetched = session.fetch(&copies).await.unwrap_or_else(|e| panic!("fetch() failed: {e}"));
    assert_eq!(fetched.len(), 1);
    assert_eq!(header(&fetched[0].bytes, "Subject").as_deref(), Some(subject.as_str()));
    assert_eq!(
        header(&fetched[0].bytes, "Message-ID"),
        Some(message_id(&subject)),
        "the Sent copy keeps the Message-ID, which the gateway recognises its sent mail by"
    );
    assert_eq!(header(&fetched[0].bytes, "Bcc"), Some(bcc.clone()), "the Sent copy is the sender's, naming the Bcc recipient");

    let recorded = copies[0].checkpoint.clone();
    let again = session.list(days_ago(3), Some(&recorded)).await.unwrap_or_else(|e| panic!("list(checkpoint) failed: {e}"));
    assert!(again.is_empty(), "the Sent copy must not be listed again after its checkpoint: {again:?}");
    let everything = session.list(days_ago(3), None).await.unwrap_or_else(|e| panic!("list() failed: {e}"));
    assert_eq!(subjects(session.as_mut(), &everything).await.iter().filter(|s| **s == subject).count(), 1, "one copy, once");
    session.close().await;
    let mut session = open(h, &account).await;
    let later = session.list(days_ago(3), Some(&recorded)).await.unwrap_or_else(|e| panic!("list(checkpoint) failed: {e}"));
    assert!(later.is_empty(), "a later session must not list the Sent copy again: {later:?}");
    session.close().await;
}

/// The sender's copy of `raw`: the same message with a `Bcc:` header first.
fn with_bcc(raw: &[u8], bcc: &str) -> Vec<u8> {
    let mut copy = format!("Bcc: {bcc}\r\n").into_bytes();
    copy.extend_from_slice(raw);
    copy
}

/// A server's "slow down", to a sync or a send, is [`ConnectorError::Throttled`], so the
/// gateway waits instead of hammering it or asking the user to sign in again.
pub async fn reports_throttling_as_throttled(h: &dyn Harness, server: &dyn Throttling) {
    let account = h.new_account().await;
    let (connector, throttled) = server.throttled(&account).await;
    let error = match connector.open(&throttled).await {
        Err(e) => e,
        Ok(mut session) => {
            let listed = session.list(days_ago(3), None).await;
            session.close().await;
            match listed {
                Err(e) => e,
                Ok(refs) => panic!("a throttling server was not reported: open() and list() succeeded ({} refs)", refs.len()),
            }
        }
    };
    assert!(matches!(error, ConnectorError::Throttled { .. }), "a throttled sync must be ConnectorError::Throttled, got {error:?}");
    assert_eq!(error.code(), "THROTTLED");

    if connector.descriptor().capabilities.send {
        let raw = message(&unique("kit throttled send"), Utc::now());
        let recipients = vec![throttled.address.clone()];
        let sent = Outgoing { from: &throttled.address, recipients: &recipients, raw: &raw, sent_copy: None };
        match connector.send(&throttled, sent).await {
            Err(ConnectorError::Throttled { .. }) => {}
            other => panic!("a throttled send must be ConnectorError::Throttled, got {other:?}"),
        }
    }
}

/// An expired access token is refreshed through the account's token source, and the session
/// then works; so does a send, for a connector that sends.
pub async fn refreshes_an_expired_access_token(h: &dyn Harness, tokens: &dyn OAuthTokens) {
    let account = h.new_account().await;
    h.deliver(&account, &message("kit after refresh", days_ago(1)), days_ago(1)).await;
    let before = tokens.refreshes(&account).await;
    tokens.expire_access_token(&account).await;

    let mut session = open(h, &account).await;
    let refs = session.list(days_ago(3), None).await.unwrap_or_else(|e| panic!("list() after a refresh failed: {e}"));
    assert_eq!(subjects(session.as_mut(), &refs).await, ["kit after refresh"]);
    session.close().await;
    let after_sync = tokens.refreshes(&account).await;
    assert!(after_sync > before, "the expired access token was not refreshed through the token source");

    // Sending signs in on its own (SMTP): an expired token is refreshed there too.
    let connector = h.connector();
    if connector.descriptor().capabilities.send {
        tokens.expire_access_token(&account).await;
        let raw = message(&unique("kit sent after refresh"), Utc::now());
        let recipients = vec![account.address.clone()];
        let sent = Outgoing { from: &account.address, recipients: &recipients, raw: &raw, sent_copy: None };
        if let Err(e) = connector.send(&account, sent).await {
            panic!("send() with an expired access token failed: {e}");
        }
        assert!(tokens.refreshes(&account).await > after_sync, "the send did not refresh the expired access token");
    }
}
