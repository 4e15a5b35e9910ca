//! Password change, the password policy, two-factor enrolment and log-in.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser, codes, error_of};

const CHANGE: &str =
    "mutation($c: String!, $n: String!, $f: String!) { changePassword(currentPassword: $c, newPassword: $n, confirmPassword: $f) }";
const NEW_PASSWORD: &str = "Brand-New-Horse-42!";

/// An RFC 6238 code computed by an independent implementation (Python's standard library).
pub async fn totp_now(secret_b32: &str, offset_steps: i64) -> String {
    let script = format!(
        "import base64,hashlib,hmac,struct,time\n\
         k=base64.b32decode('{secret_b32}'+'='*(-len('{secret_b32}')%8))\n\
         c=int(time.time())//30+({offset_steps})\n\
         h=hmac.new(k,struct.pack('>Q',c),hashlib.sha1).digest()\n\
         o=h[-1]&15\n\
         print(str((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000).zfill(6))"
    );
    let out = tokio::process::Command::new("python3").arg("-c").arg(script).output().await.expect("python3 runs");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Enrols `user` in two-factor; returns the secret and the recovery codes.
pub async fn enrol(app: &TestApp, user: &TestUser) -> (String, Vec<String>) {
    let r =
        app.gql(Some(&user.token), "mutation { beginTotpEnrollment { secret otpauthUri qrCodeSvg qrCodePngDataUrl } }", json!({})).await;
    let e = &r["data"]["beginTotpEnrollment"];
    let secret = e["secret"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    assert!(e["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/Concierge:"));
    assert!(e["qrCodeSvg"].as_str().unwrap().starts_with("<svg"));
    assert!(e["qrCodePngDataUrl"].as_str().unwrap().starts_with("data:image/png;base64,"));
    let code = totp_now(&secret, 0).await;
    let r = app.gql(Some(&user.token), "mutation($c: String!) { confirmTotpEnrollment(code: $c) { codes } }", json!({ "c": code })).await;
    let codes: Vec<String> = r["data"]["confirmTotpEnrollment"]["codes"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

async fn security(app: &TestApp, user: &TestUser) -> Value {
    app.gql(Some(&user.token), "{ me { security { twoFactorEnabled recoveryCodesRemaining passwordChangedAt } } }", json!({})).await["data"]
        ["me"]["security"]
        .clone()
}

#[tokio::test]
async fn the_policy_is_described_for_a_checklist() {
    let app = TestApp::spawn().await;

    let r =
        app.gql(None, "{ passwordPolicy { minLength maxLength maxBytes specialCharacters rules { code description } } }", json!({})).await;

    let p = &r["data"]["passwordPolicy"];
    assert_eq!(p["minLength"], 10);
    let rules: Vec<&str> = p["rules"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    for rule in ["MIN_LENGTH", "MAX_LENGTH", "UPPERCASE", "DIGIT", "SPECIAL", "CONTAINS_PERSONAL_DATA", "TOO_COMMON"] {
        assert!(rules.contains(&rule), "{rule}");
    }
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let other = app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned();

    let r = app.gql(Some(&ada.token), CHANGE, json!({ "c": PASSWORD, "n": NEW_PASSWORD, "f": NEW_PASSWORD })).await;

    assert_eq!(r["data"]["changePassword"], true, "{r}");
    assert!(app.gql(Some(&ada.token), "{ me { id } }", json!({})).await["data"]["me"].is_object(), "this session stays");
    assert_eq!(codes(&app.gql(Some(&other), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    assert_eq!(codes(&app.log_in("ada@example.com", PASSWORD).await), ["UNAUTHENTICATED"]);
    assert!(app.log_in("ada@example.com", NEW_PASSWORD).await["data"]["logIn"]["token"].is_string());
    assert!(security(&app, &ada).await["passwordChangedAt"].is_string());
}

#[tokio::test]
async fn a_refused_password_change_names_every_unmet_rule_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let cases: [(&str, &str, &str, &str, &[&str]); 7] = [
        ("wrong", PASSWORD, NEW_PASSWORD, NEW_PASSWORD, &[]),
        ("confirmation", PASSWORD, NEW_PASSWORD, "Brand-New-Horse-43!", &["CONFIRMATION_MISMATCH"]),
        ("uppercase", PASSWORD, "brand-new-horse-42!", "brand-new-horse-42!", &["UPPERCASE"]),
        ("digit", PASSWORD, "Brand-New-Horse-xy!", "Brand-New-Horse-xy!", &["DIGIT"]),
        ("special", PASSWORD, "BrandNewHorse42xyz", "BrandNewHorse42xyz", &["SPECIAL"]),
        ("common", PASSWORD, "Password123!", "Password123!", &["TOO_COMMON"]),
        ("long", PASSWORD, &"Aa1!".repeat(200), &"Aa1!".repeat(200), &["MAX_LENGTH"]),
    ];
    for (case, current, new, confirm, unmet) in cases {
        let current = if case == "wrong" { "Not-The-Password-1!" } else { current };
        let r = app.gql(Some(&ada.token), CHANGE, json!({ "c": current, "n": new, "f": confirm })).await;
        if case == "wrong" {
            assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("currentPassword".into())), "{r}");
            continue;
        }
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("newPassword".into())), "{case}: {r}");
        let got: Vec<&str> = r["errors"][0]["extensions"]["unmet"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        for rule in unmet {
            assert!(got.contains(rule), "{case}: {rule} missing from {got:?}");
        }
    }
    assert!(app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].is_string(), "the password is unchanged");
}

#[tokio::test]
async fn two_factor_enrols_with_an_independent_totp_and_then_guards_log_in() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    let (secret, recovery) = enrol(&app, &ada).await;

    assert_eq!(recovery.len(), 10);
    let s = security(&app, &ada).await;
    assert_eq!((s["twoFactorEnabled"].clone(), s["recoveryCodesRemaining"].clone()), (json!(true), json!(10)));

    let r = app.gql(None, "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token user { id } twoFactorChallenge { challenge expiresAt } } }", json!({ "e": "ada@example.com", "p": PASSWORD })).await;
    assert!(r["data"]["logIn"]["token"].is_null() && r["data"]["logIn"]["user"].is_null(), "no session before the second factor: {r}");
    let challenge = r["data"]["logIn"]["twoFactorChallenge"]["challenge"].as_str().unwrap().to_owned();
    let complete = "mutation($c: String!, $code: String!) { completeTwoFactorLogIn(challenge: $c, code: $code) { token user { email } } }";

    let wrong = app.gql(None, complete, json!({ "c": challenge, "code": "000000" })).await;
    assert_eq!(error_of(&wrong), ("BAD_USER_INPUT".into(), Some("code".into())));
    // The enrolment code's step is spent; the next step (within one step of drift) is fresh.
    let code = totp_now(&secret, 1).await;
    let r = app.gql(None, complete, json!({ "c": challenge, "code": code })).await;
    assert_eq!(r["data"]["completeTwoFactorLogIn"]["user"]["email"], "ada@example.com", "{r}");
    let token = r["data"]["completeTwoFactorLogIn"]["token"].as_str().unwrap().to_owned();
    assert!(app.gql(Some(&token), "{ me { id } }", json!({})).await["data"]["me"].is_object());

    // The same challenge and the same code are refused a second time.
    let again = app.gql(None, complete, json!({ "c": challenge, "code": code })).await;
    assert_eq!(error_of(&again).1.as_deref(), Some("challenge"));
    let second = app.two_factor_challenge("ada@example.com").await;
    let replay = app.gql(None, complete, json!({ "c": second, "code": code })).await;
    assert_eq!(error_of(&replay), ("BAD_USER_INPUT".into(), Some("code".into())), "a replayed code is refused");
}

#[tokio::test]
async fn a_recovery_code_completes_a_log_in_once() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (_, recovery) = enrol(&app, &ada).await;
    let complete = "mutation($c: String!, $code: String!) { completeTwoFactorLogIn(challenge: $c, code: $code) { token } }";
    let r = app
        .gql(None, complete, json!({ "c": app.two_factor_challenge("ada@example.com").await, "code": recovery[0].to_lowercase() }))
        .await;
    assert!(r["data"]["completeTwoFactorLogIn"]["token"].is_string(), "{r}");
    let spent = app.gql(None, complete, json!({ "c": app.two_factor_challenge("ada@example.com").await, "code": recovery[0] })).await;
    assert_eq!(error_of(&spent), ("BAD_USER_INPUT".into(), Some("code".into())));
    assert_eq!(security(&app, &ada).await["recoveryCodesRemaining"], 9);
}

#[tokio::test]
async fn enrolment_with_a_wrong_code_enables_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    app.gql(Some(&ada.token), "mutation { beginTotpEnrollment { secret } }", json!({})).await;

    let r = app.gql(Some(&ada.token), "mutation { confirmTotpEnrollment(code: \"123456\") { codes } }", json!({})).await;

    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("code".into())));
    assert_eq!(security(&app, &ada).await["twoFactorEnabled"], false);
    assert!(app.log_in("ada@example.com", PASSWORD).await["data"]["logIn"]["token"].is_string());
}

