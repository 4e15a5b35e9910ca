//! The SDK's calendar conformance kit against the lab's real Radicale: with sync tokens
//! (RFC 6578), as for servers without them comparing ETags, and as Google (bearer tokens
//! from the OAuth2 stand-in, through the lab's bearer front).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use concierge_connector_caldav::CaldavConnector;
use concierge_connector_sdk::kit::{self, calendar::CalendarHarness, calendar::CalendarThrottling};
use concierge_connector_sdk::{AccessTokenSource, Account, Credentials, RemoteCalendar, Settings, SharedCalendarConnector, async_trait};
use serde_json::{Value, json};

use crate::faults::scripted_server;
use crate::lab::{Client, Lab, StandInTokens, User};

struct RadicaleHarness {
    lab: Lab,
    connector: Arc<CaldavConnector>,
    /// Sign in as Google's users do, with OAuth2 bearer tokens.
    google: bool,
    /// address → the Radicale user behind it.
    users: Mutex<HashMap<String, User>>,
}

impl RadicaleHarness {
    fn new(lab: Lab, connector: CaldavConnector, google: bool) -> RadicaleHarness {
        RadicaleHarness { lab, connector: Arc::new(connector), google, users: Mutex::default() }
    }

    /// The account's user, as the independent client signs in.
    fn client(&self, account: &Account) -> Client {
        let user = self.users.lock().ok().and_then(|u| u.get(&account.address).cloned()).expect("a kit account");
        self.lab.client(&user)
    }

    async fn oauth_admin(&self, path: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.lab.oauth_url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the OAuth2 stand-in answers");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        serde_json::from_str(&response.text().await.expect("body")).expect("JSON")
    }
}

#[async_trait]
impl CalendarHarness for RadicaleHarness {
    fn connector(&self) -> SharedCalendarConnector {
        Arc::clone(&self.connector) as SharedCalendarConnector
    }

    async fn new_account(&self, calendar: &str) -> Account {
        let user = self.lab.user().await;
        self.lab.client(&user).make_calendar(calendar, calendar, None).await;
        let account = if self.google {
            let email = format!("{}@lab.test", user.name);
            let tokens: Arc<dyn AccessTokenSource> = StandInTokens::issue(&self.lab, &email, None).await;
            Account { address: email.clone(), settings: Settings::new(), credentials: Credentials::OAuth2 { username: email, tokens } }
        } else {
            self.lab.account(&user)
        };
        if let Ok(mut users) = self.users.lock() {
            users.insert(account.address.clone(), user);
        }
        account
    }

    async fn add_event(&self, account: &Account, calendar: &RemoteCalendar, uid: &str, summary: &str) {
        self.client(account).put(&calendar.id, &kit::calendar::event(uid, summary, 2)).await;
    }

    /// The client replaces the event with this UID wherever it is stored.
    async fn rename_event(&self, account: &Account, calendar: &RemoteCalendar, uid: &str, summary: &str) {
        self.client(account).put(&calendar.id, &kit::calendar::event(uid, summary, 2)).await;
    }

    async fn summaries(&self, account: &Account, calendar: &RemoteCalendar) -> Vec<String> {
        let mut out: Vec<String> =
            self.client(account).events(&calendar.id).await.iter().map(|e| e["summary"].as_str().unwrap_or_default().to_owned()).collect();
        out.sort();
        out
    }

    fn oauth(&self) -> Option<&dyn kit::OAuthTokens> {
        self.google.then_some(self as &dyn kit::OAuthTokens)
    }

    fn throttling(&self) -> Option<&dyn CalendarThrottling> {
        Some(self)
    }
}

/// Radicale never throttles, so the connector is pointed at a scripted server of the tests
/// (faults.rs) answering every request as a busy CalDAV server does: 429 with Retry-After.
#[async_trait]
impl CalendarThrottling for RadicaleHarness {
    async fn throttled(&self, account: &Account) -> (SharedCalendarConnector, Account) {
        let url = scripted_server(Arc::new(|_: &str| (429, vec![("Retry-After", "7".to_owned())], String::new()))).await;
        let mut throttled = account.clone();
        // The Google preset's URL is the connector's; the generic connector's is a setting.
        let connector = if self.google {
            CaldavConnector::google(Some(url))
        } else {
            throttled.settings.insert("url".into(), json!(url));
            CaldavConnector::generic(crate::lab::lab_options())
        };
        (Arc::new(connector), throttled)
    }
}

/// The stand-in's own books: it expires tokens and counts the refresh grants it answered.
#[async_trait]
impl kit::OAuthTokens for RadicaleHarness {
    async fn expire_access_token(&self, account: &Account) {
        self.oauth_admin("/admin/expire", json!({ "email": account.address })).await;
    }

    async fn refreshes(&self, account: &Account) -> u32 {
        let url = format!("{}/admin/stats?email={}", self.lab.oauth_url, account.address.replace('@', "%40"));
        let stats: Value = serde_json::from_str(&reqwest::get(url).await.expect("stats").text().await.expect("body")).expect("JSON");
        u32::try_from(stats["refresh_token"].as_u64().expect("a count")).unwrap_or(u32::MAX)
    }
}

#[tokio::test]
async fn the_caldav_connector_passes_the_calendar_kit_with_sync_tokens() {
    let lab = Lab::start();
    let connector = lab.connector();
    let report = kit::calendar::run(&RadicaleHarness::new(lab, connector, false)).await;
    assert_eq!(report.skipped, [("calendar_refreshes_an_expired_access_token", "OAuth2 sign-in")], "{report:?}");
}

#[tokio::test]
async fn the_caldav_connector_passes_the_calendar_kit_comparing_etags() {
    let lab = Lab::start();
    let connector = lab.connector_without_sync_tokens();
    let report = kit::calendar::run(&RadicaleHarness::new(lab, connector, false)).await;
    assert_eq!(report.passed.len(), 5, "{report:?}");
}

#[tokio::test]
async fn the_google_preset_passes_the_calendar_kit_with_bearer_tokens() {
    let lab = Lab::start();
    let connector = CaldavConnector::google(Some(lab.bearer_url.clone()));
    let report = kit::calendar::run(&RadicaleHarness::new(lab, connector, true)).await;
    assert_eq!(report.skipped, [], "every check applies: {report:?}");
}
