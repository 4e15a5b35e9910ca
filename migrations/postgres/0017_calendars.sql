-- Connected calendar accounts. A CalDAV account keeps its own sealed credentials; one that
-- shares an OAuth grant with a mailbox (Google, Microsoft) names that mailbox and has none.
CREATE TABLE calendar_account (
    calendar_account_id UUID PRIMARY KEY,
    account_id          UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    connector           TEXT NOT NULL,
    username            TEXT NOT NULL,
    settings            TEXT NOT NULL,
    credentials         BYTEA,
    mailbox_id          UUID REFERENCES mailbox (mailbox_id) ON DELETE CASCADE,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    last_error          TEXT,
    last_synced_at      TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    CONSTRAINT calendar_account_login_key UNIQUE (account_id, connector, username)
);

-- Each calendar of a connected account. At most one is the user's primary (appointments are
-- written to it); the conflict calendars are read so nobody is booked over a busy slot. Only
-- those are synced: `sync_token` is where that sync stands.
CREATE TABLE calendar (
    calendar_id          UUID PRIMARY KEY,
    calendar_account_id  UUID NOT NULL REFERENCES calendar_account (calendar_account_id) ON DELETE CASCADE,
    account_id           UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    remote_id            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    colour               TEXT,
    time_zone            TEXT,
    writable             BOOLEAN NOT NULL,
    is_primary           BOOLEAN NOT NULL DEFAULT FALSE,
    check_conflicts      BOOLEAN NOT NULL DEFAULT FALSE,
    sync_token           TEXT,
    status               TEXT NOT NULL,
    status_reason        TEXT,
    last_synced_at       TIMESTAMPTZ,
    CONSTRAINT calendar_remote_key UNIQUE (calendar_account_id, remote_id)
);
CREATE INDEX calendar_account_idx ON calendar (account_id);
CREATE UNIQUE INDEX calendar_one_primary_idx ON calendar (account_id) WHERE is_primary;

-- One calendar object (an event and its recurrence exceptions), parsed once when synced.
-- `span_start`/`span_end` (Unix seconds; no end for an endless series) bound every
-- occurrence, so free/busy reads only what can overlap its window.
CREATE TABLE calendar_event (
    calendar_id  UUID NOT NULL REFERENCES calendar (calendar_id) ON DELETE CASCADE,
    remote_id    TEXT NOT NULL,
    etag         TEXT,
    uid          TEXT NOT NULL,
    summary      TEXT,
    span_start   BIGINT NOT NULL,
    span_end     BIGINT,
    recurring    BOOLEAN NOT NULL,
    parsed       TEXT NOT NULL,
    PRIMARY KEY (calendar_id, remote_id)
);
CREATE INDEX calendar_event_span_idx ON calendar_event (calendar_id, span_start);

-- Appointments to write into users' primary calendars: the latest wanted state per user and
-- appointment (written or removed), kept until the calendar has it. `version` grows with
-- each change, so a write that raced a newer change does not mark it done.
CREATE TABLE appointment_write (
    account_id         UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    appointment_key    TEXT NOT NULL,
    uid                TEXT NOT NULL,
    cancelled          BOOLEAN NOT NULL,
    appointment        TEXT NOT NULL,
    version            BIGINT NOT NULL,
    written_version    BIGINT,
    calendar_id        UUID REFERENCES calendar (calendar_id) ON DELETE SET NULL,
    remote_id          TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMPTZ,
    claimed_until      TIMESTAMPTZ,
    last_error         TEXT,
    updated_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, appointment_key)
);
CREATE INDEX appointment_write_due_idx ON appointment_write (next_attempt_at);
