-- Webhooks out: a workspace's HTTPS endpoints that receive its events (Standard Webhooks).
-- `secret` is sealed with the gateway's key, bound to the webhook (never returned after it is
-- shown once); after a rotation the previous secret keeps signing too until
-- `previous_secret_expires_at`, so receivers can switch without missing a delivery.
-- `event_kinds` is space-separated kinds of the event catalogue. `disabled_reason` says who
-- turned it off: BY_USER, or FAILING when a delivery failed through the whole retry schedule.
CREATE TABLE webhook (
    webhook_id                 BLOB PRIMARY KEY NOT NULL,
    workspace_id               BLOB NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    url                        TEXT NOT NULL,
    description                TEXT NOT NULL DEFAULT '',
    event_kinds                TEXT NOT NULL,
    enabled                    BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason            TEXT CHECK (disabled_reason IN ('BY_USER', 'FAILING')),
    disabled_at                TEXT,
    secret                     BLOB NOT NULL,
    previous_secret            BLOB,
    previous_secret_expires_at TEXT,
    created_by                 BLOB REFERENCES account (account_id) ON DELETE SET NULL,
    created_at                 TEXT NOT NULL,
    updated_at                 TEXT NOT NULL
);
CREATE INDEX webhook_workspace_idx ON webhook (workspace_id, webhook_id);

-- The outbox: one row per event per subscribed webhook, inserted in the transaction that
-- records the event, so an event and its deliveries commit together. The payload is fixed
-- at that moment, so every attempt sends the same bytes. A webhook's deliveries go out in
-- `delivery_id` order (UUIDv7, time-ordered), one at a time: only the oldest PENDING one is
-- attempted. A worker claims it with a lease (`locked_until`, `lock_token`), so processes
-- sharing a database never send it twice at once, and a crashed worker's claim runs out.
-- `attempts` counts the current round of the retry schedule (a redelivery starts a new one);
-- the unique (webhook, event) pair makes a producer that repeats an event queue it once.
CREATE TABLE webhook_delivery (
    delivery_id      BLOB PRIMARY KEY NOT NULL,
    webhook_id       BLOB NOT NULL REFERENCES webhook (webhook_id) ON DELETE CASCADE,
    event_id         BLOB NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    total_attempts   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    locked_until     TEXT,
    lock_token       BLOB,
    last_status_code INTEGER,
    last_duration_ms INTEGER,
    last_error       TEXT,
    last_attempt_at  TEXT,
    delivered_at     TEXT,
    created_at       TEXT NOT NULL,
    CONSTRAINT webhook_delivery_event_key UNIQUE (webhook_id, event_id)
);
-- Finds each webhook's oldest pending delivery (its head) with one index probe.
CREATE INDEX webhook_delivery_queue_idx ON webhook_delivery (webhook_id, status, delivery_id);

-- Every attempt, as the receiver answered it (or why no answer came).
CREATE TABLE webhook_attempt (
    delivery_id  BLOB NOT NULL REFERENCES webhook_delivery (delivery_id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    attempted_at TEXT NOT NULL,
    status_code  INTEGER,
    duration_ms  INTEGER NOT NULL,
    error        TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
