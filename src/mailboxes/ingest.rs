//! Turning messages into activity events: parse, tell whether the mailbox received or sent
//! each one, match the other party (each recipient of a sent message) to a contact, thread
//! it, and record the events and the mailbox's new checkpoint in one transaction. The unique
//! keys (mailbox + server id, workspace + kind + dedupe key) make it exactly once: a batch
//! that was committed is skipped when fetched again, and one that was not is recorded in full.
//! Mail the gateway sends itself goes through the same path ([`record_sent`]), so its copy in
//! the Sent folder is recognised when a sync reaches it.
//!
//! News is queued for the workspace's webhooks in the same transaction, as `message.receive`
//! and `message.send` events, and received news notifies the owner in that transaction too
//! ([`News`], [`Notifier`]): a crash after the commit loses neither, and one before it loses
//! the batch whole, to be fetched again. Whether a
//! message is news depends on when it arrived, not on which path records it: everything a
//! live mailbox records, mail sent through the gateway, and, in a listing from the sync-from
//! date (the first sync, one started over, a reconciliation), mail that arrived after the
//! mailbox was connected. Older mail is not news: a mailbox with years of mail must not
//! flood the webhooks, whose deliveries go out in order.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use concierge_connector_sdk::RawMessage;

use super::model::MailboxId;
use super::parse::{self, ParsedMessage, id_key};
use super::store;
use crate::activity::model::{ActivityEvent, ActivityType, EventId, Thread, ThreadId};
use crate::activity::store as activity_store;
use crate::contacts::model::{ContactId, ContactMatching, address_key};
use crate::contacts::service::{create_for_sender, workspace_matching};
use crate::contacts::store as contacts_store;
use crate::db::{Db, Tx};
use crate::error::Result;
use crate::i18n::text;
use crate::identity::model::AccountId;
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::{Notice, NotificationService, Queued, Routing};
use crate::webhooks::OutgoingEvent;
use crate::workspace::model::WorkspaceId;

/// Most recipients of one sent message that get an event (To first, then Cc, then Bcc). A
/// message to more people is a broadcast, not a conversation; and a forged one (anyone can
/// put the mailbox's address in From) must not make thousands of contacts and events. The
/// message's data still lists every recipient.
pub const MAX_RECIPIENTS: usize = 100;

/// Most ids a message's own Message-ID, In-Reply-To and References contribute to finding its
/// thread: the nearest ancestors are enough, and a hostile header may list thousands.
const MAX_THREAD_IDS: usize = 50;

/// Whose mail is being recorded.
#[derive(Clone, Debug)]
pub struct Owner {
    pub mailbox_id: MailboxId,
    pub account_id: AccountId,
    pub workspace_id: WorkspaceId,
    /// The mailbox's own address: mail from it is mail the mailbox sent.
    pub address: String,
}

/// Which messages of a batch are news.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum News {
    /// A live mailbox: everything it records now is new mail.
    All,
    /// A listing from the sync-from date: only mail that arrived after this time (when the
    /// mailbox was connected) is news; the rest was there before.
    ArrivedAfter(DateTime<Utc>),
}

impl News {
    fn covers(self, arrived: DateTime<Utc>) -> bool {
        match self {
            News::All => true,
            // In whole seconds, as servers keep arrival times (IMAP INTERNALDATE): what came in
            // during the second the mailbox was connected counts as already there.
            News::ArrivedAfter(since) => arrived.timestamp() > since.timestamp(),
        }
    }
}

/// An event recorded for the first time.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub event_id: EventId,
    pub contact_id: Option<ContactId>,
    /// `MessageReceive`, or `MessageSend` for mail from the mailbox's own address (one per
    /// recipient). Only received mail is news to notify anyone about.
    pub kind: ActivityType,
    pub thread_id: ThreadId,
    /// The From's display name, else its address; "" when it had none.
    pub sender: String,
    pub title: String,
    /// Whether it is news ([`News`]): received news notifies the owner.
    pub news: bool,
}

