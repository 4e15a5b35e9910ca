//! A calendar object (RFC 5545) read once into the compact form the gateway stores
//! ([`ParsedObject`]): what free/busy and recurrence expansion need, with every start
//! resolved to an IANA zone where the object names one (Windows names included).
//!
//! Parsing is lenient where real servers are sloppy (unknown TZIDs, odd property order) and
//! strict only where nothing sensible can be stored (no UID, no DTSTART): a bad object must
//! not stop the sync of the rest of the calendar, and no input may panic.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::read::{self, Component, Property};
use super::zones::{local_to_utc, resolve_tzid};

/// Why a calendar object could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcalError {
    /// The object holds no VEVENT (a VTODO or VJOURNAL only): nothing that takes up time.
    #[error("the calendar object has no event")]
    NoEvent,
    /// The text is not iCalendar, or an event lacks what every event needs (UID, DTSTART).
    #[error("invalid iCalendar: {0}")]
    Invalid(String),
}

/// One calendar object (all VEVENTs sharing a UID), as stored at sync time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedObject {
    /// The UID shared by the master event and its overrides.
    pub uid: String,
    /// The master event's SUMMARY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The master event's LOCATION.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Everything recurrence expansion needs.
    pub series: Series,
}

/// A start (or RECURRENCE-ID, RDATE, EXDATE) value in the form the object gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum When {
    /// An absolute instant (`…Z`, or a TZID that names UTC).
    #[serde(rename = "u")]
    Utc(DateTime<Utc>),
    /// A wall-clock time in an IANA zone (from TZID).
    #[serde(rename = "z")]
    Zoned(NaiveDateTime, #[serde(with = "tz_name")] Tz),
    /// A floating wall-clock time: read in the user's zone at query time.
    #[serde(rename = "f")]
    Floating(NaiveDateTime),
    /// An all-day DATE: the day in the user's zone at query time.
    #[serde(rename = "d")]
    Date(NaiveDate),
}

/// How long an instance lasts: whole days on the wall clock (an all-day event on the day
/// clocks go forward lasts 23 h), then exact seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Length {
    /// Nominal days, added to the local date.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub days: i64,
    /// Exact seconds, added after the days.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub seconds: i64,
}

/// The master event's timing plus its exceptions: what recurrence expansion needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// DTSTART of the master event (the first instance).
    pub start: When,
    /// From DTEND or DURATION; one day for a DATE start with neither.
    #[serde(default, skip_serializing_if = "Length::is_zero")]
    pub length: Length,
    /// False when TRANSP:TRANSPARENT or STATUS:CANCELLED.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub busy: bool,
    /// The first RRULE, if any (and parseable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// RDATE values: extra instances (a PERIOD keeps only its start).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdates: Vec<When>,
    /// EXDATE values: instances removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exdates: Vec<When>,
    /// VEVENTs with a RECURRENCE-ID: each replaces or cancels one instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
    /// Something was guessed: an unknown TZID read as UTC, or an RRULE we could not read
    /// (then only DTSTART and RDATEs count).
    #[serde(default, skip_serializing_if = "is_false")]
    pub approximate: bool,
}

/// An RRULE split for expansion: UNTIL and COUNT kept apart, since UNTIL's form (DATE,
/// UTC or local) must be read in the zone the series expands in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The RRULE value without UNTIL, e.g. `FREQ=WEEKLY;BYDAY=MO,WE`.
    pub text: String,
    /// UNTIL, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<When>,
    /// COUNT (also left in `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// One RECURRENCE-ID override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The original start of the instance it replaces.
    pub recurrence_id: When,
    /// The replacement; `None` when the instance is cancelled (STATUS:CANCELLED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
}

/// The replacement an override gives for one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Its own DTSTART.
    pub start: When,
    /// Its own DTEND/DURATION, else the master's length.
    #[serde(default, skip_serializing_if = "Length::is_zero")]
    pub length: Length,
    /// False when TRANSP:TRANSPARENT.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub busy: bool,
    /// Its own SUMMARY; `None` keeps the master's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

