//! Conversations against a real Dovecot: a reply joins the thread of the message it answers
//! (by In-Reply-To or References), anything else starts one; mail from the mailbox's own
//! address is `message.send` on each recipient's contact, once; and mail the gateway records
//! when sending is recognised when its copy is synced.

use std::time::Duration;

use chrono::{Duration as Days, Utc};
use serde_json::{Value, json};

use concierge::fanout::Topic;
use concierge::mailboxes::ingest::{self, Owner};
use concierge::mailboxes::model::MailboxId;
use concierge::workspace::model::WorkspaceId;
use concierge_connector_sdk::{Checkpoint, MessageRef, RawMessage};

use crate::helpers::{TestApp, TestUser, WsEvent};
use crate::mailboxes::{connected, gateway, imap_date, live_with, mailbox};

const EVENT: &str = "id type occurredAt contact { id emails } message { title messageId } thread { id subject lastActivityAt }";

/// A message with the given Message-ID, sent `days_ago`, and any extra header lines
/// (`In-Reply-To: <…>\r\n`).
fn mail(from: &str, to: &str, subject: &str, id: &str, days_ago: i64, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{id}>\r\n{extra}MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{subject}\r\n",
        (Utc::now() - Days::days(days_ago)).to_rfc2822(),
    )
    .into_bytes()
}

/// A fresh Message-ID, so tests sharing a lab never share a message.
fn new_id(name: &str) -> String {
    format!("{name}.{}@customer.test", uuid::Uuid::new_v4().simple())
}

/// The workspace's events, newest first.
async fn events(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let r = app.gql(Some(&user.token), &format!("{{ activity(first: 100) {{ edges {{ node {{ {EVENT} }} }} }} }}"), json!({})).await;
    r["data"]["activity"]["edges"].as_array().unwrap_or_else(|| panic!("activity: {r}")).iter().map(|e| e["node"].clone()).collect()
}

/// The event recording the message with this Message-ID (of the given type).
async fn event_of(app: &TestApp, user: &TestUser, id: &str) -> Value {
    let all = events(app, user).await;
    all.iter().find(|e| e["message"]["messageId"] == id).cloned().unwrap_or_else(|| panic!("no event for {id} in {all:?}"))
}

/// The titles of a thread's events, oldest first, read through `ActivityEvent.thread.events`.
async fn thread_titles(app: &TestApp, user: &TestUser, event_id: &str) -> Vec<String> {
    let r = app
        .gql(
            Some(&user.token),
            "query($id: ID!) { activityEvent(id: $id) { thread { events(first: 50) { edges { node { message { title } } } } } } }",
            json!({ "id": event_id }),
        )
        .await;
    r["data"]["activityEvent"]["thread"]["events"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("thread events: {r}"))
        .iter()
        .map(|e| e["node"]["message"]["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until the mailbox has handled `n` server messages (new or already known).
async fn handled(app: &TestApp, user: &TestUser, id: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = mailbox(app, user, id).await;
        if m["status"] == "LIVE" && m["health"]["recordedCount"].as_i64() == Some(n) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the mailbox did not handle {n} messages: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribe(app: &TestApp, user: &TestUser) -> crate::helpers::WsClient {
    let mut ws = app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", user.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": format!("subscription {{ activityEvents {{ {EVENT} }} }}") } }))
        .await;
    app.listening(Topic::Workspace(WorkspaceId(uuid::Uuid::parse_str(&user.workspace_id).unwrap())), 1).await;
    ws
}

#[tokio::test]
async fn a_reply_arriving_live_joins_the_thread_of_the_message_it_answers() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("thr").await;
    let me = format!("{mail_user}@lab.test");
    let question = new_id("question");
    lab.append(&mail_user, &password, &[(mail("Carol <carol@customer.test>", &me, "Order 1042", &question, 2, ""), imap_date(2))]).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 1).await;
    let first = event_of(&app, &ada, &question).await;
    assert_eq!(first["thread"]["subject"], "Order 1042", "{first}");

    let mut ws = subscribe(&app, &ada).await;
    let reply = new_id("reply");
    let headers = format!("In-Reply-To: <{question}>\r\nReferences: <{question}>\r\n");
    lab.append(&mail_user, &password, &[(mail("carol@customer.test", &me, "Re: Order 1042", &reply, 0, &headers), None)]).await;

    let WsEvent::Json(next) = ws.next_within(Duration::from_secs(15)).await else { panic!("subscription closed") };
    let live = &next["payload"]["data"]["activityEvents"];
    assert_eq!(live["message"]["messageId"], reply, "{next}");
    assert_eq!(live["thread"]["id"], first["thread"]["id"], "the reply is in the question's thread: {next}");
    assert_eq!(live["thread"]["subject"], "Order 1042");
    assert_eq!(live["thread"]["lastActivityAt"], live["occurredAt"], "the reply is the thread's latest activity");
    assert_eq!(thread_titles(&app, &ada, first["id"].as_str().unwrap()).await, ["Order 1042", "Re: Order 1042"], "oldest first");
}

