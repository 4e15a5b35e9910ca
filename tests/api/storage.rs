//! Storage set-up: the embedded SQLite is in WAL mode with foreign keys enforced; on
//! PostgreSQL each app (and each test) lives in its own schema.

use concierge::db::Backend;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_database_is_set_up_as_its_backend_needs() {
    let app = TestApp::spawn().await;
    let db = &app.services.db;

    match db.backend() {
        Backend::Sqlite => {
            let mode: String = concierge::on_pool!(db, p => sqlx::query_scalar("PRAGMA journal_mode").fetch_one(p).await).unwrap();
            let fk: i64 = concierge::on_pool!(db, p => sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(p).await).unwrap();
            assert_eq!((mode.as_str(), fk), ("wal", 1));
        }
        Backend::Postgres => {
            let schema: String = concierge::on_pool!(db, p => sqlx::query_scalar("SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'account' AND table_schema = current_schema()").fetch_one(p).await).unwrap();
            assert!(schema.starts_with("t_"), "tables belong to the test's own schema, not {schema}");
        }
    }
}

#[tokio::test]
async fn deleting_an_account_removes_its_sessions_and_memberships() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let db = &app.services.db;

    concierge::on_pool!(db, p => sqlx::query("DELETE FROM account").execute(p).await.map(drop)).unwrap();

    for table in ["session", "membership"] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = concierge::on_pool!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_one(p).await).unwrap();
        assert_eq!(n, 0, "{table} rows outlived their account");
    }
}

/// A server stopped while one of its transactions is open (a notification being written at
/// the end of a test) leaves that connection holding locks: dropping the test's PostgreSQL
/// schema must not wait on them forever. (On SQLite there is no schema to drop.)
#[tokio::test]
async fn a_server_stopped_inside_a_transaction_is_cleaned_up_without_hanging() {
    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let mut tx = app.services.db.begin().await.expect("a transaction");
    concierge::on_tx!(&mut tx, c => sqlx::query("UPDATE account SET status = status").execute(c).await.map(drop)).expect("an update");
    let started = std::time::Instant::now();
    drop(app);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "teardown took {:?}", started.elapsed());
    drop(tx);
}

/// A duplicate is mapped to a conflict by the constraint it breaks: PostgreSQL names the
/// constraint, SQLite only its columns, and a key must recognise its own violation on both
/// and never another key's.
#[tokio::test]
async fn a_unique_violation_is_told_apart_by_its_key() {
    use concierge::identity::store::EMAIL_KEY;
    use concierge::service_accounts::store::NAME_KEY;

    let app = TestApp::spawn().await;
    app.user("ada@example.com").await;
    let db = &app.services.db;

    // A second account row with Ada's (already lower-cased) email.
    let sql = "INSERT INTO account (account_id, email, password_hash, first_name, last_name, status, created_at, updated_at) \
               SELECT $1, email, password_hash, first_name, last_name, status, created_at, updated_at FROM account";
    let id = uuid::Uuid::now_v7();
    let err = concierge::on_pool!(db, p => sqlx::query(sql).bind(id).execute(p).await.map(drop)).expect_err("a duplicate email");
    assert!(EMAIL_KEY.violated_by(&err), "not recognised as a duplicate email: {err}");
    assert!(!NAME_KEY.violated_by(&err), "a duplicate email taken for a duplicate service-account name: {err}");

    // A duplicate session token hash is a unique violation of another key of another table.
    let sql = "INSERT INTO session (session_id, account_id, token_hash, created_at, last_seen_at, expires_at) \
               SELECT $1, account_id, token_hash, created_at, last_seen_at, expires_at FROM session";
    let err = concierge::on_pool!(db, p => sqlx::query(sql).bind(uuid::Uuid::now_v7()).execute(p).await.map(drop))
        .expect_err("a duplicate token hash");
    assert!(!EMAIL_KEY.violated_by(&err), "a duplicate session token taken for a duplicate email: {err}");
}

/// Every key a store maps to a conflict names a unique constraint or index that exists, and
/// lists its columns as SQLite will report them.
#[tokio::test]
async fn every_unique_key_matches_the_schema() {
    let keys = [
        concierge::identity::store::EMAIL_KEY,
        concierge::service_accounts::store::NAME_KEY,
        concierge::mailboxes::store::ADDRESS_KEY,
        concierge::passkeys::store::CREDENTIAL_KEY,
        concierge::workspace::store::OPEN_INVITATION_KEY,
        concierge::calendars::store::LOGIN_KEY,
    ];
    let app = TestApp::spawn().await;
    let db = &app.services.db;
    for key in keys {
        let (table, _) = key.columns.split_once('.').expect("table.column");
        match db.backend() {
            Backend::Sqlite => {
                // Each unique index of the table, with its columns in order.
                let sql = format!(
                    "SELECT group_concat('{table}.' || ii.name, ', ') FROM pragma_index_list('{table}') il, pragma_index_info(il.name) ii \
                     WHERE il.\"unique\" = 1 GROUP BY il.name"
                );
                let indexes: Vec<String> =
                    concierge::on_pool!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_all(p).await).unwrap();
                assert!(indexes.iter().any(|i| i == key.columns), "{key:?}: the unique indexes of {table} are {indexes:?}");
            }
            Backend::Postgres => {
                let n: i64 = concierge::on_pool!(db, p => sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_indexes WHERE indexname = $1 AND tablename = $2 AND schemaname = current_schema()"
                ).bind(key.name).bind(table).fetch_one(p).await)
                .unwrap();
                assert_eq!(n, 1, "{key:?}: no such unique index on {table}");
            }
        }
    }
}
