//! Sending from the platform, for real: through the mailbox's SMTP into the contact's Dovecot
//! mailbox, a copy in the sender's Sent folder, one `message.send` event per recipient that
//! the Sent folder's sync does not repeat, and the contact's reply coming back into the same
//! thread, live.

use std::time::Duration;

use lettre::AsyncTransport as _;
use serde_json::{Value, json};

use concierge::fanout::Topic;
use concierge::workspace::model::WorkspaceId;

use crate::helpers::{TestApp, TestUser, WsEvent, error_of};
use crate::mail_lab::{MailLab, parse};
use crate::mailboxes::{connect, gateway, imap_settings, live_with, mailbox};

const SEND: &str = "mutation($i: SendEmailInput!) { sendEmail(input: $i) { messageId savedToSent warnings \
    events { id type thread { id } contact { emails } message { title to { email } } } } }";

async fn send(app: &TestApp, user: &TestUser, input: Value) -> Value {
    app.gql(Some(&user.token), SEND, json!({ "i": input })).await
}

/// Connects a mailbox that sends through the lab's Dovecot submission (implicit TLS, signed
/// in with the mailbox's password), as a real provider's SMTP would be.
async fn connected(app: &TestApp, user: &TestUser, lab: &MailLab, mail_user: &str, password: &str) -> String {
    let r = connect(app, user, mail_user, password, imap_settings(lab)).await;
    r["data"]["connectMailbox"]["id"].as_str().unwrap_or_else(|| panic!("connectMailbox failed: {r}")).to_owned()
}

/// Ada with a connected mailbox (`ada_mail`) and a contact with a mailbox of their own.
struct Pair {
    app: TestApp,
    lab: MailLab,
    ada: TestUser,
    mailbox: String,
    ada_mail: (String, String),
    contact: (String, String),
}

impl Pair {
    async fn new() -> Pair {
        let (app, lab) = gateway().await;
        let ada = app.user("ada@example.com").await;
        let ada_mail = lab.new_user("sa").await;
        let contact = lab.new_user("sc").await;
        let mailbox = connected(&app, &ada, &lab, &ada_mail.0, &ada_mail.1).await;
        live_with(&app, &ada, &mailbox, 0).await;
        Pair { app, lab, ada, mailbox, ada_mail, contact }
    }

    fn contact_address(&self) -> String {
        format!("{}@lab.test", self.contact.0)
    }

    fn ada_address(&self) -> String {
        format!("{}@lab.test", self.ada_mail.0)
    }

    async fn activity(&self) -> Vec<Value> {
        let r = self
            .app
            .gql(
                Some(&self.ada.token),
                "{ activity(first: 50) { edges { node { id type thread { id } contact { emails } message { title } } } } }",
                json!({}),
            )
            .await;
        r["data"]["activity"]["edges"].as_array().unwrap_or_else(|| panic!("{r}")).iter().map(|e| e["node"].clone()).collect()
    }
}

