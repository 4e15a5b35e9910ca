-- The security log: what happened to an account's credentials, from where. Newest first by
-- event_id (UUIDv7). `detail` is a short, secret-free note (a token's name, a session id).
CREATE TABLE security_event (
    event_id    BLOB PRIMARY KEY NOT NULL,
    account_id  BLOB NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    detail      TEXT
);
CREATE INDEX security_event_account_idx ON security_event (account_id, event_id);
