//! Availability: the status a user chooses, their working hours (a weekly schedule in an IANA
//! time zone, date overrides, out of office), and the pure arithmetic that turns working hours
//! into free UTC intervals. No I/O here.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Reason, Result};

/// The status a user chooses. AUTOMATIC follows their connections.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AvailabilityStatus {
    Online,
    Busy,
    Offline,
    #[default]
    Automatic,
}

/// What others see.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceStatus {
    Online,
    Busy,
    Offline,
}

impl AvailabilityStatus {
    /// The status shown, given whether the user counts as connected (a WebSocket open, or
    /// closed less than the grace period ago).
    pub fn effective(self, connected: bool) -> PresenceStatus {
        match self {
            AvailabilityStatus::Online => PresenceStatus::Online,
            AvailabilityStatus::Busy => PresenceStatus::Busy,
            AvailabilityStatus::Offline => PresenceStatus::Offline,
            AvailabilityStatus::Automatic if connected => PresenceStatus::Online,
            AvailabilityStatus::Automatic => PresenceStatus::Offline,
        }
    }
}

/// Minutes since local midnight: 0..=1440 (1440 only as an end, "24:00").
pub type Minute = u16;

/// A local time span within one day, `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub start: Minute,
    pub end: Minute,
}

impl Interval {
    pub fn format(m: Minute) -> String {
        format!("{:02}:{:02}", m / 60, m % 60)
    }
}

/// Parses "HH:MM"; "24:00" only when `end`.
pub fn parse_minute(field: &str, raw: &str, end: bool) -> Result<Minute> {
    let bad = || Error::because(field.to_owned(), Reason::NotATimeOfDay);
    let raw = raw.trim();
    if end && raw == "24:00" {
        return Ok(1440);
    }
    let t = NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| bad())?;
    Ok((t.hour() * 60 + t.minute()) as Minute)
}

/// Intervals as given, checked: each must not be reversed or empty, and none may overlap
/// another (touching is fine). Errors name `{field}[i]`.
pub fn check_intervals(field: &str, intervals: &[Interval]) -> Result<()> {
    for (i, iv) in intervals.iter().enumerate() {
        if iv.end <= iv.start {
            return Err(Error::because(format!("{field}[{i}]"), Reason::EndBeforeStart));
        }
        if intervals[..i].iter().any(|o| iv.start < o.end && o.start < iv.end) {
            return Err(Error::because(format!("{field}[{i}]"), Reason::Overlaps));
        }
    }
    Ok(())
}

/// One weekday's working hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySchedule {
    pub day: Weekday,
    pub intervals: Vec<Interval>,
}

/// Other hours on one date; no intervals is a day off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateOverride {
    pub date: NaiveDate,
    pub intervals: Vec<Interval>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfOffice {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub message: Option<String>,
}

/// A user's availability settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Availability {
    pub status: AvailabilityStatus,
    pub hold_while_busy: bool,
    /// The zone in effect: the profile's, unless the schedule has one of its own.
    pub time_zone: Tz,
    /// Whether `time_zone` is the profile's (false: set for the schedule alone).
    pub time_zone_follows_profile: bool,
    pub weekly: Vec<DaySchedule>,
    pub overrides: Vec<DateOverride>,
    pub out_of_office: Option<OutOfOffice>,
}

impl Default for Availability {
    /// Until the user says otherwise: AUTOMATIC, alerts held while busy, Monday to Friday
    /// 09:00–17:00 UTC.
    fn default() -> Self {
        let nine_to_five = vec![Interval { start: 9 * 60, end: 17 * 60 }];
        Availability {
            status: AvailabilityStatus::Automatic,
            hold_while_busy: true,
            time_zone: Tz::UTC,
            time_zone_follows_profile: true,
            weekly: [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
                .into_iter()
                .map(|day| DaySchedule { day, intervals: nine_to_five.clone() })
                .collect(),
            overrides: Vec::new(),
            out_of_office: None,
        }
    }
}

/// The longest `freeBusy` window.
pub const MAX_FREE_BUSY_DAYS: i64 = 62;
/// The longest out-of-office message.
pub const MAX_OOO_MESSAGE: usize = 500;

/// Checks a weekly schedule: each day at most once, intervals well-formed.
pub fn check_weekly(weekly: &[DaySchedule]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, d) in weekly.iter().enumerate() {
        if !seen.insert(d.day) {
            return Err(Error::because(format!("weeklySchedule[{i}].day"), Reason::Duplicate));
        }
        check_intervals(&format!("weeklySchedule[{i}].intervals"), &d.intervals)?;
    }
    Ok(())
}