#[tokio::test]
async fn a_sent_message_reaches_the_contact_is_kept_in_sent_and_recorded_once() {
    let p = Pair::new().await;
    let r = p
        .app
        .gql(Some(&p.ada.token), "mutation { updateSignature(html: \"<p>Ada from {{user.full_name}}</p>\") { rendered } }", json!({}))
        .await;
    assert!(r["errors"].is_null(), "{r}");

    let r = send(
        &p.app,
        &p.ada,
        json!({
            "mailboxId": p.mailbox, "to": [format!("Casey <{}>", p.contact_address())],
            "subject": "Proposal", "html": "<p>Hello <b>there</b></p><script>alert(1)</script>",
        }),
    )
    .await;
    let sent = &r["data"]["sendEmail"];
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(sent["savedToSent"], true);
    assert_eq!(sent["warnings"], json!([]));
    let events = sent["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "one event for the one recipient: {sent}");
    assert_eq!(events[0]["type"], "MESSAGE_SEND");
    assert_eq!(events[0]["contact"]["emails"], json!([p.contact_address()]));
    let message_id = sent["messageId"].as_str().expect("a Message-ID").to_owned();

    // It arrived, as HTML and plain text, with the signature and without the script.
    let inbox = p.lab.wait_in_folder(&p.contact.0, &p.contact.1, "INBOX", 1).await;
    let mail = parse(&inbox[0]);
    assert_eq!(mail.subject, "Proposal");
    assert_eq!(mail.message_id.as_deref(), Some(message_id.as_str()));
    assert!(mail.text.contains("Hello") && mail.text.contains("Ada from"), "{}", mail.text);
    let html = mail.html.expect("an HTML part");
    assert!(html.contains("<b>there</b>") && !html.contains("script"), "{html}");

    // A copy is in Ada's Sent folder; once the sync has seen it, it is still one event.
    let sent_folder = p.lab.wait_in_folder(&p.ada_mail.0, &p.ada_mail.1, "Sent", 1).await;
    assert_eq!(parse(&sent_folder[0]).message_id.as_deref(), Some(message_id.as_str()));
    p.app.gql(Some(&p.ada.token), "mutation($id: ID!) { resyncMailbox(id: $id) { id } }", json!({ "id": p.mailbox })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = mailbox(&p.app, &p.ada, &p.mailbox).await;
        if m["health"]["recordedCount"].as_i64() == Some(1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the Sent folder was not synced: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let activity = p.activity().await;
    assert_eq!(activity.iter().filter(|e| e["type"] == "MESSAGE_SEND").count(), 1, "{activity:?}");
}

#[tokio::test]
async fn the_contacts_reply_comes_back_live_into_the_same_thread() {
    let p = Pair::new().await;
    let r = send(
        &p.app,
        &p.ada,
        json!({ "mailboxId": p.mailbox, "to": [p.contact_address()], "subject": "Quote", "html": "<p>Our quote</p>" }),
    )
    .await;
    let sent = &r["data"]["sendEmail"];
    let thread = sent["events"][0]["thread"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let message_id = sent["messageId"].as_str().expect("id").to_owned();

    let mut ws = p.app.ws("graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", p.ada.token) } })).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query":
        "subscription { activityEvents { type thread { id } contact { emails } message { title inReplyTo } } }" } }))
        .await;
    p.app.listening(Topic::Workspace(WorkspaceId(uuid::Uuid::parse_str(&p.ada.workspace_id).unwrap())), 1).await;

    // The contact answers from their own mailbox, through SMTP.
    let reply = lettre::Message::builder()
        .from(p.contact_address().parse().unwrap())
        .to(p.ada_address().parse().unwrap())
        .subject("Re: Quote")
        .in_reply_to(format!("<{message_id}>"))
        .references(format!("<{message_id}>"))
        .body("Looks good.".to_owned())
        .unwrap();
    let smtp = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1").port(p.lab.smtp).build();
    smtp.send(reply).await.expect("the contact's reply is accepted");

    let event = loop {
        let WsEvent::Json(next) = ws.next_within(Duration::from_secs(20)).await else { panic!("subscription closed") };
        let event = next["payload"]["data"]["activityEvents"].clone();
        if event["type"] == "MESSAGE_RECEIVE" {
            break event;
        }
    };
    assert_eq!(event["message"]["title"], "Re: Quote");
    assert_eq!(event["message"]["inReplyTo"], json!([message_id]));
    assert_eq!(event["contact"]["emails"], json!([p.contact_address()]));
    assert_eq!(event["thread"]["id"], thread, "the reply joins the conversation");
}

#[tokio::test]
async fn replying_to_an_event_threads_the_message_for_the_recipient_too() {
    let p = Pair::new().await;
    let original = crate::mailboxes::message(&p.contact_address(), &p.ada_address(), "Question", "Can you help?");
    p.lab.append(&p.ada_mail.0, &p.ada_mail.1, &[(original.clone(), None)]).await;
    live_with(&p.app, &p.ada, &p.mailbox, 1).await;
    let received = p.activity().await.into_iter().find(|e| e["type"] == "MESSAGE_RECEIVE").expect("the question");
    let original_id = parse(std::str::from_utf8(&original).unwrap()).message_id.expect("it has a Message-ID");

    let r = send(
        &p.app,
        &p.ada,
        json!({
            "mailboxId": p.mailbox, "to": [p.contact_address()], "subject": "Re: Question", "html": "Yes.", "replyTo": received["id"],
        }),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["sendEmail"]["events"][0]["thread"]["id"], received["thread"]["id"]);
    let inbox = p.lab.wait_in_folder(&p.contact.0, &p.contact.1, "INBOX", 1).await;
    let headers = inbox[0].to_lowercase();
    assert!(headers.contains(&format!("in-reply-to: <{}>", original_id.to_lowercase())), "{}", inbox[0]);
    assert!(headers.contains("references: <"), "{}", inbox[0]);
}

