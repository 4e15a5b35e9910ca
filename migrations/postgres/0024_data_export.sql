-- Data exports: an archive of everything an account holds, built in the background and kept
-- for a while. The archive itself lives in the blob store (`exports/<account>/<export>.zip`);
-- this row says where it stands. `session_id` is the session that asked: the archive is read
-- through the API as that session, so it holds what the owner can see and nothing more.
CREATE TABLE data_export (
    data_export_id UUID PRIMARY KEY,
    account_id     UUID NOT NULL REFERENCES account (account_id) ON DELETE CASCADE,
    session_id     UUID NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('PENDING', 'BUILDING', 'READY', 'FAILED')),
    created_at     TIMESTAMPTZ NOT NULL,
    claimed_at     TIMESTAMPTZ,
    ready_at       TIMESTAMPTZ,
    expires_at     TIMESTAMPTZ,
    size_bytes     BIGINT
);
CREATE INDEX data_export_account_idx ON data_export (account_id);
CREATE INDEX data_export_status_idx ON data_export (status);
