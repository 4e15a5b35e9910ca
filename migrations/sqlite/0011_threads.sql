-- A conversation: the mail events that answer one another. A message joins the thread of
-- the first message its own Message-ID, In-Reply-To or References names that the workspace
-- has; otherwise it starts one, whose id is its (first) event's id. `subject` is the title
-- of the message that started it; `last_activity_at` is the latest `occurred_at` of its
-- events, kept by ingest so a contact's threads list by it without grouping every event.
CREATE TABLE thread (
    thread_id        BLOB PRIMARY KEY NOT NULL,
    workspace_id     BLOB NOT NULL REFERENCES workspace (workspace_id) ON DELETE CASCADE,
    subject          TEXT NOT NULL,
    last_activity_at TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX thread_workspace_idx ON thread (workspace_id, last_activity_at, thread_id);

-- Each mail event's thread, and its message's Message-ID (lower-cased, no angle brackets;
-- NULL for a message without one) so a reply finds what it answers. The dedupe key holds the
-- same id, but only for `message.receive`, and behind a prefix: an indexed column of its
-- own serves both kinds with a plain equality.
ALTER TABLE activity_event ADD COLUMN thread_id BLOB REFERENCES thread (thread_id) ON DELETE SET NULL;
ALTER TABLE activity_event ADD COLUMN message_id TEXT;
-- A thread's events, oldest first (by when they happened, then by id).
CREATE INDEX activity_event_thread_idx ON activity_event (workspace_id, thread_id, occurred_at, event_id);
CREATE INDEX activity_event_message_idx ON activity_event (workspace_id, message_id);

-- Mail recorded before threads existed: its Message-ID comes from the dedupe key, and each
-- message is a thread of its own (re-threading old mail would need every event's headers).
UPDATE activity_event SET message_id = substr(dedupe_key, 5) WHERE kind = 'message.receive' AND dedupe_key LIKE 'mid:%';
INSERT INTO thread (thread_id, workspace_id, subject, last_activity_at, created_at)
    SELECT event_id, workspace_id, COALESCE(json_extract(data, '$.title'), ''), occurred_at, created_at
    FROM activity_event WHERE kind = 'message.receive';
UPDATE activity_event SET thread_id = event_id WHERE kind = 'message.receive';
