-- A mailbox authorisation a user started at a mail provider (OAuth2 code flow with PKCE).
-- The browser carries only `state`; here it is stored hashed, with who asked, for which
-- connector and mailbox, and the PKCE verifier sealed with the gateway's key. Single use:
-- the callback marks it used in the same statement that checks it.
CREATE TABLE oauth_request (
    state_hash   BYTEA PRIMARY KEY NOT NULL,
    account_id   UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    connector    TEXT NOT NULL,
    mailbox_id   UUID REFERENCES mailbox (mailbox_id) ON DELETE CASCADE,
    sync_from    DATE NOT NULL,
    verifier     BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ
);
CREATE INDEX oauth_request_expiry_idx ON oauth_request (expires_at);