// Time-zone offsets on Earth run from -12 h to +14 h; a floating or all-day value's instant
// lies within this of its wall-clock reading taken as UTC.
const ZONE_PAD: Duration = Duration::hours(14);

// Lengths beyond this are garbage (or hostile): clamping keeps all date arithmetic in range.
const MAX_LENGTH_DAYS: i64 = 3660;

// UNTIL further out than this is as good as unbounded.
const FAR_FUTURE_DAYS: i64 = 366 * 200;

impl When {
    /// True for an all-day DATE value.
    pub fn is_date(&self) -> bool {
        matches!(self, When::Date(_))
    }

    /// The wall-clock reading (midnight for a DATE, the UTC reading for an instant).
    pub fn local(&self) -> NaiveDateTime {
        match *self {
            When::Utc(t) => t.naive_utc(),
            When::Zoned(n, _) | When::Floating(n) => n,
            When::Date(d) => d.and_time(NaiveTime::MIN),
        }
    }

    /// The instant, reading floating and DATE values in `zone`.
    pub fn to_utc(&self, zone: Tz) -> DateTime<Utc> {
        match *self {
            When::Utc(t) => t,
            When::Zoned(n, tz) => local_to_utc(tz, n),
            When::Floating(n) => local_to_utc(zone, n),
            When::Date(d) => local_to_utc(zone, d.and_time(NaiveTime::MIN)),
        }
    }

    /// The zone the value's wall clock runs in: its own, or `zone` for floating and DATE.
    pub fn zone_or(&self, zone: Tz) -> Tz {
        match *self {
            When::Utc(_) => Tz::UTC,
            When::Zoned(_, tz) => tz,
            When::Floating(_) | When::Date(_) => zone,
        }
    }

    /// The earliest instant this value can mean, whatever the reader's zone (a floating or
    /// DATE value is read 14 hours early, as if in the easternmost zone).
    pub fn earliest(&self) -> DateTime<Utc> {
        match self {
            When::Utc(_) | When::Zoned(..) => self.to_utc(Tz::UTC),
            _ => sub_clamped(self.local().and_utc(), ZONE_PAD),
        }
    }

    /// The latest instant this value can mean, whatever the reader's zone.
    pub fn latest(&self) -> DateTime<Utc> {
        match self {
            When::Utc(_) | When::Zoned(..) => self.to_utc(Tz::UTC),
            _ => add_clamped(self.local().and_utc(), ZONE_PAD),
        }
    }
}

impl Length {
    /// Zero length (a point in time).
    pub fn is_zero(&self) -> bool {
        self.days == 0 && self.seconds == 0
    }

    /// An upper bound on the exact duration (a wall-clock day is at most 25 h).
    pub fn max_duration(&self) -> Duration {
        let Length { days, seconds } = self.bounded();
        Duration::hours(25 * days) + Duration::seconds(seconds)
    }

    /// The end of an instance starting at the wall-clock `local` in `tz`.
    pub fn end_after(&self, tz: Tz, local: NaiveDateTime, start: DateTime<Utc>) -> DateTime<Utc> {
        let Length { days, seconds } = self.bounded();
        let after_days = if days == 0 {
            start
        } else {
            match local.checked_add_signed(Duration::days(days)) {
                Some(n) => local_to_utc(tz, n),
                None => start,
            }
        };
        add_clamped(after_days, Duration::seconds(seconds))
    }

    // The stored form may come back from the database altered: arithmetic never trusts it.
    fn bounded(&self) -> Length {
        Length::clamped(self.days, self.seconds)
    }

    fn clamped(days: i64, seconds: i64) -> Length {
        let limit = MAX_LENGTH_DAYS * 86_400;
        Length { days: days.clamp(0, MAX_LENGTH_DAYS), seconds: seconds.clamp(0, limit) }
    }
}

/// `t + d`, held at the ends of chrono's range instead of overflowing.
pub fn add_clamped(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < Duration::zero() { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC })
}

