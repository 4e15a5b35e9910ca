//! Nobody can lock someone else out (issue 19, section 1). Any free account owns a workspace
//! and so may manage members there: these are the ways such an account (or a token, or
//! nobody at all) once could add a stranger's account without consent and then deactivate
//! it everywhere, or learn which addresses have accounts. Each is refused.

use std::time::Duration;

use concierge::fanout::Topic;
use concierge::workspace::model::WorkspaceId;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestUser, WsEvent, codes, error_of};
use crate::mail_lab::{MailLab, parse};

const SET_STATUS: &str =
    "mutation($w: ID!, $u: ID!, $s: MembershipStatus!) { setMemberStatus(workspaceId: $w, userId: $u, status: $s) { status } }";
const MEMBERS: &str = "query($w: ID!) { workspace(id: $w) { members { totalCount } } }";
const ACCEPT_ID: &str = "mutation($id: ID!) { acceptInvitation(id: $id) { role } }";
const ACCEPT_TOKEN: &str = "mutation($t: String!) { acceptInvitation(token: $t) { role workspace { id } } }";
const LEGACY_ADD: &str = "mutation($i: AddWorkspaceMemberInput!) { addWorkspaceMember(input: $i) { id email role state } }";

fn invitation_id(r: &Value) -> String {
    r["data"]["inviteWorkspaceMember"]["id"].as_str().unwrap_or_else(|| panic!("no invitation: {r}")).to_owned()
}

