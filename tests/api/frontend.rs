//! What a settings page relies on, called the way a frontend calls it: every refused field of
//! a form at once, each with a stable reason and a message in the reader's language; browser
//! language tags; spec-true `data` when a root field fails; the user's push devices; expired
//! and duplicate access tokens.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, codes};

const UPDATE_PROFILE: &str = "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { firstName lastName phone language } }";

/// The refused fields of a response, as (field, reason) pairs, in order.
fn refused(r: &Value) -> Vec<(String, String)> {
    r["errors"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    (
                        e["extensions"]["field"].as_str().unwrap_or_default().to_owned(),
                        e["extensions"]["reason"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(f, r)| ((*f).to_owned(), (*r).to_owned())).collect()
}

#[tokio::test]
async fn a_form_with_three_bad_fields_hears_about_all_three_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r =
        app.gql(Some(&ada.token), UPDATE_PROFILE, json!({ "i": { "firstName": "", "lastName": "x".repeat(300), "phone": "hello" } })).await;

    assert_eq!(refused(&r), pairs(&[("firstName", "REQUIRED"), ("lastName", "TOO_LONG"), ("phone", "NOT_A_PHONE_NUMBER")]), "{r}");
    assert_eq!(codes(&r), ["BAD_USER_INPUT"; 3]);
    for e in r["errors"].as_array().unwrap() {
        assert_eq!(e["path"], json!(["updateProfile"]), "each error points at the mutation: {e}");
        assert!(e["locations"].as_array().is_some_and(|l| !l.is_empty()), "{e}");
    }
    let too_long = &r["errors"][1];
    assert_eq!(too_long["extensions"]["params"]["max"], 100, "{too_long}");
    assert_eq!(too_long["message"], "at most 100 characters");
    // `updateProfile` is non-null: it failed, so `data` is null (and nothing was saved).
    assert!(r["data"].is_null(), "{r}");
    let me = app.gql(Some(&ada.token), "{ me { firstName lastName phone } }", json!({})).await;
    assert_eq!(me["data"]["me"], json!({ "firstName": "Test", "lastName": "User", "phone": null }));

    // One bad field among good ones: still nothing is saved.
    let r = app.gql(Some(&ada.token), UPDATE_PROFILE, json!({ "i": { "firstName": "Ada", "phone": "call me" } })).await;
    assert_eq!(refused(&r), pairs(&[("phone", "NOT_A_PHONE_NUMBER")]), "{r}");
    let me = app.gql(Some(&ada.token), "{ me { firstName } }", json!({})).await;
    assert_eq!(me["data"]["me"]["firstName"], "Test");
}

#[tokio::test]
async fn messages_follow_the_users_language_or_the_browsers_when_signed_out() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let r = app.gql(Some(&ada.token), UPDATE_PROFILE, json!({ "i": { "language": "pl" } })).await;
    assert_eq!(r["data"]["updateProfile"]["language"], "pl", "{r}");

    let r = app.gql(Some(&ada.token), UPDATE_PROFILE, json!({ "i": { "firstName": "", "lastName": "x".repeat(101) } })).await;
    let messages: Vec<&str> = r["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["nie może być puste", "najwyżej 100 znaków"], "{r}");
    // The reason codes stay the same in every language.
    assert_eq!(refused(&r), pairs(&[("firstName", "REQUIRED"), ("lastName", "TOO_LONG")]));

    // Signed out: the browser's Accept-Language picks the language (German here, the first
    // supported one it asks for).
    let r: Value = app
        .client()
        .post(format!("{}/graphql", app.base))
        .header("accept-language", "ja-JP, de-AT;q=0.8, en;q=0.5")
        .json(&json!({
            "query": "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            "variables": { "i": { "email": "bob@example.com", "password": PASSWORD, "firstName": " ", "lastName": "B" } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["errors"][0]["message"], "darf nicht leer sein", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["reason"], "REQUIRED");
}

#[tokio::test]
async fn a_browser_language_tag_lands_on_the_nearest_supported_language() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    for (sent, chosen) in [("pl-PL", "pl"), ("de-CH", "de"), ("en-GB", "en"), ("FR", "fr")] {
        let r = app.gql(Some(&ada.token), UPDATE_PROFILE, json!({ "i": { "language": sent } })).await;
        assert_eq!(r["data"]["updateProfile"]["language"], chosen, "{sent}: {r}");
    }
    for bad in ["ja-JP", "not a tag", ""] {
        let r = app.gql(Some(&ada.token), UPDATE_PROFILE, json!({ "i": { "language": bad } })).await;
        assert_eq!(refused(&r), pairs(&[("language", "UNSUPPORTED_LANGUAGE")]), "{bad}: {r}");
    }
}

#[tokio::test]
async fn availability_and_the_daily_summary_report_every_bad_field_at_once() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: UpdateAvailabilityInput!) { updateAvailability(input: $i) { timeZone } }",
            json!({ "i": {
                "timeZone": "Mars/Olympus",
                "weeklySchedule": [
                    { "day": "MONDAY", "intervals": [{ "start": "9am", "end": "17:00" }] },
                    { "day": "TUESDAY", "intervals": [{ "start": "09:00", "end": "25:00" }] },
                ],
            } }),
        )
        .await;
    assert_eq!(
        refused(&r),
        pairs(&[
            ("weeklySchedule[0].intervals[0].start", "NOT_A_TIME_OF_DAY"),
            ("weeklySchedule[1].intervals[0].end", "NOT_A_TIME_OF_DAY"),
            ("timeZone", "UNKNOWN_TIME_ZONE"),
        ]),
        "{r}"
    );

    // Rules across fields, all at once too: a day listed twice, reversed hours, and an
    // out-of-office period that ends before it starts.
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: UpdateAvailabilityInput!) { updateAvailability(input: $i) { timeZone } }",
            json!({ "i": {
                "weeklySchedule": [
                    { "day": "MONDAY", "intervals": [{ "start": "17:00", "end": "09:00" }] },
                    { "day": "MONDAY", "intervals": [] },
                ],
                "outOfOffice": { "from": "2030-01-10T00:00:00Z", "to": "2030-01-01T00:00:00Z" },
            } }),
        )
        .await;
    let reasons: Vec<String> = refused(&r).into_iter().map(|(_, reason)| reason).collect();
    assert_eq!(reasons.len(), 2, "{r}");
    assert!(reasons.iter().all(|r| r == "END_BEFORE_START" || r == "DUPLICATE"), "{reasons:?}");
    assert!(refused(&r).iter().any(|(f, _)| f == "outOfOffice.to"), "{r}");

    let r = app
        .gql(
            Some(&ada.token),
            "mutation($i: UpdatePreferencesInput!) { updatePreferences(input: $i) { audio } }",
            json!({ "i": { "dailySummary": { "deliveryTime": "7 o'clock", "timeZone": "Nowhere/Land" } } }),
        )
        .await;
    assert_eq!(refused(&r), pairs(&[("deliveryTime", "NOT_A_TIME_OF_DAY"), ("timeZone", "UNKNOWN_TIME_ZONE")]), "{r}");
}