/// `t - d`, held at the ends of chrono's range instead of overflowing.
pub fn sub_clamped(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(if d < Duration::zero() { DateTime::<Utc>::MAX_UTC } else { DateTime::<Utc>::MIN_UTC })
}

/// Parses one calendar object: the master VEVENT (the one without RECURRENCE-ID) and the
/// overrides sharing its UID. Other UIDs in the same text are ignored.
pub fn parse_object(ical: &str) -> Result<ParsedObject, IcalError> {
    let roots = read::parse(ical).map_err(|e| IcalError::Invalid(e.to_string()))?;
    let calendar = roots.iter().find(|c| c.is("VCALENDAR"));
    let children: &[Component] = match calendar {
        Some(cal) => &cal.components,
        None => &roots,
    };
    if children.is_empty() {
        return Err(IcalError::Invalid("no VCALENDAR".into()));
    }

    let zones = TzidMap::from_vtimezones(children);
    let events: Vec<&Component> = children.iter().filter(|c| c.is("VEVENT")).collect();
    if events.is_empty() {
        return Err(IcalError::NoEvent);
    }

    let master = events.iter().copied().find(|e| e.property("RECURRENCE-ID").is_none());
    let uid = master
        .or(events.first().copied())
        .and_then(|e| e.property("UID"))
        .map(|p| p.value.as_str().trim().to_owned())
        .filter(|uid| !uid.is_empty())
        .ok_or_else(|| IcalError::Invalid("event without UID".into()))?;

    let mut approximate = false;
    let mut overrides = Vec::new();
    for event in &events {
        let Some(recurrence_id) = event.property("RECURRENCE-ID") else { continue };
        let same_uid = event.property("UID").is_none_or(|p| p.value.as_str().trim() == uid);
        if !same_uid {
            continue;
        }
        let recurrence_id = first_when(recurrence_id, &zones, &mut approximate)?;
        overrides.push((recurrence_id, *event));
    }

    match master {
        Some(master) => {
            let (series, summary, location) = master_series(master, &overrides, &zones, &mut approximate)?;
            Ok(ParsedObject { uid, summary, location, series: Series { approximate, ..series } })
        }
        None => orphan_overrides(uid, &overrides, &zones, &mut approximate),
    }
}

fn master_series(
    master: &Component,
    overrides: &[(When, &Component)],
    zones: &TzidMap,
    approximate: &mut bool,
) -> Result<(Series, Option<String>, Option<String>), IcalError> {
    let start_prop = master.property("DTSTART").ok_or_else(|| IcalError::Invalid("event without DTSTART".into()))?;
    let start = first_when(start_prop, zones, approximate)?;
    let length = event_length(master, start, zones, approximate)?.unwrap_or(default_length(start));

    let rule = match master.property("RRULE") {
        Some(p) => match split_rule(p.value.as_str(), start, zones, approximate) {
            Some(rule) => Some(rule),
            None => {
                *approximate = true;
                None
            }
        },
        None => None,
    };

    let mut rdates = Vec::new();
    let mut exdates = Vec::new();
    for p in &master.properties {
        let into = if p.is("RDATE") {
            &mut rdates
        } else if p.is("EXDATE") {
            &mut exdates
        } else {
            continue;
        };
        for value in p.value.as_str().split(',') {
            // A PERIOD (start/end or start/duration): only its start is kept.
            let value = value.split('/').next().unwrap_or_default();
            into.push(parse_when(value, p, zones, approximate)?);
        }
    }

    let mut parsed_overrides = Vec::with_capacity(overrides.len());
    for (recurrence_id, event) in overrides {
        parsed_overrides.push(parse_override(*recurrence_id, event, length, zones, approximate)?);
    }

    let series = Series { start, length, busy: is_busy(master), rule, rdates, exdates, overrides: parsed_overrides, approximate: false };
    Ok((series, master.text("SUMMARY"), master.text("LOCATION")))
}

