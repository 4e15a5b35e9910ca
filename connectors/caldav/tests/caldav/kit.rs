//! The SDK's calendar conformance kit against the lab's real Radicale: with sync tokens
//! (RFC 6578), as for servers without them comparing ETags, as the iCloud preset (its fixed
//! URL replaced by the lab's), and as Google (bearer tokens from the OAuth2 stand-in,
//! through the lab's bearer front).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use concierge_connector_caldav::{CaldavConnector, Preset};
use concierge_connector_sdk::kit::{self, calendar::CalendarHarness, calendar::CalendarThrottling};
use concierge_connector_sdk::{
    AccessTokenSource, Account, Credentials, RemoteCalendar, Secret, Settings, SharedCalendarConnector, async_trait,
};
use serde_json::{Value, json};

use crate::faults::scripted_server;
use crate::lab::{Client, Lab, StandInTokens, User, lab_options};

/// How the kit's accounts sign in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The generic form: the server's URL, a user name and a password.
    Generic,
    /// A password preset with a fixed URL (iCloud's, here the lab's).
    ICloud,
    /// Google: OAuth2 bearer tokens, the URL the connector's.
    Google,
}

struct RadicaleHarness {
    lab: Lab,
    connector: Arc<CaldavConnector>,
    kind: Kind,
    /// address → the Radicale user behind it.
    users: Mutex<HashMap<String, User>>,
}

impl RadicaleHarness {
    fn new(lab: Lab, connector: CaldavConnector, kind: Kind) -> RadicaleHarness {
        RadicaleHarness { lab, connector: Arc::new(connector), kind, users: Mutex::default() }
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
        let account = match self.kind {
            Kind::Generic => self.lab.account(&user),
            Kind::ICloud => Account {
                address: format!("{}@lab.test", user.name),
                settings: Settings::new(),
                credentials: Credentials::Password { username: user.name.clone(), password: Secret::new(user.password.clone()) },
            },
            Kind::Google => {
                let email = format!("{}@lab.test", user.name);
                let tokens: Arc<dyn AccessTokenSource> = StandInTokens::issue(&self.lab, &email, None).await;
                Account { address: email.clone(), settings: Settings::new(), credentials: Credentials::OAuth2 { username: email, tokens } }
            }
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
        (self.kind == Kind::Google).then_some(self as &dyn kit::OAuthTokens)
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
        // The generic connector's URL is a setting; the presets' is the connector's.
        let connector = match self.kind {
            Kind::Generic => {
                throttled.settings.insert("url".into(), json!(url));
                CaldavConnector::generic(lab_options())
            }
            Kind::ICloud => icloud_at(&url),
            Kind::Google => CaldavConnector::google(Some(url)),
        };
        (Arc::new(connector), throttled)
    }
}

/// The iCloud preset with its fixed URL replaced.
fn icloud_at(url: &str) -> CaldavConnector {
    CaldavConnector::preset(Preset { start_url: Some(url.to_owned()), ..Preset::icloud() }, lab_options())
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
    let report = kit::calendar::run(&RadicaleHarness::new(lab, connector, Kind::Generic)).await;
    assert_eq!(report.skipped, [("calendar_refreshes_an_expired_access_token", "OAuth2 sign-in")], "{report:?}");
}

#[tokio::test]
async fn the_caldav_connector_passes_the_calendar_kit_comparing_etags() {
    let lab = Lab::start();
    let connector = lab.connector_without_sync_tokens();
    let report = kit::calendar::run(&RadicaleHarness::new(lab, connector, Kind::Generic)).await;
    assert_eq!(report.passed.len(), 5, "{report:?}");
}

#[tokio::test]
async fn the_icloud_preset_passes_the_calendar_kit() {
    let lab = Lab::start();
    let connector = icloud_at(&lab.url);
    let report = kit::calendar::run(&RadicaleHarness::new(lab, connector, Kind::ICloud)).await;
    assert_eq!(report.skipped, [("calendar_refreshes_an_expired_access_token", "OAuth2 sign-in")], "{report:?}");
}

#[tokio::test]
async fn the_google_preset_passes_the_calendar_kit_with_bearer_tokens() {
    let lab = Lab::start();
    let connector = CaldavConnector::google(Some(lab.bearer_url.clone()));
    let report = kit::calendar::run(&RadicaleHarness::new(lab, connector, Kind::Google)).await;
    assert_eq!(report.skipped, [], "every check applies: {report:?}");
}