#[tokio::test]
async fn disabling_two_factor_needs_the_password_and_a_code() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (secret, _) = enrol(&app, &ada).await;
    let disable = "mutation($p: String!, $c: String!) { disableTotp(password: $p, code: $c) }";

    let r = app.gql(Some(&ada.token), disable, json!({ "p": "Wrong-Horse-9!battery", "c": totp_now(&secret, 1).await })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("password".into())));
    assert_eq!(security(&app, &ada).await["twoFactorEnabled"], true);

    let r = app.gql(Some(&ada.token), disable, json!({ "p": PASSWORD, "c": totp_now(&secret, 1).await })).await;
    assert_eq!(r["data"]["disableTotp"], true, "{r}");
    let s = security(&app, &ada).await;
    assert_eq!((s["twoFactorEnabled"].clone(), s["recoveryCodesRemaining"].clone()), (json!(false), json!(0)));
}

#[tokio::test]
async fn totp_secrets_are_sealed_at_rest_and_tokens_cannot_touch_security() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let (secret, _) = enrol(&app, &ada).await;
    let db = &app.services.db;

    let sealed: Vec<u8> = concierge::on_pool!(db, p => sqlx::query_scalar("SELECT totp_secret FROM account").fetch_one(p).await).unwrap();
    assert!(sealed.len() > 24 + 16);
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret));

    let r = app
        .gql(
            Some(&ada.token),
            "mutation { createAccessToken(input: {name: \"x\", scopes: [\"profile:read\", \"profile:write\"]}) { token } }",
            json!({}),
        )
        .await;
    let pat = r["data"]["createAccessToken"]["token"].as_str().unwrap().to_owned();
    for m in [
        "mutation { beginTotpEnrollment { secret } }",
        "mutation { regenerateRecoveryCodes(code: \"123456\") { codes } }",
        &format!(
            "mutation {{ changePassword(currentPassword: \"{PASSWORD}\", newPassword: \"{NEW_PASSWORD}\", confirmPassword: \"{NEW_PASSWORD}\") }}"
        ),
    ] {
        assert_eq!(codes(&app.gql(Some(&pat), m, json!({})).await), ["FORBIDDEN"], "{m}");
    }
}