#[tokio::test]
async fn a_failing_non_null_root_field_nulls_data() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let missing = "00000000-0000-7000-8000-000000000000";

    // `workspace` is `Workspace!`: its error propagates to the root, whichever field comes first.
    for query in ["query($id: ID!) { me { id } workspace(id: $id) { id } }", "query($id: ID!) { workspace(id: $id) { id } me { id } }"] {
        let r = app.gql(Some(&ada.token), query, json!({ "id": missing })).await;
        assert!(r["data"].is_null(), "{r}");
        assert_eq!(r["errors"].as_array().map(Vec::len), Some(1), "{r}");
        assert_eq!(r["errors"][0]["path"], json!(["workspace"]), "{r}");
    }
    // Both succeed: data as usual.
    let r = app.gql(Some(&ada.token), "query($id: ID!) { me { id } workspace(id: $id) { id } }", json!({ "id": ada.workspace_id })).await;
    assert_eq!(r["data"]["me"]["id"], ada.id.as_str(), "{r}");
    assert_eq!(r["data"]["workspace"]["id"], ada.workspace_id.as_str(), "{r}");
}

#[tokio::test]
async fn a_limit_error_has_no_locations() {
    let app = TestApp::spawn_with(|c| c.max_query_complexity = 5).await;
    let r = app.gql(None, "{ me { id email firstName lastName fullName status createdAt } }", json!({})).await;
    assert_eq!(r["errors"][0]["extensions"]["limit"], "complexity", "{r}");
    assert!(r["errors"][0].get("locations").is_none(), "a refusal with no place in the document: {r}");
}

