-- Availability: the status a user chooses and their working hours. One row per account,
-- written on the first change; no row means the defaults (AUTOMATIC, Mon–Fri 09:00–17:00 UTC).
-- The schedule and overrides are JSON text: always read and written whole, never queried.
CREATE TABLE availability (
    account_id       UUID PRIMARY KEY REFERENCES account (account_id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    hold_while_busy  BOOLEAN NOT NULL,
    time_zone        TEXT NOT NULL,
    weekly_schedule  TEXT NOT NULL,
    date_overrides   TEXT NOT NULL,
    ooo_from         TIMESTAMPTZ,
    ooo_to           TIMESTAMPTZ,
    ooo_message      TEXT,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Open WebSocket connections per gateway process and account, so AUTOMATIC presence works
-- when several processes share one database. `last_closed_at` starts the grace period after
-- a process's last connection for the account closes.
CREATE TABLE presence_connection (
    process_id      UUID NOT NULL,
    account_id      UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    connections     INTEGER NOT NULL,
    last_closed_at  TIMESTAMPTZ,
    PRIMARY KEY (process_id, account_id)
);
CREATE INDEX presence_connection_account_idx ON presence_connection (account_id);