fn fresh(name: &str) -> String {
    format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The token in an invitation email's link.
fn link_token(text: &str) -> String {
    let at = text.find("token=").unwrap_or_else(|| panic!("no link in {text}"));
    text[at + 6..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

async fn signs_in(app: &TestApp, email: &str) -> bool {
    app.log_in(email, PASSWORD).await["data"]["logIn"]["token"].is_string()
}

async fn token_with(app: &TestApp, user: &TestUser, scopes: &[&str]) -> String {
    let create = "mutation($i: CreateAccessTokenInput!) { createAccessToken(input: $i) { token } }";
    let r = app.gql(Some(&user.token), create, json!({ "i": { "name": format!("narrow {}", scopes.join(" ")), "scopes": scopes } })).await;
    r["data"]["createAccessToken"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()
}

#[tokio::test]
async fn a_stranger_who_invites_a_victim_and_deactivates_them_locks_nobody_out() {
    let app = TestApp::spawn().await;
    let victim = app.user("victim@example.com").await;
    let mallory = app.user("mallory@example.com").await;

    let invited = app.invite(&mallory, &mallory.workspace_id, &victim.email, "MEMBER").await;
    assert!(invited.get("errors").is_none(), "{invited}");
    let in_mallorys =
        app.gql(Some(&mallory.token), SET_STATUS, json!({ "w": mallory.workspace_id, "u": victim.id, "s": "INACTIVE" })).await;
    let in_victims = app.gql(Some(&mallory.token), SET_STATUS, json!({ "w": victim.workspace_id, "u": victim.id, "s": "INACTIVE" })).await;

    assert_eq!(codes(&in_mallorys), ["NOT_FOUND"], "an invitee is no member: {in_mallorys}");
    assert_eq!(codes(&in_victims), ["NOT_FOUND"], "a stranger's workspace does not exist for Mallory: {in_victims}");
    assert!(app.gql(Some(&victim.token), "{ me { id } }", json!({})).await["data"]["me"]["id"].is_string(), "the session lives");
    assert!(signs_in(&app, &victim.email).await);
    let me = app.gql(Some(&victim.token), "{ me { status memberships { role status workspace { id } } } }", json!({})).await;
    assert_eq!(
        me["data"]["me"],
        json!({ "status": "ACTIVE", "memberships": [{ "role": "OWNER", "status": "ACTIVE", "workspace": { "id": victim.workspace_id } }] }),
        "the victim joined nothing and still owns their workspace: {me}"
    );
}

#[tokio::test]
async fn a_victim_who_accepted_and_is_then_deactivated_loses_only_that_workspace() {
    let app = TestApp::spawn().await;
    let victim = app.user("victim@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let r = app.add_member(&mallory, &mallory.workspace_id, &victim.email, "MEMBER").await;
    assert!(r.get("errors").is_none(), "{r}");

    let r = app.gql(Some(&mallory.token), SET_STATUS, json!({ "w": mallory.workspace_id, "u": victim.id, "s": "INACTIVE" })).await;

    assert_eq!(r["data"]["setMemberStatus"]["status"], "INACTIVE", "{r}");
    assert!(signs_in(&app, &victim.email).await, "the account still signs in");
    assert_eq!(codes(&app.gql(Some(&victim.token), MEMBERS, json!({ "w": mallory.workspace_id })).await), ["NOT_FOUND"]);
    let contacts = "query($w: ID!) { contacts(workspaceId: $w) { edges { node { id } } } }";
    assert_eq!(codes(&app.gql(Some(&victim.token), contacts, json!({ "w": mallory.workspace_id })).await), ["NOT_FOUND"]);
    let own = app.gql(Some(&victim.token), MEMBERS, json!({ "w": victim.workspace_id })).await;
    assert_eq!(own["data"]["workspace"]["members"]["totalCount"], 1, "their own workspace is intact: {own}");
    let own = app.gql(Some(&victim.token), contacts, json!({ "w": victim.workspace_id })).await;
    assert!(own.get("errors").is_none(), "{own}");
    // And Mallory, an owner there, still cannot touch the victim's own workspace.
    let r = app.gql(Some(&mallory.token), SET_STATUS, json!({ "w": victim.workspace_id, "u": victim.id, "s": "INACTIVE" })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"]);
}

#[tokio::test]
async fn inviting_never_tells_whether_an_address_has_an_account() {
    let app = TestApp::spawn().await;
    let mallory = app.user("mallory@example.com").await;
    app.user("exists@example.com").await;
    let legacy = |email: &str| json!({ "i": { "workspaceId": mallory.workspace_id, "email": email } });

    let known = app.invite(&mallory, &mallory.workspace_id, "exists@example.com", "MEMBER").await;
    let unknown = app.invite(&mallory, &mallory.workspace_id, "nobody@example.com", "MEMBER").await;
    let known_legacy = app.gql(Some(&mallory.token), LEGACY_ADD, legacy("exists2@example.com")).await;
    let unknown_legacy = app.gql(Some(&mallory.token), LEGACY_ADD, legacy("nobody2@example.com")).await;

    let strip = |r: &Value, field: &str| {
        let mut i = r["data"][field].clone();
        for volatile in ["id", "email"] {
            i.as_object_mut().unwrap_or_else(|| panic!("{r}")).remove(volatile);
        }
        i
    };
    assert_eq!(strip(&known, "inviteWorkspaceMember"), strip(&unknown, "inviteWorkspaceMember"));
    assert_eq!(strip(&known_legacy, "addWorkspaceMember"), strip(&unknown_legacy, "addWorkspaceMember"));
    assert_eq!(unknown_legacy["data"]["addWorkspaceMember"]["state"], "PENDING", "the old mutation only invites: {unknown_legacy}");
    let members = app.gql(Some(&mallory.token), MEMBERS, json!({ "w": mallory.workspace_id })).await;
    assert_eq!(members["data"]["workspace"]["members"]["totalCount"], 1, "nobody was added: {members}");
}

#[tokio::test]
async fn another_workspaces_owner_cannot_list_resend_revoke_or_answer_its_invitations() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let id = invitation_id(&app.invite(&owner, &owner.workspace_id, &bob.email, "ADMIN").await);
    let list = "query($w: ID!) { workspace(id: $w) { invitations { id } } }";

    let listed = app.gql(Some(&mallory.token), list, json!({ "w": owner.workspace_id })).await;
    let resent = app.gql(Some(&mallory.token), "mutation($id: ID!) { resendInvitation(id: $id) { id } }", json!({ "id": id })).await;
    let revoked = app.gql(Some(&mallory.token), "mutation($id: ID!) { revokeInvitation(id: $id) }", json!({ "id": id })).await;
    let accepted = app.gql(Some(&mallory.token), ACCEPT_ID, json!({ "id": id })).await;
    let declined = app.gql(Some(&mallory.token), "mutation($id: ID!) { declineInvitation(id: $id) }", json!({ "id": id })).await;

    for r in [&listed, &resent, &revoked, &accepted, &declined] {
        assert_eq!(codes(r), ["NOT_FOUND"], "{r}");
    }
    let mine = app.gql(Some(&mallory.token), "{ me { invitations { id } } }", json!({})).await;
    assert_eq!(mine["data"]["me"]["invitations"], json!([]), "{mine}");
    // A member of the workspace who may not manage members does not see them either.
    let r = app.add_member(&owner, &owner.workspace_id, &mallory.email, "MEMBER").await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(codes(&app.gql(Some(&mallory.token), list, json!({ "w": owner.workspace_id })).await), ["FORBIDDEN"]);
    // Bob's invitation is untouched.
    assert_eq!(app.gql(Some(&bob.token), ACCEPT_ID, json!({ "id": id })).await["data"]["acceptInvitation"]["role"], "ADMIN");
}

#[tokio::test]
async fn a_narrow_token_cannot_invite_answer_or_deactivate() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&owner, &owner.workspace_id, &bob.email, "MEMBER").await;
    let read_only = token_with(&app, &owner, &["workspaces:read", "profile:read"]).await;
    let input = json!({ "i": { "workspaceId": owner.workspace_id, "email": "carol@example.com" } });
    let invite = "mutation($i: InviteWorkspaceMemberInput!) { inviteWorkspaceMember(input: $i) { id } }";

    let r = app.gql(Some(&read_only), invite, input.clone()).await;
    assert_eq!(codes(&r), ["FORBIDDEN"], "{r}");
    assert_eq!(codes(&app.gql(Some(&read_only), LEGACY_ADD, input.clone()).await), ["FORBIDDEN"]);
    let r = app.gql(Some(&read_only), SET_STATUS, json!({ "w": owner.workspace_id, "u": bob.id, "s": "INACTIVE" })).await;
    assert_eq!(codes(&r), ["FORBIDDEN"], "{r}");
    let bobs = token_with(&app, &bob, &["profile:read"]).await;
    let id = invitation_id(&app.invite(&owner, &owner.workspace_id, "carol@example.com", "MEMBER").await);
    assert_eq!(codes(&app.gql(Some(&bobs), ACCEPT_ID, json!({ "id": id })).await), ["FORBIDDEN"]);

    // With `workspaces:write` a token invites, as the README says.
    let writer = token_with(&app, &owner, &["workspaces:write"]).await;
    let input = json!({ "i": { "workspaceId": owner.workspace_id, "email": "dave@example.com" } });
    assert!(app.gql(Some(&writer), invite, input).await["data"]["inviteWorkspaceMember"]["id"].is_string());
}

#[tokio::test]
async fn an_anonymous_caller_cannot_invite_list_or_answer_by_id() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let id = invitation_id(&app.invite(&owner, &owner.workspace_id, "bob@example.com", "MEMBER").await);
    let input = json!({ "i": { "workspaceId": owner.workspace_id, "email": "carol@example.com" } });

    let invite = "mutation($i: InviteWorkspaceMemberInput!) { inviteWorkspaceMember(input: $i) { id } }";
    assert_eq!(codes(&app.gql(None, invite, input).await), ["UNAUTHENTICATED"]);
    assert_eq!(codes(&app.gql(None, "{ me { invitations { id } } }", json!({})).await), ["UNAUTHENTICATED"]);
    assert_eq!(codes(&app.gql(None, ACCEPT_ID, json!({ "id": id })).await), ["UNAUTHENTICATED"]);
    let r = app.gql(None, SET_STATUS, json!({ "w": owner.workspace_id, "u": owner.id, "s": "INACTIVE" })).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"]);
    let guessed = app.gql(None, ACCEPT_TOKEN, json!({ "t": format!("cwi_{}", "A".repeat(43)) })).await;
    assert_eq!(error_of(&guessed), ("BAD_USER_INPUT".into(), Some("token".into())), "{guessed}");
    let r = app.gql(None, "mutation($p: String!) { deactivateAccount(password: $p) }", json!({ "p": PASSWORD })).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn oversized_input_is_refused_by_field_with_a_short_answer_and_invites_nobody() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let huge = format!("{}@example.com", "a".repeat(100_000));

    let r = app.invite(&owner, &owner.workspace_id, &huge, "MEMBER").await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("email".into())), "{}", &r.to_string()[..200]);
    assert!(r.to_string().len() < 2_000, "the answer does not echo the input");
    let r = app.gql(None, ACCEPT_TOKEN, json!({ "t": format!("cwi_{}", "A".repeat(100_000)) })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("token".into())));
    assert!(r.to_string().len() < 2_000);
    let pending = app
        .gql(Some(&owner.token), "query($w: ID!) { workspace(id: $w) { invitations { id } } }", json!({ "w": owner.workspace_id }))
        .await;
    assert_eq!(pending["data"]["workspace"]["invitations"], json!([]), "{pending}");
}

