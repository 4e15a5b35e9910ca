//! Recurrence expansion: turns a stored [`ParsedObject`] into the occurrences that overlap
//! a query window, in the event's own zone (a weekly 09:00 Berlin meeting stays 09:00 across
//! DST) and, for floating and all-day values, in the user's zone; and the [`span`] an object
//! is indexed by. Reading the iCalendar text is the SDK's ([`concierge_connector_sdk::ical`]).

use chrono::{DateTime, Datelike, Months, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::{Frequency, RRule, RRuleSet, Unvalidated};
use serde::Serialize;

use concierge_connector_sdk::ical::{Length, ParsedObject, Rule, Series, When, add_clamped, local_to_utc, sub_clamped};

/// Instances one object may produce (or step over) in one call: a pathological rule
/// (FREQ=SECONDLY) stops here instead of hanging the query or exhausting memory.
pub const MAX_INSTANCES: usize = 10_000;

/// One occurrence of an event, in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The event is a DATE (all-day) event.
    pub all_day: bool,
    /// False for transparent or cancelled events: they take no time.
    pub busy: bool,
    /// The override's summary, else the master's.
    pub summary: Option<String>,
}

/// Every occurrence of `object` overlapping `[from, to)`, sorted by start then end, with
/// EXDATEs removed, RDATEs added and RECURRENCE-ID overrides in place of the instances they
/// replace (wherever they moved to). Floating and all-day values are read in `zone`.
pub fn occurrences(object: &ParsedObject, from: DateTime<Utc>, to: DateTime<Utc>, zone: Tz) -> Vec<Occurrence> {
    if from >= to {
        return Vec::new();
    }
    let series = &object.series;
    let mut exdates: Vec<DateTime<Utc>> = series.exdates.iter().map(|w| w.to_utc(zone)).collect();
    exdates.sort_unstable();
    let mut replaced: Vec<DateTime<Utc>> = series.overrides.iter().map(|o| o.recurrence_id.to_utc(zone)).collect();
    replaced.sort_unstable();

    let mut out = Vec::new();
    let mut original = |when_tz: Tz, local: NaiveDateTime, start: DateTime<Utc>| {
        if exdates.binary_search(&start).is_ok() || replaced.binary_search(&start).is_ok() {
            return;
        }
        let end = series.length.end_after(when_tz, local, start);
        if overlaps(start, end, from, to) {
            out.push(Occurrence { start, end, all_day: series.start.is_date(), busy: series.busy, summary: object.summary.clone() });
        }
    };

    // RFC 5545: DTSTART is always the first instance, whether or not the rule matches it.
    original(series.start.zone_or(zone), series.start.local(), series.start.to_utc(zone));
    for rdate in &series.rdates {
        original(rdate.zone_or(zone), rdate.local(), rdate.to_utc(zone));
    }
    if let Some(rule) = &series.rule {
        let tz = series.start.zone_or(zone);
        let earliest = sub_clamped(from, series.length.max_duration());
        expand_rule(series, rule, zone, earliest, to, MAX_INSTANCES, |local, start| original(tz, local, start));
    }
    // The rule repeats DTSTART: keep one of each start.
    out.sort_unstable_by_key(|o| (o.start, o.end));
    out.dedup_by_key(|o| o.start);

    // Overrides are placed where they moved to, so one moved into the window from an
    // instance outside it appears, and one moved out does not.
    for o in &series.overrides {
        let Some(instance) = &o.instance else { continue };
        if exdates.binary_search(&o.recurrence_id.to_utc(zone)).is_ok() {
            continue;
        }
        let start = instance.start.to_utc(zone);
        let end = instance.length.end_after(instance.start.zone_or(zone), instance.start.local(), start);
        if overlaps(start, end, from, to) {
            out.push(Occurrence {
                start,
                end,
                all_day: instance.start.is_date(),
                busy: instance.busy,
                summary: instance.summary.clone().or_else(|| object.summary.clone()),
            });
        }
    }
    out.sort_unstable_by_key(|o| (o.start, o.end));
    out
}

