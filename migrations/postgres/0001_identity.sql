-- Identity: accounts, workspaces, memberships with roles, and log-in sessions.
-- Ids are UUIDv7, so ordering by id is ordering by creation time and keyset pagination
-- needs no timestamp comparisons.

-- A person who signs in. The email is stored lower-cased, so the unique constraint makes
-- the login case-insensitive. The password hash is PHC-format argon2id.
CREATE TABLE account (
    account_id    UUID PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE')),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT account_email_key UNIQUE (email)
);

-- A team's space. Every account gets a personal one at sign-up, which it owns.
CREATE TABLE workspace (
    workspace_id UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- An account's role in a workspace. membership_id orders members by when they joined.
CREATE TABLE membership (
    membership_id UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    account_id    UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
    created_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT membership_workspace_account_key UNIQUE (workspace_id, account_id)
);
CREATE INDEX membership_account_idx ON membership (account_id);

-- A log-in. Only the SHA-256 of the bearer token is kept: a leaked table grants nothing.
CREATE TABLE session (
    session_id   UUID PRIMARY KEY,
    account_id   UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    token_hash   BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    ip           TEXT,
    user_agent   TEXT,
    CONSTRAINT session_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX session_account_idx ON session (account_id);
