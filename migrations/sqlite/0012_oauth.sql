-- A mailbox authorisation a user started at a mail provider (OAuth2 code flow with PKCE).
-- The browser carries only `state`; here it is stored hashed, with who asked, for which
-- connector and mailbox, and the PKCE verifier sealed with the gateway's key. Single use:
-- the callback marks it used in the same statement that checks it.
CREATE TABLE oauth_request (
    state_hash   BLOB PRIMARY KEY NOT NULL,
    account_id   BLOB NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    connector    TEXT NOT NULL,
    mailbox_id   BLOB REFERENCES mailbox (mailbox_id) ON DELETE CASCADE,
    sync_from    TEXT NOT NULL,
    verifier     BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT
);
CREATE INDEX oauth_request_expiry_idx ON oauth_request (expires_at);
