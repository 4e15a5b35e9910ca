//! Turning fetched messages into activity events: parse, match the sender to a contact,
//! record the event and the mailbox's new checkpoint in one transaction. The unique keys
//! (mailbox + server id, workspace + Message-ID) make it exactly once: a batch that was
//! committed is skipped when fetched again, and one that was not is recorded in full.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use concierge_connector_sdk::RawMessage;

use super::model::MailboxId;
use super::parse::{self, ParsedMessage};
use super::store;
use crate::activity::model::{ActivityEvent, ActivityType, Address, Attachment, EventId, MessageData};
use crate::activity::store as activity_store;
use crate::contacts::model::{ContactId, address_key};
use crate::contacts::service::{match_sender, workspace_matching};
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
    pub occurred_at: DateTime<Utc>,
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
pub async fn ingest(db: &Db, owner: &Owner, messages: Vec<RawMessage>, checkpoint: Option<&str>, now: DateTime<Utc>) -> Result<Outcome> {
    // Parsing is CPU work (MIME, charsets, HTML sanitising): off the async threads.
    let parsed: Vec<(RawMessage, ParsedMessage, String)> = tokio::task::spawn_blocking(move || {
        messages
            .into_iter()
            .map(|m| {
                let p = parse::parse(&m.bytes);
                let key = p.dedupe_key(&m.bytes);
                (m, p, key)
            })
            .collect()
    })
    .await?;

    let mut outcome = Outcome::default();
    let mut tx = db.begin().await?;
    let matching = workspace_matching(&mut tx, owner.workspace_id).await?;
    let mut contacts: HashMap<String, Option<ContactId>> = HashMap::new();
    for (raw, message, key) in parsed {
        if store::has_message(&mut tx, owner.mailbox_id, &raw.reference.id).await? {
            outcome.known += 1;
            continue;
        }
        let party = counterpart(&message, &owner.address);
        let contact_id = match party {
            Some(a) => match contacts.get(&address_key(&a.email)) {
                Some(known) => *known,
                None => {
                    let id = match_sender(&mut tx, owner.workspace_id, matching, a.name.as_deref(), &a.email).await?;
                    contacts.insert(address_key(&a.email), id);
                    id
                }
            },
            None => None,
        };
        let occurred_at = raw.reference.received_at.or(message.date).unwrap_or(now);
        let data = message_data(message);
        let event = ActivityEvent {
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
        };
        let event_id = match activity_store::insert_event(&mut tx, &event).await? {
            Ok(id) => {
                if event.malformed {
                    outcome.malformed += 1;
                }
                outcome.recorded.push(Recorded {
                    event_id: id,
                    contact_id,
                    sender: data.from.first().map(|a| a.name.clone().unwrap_or_else(|| a.email.clone())).unwrap_or_default(),
                    title: data.title.clone(),
                    occurred_at,
                });
                id
            }
            Err(existing) => {
                outcome.known += 1;
                existing
            }
        };
        store::insert_message(&mut tx, owner.mailbox_id, &raw.reference.id, Some(event_id), now).await?;
    }
    store::advance(&mut tx, owner.mailbox_id, checkpoint, outcome.recorded.len() as i64, outcome.malformed as i64, now).await?;
    tx.commit().await?;
    Ok(outcome)
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

fn message_data(m: ParsedMessage) -> MessageData {
    let addresses = |v: Vec<parse::Address>| v.into_iter().map(|a| Address { name: a.name, email: a.email }).collect();
    MessageData {
        title: m.title,
        contents: m.contents,
        html: m.html,
        from: addresses(m.from),
        to: addresses(m.to),
        cc: addresses(m.cc),
        date: m.date,
        message_id: m.message_id,
        in_reply_to: m.in_reply_to,
        references: m.references,
        attachments: m.attachments.into_iter().map(|a| Attachment { name: a.name, content_type: a.content_type, size: a.size }).collect(),
        malformed: m.malformed,
    }
}
