//! Live tests of the CalDAV connector against a real Radicale (scripts/calendar-lab), all in
//! one binary. Each test starts its own lab unless `CONCIERGE_TEST_CALENDAR_LAB` names one,
//! and makes its own users, so tests run in parallel. What is on the server is seeded and
//! checked with scripts/caldav-client (the PyPI `caldav` package), never with the connector.

mod bearer;
mod discovery;
mod faults;
mod kit;
mod lab;
mod sync;
mod write;