/// Checks date overrides: each date once, not before `today` (the user's local date).
pub fn check_overrides(overrides: &[DateOverride], today: NaiveDate) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, o) in overrides.iter().enumerate() {
        if o.date < today {
            return Err(Error::because(format!("dateOverrides[{i}].date"), Reason::InThePast));
        }
        if !seen.insert(o.date) {
            return Err(Error::because(format!("dateOverrides[{i}].date"), Reason::Duplicate));
        }
        check_intervals(&format!("dateOverrides[{i}].intervals"), &o.intervals)?;
    }
    Ok(())
}

pub fn check_out_of_office(ooo: &OutOfOffice) -> Result<()> {
    if ooo.to <= ooo.from {
        return Err(Error::because("outOfOffice.to", Reason::EndBeforeStart));
    }
    if ooo.message.as_ref().is_some_and(|m| m.chars().count() > MAX_OOO_MESSAGE) {
        return Err(Error::because("outOfOffice.message", Reason::TooLong { max: MAX_OOO_MESSAGE }));
    }
    Ok(())
}

/// A UTC span `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The instant a local wall-clock time stands for. A time the clocks skip (spring forward)
/// moves to the first instant after the gap; a time that happens twice (fall back) takes the
/// earlier one.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // Gaps are whole minutes and at most a few hours in every zone; the first local
            // minute that exists again is the instant the clocks jumped.
            for minutes in 1..=24 * 60 {
                let later = local + Duration::minutes(minutes);
                match tz.from_local_datetime(&later) {
                    LocalResult::Single(t) => return t.with_timezone(&Utc),
                    LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
                    LocalResult::None => continue,
                }
            }
            local.and_utc()
        }
    }
}

impl Availability {
    /// The working intervals of one local date: its override, else its weekday's schedule.
    pub fn hours_on(&self, date: NaiveDate) -> &[Interval] {
        if let Some(o) = self.overrides.iter().find(|o| o.date == date) {
            return &o.intervals;
        }
        self.weekly.iter().find(|d| d.day == date.weekday()).map_or(&[], |d| &d.intervals)
    }

