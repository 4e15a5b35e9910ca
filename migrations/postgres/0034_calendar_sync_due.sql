-- When a calendar account's next sync is due, by whichever process syncs it; NULL is "now"
-- (never synced, or asked for: a new choice of calendars, a mailbox signed in again). A
-- process that finds an account not due leaves it, so processes sharing one database sync
-- each account once per poll between them, not once each.
ALTER TABLE calendar_account ADD COLUMN sync_due_at TIMESTAMPTZ;
