-- The shared rate limits read the time from the database, not from each replica: replicas'
-- clocks may disagree, and concurrent checks must be counted in the order they lock their
-- row. clock_timestamp() (not now()) is the time of the call, so a check that waited for the
-- row reads a time after the one it waited for.
CREATE FUNCTION rate_limit_clock() RETURNS DOUBLE PRECISION
    LANGUAGE sql VOLATILE
    AS 'SELECT extract(epoch FROM clock_timestamp())::float8';