#[tokio::test]
async fn bad_input_is_a_typed_error_and_sends_nothing() {
    let p = Pair::new().await;
    let bob = p.app.user("bob@example.com").await;
    let to = p.contact_address();
    let cases = [
        (json!({ "mailboxId": p.mailbox, "to": ["not an address"], "subject": "s", "html": "b" }), "BAD_USER_INPUT", "to[0]"),
        (
            json!({ "mailboxId": p.mailbox, "to": [to], "cc": ["ok@example.com", "x@"], "subject": "s", "html": "b" }),
            "BAD_USER_INPUT",
            "cc[1]",
        ),
        (json!({ "mailboxId": p.mailbox, "to": [], "subject": "s", "html": "b" }), "BAD_USER_INPUT", "to"),
        (json!({ "mailboxId": p.mailbox, "to": [to], "subject": "", "html": "  <p> </p> " }), "BAD_USER_INPUT", "subject"),
        (json!({ "mailboxId": p.mailbox, "to": [to], "subject": "two\r\nlines", "html": "b" }), "BAD_USER_INPUT", "subject"),
        (
            json!({ "mailboxId": p.mailbox, "to": [to], "subject": "s", "html": "b", "replyTo": uuid::Uuid::new_v4().to_string() }),
            "BAD_USER_INPUT",
            "replyTo",
        ),
        (json!({ "mailboxId": "nope", "to": [to], "subject": "s", "html": "b" }), "BAD_USER_INPUT", "mailboxId"),
    ];
    for (input, code, field) in cases {
        let r = send(&p.app, &p.ada, input.clone()).await;
        assert_eq!(error_of(&r), (code.to_owned(), Some(field.to_owned())), "{input} → {r}");
    }
    // Someone else's mailbox is not theirs to send from.
    let r = send(&p.app, &bob, json!({ "mailboxId": p.mailbox, "to": [to], "subject": "s", "html": "b" })).await;
    assert_eq!(error_of(&r), ("BAD_USER_INPUT".to_owned(), Some("mailboxId".to_owned())), "{r}");

    assert!(p.activity().await.is_empty(), "nothing was recorded");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(p.lab.folder(&p.contact.0, &p.contact.1, "INBOX").await.is_empty(), "nothing was delivered");
}

/// `sendEmail` as a GraphQL multipart request with one attachment.
async fn send_with_attachment(app: &TestApp, user: &TestUser, input: Value, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let mut input = input;
    input["attachments"] = json!([null]);
    let operations = json!({ "query": SEND, "variables": { "i": input } });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "1": ["variables.i.attachments.0"] }).to_string())
        .part("1", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str("application/pdf").unwrap());
    let res = app.client().post(format!("{}/graphql", app.base)).bearer_auth(&user.token).multipart(form).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn attachments_travel_and_one_over_the_limit_is_refused() {
    let p = Pair::new().await;
    let input = json!({ "mailboxId": p.mailbox, "to": [p.contact_address()], "subject": "Contract", "html": "Attached." });
    let (status, r) = send_with_attachment(&p.app, &p.ada, input.clone(), "contract.pdf", b"%PDF-1.4 tiny".to_vec()).await;
    assert_eq!(status, 200, "{r}");
    assert!(r["errors"].is_null(), "{r}");
    let inbox = p.lab.wait_in_folder(&p.contact.0, &p.contact.1, "INBOX", 1).await;
    assert!(inbox[0].contains("contract.pdf"), "the attachment is in the delivered message");

    // 30 MB is over the 25 MB limit: refused before anything is read into a message.
    let (status, r) = send_with_attachment(&p.app, &p.ada, input.clone(), "huge.pdf", vec![b'x'; 30 * 1024 * 1024]).await;
    assert_eq!(status, 413, "{r}");
    assert!(r["errors"][0]["extensions"]["code"].is_string(), "{r}");
    assert_eq!(p.lab.folder(&p.contact.0, &p.contact.1, "INBOX").await.len(), 1, "nothing more was sent");
}

