//! Fan-out of committed changes to live subscribers. Only ids travel: a subscriber reloads
//! what it shows from the store. On SQLite (one process) a `broadcast` channel is enough; on
//! PostgreSQL changes go through `NOTIFY`, so every replica's subscribers hear them.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::db::{Db, Pool};
use crate::identity::model::AccountId;

/// Something committed that live clients may need to see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Change {
    /// The account's profile, status or memberships changed.
    Account { account_id: AccountId },
    /// Some of the account's sessions ended (log-out, revocation, password change).
    Sessions { account_id: AccountId },
    /// A new in-app notification for the account.
    Notification { account_id: AccountId, notification_id: uuid::Uuid },
}

impl Change {
    pub fn account_id(&self) -> AccountId {
        match self {
            Change::Account { account_id } | Change::Sessions { account_id } | Change::Notification { account_id, .. } => *account_id,
        }
    }
}

/// Buffered changes per subscriber before it is considered lagging (it then reloads).
const CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct Fanout {
    db: Db,
    local: broadcast::Sender<Change>,
    channel: Option<String>,
}

impl Fanout {
    /// Starts the fan-out. On PostgreSQL it listens on a channel named after the current
    /// schema, so deployments (and tests) sharing a database do not hear each other.
    pub async fn start(db: Db, stop: CancellationToken) -> anyhow::Result<Fanout> {
        let (local, _) = broadcast::channel(CAPACITY);
        let channel = match &db.pool {
            Pool::Sqlite(_) => None,
            Pool::Postgres(pool) => {
                let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(pool).await?;
                let channel = format!("concierge_{schema}");
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(&channel).await?;
                let tx = local.clone();
                let closing = db.closing();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = closing.cancelled() => break,
                            msg = listener.recv() => match msg {
                                Ok(n) => match serde_json::from_str::<Change>(n.payload()) {
                                    Ok(change) => { let _ = tx.send(change); }
                                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed change notification"),
                                },
                                // PgListener reconnects by itself on the next recv.
                                Err(e) => {
                                    tracing::warn!(error = %e, "change listener lost its connection; reconnecting");
                                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                                }
                            },
                        }
                    }
                });
                Some(channel)
            }
        };
        Ok(Fanout { db, local, channel })
    }

    /// Announces a committed change. Call after the commit.
    pub async fn publish(&self, change: Change) {
        match (&self.db.pool, &self.channel) {
            (Pool::Postgres(pool), Some(channel)) => {
                let payload = match serde_json::to_string(&change) {
                    Ok(p) => p,
                    Err(e) => return tracing::error!(error = %e, "cannot encode a change"),
                };
                if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(pool).await {
                    // The change is committed; only its live delivery is lost. Clients catch up on reload.
                    tracing::warn!(error = %e, "cannot notify subscribers of a change");
                }
            }
            _ => {
                let _ = self.local.send(change);
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.local.subscribe()
    }
}
