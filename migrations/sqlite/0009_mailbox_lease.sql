-- Which gateway process syncs the mailbox, and until when. Processes sharing one database
-- never sync a mailbox at once; a lease left by a process that died runs out.
ALTER TABLE mailbox ADD COLUMN sync_owner BLOB;
ALTER TABLE mailbox ADD COLUMN sync_lease_until TEXT;
