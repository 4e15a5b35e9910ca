-- Personal access tokens for API integrations. Only the SHA-256 of the token is kept; the
-- display prefix ("cpat_AbCd") lets a user tell tokens apart. Scopes are space-separated.
CREATE TABLE access_token (
    access_token_id UUID PRIMARY KEY,
    account_id      UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    token_hash      BYTEA NOT NULL,
    display_prefix  TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    CONSTRAINT access_token_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX access_token_account_idx ON access_token (account_id);