    /// Working hours within `[from, to)` as UTC spans, in order.
    pub fn working_spans(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Span> {
        let tz = self.time_zone;
        // One local day either side: a local day can begin before `from` in UTC and still
        // reach into the window.
        let first = from.with_timezone(&tz).date_naive() - Duration::days(1);
        let last = to.with_timezone(&tz).date_naive() + Duration::days(1);
        let mut spans = Vec::new();
        let mut date = first;
        while date <= last {
            let midnight = date.and_time(NaiveTime::MIN);
            for iv in self.hours_on(date) {
                let start = resolve_local(tz, midnight + Duration::minutes(i64::from(iv.start)));
                let end = resolve_local(tz, midnight + Duration::minutes(i64::from(iv.end)));
                let (start, end) = (start.max(from), end.min(to));
                if start < end {
                    spans.push(Span { start, end });
                }
            }
            date += Duration::days(1);
        }
        merge(spans)
    }

    /// Busy spans known without calendars: the out-of-office period.
    pub fn busy_spans(&self) -> Vec<Span> {
        self.out_of_office.iter().map(|o| Span { start: o.from, end: o.to }).collect()
    }
}

/// Sorts and joins overlapping or touching spans.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| s.start);
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// `free` minus every span in `busy`.
pub fn subtract(free: Vec<Span>, busy: &[Span]) -> Vec<Span> {
    let busy = merge(busy.to_vec());
    let mut out = Vec::new();
    for f in free {
        let mut start = f.start;
        for b in busy.iter().filter(|b| b.start < f.end && f.start < b.end) {
            if b.start > start {
                out.push(Span { start, end: b.start });
            }
            start = start.max(b.end);
        }
        if start < f.end {
            out.push(Span { start, end: f.end });
        }
    }
    out
}

/// The free intervals: working hours within the window minus `busy`.
pub fn free_spans(availability: &Availability, from: DateTime<Utc>, to: DateTime<Utc>, busy: &[Span]) -> Vec<Span> {
    subtract(availability.working_spans(from, to), busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(s: &str, e: &str) -> Interval {
        Interval { start: parse_minute("s", s, false).unwrap(), end: parse_minute("e", e, true).unwrap() }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn every_day(intervals: Vec<Interval>, tz: Tz) -> Availability {
        let days = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
        Availability {
            time_zone: tz,
            weekly: days.into_iter().map(|day| DaySchedule { day, intervals: intervals.clone() }).collect(),
            ..Availability::default()
        }
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field.into_owned(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn times_parse_and_only_an_end_may_be_midnight_of_the_next_day() {
        assert_eq!(parse_minute("f", "09:30", false).unwrap(), 570);
        assert_eq!(parse_minute("f", "24:00", true).unwrap(), 1440);
        assert!(parse_minute("f", "24:00", false).is_err());
        assert!(parse_minute("f", "9", false).is_err());
    }

    #[test]
    fn reversed_and_overlapping_intervals_are_named_by_index() {
        assert!(check_intervals("x", &[iv("09:00", "12:00"), iv("12:00", "17:00")]).is_ok());
        assert_eq!(field_of(check_intervals("x", &[iv("09:00", "12:00"), iv("13:00", "13:00")]).unwrap_err()), "x[1]");
        assert_eq!(field_of(check_intervals("x", &[iv("17:00", "09:00")]).unwrap_err()), "x[0]");
        assert_eq!(
            field_of(check_intervals("x", &[iv("09:00", "12:00"), iv("14:00", "15:00"), iv("11:00", "13:00")]).unwrap_err()),
            "x[2]"
        );
    }

    #[test]
    fn an_override_before_today_is_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 5, 10).unwrap();
        let o = |d: u32| DateOverride { date: NaiveDate::from_ymd_opt(2026, 5, d).unwrap(), intervals: vec![] };
        assert!(check_overrides(&[o(10), o(11)], today).is_ok());
        assert_eq!(field_of(check_overrides(&[o(11), o(9)], today).unwrap_err()), "dateOverrides[1].date");
    }

    #[test]
    fn a_berlin_working_day_is_eight_real_hours_on_both_dst_changes() {
        let a = every_day(vec![iv("09:00", "17:00")], Tz::Europe__Berlin);
        let spans = a.working_spans(utc("2026-10-24T00:00:00Z"), utc("2026-10-26T00:00:00Z"));
        assert_eq!(
            spans,
            vec![
                Span { start: utc("2026-10-24T07:00:00Z"), end: utc("2026-10-24T15:00:00Z") },
                Span { start: utc("2026-10-25T08:00:00Z"), end: utc("2026-10-25T16:00:00Z") },
            ]
        );
        let spans = a.working_spans(utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z"));
        assert_eq!(
            spans,
            vec![
                Span { start: utc("2026-03-28T08:00:00Z"), end: utc("2026-03-28T16:00:00Z") },
                Span { start: utc("2026-03-29T07:00:00Z"), end: utc("2026-03-29T15:00:00Z") },
            ]
        );
    }

    #[test]
    fn nonexistent_times_move_past_the_gap_and_ambiguous_ones_take_the_earlier() {
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // 02:30 does not exist on 2026-03-29 in Berlin: the clocks jump at 01:00 UTC.
        assert_eq!(resolve_local(Tz::Europe__Berlin, local("2026-03-29 02:30")), utc("2026-03-29T01:00:00Z"));
        // 02:30 happens twice on 2026-10-25: first in CEST (UTC+2).
        assert_eq!(resolve_local(Tz::Europe__Berlin, local("2026-10-25 02:30")), utc("2026-10-25T00:30:00Z"));
        // A night shift across the spring change is one hour shorter.
        let a = every_day(vec![iv("01:00", "04:00")], Tz::Europe__Berlin);
        let spans = a.working_spans(utc("2026-03-29T00:00:00Z"), utc("2026-03-29T12:00:00Z"));
        assert_eq!(spans, vec![Span { start: utc("2026-03-29T00:00:00Z"), end: utc("2026-03-29T02:00:00Z") }]);
    }

    #[test]
    fn overrides_replace_the_weekday_and_an_empty_one_is_a_day_off() {
        let mut a = every_day(vec![iv("09:00", "17:00")], Tz::UTC);
        a.overrides = vec![
            DateOverride { date: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(), intervals: vec![] },
            DateOverride {
                date: NaiveDate::from_ymd_opt(2026, 6, 2).unwrap(),
                intervals: vec![iv("10:00", "11:00"), iv("20:00", "24:00")],
            },
        ];
        let spans = a.working_spans(utc("2026-06-01T00:00:00Z"), utc("2026-06-03T00:00:00Z"));
        assert_eq!(
            spans,
            vec![
                Span { start: utc("2026-06-02T10:00:00Z"), end: utc("2026-06-02T11:00:00Z") },
                Span { start: utc("2026-06-02T20:00:00Z"), end: utc("2026-06-03T00:00:00Z") },
            ]
        );
    }

    #[test]
    fn busy_spans_cut_free_ones_and_the_window_clips_them() {
        let a = every_day(vec![iv("09:00", "17:00")], Tz::UTC);
        let busy = [Span { start: utc("2026-06-01T12:00:00Z"), end: utc("2026-06-02T10:00:00Z") }];
        let free = free_spans(&a, utc("2026-06-01T10:00:00Z"), utc("2026-06-02T16:00:00Z"), &busy);
        assert_eq!(
            free,
            vec![
                Span { start: utc("2026-06-01T10:00:00Z"), end: utc("2026-06-01T12:00:00Z") },
                Span { start: utc("2026-06-02T10:00:00Z"), end: utc("2026-06-02T16:00:00Z") },
            ]
        );
    }
}
