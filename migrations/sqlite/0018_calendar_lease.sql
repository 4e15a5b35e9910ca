-- Which gateway process syncs a calendar account, and until when: processes sharing one
-- database never sync an account at once; a lease left by a process that died runs out.
ALTER TABLE calendar_account ADD COLUMN sync_owner BLOB;
ALTER TABLE calendar_account ADD COLUMN sync_lease_until TEXT;
