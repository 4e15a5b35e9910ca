//! The profile: personal data, language, login-email change, photo and signature.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser, codes, error_of};
use crate::mail_lab::{MailLab, parse};

const UPDATE: &str =
    "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { firstName lastName displayName phone phoneE164 jobTitle language } }";
const ME: &str = "{ me { firstName lastName displayName phone phoneE164 jobTitle language } }";

async fn me(app: &TestApp, user: &TestUser) -> Value {
    app.gql(Some(&user.token), ME, json!({})).await["data"]["me"].clone()
}

#[tokio::test]
async fn personal_data_round_trips_trimmed_in_any_script() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = app
        .gql(
            Some(&ada.token),
            UPDATE,
            json!({ "i": { "firstName": "  Zoë ", "lastName": "李", "displayName": " Hopkins inc. ", "phone": "+48 (22) 123-45-67",
                           "jobTitle": "Support lead 🎧", "language": "PL" } }),
        )
        .await;

    assert_eq!(
        r["data"]["updateProfile"],
        json!({ "firstName": "Zoë", "lastName": "李", "displayName": "Hopkins inc.", "phone": "+48 (22) 123-45-67",
                "phoneE164": "+48221234567", "jobTitle": "Support lead 🎧", "language": "pl" }),
        "{r}"
    );
    assert_eq!(me(&app, &ada).await, r["data"]["updateProfile"], "stored, not just echoed");
}

#[tokio::test]
async fn fields_not_sent_are_kept_and_optional_ones_cleared_by_null_or_empty() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.gql(Some(&ada.token), UPDATE, json!({ "i": { "displayName": "Ada", "phone": "555 0100", "jobTitle": "CTO" } })).await;

    let r = app.gql(Some(&ada.token), UPDATE, json!({ "i": { "displayName": null, "phone": "  " } })).await;

    let u = &r["data"]["updateProfile"];
    assert_eq!(u["displayName"], "Test User", "falls back to the full name: {r}");
    assert_eq!((u["phone"].clone(), u["phoneE164"].clone()), (Value::Null, Value::Null));
    assert_eq!(u["jobTitle"], "CTO");
    assert_eq!(u["firstName"], "Test");
}

#[tokio::test]
async fn bad_personal_data_is_refused_by_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.gql(Some(&ada.token), UPDATE, json!({ "i": { "phone": "+44 20 7946 0958", "jobTitle": "CTO" } })).await;
    let before = me(&app, &ada).await;
    let cases = [
        (json!({ "firstName": "   " }), "firstName"),
        (json!({ "lastName": "x".repeat(101) }), "lastName"),
        (json!({ "displayName": "y".repeat(101) }), "displayName"),
        (json!({ "jobTitle": "a\u{0}b" }), "jobTitle"),
        (json!({ "phone": "call me maybe" }), "phone"),
        (json!({ "phone": "+999 123" }), "phone"),
        (json!({ "language": "xx-NOPE" }), "language"),
        // A bad field refuses the whole request, good fields included.
        (json!({ "jobTitle": "CEO", "phone": "nope" }), "phone"),
    ];

    for (input, field) in cases {
        let r = app.gql(Some(&ada.token), UPDATE, json!({ "i": input })).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some(field.into())), "{input}: {r}");
    }

    assert_eq!(me(&app, &ada).await, before);
}

#[tokio::test]
async fn supported_languages_are_listed_in_their_own_names() {
    let app = TestApp::spawn().await;

    let r = app.gql(None, "{ supportedLanguages { tag nativeName } }", json!({})).await;

    let langs = r["data"]["supportedLanguages"].as_array().unwrap();
    assert!(langs.len() >= 3);
    for (tag, name) in [("en", "English"), ("de", "Deutsch"), ("pl", "Polski")] {
        assert!(langs.contains(&json!({ "tag": tag, "nativeName": name })), "{tag} in {r}");
    }
}

#[tokio::test]
async fn a_token_needs_profile_write_to_change_the_profile() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let r = app
        .gql(Some(&ada.token), "mutation { createAccessToken(input: {name: \"r\", scopes: [\"profile:read\"]}) { token } }", json!({}))
        .await;
    let read_only = r["data"]["createAccessToken"]["token"].as_str().unwrap().to_owned();

    let r = app.gql(Some(&read_only), UPDATE, json!({ "i": { "jobTitle": "Hacker" } })).await;

    assert_eq!(codes(&r), ["FORBIDDEN"]);
    assert_eq!(me(&app, &ada).await["jobTitle"], Value::Null);
}

// --- login email ------------------------------------------------------------------

