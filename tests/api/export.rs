//! Taking your data: an archive of everything the account holds, built in the background,
//! downloadable by its owner's session only, never holding a secret, and swept when it expires.

use std::io::Read as _;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser, codes};

const REQUEST: &str = "mutation { requestDataExport { id status url } }";
const LIST: &str = "{ me { dataExports { id status url expiresAt sizeBytes } } }";

/// Steps the export builder (the gateways here have no background queue workers), then
/// returns the export `id`, which the pass must have made READY.
async fn ready(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let built = app.services.exports.run_once(&app.schema).await.expect("a pass of the export builder");
    assert_eq!(built, 1, "one export was waiting");
    let r = app.gql(Some(&user.token), LIST, json!({})).await;
    let found = r["data"]["me"]["dataExports"].as_array().and_then(|a| a.iter().find(|e| e["id"] == id).cloned());
    found.filter(|e| e["status"] == "READY").unwrap_or_else(|| panic!("the export is not READY after a pass: {r}"))
}

/// A gateway whose export builder runs only when the test steps it.
async fn gateway() -> TestApp {
    TestApp::spawn_with(|c| c.queue_workers = false).await
}

async fn download(app: &TestApp, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client().get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("request sent")
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP archive");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).expect("an entry");
            let mut content = Vec::new();
            file.read_to_end(&mut content).expect("readable");
            (file.name().to_owned(), content)
        })
        .collect()
}

#[tokio::test]
async fn an_export_holds_the_accounts_data_and_no_secret_and_only_its_owner_downloads_it() {
    let app = gateway().await;
    let ada = app.user("ada@example.com").await;
    let pat = app.access_token(&ada, &["profile:read"]).await;

    let r = app.gql(Some(&ada.token), REQUEST, json!({})).await;
    let id = r["data"]["requestDataExport"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert!(r["data"]["requestDataExport"]["url"].is_null(), "no URL before it is built");
    let export = ready(&app, &ada, &id).await;
    let url = export["url"].as_str().expect("a download URL").to_owned();

    let res = download(&app, &url, Some(&ada.token)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let bytes = res.bytes().await.unwrap();
    let files = unzip(&bytes);
    let account: Value = serde_json::from_slice(&files.iter().find(|(n, _)| n == "account.json").expect("account.json").1).unwrap();
    assert_eq!(account["account"]["email"], "ada@example.com");
    assert_eq!(account["account"]["memberships"][0]["role"], "OWNER");
    assert!(account["account"]["sessions"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(account["account"]["accessTokens"][0]["prefix"].as_str().is_some_and(|p| pat.starts_with(p)));
    assert_eq!(account["account"]["passkeys"], serde_json::json!([]), "passkey metadata has its place");
    let kinds: Vec<&str> = account["account"]["securityEvents"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"DATA_EXPORT_REQUESTED") && kinds.contains(&"SIGN_IN_SUCCEEDED"), "{kinds:?}");
    let everything = String::from_utf8_lossy(&bytes);
    for secret in [ada.token.as_str(), pat.as_str(), PASSWORD, "$argon2"] {
        assert!(!everything.contains(secret), "the archive holds a secret");
    }

    let notes = app.gql(Some(&ada.token), "{ me { notifications(first: 5) { edges { node { title } } } } }", json!({})).await;
    assert!(notes.to_string().contains("Your data export is ready"), "{notes}");

    let mallory = app.user("mallory@example.com").await;
    assert_eq!(download(&app, &url, Some(&mallory.token)).await.status(), 404, "another account's session");
    assert_eq!(download(&app, &url, None).await.status(), 401);
    assert_eq!(download(&app, &url, Some("cs_not-a-session")).await.status(), 401);
    assert_eq!(download(&app, &url, Some(&pat)).await.status(), 403, "a token is not the account's session");
    assert_eq!(download(&app, &format!("{}/exports/not-an-id", app.base), Some(&ada.token)).await.status(), 404);
    let theirs = app.gql(Some(&mallory.token), LIST, json!({})).await;
    assert_eq!(theirs["data"]["me"]["dataExports"], json!([]), "one account never lists another's exports");
}

#[tokio::test]
async fn only_a_session_asks_for_an_export_and_at_most_five_a_day() {
    let app = gateway().await;
    let ada = app.user("ada@example.com").await;
    let pat = app.access_token(&ada, &["profile:read", "profile:write"]).await;
    assert_eq!(codes(&app.gql(Some(&pat), REQUEST, json!({})).await), ["FORBIDDEN"]);
    assert_eq!(codes(&app.gql(None, REQUEST, json!({})).await), ["UNAUTHENTICATED"]);

    for _ in 0..5 {
        assert!(app.gql(Some(&ada.token), REQUEST, json!({})).await.get("errors").is_none());
    }
    assert_eq!(codes(&app.gql(Some(&ada.token), REQUEST, json!({})).await), ["RATE_LIMITED"]);
}

#[tokio::test]
async fn an_expired_export_is_swept_with_its_archive() {
    let app = gateway().await;
    let ada = app.user("ada@example.com").await;
    let id = app.gql(Some(&ada.token), REQUEST, json!({})).await["data"]["requestDataExport"]["id"].as_str().unwrap().to_owned();
    let url = ready(&app, &ada, &id).await["url"].as_str().unwrap().to_owned();
    let past = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let db = &app.services.db;
    concierge::on_pool!(db, p => sqlx::query("UPDATE data_export SET expires_at = $1").bind(past).execute(p).await.map(drop)).unwrap();
    // One that failed more than a week ago goes too.
    let failed = uuid::Uuid::now_v7();
    let long_ago = chrono::Utc::now() - chrono::TimeDelta::days(8);
    let session = uuid::Uuid::now_v7();
    let account = uuid::Uuid::parse_str(&ada.id).unwrap();
    concierge::on_pool!(db, p => sqlx::query("INSERT INTO data_export (data_export_id, account_id, session_id, status, created_at) VALUES ($1, $2, $3, 'FAILED', $4)")
        .bind(failed).bind(account).bind(session).bind(long_ago).execute(p).await.map(drop)).unwrap();

    assert_eq!(download(&app, &url, Some(&ada.token)).await.status(), 404, "an expired archive is not served");
    let next = app.gql(Some(&ada.token), REQUEST, json!({})).await["data"]["requestDataExport"]["id"].as_str().unwrap().to_owned();
    ready(&app, &ada, &next).await;

    let r = app.gql(Some(&ada.token), LIST, json!({})).await;
    let ids: Vec<&str> = r["data"]["me"]["dataExports"].as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, [next.as_str()], "the expired one is gone: {r}");
}
