-- One time zone for the person: the profile's. Availability and the daily summary follow it
-- unless the user set a zone of their own for them (the `_overridden` flags).
ALTER TABLE account ADD COLUMN time_zone TEXT;
ALTER TABLE availability ADD COLUMN time_zone_overridden BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE preference ADD COLUMN summary_time_zone_overridden BOOLEAN NOT NULL DEFAULT FALSE;
