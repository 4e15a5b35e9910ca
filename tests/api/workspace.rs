//! Workspaces, members and roles: who may do what.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, codes, error_of};

const ASSIGN: &str = "mutation($w: ID!, $u: ID!, $r: Role!) { assignRole(workspaceId: $w, userId: $u, role: $r) { role } }";
const SET_STATUS: &str =
    "mutation($w: ID!, $u: ID!, $s: AccountStatus!) { setMemberStatus(workspaceId: $w, userId: $u, status: $s) { role } }";
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
    let roles: Vec<&str> = r["data"]["workspace"]["members"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["role"].as_str().unwrap()).collect();
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
async fn adding_members_refuses_unknown_accounts_and_duplicates() {
    let app = TestApp::spawn().await;
    let (owner, admin, _) = team(&app).await;

    assert_eq!(codes(&app.add_member(&owner, &owner.workspace_id, "ghost@example.com", "MEMBER").await), ["NOT_FOUND"]);
    let r = app.add_member(&owner, &owner.workspace_id, &admin.email, "MEMBER").await;
    assert_eq!(error_of(&r), ("CONFLICT".into(), Some("email".into())));
    let r = app.add_member(&owner, &owner.workspace_id, "not an email", "MEMBER").await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("email".into())));
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
    let ids: Vec<&str> = member_view["node"]["user"]["memberships"].as_array().unwrap().iter().map(|m| m["workspace"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [owner.workspace_id.as_str()], "the member's personal workspace stays private");
}
