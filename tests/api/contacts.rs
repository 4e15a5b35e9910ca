//! Contacts: members of a workspace create, find, edit and merge them; nobody else sees them.
//! Mail is matched to them by address (see `mailboxes` for the sync itself).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, codes, error_of};
use crate::mailboxes::{connected, gateway, live_with, message};

const CONTACT: &str = "id name emails workspaceId";

/// Creates a contact in the user's workspace; the whole response.
pub async fn create(app: &TestApp, user: &TestUser, name: Option<&str>, emails: &[&str]) -> Value {
    app.gql(
        Some(&user.token),
        &format!("mutation($i: CreateContactInput!) {{ createContact(input: $i) {{ {CONTACT} }} }}"),
        json!({ "i": { "workspaceId": user.workspace_id, "name": name, "emails": emails } }),
    )
    .await
}

async fn search(app: &TestApp, user: &TestUser, term: &str) -> Vec<String> {
    let r = app
        .gql(Some(&user.token), "query($s: String) { contacts(search: $s, first: 50) { edges { node { name } } } }", json!({ "s": term }))
        .await;
    r["data"]["contacts"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn members_create_find_and_edit_contacts() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let r = create(&app, &ada, Some("Carol Customer"), &["carol@customer.test", "c.c@other.test"]).await;
    let carol = &r["data"]["createContact"];
    assert_eq!(carol["emails"], json!(["carol@customer.test", "c.c@other.test"]), "{r}");
    create(&app, &ada, None, &["dan@customer.test"]).await;

    assert_eq!(search(&app, &ada, "CAROL").await, ["Carol Customer"], "names match case-insensitively");
    assert_eq!(search(&app, &ada, "other.test").await, ["Carol Customer"], "addresses match too");
    assert_eq!(search(&app, &ada, "customer").await, ["Carol Customer", "dan@customer.test"]);
    assert!(search(&app, &ada, "100%_").await.is_empty(), "LIKE wildcards are literal");

    let r = app
        .gql(
            Some(&ada.token),
            &format!("mutation($id: ID!) {{ updateContact(id: $id, input: {{ name: \"Carol C.\", emails: [\"carol@customer.test\"] }}) {{ {CONTACT} }} }}"),
            json!({ "id": carol["id"] }),
        )
        .await;
    assert_eq!(r["data"]["updateContact"]["name"], "Carol C.", "{r}");
    assert_eq!(r["data"]["updateContact"]["emails"], json!(["carol@customer.test"]));
}

#[tokio::test]
async fn bad_contact_input_names_its_field() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    assert_eq!(error_of(&create(&app, &ada, Some("X"), &["not-an-address"]).await), ("BAD_USER_INPUT".into(), Some("emails".into())));
    assert_eq!(error_of(&create(&app, &ada, None, &[]).await), ("BAD_USER_INPUT".into(), Some("name".into())));
    assert_eq!(error_of(&create(&app, &ada, Some("X"), &["a@b.test", "A@B.test"]).await).1.as_deref(), Some("emails"));
    create(&app, &ada, Some("First"), &["taken@b.test"]).await;
    assert_eq!(error_of(&create(&app, &ada, Some("Second"), &["Taken@b.test"]).await), ("CONFLICT".into(), Some("emails".into())));
    let r = app.gql(Some(&ada.token), "{ contacts(first: 0) { edges { node { id } } } }", json!({})).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("first".into())));
}

#[tokio::test]
async fn merging_moves_addresses_and_removes_the_sources() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let a = create(&app, &ada, Some("Carol"), &["carol@customer.test"]).await["data"]["createContact"]["id"].clone();
    let b = create(&app, &ada, Some("Carol (work)"), &["carol@work.test"]).await["data"]["createContact"]["id"].clone();
    let r = app
        .gql(
            Some(&ada.token),
            &format!("mutation($t: ID!, $s: [ID!]!) {{ mergeContacts(targetId: $t, sourceIds: $s) {{ {CONTACT} }} }}"),
            json!({ "t": a, "s": [b] }),
        )
        .await;
    let mut emails: Vec<String> = serde_json::from_value(r["data"]["mergeContacts"]["emails"].clone()).unwrap_or_else(|_| panic!("{r}"));
    emails.sort();
    assert_eq!(emails, ["carol@customer.test", "carol@work.test"]);
    let r = app.gql(Some(&ada.token), "query($id: ID!) { contact(id: $id) { id } }", json!({ "id": b })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"]);
}

