//! TZIDs to IANA zones: IANA names as they are, IANA names behind a vendor prefix, and the
//! Windows zone names (and display names) that Outlook and Exchange write, after the
//! Unicode CLDR table `common/supplemental/windowsZones.xml`. Pure data, no I/O.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Maps a TZID to an IANA zone: IANA names as they are (`Europe/Berlin`), names behind a
/// vendor prefix (`/mozilla.org/20050126_1/Europe/Berlin`), and Windows zone ids
/// (`W. Europe Standard Time`) or display names (`(UTC+01:00) Amsterdam, Berlin, …`), in any
/// case. Quotes around the TZID are ignored. `None` for anything else.
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

/// The IANA zone for a Windows zone id (`Iran Standard Time`) or its display name
/// (`(UTC+03:30) Tehran`), compared without regard to ASCII case. `None` when the name is
/// not a Windows zone.
pub fn windows_zone(name: &str) -> Option<Tz> {
    let name = name.trim();
    let iana = WINDOWS_ZONES
        .iter()
        .find(|zone| zone.id.eq_ignore_ascii_case(name) || zone.display.eq_ignore_ascii_case(name))
        .map(|zone| zone.iana)
        .or_else(|| ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name)).map(|(_, iana)| *iana))?;
    iana.parse().ok()
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

/// One Windows time zone: its id, the display name Windows shows for it, and the IANA zone
/// CLDR gives for territory "001" (the zone's main location).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowsZone {
    /// The registry id Outlook and Exchange write as TZID (`Iran Standard Time`).
    pub id: &'static str,
    /// The display name, which some Outlook versions write instead of the id.
    pub display: &'static str,
    /// The IANA name, as chrono-tz parses it.
    pub iana: &'static str,
}

const fn zone(id: &'static str, display: &'static str, iana: &'static str) -> WindowsZone {
    WindowsZone { id, display, iana }
}

// Names seen in the wild that are neither an id nor a display name in the table.
const ALIASES: &[(&str, &str)] = &[("Coordinated Universal Time", "UTC")];

