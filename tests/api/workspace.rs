//! Workspaces, members and roles: who may do what.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, codes, error_of};

const ASSIGN: &str = "mutation($w: ID!, $u: ID!, $r: Role!) { assignRole(workspaceId: $w, userId: $u, role: $r) { role } }";
const SET_STATUS: &str =
    "mutation($w: ID!, $u: ID!, $s: MembershipStatus!) { setMemberStatus(workspaceId: $w, userId: $u, status: $s) { role status } }";
const MEMBERS: &str = "query($w: ID!, $first: Int, $after: String) { workspace(id: $w) { members(first: $first, after: $after) { \
     totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { role joinedAt user { email fullName } } } } } }";

async fn assign(app: &TestApp, actor: &TestUser, workspace: &str, user: &TestUser, role: &str) -> Value {
    app.gql(Some(&actor.token), ASSIGN, json!({ "w": workspace, "u": user.id, "r": role })).await
}

/// An owner's workspace with an admin and a member in it.
async fn team(app: &TestApp) -> (TestUser, TestUser, TestUser) {
    let owner = app.user("owner@example.com").await;
    let admin = app.user("admin@example.com").await;
    let member = app.user("member@example.com").await;
    for (who, role) in [(&admin, "ADMIN"), (&member, "MEMBER")] {
        let r = app.add_member(&owner, &owner.workspace_id, &who.email, role).await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    (owner, admin, member)
}

#[tokio::test]
async fn members_are_listed_in_join_order_as_a_relay_connection() {
    let app = TestApp::spawn().await;
    let (owner, _, _) = team(&app).await;

    let page1 = app.gql(Some(&owner.token), MEMBERS, json!({ "w": owner.workspace_id, "first": 2 })).await;
    let members = &page1["data"]["workspace"]["members"];
    assert_eq!(members["totalCount"], 3, "{page1}");
    assert_eq!(members["pageInfo"]["hasNextPage"], true);
    let emails: Vec<&str> = members["edges"].as_array().unwrap().iter().map(|e| e["node"]["user"]["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["owner@example.com", "admin@example.com"]);

    let after = members["pageInfo"]["endCursor"].as_str().unwrap();
    let page2 = app.gql(Some(&owner.token), MEMBERS, json!({ "w": owner.workspace_id, "first": 2, "after": after })).await;
    let members = &page2["data"]["workspace"]["members"];
    assert_eq!(members["pageInfo"]["hasNextPage"], false);
    assert_eq!(members["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(members["edges"][0]["node"]["user"]["email"], "member@example.com");
    assert_eq!(members["edges"][0]["node"]["role"], "MEMBER");
}

#[tokio::test]
async fn listing_members_costs_the_same_statements_for_three_members_as_for_fifteen() {
    let app = TestApp::spawn().await;
    let small = app.user("small@example.com").await;
    let big = app.user("big@example.com").await;
    for i in 0..2 {
        app.user(&format!("s{i}@example.com")).await;
        app.add_member(&small, &small.workspace_id, &format!("s{i}@example.com"), "MEMBER").await;
    }
    for i in 0..14 {
        app.user(&format!("b{i}@example.com")).await;
        app.add_member(&big, &big.workspace_id, &format!("b{i}@example.com"), "MEMBER").await;
    }
    let query = "query($w: ID!) { workspace(id: $w) { members(first: 50) { edges { node { availability { status } user { email memberships { role workspace { name } } } } } } } }";
    let cost = |user: TestUser| {
        let app = &app;
        async move {
            let before = app.services.db.queries();
            let r = app.gql(Some(&user.token), query, json!({ "w": user.workspace_id })).await;
            assert!(r.get("errors").is_none(), "{r}");
            let listed = r["data"]["workspace"]["members"]["edges"].as_array().unwrap().len();
            (listed, app.services.db.queries() - before)
        }
    };

    let (small_listed, small_cost) = cost(small).await;
    let (big_listed, big_cost) = cost(big).await;

    assert_eq!((small_listed, big_listed), (3, 15));
    assert_eq!(small_cost, big_cost, "statements must not grow with the number of members");
}

#[tokio::test]
async fn a_member_cannot_change_roles_and_an_admin_cannot_grant_owner() {
    let app = TestApp::spawn().await;
    let (owner, admin, member) = team(&app).await;

    assert_eq!(codes(&assign(&app, &member, &owner.workspace_id, &admin, "MEMBER").await), ["FORBIDDEN"]);
    assert_eq!(codes(&assign(&app, &admin, &owner.workspace_id, &member, "OWNER").await), ["FORBIDDEN"]);
    assert_eq!(codes(&assign(&app, &admin, &owner.workspace_id, &owner, "MEMBER").await), ["FORBIDDEN"]);
    let r = app.add_member(&admin, &owner.workspace_id, "someone@example.com", "OWNER").await;
    assert_eq!(codes(&r), ["FORBIDDEN"]);

    // Nothing changed.
    let r = app.gql(Some(&owner.token), MEMBERS, json!({ "w": owner.workspace_id })).await;
    let roles: Vec<&str> =
        r["data"]["workspace"]["members"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["OWNER", "ADMIN", "MEMBER"]);
}

#[tokio::test]
async fn an_admin_promotes_a_member_to_admin_and_the_owner_makes_a_second_owner() {
    let app = TestApp::spawn().await;
    let (owner, admin, member) = team(&app).await;

    let r = assign(&app, &admin, &owner.workspace_id, &member, "ADMIN").await;
    assert_eq!(r["data"]["assignRole"]["role"], "ADMIN", "{r}");
    let r = assign(&app, &owner, &owner.workspace_id, &admin, "OWNER").await;
    assert_eq!(r["data"]["assignRole"]["role"], "OWNER", "{r}");
    // With two owners, the first may step down.
    let r = assign(&app, &owner, &owner.workspace_id, &owner, "MEMBER").await;
    assert_eq!(r["data"]["assignRole"]["role"], "MEMBER", "{r}");
}

#[tokio::test]
async fn the_last_owner_cannot_be_demoted_or_deactivated() {
    let app = TestApp::spawn().await;
    let (owner, admin, _) = team(&app).await;

    let r = assign(&app, &owner, &owner.workspace_id, &owner, "ADMIN").await;
    assert_eq!(error_of(&r).0, "CONFLICT", "{r}");

    // Make the admin an owner, then try to deactivate them while the first owner is inactive? The
    // first owner cannot be deactivated by the admin (ranked above), and the new owner
    // deactivating the first leaves one active owner: allowed once, refused for the last.
    assign(&app, &owner, &owner.workspace_id, &admin, "OWNER").await;
    let r = app.gql(Some(&admin.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": owner.id, "s": "INACTIVE" })).await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = app.gql(Some(&admin.token), ASSIGN, json!({ "w": owner.workspace_id, "u": admin.id, "r": "ADMIN" })).await;
    assert_eq!(error_of(&r).0, "CONFLICT", "the only active owner left: {r}");
}

#[tokio::test]
async fn nobody_changes_their_own_status_or_the_status_of_someone_above_them() {
    let app = TestApp::spawn().await;
    let (owner, admin, _) = team(&app).await;

    let r = app.gql(Some(&owner.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": owner.id, "s": "INACTIVE" })).await;
    assert_eq!(codes(&r), ["FORBIDDEN"]);
    let r = app.gql(Some(&admin.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": owner.id, "s": "INACTIVE" })).await;
    assert_eq!(codes(&r), ["FORBIDDEN"]);
}

#[tokio::test]
async fn a_stranger_cannot_tell_a_workspace_exists() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let stranger = app.user("stranger@example.com").await;

    let r = app.gql(Some(&stranger.token), MEMBERS, json!({ "w": owner.workspace_id })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"]);
    let r = app.gql(Some(&stranger.token), MEMBERS, json!({ "w": uuid::Uuid::now_v7().to_string() })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"]);
    let r = assign(&app, &stranger, &owner.workspace_id, &stranger, "OWNER").await;
    assert_eq!(codes(&r), ["NOT_FOUND"]);
}

#[tokio::test]
async fn inviting_answers_alike_for_addresses_with_and_without_an_account_and_refuses_members_and_repeats() {
    let app = TestApp::spawn().await;
    let (owner, admin, _) = team(&app).await;
    app.user("known@example.com").await;

    let known = app.invite(&owner, &owner.workspace_id, "known@example.com", "MEMBER").await;
    let unknown = app.invite(&owner, &owner.workspace_id, "ghost@example.com", "MEMBER").await;

    let shape = |r: &Value| {
        let i = &r["data"]["inviteWorkspaceMember"];
        (i["role"].clone(), i["state"].clone(), i.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
    };
    assert_eq!(shape(&known), shape(&unknown), "{known} / {unknown}");
    assert_eq!(unknown["data"]["inviteWorkspaceMember"]["state"], "PENDING", "{unknown}");
    let r = app.invite(&owner, &owner.workspace_id, &admin.email, "MEMBER").await;
    assert_eq!(error_of(&r), ("CONFLICT".into(), Some("email".into())), "a member already: {r}");
    let r = app.invite(&owner, &owner.workspace_id, "GHOST@example.com", "MEMBER").await;
    assert_eq!(error_of(&r), ("CONFLICT".into(), Some("email".into())), "one invitation waits already: {r}");
    let r = app.invite(&owner, &owner.workspace_id, "not an email", "MEMBER").await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("email".into())));
}

#[tokio::test]
async fn an_invitee_is_no_member_until_they_accept_and_then_has_the_invited_role() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;

    let r = app.invite(&owner, &owner.workspace_id, "Bob@Example.com", "ADMIN").await;
    let id = r["data"]["inviteWorkspaceMember"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();

    assert_eq!(codes(&app.gql(Some(&bob.token), MEMBERS, json!({ "w": owner.workspace_id })).await), ["NOT_FOUND"], "not yet a member");
    let mine = app.gql(Some(&bob.token), "{ me { invitations { id email role workspaceName invitedByName expiresAt } } }", json!({})).await;
    let invitation = &mine["data"]["me"]["invitations"][0];
    assert_eq!(invitation["id"], id.as_str(), "{mine}");
    assert_eq!(invitation["workspaceName"], "Test's workspace");
    assert_eq!(invitation["invitedByName"], "Test User");
    assert_eq!(invitation["role"], "ADMIN");
    let pending = app
        .gql(Some(&owner.token), "query($w: ID!) { workspace(id: $w) { invitations { id email } } }", json!({ "w": owner.workspace_id }))
        .await;
    assert_eq!(pending["data"]["workspace"]["invitations"], json!([{ "id": id, "email": "bob@example.com" }]), "{pending}");

    let r = app
        .gql(Some(&bob.token), "mutation($id: ID!) { acceptInvitation(id: $id) { role status workspace { id } } }", json!({ "id": id }))
        .await;

    assert_eq!(
        r["data"]["acceptInvitation"],
        json!({ "role": "ADMIN", "status": "ACTIVE", "workspace": { "id": owner.workspace_id } }),
        "{r}"
    );
    let r = app.gql(Some(&bob.token), MEMBERS, json!({ "w": owner.workspace_id })).await;
    assert_eq!(r["data"]["workspace"]["members"]["totalCount"], 2, "{r}");
    let again = app.gql(Some(&bob.token), "mutation($id: ID!) { acceptInvitation(id: $id) { role } }", json!({ "id": id })).await;
    assert_eq!(error_of(&again), ("BAD_USER_INPUT".into(), Some("id".into())), "an invitation is answered once: {again}");
    let mine = app.gql(Some(&bob.token), "{ me { invitations { id } } }", json!({})).await;
    assert_eq!(mine["data"]["me"]["invitations"], json!([]));
}

#[tokio::test]
async fn a_declined_or_revoked_invitation_cannot_be_accepted() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    let accept = "mutation($id: ID!) { acceptInvitation(id: $id) { role } }";
    let id = |r: Value| r["data"]["inviteWorkspaceMember"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();

    let declined = id(app.invite(&owner, &owner.workspace_id, &bob.email, "MEMBER").await);
    let r = app.gql(Some(&bob.token), "mutation($id: ID!) { declineInvitation(id: $id) }", json!({ "id": declined })).await;
    assert_eq!(r["data"]["declineInvitation"], true, "{r}");
    assert_eq!(error_of(&app.gql(Some(&bob.token), accept, json!({ "id": declined })).await).0, "BAD_USER_INPUT");

    let revoked = id(app.invite(&owner, &owner.workspace_id, &bob.email, "MEMBER").await);
    let r = app.gql(Some(&owner.token), "mutation($id: ID!) { revokeInvitation(id: $id) }", json!({ "id": revoked })).await;
    assert_eq!(r["data"]["revokeInvitation"], true, "{r}");
    assert_eq!(error_of(&app.gql(Some(&bob.token), accept, json!({ "id": revoked })).await).0, "BAD_USER_INPUT");

    let r = app.gql(Some(&bob.token), MEMBERS, json!({ "w": owner.workspace_id })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "still no member");
}

#[tokio::test]
async fn an_expired_invitation_is_refused_and_a_resend_gives_it_a_new_life() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let bob = app.user("bob@example.com").await;
    let r = app.invite(&owner, &owner.workspace_id, &bob.email, "MEMBER").await;
    let id = r["data"]["inviteWorkspaceMember"]["id"].as_str().unwrap().to_owned();
    let resend = "mutation($id: ID!) { resendInvitation(id: $id) { id state expiresAt } }";
    assert_eq!(codes(&app.gql(Some(&owner.token), resend, json!({ "id": id })).await), ["RATE_LIMITED"], "not twice a minute");
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let db = &app.services.db;
    concierge::on_pool!(db, p => sqlx::query("UPDATE workspace_invitation SET expires_at = $1, sent_at = $1").bind(past).execute(p).await.map(drop)).unwrap();

    let r = app.gql(Some(&bob.token), "mutation($id: ID!) { acceptInvitation(id: $id) { role } }", json!({ "id": id })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())), "{r}");
    assert_eq!(app.gql(Some(&bob.token), "{ me { invitations { id } } }", json!({})).await["data"]["me"]["invitations"], json!([]));

    let r = app.gql(Some(&owner.token), resend, json!({ "id": id })).await;
    assert_eq!(r["data"]["resendInvitation"]["state"], "PENDING", "{r}");
    let r = app.gql(Some(&bob.token), "mutation($id: ID!) { acceptInvitation(id: $id) { role } }", json!({ "id": id })).await;
    assert_eq!(r["data"]["acceptInvitation"]["role"], "MEMBER", "{r}");
}

#[tokio::test]
async fn a_deactivated_member_loses_that_workspace_only_and_comes_back_when_reactivated() {
    let app = TestApp::spawn().await;
    let (owner, _, member) = team(&app).await;

    let r = app.gql(Some(&owner.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": member.id, "s": "INACTIVE" })).await;

    assert_eq!(r["data"]["setMemberStatus"]["status"], "INACTIVE", "{r}");
    assert_eq!(codes(&app.gql(Some(&member.token), MEMBERS, json!({ "w": owner.workspace_id })).await), ["NOT_FOUND"]);
    let me = app.gql(Some(&member.token), "{ me { status memberships { status workspace { id } } } }", json!({})).await;
    assert_eq!(me["data"]["me"]["status"], "ACTIVE", "the account is untouched: {me}");
    let memberships = me["data"]["me"]["memberships"].as_array().unwrap();
    assert!(memberships.iter().any(|m| m["workspace"]["id"] == member.workspace_id.as_str() && m["status"] == "ACTIVE"), "{me}");
    assert!(memberships.iter().any(|m| m["workspace"]["id"] == owner.workspace_id.as_str() && m["status"] == "INACTIVE"), "{me}");
    let own = app.gql(Some(&member.token), MEMBERS, json!({ "w": member.workspace_id })).await;
    assert!(own.get("errors").is_none(), "their own workspace still works: {own}");
    let told = app.gql(Some(&member.token), "{ me { notifications { edges { node { event title } } } } }", json!({})).await;
    assert_eq!(told["data"]["me"]["notifications"]["edges"][0]["node"]["event"], "MEMBERSHIP_DEACTIVATED", "{told}");

    let r = app.gql(Some(&owner.token), SET_STATUS, json!({ "w": owner.workspace_id, "u": member.id, "s": "ACTIVE" })).await;
    assert_eq!(r["data"]["setMemberStatus"]["status"], "ACTIVE", "{r}");
    let back = app.gql(Some(&member.token), MEMBERS, json!({ "w": owner.workspace_id })).await;
    assert!(back.get("errors").is_none(), "{back}");
}

#[tokio::test]
async fn malformed_ids_cursors_and_page_sizes_are_refused_by_field() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;

    let r = app.gql(Some(&owner.token), MEMBERS, json!({ "w": "nope" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())));
    let r = app.gql(Some(&owner.token), MEMBERS, json!({ "w": owner.workspace_id, "first": 0 })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("first".into())));
    let r = app.gql(Some(&owner.token), MEMBERS, json!({ "w": owner.workspace_id, "first": 101 })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("first".into())));
    let r = app.gql(Some(&owner.token), MEMBERS, json!({ "w": owner.workspace_id, "after": "garbage" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("after".into())));
    let r = app.gql(Some(&owner.token), ASSIGN, json!({ "w": owner.workspace_id, "u": "x", "r": "ADMIN" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("userId".into())));
}

#[tokio::test]
async fn another_members_memberships_show_only_the_workspaces_shared_with_the_viewer() {
    let app = TestApp::spawn().await;
    let (owner, _, member) = team(&app).await;

    let r = app.gql(Some(&owner.token), MEMBERS, json!({ "w": owner.workspace_id })).await;
    assert!(r.get("errors").is_none(), "{r}");
    let q = "query($w: ID!) { workspace(id: $w) { members { edges { node { user { email memberships { workspace { id } } } } } } } }";
    let r = app.gql(Some(&owner.token), q, json!({ "w": owner.workspace_id })).await;
    let edges = r["data"]["workspace"]["members"]["edges"].as_array().unwrap();
    let member_view = edges.iter().find(|e| e["node"]["user"]["email"] == member.email.as_str()).unwrap();
    let ids: Vec<&str> =
        member_view["node"]["user"]["memberships"].as_array().unwrap().iter().map(|m| m["workspace"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [owner.workspace_id.as_str()], "the member's personal workspace stays private");
}
