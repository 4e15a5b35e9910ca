//! `concierge rekey`: seals every secret kept at rest again under a new gateway key, so an
//! operator can rotate `CONCIERGE_SECRET_KEY` without every mailbox and calendar account
//! signing in again, every second factor being enrolled again and every webhook secret being
//! rotated.
//!
//! Each sealed value is opened with the old key and sealed with the new one, bound to the
//! same row as before, in one transaction: either every value moves to the new key or none
//! does. A value that already opens with the new key is left (running the command twice is
//! harmless); one that opens with neither is counted and left, and the gateway then treats it
//! as it treats any unreadable credential (the owner is asked to sign in again).
//!
//! What is derived from the key rather than sealed with it cannot be carried over: the Web Push
//! VAPID key pair (browsers must subscribe again) and the one-click unsubscribe links in emails
//! already sent.

use uuid::Uuid;

use crate::crypto::SecretBox;
use crate::db::{Db, Tx};
use crate::on_tx;

/// One column of sealed values: its table, the row's key column, and what each value is
/// bound to (the same function its domain seals with).
struct Sealed {
    table: &'static str,
    key: &'static str,
    column: &'static str,
    binding: Binding,
}

enum Binding {
    /// The row's id (a UUID) through the domain's binding function.
    Id(fn(Uuid) -> Vec<u8>),
    /// The row's key itself (bytes): an OAuth request's state hash.
    Key,
}

fn raw_id(id: Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

fn totp(id: Uuid) -> Vec<u8> {
    crate::security::service::bound(crate::identity::model::AccountId(id))
}

fn webhook(id: Uuid) -> Vec<u8> {
    crate::webhooks::service::binding(crate::webhooks::model::WebhookId(id))
}

const SEALED: &[Sealed] = &[
    Sealed { table: "account", key: "account_id", column: "totp_secret", binding: Binding::Id(totp) },
    Sealed { table: "account", key: "account_id", column: "totp_pending_secret", binding: Binding::Id(totp) },
    Sealed { table: "mailbox", key: "mailbox_id", column: "credentials", binding: Binding::Id(raw_id) },
    Sealed { table: "calendar_account", key: "calendar_account_id", column: "credentials", binding: Binding::Id(raw_id) },
    Sealed { table: "webhook", key: "webhook_id", column: "secret", binding: Binding::Id(webhook) },
    Sealed { table: "webhook", key: "webhook_id", column: "previous_secret", binding: Binding::Id(webhook) },
    Sealed {
        table: "passkey_ceremony",
        key: "passkey_ceremony_id",
        column: "state",
        binding: Binding::Id(crate::passkeys::service::bound),
    },
    Sealed { table: "oauth_request", key: "state_hash", column: "verifier", binding: Binding::Key },
];

/// A row's key, as read.
enum Key {
    Id(Uuid),
    Bytes(Vec<u8>),
}

/// What `rekey` did, per column (`table.column`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub columns: Vec<ColumnReport>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ColumnReport {
    pub name: String,
    /// Opened with the old key and sealed with the new one.
    pub resealed: u64,
    /// Already sealed with the new key.
    pub current: u64,
    /// Opened with neither key: left as they are.
    pub unreadable: u64,
}

impl Report {
    pub fn resealed(&self) -> u64 {
        self.columns.iter().map(|c| c.resealed).sum()
    }

    pub fn unreadable(&self) -> u64 {
        self.columns.iter().map(|c| c.unreadable).sum()
    }
}

/// Seals every value that opens with `old` again with `new`, in one transaction.
pub async fn rekey(db: &Db, old: &SecretBox, new: &SecretBox) -> anyhow::Result<Report> {
    anyhow::ensure!(!old.same_key(new), "the old and the new key are the same key");
    let mut tx = db.begin().await?;
    let mut report = Report::default();
    for sealed in SEALED {
        report.columns.push(rekey_column(&mut tx, sealed, old, new).await?);
    }
    tx.commit().await?;
    Ok(report)
}

async fn rekey_column(tx: &mut Tx, sealed: &Sealed, old: &SecretBox, new: &SecretBox) -> anyhow::Result<ColumnReport> {
    let Sealed { table, key, column, binding } = sealed;
    let mut out = ColumnReport { name: format!("{table}.{column}"), ..ColumnReport::default() };
    let select = sqlx::AssertSqlSafe(format!("SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL"));
    let rows: Vec<(Key, Vec<u8>)> = match binding {
        Binding::Key => {
            let rows: Vec<(Vec<u8>, Vec<u8>)> = on_tx!(tx, c => sqlx::query_as(select).fetch_all(c).await)?;
            rows.into_iter().map(|(k, v)| (Key::Bytes(k), v)).collect()
        }
        Binding::Id(_) => {
            let rows: Vec<(Uuid, Vec<u8>)> = on_tx!(tx, c => sqlx::query_as(select).fetch_all(c).await)?;
            rows.into_iter().map(|(k, v)| (Key::Id(k), v)).collect()
        }
    };
    let update = format!("UPDATE {table} SET {column} = $1 WHERE {key} = $2");
    for (row, value) in rows {
        let bound_to = match (&row, binding) {
            (Key::Id(id), Binding::Id(bind)) => bind(*id),
            (Key::Bytes(bytes), _) => bytes.clone(),
            (Key::Id(id), Binding::Key) => id.as_bytes().to_vec(),
        };
        if new.open(&value, &bound_to).is_ok() {
            out.current += 1;
            continue;
        }
        let Ok(plain) = old.open(&value, &bound_to) else {
            out.unreadable += 1;
            continue;
        };
        let resealed = new.seal(&plain, &bound_to)?;
        let query = sqlx::AssertSqlSafe(update.clone());
        match &row {
            Key::Id(id) => on_tx!(tx, c => sqlx::query(query).bind(&resealed).bind(id).execute(c).await.map(|_| ()))?,
            Key::Bytes(bytes) => on_tx!(tx, c => sqlx::query(query).bind(&resealed).bind(bytes).execute(c).await.map(|_| ()))?,
        };
        out.resealed += 1;
    }
    Ok(out)
}