/// A conservative UTC interval holding every occurrence: floating and all-day values are
/// padded by 14 h either side (the user's zone is unknown at sync time); the end is `None`
/// for a recurrence without UNTIL or COUNT.
pub fn span(object: &ParsedObject) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let series = &object.series;
    let latest_end = |start: When, length: Length| add_clamped(start.latest(), length.max_duration());

    let mut first = series.start.earliest();
    let mut last = Some(latest_end(series.start, series.length));
    for rdate in &series.rdates {
        first = first.min(rdate.earliest());
        last = last.max(Some(latest_end(*rdate, series.length)));
    }
    for o in &series.overrides {
        first = first.min(o.recurrence_id.earliest());
        if let Some(instance) = &o.instance {
            first = first.min(instance.start.earliest());
            last = last.max(Some(latest_end(instance.start, instance.length)));
        }
    }
    if let Some(rule) = &series.rule {
        match last_rule_start(series, rule) {
            Some(rule_last) => last = last.max(Some(latest_end(rule_last, series.length))),
            None => last = None,
        }
    }
    (first, last)
}

// A zero-length event takes no time but still happens at its start.
fn overlaps(start: DateTime<Utc>, end: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    start < to && (end > from || (end == start && start >= from))
}

/// The start of the rule's last instance, for [`span`]; `None` when the rule
/// has no end (no UNTIL, an UNTIL centuries away, or a COUNT beyond [`MAX_INSTANCES`]).
fn last_rule_start(series: &Series, rule: &Rule) -> Option<When> {
    if let Some(count) = rule.count {
        if count as usize > MAX_INSTANCES {
            return None;
        }
        // Floating and all-day series are expanded on the UTC wall clock; the caller pads.
        let mut last = None;
        let complete =
            expand_rule(series, rule, Tz::UTC, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, MAX_INSTANCES, |local, start| {
                last = Some(match series.start {
                    When::Utc(_) | When::Zoned(..) => When::Utc(start),
                    When::Floating(_) | When::Date(_) => When::Floating(local),
                });
            });
        return if complete { last.or(Some(series.start)) } else { None };
    }
    if rule.until_is_far(series.start) {
        return None;
    }
    match rule.until {
        // A DATE UNTIL on a timed series ends with that day.
        Some(When::Date(d)) if !series.start.is_date() => Some(When::Floating(d.succ_opt().unwrap_or(d).and_time(NaiveTime::MIN))),
        until => until,
    }
}

// Feeds `emit` every rule instance starting in [earliest, to) (and before UNTIL) as its wall
// clock in the series' zone and its instant. Returns false when the budget ran out or the
// rule could not be used, i.e. when the instances may be incomplete.
fn expand_rule(
    series: &Series,
    rule: &Rule,
    zone: Tz,
    earliest: DateTime<Utc>,
    to: DateTime<Utc>,
    budget: usize,
    mut emit: impl FnMut(NaiveDateTime, DateTime<Utc>),
) -> bool {
    let Ok(parsed) = rule.text.parse::<RRule<Unvalidated>>() else { return false };
    let tz = series.start.zone_or(zone);
    let until = rule.until.map(|u| match u {
        // A DATE UNTIL includes that whole day.
        When::Date(d) if !series.start.is_date() => {
            let next = d.succ_opt().unwrap_or(d).and_time(NaiveTime::MIN);
            sub_clamped(local_to_utc(tz, next), chrono::Duration::seconds(1))
        }
        u => u.to_utc(zone),
    });

    let mut local_start = series.start.local();
    // Without COUNT, whole periods before the window can be skipped: the rule's shape
    // repeats every INTERVAL periods, so a start moved by a multiple of that expands the
    // same instances from there on, and a 10-year-old daily series costs no more than a new one.
    if rule.count.is_none() && earliest > DateTime::<Utc>::MIN_UTC {
        let target = earliest.with_timezone(&tz).naive_local();
        if let Some(rebased) = rebase(local_start, parsed.get_freq(), parsed.get_interval(), target) {
            // A start in a DST gap would move the rule's time of day (the crate takes BYHOUR
            // from it), so such a start is not used.
            if tz.from_local_datetime(&rebased).earliest().is_some() {
                local_start = rebased;
            }
        }
    }

    let rtz = if tz == Tz::UTC { rrule::Tz::UTC } else { rrule::Tz::Tz(tz) };
    let dt_start = match rtz.from_local_datetime(&local_start).earliest() {
        Some(t) => t,
        None => local_to_utc(tz, local_start).with_timezone(&rtz),
    };
    let Ok(validated) = parsed.validate(dt_start) else { return false };
    let set = RRuleSet::new(dt_start).rrule(validated).limit();

    let mut stepped = 0;
    for instance in &set {
        stepped += 1;
        if stepped > budget {
            return false;
        }
        let start = instance.with_timezone(&Utc);
        if until.is_some_and(|u| start > u) || start >= to {
            return true;
        }
        if start >= earliest {
            emit(instance.naive_local(), start);
        }
    }
    // The rule ended (COUNT reached), or the crate gave up after its own loop limit on a
    // rule that matches nothing more.
    true
}