#[tokio::test]
async fn a_message_naming_a_known_one_only_in_references_joins_its_thread_and_an_unrelated_one_starts_its_own() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("ref").await;
    let me = format!("{mail_user}@lab.test");
    let (root, forwarded, unrelated) = (new_id("root"), new_id("fwd"), new_id("other"));
    // All in one batch: the reference is to a message recorded earlier in the same batch.
    let references = format!("References: <unknown-ancestor@elsewhere.test> <{root}>\r\n");
    lab.append(
        &mail_user,
        &password,
        &[
            (mail("carol@customer.test", &me, "Contract", &root, 3, ""), imap_date(3)),
            (mail("dan@customer.test", &me, "Fwd: Contract", &forwarded, 2, &references), imap_date(2)),
            (mail("carol@customer.test", &me, "Invoice", &unrelated, 1, ""), imap_date(1)),
        ],
    )
    .await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 3).await;

    let (root, forwarded, unrelated) =
        (event_of(&app, &ada, &root).await, event_of(&app, &ada, &forwarded).await, event_of(&app, &ada, &unrelated).await);
    assert_eq!(forwarded["thread"]["id"], root["thread"]["id"], "{forwarded}");
    assert_ne!(unrelated["thread"]["id"], root["thread"]["id"], "{unrelated}");
    assert_eq!(unrelated["thread"]["subject"], "Invoice");
    assert_eq!(thread_titles(&app, &ada, unrelated["id"].as_str().unwrap()).await, ["Invoice"]);
    assert_eq!(thread_titles(&app, &ada, root["id"].as_str().unwrap()).await, ["Contract", "Fwd: Contract"]);
}

#[tokio::test]
async fn a_contacts_threads_are_listed_most_recently_active_first() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("list").await;
    let me = format!("{mail_user}@lab.test");
    let (old, newer) = (new_id("old"), new_id("newer"));
    lab.append(
        &mail_user,
        &password,
        &[
            (mail("carol@customer.test", &me, "Old question", &old, 5, ""), imap_date(5)),
            (mail("carol@customer.test", &me, "Newer question", &newer, 3, ""), imap_date(3)),
            (mail("dan@customer.test", &me, "Not Carol's", &new_id("dan"), 1, ""), imap_date(1)),
        ],
    )
    .await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 3).await;
    let carol = event_of(&app, &ada, &old).await["contact"]["id"].clone();
    let subjects = |r: &Value| -> Vec<String> {
        r["data"]["contact"]["threads"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("threads: {r}"))
            .iter()
            .map(|e| e["node"]["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let threads = |after: Option<String>| {
        let app = &app;
        let token = ada.token.clone();
        let carol = carol.clone();
        async move {
            app.gql(
                Some(&token),
                "query($c: ID!, $a: String) { contact(id: $c) { threads(first: 1, after: $a) { edges { node { subject } } pageInfo { hasNextPage endCursor } } } }",
                json!({ "c": carol, "a": after }),
            )
            .await
        }
    };
    let page = threads(None).await;
    assert_eq!(subjects(&page), ["Newer question"], "{page}");

    // Carol answers the old thread: it becomes the most recent.
    let headers = format!("In-Reply-To: <{old}>\r\n");
    lab.append(&mail_user, &password, &[(mail("carol@customer.test", &me, "Re: Old question", &new_id("re"), 0, &headers), None)]).await;
    live_with(&app, &ada, &id, 4).await;
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = threads(after).await;
        listed.extend(subjects(&page));
        let info = &page["data"]["contact"]["threads"]["pageInfo"];
        if info["hasNextPage"] != true {
            break;
        }
        after = info["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(listed, ["Old question", "Newer question"], "Dan's thread is not Carol's");
}

#[tokio::test]
async fn mail_from_the_mailboxs_own_address_is_sent_to_each_recipient_once() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("sent").await;
    let me = format!("{mail_user}@lab.test");
    let question = new_id("q");
    lab.append(&mail_user, &password, &[(mail("carol@customer.test", &me, "Quote?", &question, 2, ""), imap_date(2))]).await;
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 1).await;
    let asked = event_of(&app, &ada, &question).await;

    // Ada answers Carol, copying Dan, Erin in Bcc, and herself (as some clients do).
    let answer = new_id("answer");
    let sent = mail(
        &format!("Ada <{}>", me.to_uppercase()),
        &format!("Carol <carol@customer.test>, {me}"),
        "Re: Quote?",
        &answer,
        0,
        &format!("Cc: Dan <dan@customer.test>\r\nBcc: erin@customer.test\r\nIn-Reply-To: <{question}>\r\n"),
    );
    lab.append(&mail_user, &password, &[(sent.clone(), None)]).await;
    live_with(&app, &ada, &id, 2).await;

    let sends: Vec<Value> = events(&app, &ada).await.into_iter().filter(|e| e["message"]["messageId"] == answer).collect();
    assert!(sends.iter().all(|e| e["type"] == "MESSAGE_SEND"), "{sends:?}");
    let mut to: Vec<String> = sends.iter().map(|e| e["contact"]["emails"][0].as_str().unwrap_or_default().to_owned()).collect();
    to.sort();
    assert_eq!(to, ["carol@customer.test", "dan@customer.test", "erin@customer.test"], "one event per recipient but Ada");
    assert!(sends.iter().any(|e| e["contact"]["id"] == asked["contact"]["id"]), "Carol's send is on the contact she wrote from");
    assert!(sends.iter().all(|e| e["thread"]["id"] == asked["thread"]["id"]), "the answer is in the question's thread: {sends:?}");

    // The same message again (a second copy in the folder): nothing new.
    lab.append(&mail_user, &password, &[(sent, None)]).await;
    handled(&app, &ada, &id, 3).await;
    let again = events(&app, &ada).await;
    assert_eq!(again.len(), 4, "{again:?}");
    assert_eq!(mailbox(&app, &ada, &id).await["counts"]["messages"], 2, "counted once, as one message");
}

