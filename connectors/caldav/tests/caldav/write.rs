//! Writing Concierge's events: `put` and `delete`, checked with the independent client.

use concierge_connector_sdk::ConnectorError;

use crate::lab::{Lab, event};

#[tokio::test]
async fn putting_the_same_uid_twice_leaves_one_event_with_the_latest_content() {
    let lab = Lab::start();
    let ann = lab.user().await;
    let client = lab.client(&ann);
    let cal = client.make_calendar("Work", "work", None).await;
    let mut session = lab.session(&ann).await;

    let first = session.put(&cal, "booking-1@concierge", &event("booking-1@concierge", "Booked"), None).await.expect("put");
    let again = session.put(&cal, "booking-1@concierge", &event("booking-1@concierge", "Booked again"), None).await.expect("put again");

    let events = client.events(&cal).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["uid"], "booking-1@concierge");
    assert_eq!(events[0]["summary"], "Booked again");
    assert_eq!(events[0]["location"], "Room 4");
    assert_eq!(events[0]["attendees"][0], "mailto:guest@lab.test");
    assert_eq!(first.id, again.id);
    assert_eq!(events[0]["href"], again.id.as_str());
    assert!(first.etag.is_some() && again.etag.is_some() && first.etag != again.etag);
}

#[tokio::test]
async fn put_with_an_existing_id_replaces_that_event() {
    let lab = Lab::start();
    let ben = lab.user().await;
    let client = lab.client(&ben);
    let cal = client.make_calendar("Work", "work", None).await;
    let href = client.put(&cal, &event("theirs", "Made elsewhere")).await;
    let mut session = lab.session(&ben).await;

    let receipt = session.put(&cal, "theirs", &event("theirs", "Changed by Concierge"), Some(&href)).await.expect("put");

    assert_eq!(receipt.id, href);
    let events = client.events(&cal).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["summary"], "Changed by Concierge");
}

#[tokio::test]
async fn delete_removes_the_event_and_deleting_it_again_is_fine() {
    let lab = Lab::start();
    let cat = lab.user().await;
    let client = lab.client(&cat);
    let cal = client.make_calendar("Work", "work", None).await;
    let mut session = lab.session(&cat).await;
    let keep = session.put(&cal, "keep", &event("keep", "Stays"), None).await.expect("put");
    let gone = session.put(&cal, "gone", &event("gone", "Goes"), None).await.expect("put");

    session.delete(&cal, &gone.id).await.expect("delete");
    session.delete(&cal, &gone.id).await.expect("deleting a missing event is not an error");

    let events = client.events(&cal).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["href"], keep.id.as_str());
}

#[tokio::test]
async fn writing_to_a_read_only_calendar_is_rejected() {
    let lab = Lab::start();
    let dan = lab.user().await;
    let cal = lab.admin().make_calendar_for(&lab.client(&dan), "Team", "ro-team").await;
    let mut session = lab.session(&dan).await;

    let error = session.put(&cal, "x", &event("x", "Nope"), None).await.expect_err("read-only");

    assert_eq!(error.code(), "REJECTED", "{error}");
}

#[tokio::test]
async fn writing_to_a_deleted_calendar_is_gone() {
    let lab = Lab::start();
    let eve = lab.user().await;
    let client = lab.client(&eve);
    let cal = client.make_calendar("Work", "work", None).await;
    let mut session = lab.session(&eve).await;
    client.delete_calendar(&cal).await;

    let error = session.put(&cal, "x", &event("x", "Lost"), None).await.expect_err("gone");

    assert!(matches!(error, ConnectorError::Gone { .. }), "{error:?}");
}