/// How received news notifies the mailbox's owner: through `service`, as their `routing` for
/// [`NotificationEvent::MessageReceived`] says, in their `language`.
pub struct Notifier<'a> {
    pub service: &'a NotificationService,
    pub routing: Routing,
    pub language: String,
}

impl Notifier<'_> {
    /// The owner's notice of one received message.
    fn notice(&self, owner: &Owner, r: &Recorded) -> Notice {
        let title = if r.sender.is_empty() {
            text(&self.language, "mail-received-untitled", &[])
        } else {
            text(&self.language, "mail-received-title", &[("sender", &r.sender)])
        };
        Notice {
            assigned_to_me: true,
            dedupe_key: Some(format!("message:{}", r.event_id.0)),
            contact: Some(r.sender.clone()).filter(|s| !s.is_empty()),
            ..Notice::new(owner.account_id, NotificationEvent::MessageReceived, title, r.title.clone())
        }
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// The events recorded for the first time: one per received message, one per recipient
    /// of a sent one.
    pub recorded: Vec<Recorded>,
    /// Messages the mailbox had handled before, or that the workspace already had as events.
    pub known: usize,
    /// Messages recorded as malformed.
    pub malformed: usize,
    /// The owner's notifications of received news, recorded with the batch: announce them
    /// ([`NotificationService::announce`]) now that it committed.
    pub notified: Vec<Queued>,
}

/// Records `messages` and, in the same transaction, moves the checkpoint to `checkpoint`.
/// A batch costs a handful of statements whatever its size: one lookup of the server ids
/// already handled, one of the parties' contacts, one of the threads the messages answer,
/// multi-row inserts of the new threads, the events and the handled ids, and one lookup of
/// the events the workspace already had. Received news notifies the owner through `notify`,
/// in the same transaction (no one when it is None).
pub async fn ingest(
    db: &Db,
    owner: &Owner,
    messages: Vec<RawMessage>,
    checkpoint: Option<&str>,
    news: News,
    notify: Option<&Notifier<'_>>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let parsed = parse_all(messages).await?;
    let parsed_in = started.elapsed();
    let mut tx = db.begin().await?;

    let ids: Vec<&str> = parsed.iter().map(|(raw, ..)| raw.reference.id.as_str()).collect();
    let known: HashSet<String> = store::known_messages(&mut tx, owner.mailbox_id, &ids).await?.into_iter().collect();
    let total = parsed.len();
    let (remote_ids, fresh): (Vec<String>, Vec<Message>) = parsed
        .into_iter()
        .filter(|(raw, ..)| !known.contains(&raw.reference.id))
        .map(|(raw, parsed, key)| {
            let occurred_at = raw.reference.received_at.or(parsed.date).unwrap_or(now);
            (raw.reference.id, Message { parsed, key, occurred_at })
        })
        .unzip();

    let written = write(&mut tx, owner, &fresh, now, news).await?;
    // Each server message points at its message's first event, recorded now or before
    // (fetched earlier through another mailbox or folder, or sent through the gateway).
    let handled: Vec<(&str, EventId)> =
        remote_ids.iter().zip(&written.first_events).filter_map(|(r, e)| e.map(|e| (r.as_str(), e))).collect();
    store::insert_messages(&mut tx, owner.mailbox_id, &handled, now).await?;
    store::advance(&mut tx, owner.mailbox_id, checkpoint, written.new_messages as i64, written.malformed as i64, now).await?;
    let mut notified = Vec::new();
    if let Some(notify) = notify {
        // Only mail that came in: a message the owner sent (found in the Sent folder) is news
        // to nobody.
        for r in written.recorded.iter().filter(|r| r.news && r.kind == ActivityType::MessageReceive) {
            notified.extend(notify.service.record(&mut tx, &notify.routing, notify.notice(owner, r)).await?);
        }
    }
    tx.commit().await?;
    tracing::debug!(
        messages = total,
        parse_ms = parsed_in.as_secs_f64() * 1e3,
        store_ms = (started.elapsed() - parsed_in).as_secs_f64() * 1e3,
        "recorded a batch"
    );
    Ok(Outcome { recorded: written.recorded, known: total - written.new_messages, malformed: written.malformed, notified })
}

