-- Whether mail from an unknown sender creates a contact (CREATE) or is recorded without one
-- (EXISTING_ONLY: the workspace keeps its contact list curated by hand).
ALTER TABLE workspace ADD COLUMN contact_matching TEXT NOT NULL DEFAULT 'CREATE'
    CHECK (contact_matching IN ('CREATE', 'EXISTING_ONLY'));

-- A person the workspace talks to. Several addresses; each address belongs to one contact
-- of the workspace, compared case-insensitively through `address_key`.
CREATE TABLE contact (
    contact_id   UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX contact_workspace_idx ON contact (workspace_id, contact_id);

CREATE TABLE contact_email (
    contact_id   UUID NOT NULL REFERENCES contact (contact_id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    address_key  TEXT NOT NULL,
    position     INTEGER NOT NULL,
    CONSTRAINT contact_email_address_key UNIQUE (workspace_id, address_key)
);
CREATE INDEX contact_email_contact_idx ON contact_email (contact_id, position);

-- A connected mailbox. `credentials` is sealed with the gateway's key (never returned);
-- `checkpoint` is the connector's opaque position, advanced in the same transaction as the
-- events it covers. Every status change records why and when.
CREATE TABLE mailbox (
    mailbox_id         UUID PRIMARY KEY,
    account_id         UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    workspace_id       UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    connector          TEXT NOT NULL,
    email_address      TEXT NOT NULL,
    settings           TEXT NOT NULL,
    credentials        BYTEA NOT NULL,
    sync_from          DATE NOT NULL,
    paused             BOOLEAN NOT NULL DEFAULT FALSE,
    status             TEXT NOT NULL,
    status_reason      TEXT,
    status_changed_at  TIMESTAMPTZ NOT NULL,
    last_error         TEXT,
    last_synced_at     TIMESTAMPTZ,
    initial_synced_at  TIMESTAMPTZ,
    checkpoint         TEXT,
    message_count      BIGINT NOT NULL DEFAULT 0,
    skipped_count      BIGINT NOT NULL DEFAULT 0,
    server_count       BIGINT,
    missing_count      BIGINT,
    last_reconciled_at TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT mailbox_account_address_key UNIQUE (account_id, connector, email_address)
);
CREATE INDEX mailbox_workspace_idx ON mailbox (workspace_id);

-- Something that happened with a contact. `dedupe_key` (the Message-ID, or a digest of a
-- message without one) makes a message recorded once per workspace, however many times
-- or through however many mailboxes it is fetched.
CREATE TABLE activity_event (
    event_id     UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    contact_id   UUID REFERENCES contact (contact_id) ON DELETE SET NULL,
    mailbox_id   UUID REFERENCES mailbox (mailbox_id) ON DELETE SET NULL,
    kind         TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    dedupe_key   TEXT NOT NULL,
    data         TEXT NOT NULL,
    malformed    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL,
    CONSTRAINT activity_event_dedupe_key UNIQUE (workspace_id, kind, dedupe_key)
);
CREATE INDEX activity_event_contact_idx ON activity_event (contact_id, event_id);
CREATE INDEX activity_event_workspace_idx ON activity_event (workspace_id, event_id);

-- Each message a mailbox's server holds that the sync has handled, by the connector's id
-- for it: what reconciliation compares the server's listing with.
CREATE TABLE mail_message (
    mailbox_id  UUID NOT NULL REFERENCES mailbox (mailbox_id) ON DELETE CASCADE,
    remote_id   TEXT NOT NULL,
    event_id    UUID REFERENCES activity_event (event_id) ON DELETE SET NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (mailbox_id, remote_id)
);
