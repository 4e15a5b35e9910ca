-- Notification preferences: only the cells a user changed are stored; the rest are defaults
-- defined in code (src/notifications/model.rs), so new event kinds get sensible values.
CREATE TABLE notification_preference (
    account_id BLOB NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    event      TEXT NOT NULL,
    channel    TEXT NOT NULL,
    enabled    BOOLEAN NOT NULL,
    PRIMARY KEY (account_id, event, channel)
);

-- Audio alerts and the daily summary; no row means the defaults.
CREATE TABLE preference (
    account_id            BLOB PRIMARY KEY NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    audio                 TEXT NOT NULL DEFAULT 'ASSIGNED_TO_ME' CHECK (audio IN ('NONE', 'ASSIGNED_TO_ME', 'ALL')),
    summary_enabled       BOOLEAN NOT NULL DEFAULT FALSE,
    summary_time          TEXT NOT NULL DEFAULT '08:00',
    summary_time_zone     TEXT NOT NULL DEFAULT 'UTC'
);

-- In-app notifications, newest first by id (UUIDv7).
CREATE TABLE notification (
    notification_id BLOB PRIMARY KEY NOT NULL,
    account_id      BLOB NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    audible         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TEXT NOT NULL,
    read_at         TEXT
);
CREATE INDEX notification_account_idx ON notification (account_id, notification_id);

-- Web Push subscriptions a client registered (RFC 8030 endpoint, RFC 8291 keys).
CREATE TABLE push_subscription (
    push_subscription_id BLOB PRIMARY KEY NOT NULL,
    account_id           BLOB NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    endpoint             TEXT NOT NULL,
    p256dh               BLOB NOT NULL,
    auth                 BLOB NOT NULL,
    created_at           TEXT NOT NULL,
    CONSTRAINT push_subscription_endpoint_key UNIQUE (endpoint)
);
CREATE INDEX push_subscription_account_idx ON push_subscription (account_id);
