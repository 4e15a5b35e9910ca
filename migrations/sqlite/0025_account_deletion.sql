-- Leaving: an account asks to be deleted, and is after a grace period (cancellable until then).
ALTER TABLE account ADD COLUMN deletion_scheduled_at TEXT;
CREATE INDEX account_deletion_due_idx ON account (deletion_scheduled_at) WHERE deletion_scheduled_at IS NOT NULL;

-- What remains of a deleted account: that it existed and when it asked and went. No address,
-- no name: the security log's minimal record, which nothing else can be traced back through.
CREATE TABLE deleted_account (
    account_id   BLOB PRIMARY KEY NOT NULL,
    requested_at TEXT NOT NULL,
    deleted_at   TEXT NOT NULL
);
