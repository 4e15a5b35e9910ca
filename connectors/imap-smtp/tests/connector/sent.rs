//! The Sent folder against the lab (its Dovecot marks `Sent` with `\Sent`): a copy of what
//! the connector sends lands there, and sessions sync it next to the inbox, resuming from
//! checkpoints of both folders (and of the older one-folder format).

use std::time::Duration;

use chrono::{DateTime, Utc};
use concierge_connector_imap_smtp::{ImapSmtpConnector, Options};
use concierge_connector_sdk::{
    Account, Checkpoint, ConnectorError, Credentials, MailConnector, MailSession, Outgoing, Secret, SendReceipt, Wake, kit,
};
use futures_util::TryStreamExt;
use serde_json::json;

use crate::lab::Lab;

fn days_ago(n: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(n)
}

/// Puts `raw` into the user's Sent folder as another mail client would after sending.
async fn append_to_sent(lab: &Lab, user: &str, password: &str, raw: &[u8], at: DateTime<Utc>) {
    let mut s = lab.client(user, password).await;
    let date = at.format("\"%d-%b-%Y %H:%M:%S +0000\"").to_string();
    s.append("Sent", Some(r"(\Seen)"), Some(&date), raw).await.expect("APPEND to Sent");
    let _ = s.logout().await;
}

/// The user's Sent folder, read with EXAMINE: each message's bytes and whether it is \Seen.
async fn sent_folder(lab: &Lab, user: &str, password: &str) -> Vec<(String, bool)> {
    let mut s = lab.client(user, password).await;
    let mailbox = s.examine("Sent").await.expect("EXAMINE Sent");
    let mut out = Vec::new();
    if mailbox.exists > 0 {
        let fetches: Vec<_> = s.fetch("1:*", "(FLAGS BODY.PEEK[])").await.expect("FETCH").try_collect().await.expect("FETCH");
        for f in fetches {
            let seen = f.flags().any(|flag| flag == async_imap::types::Flag::Seen);
            out.push((String::from_utf8_lossy(f.body().unwrap_or_default()).into_owned(), seen));
        }
    }
    let _ = s.logout().await;
    out
}

async fn send(connector: &ImapSmtpConnector, account: &Account, to: &str, raw: &[u8]) -> Result<SendReceipt, ConnectorError> {
    let recipients = vec![to.to_owned()];
    connector.send(account, Outgoing { from: &account.address, recipients: &recipients, raw, sent_copy: None }).await
}

async fn subjects(session: &mut dyn MailSession, refs: &[concierge_connector_sdk::MessageRef]) -> Vec<String> {
    session
        .fetch(refs)
        .await
        .expect("fetch")
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.bytes).lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().trim_end().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_sent_message_is_kept_read_in_the_senders_sent_folder_and_synced_from_there() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, alice_pw) = lab.add_user("alice").await;
    let (bob, bob_pw) = lab.add_user("bob").await;
    let account = lab.account(&connector, &alice, &alice_pw, "SSL_TLS");

    let raw = kit::message("copy kept", Utc::now());
    let receipt = send(&connector, &account, &format!("{bob}@maillab.test"), &raw).await.expect("send");

    assert_eq!((receipt.saved_to_sent, receipt.sent_copy_error.as_deref()), (true, None), "{receipt:?}");
    let copies = sent_folder(&lab, &alice, &alice_pw).await;
    assert_eq!(copies.len(), 1, "one copy in Sent");
    assert!(copies[0].0.contains("Subject: copy kept"));
    assert!(copies[0].1, "the copy is marked read");
    // The mail went out too.
    lab.await_messages(&bob, &bob_pw, 1, Duration::from_secs(20)).await;

    // Alice's next sync lists it, under the Sent folder.
    let mut session = connector.open(&account).await.expect("open");
    let refs = session.list(days_ago(1), None).await.expect("list");
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert!(refs[0].id.starts_with("Sent/"), "{}", refs[0].id);
    assert_eq!(subjects(session.as_mut(), &refs).await, ["copy kept"]);
    session.close().await;
}

