-- On PostgreSQL this adds the clock the shared rate limits read. A SQLite gateway counts its
-- limits in memory, so there is nothing to add; the file keeps both numberings equal.
SELECT 1;