const REGISTER: &str = "mutation($e: String!, $k: PushKeysInput!) { registerPushSubscription(endpoint: $e, keys: $k) }";
const GOOD_KEY: &str = "BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
const AUTH: &str = "Zl2DfSz9DwkePkvteR7iog";

#[tokio::test]
async fn a_user_sees_and_removes_their_push_devices_and_nobody_elses() {
    let app = TestApp::spawn_with(|c| c.outbound_allow = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;

    // 65 bytes starting with 4, but not a point on the curve: refused now, not at first send.
    let off_curve = format!("B{}", "A".repeat(86));
    let r = app.gql(Some(&ada.token), REGISTER, json!({ "e": "https://127.0.0.1:9/x", "k": { "p256dh": off_curve, "auth": AUTH } })).await;
    assert_eq!(crate::helpers::error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("p256dh".to_owned())), "{r}");

    for device in ["phone", "laptop"] {
        let r = app
            .gql(
                Some(&ada.token),
                REGISTER,
                json!({ "e": format!("https://127.0.0.1:9/push/{device}"), "k": { "p256dh": GOOD_KEY, "auth": AUTH } }),
            )
            .await;
        assert_eq!(r["data"]["registerPushSubscription"], true, "{r}");
    }
    let list = "{ me { pushSubscriptions { id endpointOrigin createdAt lastSuccessAt failureCount } } }";
    let r = app.gql(Some(&ada.token), list, json!({})).await;
    let devices = r["data"]["me"]["pushSubscriptions"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    assert_eq!(devices.len(), 2, "{r}");
    assert_eq!(devices[0]["endpointOrigin"], "https://127.0.0.1:9", "the origin only, never the secret path: {r}");
    assert_eq!(devices[0]["failureCount"], 0);
    assert!(devices[0]["lastSuccessAt"].is_null());
    assert!(!r.to_string().contains("/push/"), "{r}");

    // Bob sees none of Ada's, and cannot remove one.
    let r = app.gql(Some(&bob.token), list, json!({})).await;
    assert_eq!(r["data"]["me"]["pushSubscriptions"], json!([]), "{r}");
    let remove = "mutation($id: ID!) { removePushSubscription(id: $id) }";
    let r = app.gql(Some(&bob.token), remove, json!({ "id": devices[0]["id"] })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    let r = app.gql(None, remove, json!({ "id": devices[0]["id"] })).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");
    let r = app.gql(Some(&ada.token), remove, json!({ "id": "not-an-id" })).await;
    assert_eq!(crate::helpers::error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("id".to_owned())), "{r}");

    let r = app.gql(Some(&ada.token), remove, json!({ "id": devices[0]["id"] })).await;
    assert_eq!(r["data"]["removePushSubscription"], true, "{r}");
    let r = app.gql(Some(&ada.token), list, json!({})).await;
    assert_eq!(r["data"]["me"]["pushSubscriptions"].as_array().map(Vec::len), Some(1), "{r}");
}

#[tokio::test]
async fn an_expired_token_is_flagged_and_a_second_token_of_the_same_name_is_refused() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let create = "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { accessToken { name expired } } }";

    let past = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let r = app.gql(Some(&ada.token), create, json!({ "i": { "name": "short", "scopes": ["profile:read"], "expiresAt": past } })).await;
    assert_eq!(r["data"]["createAccessToken"]["accessToken"]["expired"], false, "{r}");
    let r = app.gql(Some(&ada.token), create, json!({ "i": { "name": "ci", "scopes": ["profile:read"] } })).await;
    assert_eq!(r["data"]["createAccessToken"]["accessToken"]["expired"], false, "{r}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let r = app.gql(Some(&ada.token), "{ me { accessTokens { name expired } } }", json!({})).await;
    let mut listed: Vec<(String, bool)> = r["data"]["me"]["accessTokens"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["expired"].as_bool().unwrap()))
        .collect();
    listed.sort();
    assert_eq!(listed, [("ci".to_owned(), false), ("short".to_owned(), true)]);

    // Names tell tokens apart: the same name again (any case) is a conflict.
    let r = app.gql(Some(&ada.token), create, json!({ "i": { "name": "CI", "scopes": ["profile:read"] } })).await;
    assert_eq!(crate::helpers::error_of(&r), ("CONFLICT".to_owned(), Some("name".to_owned())), "{r}");
    // Another user may use it.
    let bob = app.user("bob@example.com").await;
    let r = app.gql(Some(&bob.token), create, json!({ "i": { "name": "ci", "scopes": ["profile:read"] } })).await;
    assert!(r.get("errors").is_none(), "{r}");
}

