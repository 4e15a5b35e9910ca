//! Storage: one pool enum over SQLite (the embedded default) and PostgreSQL (scale-out),
//! migrations applied at start, and the dispatch macros that let each `store.rs` write a
//! query once and run it on either backend.

mod stored;
pub use stored::{Stored, StoredEnum};

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite, Transaction};
use tokio_util::sync::CancellationToken;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The backend a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database handle every service holds. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub pool: Pool,
    queries: Arc<AtomicU64>,
    /// Cancelled when the database is being closed, so holders of long-lived connections
    /// (the change listener) give them back and closing does not wait forever.
    closing: CancellationToken,
}

/// How a [`Db`]'s pool stands (see [`Db::pool_use`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUse {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// An open write transaction on either backend. Services open it; store functions borrow it.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the pool of whichever backend `$db` is.
/// The body is compiled once per backend, so the same query text and binds serve both.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $conn:ident => $body:expr) => {{
        let db: &$crate::db::Db = $db;
        db.count_query();
        match &db.pool {
            $crate::db::Pool::Sqlite($conn) => $body,
            $crate::db::Pool::Postgres($conn) => $body,
        }
    }};
}

/// Runs `$body` with `$conn` bound to the connection of transaction `$tx`.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {{
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    }};
}

/// Runs a statement in transaction `$tx` that matches a column against a list of values
/// (`$values`, a slice) as its parameter `$at`. `$sql` makes the statement's text from the
/// condition on that column; `$query` makes the query from that text and binds the
/// parameters before the list. On PostgreSQL the list is one array parameter (`= ANY($at)`),
/// so the text is the same whatever the count and each connection prepares it once; on
/// SQLite, which prepares cheaply in process, it is `IN ($at, …)`, [`IN_CHUNK`] values per
/// statement. `fetch_all` returns the rows of every statement; `execute` returns `()`.
#[macro_export]
macro_rules! in_list {
    (fetch_all $tx:expr, $values:expr, $at:expr, |$list:ident| $sql:expr, |$text:ident| $query:expr) => {{
        let values = $values;
        let at: usize = $at;
        let make = |$list: &str| sqlx::AssertSqlSafe($sql);
        let rows: Result<Vec<_>, sqlx::Error> = match $tx {
            $crate::db::Tx::Postgres(t) => {
                let $text = make(&format!("= ANY(${at})"));
                $query.bind(values).fetch_all(&mut **t).await
            }
            $crate::db::Tx::Sqlite(t) => {
                async {
                    let mut out = Vec::with_capacity(values.len());
                    for chunk in values.chunks($crate::db::IN_CHUNK) {
                        let $text = make(&format!("IN ({})", $crate::db::placeholders(at, chunk.len())));
                        let mut q = $query;
                        for v in chunk {
                            q = q.bind(*v);
                        }
                        out.extend(q.fetch_all(&mut **t).await?);
                    }
                    Ok(out)
                }
                .await
            }
        };
        rows
    }};
    (execute $tx:expr, $values:expr, $at:expr, |$list:ident| $sql:expr, |$text:ident| $query:expr) => {{
        let values = $values;
        let at: usize = $at;
        let make = |$list: &str| sqlx::AssertSqlSafe($sql);
        let done: Result<(), sqlx::Error> = match $tx {
            $crate::db::Tx::Postgres(t) => {
                let $text = make(&format!("= ANY(${at})"));
                $query.bind(values).execute(&mut **t).await.map(drop)
            }
            $crate::db::Tx::Sqlite(t) => {
                async {
                    for chunk in values.chunks($crate::db::IN_CHUNK) {
                        let $text = make(&format!("IN ({})", $crate::db::placeholders(at, chunk.len())));
                        let mut q = $query;
                        for v in chunk {
                            q = q.bind(*v);
                        }
                        q.execute(&mut **t).await?;
                    }
                    Ok(())
                }
                .await
            }
        };
        done
    }};
}

/// Most values of an `IN (…)` list in one SQLite statement ([`in_list!`]).
pub const IN_CHUNK: usize = 500;

