-- When the server last renumbered the mailbox's folder (IMAP UIDVALIDITY changed) and the
-- sync listed it again: kept, because the status reason saying so is soon replaced.
ALTER TABLE mailbox ADD COLUMN last_checkpoint_reset_at TIMESTAMPTZ;
