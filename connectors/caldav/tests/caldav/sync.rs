//! What `changes` reports as the server's calendar changes: with sync tokens (RFC 6578),
//! without them (ETags), and when the calendar is gone.

use concierge_connector_sdk::{CalendarChanges, CalendarConnector, ConnectorError, KnownObject, SyncToken};

use crate::lab::{Lab, event, summary, task};

fn summaries(changes: &CalendarChanges) -> Vec<String> {
    let mut out: Vec<String> = changes.changed.iter().map(|o| summary(&o.ical).unwrap_or("?").to_owned()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_first_sync_is_complete_and_the_next_reports_only_what_changed() {
    let lab = Lab::start();
    let ann = lab.user().await;
    let client = lab.client(&ann);
    let cal = client.make_calendar("Work", "work", None).await;
    client.put(&cal, &event("one", "First")).await;
    let second = client.put(&cal, &event("two", "Second")).await;
    client.put(&cal, &task("todo")).await;
    let mut session = lab.session(&ann).await;

    let first = session.changes(&cal, None, &[]).await.expect("first sync");

    assert!(first.complete);
    assert_eq!(summaries(&first), ["First", "Second"], "tasks are not events");
    assert!(first.removed.is_empty());
    let token = first.token.clone().expect("Radicale gives sync tokens");

    client.put(&cal, &event("three", "Third")).await;
    client.put(&cal, &event("one", "First moved")).await;
    client.delete_event(&cal, "two").await;
    let next = session.changes(&cal, Some(&token), &[]).await.expect("incremental sync");

    assert!(!next.complete);
    assert_eq!(summaries(&next), ["First moved", "Third"]);
    assert_eq!(next.removed, vec![second]);
    assert!(next.token.is_some() && next.token != Some(token));
    let quiet = session.changes(&cal, next.token.as_ref(), &[]).await.expect("sync with nothing new");
    assert!(quiet.changed.is_empty() && quiet.removed.is_empty() && !quiet.complete);
}

#[tokio::test]
async fn a_sync_token_the_server_does_not_know_starts_over_with_a_complete_listing() {
    let lab = Lab::start();
    let ben = lab.user().await;
    let client = lab.client(&ben);
    let cal = client.make_calendar("Work", "work", None).await;
    client.put(&cal, &event("one", "First")).await;
    let mut session = lab.session(&ben).await;

    let changes = session.changes(&cal, Some(&SyncToken("http://radicale.org/ns/sync/deadbeef".into())), &[]).await.expect("sync");

    assert!(changes.complete);
    assert_eq!(summaries(&changes), ["First"]);
    assert!(changes.token.is_some());
}

#[tokio::test]
async fn without_sync_tokens_etags_tell_what_changed() {
    let lab = Lab::start();
    let cat = lab.user().await;
    let client = lab.client(&cat);
    let cal = client.make_calendar("Work", "work", None).await;
    client.put(&cal, &event("one", "First")).await;
    let second = client.put(&cal, &event("two", "Second")).await;
    client.put(&cal, &event("keep", "Kept")).await;
    let mut session = lab.connector_without_sync_tokens().open(&lab.account(&cat)).await.expect("open");

    let first = session.changes(&cal, None, &[]).await.expect("first listing");

    assert!(first.complete, "nothing known: the listing is the whole calendar");
    assert_eq!(first.token, None);
    assert_eq!(summaries(&first), ["First", "Kept", "Second"]);
    assert!(first.changed.iter().all(|o| o.etag.is_some()));
    let known: Vec<KnownObject> = first.changed.iter().map(|o| KnownObject { id: o.id.clone(), etag: o.etag.clone() }).collect();

    client.put(&cal, &event("one", "First moved")).await;
    client.put(&cal, &event("three", "Third")).await;
    client.delete_event(&cal, "two").await;
    let next = session.changes(&cal, None, &known).await.expect("second listing");

    assert!(!next.complete);
    assert_eq!(summaries(&next), ["First moved", "Third"], "the unchanged event is not fetched again");
    assert_eq!(next.removed, vec![second]);
}

#[tokio::test]
async fn a_calendar_deleted_on_the_server_is_gone() {
    let lab = Lab::start();
    let dan = lab.user().await;
    let client = lab.client(&dan);
    let cal = client.make_calendar("Work", "work", None).await;
    let mut session = lab.session(&dan).await;
    let token = session.changes(&cal, None, &[]).await.expect("first sync").token;
    let mut etag_session = lab.connector_without_sync_tokens().open(&lab.account(&dan)).await.expect("open");

    client.delete_calendar(&cal).await;

    let with_token = session.changes(&cal, token.as_ref(), &[]).await.expect_err("gone");
    let from_scratch = session.changes(&cal, None, &[]).await.expect_err("gone");
    let by_etag = etag_session.changes(&cal, None, &[]).await.expect_err("gone");
    for error in [with_token, from_scratch, by_etag] {
        assert!(matches!(error, ConnectorError::Gone { .. }), "{error:?}");
    }
}

#[tokio::test]
async fn a_large_calendar_is_fetched_in_batches() {
    let lab = Lab::start();
    let eve = lab.user().await;
    let cal = lab.client(&eve).make_calendar("Busy", "busy", None).await;
    let mut writer = lab.session(&eve).await;
    for i in 0..230 {
        writer.put(&cal, &format!("bulk-{i}"), &event(&format!("bulk-{i}"), &format!("Event {i}")), None).await.expect("put");
    }

    let mut session = lab.session(&eve).await;
    let all = session.changes(&cal, None, &[]).await.expect("sync");

    assert_eq!(all.changed.len(), 230);
    let mut ids: Vec<&str> = all.changed.iter().map(|o| o.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 230);
}
