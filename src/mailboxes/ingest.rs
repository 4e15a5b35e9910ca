//! Turning fetched messages into activity events: parse, match the sender to a contact,
//! record the event and the mailbox's new checkpoint in one transaction. The unique keys
//! (mailbox + server id, workspace + Message-ID) make it exactly once: a batch that was
//! committed is skipped when fetched again, and one that was not is recorded in full.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use concierge_connector_sdk::RawMessage;

use super::model::MailboxId;
use super::parse::{self, ParsedMessage};
use super::store;
use crate::activity::model::{ActivityEvent, ActivityType, EventId};
use crate::activity::store as activity_store;
use crate::contacts::model::{ContactId, ContactMatching, address_key};
use crate::contacts::service::{create_for_sender, workspace_matching};
use crate::contacts::store as contacts_store;
use crate::db::Db;
use crate::error::Result;
use crate::identity::model::AccountId;
use crate::workspace::model::WorkspaceId;

/// Whose mail is being recorded.
#[derive(Clone, Debug)]
pub struct Owner {
    pub mailbox_id: MailboxId,
    pub account_id: AccountId,
    pub workspace_id: WorkspaceId,
    /// The mailbox's own address: mail from it is filed under its first recipient.
    pub address: String,
}

/// An event a batch recorded for the first time.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub event_id: EventId,
    pub contact_id: Option<ContactId>,
    pub sender: String,
    pub title: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub recorded: Vec<Recorded>,
    /// Messages the mailbox had handled before, or that the workspace already had as events.
    pub known: usize,
    /// Messages recorded as malformed.
    pub malformed: usize,
}

/// Records `messages` and, in the same transaction, moves the checkpoint to `checkpoint`.
/// A batch costs a handful of statements whatever its size: one lookup of the server ids
/// already handled, one of the senders' contacts, multi-row inserts of the events and of
/// the handled ids, and one of the events the workspace already had.
pub async fn ingest(db: &Db, owner: &Owner, messages: Vec<RawMessage>, checkpoint: Option<&str>, now: DateTime<Utc>) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let parsed = parse_all(messages).await?;
    let parsed_in = started.elapsed();
    let mut outcome = Outcome::default();
    let mut tx = db.begin().await?;

    let ids: Vec<&str> = parsed.iter().map(|(raw, ..)| raw.reference.id.as_str()).collect();
    let known: HashSet<String> = store::known_messages(&mut tx, owner.mailbox_id, &ids).await?.into_iter().collect();
    let total = parsed.len();
    let fresh: Vec<(RawMessage, ParsedMessage, String)> = parsed.into_iter().filter(|(raw, ..)| !known.contains(&raw.reference.id)).collect();
    outcome.known = total - fresh.len();

    // The contact of each counterpart address: existing ones in one query, new ones made.
    let matching = workspace_matching(&mut tx, owner.workspace_id).await?;
    let parties: Vec<Option<parse::Address>> = fresh.iter().map(|(_, m, _)| counterpart(m, &owner.address).cloned()).collect();
    let mut keys: Vec<String> = parties.iter().flatten().map(|a| address_key(&a.email)).filter(|k| !k.is_empty()).collect();
    keys.sort();
    keys.dedup();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut contacts: HashMap<String, Option<ContactId>> =
        contacts_store::contacts_by_address_keys(&mut tx, owner.workspace_id, &key_refs).await?.into_iter().map(|(k, c)| (k, Some(c))).collect();
    for party in parties.iter().flatten() {
        if let std::collections::hash_map::Entry::Vacant(slot) = contacts.entry(address_key(&party.email)) {
            // No contact has this address: make one, unless the workspace matches existing
            // contacts only.
            let made = match matching {
                ContactMatching::Create if !slot.key().is_empty() => {
                    create_for_sender(&mut tx, owner.workspace_id, party.name.as_deref(), &party.email).await?
                }
                _ => None,
            };
            slot.insert(made);
        }
    }

    let mut events = Vec::with_capacity(fresh.len());
    let mut data_of = Vec::with_capacity(fresh.len());
    let mut remote_ids = Vec::with_capacity(fresh.len());
    for ((raw, message, key), party) in fresh.into_iter().zip(&parties) {
        let contact_id = party.as_ref().and_then(|a| contacts.get(&address_key(&a.email)).copied().flatten());
        let occurred_at = raw.reference.received_at.or(message.date).unwrap_or(now);
        let data = message;
        events.push(ActivityEvent {
            event_id: EventId::new(),
            workspace_id: owner.workspace_id,
            contact_id,
            mailbox_id: Some(owner.mailbox_id),
            kind: ActivityType::MessageReceive.as_str().to_owned(),
            occurred_at,
            dedupe_key: key,
            data: serde_json::to_string(&data).map_err(anyhow::Error::from)?,
            malformed: data.malformed.is_some(),
            created_at: now,
        });
        data_of.push(data);
        remote_ids.push(raw.reference.id);
    }
    let inserted: HashSet<EventId> = activity_store::insert_events(&mut tx, &events).await?.into_iter().collect();
    // Events the workspace had already (fetched before, or through another mailbox), and
    // repeats within this batch: each server message points at the one event.
    let mut by_key: HashMap<&str, EventId> = events.iter().filter(|e| inserted.contains(&e.event_id)).map(|e| (e.dedupe_key.as_str(), e.event_id)).collect();
    let missing: Vec<&str> = events.iter().map(|e| e.dedupe_key.as_str()).filter(|k| !by_key.contains_key(k)).collect();
    let mut earlier: HashMap<String, EventId> = HashMap::new();
    if !missing.is_empty() {
        earlier = activity_store::events_by_keys(&mut tx, owner.workspace_id, ActivityType::MessageReceive.as_str(), &missing).await?.into_iter().collect();
    }
    let mut handled = Vec::with_capacity(events.len());
    for ((event, data), remote_id) in events.iter().zip(&data_of).zip(&remote_ids) {
        let event_id = if inserted.contains(&event.event_id) {
            if event.malformed {
                outcome.malformed += 1;
            }
            outcome.recorded.push(Recorded {
                event_id: event.event_id,
                contact_id: event.contact_id,
                sender: data.from.first().map(|a| a.name.clone().unwrap_or_else(|| a.email.clone())).unwrap_or_default(),
                title: data.title.clone(),
            });
            event.event_id
        } else {
            outcome.known += 1;
            match by_key.get(event.dedupe_key.as_str()).copied().or_else(|| earlier.get(&event.dedupe_key).copied()) {
                Some(id) => id,
                None => continue,
            }
        };
        by_key.entry(event.dedupe_key.as_str()).or_insert(event_id);
        handled.push((remote_id.as_str(), event_id));
    }
    store::insert_messages(&mut tx, owner.mailbox_id, &handled, now).await?;
    store::advance(&mut tx, owner.mailbox_id, checkpoint, outcome.recorded.len() as i64, outcome.malformed as i64, now).await?;
    tx.commit().await?;
    tracing::debug!(
        messages = total,
        parse_ms = parsed_in.as_secs_f64() * 1e3,
        store_ms = (started.elapsed() - parsed_in).as_secs_f64() * 1e3,
        "recorded a batch"
    );
    Ok(outcome)
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

/// Who the message is with: its sender, unless the mailbox's owner sent it (then the
/// first recipient who is not the owner).
fn counterpart<'a>(message: &'a ParsedMessage, own: &str) -> Option<&'a parse::Address> {
    let own = address_key(own);
    let from = message.from.first()?;
    if address_key(&from.email) != own {
        return Some(from);
    }
    message.to.iter().chain(&message.cc).find(|a| address_key(&a.email) != own)
}
