-- Activity is listed by when it happened, then by id (mail recorded late lands in its place).
DROP INDEX activity_event_contact_idx;
DROP INDEX activity_event_workspace_idx;
CREATE INDEX activity_event_contact_idx ON activity_event (contact_id, occurred_at, event_id);
CREATE INDEX activity_event_workspace_idx ON activity_event (workspace_id, occurred_at, event_id);