/// Records a message the gateway has just sent from the owner's mailbox (`raw`: the RFC 5322
/// bytes as sent), exactly as the sync records it when it finds the copy in a synced folder:
/// same events, same dedupe keys, same thread. So that copy, fetched later, is recognised
/// and points at these events instead of repeating them. The direction is read from the From
/// header as the sync reads it: a message whose From is not the mailbox's address is
/// recorded as received.
///
/// One transaction; no server message is recorded and the checkpoint does not move. Returns
/// the events recorded for the first time (none when the message was recorded before); the
/// caller publishes them. `now` is when it was sent.
pub async fn record_sent(db: &Db, owner: &Owner, raw: &[u8], now: DateTime<Utc>) -> Result<Vec<Recorded>> {
    let raw = raw.to_vec();
    let (parsed, key) = tokio::task::spawn_blocking(move || {
        let parsed = parse::parse(&raw);
        let key = parsed.dedupe_key(&raw);
        (parsed, key)
    })
    .await?;
    let mut tx = db.begin().await?;
    let written = write(&mut tx, owner, &[Message { parsed, key, occurred_at: now }], now, News::All).await?;
    tx.commit().await?;
    Ok(written.recorded)
}

/// A parsed message about to be recorded.
struct Message {
    parsed: ParsedMessage,
    /// [`ParsedMessage::dedupe_key`].
    key: String,
    occurred_at: DateTime<Utc>,
}

/// What [`write`] did.
struct Written {
    recorded: Vec<Recorded>,
    /// For each message, its first event, whether recorded now or before (`None` only when
    /// another transaction is recording it at this moment).
    first_events: Vec<Option<EventId>>,
    /// Messages with at least one event recorded now.
    new_messages: usize,
    /// Of those, the ones that could not be fully read.
    malformed: usize,
}

/// Who a message is with, and so which events it makes.
struct Plan<'a> {
    kind: ActivityType,
    /// One event per entry: the sender of a received message (`None` when it had no From),
    /// or each recipient of a sent one (`None` alone when it went to nobody else).
    parties: Vec<Option<&'a parse::Address>>,
}

/// Mail from the mailbox's own address (`own`, an address key) is mail it sent, to each
/// recipient but itself; anything else it received from its sender.
fn plan<'a>(message: &'a ParsedMessage, own: &str) -> Plan<'a> {
    let from = message.from.first();
    if from.is_none_or(|a| address_key(&a.email) != own) {
        return Plan { kind: ActivityType::MessageReceive, parties: vec![from] };
    }
    let mut seen = HashSet::new();
    let recipients: Vec<Option<&parse::Address>> = message
        .to
        .iter()
        .chain(&message.cc)
        .chain(&message.bcc)
        .filter(|a| {
            let key = address_key(&a.email);
            !key.is_empty() && key != own && seen.insert(key)
        })
        .take(MAX_RECIPIENTS)
        .map(Some)
        .collect();
    Plan { kind: ActivityType::MessageSend, parties: if recipients.is_empty() { vec![None] } else { recipients } }
}

/// The dedupe key of a message's event with `party`. A sent message has one event per
/// recipient, each recognised on its own: its copy in the Sent folder may name recipients
/// (Bcc) that the copy the gateway recorded when sending did not.
fn event_key(kind: ActivityType, message_key: &str, party: Option<&parse::Address>) -> String {
    match (kind, party) {
        (ActivityType::MessageSend, Some(to)) => format!("{message_key}\n{}", address_key(&to.email)),
        _ => message_key.to_owned(),
    }
}

