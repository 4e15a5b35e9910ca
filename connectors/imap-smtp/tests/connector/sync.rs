//! Listing, fetching and waiting against real Dovecot: read-only, checkpoint resets, bulk
//! syncs, cancelled waits.

use std::time::Duration;

use chrono::Utc;
use concierge_connector_imap_smtp::{ImapSmtpConnector, Options};
use concierge_connector_sdk::{ConnectorError, MailConnector, Wake, kit};
use serde_json::json;

use crate::lab::Lab;

fn days_ago(n: i64) -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::days(n)
}

#[tokio::test]
async fn fetching_leaves_messages_unseen() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("seen").await;
    for i in 0..3 {
        lab.deliver(&name, &password, &kit::message(&format!("unseen {i}"), days_ago(1)), days_ago(1)).await;
    }

    let mut session = connector.open(&lab.account(&connector, &name, &password, "SSL_TLS")).await.expect("open");
    let refs = session.list(days_ago(3), None).await.expect("list");
    let messages = session.fetch(&refs).await.expect("fetch");
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| m.reference.size == Some(m.bytes.len() as u64)));
    session.close().await;

    let flags = lab.seen_flags(&name, &password).await;
    assert_eq!(flags.len(), 3);
    assert!(flags.iter().all(|(_, seen)| !seen), "fetch must not set \\Seen: {flags:?}");
}

#[tokio::test]
async fn a_uidvalidity_change_resets_the_checkpoint_and_a_fresh_listing_still_works() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("uidv").await;
    lab.deliver(&name, &password, &kit::message("before one", days_ago(1)), days_ago(1)).await;
    lab.deliver(&name, &password, &kit::message("before two", days_ago(1)), days_ago(1)).await;
    let account = lab.account(&connector, &name, &password, "STARTTLS");

    let mut session = connector.open(&account).await.expect("open");
    let refs = session.list(days_ago(3), None).await.expect("list");
    let checkpoint = refs.last().expect("two messages").checkpoint.clone();
    session.close().await;

    let old = lab.uidvalidity(&name, &password).await;
    let new = (old + 1000).to_string();
    lab.doveadm(&["mailbox", "update", "-u", &name, "--uid-validity", &new, "INBOX"]);

    let mut session = connector.open(&account).await.expect("reopen");
    match session.list(days_ago(3), Some(&checkpoint)).await {
        Err(ConnectorError::CheckpointReset { .. }) => {}
        other => {
            panic!("a checkpoint from the old UIDVALIDITY must be CheckpointReset, got {other:?}")
        }
    }
    // The refs listed under the old UIDVALIDITY must not be fetched by UID either.
    assert!(matches!(session.fetch(&refs).await, Err(ConnectorError::CheckpointReset { .. })));
    let relisted = session.list(days_ago(3), None).await.expect("list from the date");
    assert_eq!(relisted.len(), 2);
    assert!(relisted.iter().all(|r| r.id.contains(&new)), "ids carry the new UIDVALIDITY: {relisted:?}");
    assert_eq!(session.fetch(&relisted).await.expect("fetch").len(), 2);
    session.close().await;
}

#[tokio::test]
async fn a_large_initial_sync_returns_every_message_oldest_first() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("bulk").await;
    let messages: Vec<Vec<u8>> = (0..2500).map(|i| kit::message(&format!("bulk {i:05}"), days_ago(1))).collect();
    lab.deliver_many(&name, &password, &messages, days_ago(1)).await;

    let mut session = connector.open(&lab.account(&connector, &name, &password, "SSL_TLS")).await.expect("open");
    let refs = session.list(days_ago(2), None).await.expect("list");
    assert_eq!(refs.len(), 2500);
    let fetched = session.fetch(&refs).await.expect("fetch");
    assert_eq!(fetched.len(), 2500);
    for (i, m) in fetched.iter().enumerate() {
        assert!(m.bytes.windows(10).any(|w| w == format!("bulk {i:05}").as_bytes()), "message {i} out of order");
    }
    // Asking in another order gets that order back.
    let reversed: Vec<_> = refs.iter().rev().take(3).cloned().collect();
    let back = session.fetch(&reversed).await.expect("fetch");
    assert_eq!(back.iter().map(|m| m.reference.id.clone()).collect::<Vec<_>>(), reversed.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
    session.close().await;
}