/// Every Windows zone in CLDR's windowsZones.xml, territory "001". Where CLDR keeps an IANA
/// name that is now a link (`Asia/Calcutta`, `Europe/Kiev`, `Etc/UTC`) the current name is
/// given (`Asia/Kolkata`, `Europe/Kyiv`, `UTC`): same rules, and the name the stored form
/// keeps. `UTC` stays chrono-tz's `UTC`, which the reader treats as an absolute instant.
pub const WINDOWS_ZONES: &[WindowsZone] = &[
    zone("Dateline Standard Time", "(UTC-12:00) International Date Line West", "Etc/GMT+12"),
    zone("UTC-11", "(UTC-11:00) Coordinated Universal Time-11", "Etc/GMT+11"),
    zone("Aleutian Standard Time", "(UTC-10:00) Aleutian Islands", "America/Adak"),
    zone("Hawaiian Standard Time", "(UTC-10:00) Hawaii", "Pacific/Honolulu"),
    zone("Marquesas Standard Time", "(UTC-09:30) Marquesas Islands", "Pacific/Marquesas"),
    zone("Alaskan Standard Time", "(UTC-09:00) Alaska", "America/Anchorage"),
    zone("UTC-09", "(UTC-09:00) Coordinated Universal Time-09", "Etc/GMT+9"),
    zone("Pacific Standard Time (Mexico)", "(UTC-08:00) Baja California", "America/Tijuana"),
    zone("UTC-08", "(UTC-08:00) Coordinated Universal Time-08", "Etc/GMT+8"),
    zone("Pacific Standard Time", "(UTC-08:00) Pacific Time (US & Canada)", "America/Los_Angeles"),
    zone("US Mountain Standard Time", "(UTC-07:00) Arizona", "America/Phoenix"),
    zone("Mountain Standard Time (Mexico)", "(UTC-07:00) Chihuahua, La Paz, Mazatlan", "America/Mazatlan"),
    zone("Mountain Standard Time", "(UTC-07:00) Mountain Time (US & Canada)", "America/Denver"),
    zone("Yukon Standard Time", "(UTC-07:00) Yukon", "America/Whitehorse"),
    zone("Central America Standard Time", "(UTC-06:00) Central America", "America/Guatemala"),
    zone("Central Standard Time", "(UTC-06:00) Central Time (US & Canada)", "America/Chicago"),
    zone("Easter Island Standard Time", "(UTC-06:00) Easter Island", "Pacific/Easter"),
    zone("Central Standard Time (Mexico)", "(UTC-06:00) Guadalajara, Mexico City, Monterrey", "America/Mexico_City"),
    zone("Canada Central Standard Time", "(UTC-06:00) Saskatchewan", "America/Regina"),
    zone("SA Pacific Standard Time", "(UTC-05:00) Bogota, Lima, Quito, Rio Branco", "America/Bogota"),
    zone("Eastern Standard Time (Mexico)", "(UTC-05:00) Chetumal", "America/Cancun"),
    zone("Eastern Standard Time", "(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"),
    zone("Haiti Standard Time", "(UTC-05:00) Haiti", "America/Port-au-Prince"),
    zone("Cuba Standard Time", "(UTC-05:00) Havana", "America/Havana"),
    zone("US Eastern Standard Time", "(UTC-05:00) Indiana (East)", "America/Indiana/Indianapolis"),
    zone("Turks And Caicos Standard Time", "(UTC-05:00) Turks and Caicos", "America/Grand_Turk"),
    zone("Paraguay Standard Time", "(UTC-04:00) Asuncion", "America/Asuncion"),
    zone("Atlantic Standard Time", "(UTC-04:00) Atlantic Time (Canada)", "America/Halifax"),
    zone("Venezuela Standard Time", "(UTC-04:00) Caracas", "America/Caracas"),
    zone("Central Brazilian Standard Time", "(UTC-04:00) Cuiaba", "America/Cuiaba"),
    zone("SA Western Standard Time", "(UTC-04:00) Georgetown, La Paz, Manaus, San Juan", "America/La_Paz"),
    zone("Pacific SA Standard Time", "(UTC-04:00) Santiago", "America/Santiago"),
    zone("Newfoundland Standard Time", "(UTC-03:30) Newfoundland", "America/St_Johns"),
    zone("Tocantins Standard Time", "(UTC-03:00) Araguaina", "America/Araguaina"),
    zone("E. South America Standard Time", "(UTC-03:00) Brasilia", "America/Sao_Paulo"),
    zone("SA Eastern Standard Time", "(UTC-03:00) Cayenne, Fortaleza", "America/Cayenne"),
    // Kept as the gateway stored it before this table (a link to America/Argentina/Buenos_Aires).
    zone("Argentina Standard Time", "(UTC-03:00) City of Buenos Aires", "America/Buenos_Aires"),
    zone("Greenland Standard Time", "(UTC-03:00) Greenland", "America/Nuuk"),
    zone("Montevideo Standard Time", "(UTC-03:00) Montevideo", "America/Montevideo"),
    zone("Magallanes Standard Time", "(UTC-03:00) Punta Arenas", "America/Punta_Arenas"),
    zone("Saint Pierre Standard Time", "(UTC-03:00) Saint Pierre and Miquelon", "America/Miquelon"),
    zone("Bahia Standard Time", "(UTC-03:00) Salvador", "America/Bahia"),
    zone("UTC-02", "(UTC-02:00) Coordinated Universal Time-02", "Etc/GMT+2"),
    zone("Azores Standard Time", "(UTC-01:00) Azores", "Atlantic/Azores"),
    zone("Cape Verde Standard Time", "(UTC-01:00) Cabo Verde Is.", "Atlantic/Cape_Verde"),
    zone("UTC", "(UTC) Coordinated Universal Time", "UTC"),
    zone("GMT Standard Time", "(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "Europe/London"),
    zone("Greenwich Standard Time", "(UTC+00:00) Monrovia, Reykjavik", "Atlantic/Reykjavik"),
    zone("Sao Tome Standard Time", "(UTC+00:00) Sao Tome", "Africa/Sao_Tome"),
    zone("Morocco Standard Time", "(UTC+01:00) Casablanca", "Africa/Casablanca"),
    zone("W. Europe Standard Time", "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Europe/Berlin"),
    zone("Central Europe Standard Time", "(UTC+01:00) Belgrade, Bratislava, Budapest, Ljubljana, Prague", "Europe/Budapest"),
    zone("Romance Standard Time", "(UTC+01:00) Brussels, Copenhagen, Madrid, Paris", "Europe/Paris"),
    zone("Central European Standard Time", "(UTC+01:00) Sarajevo, Skopje, Warsaw, Zagreb", "Europe/Warsaw"),
    zone("W. Central Africa Standard Time", "(UTC+01:00) West Central Africa", "Africa/Lagos"),
    zone("Jordan Standard Time", "(UTC+02:00) Amman", "Asia/Amman"),
    zone("GTB Standard Time", "(UTC+02:00) Athens, Bucharest", "Europe/Bucharest"),
    zone("Middle East Standard Time", "(UTC+02:00) Beirut", "Asia/Beirut"),
    zone("Egypt Standard Time", "(UTC+02:00) Cairo", "Africa/Cairo"),
    zone("E. Europe Standard Time", "(UTC+02:00) Chisinau", "Europe/Chisinau"),
    zone("Syria Standard Time", "(UTC+02:00) Damascus", "Asia/Damascus"),
    zone("West Bank Standard Time", "(UTC+02:00) Gaza, Hebron", "Asia/Hebron"),
    zone("South Africa Standard Time", "(UTC+02:00) Harare, Pretoria", "Africa/Johannesburg"),
    zone("FLE Standard Time", "(UTC+02:00) Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius", "Europe/Kyiv"),
    zone("Israel Standard Time", "(UTC+02:00) Jerusalem", "Asia/Jerusalem"),
    zone("South Sudan Standard Time", "(UTC+02:00) Juba", "Africa/Juba"),
    zone("Kaliningrad Standard Time", "(UTC+02:00) Kaliningrad", "Europe/Kaliningrad"),
    zone("Sudan Standard Time", "(UTC+02:00) Khartoum", "Africa/Khartoum"),
    zone("Libya Standard Time", "(UTC+02:00) Tripoli", "Africa/Tripoli"),
    zone("Namibia Standard Time", "(UTC+02:00) Windhoek", "Africa/Windhoek"),
    zone("Arabic Standard Time", "(UTC+03:00) Baghdad", "Asia/Baghdad"),
    zone("Turkey Standard Time", "(UTC+03:00) Istanbul", "Europe/Istanbul"),
    zone("Arab Standard Time", "(UTC+03:00) Kuwait, Riyadh", "Asia/Riyadh"),
    zone("Belarus Standard Time", "(UTC+03:00) Minsk", "Europe/Minsk"),
    zone("Russian Standard Time", "(UTC+03:00) Moscow, St. Petersburg", "Europe/Moscow"),
    zone("E. Africa Standard Time", "(UTC+03:00) Nairobi", "Africa/Nairobi"),
    zone("Iran Standard Time", "(UTC+03:30) Tehran", "Asia/Tehran"),
    zone("Arabian Standard Time", "(UTC+04:00) Abu Dhabi, Muscat", "Asia/Dubai"),
    zone("Astrakhan Standard Time", "(UTC+04:00) Astrakhan, Ulyanovsk", "Europe/Astrakhan"),
    zone("Azerbaijan Standard Time", "(UTC+04:00) Baku", "Asia/Baku"),
    zone("Russia Time Zone 3", "(UTC+04:00) Izhevsk, Samara", "Europe/Samara"),
    zone("Mauritius Standard Time", "(UTC+04:00) Port Louis", "Indian/Mauritius"),
    zone("Saratov Standard Time", "(UTC+04:00) Saratov", "Europe/Saratov"),
    zone("Georgian Standard Time", "(UTC+04:00) Tbilisi", "Asia/Tbilisi"),
    zone("Volgograd Standard Time", "(UTC+04:00) Volgograd", "Europe/Volgograd"),
    zone("Caucasus Standard Time", "(UTC+04:00) Yerevan", "Asia/Yerevan"),
    zone("Afghanistan Standard Time", "(UTC+04:30) Kabul", "Asia/Kabul"),
    zone("West Asia Standard Time", "(UTC+05:00) Ashgabat, Tashkent", "Asia/Tashkent"),
    zone("Ekaterinburg Standard Time", "(UTC+05:00) Ekaterinburg", "Asia/Yekaterinburg"),
    zone("Pakistan Standard Time", "(UTC+05:00) Islamabad, Karachi", "Asia/Karachi"),
    zone("Qyzylorda Standard Time", "(UTC+05:00) Qyzylorda", "Asia/Qyzylorda"),
    zone("India Standard Time", "(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi", "Asia/Kolkata"),
    zone("Sri Lanka Standard Time", "(UTC+05:30) Sri Jayawardenepura", "Asia/Colombo"),
    zone("Nepal Standard Time", "(UTC+05:45) Kathmandu", "Asia/Kathmandu"),
    zone("Central Asia Standard Time", "(UTC+06:00) Astana", "Asia/Bishkek"),
    zone("Bangladesh Standard Time", "(UTC+06:00) Dhaka", "Asia/Dhaka"),
    zone("Omsk Standard Time", "(UTC+06:00) Omsk", "Asia/Omsk"),
    zone("Myanmar Standard Time", "(UTC+06:30) Yangon (Rangoon)", "Asia/Yangon"),
    zone("SE Asia Standard Time", "(UTC+07:00) Bangkok, Hanoi, Jakarta", "Asia/Bangkok"),
    zone("Altai Standard Time", "(UTC+07:00) Barnaul, Gorno-Altaysk", "Asia/Barnaul"),
    zone("W. Mongolia Standard Time", "(UTC+07:00) Hovd", "Asia/Hovd"),
    zone("North Asia Standard Time", "(UTC+07:00) Krasnoyarsk", "Asia/Krasnoyarsk"),
    zone("N. Central Asia Standard Time", "(UTC+07:00) Novosibirsk", "Asia/Novosibirsk"),
    zone("Tomsk Standard Time", "(UTC+07:00) Tomsk", "Asia/Tomsk"),
    zone("China Standard Time", "(UTC+08:00) Beijing, Chongqing, Hong Kong, Urumqi", "Asia/Shanghai"),
    zone("North Asia East Standard Time", "(UTC+08:00) Irkutsk", "Asia/Irkutsk"),
    zone("Singapore Standard Time", "(UTC+08:00) Kuala Lumpur, Singapore", "Asia/Singapore"),
    zone("W. Australia Standard Time", "(UTC+08:00) Perth", "Australia/Perth"),
    zone("Taipei Standard Time", "(UTC+08:00) Taipei", "Asia/Taipei"),
    zone("Ulaanbaatar Standard Time", "(UTC+08:00) Ulaanbaatar", "Asia/Ulaanbaatar"),
    zone("Aus Central W. Standard Time", "(UTC+08:45) Eucla", "Australia/Eucla"),
    zone("Transbaikal Standard Time", "(UTC+09:00) Chita", "Asia/Chita"),
    zone("Tokyo Standard Time", "(UTC+09:00) Osaka, Sapporo, Tokyo", "Asia/Tokyo"),
    zone("North Korea Standard Time", "(UTC+09:00) Pyongyang", "Asia/Pyongyang"),
    zone("Korea Standard Time", "(UTC+09:00) Seoul", "Asia/Seoul"),
    zone("Yakutsk Standard Time", "(UTC+09:00) Yakutsk", "Asia/Yakutsk"),
    zone("Cen. Australia Standard Time", "(UTC+09:30) Adelaide", "Australia/Adelaide"),
    zone("AUS Central Standard Time", "(UTC+09:30) Darwin", "Australia/Darwin"),
    zone("E. Australia Standard Time", "(UTC+10:00) Brisbane", "Australia/Brisbane"),
    zone("AUS Eastern Standard Time", "(UTC+10:00) Canberra, Melbourne, Sydney", "Australia/Sydney"),
    zone("West Pacific Standard Time", "(UTC+10:00) Guam, Port Moresby", "Pacific/Port_Moresby"),
    zone("Tasmania Standard Time", "(UTC+10:00) Hobart", "Australia/Hobart"),
    zone("Vladivostok Standard Time", "(UTC+10:00) Vladivostok", "Asia/Vladivostok"),
    zone("Lord Howe Standard Time", "(UTC+10:30) Lord Howe Island", "Australia/Lord_Howe"),
    zone("Bougainville Standard Time", "(UTC+11:00) Bougainville Island", "Pacific/Bougainville"),
    zone("Russia Time Zone 10", "(UTC+11:00) Chokurdakh", "Asia/Srednekolymsk"),
    zone("Magadan Standard Time", "(UTC+11:00) Magadan", "Asia/Magadan"),
    zone("Norfolk Standard Time", "(UTC+11:00) Norfolk Island", "Pacific/Norfolk"),
    zone("Sakhalin Standard Time", "(UTC+11:00) Sakhalin", "Asia/Sakhalin"),
    zone("Central Pacific Standard Time", "(UTC+11:00) Solomon Is., New Caledonia", "Pacific/Guadalcanal"),
    zone("Russia Time Zone 11", "(UTC+12:00) Anadyr, Petropavlovsk-Kamchatsky", "Asia/Kamchatka"),
    zone("New Zealand Standard Time", "(UTC+12:00) Auckland, Wellington", "Pacific/Auckland"),
    zone("UTC+12", "(UTC+12:00) Coordinated Universal Time+12", "Etc/GMT-12"),
    zone("Fiji Standard Time", "(UTC+12:00) Fiji", "Pacific/Fiji"),
    zone("Chatham Islands Standard Time", "(UTC+12:45) Chatham Islands", "Pacific/Chatham"),
    zone("UTC+13", "(UTC+13:00) Coordinated Universal Time+13", "Etc/GMT-13"),
    zone("Tonga Standard Time", "(UTC+13:00) Nuku'alofa", "Pacific/Tongatapu"),
    zone("Samoa Standard Time", "(UTC+13:00) Samoa", "Pacific/Apia"),
    zone("Line Islands Standard Time", "(UTC+14:00) Kiritimati Island", "Pacific/Kiritimati"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_windows_zone_names_a_chrono_tz_zone() {
        for zone in WINDOWS_ZONES {
            assert!(zone.iana.parse::<Tz>().is_ok(), "{} maps to {}, which chrono-tz does not know", zone.id, zone.iana);
            assert_eq!(windows_zone(zone.id).map(|tz| tz.name()), Some(zone.iana), "{}", zone.id);
            assert_eq!(windows_zone(zone.display).map(|tz| tz.name()), Some(zone.iana), "{}", zone.display);
        }
        for (alias, iana) in ALIASES {
            assert_eq!(windows_zone(alias).map(|tz| tz.name()), Some(*iana));
        }
        assert!(WINDOWS_ZONES.len() >= 139, "{}", WINDOWS_ZONES.len());
    }

    #[test]
    fn windows_ids_and_display_names_are_each_listed_once() {
        let mut names: Vec<String> = WINDOWS_ZONES.iter().flat_map(|z| [z.id, z.display]).map(str::to_ascii_lowercase).collect();
        let listed = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), listed);
    }

    #[test]
    fn the_zones_outlook_used_to_read_as_utc_resolve() {
        assert_eq!(resolve_tzid("Iran Standard Time"), Some(Tz::Asia__Tehran));
        assert_eq!(resolve_tzid("Egypt Standard Time"), Some(Tz::Africa__Cairo));
        assert_eq!(resolve_tzid("Pakistan Standard Time"), Some(Tz::Asia__Karachi));
        assert_eq!(resolve_tzid("Arabian Standard Time"), Some(Tz::Asia__Dubai));
        assert_eq!(resolve_tzid("Nepal Standard Time"), Some(Tz::Asia__Kathmandu));
        assert_eq!(resolve_tzid("\"iran standard time\""), Some(Tz::Asia__Tehran));
        assert_eq!(resolve_tzid("(UTC+03:30) Tehran"), Some(Tz::Asia__Tehran));
    }

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
