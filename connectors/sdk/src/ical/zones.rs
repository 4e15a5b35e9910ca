//! TZIDs to IANA zones: IANA names as they are, IANA names behind a vendor prefix, and the
//! Windows zone names that Outlook and Exchange write most. Pure code, no I/O.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Maps a TZID to an IANA zone: IANA names as they are (`Europe/Berlin`), names behind a
/// vendor prefix (`/mozilla.org/20050126_1/Europe/Berlin`), and the Windows names Outlook
/// and Exchange write (`W. Europe Standard Time`). `None` for anything else.
pub fn resolve_tzid(tzid: &str) -> Option<Tz> {
    let tzid = tzid.trim().trim_matches('"').trim();
    if tzid.is_empty() {
        return None;
    }
    if let Ok(tz) = tzid.parse::<Tz>() {
        return Some(tz);
    }
    if let Some(tz) = windows_zone(tzid) {
        return Some(tz);
    }
    // A vendor prefix: try each suffix that starts after a '/'.
    tzid.match_indices('/').filter_map(|(i, _)| tzid.get(i + 1..)).filter(|rest| !rest.is_empty()).find_map(|rest| rest.parse::<Tz>().ok())
}

// The Windows zone names seen most, after CLDR's windowsZones.xml ("001" territory).
fn windows_zone(name: &str) -> Option<Tz> {
    const ZONES: &[(&str, Tz)] = &[
        ("W. Europe Standard Time", Tz::Europe__Berlin),
        ("Central Europe Standard Time", Tz::Europe__Budapest),
        ("Central European Standard Time", Tz::Europe__Warsaw),
        ("Romance Standard Time", Tz::Europe__Paris),
        ("GMT Standard Time", Tz::Europe__London),
        ("Greenwich Standard Time", Tz::Atlantic__Reykjavik),
        ("E. Europe Standard Time", Tz::Europe__Chisinau),
        ("FLE Standard Time", Tz::Europe__Kyiv),
        ("GTB Standard Time", Tz::Europe__Bucharest),
        ("Russian Standard Time", Tz::Europe__Moscow),
        ("Turkey Standard Time", Tz::Europe__Istanbul),
        ("Israel Standard Time", Tz::Asia__Jerusalem),
        ("Arabian Standard Time", Tz::Asia__Dubai),
        ("India Standard Time", Tz::Asia__Kolkata),
        ("China Standard Time", Tz::Asia__Shanghai),
        ("Singapore Standard Time", Tz::Asia__Singapore),
        ("Tokyo Standard Time", Tz::Asia__Tokyo),
        ("Korea Standard Time", Tz::Asia__Seoul),
        ("AUS Eastern Standard Time", Tz::Australia__Sydney),
        ("E. Australia Standard Time", Tz::Australia__Brisbane),
        ("New Zealand Standard Time", Tz::Pacific__Auckland),
        ("Eastern Standard Time", Tz::America__New_York),
        ("Central Standard Time", Tz::America__Chicago),
        ("Mountain Standard Time", Tz::America__Denver),
        ("US Mountain Standard Time", Tz::America__Phoenix),
        ("Pacific Standard Time", Tz::America__Los_Angeles),
        ("Alaskan Standard Time", Tz::America__Anchorage),
        ("Hawaiian Standard Time", Tz::Pacific__Honolulu),
        ("Atlantic Standard Time", Tz::America__Halifax),
        ("E. South America Standard Time", Tz::America__Sao_Paulo),
        ("Argentina Standard Time", Tz::America__Buenos_Aires),
        ("South Africa Standard Time", Tz::Africa__Johannesburg),
        ("UTC", Tz::UTC),
        ("Coordinated Universal Time", Tz::UTC),
        // Outlook sometimes writes the display name instead of the zone id.
        ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", Tz::Europe__Berlin),
        ("(UTC+01:00) Brussels, Copenhagen, Madrid, Paris", Tz::Europe__Paris),
        ("(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague", Tz::Europe__Budapest),
        ("(UTC+01:00) Sarajevo, Skopje, Warsaw, Zagreb", Tz::Europe__Warsaw),
        ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", Tz::Europe__London),
        ("(UTC-05:00) Eastern Time (US & Canada)", Tz::America__New_York),
        ("(UTC-06:00) Central Time (US & Canada)", Tz::America__Chicago),
        ("(UTC-07:00) Mountain Time (US & Canada)", Tz::America__Denver),
        ("(UTC-08:00) Pacific Time (US & Canada)", Tz::America__Los_Angeles),
    ];
    ZONES.iter().find(|(windows, _)| windows.eq_ignore_ascii_case(name)).map(|(_, tz)| *tz)
}

/// The instant a wall-clock time in `tz` means. An ambiguous time (clocks going back) takes
/// the first; a time in a gap (clocks going forward) is read with the offset before the gap,
/// as RFC 5545 §3.3.5 says, so 02:30 on a spring-forward night in Berlin is 03:30 CEST.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let before = local.checked_sub_signed(Duration::hours(3)).unwrap_or(local);
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let utc = local.checked_sub_signed(Duration::seconds(offset.local_minus_utc().into()));
            utc.unwrap_or(local).and_utc()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_vendor_prefixed_tzids_map_to_iana_zones() {
        assert_eq!(resolve_tzid("W. Europe Standard Time"), Some(Tz::Europe__Berlin));
        assert_eq!(resolve_tzid("\"Eastern Standard Time\""), Some(Tz::America__New_York));
        assert_eq!(resolve_tzid("Tokyo Standard Time"), Some(Tz::Asia__Tokyo));
        assert_eq!(resolve_tzid("UTC"), Some(Tz::UTC));
        assert_eq!(resolve_tzid("Coordinated Universal Time"), Some(Tz::UTC));
        assert_eq!(resolve_tzid("/mozilla.org/20050126_1/Europe/Berlin"), Some(Tz::Europe__Berlin));
        assert_eq!(resolve_tzid("/softwarestudio.org/Olson_20011030_5/America/New_York"), Some(Tz::America__New_York));
        assert_eq!(resolve_tzid("Europe/Paris"), Some(Tz::Europe__Paris));
        assert_eq!(resolve_tzid("Mars/Olympus_Mons"), None);
        assert_eq!(resolve_tzid("  "), None);
    }

    #[test]
    fn a_wall_clock_time_in_a_gap_takes_the_offset_before_it() {
        let local = |s: &str| s.parse::<NaiveDateTime>().expect("local");
        let utc = |s: &str| s.parse::<DateTime<Utc>>().expect("utc");
        assert_eq!(local_to_utc(Tz::Europe__Berlin, local("2026-03-29T02:30:00")), utc("2026-03-29T01:30:00Z"));
        // Clocks going back: the first of the two readings.
        assert_eq!(local_to_utc(Tz::Europe__Berlin, local("2026-10-25T02:30:00")), utc("2026-10-25T00:30:00Z"));
        assert_eq!(local_to_utc(Tz::Asia__Tehran, local("2026-07-05T09:00:00")), utc("2026-07-05T05:30:00Z"));
    }
}