#[tokio::test]
async fn a_message_over_the_configured_size_is_refused_by_name() {
    let lab = MailLab::get().await;
    let cert = lab.cert();
    let app = TestApp::spawn_with(move |c| {
        c.mail_ca_file = Some(cert);
        // The mail lab listens on loopback.
        c.allow_loopback();
        c.max_send_bytes = 64 * 1024;
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let (user, password) = lab.new_user("sa").await;
    let mailbox = connected(&app, &ada, &lab, &user, &password).await;
    let input = json!({ "mailboxId": mailbox, "to": ["someone@example.com"], "subject": "Big", "html": "x" });
    let (status, r) = send_with_attachment(&app, &ada, input, "big.pdf", vec![b'x'; 100 * 1024]).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(error_of(&r), ("MESSAGE_TOO_LARGE".to_owned(), Some("attachments".to_owned())), "{r}");
}

#[tokio::test]
async fn mail_the_owner_sent_from_another_client_is_recorded_but_notifies_nobody() {
    let p = Pair::new().await;
    let own = crate::mailboxes::message(&p.ada_address(), &p.contact_address(), "Sent from my phone", "hi");
    let incoming = crate::mailboxes::message(&p.contact_address(), &p.ada_address(), "Answer", "hello");
    p.lab.append(&p.ada_mail.0, &p.ada_mail.1, &[(own, None), (incoming, None)]).await;
    live_with(&p.app, &p.ada, &p.mailbox, 2).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let notified = loop {
        let r = p.app.gql(Some(&p.ada.token), "{ me { notifications(first: 10) { edges { node { event body } } } } }", json!({})).await;
        let bodies: Vec<String> = r["data"]["me"]["notifications"]["edges"]
            .as_array()
            .map(|es| {
                es.iter()
                    .filter(|e| e["node"]["event"] == "MESSAGE_RECEIVED")
                    .filter_map(|e| e["node"]["body"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if bodies.iter().any(|b| b == "Answer") || tokio::time::Instant::now() > deadline {
            break bodies;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(notified, ["Answer"], "only the received message notifies of mail");
    let kinds: Vec<String> = p.activity().await.iter().map(|e| e["type"].as_str().unwrap_or_default().to_owned()).collect();
    assert!(kinds.contains(&"MESSAGE_SEND".to_owned()) && kinds.contains(&"MESSAGE_RECEIVE".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn the_senders_sent_copy_names_the_bcc_recipients_and_the_travelling_message_does_not() {
    let p = Pair::new().await;
    let (hidden, hidden_password) = p.lab.new_user("hidden").await;
    let hidden_address = format!("{hidden}@lab.test");
    let r = send(
        &p.app,
        &p.ada,
        json!({
            "mailboxId": p.mailbox, "to": [p.contact_address()], "bcc": [format!("Hidden <{hidden_address}>")],
            "subject": "Quietly", "html": "<p>Hi</p>",
        }),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    assert_eq!(r["data"]["sendEmail"]["savedToSent"], true, "{r}");

    // Both recipients got it, and neither copy says who was blind-copied.
    for (user, password) in [(&p.contact.0, &p.contact.1), (&hidden, &hidden_password)] {
        let inbox = p.lab.wait_in_folder(user, password, "INBOX", 1).await;
        assert!(!inbox[0].to_ascii_lowercase().contains("\nbcc:"), "{}", inbox[0]);
    }
    // Ada's own copy does.
    let sent = p.lab.wait_in_folder(&p.ada_mail.0, &p.ada_mail.1, "Sent", 1).await;
    let bcc_line = sent[0].lines().find(|l| l.to_ascii_lowercase().starts_with("bcc:")).unwrap_or_else(|| panic!("{}", sent[0]));
    assert!(bcc_line.contains(&hidden_address), "{bcc_line}");
}