#[tokio::test]
async fn a_cancelled_wait_leaves_a_session_that_still_works() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("cancel").await;
    let mut session = connector.open(&lab.account(&connector, &name, &password, "SSL_TLS")).await.expect("open");
    assert!(session.list(days_ago(1), None).await.expect("list").is_empty());

    // The gateway drops wait() futures; IDLE is running when this one is dropped. (A
    // timeout of Duration::MAX must not overflow either.)
    let dropped = tokio::time::timeout(Duration::from_millis(300), session.wait(Duration::MAX)).await;
    assert!(dropped.is_err(), "nothing arrived, so the wait was cut short");

    assert!(session.list(days_ago(1), None).await.expect("list after a cancelled wait").is_empty());
    assert_eq!(session.wait(Duration::from_millis(200)).await.expect("a short wait"), Wake::TimedOut);

    lab.deliver(&name, &password, &kit::message("after cancel", Utc::now()), Utc::now()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "the delivery was not seen");
        session.wait(left).await.expect("wait");
        if !session.list(days_ago(1), None).await.expect("list").is_empty() {
            break;
        }
    }
    session.close().await;
}

#[tokio::test]
async fn idle_is_renewed_and_still_sees_new_mail() {
    let lab = Lab::start();
    let connector =
        ImapSmtpConnector::generic(concierge_connector_imap_smtp::Options { idle_renew: Duration::from_millis(150), ..lab.options() });
    let (name, password) = lab.add_user("renew").await;
    let mut session = connector.open(&lab.account(&connector, &name, &password, "SSL_TLS")).await.expect("open");
    assert!(session.list(days_ago(1), None).await.expect("list").is_empty());
    // Several IDLE/DONE cycles, nothing new.
    assert_eq!(session.wait(Duration::from_millis(700)).await.expect("wait"), Wake::TimedOut);

    let waiting = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "the delivery was not seen");
            if session.wait(left).await.expect("wait") == Wake::Changed && !session.list(days_ago(1), None).await.expect("list").is_empty()
            {
                break;
            }
        }
    };
    let delivering = async {
        // Lands after a renewal or two.
        tokio::time::sleep(Duration::from_millis(400)).await;
        lab.deliver(&name, &password, &kit::message("renewed", Utc::now()), Utc::now()).await;
    };
    tokio::join!(waiting, delivering);
    session.close().await;
}

#[tokio::test]
async fn a_missing_folder_is_a_settings_error_on_the_folder_field() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("folder").await;
    let mut account = lab.account(&connector, &name, &password, "SSL_TLS");
    account.settings.insert("folder".into(), json!("No Such Folder"));
    match connector.open(&account).await {
        Err(ConnectorError::Settings(e)) => assert_eq!(e.field, "folder"),
        Err(other) => panic!("expected a settings error, got {other:?}"),
        Ok(_) => panic!("the folder does not exist"),
    }
}

#[tokio::test]
async fn without_idle_the_session_polls_and_still_sees_new_mail() {
    let lab = Lab::start_without_idle();
    let connector = ImapSmtpConnector::generic(Options { poll_interval: Duration::from_millis(200), ..lab.options() });
    let (name, password) = lab.add_user("poll").await;
    let account = lab.account(&connector, &name, &password, "SSL_TLS");
    let mut session = connector.open(&account).await.expect("open");
    let since = days_ago(1);
    assert!(session.list(since, None).await.expect("list").is_empty());

    // No mail yet: asked to wait a minute, a polling session is back after one poll
    // interval (an IDLE session would sit until the mailbox changed or the minute ran out).
    let started = std::time::Instant::now();
    session.wait(Duration::from_secs(60)).await.expect("wait");
    assert!(started.elapsed() < Duration::from_secs(3), "the session did not poll: waited {:?}", started.elapsed());

    lab.deliver(&name, &password, &kit::message("polled", Utc::now()), Utc::now()).await;
    session.wait(Duration::from_secs(60)).await.expect("wait");
    assert_eq!(session.list(since, None).await.expect("list").len(), 1);
    session.close().await;
}
