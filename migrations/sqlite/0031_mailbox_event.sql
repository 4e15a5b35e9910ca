-- A mailbox's history: what happened to it that its status soon stops showing (connected,
-- paused, the folder renumbered, failing, recovered, …), newest kept, oldest trimmed.
CREATE TABLE mailbox_event (
    mailbox_event_id BLOB PRIMARY KEY NOT NULL,
    mailbox_id       BLOB NOT NULL REFERENCES mailbox (mailbox_id) ON DELETE CASCADE,
    at               TEXT NOT NULL,
    kind             TEXT NOT NULL,
    detail           TEXT
);
CREATE INDEX mailbox_event_mailbox_at ON mailbox_event (mailbox_id, at);
