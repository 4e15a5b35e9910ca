-- Joining a workspace takes the invitee's consent, and deactivating a member ends their
-- place in that one workspace, never their account.

-- A membership's own status: an INACTIVE member keeps their row (their role, when they
-- joined) but counts as no member of the workspace until reactivated. The account's
-- status (account.status) is separate and changes only by its holder or the operator.
ALTER TABLE membership ADD COLUMN status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE'));

-- An invitation to join a workspace, addressed to an email whether or not an account has
-- it (so inviting reveals nothing about which addresses have accounts). The link's token
-- is kept only as its SHA-256: a leaked table lets nobody in. An invitation ends once:
-- accepted, declined or revoked (or it expires); `sent_at` is its last (re)send, for the
-- resend throttle.
CREATE TABLE workspace_invitation (
    workspace_invitation_id BLOB PRIMARY KEY NOT NULL,
    workspace_id            BLOB NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    email                   TEXT NOT NULL,
    role                    TEXT NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER')),
    invited_by              BLOB REFERENCES account (account_id) ON DELETE SET NULL,
    token_hash              BLOB NOT NULL,
    created_at              TEXT NOT NULL,
    sent_at                 TEXT NOT NULL,
    expires_at              TEXT NOT NULL,
    accepted_at             TEXT,
    declined_at             TEXT,
    revoked_at              TEXT,
    CONSTRAINT workspace_invitation_token_hash_key UNIQUE (token_hash)
);
-- At most one open invitation per workspace and address.
CREATE UNIQUE INDEX workspace_invitation_open_key ON workspace_invitation (workspace_id, email)
    WHERE accepted_at IS NULL AND declined_at IS NULL AND revoked_at IS NULL;
-- An invitee's invitations, found by their login email.
CREATE INDEX workspace_invitation_email_idx ON workspace_invitation (email);
