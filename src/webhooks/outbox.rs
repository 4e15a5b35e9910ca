//! Queuing events for webhooks, inside the producer's transaction: the event and its
//! deliveries commit together or not at all, so nothing recorded is ever lost to a crash
//! between the two, and nothing is sent for an event that was rolled back.
//!
//! Producers call [`enqueue`] (or [`enqueue_all`] for a batch) with their open transaction,
//! then, after committing, [`super::Webhooks::wake`] so the worker sends at once (a missed
//! wake only waits for the worker's periodic look).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::store::{self, NewDelivery};
use crate::db::Tx;
use crate::error::Result;
use crate::workspace::model::WorkspaceId;

/// An event about to be sent to a workspace's webhooks.
#[derive(Clone, Debug)]
pub struct OutgoingEvent<'a> {
    /// Stable for the event: it is the `webhook-id` header of every attempt and redelivery,
    /// so receivers deduplicate on it. Queuing the same id twice queues it once.
    pub id: Uuid,
    /// A kind of the event catalogue (`message.receive`).
    pub kind: &'a str,
    pub occurred_at: DateTime<Utc>,
    /// The kind's data (see its schema in the catalogue).
    pub data: Value,
}

/// The Standard Webhooks body: `{"type": …, "timestamp": …, "data": {…}}`.
pub fn payload(event: &OutgoingEvent<'_>) -> String {
    json!({
        "type": event.kind,
        "timestamp": event.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": event.data,
    })
    .to_string()
}

/// Queues one delivery of `event` per enabled webhook of the workspace subscribed to its
/// kind, in `tx`. Returns how many were queued.
pub async fn enqueue(tx: &mut Tx, workspace_id: WorkspaceId, event: &OutgoingEvent<'_>) -> Result<usize> {
    enqueue_all(tx, workspace_id, std::slice::from_ref(event)).await
}

/// [`enqueue`] for several events of one workspace: one lookup of its webhooks, multi-row
/// inserts. Each webhook receives them in this order.
pub async fn enqueue_all(tx: &mut Tx, workspace_id: WorkspaceId, events: &[OutgoingEvent<'_>]) -> Result<usize> {
    if events.is_empty() {
        return Ok(0);
    }
    let subscribers = store::subscribers(tx, workspace_id).await?;
    if subscribers.is_empty() {
        return Ok(0);
    }
    let bodies: Vec<(usize, String)> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| subscribers.iter().any(|s| s.event_kinds.split_whitespace().any(|k| k == e.kind)))
        .map(|(i, e)| (i, payload(e)))
        .collect();
    let mut rows = Vec::new();
    for (i, body) in &bodies {
        let event = &events[*i];
        for s in subscribers.iter().filter(|s| s.event_kinds.split_whitespace().any(|k| k == event.kind)) {
            rows.push(NewDelivery { webhook_id: s.webhook_id, event_id: event.id, event_type: event.kind, payload: body });
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(store::insert_deliveries(tx, &rows, Utc::now()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_standard_webhooks_envelope() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T10:00:00.5Z").unwrap().with_timezone(&Utc);
        let e = OutgoingEvent { id: Uuid::nil(), kind: "contact.created", occurred_at: at, data: json!({ "contactId": "c" }) };
        let body: Value = serde_json::from_str(&payload(&e)).unwrap();
        assert_eq!(body, json!({ "type": "contact.created", "timestamp": "2026-11-23T10:00:00.500Z", "data": { "contactId": "c" } }));
    }
}