// The latest start, a whole number of INTERVAL periods after `local`, that is at least one
// period plus a day before `target`; `None` when skipping is unsafe or pointless.
fn rebase(local: NaiveDateTime, freq: Frequency, interval: u16, target: NaiveDateTime) -> Option<NaiveDateTime> {
    let interval = i64::from(interval.max(1));
    let target = target.checked_sub_signed(chrono::Duration::days(1))?;
    if target <= local {
        return None;
    }
    match freq {
        Frequency::Daily | Frequency::Weekly => {
            let step = if freq == Frequency::Daily { interval } else { 7 * interval };
            let periods = (target.date() - local.date()).num_days() / step - 1;
            (periods > 0).then(|| local.checked_add_signed(chrono::Duration::days(periods * step)))?
        }
        Frequency::Monthly | Frequency::Yearly => {
            // Months shorter than the start day would move the start to another day.
            if local.day() > 28 {
                return None;
            }
            let step = if freq == Frequency::Monthly { interval } else { 12 * interval };
            let months = (i64::from(target.year()) - i64::from(local.year())) * 12 + i64::from(target.month()) - i64::from(local.month());
            let periods = months / step - 1;
            if periods <= 0 {
                return None;
            }
            local.checked_add_months(Months::new(u32::try_from(periods * step).ok()?))
        }
        // Hourly and finer rules can cross DST in ways a wall-clock shift would not keep.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_connector_sdk::ical::{IcalError, parse_object};

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("test instant")
    }

    fn object(body: &str) -> ParsedObject {
        let lines: Vec<&str> = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN"]
            .into_iter()
            .chain(body.lines().map(str::trim).filter(|l| !l.is_empty()))
            .chain(["END:VCALENDAR"])
            .collect();
        parse_object(&(lines.join("\r\n") + "\r\n")).expect("test object parses")
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

    fn starts(found: &[Occurrence]) -> Vec<DateTime<Utc>> {
        found.iter().map(|o| o.start).collect()
    }

    #[test]
    fn a_weekly_series_with_one_instance_moved_and_one_deleted() {
        let standup = object(
            "BEGIN:VEVENT
             UID:standup
             DTSTART;TZID=Europe/Berlin:20260105T090000
             DTEND;TZID=Europe/Berlin:20260105T093000
             RRULE:FREQ=WEEKLY;BYDAY=MO
             EXDATE;TZID=Europe/Berlin:20260119T090000
             SUMMARY:Standup
             END:VEVENT
             BEGIN:VEVENT
             UID:standup
             RECURRENCE-ID;TZID=Europe/Berlin:20260112T090000
             DTSTART;TZID=Europe/Berlin:20260113T140000
             DTEND;TZID=Europe/Berlin:20260113T150000
             SUMMARY:Standup (moved)
             END:VEVENT",
        );

        let found = occurrences(&standup, utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"), Tz::UTC);

        let expected = vec![
            Occurrence {
                start: utc("2026-01-05T08:00:00Z"),
                end: utc("2026-01-05T08:30:00Z"),
                all_day: false,
                busy: true,
                summary: Some("Standup".into()),
            },
            Occurrence {
                start: utc("2026-01-13T13:00:00Z"),
                end: utc("2026-01-13T14:00:00Z"),
                all_day: false,
                busy: true,
                summary: Some("Standup (moved)".into()),
            },
            Occurrence {
                start: utc("2026-01-26T08:00:00Z"),
                end: utc("2026-01-26T08:30:00Z"),
                all_day: false,
                busy: true,
                summary: Some("Standup".into()),
            },
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn an_event_across_the_dst_change_lasts_its_real_utc_length() {
        let overnight = object(
            "BEGIN:VEVENT
             UID:overnight
             DTSTART;TZID=Europe/Berlin:20260328T200000
             DTEND;TZID=Europe/Berlin:20260329T100000
             END:VEVENT",
        );

        let found = occurrences(&overnight, utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z"), Tz::UTC);

        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start, found[0].end), (utc("2026-03-28T19:00:00Z"), utc("2026-03-29T08:00:00Z")));
        assert_eq!(found[0].end - found[0].start, chrono::Duration::hours(13));
    }

    #[test]
    fn a_weekly_series_keeps_its_local_time_across_the_dst_change() {
        let weekly = object(
            "BEGIN:VEVENT
             UID:thursday
             DTSTART;TZID=Europe/Berlin:20260319T090000
             DTEND;TZID=Europe/Berlin:20260319T100000
             RRULE:FREQ=WEEKLY
             END:VEVENT",
        );

        let found = occurrences(&weekly, utc("2026-03-15T00:00:00Z"), utc("2026-04-05T00:00:00Z"), Tz::America__New_York);

        // 09:00 CET is 08:00 UTC; from 29 March 09:00 CEST is 07:00 UTC.
        assert_eq!(starts(&found), vec![utc("2026-03-19T08:00:00Z"), utc("2026-03-26T08:00:00Z"), utc("2026-04-02T07:00:00Z")]);
        assert!(found.iter().all(|o| o.end - o.start == chrono::Duration::hours(1)));
    }

    #[test]
    fn a_nightly_series_in_the_dst_gap_keeps_its_time_on_other_nights() {
        let nightly = object(
            "BEGIN:VEVENT
             UID:backup
             DTSTART;TZID=Europe/Berlin:20250105T023000
             DURATION:PT15M
             RRULE:FREQ=WEEKLY;BYDAY=SU
             END:VEVENT",
        );

        let found = occurrences(&nightly, utc("2026-03-20T00:00:00Z"), utc("2026-04-10T00:00:00Z"), Tz::UTC);

        // 02:30 does not exist on 29 March: it is read with the offset before the gap
        // (03:30 CEST), and the Sundays either side stay at 02:30 local.
        assert_eq!(starts(&found), vec![utc("2026-03-22T01:30:00Z"), utc("2026-03-29T01:30:00Z"), utc("2026-04-05T00:30:00Z")]);
    }

    #[test]
    fn an_all_day_event_is_the_day_in_the_users_zone() {
        let holiday = object(
            "BEGIN:VEVENT
             UID:holiday
             DTSTART;VALUE=DATE:20260329
             DTEND;VALUE=DATE:20260330
             SUMMARY:Holiday
             END:VEVENT",
        );
        let (from, to) = (utc("2026-03-27T00:00:00Z"), utc("2026-04-01T00:00:00Z"));

        let in_berlin = occurrences(&holiday, from, to, Tz::Europe__Berlin);
        let in_new_york = occurrences(&holiday, from, to, Tz::America__New_York);

        // Berlin moves its clocks forward that day: the day lasts 23 h.
        assert_eq!((in_berlin[0].start, in_berlin[0].end), (utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z")));
        assert_eq!((in_new_york[0].start, in_new_york[0].end), (utc("2026-03-29T04:00:00Z"), utc("2026-03-30T04:00:00Z")));
        assert!(in_berlin[0].all_day && in_new_york[0].all_day);
    }

    #[test]
    fn a_floating_time_is_read_in_the_users_zone() {
        let floating = object(
            "BEGIN:VEVENT
             UID:floating
             DTSTART:20260610T090000
             DURATION:PT1H
             END:VEVENT",
        );

        let in_tokyo = occurrences(&floating, utc("2026-06-09T00:00:00Z"), utc("2026-06-11T00:00:00Z"), Tz::Asia__Tokyo);

        assert_eq!(starts(&in_tokyo), vec![utc("2026-06-10T00:00:00Z")]);
        assert!(!in_tokyo[0].all_day);
    }

    #[test]
    fn count_stops_a_rule_after_that_many_instances() {
        let counted = object(
            "BEGIN:VEVENT
             UID:counted
             DTSTART:20260201T100000Z
             DURATION:PT30M
             RRULE:FREQ=DAILY;COUNT=3
             END:VEVENT",
        );

        let found = occurrences(&counted, utc("2026-01-01T00:00:00Z"), utc("2026-03-01T00:00:00Z"), Tz::UTC);

        assert_eq!(starts(&found), vec![utc("2026-02-01T10:00:00Z"), utc("2026-02-02T10:00:00Z"), utc("2026-02-03T10:00:00Z")]);
        assert_eq!(span(&counted).1, Some(utc("2026-02-03T10:30:00Z")));
    }

    #[test]
    fn until_is_inclusive_and_read_in_the_series_zone() {
        let until_utc = object(
            "BEGIN:VEVENT
             UID:until
             DTSTART;TZID=Europe/Berlin:20260202T100000
             RRULE:FREQ=WEEKLY;UNTIL=20260216T090000Z
             END:VEVENT",
        );
        let until_date = object(
            "BEGIN:VEVENT
             UID:until-date
             DTSTART;TZID=Europe/Berlin:20260202T100000
             RRULE:FREQ=WEEKLY;UNTIL=20260216
             END:VEVENT",
        );
        let (from, to) = (utc("2026-01-01T00:00:00Z"), utc("2026-04-01T00:00:00Z"));
        let expected = vec![utc("2026-02-02T09:00:00Z"), utc("2026-02-09T09:00:00Z"), utc("2026-02-16T09:00:00Z")];

        assert_eq!(starts(&occurrences(&until_utc, from, to, Tz::UTC)), expected);
        assert_eq!(starts(&occurrences(&until_date, from, to, Tz::UTC)), expected);
    }

    #[test]
    fn a_monthly_byday_rule_picks_the_second_tuesday() {
        let board = object(
            "BEGIN:VEVENT
             UID:board
             DTSTART;TZID=Europe/Berlin:20260113T150000
             DURATION:PT2H
             RRULE:FREQ=MONTHLY;BYDAY=2TU
             END:VEVENT",
        );
        // Started eleven years earlier: the periods before the window are skipped, not lost.
        let old_board = object(
            "BEGIN:VEVENT
             UID:old-board
             DTSTART;TZID=Europe/Berlin:20150113T150000
             DURATION:PT2H
             RRULE:FREQ=MONTHLY;BYDAY=2TU
             END:VEVENT",
        );
        let (from, to) = (utc("2026-02-01T00:00:00Z"), utc("2026-05-01T00:00:00Z"));
        let expected = vec![utc("2026-02-10T14:00:00Z"), utc("2026-03-10T14:00:00Z"), utc("2026-04-14T13:00:00Z")];

        assert_eq!(starts(&occurrences(&board, from, to, Tz::UTC)), expected);
        assert_eq!(starts(&occurrences(&old_board, from, to, Tz::UTC)), expected);
    }

    #[test]
    fn a_last_friday_rule_and_an_old_daily_rule_land_on_the_right_days() {
        let retro = object(
            "BEGIN:VEVENT
             UID:retro
             DTSTART:20260130T150000Z
             RRULE:FREQ=MONTHLY;BYDAY=-1FR
             END:VEVENT",
        );
        let daily = object(
            "BEGIN:VEVENT
             UID:daily
             DTSTART;TZID=America/New_York:20100301T083000
             RRULE:FREQ=DAILY;INTERVAL=3
             END:VEVENT",
        );

        let fridays = occurrences(&retro, utc("2026-02-01T00:00:00Z"), utc("2026-05-01T00:00:00Z"), Tz::UTC);
        assert_eq!(starts(&fridays), vec![utc("2026-02-27T15:00:00Z"), utc("2026-03-27T15:00:00Z"), utc("2026-04-24T15:00:00Z")]);

        // 2026-03-01 is 5844 days (1948 × 3) after 2010-03-01; every third day from there.
        let every_third = occurrences(&daily, utc("2026-03-01T00:00:00Z"), utc("2026-03-10T00:00:00Z"), Tz::UTC);
        assert_eq!(starts(&every_third), vec![utc("2026-03-01T13:30:00Z"), utc("2026-03-04T13:30:00Z"), utc("2026-03-07T13:30:00Z")]);
    }

    #[test]
    fn an_override_moved_into_the_window_appears_and_one_moved_out_does_not() {
        let weekly = object(
            "BEGIN:VEVENT
             UID:weekly
             DTSTART:20260202T100000Z
             DURATION:PT1H
             RRULE:FREQ=WEEKLY
             END:VEVENT
             BEGIN:VEVENT
             UID:weekly
             RECURRENCE-ID:20260223T100000Z
             DTSTART:20260304T120000Z
             DURATION:PT1H
             SUMMARY:Moved in
             END:VEVENT
             BEGIN:VEVENT
             UID:weekly
             RECURRENCE-ID:20260302T100000Z
             DTSTART:20260225T120000Z
             DURATION:PT1H
             END:VEVENT",
        );

        let found = occurrences(&weekly, utc("2026-03-02T00:00:00Z"), utc("2026-03-09T00:00:00Z"), Tz::UTC);

        assert_eq!(starts(&found), vec![utc("2026-03-04T12:00:00Z")]);
        assert_eq!(found[0].summary.as_deref(), Some("Moved in"));
    }

    #[test]
    fn rdates_add_instances_and_cancelled_overrides_remove_them() {
        let series = object(
            "BEGIN:VEVENT
             UID:series
             DTSTART:20260302T100000Z
             DURATION:PT1H
             RRULE:FREQ=DAILY;COUNT=3
             RDATE:20260307T180000Z
             END:VEVENT
             BEGIN:VEVENT
             UID:series
             RECURRENCE-ID:20260303T100000Z
             STATUS:CANCELLED
             END:VEVENT",
        );

        let found = occurrences(&series, utc("2026-03-01T00:00:00Z"), utc("2026-03-10T00:00:00Z"), Tz::UTC);

        assert_eq!(starts(&found), vec![utc("2026-03-02T10:00:00Z"), utc("2026-03-04T10:00:00Z"), utc("2026-03-07T18:00:00Z")]);
    }

    #[test]
    fn transparent_and_cancelled_events_are_not_busy() {
        let transparent = object(
            "BEGIN:VEVENT
             UID:transparent
             DTSTART:20260302T100000Z
             DURATION:PT1H
             RRULE:FREQ=DAILY;COUNT=2
             TRANSP:TRANSPARENT
             END:VEVENT",
        );
        let cancelled = object(
            "BEGIN:VEVENT
             UID:cancelled
             DTSTART:20260302T100000Z
             DURATION:PT1H
             STATUS:CANCELLED
             END:VEVENT",
        );
        let (from, to) = (utc("2026-03-01T00:00:00Z"), utc("2026-03-10T00:00:00Z"));

        let found: Vec<Occurrence> = [&transparent, &cancelled].into_iter().flat_map(|o| occurrences(o, from, to, Tz::UTC)).collect();

        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|o| !o.busy));
    }

    #[test]
    fn windows_and_unknown_tzids_expand_where_they_were_read() {
        let outlook = object(
            "BEGIN:VEVENT
             UID:outlook
             DTSTART;TZID=Pacific Standard Time:20260302T090000
             DTEND;TZID=Pacific Standard Time:20260302T093000
             RRULE:FREQ=WEEKLY
             END:VEVENT",
        );
        let unknown = object(
            "BEGIN:VEVENT
             UID:unknown
             DTSTART;TZID=Customized Time Zone 7:20260302T090000
             DURATION:PT30M
             END:VEVENT",
        );
        let (from, to) = (utc("2026-03-01T00:00:00Z"), utc("2026-03-15T00:00:00Z"));

        // Los Angeles moves to PDT on 8 March: 09:00 is 17:00 UTC, then 16:00 UTC.
        assert_eq!(starts(&occurrences(&outlook, from, to, Tz::UTC)), vec![utc("2026-03-02T17:00:00Z"), utc("2026-03-09T16:00:00Z")]);
        assert_eq!(starts(&occurrences(&unknown, from, to, Tz::UTC)), vec![utc("2026-03-02T09:00:00Z")]);
        assert!(unknown.series.approximate);
    }

    #[test]
    fn an_outlook_meeting_in_tehran_is_busy_at_the_right_hours() {
        // Before the full Windows table, "Iran Standard Time" was read as UTC: busy 10:00 to
        // 11:30 UTC, three and a half hours late.
        let meeting = object(
            "BEGIN:VEVENT
             UID:tehran
             DTSTART;TZID=Iran Standard Time:20260706T100000
             DTEND;TZID=Iran Standard Time:20260706T113000
             END:VEVENT",
        );

        let found = occurrences(&meeting, utc("2026-07-06T00:00:00Z"), utc("2026-07-07T00:00:00Z"), Tz::Europe__Berlin);

        let busy: Vec<_> = found.iter().map(|o| (o.start, o.end, o.busy)).collect();
        assert_eq!(busy, vec![(utc("2026-07-06T06:30:00Z"), utc("2026-07-06T08:00:00Z"), true)]);
        assert!(!meeting.series.approximate);
    }

    #[test]
    fn a_pathological_rule_is_capped() {
        let secondly = object(
            "BEGIN:VEVENT
             UID:secondly
             DTSTART:20260302T000000Z
             RRULE:FREQ=SECONDLY
             END:VEVENT",
        );

        let found = occurrences(&secondly, utc("2026-03-02T00:00:00Z"), utc("2026-03-03T00:00:00Z"), Tz::UTC);

        assert!(!found.is_empty());
        assert!(found.len() <= MAX_INSTANCES + 1, "{}", found.len());
        assert_eq!(span(&secondly).1, None);
    }

    #[test]
    fn an_empty_or_reversed_window_has_no_occurrences() {
        let one = object("BEGIN:VEVENT\nUID:one\nDTSTART:20260302T100000Z\nEND:VEVENT");
        assert!(occurrences(&one, utc("2026-03-03T00:00:00Z"), utc("2026-03-01T00:00:00Z"), Tz::UTC).is_empty());
        // A zero-length event still happens at its start.
        assert_eq!(occurrences(&one, utc("2026-03-02T10:00:00Z"), utc("2026-03-02T11:00:00Z"), Tz::UTC).len(), 1);
    }

    #[test]
    fn expanding_a_weekly_series_over_31_days_is_cheap() {
        let weekly = object(
            "BEGIN:VEVENT
             UID:weekly
             DTSTART;TZID=Europe/Berlin:20200106T090000
             DURATION:PT1H
             RRULE:FREQ=WEEKLY;BYDAY=MO,WE
             END:VEVENT",
        );
        let (from, to) = (utc("2026-03-01T00:00:00Z"), utc("2026-04-01T00:00:00Z"));

        let started = std::time::Instant::now();
        let mut total = 0;
        for _ in 0..1000 {
            total += occurrences(&weekly, from, to, Tz::UTC).len();
        }
        let elapsed = started.elapsed();

        assert_eq!(total, 9000);
        // Generous for an unoptimised build on a shared machine; release is far below this.
        assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    }

    #[test]
    fn garbage_and_truncated_input_never_panics() {
        for garbage in
            ["", "hello world", "BEGIN:", "BEGIN:VCALENDAR", "END:VEVENT", "\u{0}\u{1}\u{2}", ":::;;;", "BEGIN:VEVENT\r\nEND:VTODO"]
        {
            assert!(parse_object(garbage).is_err(), "{garbage:?}");
        }
        assert!(matches!(parse_object("hello world"), Err(IcalError::Invalid(_))));

        let full = calendar(
            "BEGIN:VTIMEZONE
             TZID:Office
             X-LIC-LOCATION:Europe/Berlin
             END:VTIMEZONE
             BEGIN:VEVENT
             UID:whole
             DTSTART;TZID=Office:20260105T090000
             DURATION:PT45M
             RRULE:FREQ=MONTHLY;BYDAY=2TU;COUNT=5
             RDATE;VALUE=PERIOD:20260301T100000Z/PT1H
             EXDATE;VALUE=DATE:20260210
             SUMMARY:Ärger\\, Überstunden 老虎
             END:VEVENT
             BEGIN:VEVENT
             UID:whole
             RECURRENCE-ID;TZID=Office:20260113T090000
             DTSTART;TZID=Office:20260114T090000
             END:VEVENT",
        );
        assert!(parse_object(&full).is_ok());
        let mut checked = 0;
        for (cut, _) in full.char_indices() {
            let result = parse_object(&full[..cut]);
            if let Ok(object) = result {
                // Whatever survives truncation must also expand and span without trouble.
                let _ = span(&object);
                let _ = occurrences(&object, utc("2026-01-01T00:00:00Z"), utc("2026-12-31T00:00:00Z"), Tz::Europe__Berlin);
            }
            checked += 1;
        }
        assert!(checked > 400);

        // Deterministic byte noise spliced into a valid object.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..300 {
            let mut bytes = full.clone().into_bytes();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % bytes.len() as u64) as usize;
                bytes[at] = (seed >> 32) as u8;
            }
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(object) = parse_object(&text) {
                let _ = span(&object);
            }
        }
    }

    #[test]
    fn odd_but_well_formed_values_never_panic() {
        let window = (utc("2026-01-01T00:00:00Z"), utc("2026-02-01T00:00:00Z"));
        let cases = [
            ("99991231T235959Z", "FREQ=YEARLY"),
            ("00010101T000000Z", "FREQ=DAILY"),
            ("20260105T090000Z", "FREQ=WEEKLY;INTERVAL=65535"),
            ("20260105T090000Z", "FREQ=DAILY;COUNT=4294967295"),
            ("20260105T090000Z", "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2"),
            ("20260105T090000Z", "FREQ=YEARLY;BYSETPOS=-1;BYDAY=MO,TU;BYWEEKNO=53"),
            ("20260105T090000Z", "FREQ=MINUTELY;BYSECOND=0,1,2,3,4,5,6,7,8,9"),
            ("20260105T090000Z", "FREQ=DAILY;UNTIL=19000101T000000Z"),
            ("20260105", "FREQ=DAILY;UNTIL=20260110T000000Z"),
            ("20260105T090000Z", "FREQ=FORTNIGHTLY"),
            ("20260105T090000Z", "FREQ=DAILY;;;"),
        ];
        for (start, rule) in cases {
            let text = calendar(&format!("BEGIN:VEVENT\nUID:odd\nDTSTART:{start}\nDURATION:P9999999W\nRRULE:{rule}\nEND:VEVENT"));
            let object = parse_object(&text).expect("parses");
            let _ = span(&object);
            let found = occurrences(&object, window.0, window.1, Tz::Pacific__Kiritimati);
            assert!(found.len() <= MAX_INSTANCES + 1, "{rule}");
        }
        // A stored form altered in the database is not trusted either.
        let tampered = r#"{"uid":"t","series":{"start":{"u":"2026-01-05T09:00:00Z"},"length":{"days":9223372036854775807,"seconds":-9223372036854775808},"rule":{"text":"FREQ=DAILY","count":0}}}"#;
        let object: ParsedObject = serde_json::from_str(tampered).expect("deserializes");
        let _ = span(&object);
        let _ = occurrences(&object, window.0, window.1, Tz::UTC);
    }

    #[test]
    fn span_of_a_single_timed_event_is_its_start_and_end() {
        let object = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:one
             DTSTART;TZID=Europe/Berlin:20260328T200000
             DTEND;TZID=Europe/Berlin:20260329T100000
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(span(&object), (utc("2026-03-28T19:00:00Z"), Some(utc("2026-03-29T08:00:00Z"))));
    }

    #[test]
    fn span_pads_floating_and_all_day_values_by_fourteen_hours() {
        let object = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:day
             DTSTART;VALUE=DATE:20260329
             DTEND;VALUE=DATE:20260330
             END:VEVENT",
        ))
        .expect("parses");
        // The end is padded by 14 h and by a 25-hour bound on the wall-clock day.
        assert_eq!(span(&object), (utc("2026-03-28T10:00:00Z"), Some(utc("2026-03-30T15:00:00Z"))));
    }

    #[test]
    fn span_of_an_open_ended_rule_has_no_end() {
        let object = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:weekly
             DTSTART:20260105T090000Z
             RRULE:FREQ=WEEKLY
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(span(&object), (utc("2026-01-05T09:00:00Z"), None));
    }

    #[test]
    fn span_of_a_counted_or_until_rule_ends_with_its_last_instance() {
        let counted = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:counted
             DTSTART;TZID=Europe/Berlin:20260105T090000
             DURATION:PT1H
             RRULE:FREQ=WEEKLY;COUNT=13
             END:VEVENT",
        ))
        .expect("parses");
        // The 13th Monday is 30 March, after the switch to CEST.
        assert_eq!(span(&counted).1, Some(utc("2026-03-30T08:00:00Z")));

        let until = parse_object(&calendar(
            "BEGIN:VEVENT
             UID:until
             DTSTART:20260105T090000Z
             DURATION:PT1H
             RRULE:FREQ=DAILY;UNTIL=20260110T090000Z
             END:VEVENT",
        ))
        .expect("parses");
        assert_eq!(span(&until).1, Some(utc("2026-01-10T10:00:00Z")));
    }
}
