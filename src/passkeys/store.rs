//! SQL for passkeys and their pending ceremonies.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{CeremonyRow, PasskeyInfo, Purpose, StoredPasskey};
use crate::db::{Db, UniqueKey};
use crate::identity::model::AccountId;
use crate::on_pool;

/// A credential is registered once, whoever holds it.
pub const CREDENTIAL_KEY: UniqueKey = UniqueKey { name: "passkey_credential_id_key", columns: "passkey.credential_id" };

pub struct NewCeremony<'a> {
    pub id: Uuid,
    pub purpose: Purpose,
    pub account_id: Option<AccountId>,
    pub login_challenge_id: Option<Uuid>,
    pub state: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Records a ceremony, and forgets the ones nobody answered in time.
pub async fn insert_ceremony(db: &Db, c: &NewCeremony<'_>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("DELETE FROM passkey_ceremony WHERE expires_at <= $1").bind(c.now).execute(p).await.map(drop))?;
    on_pool!(db, p => sqlx::query(
        "INSERT INTO passkey_ceremony (passkey_ceremony_id, purpose, account_id, login_challenge_id, state, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(c.id)
        .bind(c.purpose.as_str())
        .bind(c.account_id)
        .bind(c.login_challenge_id)
        .bind(c.state)
        .bind(c.now)
        .bind(c.expires_at)
        .execute(p)
        .await
        .map(drop))
}

/// Takes a live sign-in ceremony: it is deleted, so a second answer finds nothing.
pub async fn take_ceremony(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<Option<CeremonyRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "DELETE FROM passkey_ceremony WHERE passkey_ceremony_id = $1 AND expires_at > $2 AND purpose <> 'REGISTER' \
         RETURNING passkey_ceremony_id, purpose, account_id, login_challenge_id, state")
        .bind(id)
        .bind(now)
        .fetch_optional(p)
        .await)
}

/// Takes a live registration ceremony of the account; another account's is left alone.
pub async fn take_registration(db: &Db, id: Uuid, account_id: AccountId, now: DateTime<Utc>) -> Result<Option<CeremonyRow>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "DELETE FROM passkey_ceremony WHERE passkey_ceremony_id = $1 AND expires_at > $2 AND purpose = 'REGISTER' AND account_id = $3 \
         RETURNING passkey_ceremony_id, purpose, account_id, login_challenge_id, state")
        .bind(id)
        .bind(now)
        .bind(account_id)
        .fetch_optional(p)
        .await)
}

pub struct NewPasskey<'a> {
    pub id: Uuid,
    pub account_id: AccountId,
    pub credential_id: &'a [u8],
    pub name: &'a str,
    pub credential: &'a str,
    pub now: DateTime<Utc>,
}

/// Stores a passkey; a unique violation means the credential is registered already.
pub async fn insert_passkey(db: &Db, k: &NewPasskey<'_>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(
        "INSERT INTO passkey (passkey_id, account_id, credential_id, name, credential, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(k.id)
        .bind(k.account_id)
        .bind(k.credential_id)
        .bind(k.name)
        .bind(k.credential)
        .bind(k.now)
        .execute(p)
        .await
        .map(drop))
}

/// The account's passkeys, oldest first.
pub async fn list(db: &Db, account_id: AccountId) -> Result<Vec<PasskeyInfo>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "SELECT passkey_id, account_id, name, created_at, last_used_at FROM passkey WHERE account_id = $1 ORDER BY created_at, passkey_id")
        .bind(account_id)
        .fetch_all(p)
        .await)
}

/// The account's passkeys with their credentials.
pub async fn credentials_of(db: &Db, account_id: AccountId) -> Result<Vec<StoredPasskey>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as("SELECT passkey_id, account_id, credential FROM passkey WHERE account_id = $1")
        .bind(account_id)
        .fetch_all(p)
        .await)
}

pub async fn find_by_credential_id(db: &Db, credential_id: &[u8]) -> Result<Option<StoredPasskey>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as("SELECT passkey_id, account_id, credential FROM passkey WHERE credential_id = $1")
        .bind(credential_id)
        .fetch_optional(p)
        .await)
}

/// Keeps the credential's new sign counter and when it was used.
pub async fn record_use(db: &Db, id: Uuid, credential: &str, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query("UPDATE passkey SET credential = $2, last_used_at = $3 WHERE passkey_id = $1")
        .bind(id)
        .bind(credential)
        .bind(now)
        .execute(p)
        .await
        .map(drop))
}

/// Renames one of the account's passkeys; None when it has no such passkey.
pub async fn rename(db: &Db, account_id: AccountId, id: Uuid, name: &str) -> Result<Option<PasskeyInfo>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_as(
        "UPDATE passkey SET name = $3 WHERE passkey_id = $1 AND account_id = $2 \
         RETURNING passkey_id, account_id, name, created_at, last_used_at")
        .bind(id)
        .bind(account_id)
        .bind(name)
        .fetch_optional(p)
        .await)
}

/// Removes one of the account's passkeys; its name, or None when it has no such passkey.
pub async fn delete(db: &Db, account_id: AccountId, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    on_pool!(db, p => sqlx::query_scalar("DELETE FROM passkey WHERE passkey_id = $1 AND account_id = $2 RETURNING name")
        .bind(id)
        .bind(account_id)
        .fetch_optional(p)
        .await)
}
