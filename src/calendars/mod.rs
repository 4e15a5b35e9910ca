//! Calendars: connected calendar accounts, their calendars and events, the primary and
//! conflict calendars, free/busy from their events, and appointments written to the primary
//! calendar.

pub mod appointments;
pub mod graphql;
pub mod model;
pub mod recurrence;
pub mod service;
pub mod store;
pub mod sync;