const REQUEST: &str = "mutation($e: String!, $p: String!) { requestEmailChange(newEmail: $e, password: $p) }";
const CONFIRM: &str = "mutation($t: String!) { confirmEmailChange(token: $t) { email } }";

fn fresh(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The token in the confirmation link of a delivered message.
fn link_token(text: &str) -> String {
    let at = text.find("token=").unwrap_or_else(|| panic!("no link in {text}"));
    text[at + 6..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

async fn mail_app(lab: &MailLab) -> TestApp {
    TestApp::spawn_with(|c| c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url()))).await
}

#[tokio::test]
async fn the_login_email_changes_once_the_emailed_link_is_followed() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let (old, new) = (fresh("ada"), fresh("ada-new"));
    let ada = app.user(&old).await;
    app.gql(Some(&ada.token), UPDATE, json!({ "i": { "language": "de" } })).await;

    let r = app.gql(Some(&ada.token), REQUEST, json!({ "e": new, "p": PASSWORD })).await;

    assert_eq!(r["data"]["requestEmailChange"], true, "{r}");
    let verify = parse(&lab.wait_for(&new, 1).await[0]);
    assert_eq!(verify.subject, "Bestätigen Sie Ihre neue Anmelde-E-Mail-Adresse", "in the user's language");
    let notice = parse(&lab.wait_for(&old, 1).await[0]);
    assert!(notice.text.contains(&new), "the old address is told: {}", notice.text);
    assert_eq!(me(&app, &ada).await["language"], "de");
    assert_eq!(
        app.gql(Some(&ada.token), "{ me { email } }", json!({})).await["data"]["me"]["email"],
        old.as_str(),
        "nothing changes before the link"
    );

    let token = link_token(&verify.text);
    let r = app.gql(None, CONFIRM, json!({ "t": token })).await;

    assert_eq!(r["data"]["confirmEmailChange"]["email"], new.as_str(), "{r}");
    assert!(app.log_in(&new, PASSWORD).await["data"]["logIn"]["token"].is_string());
    assert_eq!(codes(&app.log_in(&old, PASSWORD).await), ["UNAUTHENTICATED"]);
    let reused = app.gql(None, CONFIRM, json!({ "t": token })).await;
    assert_eq!(error_of(&reused), ("BAD_USER_INPUT".into(), Some("token".into())), "single use");
    assert_eq!(lab.wait_for(&old, 2).await.len(), 2, "the old address hears that it happened");
}

#[tokio::test]
async fn the_link_opens_a_page_that_confirms_only_on_a_click() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let (old, new) = (fresh("ada"), fresh("ada-new"));
    let ada = app.user(&old).await;
    app.gql(Some(&ada.token), REQUEST, json!({ "e": new, "p": PASSWORD })).await;
    let text = parse(&lab.wait_for(&new, 1).await[0]).text;
    let link = text.lines().find(|l| l.contains("/confirm-email?token=")).unwrap().trim().to_owned();
    assert!(link.starts_with(&app.base), "{link}");

    let (status, headers, page) = app.get(link.trim_start_matches(&app.base), "text/html").await;

    assert_eq!(status, 200);
    assert!(headers["content-security-policy"].to_str().unwrap().contains("form-action 'self'"));
    assert!(page.contains("<form method=\"post\""));
    assert_eq!(
        app.gql(Some(&ada.token), "{ me { email } }", json!({})).await["data"]["me"]["email"],
        old.as_str(),
        "opening the link changes nothing"
    );
    let res = app.client().post(format!("{}/confirm-email", app.base)).form(&[("token", link_token(&text))]).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(&new));
    assert_eq!(app.gql(Some(&ada.token), "{ me { email } }", json!({})).await["data"]["me"]["email"], new.as_str());
}