// CalDAV servers send only the overrides when a user is invited to single instances of a
// series: the first instance stands in for the master, the others become RDATEs that their
// overrides replace, so expansion needs no special case.
fn orphan_overrides(
    uid: String,
    overrides: &[(When, &Component)],
    zones: &TzidMap,
    approximate: &mut bool,
) -> Result<ParsedObject, IcalError> {
    let Some((first_id, first)) = overrides.first() else {
        return Err(IcalError::Invalid("no master event".into()));
    };
    let length = default_length(*first_id);
    let mut parsed = Vec::with_capacity(overrides.len());
    for (recurrence_id, event) in overrides {
        parsed.push(parse_override(*recurrence_id, event, length, zones, approximate)?);
    }
    let series = Series {
        start: *first_id,
        length,
        busy: is_busy(first),
        rule: None,
        rdates: overrides.iter().skip(1).map(|(id, _)| *id).collect(),
        exdates: Vec::new(),
        overrides: parsed,
        approximate: *approximate,
    };
    Ok(ParsedObject { uid, summary: first.text("SUMMARY"), location: first.text("LOCATION"), series })
}

fn parse_override(
    recurrence_id: When,
    event: &Component,
    master_length: Length,
    zones: &TzidMap,
    approximate: &mut bool,
) -> Result<Override, IcalError> {
    if event.property("STATUS").is_some_and(|p| p.value.as_str().trim().eq_ignore_ascii_case("CANCELLED")) {
        return Ok(Override { recurrence_id, instance: None });
    }
    let start = match event.property("DTSTART") {
        Some(p) => first_when(p, zones, approximate)?,
        None => recurrence_id,
    };
    let length = event_length(event, start, zones, approximate)?.unwrap_or(master_length);
    let instance = Instance { start, length, busy: is_busy(event), summary: event.text("SUMMARY") };
    Ok(Override { recurrence_id, instance: Some(instance) })
}

fn default_length(start: When) -> Length {
    if start.is_date() { Length { days: 1, seconds: 0 } } else { Length::default() }
}

// From DURATION, else DTEND; `None` when the event has neither.
fn event_length(event: &Component, start: When, zones: &TzidMap, approximate: &mut bool) -> Result<Option<Length>, IcalError> {
    if let Some(p) = event.property("DURATION") {
        return parse_duration(p.value.as_str()).map(Some).ok_or_else(|| IcalError::Invalid("unreadable DURATION".into()));
    }
    let Some(p) = event.property("DTEND") else { return Ok(None) };
    let end = first_when(p, zones, approximate)?;
    let length = match (start, end) {
        (When::Date(s), When::Date(e)) => Length::clamped((e - s).num_days(), 0),
        // Reading both in one zone keeps floating-to-floating exact and zoned-to-zoned exact
        // across DST; mixed forms are rare and get the UTC reading.
        _ => Length::clamped(0, (end.to_utc(Tz::UTC) - start.to_utc(Tz::UTC)).num_seconds()),
    };
    Ok(Some(length))
}

fn is_busy(event: &Component) -> bool {
    let transparent = event.property("TRANSP").is_some_and(|p| p.value.as_str().trim().eq_ignore_ascii_case("TRANSPARENT"));
    let cancelled = event.property("STATUS").is_some_and(|p| p.value.as_str().trim().eq_ignore_ascii_case("CANCELLED"));
    !transparent && !cancelled
}