#[tokio::test]
async fn a_sent_folder_named_in_the_settings_gets_the_copy_instead() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, alice_pw) = lab.add_user("alice").await;
    let (bob, _) = lab.add_user("bob").await;
    let mut client = lab.client(&alice, &alice_pw).await;
    client.create("Outbox Copies").await.expect("CREATE");
    let _ = client.logout().await;
    let mut account = lab.account(&connector, &alice, &alice_pw, "SSL_TLS");
    account.settings.insert("sentFolder".into(), json!("Outbox Copies"));
    let account = Account { settings: connector.validate(&account.settings).expect("valid settings"), ..account };

    let receipt =
        send(&connector, &account, &format!("{bob}@maillab.test"), &kit::message("kept elsewhere", Utc::now())).await.expect("send");

    assert_eq!((receipt.saved_to_sent, receipt.sent_copy_error.as_deref()), (true, None), "{receipt:?}");
    assert!(sent_folder(&lab, &alice, &alice_pw).await.is_empty(), "the \\Sent folder is not used");
    let mut client = lab.client(&alice, &alice_pw).await;
    let copies = client.examine("Outbox Copies").await.expect("EXAMINE").exists;
    let _ = client.logout().await;
    assert_eq!(copies, 1, "the copy is in the named folder");
    // And the sync follows that folder for sent mail.
    let mut session = connector.open(&account).await.expect("open");
    let refs = session.list(days_ago(1), None).await.expect("list");
    assert!(refs.len() == 1 && refs[0].id.starts_with("Outbox Copies/"), "{refs:?}");
    session.close().await;
}

#[tokio::test]
async fn when_the_copy_cannot_be_kept_the_send_still_succeeds_with_a_warning() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, alice_pw) = lab.add_user("alice").await;
    let (bob, bob_pw) = lab.add_user("bob").await;
    let mut account = lab.account(&connector, &alice, &alice_pw, "SSL_TLS");
    // SMTP is fine, but "IMAP" is the submission port: no IMAP server answers there.
    account.settings.insert("imapSecurity".into(), json!("NONE"));
    account.settings.insert("imapPort".into(), json!(lab.submission));

    let receipt = send(&connector, &account, &format!("{bob}@maillab.test"), &kit::message("no copy", Utc::now()))
        .await
        .expect("the send itself succeeds");

    assert!(receipt.response.starts_with("250"), "{}", receipt.response);
    assert!(!receipt.saved_to_sent);
    let why = receipt.sent_copy_error.expect("a reason for the missing copy");
    assert!(!why.contains(&alice_pw), "no password in: {why}");
    lab.await_messages(&bob, &bob_pw, 1, Duration::from_secs(20)).await;
    assert!(sent_folder(&lab, &alice, &alice_pw).await.is_empty());
}

#[tokio::test]
async fn a_send_that_fails_keeps_no_copy() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, alice_pw) = lab.add_user("alice").await;
    let mut account = lab.account(&connector, &alice, &alice_pw, "SSL_TLS");
    // SMTP refuses the sign-in: nothing goes out, so nothing is kept either.
    account.credentials = Credentials::Password { username: alice.clone(), password: Secret::new("not-the-password") };

    let result = send(&connector, &account, "someone@maillab.test", &kit::message("never", Utc::now())).await;

    assert!(matches!(result, Err(ConnectorError::Authentication { .. })), "{result:?}");
    assert!(sent_folder(&lab, &alice, &alice_pw).await.is_empty());
}

#[tokio::test]
async fn mail_put_in_sent_by_another_client_is_listed_after_the_inbox_and_resumes_from_checkpoints() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("both").await;
    lab.deliver(&name, &password, &kit::message("inbox one", days_ago(1)), days_ago(1)).await;
    append_to_sent(&lab, &name, &password, &kit::message("sent old", days_ago(20)), days_ago(20)).await;
    append_to_sent(&lab, &name, &password, &kit::message("sent one", days_ago(1)), days_ago(1)).await;
    lab.deliver(&name, &password, &kit::message("inbox two", days_ago(1)), days_ago(1)).await;
    let account = lab.account(&connector, &name, &password, "STARTTLS");

    let mut session = connector.open(&account).await.expect("open");
    let refs = session.list(days_ago(5), None).await.expect("list");
    assert_eq!(
        subjects(session.as_mut(), &refs).await,
        ["inbox one", "inbox two", "sent one"],
        "the inbox oldest first, then Sent; the 20-day-old one is before the date"
    );
    assert!(refs[0].id.starts_with("INBOX/") && refs[2].id.starts_with("Sent/"), "{refs:?}");
    let after_inbox = refs[1].checkpoint.clone();
    let after_all = refs[2].checkpoint.clone();
    session.close().await;

    append_to_sent(&lab, &name, &password, &kit::message("sent two", Utc::now()), Utc::now()).await;
    lab.deliver(&name, &password, &kit::message("inbox three", Utc::now()), Utc::now()).await;
    let mut session = connector.open(&account).await.expect("reopen");
    let rest = session.list(days_ago(5), Some(&after_all)).await.expect("list after all");
    assert_eq!(subjects(session.as_mut(), &rest).await, ["inbox three", "sent two"]);
    // A checkpoint from between the folders: Sent starts where that listing found it.
    let rest = session.list(days_ago(5), Some(&after_inbox)).await.expect("list after the inbox");
    assert_eq!(subjects(session.as_mut(), &rest).await, ["inbox three", "sent one", "sent two"]);
    // Nothing new: nothing listed, again and again (the Sent folder is only STATUSed).
    let last = rest.last().expect("three").checkpoint.clone();
    for _ in 0..2 {
        assert!(session.list(days_ago(5), Some(&last)).await.expect("list").is_empty());
    }
    session.close().await;
}