#[tokio::test]
async fn an_email_change_is_refused_for_a_wrong_password_a_taken_address_or_a_stale_token() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let (old, new) = (fresh("ada"), fresh("ada-new"));
    let ada = app.user(&old).await;
    let taken = fresh("grace");
    app.user(&taken).await;

    let wrong = app.gql(Some(&ada.token), REQUEST, json!({ "e": new, "p": "Not-The-Password-1!" })).await;
    assert_eq!(error_of(&wrong), ("BAD_USER_INPUT".into(), Some("password".into())));
    let clash = app.gql(Some(&ada.token), REQUEST, json!({ "e": taken.to_uppercase(), "p": PASSWORD })).await;
    assert_eq!(error_of(&clash), ("CONFLICT".into(), Some("newEmail".into())));
    let malformed = app.gql(Some(&ada.token), REQUEST, json!({ "e": "not-an-email", "p": PASSWORD })).await;
    assert_eq!(error_of(&malformed), ("BAD_USER_INPUT".into(), Some("newEmail".into())));
    assert!(lab.messages_to(&new).await.is_empty(), "nothing was sent");

    app.gql(Some(&ada.token), REQUEST, json!({ "e": new, "p": PASSWORD })).await;
    let token = link_token(&parse(&lab.wait_for(&new, 1).await[0]).text);
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let db = &app.services.db;
    concierge::on_pool!(db, p => sqlx::query("UPDATE email_change SET expires_at = $1").bind(past).execute(p).await.map(drop)).unwrap();

    let expired = app.gql(None, CONFIRM, json!({ "t": token })).await;
    assert_eq!(error_of(&expired), ("BAD_USER_INPUT".into(), Some("token".into())));
    let forged = app.gql(None, CONFIRM, json!({ "t": "cec_not-a-real-token" })).await;
    assert_eq!(error_of(&forged), ("BAD_USER_INPUT".into(), Some("token".into())));
    assert_eq!(app.gql(Some(&ada.token), "{ me { email } }", json!({})).await["data"]["me"]["email"], old.as_str());
}

#[tokio::test]
async fn the_email_change_token_is_stored_hashed() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let new = fresh("ada-new");
    let ada = app.user(&fresh("ada")).await;
    app.gql(Some(&ada.token), REQUEST, json!({ "e": new, "p": PASSWORD })).await;
    let token = link_token(&parse(&lab.wait_for(&new, 1).await[0]).text);

    let db = &app.services.db;
    let stored: Vec<u8> =
        concierge::on_pool!(db, p => sqlx::query_scalar("SELECT token_hash FROM email_change").fetch_one(p).await).unwrap();

    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&token[4..20]));
}

// --- photo -------------------------------------------------------------------------

const UPLOAD: &str = "mutation($file: Upload!) { uploadProfilePhoto(file: $file) { photo { url small: url(size: 48) sizes near100: rendition(size: 100) { url size } near400: rendition(size: 400) { size } } } }";

/// Sends exactly what apollo-upload-client sends: `operations`, `map`, then the file as part "1".
async fn upload(app: &TestApp, token: &str, name: &str, content_type: &str, bytes: Vec<u8>) -> (u16, Value) {
    let operations = json!({ "query": UPLOAD, "variables": { "file": null } });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "1": ["variables.file"] }).to_string())
        .part("1", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str(content_type).unwrap());
    let res = app.client().post(format!("{}/graphql", app.base)).bearer_auth(token).multipart(form).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A 300×200 JPEG carrying an EXIF block with a GPS position.