/// The Message-IDs (in [`id_key`] form) that place a message in a thread, best first: its
/// own (the same message, recorded before through another mailbox or by [`record_sent`]),
/// the one it replies to, then its references from the nearest ancestor back.
fn thread_ids(message: &ParsedMessage) -> impl Iterator<Item = String> + '_ {
    message.message_id.iter().chain(&message.in_reply_to).chain(message.references.iter().rev()).take(MAX_THREAD_IDS).map(|id| id_key(id))
}

/// Records the messages' events (and their contacts and threads) inside `tx`, and queues the
/// events of messages that are `news` for the workspace's webhooks too.
async fn write(tx: &mut Tx, owner: &Owner, messages: &[Message], now: DateTime<Utc>, news: News) -> Result<Written> {
    let own = address_key(&owner.address);
    let plans: Vec<Plan> = messages.iter().map(|m| plan(&m.parsed, &own)).collect();
    let parties: Vec<&parse::Address> = plans.iter().flat_map(|p| p.parties.iter().flatten().copied()).collect();
    let contacts = match_contacts(tx, owner.workspace_id, &parties).await?;

    // The threads the workspace already has for the ids the messages name, in one query;
    // messages earlier in the batch are added as they are placed.
    let mut wanted: Vec<String> = messages.iter().flat_map(|m| thread_ids(&m.parsed)).collect();
    wanted.sort();
    wanted.dedup();
    let wanted_refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let mut threads: HashMap<String, ThreadId> = HashMap::new();
    if !wanted_refs.is_empty() {
        for (id, thread) in activity_store::threads_by_message_ids(tx, owner.workspace_id, &wanted_refs).await? {
            threads.entry(id).or_insert(thread);
        }
    }

    let mut events: Vec<ActivityEvent> = Vec::with_capacity(messages.len());
    // Each message's events (a range of `events`) and thread.
    let mut spans: Vec<(Range<usize>, ThreadId)> = Vec::with_capacity(messages.len());
    let mut new_threads: Vec<Thread> = Vec::new();
    for (message, plan) in messages.iter().zip(&plans) {
        let first = EventId::new();
        let thread_id = match thread_ids(&message.parsed).find_map(|id| threads.get(&id).copied()) {
            Some(t) => t,
            None => {
                // A new conversation, named after its first event.
                let t = ThreadId(first.0);
                new_threads.push(Thread {
                    thread_id: t,
                    workspace_id: owner.workspace_id,
                    subject: message.parsed.title.clone(),
                    last_activity_at: message.occurred_at,
                    created_at: now,
                });
                t
            }
        };
        let message_id = message.parsed.message_id.as_deref().map(id_key);
        if let Some(id) = &message_id {
            threads.entry(id.clone()).or_insert(thread_id);
        }
        let data: Arc<str> = serde_json::to_string(&message.parsed).map_err(anyhow::Error::from)?.into();
        let start = events.len();
        for (i, party) in plan.parties.iter().enumerate() {
            events.push(ActivityEvent {
                event_id: if i == 0 { first } else { EventId::new() },
                workspace_id: owner.workspace_id,
                contact_id: party.and_then(|a| contacts.get(&address_key(&a.email)).copied().flatten()),
                mailbox_id: Some(owner.mailbox_id),
                kind: plan.kind.as_str().to_owned(),
                occurred_at: message.occurred_at,
                dedupe_key: event_key(plan.kind, &message.key, *party),
                data: data.clone(),
                malformed: message.parsed.malformed.is_some(),
                created_at: now,
                thread_id: Some(thread_id),
                message_id: message_id.clone(),
            });
        }
        spans.push((start..events.len(), thread_id));
    }

    // Threads first: events reference them.
    activity_store::insert_threads(tx, &new_threads).await?;
    let inserted: HashSet<EventId> = activity_store::insert_events(tx, &events).await?.into_iter().collect();
    // A thread started for a message the workspace turned out to have (one without a
    // Message-ID, fetched through another mailbox) holds nothing: drop it. Every other thread
    // that gained events, unless it is new and holds just the message that started it, gets
    // its latest activity recomputed.
    let mut grown: HashMap<ThreadId, usize> = HashMap::new();
    for (span, thread) in &spans {
        if events[span.clone()].iter().any(|e| inserted.contains(&e.event_id)) {
            *grown.entry(*thread).or_default() += 1;
        }
    }
    let started: HashSet<ThreadId> = new_threads.iter().map(|t| t.thread_id).collect();
    let empty: Vec<ThreadId> = new_threads.iter().map(|t| t.thread_id).filter(|t| !grown.contains_key(t)).collect();
    if !empty.is_empty() {
        activity_store::delete_threads(tx, &empty).await?;
    }
    let alone = |t: &ThreadId, n: usize| started.contains(t) && n == 1 && inserted.contains(&EventId(t.0));
    let mut refresh: Vec<ThreadId> = grown.iter().filter(|(t, n)| !alone(t, **n)).map(|(t, _)| *t).collect();
    if !refresh.is_empty() {
        refresh.sort();
        activity_store::refresh_threads(tx, &refresh).await?;
    }

    // The first event of each message whose first event was not recorded now: an earlier
    // copy in this batch, or what the workspace had before.
    let mut first_by_key: HashMap<(&str, &str), EventId> =
        events.iter().filter(|e| inserted.contains(&e.event_id)).map(|e| ((e.kind.as_str(), e.dedupe_key.as_str()), e.event_id)).collect();
    let mut missing: HashMap<&str, Vec<&str>> = HashMap::new();
    for (span, _) in &spans {
        let e = &events[span.start];
        if !first_by_key.contains_key(&(e.kind.as_str(), e.dedupe_key.as_str())) {
            missing.entry(e.kind.as_str()).or_default().push(e.dedupe_key.as_str());
        }
    }
    let mut earlier: HashMap<(String, String), EventId> = HashMap::new();
    for (kind, keys) in missing {
        for (key, id) in activity_store::events_by_keys(tx, owner.workspace_id, kind, &keys).await? {
            earlier.insert((kind.to_owned(), key), id);
        }
    }

    let mut written = Written { recorded: Vec::new(), first_events: Vec::with_capacity(messages.len()), new_messages: 0, malformed: 0 };
    let mut outgoing: Vec<OutgoingEvent> = Vec::new();
    for ((message, plan), (span, thread)) in messages.iter().zip(&plans).zip(&spans) {
        let mut new = false;
        let is_news = news.covers(message.occurred_at);
        for e in events[span.clone()].iter().filter(|e| inserted.contains(&e.event_id)) {
            new = true;
            if is_news {
                outgoing.push(outgoing_event(e, plan.kind, &message.parsed, *thread));
            }
            written.recorded.push(Recorded {
                event_id: e.event_id,
                contact_id: e.contact_id,
                kind: plan.kind,
                thread_id: *thread,
                sender: message.parsed.from.first().map(|a| a.name.clone().unwrap_or_else(|| a.email.clone())).unwrap_or_default(),
                title: message.parsed.title.clone(),
                news: is_news,
            });
        }
        if new {
            written.new_messages += 1;
            if message.parsed.malformed.is_some() {
                written.malformed += 1;
            }
        }
        let first = &events[span.start];
        let key = (first.kind.as_str(), first.dedupe_key.as_str());
        let id = if inserted.contains(&first.event_id) {
            Some(first.event_id)
        } else {
            first_by_key.get(&key).copied().or_else(|| earlier.get(&(key.0.to_owned(), key.1.to_owned())).copied())
        };
        if let Some(id) = id {
            first_by_key.entry(key).or_insert(id);
        }
        written.first_events.push(id);
    }
    // After the contacts made above: a webhook hears of a new sender before their message.
    crate::webhooks::enqueue_all(tx, owner.workspace_id, &outgoing).await?;
    Ok(written)
}

