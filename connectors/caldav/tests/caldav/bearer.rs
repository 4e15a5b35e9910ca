//! The Google preset (OAuth2 bearer tokens) against the lab's bearer front, which plays
//! Google's CalDAV API: tokens are checked with the OAuth2 stand-in.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use concierge_connector_caldav::CaldavConnector;
use concierge_connector_sdk::{AccessTokenSource, Account, CalendarConnector, Credentials, Settings};

use crate::lab::{Lab, StandInTokens, event};

fn google_account(email: &str, tokens: Arc<StandInTokens>) -> Account {
    let tokens: Arc<dyn AccessTokenSource> = tokens;
    Account {
        address: email.to_owned(),
        settings: Settings::new(),
        credentials: Credentials::OAuth2 { username: email.to_owned(), tokens },
    }
}

#[tokio::test]
async fn the_google_preset_signs_in_with_a_bearer_token_lists_and_writes() {
    let lab = Lab::start();
    let fay = lab.user().await;
    let cal = lab.client(&fay).make_calendar("Work", "work", Some("#00AA00")).await;
    let email = format!("{}@lab.test", fay.name);
    let tokens = StandInTokens::issue(&lab, &email, None).await;
    let google = CaldavConnector::google(Some(lab.bearer_url.clone()));

    let mut session = google.open(&google_account(&email, Arc::clone(&tokens))).await.expect("open");
    let calendars = session.calendars().await.expect("calendars");
    session.put(&cal, "g-1", &event("g-1", "Through Google"), None).await.expect("put");

    assert_eq!(google.descriptor().kind, "gmail");
    assert_eq!(calendars.len(), 1);
    assert_eq!(calendars[0].id, cal);
    assert_eq!(calendars[0].colour.as_deref(), Some("#00AA00"));
    let events = lab.client(&fay).events(&cal).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["summary"], "Through Google");
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_and_the_request_retried() {
    let lab = Lab::start();
    let gus = lab.user().await;
    lab.client(&gus).make_calendar("Work", "work", None).await;
    let email = format!("{}@lab.test", gus.name);
    let tokens = StandInTokens::issue(&lab, &email, Some(0)).await;
    let google = CaldavConnector::google(Some(lab.bearer_url.clone()));

    let mut session = google.open(&google_account(&email, Arc::clone(&tokens))).await.expect("open");
    let calendars = session.calendars().await.expect("calendars");

    assert_eq!(calendars.len(), 1);
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_revoked_grant_is_an_authentication_error() {
    let lab = Lab::start();
    let hal = lab.user().await;
    let email = format!("{}@lab.test", hal.name);
    let tokens = StandInTokens::issue(&lab, &email, None).await;
    StandInTokens::revoke(&lab, &email).await;
    let google = CaldavConnector::google(Some(lab.bearer_url.clone()));

    let error = google.open(&google_account(&email, Arc::clone(&tokens))).await.err().expect("open must fail");

    assert_eq!(error.code(), "AUTHENTICATION_FAILED", "{error}");
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1, "one refresh, then give up");
}
