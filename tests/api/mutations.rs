//! One convention for every mutation, as a frontend's generated client sees it: one `input:`
//! argument, and an answer that is an object (the changed one, with an `id` a normalised cache
//! keys it by, or a payload holding it). The forms it replaced keep working for one release,
//! deprecated, and each names its successor.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, codes, error_of};

const MUTATION_FIELDS: &str = r#"{ __schema { mutationType { fields(includeDeprecated: true) {
    name isDeprecated deprecationReason
    args(includeDeprecated: true) { name isDeprecated }
    type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
} } } }"#;

/// The named type under any NON_NULL and LIST wrappers: (kind, name).
fn named(t: &Value) -> (String, String) {
    let mut t = t;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (t["kind"].as_str().unwrap_or_default().to_owned(), t["name"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn every_mutation_takes_one_input_and_answers_with_an_object() {
    let app = TestApp::spawn().await;
    let r = app.gql(None, MUTATION_FIELDS, json!({})).await;
    let fields = r["data"]["__schema"]["mutationType"]["fields"].as_array().unwrap_or_else(|| panic!("{r}"));
    let by_name: BTreeMap<&str, &Value> = fields.iter().map(|f| (f["name"].as_str().unwrap(), f)).collect();
    assert!(by_name.len() > 80, "{}", by_name.len());

    let mut broken = Vec::new();
    for (name, field) in &by_name {
        let args = field["args"].as_array().unwrap();
        let current: Vec<&str> = args.iter().filter(|a| a["isDeprecated"] == false).map(|a| a["name"].as_str().unwrap()).collect();
        let flat_kept = args.iter().any(|a| a["isDeprecated"] == true);
        if field["isDeprecated"] == true {
            // A deprecated mutation names a successor that exists and is not deprecated.
            let reason = field["deprecationReason"].as_str().unwrap_or_default();
            let successor = reason.strip_prefix("use ").and_then(|r| r.split([' ', ',', ':']).next()).unwrap_or_default();
            match by_name.get(successor) {
                Some(s) if s["isDeprecated"] == false => {}
                _ => broken.push(format!("{name}: its deprecation names no current successor ({reason})")),
            }
            continue;
        }
        if !(current.is_empty() || current == ["input"]) {
            broken.push(format!("{name}: takes {current:?}, not one `input`"));
        }
        if flat_kept && !current.contains(&"input") {
            broken.push(format!("{name}: keeps deprecated arguments without an `input`"));
        }
        let (kind, type_name) = named(&field["type"]);
        if kind != "OBJECT" {
            broken.push(format!("{name}: answers with {kind} {type_name}"));
        }
    }
    assert!(broken.is_empty(), "mutations off the convention:\n{}", broken.join("\n"));

    // Introspected the way codegen does by default, a deprecated argument is hidden.
    let r = app.gql(None, "{ __type(name: \"Mutation\") { fields { name args { name } } } }", json!({})).await;
    let log_in = r["data"]["__type"]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "logIn").cloned();
    assert_eq!(log_in.map(|f| f["args"].clone()), Some(json!([{ "name": "input" }])), "{r}");
}

#[tokio::test]
async fn the_flat_arguments_still_work_but_not_beside_input_and_one_of_them_is_needed() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;

    // The old form and the new one do the same.
    let old = "mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { token } }";
    let r = app.gql(None, old, json!({ "e": ada.email, "p": PASSWORD })).await;
    assert!(r["data"]["logIn"]["token"].is_string(), "{r}");
    let r = app.log_in(&ada.email, "wrong password").await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");

    // Both at once is refused on `input`, and so is neither; nothing is done.
    let both = "mutation($i: LogInInput!, $e: String!) { logIn(input: $i, email: $e) { token } }";
    let r = app.gql(None, both, json!({ "i": { "email": ada.email, "password": PASSWORD }, "e": ada.email })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("input".to_owned())), "{r}");
    let r = app.gql(None, "mutation { logIn { token } }", json!({})).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("input".to_owned())), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["reason"], "REQUIRED", "{r}");
    // Half of the old arguments is not enough either.
    let r = app.gql(None, "mutation($e: String!) { logIn(email: $e) { token } }", json!({ "e": ada.email })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("input".to_owned())), "{r}");

    // An id outside and inside the input of an update: refused, and the contact is unchanged.
    let create = "mutation($i: CreateContactInput!) { createContact(input: $i) { id name } }";
    let r = app.gql(Some(&ada.token), create, json!({ "i": { "workspaceId": ada.workspace_id, "name": "Grace", "emails": [] } })).await;
    let contact = r["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let update = "mutation($id: ID, $i: UpdateContactInput!) { updateContact(id: $id, input: $i) { id name } }";
    let r = app.gql(Some(&ada.token), update, json!({ "id": contact, "i": { "id": contact, "name": "Hopper" } })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("input".to_owned())), "{r}");
    let r = app.gql(Some(&ada.token), update, json!({ "i": { "name": "Hopper" } })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("id".to_owned())), "{r}");
    let r = app.gql(Some(&ada.token), update, json!({ "i": { "id": contact, "name": "Grace Hopper" } })).await;
    assert_eq!(r["data"]["updateContact"], json!({ "id": contact, "name": "Grace Hopper" }), "{r}");
    let r = app.gql(Some(&ada.token), update, json!({ "id": contact, "i": { "name": "G. Hopper" } })).await;
    assert_eq!(r["data"]["updateContact"]["name"], "G. Hopper", "the deprecated id still works: {r}");
}

