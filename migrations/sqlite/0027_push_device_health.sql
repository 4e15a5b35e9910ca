-- What a user sees of each registered browser: when a push last got through, and how many
-- attempts have failed since.
ALTER TABLE push_subscription ADD COLUMN last_success_at TEXT;
ALTER TABLE push_subscription ADD COLUMN last_failure_at TEXT;
ALTER TABLE push_subscription ADD COLUMN failure_count INTEGER NOT NULL DEFAULT 0;
