-- Each gateway process says it is alive every few seconds. Connections counted by a process
-- that stopped saying so (killed, not shut down) are swept away by the others, so its users
-- do not stay ONLINE.
CREATE TABLE presence_process (
    process_id  BLOB PRIMARY KEY NOT NULL,
    seen_at     TEXT NOT NULL
);