#[tokio::test]
async fn an_inactive_members_live_subscription_on_the_workspace_ends_at_once() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    app.add_member(&owner, &owner.workspace_id, &bob.email, "MEMBER").await;
    let mut ws = app.ws_signed_in(&bob.token).await;
    ws.send(json!({ "id": "a", "type": "subscribe", "payload": {
        "query": "subscription($w: ID!) { activityEvents(workspaceId: $w) { id } }",
        "variables": { "w": owner.workspace_id } } }))
        .await;
    let workspace = WorkspaceId::parse("id", &owner.workspace_id).expect("an id");
    app.listening(Topic::Workspace(workspace), 1).await;

    let r = app.gql(Some(&owner.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": bob.id, "s": "INACTIVE" })).await;
    assert!(r.get("errors").is_none(), "{r}");

    let refused = ws.next_json().await;
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{refused}");
    assert_eq!(ws.next_json().await["type"], "complete");
    // The connection itself, and Bob's account, live on.
    ws.send(json!({ "id": "q", "type": "subscribe", "payload": { "query": "{ me { status } }" } })).await;
    match ws.next_within(Duration::from_secs(5)).await {
        WsEvent::Json(m) => assert_eq!(m["payload"]["data"]["me"]["status"], "ACTIVE", "{m}"),
        WsEvent::Closed(code) => panic!("the connection closed: {code:?}"),
    }
}

#[tokio::test]
async fn the_last_active_owner_cannot_be_deactivated_and_an_owner_is_never_deactivated_by_an_admin() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let admin = app.user("admin@example.com").await;
    app.add_member(&owner, &owner.workspace_id, &admin.email, "ADMIN").await;

    let r = app.gql(Some(&admin.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": owner.id, "s": "INACTIVE" })).await;
    assert_eq!(codes(&r), ["FORBIDDEN"], "{r}");
    let promote = "mutation($w: ID!, $u: ID!) { assignRole(workspaceId: $w, userId: $u, role: OWNER) { role } }";
    app.gql(Some(&owner.token), promote, json!({ "w": owner.workspace_id, "u": admin.id })).await;
    let r = app.gql(Some(&admin.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": owner.id, "s": "INACTIVE" })).await;
    assert_eq!(r["data"]["setMemberStatus"]["status"], "INACTIVE", "two owners: one may go ({r})");
    // The deactivated owner cannot act there, nor deactivate the last active owner back.
    let r = app.gql(Some(&owner.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": admin.id, "s": "INACTIVE" })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    assert!(signs_in(&app, &owner.email).await);
}

// --- the emailed link ----------------------------------------------------------------------

async fn mail_app(lab: &MailLab) -> TestApp {
    TestApp::spawn_with(|c| c.smtp_url = Some(concierge::config::Redacted(lab.smtp_url()))).await
}

#[tokio::test]
async fn the_emailed_token_works_once_for_its_address_only_and_not_after_a_revocation() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let owner = app.user(&fresh("owner")).await;
    let bob = app.user(&fresh("bob")).await;
    let carol = app.user(&fresh("carol")).await;
    app.gql(Some(&bob.token), "mutation { updateProfile(input: {language: \"de\"}) { language } }", json!({})).await;

    app.invite(&owner, &owner.workspace_id, &bob.email, "MEMBER").await;
    let mail = parse(&lab.wait_for(&bob.email, 1).await[0]);
    assert!(mail.subject.contains("eingeladen"), "in the invitee's language: {}", mail.subject);
    let token = link_token(&mail.text);

    let as_carol = app.gql(Some(&carol.token), ACCEPT_TOKEN, json!({ "t": token })).await;
    assert_eq!(error_of(&as_carol), ("BAD_USER_INPUT".into(), Some("token".into())), "another address: {as_carol}");
    let r = app.gql(None, ACCEPT_TOKEN, json!({ "t": token })).await;
    assert_eq!(r["data"]["acceptInvitation"]["workspace"]["id"], owner.workspace_id.as_str(), "{r}");
    let again = app.gql(None, ACCEPT_TOKEN, json!({ "t": token })).await;
    assert_eq!(error_of(&again), ("BAD_USER_INPUT".into(), Some("token".into())), "a token works once: {again}");
    let me = app.gql(Some(&bob.token), "{ me { emailVerified } }", json!({})).await;
    assert_eq!(me["data"]["me"]["emailVerified"], true, "the emailed token proved the address: {me}");

    let id = invitation_id(&app.invite(&owner, &owner.workspace_id, &carol.email, "MEMBER").await);
    let token = link_token(&parse(&lab.wait_for(&carol.email, 1).await[0]).text);
    app.gql(Some(&owner.token), "mutation($id: ID!) { revokeInvitation(id: $id) }", json!({ "id": id })).await;
    let revoked = app.gql(Some(&carol.token), ACCEPT_TOKEN, json!({ "t": token })).await;
    assert_eq!(error_of(&revoked), ("BAD_USER_INPUT".into(), Some("token".into())), "{revoked}");
    assert_eq!(codes(&app.gql(Some(&carol.token), MEMBERS, json!({ "w": owner.workspace_id })).await), ["NOT_FOUND"]);
}

#[tokio::test]
async fn a_resend_makes_the_old_link_useless_and_an_expired_link_is_refused() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let owner = app.user(&fresh("owner")).await;
    let bob = app.user(&fresh("bob")).await;
    let id = invitation_id(&app.invite(&owner, &owner.workspace_id, &bob.email, "MEMBER").await);
    let old = link_token(&parse(&lab.wait_for(&bob.email, 1).await[0]).text);
    let db = &app.services.db;
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    concierge::on_pool!(db, p => sqlx::query("UPDATE workspace_invitation SET sent_at = $1").bind(past).execute(p).await.map(drop))
        .unwrap();

    let r = app.gql(Some(&owner.token), "mutation($id: ID!) { resendInvitation(id: $id) { id } }", json!({ "id": id })).await;
    assert!(r.get("errors").is_none(), "{r}");
    let new = link_token(&parse(&lab.wait_for(&bob.email, 2).await[1]).text);

    assert_ne!(old, new);
    assert_eq!(error_of(&app.gql(None, ACCEPT_TOKEN, json!({ "t": old })).await).0, "BAD_USER_INPUT", "the old link is dead");
    concierge::on_pool!(db, p => sqlx::query("UPDATE workspace_invitation SET expires_at = $1").bind(past).execute(p).await.map(drop))
        .unwrap();
    let expired = app.gql(None, ACCEPT_TOKEN, json!({ "t": new })).await;
    assert_eq!(error_of(&expired), ("BAD_USER_INPUT".into(), Some("token".into())), "{expired}");
}

#[tokio::test]
async fn the_link_opens_a_page_that_joins_only_on_a_click() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let owner = app.user(&fresh("owner")).await;
    let bob = app.user(&fresh("bob")).await;
    app.invite(&owner, &owner.workspace_id, &bob.email, "MEMBER").await;
    let text = parse(&lab.wait_for(&bob.email, 1).await[0]).text;
    let link = text.lines().find(|l| l.contains("/invitation?token=")).unwrap_or_else(|| panic!("{text}")).trim().to_owned();
    assert!(link.starts_with(&app.base), "{link}");

    let (status, headers, page) = app.get(link.trim_start_matches(&app.base), "text/html").await;

    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    assert!(page.contains("<form method=\"post\"") && page.contains("Test&#39;s workspace"), "{page}");
    assert!(!page.contains("http://") && !page.contains("https://"), "nothing loaded from elsewhere: {page}");
    assert_eq!(
        codes(&app.gql(Some(&bob.token), MEMBERS, json!({ "w": owner.workspace_id })).await),
        ["NOT_FOUND"],
        "opening changes nothing"
    );
    let form = [("token", link_token(&text)), ("answer", "accept".to_owned())];
    let res = app.client().post(format!("{}/invitation", app.base)).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let r = app.gql(Some(&bob.token), MEMBERS, json!({ "w": owner.workspace_id })).await;
    assert_eq!(r["data"]["workspace"]["members"]["totalCount"], 2, "{r}");
}

#[tokio::test]
async fn an_address_without_an_account_joins_on_sign_up_with_the_token_and_only_with_its_own() {
    let lab = MailLab::get().await;
    let app = mail_app(&lab).await;
    let owner = app.user(&fresh("owner")).await;
    let (newcomer, other) = (fresh("newcomer"), fresh("other"));
    app.invite(&owner, &owner.workspace_id, &newcomer, "ADMIN").await;
    let mail = parse(&lab.wait_for(&newcomer, 1).await[0]);
    let token = link_token(&mail.text);
    let sign_up = "mutation($i: SignUpInput!) { signUp(input: $i) { user { email } } }";
    let input = |email: &str| json!({ "i": { "email": email, "password": PASSWORD, "firstName": "New", "lastName": "Comer", "invitationToken": token } });

    let wrong = app.gql(None, sign_up, input(&other)).await;
    assert_eq!(error_of(&wrong), ("BAD_USER_INPUT".into(), Some("invitationToken".into())), "{wrong}");
    assert!(!signs_in(&app, &other).await, "nothing was created");
    let r = app.gql(None, sign_up, input(&newcomer)).await;

    assert_eq!(r["data"]["signUp"]["user"]["email"], newcomer.as_str(), "{r}");
    let session = app.log_in(&newcomer, PASSWORD).await["data"]["logIn"]["token"].as_str().unwrap().to_owned();
    let verified = app.gql(Some(&session), "{ me { emailVerified } }", json!({})).await;
    assert_eq!(verified["data"]["me"]["emailVerified"], true, "signing up with the emailed token proved the address: {verified}");
    let r = app.gql(Some(&session), "{ me { memberships { role workspace { id } } } }", json!({})).await;
    let memberships = r["data"]["me"]["memberships"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(memberships.len(), 2, "their own workspace and the invitation's: {r}");
    assert!(memberships.iter().any(|m| m["role"] == "ADMIN" && m["workspace"]["id"] == owner.workspace_id.as_str()), "{r}");
    let again = app.gql(None, sign_up, input(&fresh("third"))).await;
    assert_eq!(error_of(&again).0, "BAD_USER_INPUT", "the token is used: {again}");
}

#[tokio::test]
async fn a_plain_sign_up_with_an_invited_address_sees_the_invitation_and_may_accept_it() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let id = invitation_id(&app.invite(&owner, &owner.workspace_id, "later@example.com", "MEMBER").await);

    let later = app.user("later@example.com").await;

    let mine = app.gql(Some(&later.token), "{ me { invitations { id workspaceName invitedByName } } }", json!({})).await;
    assert_eq!(mine["data"]["me"]["invitations"], json!([{ "id": id, "workspaceName": "Test's workspace", "invitedByName": "Test User" }]));
    let r = app.gql(Some(&later.token), ACCEPT_ID, json!({ "id": id })).await;
    assert_eq!(r["data"]["acceptInvitation"]["role"], "MEMBER", "{r}");
}
