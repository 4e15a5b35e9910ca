//! iCalendar (RFC 5545) for the gateway and every calendar connector: one reader ([`read`],
//! the `icalendar` crate's parser), the compact form the gateway stores for a calendar
//! object ([`object`]), the writer ([`write`]) and TZIDs resolved to IANA zones, the Windows
//! names Outlook and Exchange write included ([`zones`]). Pure code, no I/O.

pub mod object;
pub mod read;
pub mod write;
pub mod zones;

pub use object::{IcalError, Instance, Length, Override, ParsedObject, Rule, Series, When, add_clamped, parse_object, sub_clamped};
pub use read::{Component, Property, ReadError, first_event, parse};
pub use write::{AppointmentIcal, Party, Writer, appointment, escape_text, param_value, utc_stamp};
pub use zones::{WINDOWS_ZONES, WindowsZone, local_to_utc, resolve_tzid, windows_zone};