#[tokio::test]
async fn every_settings_change_reaches_another_tab_through_me_updated() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "token": ada.token } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    let query = "subscription { meUpdated { preferences { audio } availability { timeZone } } }";
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query } })).await;
    let topic = concierge::fanout::Topic::Account(concierge::identity::model::AccountId(uuid::Uuid::parse_str(&ada.id).unwrap()));
    app.listening(topic, 2).await;

    // Another user's change is not heard here.
    app.gql(Some(&bob.token), "mutation { updatePreferences(input: {audio: NONE}) { audio } }", json!({})).await;
    let r = app.gql(Some(&ada.token), "mutation { updatePreferences(input: {audio: NONE}) { audio } }", json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let next = ws.next_json().await;
    assert_eq!(next["payload"]["data"]["meUpdated"]["preferences"]["audio"], "NONE", "{next}");

    let matrix = "mutation { updateNotificationPreferences(changes: [{event: MENTION, channel: EMAIL, enabled: false}]) { audio } }";
    assert!(app.gql(Some(&ada.token), matrix, json!({})).await.get("errors").is_none());
    assert_eq!(ws.next_json().await["payload"]["data"]["meUpdated"]["preferences"]["audio"], "NONE");

    let r =
        app.gql(Some(&ada.token), "mutation { updateAvailability(input: {timeZone: \"Europe/Warsaw\"}) { timeZone } }", json!({})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let next = ws.next_json().await;
    assert_eq!(next["payload"]["data"]["meUpdated"]["availability"]["timeZone"], "Europe/Warsaw", "{next}");
}

#[tokio::test]
async fn colleagues_see_a_members_time_zone_and_time_off_but_not_their_schedule() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let eve = app.user("eve@example.com").await;
    app.add_member(&ada, &ada.workspace_id, &bob.email, "MEMBER").await;
    let r = app
        .gql(
            Some(&bob.token),
            "mutation($i: UpdateAvailabilityInput!) { updateAvailability(input: $i) { timeZone } }",
            json!({ "i": {
                "timeZone": "Asia/Tokyo",
                "outOfOffice": { "from": "2040-07-01T00:00:00Z", "to": "2040-07-15T00:00:00Z", "message": "Hiking, back on the 15th" },
            } }),
        )
        .await;
    assert!(r.get("errors").is_none(), "{r}");

    let members = "query($w: ID!) { workspace(id: $w) { members { edges { node { user { id } \
                   availability { status timeZone outOfOffice { start end } } } } } } }";
    let r = app.gql(Some(&ada.token), members, json!({ "w": ada.workspace_id })).await;
    let edges = r["data"]["workspace"]["members"]["edges"].as_array().unwrap_or_else(|| panic!("{r}")).clone();
    let shown = |id: &str| edges.iter().find(|e| e["node"]["user"]["id"] == id).map(|e| e["node"]["availability"].clone());
    let bobs = shown(&bob.id).unwrap_or_else(|| panic!("{r}"));
    assert_eq!(bobs["timeZone"], "Asia/Tokyo", "{r}");
    assert_eq!(bobs["outOfOffice"]["start"], "2040-07-01T00:00:00+00:00", "{r}");
    assert_eq!(shown(&ada.id).unwrap()["outOfOffice"], Value::Null, "{r}");
    assert!(!r.to_string().contains("Hiking"), "the message is Bob's to send, not a listing: {r}");

    // Schedules are not part of what colleagues see at all.
    let r = app.gql(Some(&ada.token), "{ __type(name: \"MemberAvailability\") { fields { name } } }", json!({})).await;
    let fields: Vec<&str> = r["data"]["__type"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(fields, ["status", "timeZone", "outOfOffice"], "{r}");

    // Someone outside the workspace sees nothing of it.
    let r = app.gql(Some(&eve.token), members, json!({ "w": ada.workspace_id })).await;
    assert!(r["data"].is_null() && !r.to_string().contains("Tokyo"), "{r}");
}

/// The README's way to start a frontend: one request loads every settings page, under the
/// default query limits, for a brand-new account.
#[tokio::test]
async fn the_settings_page_query_loads_every_page_in_one_request() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let query = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/settings-page.graphql")).expect("the example");

    let r = app.gql(Some(&ada.token), &query, json!({})).await;

    assert!(r.get("errors").is_none(), "{r}");
    let data = &r["data"];
    assert_eq!(data["me"]["email"], "ada@example.com");
    assert_eq!(data["me"]["sessionsConnection"]["edges"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(data["me"]["sessionsConnection"]["edges"][0]["node"]["current"], true);
    assert!(data["me"]["preferences"]["notifications"].as_array().is_some_and(|c| c.len() == 21 * 3), "{r}");
    assert_eq!(data["me"]["membershipsConnection"]["edges"][0]["node"]["role"], "OWNER");
    assert_eq!(data["me"]["membershipsConnection"]["totalCount"], 1);
    assert!(data["supportedLanguages"].as_array().is_some_and(|l| l.len() == 4), "{r}");
    assert!(data["passwordPolicy"]["rules"].as_array().is_some_and(|r| !r.is_empty()));
    assert!(data["eventCatalogue"].as_array().is_some_and(|k| !k.is_empty()));

    // Anonymous: the page's data is refused as a whole (`me` is non-null), nothing leaks.
    let r = app.gql(None, &query, json!({})).await;
    assert!(r["data"].is_null(), "{r}");
    assert!(!r.to_string().contains("ada@example.com"));
}

#[tokio::test]
async fn one_profile_time_zone_moves_availability_and_the_daily_summary_unless_they_have_their_own() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let zones = "{ me { timeZone availability { timeZone timeZoneFollowsProfile } \
                 preferences { dailySummary { enabled deliveryTime timeZone timeZoneFollowsProfile } } } }";
    let state = |r: &Value| {
        let me = &r["data"]["me"];
        (
            me["timeZone"].as_str().map(str::to_owned),
            me["availability"]["timeZone"].as_str().unwrap_or_default().to_owned(),
            me["preferences"]["dailySummary"]["timeZone"].as_str().unwrap_or_default().to_owned(),
            me["preferences"]["dailySummary"]["timeZoneFollowsProfile"].as_bool(),
        )
    };
    let set_profile = |zone: &'static str| {
        let (app, token) = (&app, ada.token.clone());
        async move { app.gql(Some(&token), UPDATE_PROFILE, json!({ "i": { "timeZone": zone } })).await }
    };
    let summary = "mutation($s: DailySummaryInput!) { updatePreferences(input: {dailySummary: $s}) { audio } }";

    let r = app.gql(Some(&ada.token), zones, json!({})).await;
    assert_eq!(state(&r), (None, "UTC".into(), "UTC".into(), Some(true)), "{r}");

    // The person moves: one change.
    assert!(set_profile("Europe/Warsaw").await.get("errors").is_none());
    let r = app.gql(Some(&ada.token), zones, json!({})).await;
    assert_eq!(state(&r), (Some("Europe/Warsaw".into()), "Europe/Warsaw".into(), "Europe/Warsaw".into(), Some(true)), "{r}");
    assert_eq!(r["data"]["me"]["availability"]["timeZoneFollowsProfile"], true);

    // The summary gets a zone of its own, and the next move leaves it there.
    let r =
        app.gql(Some(&ada.token), summary, json!({ "s": { "enabled": true, "deliveryTime": "08:00", "timeZone": "Asia/Tokyo" } })).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert!(set_profile("America/New_York").await.get("errors").is_none());
    let r = app.gql(Some(&ada.token), zones, json!({})).await;
    assert_eq!(state(&r), (Some("America/New_York".into()), "America/New_York".into(), "Asia/Tokyo".into(), Some(false)), "{r}");

    // Back to following the profile; the next summary is due at 08:00 in New York.
    let r = app.gql(Some(&ada.token), summary, json!({ "s": { "followProfileTimeZone": true } })).await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = app.gql(Some(&ada.token), zones, json!({})).await;
    assert_eq!(state(&r).2, "America/New_York", "{r}");
    let db = &app.services.db;
    let next: Option<chrono::DateTime<chrono::Utc>> =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT summary_next_at FROM preference").fetch_one(p).await).unwrap();
    let next = next.expect("a summary is scheduled").with_timezone(&chrono_tz::America::New_York);
    assert_eq!(next.format("%H:%M").to_string(), "08:00");

    // A bad zone is refused with the others, and both at once is refused.
    let r = app.gql(Some(&ada.token), UPDATE_PROFILE, json!({ "i": { "timeZone": "Mars/Olympus", "firstName": "" } })).await;
    assert_eq!(refused(&r), pairs(&[("firstName", "REQUIRED"), ("timeZone", "UNKNOWN_TIME_ZONE")]), "{r}");
    let r = app.gql(Some(&ada.token), summary, json!({ "s": { "timeZone": "Asia/Tokyo", "followProfileTimeZone": true } })).await;
    assert_eq!(refused(&r), pairs(&[("followProfileTimeZone", "INVALID")]), "{r}");
    let r = app
        .gql(
            Some(&ada.token),
            "mutation { updateAvailability(input: {timeZone: \"Asia/Tokyo\", followProfileTimeZone: true}) { timeZone } }",
            json!({}),
        )
        .await;
    assert_eq!(refused(&r), pairs(&[("followProfileTimeZone", "INVALID")]), "{r}");
}

