//! Calendars: connected calendar accounts, their calendars and events, the primary and
//! conflict calendars, and appointments written to the primary calendar.

pub mod ical;
pub mod recurrence;
