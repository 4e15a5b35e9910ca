-- PostgreSQL keeps the rate limits its replicas share here. A SQLite gateway is one process
-- and counts in memory; the table exists so both schemas have the same tables.
CREATE TABLE rate_limit (
    key TEXT PRIMARY KEY NOT NULL,
    tat REAL NOT NULL
);