fn jpeg_with_exif() -> Vec<u8> {
    let img = image::RgbImage::from_fn(300, 200, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&img).unwrap();
    // APP1 "Exif": a big-endian TIFF header whose IFD0 holds a GPS IFD pointer, with a
    // GPSLatitudeRef "N" inside.
    let mut tiff: Vec<u8> = b"MM\0*\0\0\0\x08".to_vec();
    tiff.extend([0, 1, 0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0]);
    tiff.extend([0, 1, 0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(len.to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

#[tokio::test]
async fn a_photo_uploads_like_apollo_upload_client_and_is_served_square_without_exif() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let original = jpeg_with_exif();
    assert!(original.windows(4).any(|w| w == b"Exif"));

    let (status, r) = upload(&app, &ada.token, "me.jpg", "image/jpeg", original).await;

    assert_eq!(status, 200, "{r}");
    let photo = &r["data"]["uploadProfilePhoto"]["photo"];
    assert_eq!(photo["sizes"], json!([512, 64]));
    let url = photo["url"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(photo["small"].as_str().unwrap().ends_with("/64.jpg"));
    // The nearest rendition, and which one it is.
    assert_eq!(photo["near100"]["size"], 64, "{r}");
    assert!(photo["near100"]["url"].as_str().unwrap().ends_with("/64.jpg"), "{r}");
    assert_eq!(photo["near400"]["size"], 512, "{r}");
    let res = app.client().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(res.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    let served = res.bytes().await.unwrap();
    assert!(!served.windows(4).any(|w| w == b"Exif"), "metadata is stripped");
    let decoded = image::load_from_memory(&served).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (512, 512));
}

#[tokio::test]
async fn a_new_photo_replaces_the_old_files_and_removing_deletes_them() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (_, first) = upload(&app, &ada.token, "a.jpg", "image/jpeg", jpeg_with_exif()).await;
    let first_url = first["data"]["uploadProfilePhoto"]["photo"]["url"].as_str().unwrap().to_owned();
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbaImage::from_pixel(80, 80, image::Rgba([0, 0, 255, 128])).write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };

    let (_, second) = upload(&app, &ada.token, "b.png", "image/png", png).await;

    let second_url = second["data"]["uploadProfilePhoto"]["photo"]["url"].as_str().unwrap_or_else(|| panic!("{second}")).to_owned();
    assert!(second_url.ends_with("/512.png"), "transparency is kept as PNG: {second_url}");
    assert_eq!(app.client().get(&first_url).send().await.unwrap().status(), 404, "the old photo's files are gone");
    let r = app.gql(Some(&ada.token), "mutation { removeProfilePhoto { photo { url } } }", json!({})).await;
    assert_eq!(r["data"]["removeProfilePhoto"]["photo"], Value::Null, "{r}");
    assert_eq!(app.client().get(&second_url).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn uploads_that_are_not_acceptable_images_are_refused_and_change_nothing() {
    let app = TestApp::spawn_with(|c| c.max_photo_bytes = 200_000).await;
    let ada = app.user("ada@example.com").await;
    let (_, first) = upload(&app, &ada.token, "ok.jpg", "image/jpeg", jpeg_with_exif()).await;
    let kept = first["data"]["uploadProfilePhoto"]["photo"]["url"].as_str().unwrap().to_owned();
    let jpeg = jpeg_with_exif();
    // A PNG whose header claims 100000×100000 pixels.
    let bomb = {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc32fast::hash(&ihdr).to_be_bytes());
        png
    };
    let big_noise: Vec<u8> = (0..250_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let cases: [(&str, &str, Vec<u8>); 4] = [
        ("notes.png", "image/png", b"just some text, honestly".to_vec()),
        ("bomb.png", "image/png", bomb),
        ("cut.jpg", "image/jpeg", jpeg[..jpeg.len() / 2].to_vec()),
        ("huge.jpg", "image/jpeg", [jpeg.clone(), big_noise].concat()),
    ];

    for (name, content_type, bytes) in cases {
        let (status, r) = upload(&app, &ada.token, name, content_type, bytes).await;
        // An upload may be as large as a mail attachment, so a photo over the photo limit is
        // refused by the photo rule, by name, rather than by the request's size.
        assert_eq!(status, 200, "{name}: {r}");
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("file".into())), "{name}: {r}");
    }

    let now = app.gql(Some(&ada.token), "{ me { photo { url } } }", json!({})).await;
    assert_eq!(now["data"]["me"]["photo"]["url"], kept.as_str());
    assert_eq!(app.client().get(&kept).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn photo_urls_that_were_never_issued_are_not_found() {
    let app = TestApp::spawn().await;
    for path in [
        "/media/photos/x/y/512.jpg",
        "/media/photos/0190a0a0-0000-7000-8000-000000000000/0190a0a0-0000-7000-8000-000000000000/512.jpg",
        "/media/photos/a/b/..%2F..%2Fsecret.key",
    ] {
        let (status, _, _) = app.get(path, "*/*").await;
        assert_eq!(status, 404, "{path}");
    }
}

// --- signature ---------------------------------------------------------------------

const SIGN: &str = "mutation($h: String!) { updateSignature(html: $h) { html rendered text } }";

#[tokio::test]
async fn a_signature_is_sanitised_and_its_custom_values_rendered() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.gql(Some(&ada.token), UPDATE, json!({ "i": { "firstName": "Ada", "lastName": "Lovelace", "jobTitle": "Analyst <b>" } })).await;
    let html = "<p>Best, <b>{{user.full_name}}</b> — {{ user.job_title }}<br>{{workspace.name}}</p>\
                <script>alert(1)</script><a href=\"javascript:alert(1)\">x</a><img src=x onerror=alert(1)>\
                <a href=\"mailto:{{user.email}}\">mail me</a>";

    let r = app.gql(Some(&ada.token), SIGN, json!({ "h": html })).await;

    let sig = &r["data"]["updateSignature"];
    let all = sig.to_string().to_lowercase();
    for bad in ["<script", "javascript:", "onerror"] {
        assert!(!all.contains(bad), "{bad} survived: {sig}");
    }
    let rendered = sig["rendered"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(rendered.contains("<b>Ada Lovelace</b>"), "{rendered}");
    assert!(rendered.contains("Analyst &lt;b&gt;"), "values are escaped: {rendered}");
    assert!(rendered.contains("Test&#39;s workspace"), "the workspace named at sign-up: {rendered}");
    assert!(rendered.contains("mailto:ada@example.com"), "{rendered}");
    assert!(sig["html"].as_str().unwrap().contains("{{user.full_name}}"), "stored unrendered");
    let text = sig["text"].as_str().unwrap();
    assert!(text.contains("Best, Ada Lovelace") && text.contains("Analyst <b>"), "plain text, the value as typed: {text}");
    let stored = app.gql(Some(&ada.token), "{ me { signature { html rendered } } }", json!({})).await;
    assert_eq!(stored["data"]["me"]["signature"]["html"], sig["html"]);
}

#[tokio::test]
async fn an_unknown_custom_value_is_refused_by_name_and_nothing_is_saved() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.gql(Some(&ada.token), SIGN, json!({ "h": "<p>Kept</p>" })).await;

    let r = app.gql(Some(&ada.token), SIGN, json!({ "h": "<p>{{user.favourite_colour}}</p>" })).await;

    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("html".into())));
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("user.favourite_colour"), "{r}");
    let too_long = app.gql(Some(&ada.token), SIGN, json!({ "h": "<p>x</p>".repeat(5000) })).await;
    assert_eq!(error_of(&too_long), ("BAD_USER_INPUT".into(), Some("html".into())));
    let stored = app.gql(Some(&ada.token), "{ me { signature { html } } }", json!({})).await;
    assert_eq!(stored["data"]["me"]["signature"]["html"], "<p>Kept</p>");
}