#[tokio::test]
async fn a_settings_object_answers_with_the_id_a_cache_keys_it_by() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let page = "{ me { id signature { id html } preferences { id } availability { id } } }";
    let r = app.gql(Some(&ada.token), page, json!({})).await;
    let me = &r["data"]["me"];
    for part in ["signature", "preferences", "availability"] {
        assert_eq!(me[part]["id"], me["id"], "{part}: {r}");
    }

    let sign = "mutation($i: UpdateSignatureInput!) { updateSignature(input: $i) { id html } }";
    let r = app.gql(Some(&ada.token), sign, json!({ "i": { "html": "<p>Ada</p>" } })).await;
    assert_eq!(r["data"]["updateSignature"], json!({ "id": ada.id, "html": "<p>Ada</p>" }), "{r}");
    // A preview is not the stored signature: no id, so a cache does not overwrite it.
    let r = app.gql(Some(&ada.token), "{ previewSignature(html: \"<p>x</p>\") { id html } }", json!({})).await;
    assert_eq!(r["data"]["previewSignature"]["id"], Value::Null, "{r}");

    let status = "mutation($i: SetAvailabilityStatusInput!) { setAvailabilityStatus(input: $i) { id status } }";
    let r = app.gql(Some(&ada.token), status, json!({ "i": { "status": "BUSY" } })).await;
    assert_eq!(r["data"]["setAvailabilityStatus"], json!({ "id": ada.id, "status": "BUSY" }), "{r}");

    // Another user's page keys their own objects, never Ada's.
    let bob = app.user("bob@example.com").await;
    let r = app.gql(Some(&bob.token), page, json!({})).await;
    assert_eq!(r["data"]["me"]["preferences"]["id"], bob.id.as_str(), "{r}");
}

