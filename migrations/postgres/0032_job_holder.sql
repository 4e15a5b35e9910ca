-- Which gateway process holds a claimed outbox job or webhook delivery (its instance id, as
-- `sync_owner` holds a mailbox's): an operator (or a test) can tell whose work a lease keeps
-- waiting after that process died.
ALTER TABLE delivery_job ADD COLUMN locked_by UUID;
ALTER TABLE webhook_delivery ADD COLUMN locked_by UUID;