#[tokio::test]
async fn a_preview_renders_without_saving_and_the_custom_values_are_listed() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let r = app
        .gql(
            Some(&ada.token),
            "query($h: String!) { previewSignature(html: $h) { rendered } }",
            json!({ "h": "<i>{{user.first_name}}</i>" }),
        )
        .await;

    assert_eq!(r["data"]["previewSignature"]["rendered"], "<i>Test</i>", "{r}");
    assert_eq!(app.gql(Some(&ada.token), "{ me { signature { html } } }", json!({})).await["data"]["me"]["signature"]["html"], "");
    let r = app.gql(None, "{ signatureCustomValues { name placeholder description } }", json!({})).await;
    let names: Vec<&str> = r["data"]["signatureCustomValues"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    for name in [
        "user.full_name",
        "user.first_name",
        "user.last_name",
        "user.display_name",
        "user.email",
        "user.phone",
        "user.job_title",
        "workspace.name",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    assert_eq!(r["data"]["signatureCustomValues"][0]["placeholder"], "{{user.full_name}}");
}

// --- privacy and live updates --------------------------------------------------------

#[tokio::test]
async fn colleagues_see_the_public_profile_but_never_the_signature() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let eve = app.user("eve@example.com").await;
    app.add_member(&ada, &ada.workspace_id, "bob@example.com", "MEMBER").await;
    app.gql(Some(&ada.token), UPDATE, json!({ "i": { "jobTitle": "CTO" } })).await;
    app.gql(Some(&ada.token), SIGN, json!({ "h": "<p>secret-ish</p>" })).await;
    let members = "query($w: ID!) { workspace(id: $w) { members { edges { node { user { email jobTitle } } } } } }";
    let sig = "query($w: ID!) { workspace(id: $w) { members { edges { node { user { email signature { html } } } } } } }";

    let seen = app.gql(Some(&bob.token), members, json!({ "w": ada.workspace_id })).await;
    let theirs = app.gql(Some(&bob.token), sig, json!({ "w": ada.workspace_id })).await;
    let stranger = app.gql(Some(&eve.token), members, json!({ "w": ada.workspace_id })).await;

    assert!(seen.to_string().contains("CTO"), "{seen}");
    assert!(codes(&theirs).contains(&"FORBIDDEN".to_owned()), "{theirs}");
    assert!(!theirs.to_string().contains("secret-ish"));
    assert!(!codes(&stranger).is_empty() && !stranger.to_string().contains("CTO"), "{stranger}");
}

#[tokio::test]
async fn another_tab_sees_the_profile_change_live() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "token": ada.token } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { meUpdated { displayName jobTitle } }" } })).await;
    // One listener for the connection's credential watch, one for the subscription.
    let topic = concierge::fanout::Topic::Account(concierge::identity::model::AccountId(uuid::Uuid::parse_str(&ada.id).unwrap()));
    app.listening(topic, 2).await;

    app.gql(Some(&ada.token), UPDATE, json!({ "i": { "displayName": "Countess", "jobTitle": "Analyst" } })).await;

    let next = ws.next_json().await;
    assert_eq!(next["payload"]["data"]["meUpdated"], json!({ "displayName": "Countess", "jobTitle": "Analyst" }), "{next}");
}
