-- Service accounts: a workspace's non-human principals (the platform's other services). They
-- never log in; they authenticate with their own tokens, in the personal-access-token format
-- under the `csat_` prefix. Deleting one deletes its tokens; the events it published stay.
CREATE TABLE service_account (
    service_account_id UUID PRIMARY KEY,
    workspace_id       UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    -- What its tokens may carry at most (space-separated, e.g. "events:publish").
    scopes             TEXT NOT NULL,
    created_by         UUID REFERENCES account (account_id) ON DELETE SET NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    -- Set while disabled: its tokens are refused, nothing else changes.
    disabled_at        TIMESTAMPTZ,
    CONSTRAINT service_account_workspace_name_key UNIQUE (workspace_id, name)
);

-- Only the SHA-256 of a token is kept, as for personal access tokens; the display prefix
-- ("csat_AbCd") tells tokens apart.
CREATE TABLE service_account_token (
    service_account_token_id UUID PRIMARY KEY,
    service_account_id       UUID NOT NULL REFERENCES service_account (service_account_id) ON DELETE CASCADE,
    name                     TEXT NOT NULL,
    token_hash               BYTEA NOT NULL,
    display_prefix           TEXT NOT NULL,
    scopes                   TEXT NOT NULL,
    created_by               UUID REFERENCES account (account_id) ON DELETE SET NULL,
    created_at               TIMESTAMPTZ NOT NULL,
    expires_at               TIMESTAMPTZ,
    last_used_at             TIMESTAMPTZ,
    revoked_at               TIMESTAMPTZ,
    CONSTRAINT service_account_token_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX service_account_token_account_idx ON service_account_token (service_account_id);

-- An event a platform service published. The unique idempotency key per workspace makes a
-- retried publish a no-op, even when two retries race. `data` is JSON text (checked against
-- the kind's schema before it gets here). `scheduled_at` is the task's due time or the
-- appointment's start, copied out of `data` for the daily summary's "today".
CREATE TABLE platform_event (
    platform_event_id  UUID PRIMARY KEY,
    workspace_id       UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    service_account_id UUID REFERENCES service_account (service_account_id) ON DELETE SET NULL,
    kind               TEXT NOT NULL,
    idempotency_key    TEXT NOT NULL,
    subject_type       TEXT NOT NULL,
    subject_id         TEXT NOT NULL,
    subject_title      TEXT NOT NULL,
    subject_url        TEXT,
    actor_type         TEXT,
    actor_id           TEXT,
    actor_name         TEXT,
    data               TEXT NOT NULL,
    scheduled_at       TIMESTAMPTZ,
    occurred_at        TIMESTAMPTZ NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT platform_event_idempotency_key UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX platform_event_subject_idx ON platform_event (workspace_id, subject_type, subject_id);

-- Who an event was addressed to, resolved when it was published (user ids and roles).
CREATE TABLE platform_event_recipient (
    platform_event_id UUID NOT NULL REFERENCES platform_event (platform_event_id) ON DELETE CASCADE,
    account_id        UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    PRIMARY KEY (platform_event_id, account_id)
);
CREATE INDEX platform_event_recipient_account_idx ON platform_event_recipient (account_id);
