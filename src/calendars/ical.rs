//! iCalendar in and out (being written).