/// A recorded message event as webhooks receive it: who, where, what about; not the body.
fn outgoing_event(e: &ActivityEvent, kind: ActivityType, message: &ParsedMessage, thread: ThreadId) -> OutgoingEvent<'static> {
    let people = |list: &[parse::Address]| -> Vec<serde_json::Value> {
        list.iter().take(MAX_RECIPIENTS).map(|a| serde_json::json!({ "name": a.name, "email": a.email })).collect()
    };
    OutgoingEvent {
        id: e.event_id.0,
        kind: kind.as_str(),
        occurred_at: e.occurred_at,
        data: serde_json::json!({
            "eventId": e.event_id.0,
            "contactId": e.contact_id.map(|c| c.0),
            "mailboxId": e.mailbox_id.map(|m| m.0),
            "threadId": thread.0,
            "title": message.title,
            "messageId": message.message_id,
            "from": people(&message.from),
            "to": people(&message.to),
            "cc": people(&message.cc),
            "occurredAt": e.occurred_at,
        }),
    }
}

/// The contact of each party's address key: existing ones in one query, new ones made
/// (unless the workspace matches existing contacts only; then `None`).
async fn match_contacts(tx: &mut Tx, workspace_id: WorkspaceId, parties: &[&parse::Address]) -> Result<HashMap<String, Option<ContactId>>> {
    let matching = workspace_matching(tx, workspace_id).await?;
    let mut keys: Vec<String> = parties.iter().map(|a| address_key(&a.email)).filter(|k| !k.is_empty()).collect();
    keys.sort();
    keys.dedup();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut contacts: HashMap<String, Option<ContactId>> =
        contacts_store::contacts_by_address_keys(tx, workspace_id, &key_refs).await?.into_iter().map(|(k, c)| (k, Some(c))).collect();
    for party in parties {
        if let std::collections::hash_map::Entry::Vacant(slot) = contacts.entry(address_key(&party.email)) {
            // No contact has this address: make one, unless the workspace matches existing
            // contacts only.
            let made = match matching {
                ContactMatching::Create if !slot.key().is_empty() => {
                    create_for_sender(tx, workspace_id, party.name.as_deref(), &party.email).await?
                }
                _ => None,
            };
            slot.insert(made);
        }
    }
    Ok(contacts)
}

