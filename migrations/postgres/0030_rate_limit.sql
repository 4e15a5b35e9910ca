-- Rate limits shared by the replicas of one database: per key (`<limit>:<what>`), the
-- theoretical arrival time of the next attempt (GCRA), in seconds since the epoch. A key whose
-- time is past has fully recovered and is swept.
CREATE TABLE rate_limit (
    key TEXT PRIMARY KEY,
    tat DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_limit_tat_idx ON rate_limit (tat);
