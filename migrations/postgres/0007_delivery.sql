-- Every notice is recorded, whichever channels it goes out on; `in_app` says whether the
-- user sees it in the app (their matrix may send a kind by email only). `dedupe_key` makes
-- a producer that repeats an event (a retry, a replayed mail) notify once.
ALTER TABLE notification ADD COLUMN in_app BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE notification ADD COLUMN dedupe_key TEXT;
ALTER TABLE notification ADD COLUMN contact TEXT;
CREATE UNIQUE INDEX notification_dedupe_idx ON notification (account_id, dedupe_key);

-- The outbox: one job per notice per outside channel (an email; a push to one browser), and
-- one per daily summary. A job survives restarts; its idempotency key stops a repeated notice
-- from queueing it twice; a failed attempt is retried after a growing delay.
CREATE TABLE delivery_job (
    job_id           UUID PRIMARY KEY,
    account_id       UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    channel          TEXT NOT NULL CHECK (channel IN ('EMAIL', 'PUSH')),
    kind             TEXT NOT NULL CHECK (kind IN ('NOTIFICATION', 'DIGEST')),
    notification_id  UUID REFERENCES notification (notification_id) ON DELETE CASCADE,
    push_subscription_id UUID REFERENCES push_subscription (push_subscription_id) ON DELETE SET NULL,
    payload          TEXT NOT NULL DEFAULT '{}',
    idempotency_key  TEXT NOT NULL,
    batchable        BOOLEAN NOT NULL DEFAULT FALSE,
    state            TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT', 'SKIPPED', 'FAILED')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    run_after        TIMESTAMPTZ NOT NULL,
    locked_until     TIMESTAMPTZ,
    last_error       TEXT,
    sent_with        UUID,
    created_at       TIMESTAMPTZ NOT NULL,
    done_at          TIMESTAMPTZ,
    CONSTRAINT delivery_job_idempotency_key UNIQUE (idempotency_key)
);
CREATE INDEX delivery_job_due_idx ON delivery_job (state, run_after);
CREATE INDEX delivery_job_account_idx ON delivery_job (account_id, channel, state);

-- The daily summary: when each user's next one is due (NULL when off), so the scheduler
-- sleeps until the earliest instead of polling everyone.
ALTER TABLE preference ADD COLUMN summary_next_at TIMESTAMPTZ;
CREATE INDEX preference_summary_next_idx ON preference (summary_next_at);

-- A user's local day whose summary a scheduler has taken on: the primary key makes two
-- gateway processes that both find it due send it once.
CREATE TABLE digest_claim (
    account_id  UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    local_date  TEXT NOT NULL,
    claimed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, local_date)
);
