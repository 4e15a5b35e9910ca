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