#[tokio::test]
async fn a_message_recorded_when_sent_is_recognised_when_its_sent_copy_is_synced() {
    let (app, lab) = gateway().await;
    let ada = app.user("ada@example.com").await;
    let (mail_user, password) = lab.new_user("rs").await;
    let me = format!("{mail_user}@lab.test");
    let id = connected(&app, &ada, &lab, &mail_user, &password).await;
    live_with(&app, &ada, &id, 0).await;
    let db = &app.services.db;
    let mailbox_id = MailboxId::parse("id", &id).unwrap();
    let row = concierge::mailboxes::store::find_mailbox(db, mailbox_id).await.unwrap().expect("the mailbox");
    let owner = Owner { mailbox_id, account_id: row.account_id, workspace_id: row.workspace_id, address: row.email_address.clone() };

    // What the gateway sends has no Bcc line; the copy a client keeps in Sent does.
    let message_id = new_id("sent");
    let raw = mail(&me, "carol@customer.test", "Proposal", &message_id, 0, "Cc: dan@customer.test\r\n");
    let recorded = ingest::record_sent(db, &owner, &raw, Utc::now()).await.unwrap();
    assert_eq!(recorded.len(), 2, "one event each for Carol and Dan: {recorded:?}");
    assert!(recorded.iter().all(|r| r.kind == concierge::activity::model::ActivityType::MessageSend && r.contact_id.is_some()));
    assert_eq!(recorded[0].thread_id, recorded[1].thread_id);
    assert!(ingest::record_sent(db, &owner, &raw, Utc::now()).await.unwrap().is_empty(), "recording it twice records nothing");

    // The sync finds the same bytes in the Sent folder.
    let copy = |uid: u32, bytes: Vec<u8>| RawMessage {
        reference: MessageRef {
            id: format!("Sent/1/{uid}"),
            checkpoint: Checkpoint(format!("Sent/1/{uid}")),
            received_at: None,
            size: None,
        },
        bytes,
    };
    let outcome = ingest::ingest(db, &owner, vec![copy(1, raw.clone())], None, ingest::News::ArrivedAfter(Utc::now()), None, Utc::now())
        .await
        .unwrap();
    assert!(outcome.recorded.is_empty(), "{outcome:?}");
    assert_eq!(outcome.known, 1);
    let points_at: Option<uuid::Uuid> = concierge::on_pool!(db, p => sqlx::query_scalar(
        "SELECT event_id FROM mail_message WHERE mailbox_id = $1 AND remote_id = 'Sent/1/1'")
        .bind(mailbox_id)
        .fetch_one(p)
        .await
        .unwrap());
    assert_eq!(points_at, Some(recorded[0].event_id.0), "the server copy points at the first event recorded when sending");

    // A copy that also names a Bcc recipient adds that recipient's event, and only that.
    let with_bcc = mail(&me, "carol@customer.test", "Proposal", &message_id, 0, "Cc: dan@customer.test\r\nBcc: erin@customer.test\r\n");
    let outcome =
        ingest::ingest(db, &owner, vec![copy(2, with_bcc)], None, ingest::News::ArrivedAfter(Utc::now()), None, Utc::now()).await.unwrap();
    assert_eq!(outcome.recorded.len(), 1, "{outcome:?}");
    assert_eq!(outcome.recorded[0].thread_id, recorded[0].thread_id);
    assert_eq!(events(&app, &ada).await.len(), 3);

    // Carol's reply, arriving in the INBOX, joins the sent message's thread.
    let headers = format!("In-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n");
    lab.append(&mail_user, &password, &[(mail("carol@customer.test", &me, "Re: Proposal", &new_id("re"), 0, &headers), None)]).await;
    // (The Bcc copy above was the mailbox's first new message; the reply is its second.)
    live_with(&app, &ada, &id, 2).await;
    let reply = events(&app, &ada).await.into_iter().find(|e| e["type"] == "MESSAGE_RECEIVE").expect("the reply");
    assert_eq!(reply["thread"]["id"], recorded[0].thread_id.0.to_string(), "{reply}");
    assert_eq!(reply["thread"]["subject"], "Proposal");
    assert_eq!(thread_titles(&app, &ada, reply["id"].as_str().unwrap()).await.len(), 4, "three sends and the reply");
}