impl Db {
    /// Opens the database named by `url`: `sqlite:` (the file's folder is created) or `postgres:`.
    pub async fn connect(url: &str, max_connections: Option<u32>) -> anyhow::Result<Db> {
        let pool = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid PostgreSQL URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.unwrap_or(16))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("cannot connect to PostgreSQL (DATABASE_URL)")?;
            Pool::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("DATABASE_URL is not a valid SQLite URL")?
                .create_if_missing(true)
                // WAL lets readers proceed during a write; NORMAL is durable across
                // application crashes, which is the trade-off an embedded store wants.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create the folder {}", parent.display()))?;
            }
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.unwrap_or((2 * cores).max(4)))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("cannot open the SQLite database (DATABASE_URL)")?;
            Pool::Sqlite(pool)
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres://");
        };
        Ok(Db { pool, queries: Arc::new(AtomicU64::new(0)), closing: CancellationToken::new() })
    }

    /// The SQLite URL of `concierge.db` inside the data folder.
    pub fn default_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("concierge.db").display())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await,
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await,
        }
        .context("applying database migrations")
    }

    /// Begins a write transaction. On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction
    /// that later upgrades to a write fails with "database is locked" under concurrency.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Whether the database answers a trivial query (readiness).
    pub async fn ping(&self) -> bool {
        let r: Result<i32, _> = on_pool!(self, p => sqlx::query_scalar("SELECT 1").fetch_one(p).await);
        r.is_ok()
    }

    pub async fn close(&self) {
        self.closing.cancel();
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Cancelled once `close` has begun.
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Statements sent since start (exported on /metrics; lets tests prove batching).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The pool's connections now: in use, idle, and the most it opens (`/metrics`).
    pub fn pool_use(&self) -> PoolUse {
        let (size, idle, max) = match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Pool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        PoolUse { in_use: size - idle, idle, max }
    }

    #[doc(hidden)]
    pub fn count_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }
}

/// `$from, $from+1, …` for `n` values.
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `($1, $2), ($3, $4)`: placeholders for a multi-row VALUES of `rows` rows of `cols` columns.
pub fn row_placeholders(rows: usize, cols: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(r * cols + 1, cols))).collect::<Vec<_>>().join(", ")
}

/// `(?, ?), (?, ?)`: anonymous placeholders for a multi-row VALUES of `rows` rows of `cols`
/// columns, for a SQLite statement with no other parameters. With `$n`, each of them is a
/// named parameter that sqlx looks up by name (`sqlite3_bind_parameter_name`, a scan of the
/// statement's names), so binding n of them costs n²: most of a `publishEvents` request's
/// time on SQLite at 2,000 parameters a statement. Anonymous ones have no name to look up.
pub fn anonymous_rows(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; rows].join(", ")
}

/// A keyset page read with `LIMIT first + 1`: the first `first` rows, and whether more follow.
pub fn split_page<T>(mut rows: Vec<T>, first: usize) -> (Vec<T>, bool) {
    let more = rows.len() > first;
    rows.truncate(first);
    (rows, more)
}

/// A unique constraint a store turns into a user-facing conflict. PostgreSQL names the
/// violated constraint; SQLite names only its columns (`UNIQUE constraint failed: t.a, t.b`),
/// so a key carries both.
#[derive(Clone, Copy, Debug)]
pub struct UniqueKey {
    /// The constraint's (or unique index's) name, as in the migrations.
    pub name: &'static str,
    /// Its columns as SQLite lists them: `table.column`, joined by `", "`.
    pub columns: &'static str,
}

impl UniqueKey {
    /// Whether `err` is a duplicate on this key (and not on another unique key of the table).
    pub fn violated_by(self, err: &sqlx::Error) -> bool {
        let sqlx::Error::Database(e) = err else { return false };
        if !e.is_unique_violation() {
            return false;
        }
        match e.constraint() {
            Some(name) => name == self.name,
            None => e.message().strip_prefix("UNIQUE constraint failed: ") == Some(self.columns),
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    /// Marks where [`Self::undo_part`] goes back to: one part of a transaction that does
    /// several independent things (one event of a batch), which may fail alone.
    pub async fn begin_part(&mut self) -> Result<(), sqlx::Error> {
        on_tx!(self, c => sqlx::query("SAVEPOINT part").execute(c).await.map(drop))
    }

    /// Keeps what was done since [`Self::begin_part`].
    pub async fn end_part(&mut self) -> Result<(), sqlx::Error> {
        on_tx!(self, c => sqlx::query("RELEASE SAVEPOINT part").execute(c).await.map(drop))
    }

    /// Undoes what was done since [`Self::begin_part`]; the rest of the transaction stays
    /// (on PostgreSQL, a failed statement leaves it usable again).
    pub async fn undo_part(&mut self) -> Result<(), sqlx::Error> {
        on_tx!(self, c => sqlx::query("ROLLBACK TO SAVEPOINT part").execute(c).await.map(drop))?;
        self.end_part().await
    }
}