#[tokio::test]
async fn lists_page_both_ways_and_cursors_are_not_shared_between_users() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    for _ in 0..3 {
        let r = app.log_in("ada@example.com", PASSWORD).await;
        assert!(r["data"]["logIn"]["token"].is_string(), "{r}");
    }
    // Four sessions, newest first.
    let sessions = "query($f: Int, $a: String, $l: Int, $b: String) { me { sessionsConnection(first: $f, after: $a, last: $l, before: $b) { \
                    edges { cursor node { id } } pageInfo { hasPreviousPage hasNextPage startCursor endCursor } } } }";
    let page = |vars: Value| {
        let (app, token) = (&app, ada.token.clone());
        async move { app.gql(Some(&token), sessions, vars).await }
    };
    let ids = |r: &Value| -> Vec<String> {
        r["data"]["me"]["sessionsConnection"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = ids(&page(json!({ "f": 10 })).await);
    assert_eq!(all.len(), 4);
    let first = page(json!({ "f": 3 })).await;
    assert_eq!(ids(&first), all[..3]);
    assert_eq!(first["data"]["me"]["sessionsConnection"]["pageInfo"]["hasNextPage"], true);
    let end = first["data"]["me"]["sessionsConnection"]["pageInfo"]["endCursor"].clone();
    let rest = page(json!({ "f": 3, "a": end })).await;
    assert_eq!(ids(&rest), all[3..]);
    let last = page(json!({ "l": 2 })).await;
    assert_eq!(ids(&last), all[2..]);
    assert_eq!(last["data"]["me"]["sessionsConnection"]["pageInfo"]["hasPreviousPage"], true);
    let start = last["data"]["me"]["sessionsConnection"]["pageInfo"]["startCursor"].clone();
    let before = page(json!({ "l": 5, "b": start })).await;
    assert_eq!(ids(&before), all[..2]);
    // Mixing the ways is refused; so is another user's cursor.
    let r = page(json!({ "f": 1, "l": 1 })).await;
    assert_eq!(refused(&r), pairs(&[("last", "INVALID")]), "{r}");
    let bobs = app.gql(Some(&bob.token), sessions, json!({ "f": 1 })).await;
    let bobs_cursor = bobs["data"]["me"]["sessionsConnection"]["pageInfo"]["endCursor"].clone();
    let r = page(json!({ "f": 1, "a": bobs_cursor })).await;
    assert_eq!(refused(&r), pairs(&[("after", "INVALID")]), "{r}");

    // The notification list pages backward too: from its oldest end, newest first.
    for i in 0..5 {
        let notice = concierge::notifications::service::Notice::new(
            concierge::identity::model::AccountId(uuid::Uuid::parse_str(&ada.id).unwrap()),
            concierge::notifications::model::NotificationEvent::Mention,
            format!("n{i}"),
            "",
        );
        app.services.notifications.notify(notice).await.expect("notified");
    }
    let notes = "query($f: Int, $a: String, $l: Int, $b: String) { me { notifications(first: $f, after: $a, last: $l, before: $b) { \
                 edges { node { title } } pageInfo { hasPreviousPage hasNextPage startCursor } } } }";
    let titles = |r: &Value| -> Vec<String> {
        r["data"]["me"]["notifications"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|e| e["node"]["title"].as_str().unwrap().to_owned())
            .filter(|t| t.starts_with('n'))
            .collect()
    };
    let r = app.gql(Some(&ada.token), notes, json!({ "l": 2 })).await;
    let oldest = r["data"]["me"]["notifications"]["edges"].as_array().unwrap().len();
    assert_eq!(oldest, 2, "{r}");
    assert_eq!(r["data"]["me"]["notifications"]["pageInfo"]["hasPreviousPage"], true, "{r}");
    let start = r["data"]["me"]["notifications"]["pageInfo"]["startCursor"].clone();
    let r = app.gql(Some(&ada.token), notes, json!({ "l": 2, "b": start })).await;
    let newer = titles(&r);
    let r = app.gql(Some(&ada.token), notes, json!({ "f": 20 })).await;
    let everything = titles(&r);
    let at = everything.iter().position(|t| *t == newer[0]).expect("in the list");
    assert_eq!(everything[at..at + newer.len()], newer[..], "a backward page keeps the list's order");

    // The security log too.
    let r = app
        .gql(Some(&ada.token), "{ me { securityEvents(last: 1) { edges { node { kind } } pageInfo { hasPreviousPage } } } }", json!({}))
        .await;
    assert_eq!(r["data"]["me"]["securityEvents"]["edges"].as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(r["data"]["me"]["securityEvents"]["pageInfo"]["hasPreviousPage"], true, "{r}");
}