/// Parses a batch off the async threads, split over two threads when it is big enough to
/// be worth it (MIME decoding and charset conversion are most of an ingest's CPU time).
async fn parse_all(messages: Vec<RawMessage>) -> Result<Vec<(RawMessage, ParsedMessage, String)>> {
    fn one(m: RawMessage) -> (RawMessage, ParsedMessage, String) {
        let p = parse::parse(&m.bytes);
        let key = p.dedupe_key(&m.bytes);
        (m, p, key)
    }
    Ok(tokio::task::spawn_blocking(move || {
        if messages.len() < 32 {
            return messages.into_iter().map(one).collect();
        }
        let mut messages = messages;
        let second = messages.split_off(messages.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(move || second.into_iter().map(one).collect::<Vec<_>>());
            let mut out: Vec<_> = messages.into_iter().map(one).collect();
            // `parse` catches its own panics; should one escape anyway, it fails the whole
            // batch (nothing is committed, the sync retries) rather than losing half of it.
            match other.join() {
                Ok(rest) => out.extend(rest),
                Err(panic) => std::panic::resume_unwind(panic),
            }
            out
        })
    })
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &str) -> ParsedMessage {
        parse::parse(format!("{headers}\r\nSubject: s\r\n\r\nbody").as_bytes())
    }

    fn emails(plan: &Plan<'_>) -> Vec<Option<String>> {
        plan.parties.iter().map(|p| p.map(|a| a.email.clone())).collect()
    }

    #[test]
    fn mail_from_someone_else_is_received_from_its_sender() {
        let m = message("From: Carol <carol@customer.test>\r\nTo: ada@lab.test, dan@customer.test");

        let p = plan(&m, "ada@lab.test");

        assert_eq!(p.kind, ActivityType::MessageReceive);
        assert_eq!(emails(&p), [Some("carol@customer.test".to_owned())]);
    }

    #[test]
    fn mail_from_the_mailbox_is_sent_to_each_other_recipient_once() {
        let m = message(
            "From: Ada <ADA@lab.test>\r\nTo: carol@customer.test, ada@lab.test\r\nCc: Dan <dan@customer.test>, Carol@Customer.test\r\n\
             Bcc: boss@customer.test",
        );

        let p = plan(&m, "ada@lab.test");

        assert_eq!(p.kind, ActivityType::MessageSend);
        assert_eq!(
            emails(&p),
            [Some("carol@customer.test".to_owned()), Some("dan@customer.test".to_owned()), Some("boss@customer.test".to_owned())]
        );
        let keys: Vec<String> = p.parties.iter().map(|a| event_key(p.kind, "mid:x@y", *a)).collect();
        assert_eq!(keys, ["mid:x@y\ncarol@customer.test", "mid:x@y\ndan@customer.test", "mid:x@y\nboss@customer.test"]);
    }

    #[test]
    fn mail_the_mailbox_sent_only_to_itself_is_one_event_without_a_party() {
        let m = message("From: ada@lab.test\r\nTo: Ada <ada@lab.test>");

        let p = plan(&m, "ada@lab.test");

        assert_eq!(p.kind, ActivityType::MessageSend);
        assert_eq!(emails(&p), [None]);
        assert_eq!(event_key(p.kind, "mid:x@y", None), "mid:x@y");
    }

    #[test]
    fn a_broadcast_gets_events_for_its_first_recipients_only() {
        let to: Vec<String> = (0..MAX_RECIPIENTS + 20).map(|i| format!("r{i}@customer.test")).collect();
        let m = message(&format!("From: ada@lab.test\r\nTo: {}", to.join(", ")));

        let p = plan(&m, "ada@lab.test");

        assert_eq!(p.parties.len(), MAX_RECIPIENTS);
        assert_eq!(m.to.len(), MAX_RECIPIENTS + 20, "the message still lists everyone");
    }

    #[test]
    fn a_message_event_for_webhooks_matches_the_catalogue_and_leaves_the_body_out() {
        let m = message("From: Carol <carol@customer.test>\r\nTo: ada@lab.test\r\nCc: Dan <dan@customer.test>\r\nMessage-ID: <m1@x>");
        let e = ActivityEvent {
            event_id: EventId::new(),
            workspace_id: WorkspaceId::new(),
            contact_id: Some(ContactId::new()),
            mailbox_id: Some(MailboxId::new()),
            kind: ActivityType::MessageReceive.as_str().to_owned(),
            occurred_at: Utc::now(),
            dedupe_key: "mid:m1@x".into(),
            data: Arc::from("{}"),
            malformed: false,
            created_at: Utc::now(),
            thread_id: None,
            message_id: None,
        };

        let out = outgoing_event(&e, ActivityType::MessageReceive, &m, ThreadId(e.event_id.0));

        assert_eq!(out.id, e.event_id.0, "the event's id: stable across retries");
        let kind = crate::events::catalogue::find(out.kind).expect("a catalogue kind");
        assert!(kind.webhook);
        assert_eq!(kind.validate(&out.data), Ok(()), "{}", out.data);
        assert_eq!(out.data["cc"], serde_json::json!([{ "name": "Dan", "email": "dan@customer.test" }]));
        assert_eq!(out.data["title"], "s");
        assert!(!out.data.to_string().contains("body"), "no message body: {}", out.data);
    }

    #[test]
    fn a_message_is_threaded_by_its_own_id_then_its_parent_then_the_nearest_reference() {
        let m =
            message("From: c@customer.test\r\nMessage-ID: <Own@x>\r\nIn-Reply-To: <Parent@x>\r\nReferences: <root@x> <mid@x> <parent@x>");

        let ids: Vec<String> = thread_ids(&m).collect();

        assert_eq!(ids, ["own@x", "parent@x", "parent@x", "mid@x", "root@x"]);
    }
}