#[tokio::test]
async fn contacts_are_invisible_outside_their_workspace() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let eve = app.user("eve@example.com").await;
    let id = create(&app, &ada, Some("Carol"), &["carol@customer.test"]).await["data"]["createContact"]["id"].clone();
    for q in ["query($id: ID!) { contact(id: $id) { id } }", "mutation($id: ID!) { updateContact(id: $id, input: { name: \"x\" }) { id } }"]
    {
        let r = app.gql(Some(&eve.token), q, json!({ "id": id })).await;
        assert_eq!(codes(&r), ["NOT_FOUND"], "{q}: {r}");
    }
    let r = app
        .gql(Some(&eve.token), "query($w: ID!) { contacts(workspaceId: $w) { edges { node { id } } } }", json!({ "w": ada.workspace_id }))
        .await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    assert!(search(&app, &eve, "carol").await.is_empty());
}

#[tokio::test]
async fn with_existing_only_matching_unknown_senders_make_no_contact() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let r = app
        .gql(
            Some(&ada.token),
            "mutation($w: ID!) { setContactMatching(workspaceId: $w, matching: EXISTING_ONLY) }",
            json!({ "w": ada.workspace_id }),
        )
        .await;
    assert_eq!(r["data"]["setContactMatching"], "EXISTING_ONLY", "{r}");
    create(&app, &ada, Some("Known"), &["known@customer.test"]).await;
    let (mail_user, password) = lab.new_user("ada").await;
    let to = format!("{mail_user}@lab.test");
    lab.append(
        &mail_user,
        &password,
        &[
            (message("known@customer.test", &to, "from a contact", "a"), None),
            (message("stranger@else.test", &to, "from a stranger", "b"), None),
        ],
    )
    .await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 2).await;
    assert_eq!(search(&app, &ada, "").await, ["Known"], "no contact made for the stranger");
    let r = app.gql(Some(&ada.token), "{ activity { edges { node { contact { name } message { title } } } } }", json!({})).await;
    let edges = r["data"]["activity"]["edges"].as_array().unwrap();
    assert_eq!(edges[0]["node"], json!({ "contact": null, "message": { "title": "from a stranger" } }));
    assert_eq!(edges[1]["node"]["contact"]["name"], "Known");
}

#[tokio::test]
async fn an_activity_page_costs_the_same_queries_whatever_its_length() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ada").await;
    let to = format!("{mail_user}@lab.test");
    let mail: Vec<_> = (0..30).map(|i| (message(&format!("Sender {i} <s{i}@customer.test>"), &to, &format!("m{i}"), "x"), None)).collect();
    lab.append(&mail_user, &password, &mail).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 30).await;
    // The sync is idle now (LIVE): the counter moves only for our queries.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cost = |n: usize| {
        let app = &app;
        let ada = &ada;
        async move {
            let before = app.services.db.queries();
            let r = app
                .gql(
                    Some(&ada.token),
                    "query($n: Int) { activity(first: $n) { edges { node { id contact { name emails } message { title } } } } }",
                    json!({ "n": n }),
                )
                .await;
            assert_eq!(r["data"]["activity"]["edges"].as_array().map(Vec::len), Some(n), "{r}");
            app.services.db.queries() - before
        }
    };
    let small = cost(3).await;
    let large = cost(30).await;
    assert_eq!(small, large, "a page of 30 events with their contacts costs what a page of 3 does");
}

#[tokio::test]
async fn a_merge_that_cannot_be_done_names_its_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let eve = app.user("eve@example.com").await;
    let a = create(&app, &ada, Some("Carol"), &["carol@customer.test"]).await["data"]["createContact"]["id"].clone();
    let foreign = create(&app, &eve, Some("Eve's"), &["x@eve.test"]).await["data"]["createContact"]["id"].clone();
    let merge = "mutation($t: ID!, $s: [ID!]!) { mergeContacts(targetId: $t, sourceIds: $s) { id } }";
    for (sources, field) in
        [(json!([]), "sourceIds"), (json!([a]), "sourceIds"), (json!([foreign]), "sourceIds"), (json!(["not-an-id"]), "sourceIds")]
    {
        let r = app.gql(Some(&ada.token), merge, json!({ "t": a, "s": sources })).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some(field.into())), "{sources}: {r}");
    }
    let r = app.gql(Some(&ada.token), "query($id: ID!) { contact(id: $id) { id } }", json!({ "id": "nope" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("id".into())));
    // Eve's contact is untouched, Ada's still there.
    let r = app.gql(Some(&eve.token), "query($id: ID!) { contact(id: $id) { emails } }", json!({ "id": foreign })).await;
    assert_eq!(r["data"]["contact"]["emails"], json!(["x@eve.test"]), "{r}");
    assert_eq!(search(&app, &ada, "carol").await, ["Carol"]);
}