// Splits UNTIL (and notes COUNT) out of an RRULE value; `None` when the rule is unreadable.
fn split_rule(value: &str, start: When, zones: &TzidMap, approximate: &mut bool) -> Option<Rule> {
    let mut parts = Vec::new();
    let mut until = None;
    let mut count = None;
    for part in value.trim().split(';').filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("UNTIL") {
            let val = val.trim();
            until = Some(match parse_value(val, start.is_date() || val.len() == 8, None, zones, approximate).ok()? {
                // A local UNTIL on a zoned series is in the series' zone.
                When::Floating(n) => match start {
                    When::Zoned(_, tz) => When::Zoned(n, tz),
                    When::Utc(_) => When::Utc(n.and_utc()),
                    _ => When::Floating(n),
                },
                other => other,
            });
            continue;
        }
        if key.trim().eq_ignore_ascii_case("COUNT") {
            count = Some(val.trim().parse::<u32>().ok()?);
        }
        parts.push(part.trim());
    }
    let text = parts.join(";");
    // Checked here, once, so query time only meets rules the crate reads.
    text.parse::<rrule::RRule<rrule::Unvalidated>>().ok()?;
    Some(Rule { text, until, count })
}

fn first_when(p: &Property, zones: &TzidMap, approximate: &mut bool) -> Result<When, IcalError> {
    let value = p.value.as_str().split(',').next().unwrap_or_default();
    parse_when(value, p, zones, approximate)
}

fn parse_when(value: &str, p: &Property, zones: &TzidMap, approximate: &mut bool) -> Result<When, IcalError> {
    let value = value.trim();
    let is_date = p.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.len() == 8;
    parse_value(value, is_date, p.param("TZID"), zones, approximate)
        .map_err(|()| IcalError::Invalid(format!("unreadable {} value", p.name)))
}

fn parse_value(value: &str, is_date: bool, tzid: Option<&str>, zones: &TzidMap, approximate: &mut bool) -> Result<When, ()> {
    if is_date {
        let day = value.get(..8).ok_or(())?;
        return NaiveDate::parse_from_str(day, "%Y%m%d").map(When::Date).map_err(|_| ());
    }
    if let Some(utc) = value.strip_suffix(['Z', 'z']) {
        let n = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").map_err(|_| ())?;
        return Ok(When::Utc(n.and_utc()));
    }
    let n = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").map_err(|_| ())?;
    let Some(tzid) = tzid else { return Ok(When::Floating(n)) };
    match zones.resolve(tzid) {
        Some(Tz::UTC) => Ok(When::Utc(n.and_utc())),
        Some(tz) => Ok(When::Zoned(n, tz)),
        None => {
            *approximate = true;
            Ok(When::Utc(n.and_utc()))
        }
    }
}

/// Reads an RFC 5545 DURATION (`P1D`, `PT1H30M`, `P2W`); negative durations count as zero.
fn parse_duration(value: &str) -> Option<Length> {
    let value = value.trim();
    let (negative, rest) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let (mut days, mut seconds) = (0i64, 0i64);
    let mut number: Option<i64> = None;
    let mut in_time = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            d @ '0'..='9' => {
                let digit = i64::from(d as u8 - b'0');
                number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(digit)?);
            }
            'T' if !in_time && number.is_none() => in_time = true,
            unit => {
                let n = number.take()?;
                match (unit, in_time) {
                    ('W', false) => days = days.saturating_add(n.saturating_mul(7)),
                    ('D', false) => days = days.saturating_add(n),
                    ('H', true) => seconds = seconds.saturating_add(n.saturating_mul(3600)),
                    ('M', true) => seconds = seconds.saturating_add(n.saturating_mul(60)),
                    ('S', true) => seconds = seconds.saturating_add(n),
                    _ => return None,
                }
            }
        }
    }
    if number.is_some() {
        return None;
    }
    if negative {
        return Some(Length::default());
    }
    Some(Length::clamped(days, seconds))
}

// TZIDs this object defines (VTIMEZONE), resolved to IANA where the definition says which
// zone it is (X-LIC-LOCATION, as Thunderbird and Apple write).
struct TzidMap {
    defined: Vec<(String, Tz)>,
}

impl TzidMap {
    fn from_vtimezones(children: &[Component]) -> TzidMap {
        let defined = children
            .iter()
            .filter(|c| c.is("VTIMEZONE"))
            .filter_map(|c| {
                let tzid = c.property("TZID")?.value.as_str().trim();
                let tz = resolve_tzid(c.property("X-LIC-LOCATION")?.value.as_str())?;
                Some((tzid.to_owned(), tz))
            })
            .collect();
        TzidMap { defined }
    }