#[tokio::test]
async fn a_v1_checkpoint_resumes_its_folder_and_lists_sent_from_the_date() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("vone").await;
    lab.deliver(&name, &password, &kit::message("recorded before", days_ago(1)), days_ago(1)).await;
    lab.deliver(&name, &password, &kit::message("inbox new", days_ago(1)), days_ago(1)).await;
    append_to_sent(&lab, &name, &password, &kit::message("sent too old", days_ago(20)), days_ago(20)).await;
    append_to_sent(&lab, &name, &password, &kit::message("sent recent", days_ago(1)), days_ago(1)).await;
    let uidvalidity = lab.uidvalidity(&name, &password).await;
    // What an earlier version stored after recording the first message.
    let v1 = Checkpoint(format!(r#"{{"v":1,"folder":"INBOX","uidvalidity":{uidvalidity},"uid":1}}"#));

    let mut session = connector.open(&lab.account(&connector, &name, &password, "SSL_TLS")).await.expect("open");
    let refs = session.list(days_ago(5), Some(&v1)).await.expect("list after a v1 checkpoint");
    assert_eq!(subjects(session.as_mut(), &refs).await, ["inbox new", "sent recent"]);

    // Its checkpoints are v2 and cover both folders from now on.
    let last = refs.last().expect("two").checkpoint.clone();
    assert!(last.0.starts_with(r#"{"v":2,"#), "{}", last.0);
    assert!(session.list(days_ago(5), Some(&last)).await.expect("list").is_empty());
    session.close().await;
}

#[tokio::test]
async fn a_uidvalidity_change_of_the_sent_folder_resets_the_checkpoint() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("sentuidv").await;
    append_to_sent(&lab, &name, &password, &kit::message("sent", days_ago(1)), days_ago(1)).await;
    let account = lab.account(&connector, &name, &password, "SSL_TLS");
    let mut session = connector.open(&account).await.expect("open");
    let refs = session.list(days_ago(3), None).await.expect("list");
    let checkpoint = refs.last().expect("one").checkpoint.clone();
    session.close().await;

    let mut s = lab.client(&name, &password).await;
    let old = s.examine("Sent").await.expect("EXAMINE").uid_validity.expect("UIDVALIDITY");
    let _ = s.logout().await;
    let new = (old + 1000).to_string();
    lab.doveadm(&["mailbox", "update", "-u", &name, "--uid-validity", &new, "Sent"]);

    let mut session = connector.open(&account).await.expect("reopen");
    match session.list(days_ago(3), Some(&checkpoint)).await {
        Err(ConnectorError::CheckpointReset { .. }) => {}
        other => panic!("a Sent checkpoint from the old UIDVALIDITY must be CheckpointReset, got {other:?}"),
    }
    assert!(matches!(session.fetch(&refs).await, Err(ConnectorError::CheckpointReset { .. })));
    let relisted = session.list(days_ago(3), None).await.expect("list from the date");
    assert_eq!(relisted.len(), 1);
    assert!(relisted[0].id.contains(&new), "{relisted:?}");
    session.close().await;
}

#[tokio::test]
async fn a_waiting_session_notices_mail_added_to_sent() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(Options { sent_check_interval: Duration::from_millis(150), ..lab.options() });
    let (name, password) = lab.add_user("sentwait").await;
    let mut session = connector.open(&lab.account(&connector, &name, &password, "SSL_TLS")).await.expect("open");
    let since = days_ago(1);
    assert!(session.list(since, None).await.expect("list").is_empty());
    // Several looks at Sent, nothing new: IDLE goes on until the timeout.
    assert_eq!(session.wait(Duration::from_millis(700)).await.expect("wait"), Wake::TimedOut);

    let waiting = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "the message put in Sent was not seen");
            if session.wait(left).await.expect("wait") == Wake::Changed {
                let refs = session.list(since, None).await.expect("list");
                if !refs.is_empty() {
                    break refs;
                }
            }
        }
    };
    let appending = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        append_to_sent(&lab, &name, &password, &kit::message("sent elsewhere", Utc::now()), Utc::now()).await;
    };
    let (refs, ()) = tokio::join!(waiting, appending);
    assert_eq!(refs.len(), 1);
    assert!(refs[0].id.starts_with("Sent/"), "{}", refs[0].id);
    session.close().await;
}
