-- Which gateway process holds a claimed appointment write (its instance id, as
-- `delivery_job.locked_by`): the claim is now as long as a calendar account's sync lease and
-- renewed while the write runs, so a write left by a process that died is taken over within
-- that lease rather than two minutes.
ALTER TABLE appointment_write ADD COLUMN claimed_by BLOB;