#[tokio::test]
async fn a_removal_answers_with_what_is_left() {
    let app = TestApp::spawn().await;
    let ada = app.user("ada@example.com").await;
    let second = app.log_in(&ada.email, PASSWORD).await;
    let second = second["data"]["logIn"]["token"].as_str().unwrap().to_owned();

    let list = "{ me { sessionsConnection(first: 10) { nodes { id current } } } }";
    let r = app.gql(Some(&ada.token), list, json!({})).await;
    let other = r["data"]["me"]["sessionsConnection"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .map(|s| s["id"].clone())
        .unwrap_or_else(|| panic!("{r}"));

    // Bob cannot end Ada's session; anonymous cannot end anything.
    let bob = app.user("bob@example.com").await;
    let end =
        "mutation($i: EndSessionInput!) { endSession(input: $i) { sessionId user { sessionsConnection(first: 10) { nodes { id } } } } }";
    let r = app.gql(Some(&bob.token), end, json!({ "i": { "id": other } })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    let r = app.gql(None, end, json!({ "i": { "id": other } })).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");
    let r = app.gql(Some(&ada.token), end, json!({ "i": { "id": "not-an-id" } })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("id".to_owned())), "{r}");

    let r = app.gql(Some(&ada.token), end, json!({ "i": { "id": other } })).await;
    assert_eq!(r["data"]["endSession"]["sessionId"], other, "{r}");
    let left = r["data"]["endSession"]["user"]["sessionsConnection"]["nodes"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(left.len(), 1, "the ended session is gone from the answer: {r}");
    let r = app.gql(Some(&second), "{ me { id } }", json!({})).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");

    // Notifications: the answer holds them read, and the unread count left. Bob's invitation
    // gives Ada one.
    let r = app.invite(&bob, &bob.workspace_id, &ada.email, "MEMBER").await;
    assert!(r["data"]["inviteWorkspaceMember"]["id"].is_string(), "{r}");
    let r = app.gql(Some(&ada.token), "{ me { notifications(first: 5) { nodes { id } } } }", json!({})).await;
    let ids: Vec<Value> = r["data"]["me"]["notifications"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect();
    assert!(!ids.is_empty(), "{r}");
    let read = "mutation($i: ReadNotificationsInput!) { readNotifications(input: $i) { markedCount notifications { id readAt } user { unreadNotificationCount } } }";
    let r = app.gql(Some(&bob.token), read, json!({ "i": { "ids": ids } })).await;
    assert_eq!(r["data"]["readNotifications"]["notifications"], json!([]), "Bob reads none of Ada's: {r}");
    let r = app.gql(Some(&ada.token), read, json!({ "i": { "ids": ids } })).await;
    let answer = &r["data"]["readNotifications"];
    assert_eq!(answer["markedCount"], ids.len(), "{r}");
    assert!(answer["notifications"].as_array().unwrap().iter().all(|n| n["readAt"].is_string()), "{r}");
    assert_eq!(answer["user"]["unreadNotificationCount"], 0, "{r}");
}

const GOOD_KEY: &str = "BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

#[tokio::test]
async fn the_successors_answer_with_what_they_changed_and_only_for_their_owner() {
    let app = TestApp::spawn_with(|c| c.outbound_allow = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;

    // Push devices: added and deleted by endpoint or id; Bob cannot delete Ada's.
    let add = "mutation($i: AddPushSubscriptionInput!) { addPushSubscription(input: $i) { user { pushSubscriptions { id } } } }";
    let keys = json!({ "p256dh": GOOD_KEY, "auth": "Zl2DfSz9DwkePkvteR7iog" });
    for device in ["phone", "laptop"] {
        let r = app.gql(Some(&ada.token), add, json!({ "i": { "endpoint": format!("https://127.0.0.1:9/{device}"), "keys": keys } })).await;
        assert!(r["errors"].is_null(), "{r}");
    }
    let r = app.gql(Some(&ada.token), "{ me { pushSubscriptions { id } } }", json!({})).await;
    let first = r["data"]["me"]["pushSubscriptions"][0]["id"].clone();
    let delete = "mutation($i: DeletePushSubscriptionInput!) { deletePushSubscription(input: $i) { user { pushSubscriptions { id } } } }";
    let r = app.gql(Some(&bob.token), delete, json!({ "i": { "id": first } })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    let r = app.gql(Some(&ada.token), delete, json!({ "i": { "id": first, "endpoint": "https://127.0.0.1:9/phone" } })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("id".to_owned())), "one of the two: {r}");
    let r = app.gql(Some(&ada.token), delete, json!({ "i": { "id": first } })).await;
    assert_eq!(r["data"]["deletePushSubscription"]["user"]["pushSubscriptions"].as_array().map(Vec::len), Some(1), "{r}");
    let r = app.gql(Some(&ada.token), add, json!({ "i": { "endpoint": "https://127.0.0.1:9/tablet", "keys": keys } })).await;
    assert_eq!(r["data"]["addPushSubscription"]["user"]["pushSubscriptions"].as_array().map(Vec::len), Some(2), "{r}");
    let r = app.gql(Some(&ada.token), delete, json!({ "i": { "endpoint": "https://127.0.0.1:9/tablet" } })).await;
    assert_eq!(r["data"]["deletePushSubscription"]["user"]["pushSubscriptions"].as_array().map(Vec::len), Some(1), "{r}");
    let r = app.gql(Some(&ada.token), delete, json!({ "i": { "endpoint": "https://127.0.0.1:9/tablet" } })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");

    // Contact matching: readable by members, set by owners, and nobody else's.
    let read = "query($w: ID!) { contactMatching(workspaceId: $w) { id matching } }";
    let r = app.gql(Some(&ada.token), read, json!({ "w": ada.workspace_id })).await;
    assert_eq!(r["data"]["contactMatching"], json!({ "id": ada.workspace_id, "matching": "CREATE" }), "{r}");
    let r = app.gql(Some(&bob.token), read, json!({ "w": ada.workspace_id })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    let set = "mutation($i: ContactMatchingInput!) { updateContactMatching(input: $i) { id matching } }";
    let r = app.gql(Some(&bob.token), set, json!({ "i": { "workspaceId": ada.workspace_id, "matching": "EXISTING_ONLY" } })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    let r = app.gql(Some(&ada.token), set, json!({ "i": { "workspaceId": ada.workspace_id, "matching": "EXISTING_ONLY" } })).await;
    assert_eq!(r["data"]["updateContactMatching"], json!({ "id": ada.workspace_id, "matching": "EXISTING_ONLY" }), "{r}");
    let r = app.gql(Some(&ada.token), read, json!({ "w": ada.workspace_id })).await;
    assert_eq!(r["data"]["contactMatching"]["matching"], "EXISTING_ONLY", "{r}");

    // Invitations: cancelled by the inviter (the answer is the closed invitation), rejected
    // by the invitee.
    let invited = app.invite(&ada, &ada.workspace_id, "carol@example.com", "MEMBER").await;
    let id = invited["data"]["inviteWorkspaceMember"]["id"].clone();
    let cancel = "mutation($i: InvitationInput!) { cancelInvitation(input: $i) { id state } }";
    let r = app.gql(Some(&bob.token), cancel, json!({ "i": { "id": id } })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "{r}");
    let r = app.gql(Some(&ada.token), cancel, json!({ "i": { "id": id } })).await;
    assert_eq!(r["data"]["cancelInvitation"]["id"], id, "{r}");
    assert_ne!(r["data"]["cancelInvitation"]["state"], "PENDING", "{r}");
    let invited = app.invite(&ada, &ada.workspace_id, &bob.email, "MEMBER").await;
    let id = invited["data"]["inviteWorkspaceMember"]["id"].clone();
    // All read (the invitation's notice): the answer says how many, and that none is left.
    let all = "mutation { readAllNotifications { markedCount user { unreadNotificationCount } } }";
    let r = app.gql(Some(&bob.token), all, json!({})).await;
    assert!(r["data"]["readAllNotifications"]["markedCount"].as_u64() >= Some(1), "the invitation's notice: {r}");
    assert_eq!(r["data"]["readAllNotifications"]["user"]["unreadNotificationCount"], 0, "{r}");
    let reject = "mutation($i: AnswerInvitationInput!) { rejectInvitation(input: $i) { invitationId } }";
    let r = app.gql(Some(&ada.token), reject, json!({ "i": { "id": id } })).await;
    assert_eq!(codes(&r), ["NOT_FOUND"], "only the invitee answers: {r}");
    let r = app.gql(Some(&bob.token), reject, json!({ "i": { "id": id } })).await;
    assert_eq!(r["data"]["rejectInvitation"]["invitationId"], id, "{r}");

    // Leaving, and staying.
    let schedule = "mutation($i: ScheduleAccountDeletionInput!) { scheduleAccountDeletion(input: $i) { deletionScheduledAt user { id deletionScheduledAt } } }";
    let r = app.gql(Some(&bob.token), schedule, json!({ "i": { "password": "wrong" } })).await;
    assert!(r["data"].is_null() && !codes(&r).is_empty(), "{r}");
    let r = app.gql(Some(&bob.token), schedule, json!({ "i": { "password": PASSWORD } })).await;
    let answer = &r["data"]["scheduleAccountDeletion"];
    assert!(answer["deletionScheduledAt"].is_string(), "{r}");
    assert_eq!(answer["user"]["deletionScheduledAt"], answer["deletionScheduledAt"], "{r}");
    let stop = "mutation { stopAccountDeletion { deletionScheduledAt user { deletionScheduledAt } } }";
    let r = app.gql(Some(&bob.token), stop, json!({})).await;
    assert_eq!(r["data"]["stopAccountDeletion"], json!({ "deletionScheduledAt": null, "user": { "deletionScheduledAt": null } }), "{r}");

    // A new password: the payload is the user; the old password stops working.
    let update = "mutation($i: UpdatePasswordInput!) { updatePassword(input: $i) { user { id } } }";
    let new = "Brand-New-Horse-42!";
    let r = app
        .gql(Some(&bob.token), update, json!({ "i": { "currentPassword": PASSWORD, "newPassword": new, "confirmPassword": new } }))
        .await;
    assert_eq!(r["data"]["updatePassword"]["user"]["id"], bob.id.as_str(), "{r}");
    assert_eq!(codes(&app.log_in(&bob.email, PASSWORD).await), ["UNAUTHENTICATED"]);

    // Signing out ends this session only.
    let r = app.gql(Some(&bob.token), "mutation { signOut { userId } }", json!({})).await;
    assert_eq!(r["data"]["signOut"]["userId"], bob.id.as_str(), "{r}");
    assert_eq!(codes(&app.gql(Some(&bob.token), "{ me { id } }", json!({})).await), ["UNAUTHENTICATED"]);
    let r = app.gql(None, "mutation { signOut { userId } }", json!({})).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");

    // A reset email is asked for the same way whether or not the address has an account.
    let reset = "mutation($i: EmailInput!) { sendPasswordResetEmail(input: $i) { email } }";
    for email in ["ada@example.com", "nobody@example.com"] {
        let r = app.gql(None, reset, json!({ "i": { "email": email } })).await;
        assert_eq!(r["data"]["sendPasswordResetEmail"]["email"], email, "{r}");
    }
}