    fn resolve(&self, tzid: &str) -> Option<Tz> {
        resolve_tzid(tzid).or_else(|| {
            let tzid = tzid.trim().trim_matches('"');
            self.defined.iter().find(|(id, _)| id == tzid).map(|(_, tz)| *tz)
        })
    }
}

impl Rule {
    /// True when UNTIL lies beyond any date a calendar will reach (treated as unbounded).
    pub fn until_is_far(&self, start: When) -> bool {
        self.until.is_some_and(|u| (u.local() - start.local()).num_days() > FAR_FUTURE_DAYS)
    }
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse::<Tz>().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("test instant")
    }

    // Wraps VEVENT lines in a VCALENDAR with CRLF endings, as servers send them.
    fn calendar(body: &str) -> String {
        let lines: Vec<&str> = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN"]
            .into_iter()
            .chain(body.lines().map(str::trim).filter(|l| !l.is_empty()))
            .chain(["END:VCALENDAR"])
            .collect();
        lines.join("\r\n") + "\r\n"
    }

    #[test]
    fn a_master_with_overrides_keeps_rule_exceptions_and_overrides() {
        let object = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:standup@example.com
             DTSTART;TZID=Europe/Berlin:20260105T090000
             DTEND;TZID=Europe/Berlin:20260105T093000
             RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20260330T080000Z
             EXDATE;TZID=Europe/Berlin:20260119T090000,20260126T090000
             RDATE;VALUE=DATE-TIME:20260131T100000Z
             SUMMARY:Standup\\, daily
             LOCATION:Room 1
             END:VEVENT
             BEGIN:VEVENT
             UID:standup@example.com
             RECURRENCE-ID;TZID=Europe/Berlin:20260112T090000
             DTSTART;TZID=Europe/Berlin:20260113T140000
             DTEND;TZID=Europe/Berlin:20260113T150000
             TRANSP:TRANSPARENT
             END:VEVENT
             BEGIN:VEVENT
             UID:standup@example.com
             RECURRENCE-ID;TZID=Europe/Berlin:20260202T090000
             STATUS:CANCELLED
             END:VEVENT",
        ))
        .expect("parses");

        assert_eq!(object.uid, "standup@example.com");
        assert_eq!(object.summary.as_deref(), Some("Standup, daily"));
        assert_eq!(object.location.as_deref(), Some("Room 1"));
        let berlin = |s: &str| When::Zoned(s.parse().expect("local"), Tz::Europe__Berlin);
        let series = &object.series;
        assert_eq!(series.start, berlin("2026-01-05T09:00:00"));
        assert_eq!(series.length, Length { days: 0, seconds: 1800 });
        assert!(series.busy);
        assert!(!series.approximate);
        let rule = series.rule.as_ref().expect("rule");
        assert_eq!(rule.text, "FREQ=WEEKLY;BYDAY=MO");
        assert_eq!(rule.until, Some(When::Utc(utc("2026-03-30T08:00:00Z"))));
        assert_eq!(series.exdates, vec![berlin("2026-01-19T09:00:00"), berlin("2026-01-26T09:00:00")]);
        assert_eq!(series.rdates, vec![When::Utc(utc("2026-01-31T10:00:00Z"))]);
        assert_eq!(series.overrides.len(), 2);
        let moved = series.overrides[0].instance.as_ref().expect("moved instance");
        assert_eq!(series.overrides[0].recurrence_id, berlin("2026-01-12T09:00:00"));
        assert_eq!(moved.start, berlin("2026-01-13T14:00:00"));
        assert_eq!(moved.length.seconds, 3600);
        assert!(!moved.busy);
        assert_eq!(series.overrides[1].instance, None);
    }

    #[test]
    fn the_stored_form_round_trips_through_json_and_omits_defaults() {
        let object = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:one
             DTSTART:20260105T090000Z
             DTEND:20260105T100000Z
             END:VEVENT",
        ))
        .expect("parses");
        let json = serde_json::to_string(&object).expect("serializes");
        assert_eq!(json, r#"{"uid":"one","series":{"start":{"u":"2026-01-05T09:00:00Z"},"length":{"seconds":3600}}}"#);
        assert_eq!(serde_json::from_str::<ParsedObject>(&json).expect("deserializes"), object);

        let zoned = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:two
             DTSTART;TZID=Europe/Berlin:20260105T090000
             END:VEVENT",
        ))
        .expect("parses");
        let json = serde_json::to_string(&zoned).expect("serializes");
        assert!(json.contains(r#"{"z":["2026-01-05T09:00:00","Europe/Berlin"]}"#), "{json}");
        assert_eq!(serde_json::from_str::<ParsedObject>(&json).expect("deserializes"), zoned);
    }

    #[test]
    fn windows_and_vendor_prefixed_tzids_map_to_iana_zones() {
        assert_eq!(resolve_tzid("W. Europe Standard Time"), Some(Tz::Europe__Berlin));
        assert_eq!(resolve_tzid("\"Eastern Standard Time\""), Some(Tz::America__New_York));
        assert_eq!(resolve_tzid("Tokyo Standard Time"), Some(Tz::Asia__Tokyo));
        assert_eq!(resolve_tzid("/mozilla.org/20050126_1/Europe/Berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(resolve_tzid("/softwarestudio.org/Olson_20011030_5/America/New_York"), Some(Tz::America__New_York));
        assert_eq!(resolve_tzid("Europe/Paris"), Some(Tz::Europe__Paris));
        assert_eq!(resolve_tzid("Mars/Olympus_Mons"), None);

        let display_name = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:outlook-display
             DTSTART;TZID=\"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna\":20260705T090000
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(display_name.series.start.to_utc(Tz::UTC), utc("2026-07-05T07:00:00Z"));

        let object = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:outlook
             DTSTART;TZID=W. Europe Standard Time:20260105T090000
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(object.series.start.to_utc(Tz::UTC), utc("2026-01-05T08:00:00Z"));
        assert!(!object.series.approximate);
    }

    #[test]
    fn a_custom_vtimezone_with_a_location_is_resolved() {
        let object = parse_object(&calendar(
            "BEGIN:VTIMEZONE
             TZID:Berlin Office
             X-LIC-LOCATION:Europe/Berlin
             END:VTIMEZONE
             BEGIN:VEVENT
             UID:custom
             DTSTART;TZID=Berlin Office:20260705T090000
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(object.series.start.to_utc(Tz::UTC), utc("2026-07-05T07:00:00Z"));
        assert!(!object.series.approximate);
    }

    #[test]
    fn an_unknown_tzid_is_read_as_utc_and_marked_approximate() {
        let object = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:mars
             DTSTART;TZID=Mars/Olympus_Mons:20260105T090000
             DTEND;TZID=Mars/Olympus_Mons:20260105T100000
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(object.series.start, When::Utc(utc("2026-01-05T09:00:00Z")));
        assert_eq!(object.series.length.seconds, 3600);
        assert!(object.series.approximate);
    }

    #[test]
    fn transparent_and_cancelled_events_are_not_busy() {
        for marker in ["TRANSP:TRANSPARENT", "STATUS:CANCELLED"] {
            let object = parse_object(&calendar(&format!(
                "BEGIN:VEVENT
                 UID:free
                 DTSTART:20260105T090000Z
                 {marker}
                 END:VEVENT"
            )))
            .expect("parses");
            assert!(!object.series.busy, "{marker}");
        }
    }

    #[test]
    fn durations_and_date_ends_give_lengths() {
        assert_eq!(parse_duration("PT1H30M"), Some(Length { days: 0, seconds: 5400 }));
        assert_eq!(parse_duration("P1W"), Some(Length { days: 7, seconds: 0 }));
        assert_eq!(parse_duration("P1DT12H"), Some(Length { days: 1, seconds: 43_200 }));
        assert_eq!(parse_duration("-PT15M"), Some(Length::default()));
        assert_eq!(parse_duration("P99999999999999999999D"), None);
        assert_eq!(parse_duration("P9999999W").map(|l| l.days), Some(MAX_LENGTH_DAYS));
        assert_eq!(parse_duration("PT"), Some(Length::default()));
        assert_eq!(parse_duration("1H"), None);

        let all_day = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:holiday
             DTSTART;VALUE=DATE:20260329
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(all_day.series.start, When::Date(NaiveDate::from_ymd_opt(2026, 3, 29).expect("date")));
        assert_eq!(all_day.series.length, Length { days: 1, seconds: 0 });
    }

    #[test]
    fn a_calendar_without_events_is_no_event() {
        let todo = calendar(
            "BEGIN:VTODO
             UID:todo
             SUMMARY:Buy milk
             END:VTODO",
        );
        assert_eq!(parse_object(&todo), Err(IcalError::NoEvent));
    }

    #[test]
    fn events_missing_uid_or_dtstart_are_invalid() {
        let no_uid = calendar("BEGIN:VEVENT\nDTSTART:20260105T090000Z\nEND:VEVENT");
        assert!(matches!(parse_object(&no_uid), Err(IcalError::Invalid(_))));
        let no_start = calendar("BEGIN:VEVENT\nUID:x\nEND:VEVENT");
        assert!(matches!(parse_object(&no_start), Err(IcalError::Invalid(_))));
        let bad_start = calendar("BEGIN:VEVENT\nUID:x\nDTSTART:2026-01-05\nEND:VEVENT");
        assert!(matches!(parse_object(&bad_start), Err(IcalError::Invalid(_))));
    }

    #[test]
    fn an_outlook_invitation_in_iran_standard_time_is_read_at_the_right_instant() {
        // As Outlook writes it: a Windows zone id, and a VTIMEZONE without an IANA location.
        let object = parse_object(&calendar(
            "BEGIN:VTIMEZONE
             TZID:Iran Standard Time
             BEGIN:STANDARD
             DTSTART:16010101T000000
             TZOFFSETFROM:+0330
             TZOFFSETTO:+0330
             END:STANDARD
             END:VTIMEZONE
             BEGIN:VEVENT
             UID:040000008200E00074C5B7101A82E008
             DTSTART;TZID=Iran Standard Time:20260706T100000
             DTEND;TZID=Iran Standard Time:20260706T113000
             SUMMARY:Budget review
             END:VEVENT",
        ))
        .expect("parses");

        // Tehran keeps +03:30 all year: 10:00 there is 06:30 UTC, not 10:00 UTC.
        assert_eq!(object.series.start, When::Zoned("2026-07-06T10:00:00".parse().expect("local"), Tz::Asia__Tehran));
        assert_eq!(object.series.start.to_utc(Tz::UTC), utc("2026-07-06T06:30:00Z"));
        assert_eq!(object.series.length, Length { days: 0, seconds: 5400 });
        assert!(!object.series.approximate);
    }

    #[test]
    fn windows_zones_that_were_read_as_utc_now_resolve_in_events() {
        for (tzid, utc_start) in [
            ("Egypt Standard Time", "2026-01-05T07:00:00Z"),
            ("Pakistan Standard Time", "2026-01-05T04:00:00Z"),
            ("Arabian Standard Time", "2026-01-05T05:00:00Z"),
            ("Nepal Standard Time", "2026-01-05T03:15:00Z"),
        ] {
            let object = parse_object(&calendar(&format!(
                "BEGIN:VEVENT
                 UID:zone
                 DTSTART;TZID=\"{tzid}\":20260105T090000
                 END:VEVENT"
            )))
            .expect("parses");
            assert_eq!(object.series.start.to_utc(Tz::UTC), utc(utc_start), "{tzid}");
            assert!(!object.series.approximate, "{tzid}");
        }
    }
}
