//! Graph events and calendars to and from what the gateway speaks: pure mapping, no I/O.
//! Graph sends JSON; the gateway wants one VCALENDAR per object and writes one simple VEVENT.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use concierge_connector_sdk::{CalendarObject, RemoteCalendar};
use serde_json::{Value, json};

use concierge_connector_sdk::ical::{self, Writer, local_to_utc, resolve_tzid, utc_stamp};

/// A Graph calendar (`GET /me/calendars`) as the gateway sees it. `None` without an id.
pub fn remote_calendar(calendar: &Value) -> Option<RemoteCalendar> {
    let id = calendar["id"].as_str().filter(|id| !id.is_empty())?;
    let colour =
        calendar["hexColor"].as_str().and_then(hex_colour).or_else(|| calendar["color"].as_str().and_then(named_colour).map(str::to_owned));
    Some(RemoteCalendar {
        id: id.to_owned(),
        name: calendar["name"].as_str().unwrap_or_default().to_owned(),
        colour,
        // Graph calendars have no time zone of their own: events carry theirs.
        time_zone: None,
        writable: calendar["canEdit"].as_bool().unwrap_or(false),
    })
}

/// `#RRGGBB` (upper case) from Graph's `hexColor`, which is empty when the user never picked one.
fn hex_colour(value: &str) -> Option<String> {
    let digits = value.trim().strip_prefix('#')?;
    (digits.len() == 6 && digits.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("#{}", digits.to_ascii_uppercase()))
}

/// Graph's `calendarColor` names, as Outlook on the web paints them. `auto` means Outlook
/// chooses, so there is nothing to show.
fn named_colour(name: &str) -> Option<&'static str> {
    Some(match name {
        "lightBlue" => "#A6D1F5",
        "lightGreen" => "#87D28E",
        "lightOrange" => "#FCAB73",
        "lightGray" => "#C0C0C0",
        "lightYellow" => "#F4D07A",
        "lightTeal" => "#79DCD9",
        "lightPink" => "#EE9ECB",
        "lightBrown" => "#CBA287",
        "lightRed" => "#F09E9E",
        _ => return None,
    })
}

/// One event (an instance, from calendarView) as a VCALENDAR holding one VEVENT whose UID
/// is the Graph id (the id the gateway later passes back to `put` and `delete`). Times are
/// UTC: the connector asks Graph for them with `Prefer: outlook.timezone="UTC"`, and a time
/// Graph still gives in a zone of its own (a Windows name) is converted.
pub fn calendar_object(event: &Value, now: DateTime<Utc>) -> Result<CalendarObject, String> {
    let id = event["id"].as_str().filter(|id| !id.is_empty()).ok_or("an event without an id")?;
    let all_day = event["isAllDay"].as_bool().unwrap_or(false);
    let start = graph_time(&event["start"]).map_err(|e| format!("event start: {e}"))?;
    let end = graph_time(&event["end"]).map_err(|e| format!("event end: {e}"))?;

    let mut w = Writer::default();
    w.raw("BEGIN", "VCALENDAR");
    w.raw("VERSION", "2.0");
    w.raw("PRODID", "-//Concierge//Outlook connector//EN");
    w.raw("BEGIN", "VEVENT");
    w.text("UID", id);
    let stamp = event["lastModifiedDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    w.raw("DTSTAMP", &utc_stamp(stamp));
    if all_day {
        // All-day events are whole dates, midnight to midnight: the dates are what count.
        // The dates as the event's own zone has them: converting midnight to UTC could move
        // the day.
        let first = start.local.date();
        let after = if end.local.date() > first { end.local.date() } else { first.succ_opt().unwrap_or(first) };
        w.raw("DTSTART;VALUE=DATE", &first.format("%Y%m%d").to_string());
        w.raw("DTEND;VALUE=DATE", &after.format("%Y%m%d").to_string());
    } else {
        w.raw("DTSTART", &utc_stamp(start.utc));
        w.raw("DTEND", &utc_stamp(end.utc));
    }
    if let Some(subject) = event["subject"].as_str().filter(|s| !s.is_empty()) {
        w.text("SUMMARY", subject);
    }
    if let Some(place) = event["location"]["displayName"].as_str().filter(|s| !s.is_empty()) {
        w.text("LOCATION", place);
    }
    // An HTML body would need converting; Graph's text bodies go through as they are.
    if event["body"]["contentType"].as_str() == Some("text")
        && let Some(text) = event["body"]["content"].as_str().filter(|s| !s.trim().is_empty())
    {
        w.text("DESCRIPTION", text);
    }
    if let Some(organizer) = person(&event["organizer"]["emailAddress"]) {
        w.raw(&organizer.0.map_or("ORGANIZER".into(), |cn| format!("ORGANIZER;CN={cn}")), &organizer.1);
    }
    for attendee in event["attendees"].as_array().into_iter().flatten() {
        if let Some((cn, mailto)) = person(&attendee["emailAddress"]) {
            let role = match attendee["type"].as_str() {
                Some("optional") => "OPT-PARTICIPANT",
                Some("resource") => "NON-PARTICIPANT",
                _ => "REQ-PARTICIPANT",
            };
            let name = cn.map_or(String::new(), |cn| format!(";CN={cn}"));
            w.raw(&format!("ATTENDEE;ROLE={role}{name}"), &mailto);
        }
    }
    // Free time (and, by choice, "working elsewhere") does not block the slot for bookings.
    let transparent = matches!(event["showAs"].as_str(), Some("free" | "workingElsewhere"));
    w.raw("TRANSP", if transparent { "TRANSPARENT" } else { "OPAQUE" });
    if event["isCancelled"].as_bool() == Some(true) {
        w.raw("STATUS", "CANCELLED");
    }
    w.raw("END", "VEVENT");
    w.raw("END", "VCALENDAR");

    let etag = event["@odata.etag"].as_str().or_else(|| event["changeKey"].as_str()).map(str::to_owned);
    Ok(CalendarObject { id: id.to_owned(), etag, ical: w.finish() })
}

/// `(CN param value, mailto URI)` of a Graph `emailAddress`, when it has an address.
fn person(email: &Value) -> Option<(Option<String>, String)> {
    let address = email["address"].as_str().map(str::trim).filter(|a| a.contains('@'))?;
    let name = email["name"].as_str().map(str::trim).filter(|n| !n.is_empty()).map(ical::param_value);
    Some((name, format!("mailto:{address}")))
}

/// A Graph `dateTimeTimeZone`: the wall-clock reading as Graph gave it, and the instant.
struct GraphTime {
    local: NaiveDateTime,
    utc: DateTime<Utc>,
}

/// Reads a Graph `dateTimeTimeZone` (`2024-05-01T09:00:00.0000000`, zone "UTC"). A zone other
/// than UTC (Graph writes Windows names, `Iran Standard Time`) is resolved with the SDK's
/// zone table; one it does not know is an error rather than a guess.
fn graph_time(value: &Value) -> Result<GraphTime, String> {
    let text = value["dateTime"].as_str().ok_or("no dateTime")?;
    let text = text.trim().trim_end_matches('Z');
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| format!("unreadable dateTime {text:?}"))?;
    let utc = match value["timeZone"].as_str().unwrap_or("UTC") {
        "UTC" | "Etc/UTC" | "Coordinated Universal Time" => local.and_utc(),
        other => local_to_utc(resolve_tzid(other).ok_or_else(|| format!("unknown time zone {other:?}"))?, local),
    };
    Ok(GraphTime { local, utc })
}

/// When a VEVENT starts or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    At(DateTime<Utc>),
    /// All day (VALUE=DATE).
    Day(NaiveDate),
}

/// Someone invited to an event the gateway writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attendee {
    pub address: String,
    pub name: Option<String>,
    /// Graph's attendee type: required, optional or resource.
    pub kind: &'static str,
}

/// The VEVENT the gateway writes (a booked appointment), read back into parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub uid: String,
    pub start: When,
    pub end: When,
    pub summary: String,
    pub description: String,
    pub location: String,
    pub attendees: Vec<Attendee>,
}

/// Reads the first VEVENT of `ical`. The ORGANIZER is not sent on: Graph makes the account's
/// owner the organiser of what it creates.
pub fn draft(ical_text: &str) -> Result<Draft, String> {
    let props = ical::first_event(ical_text).ok_or("no VEVENT")?;
    let find = |name: &str| props.iter().find(|p| p.name == name);
    // TEXT values come unescaped from the reader.
    let text = |name: &str| find(name).map(|p| p.value.clone()).unwrap_or_default();
    let uid = text("UID");
    let start = when(find("DTSTART").ok_or("no DTSTART")?)?;
    let end = match (find("DTEND"), start) {
        (Some(p), _) => when(p)?,
        (None, When::Day(day)) => When::Day(day.succ_opt().unwrap_or(day)),
        (None, at) => at,
    };
    if matches!((start, end), (When::At(_), When::Day(_)) | (When::Day(_), When::At(_))) {
        return Err("DTSTART and DTEND must both be dates or both be times".into());
    }
    let attendees = props
        .iter()
        .filter(|p| p.name == "ATTENDEE")
        .filter_map(|p| {
            let address = p.value.trim();
            let address = address.get(..7).filter(|s| s.eq_ignore_ascii_case("mailto:")).map(|_| &address[7..])?;
            let kind = match p.param("ROLE") {
                Some(r) if r.eq_ignore_ascii_case("OPT-PARTICIPANT") => "optional",
                Some(r) if r.eq_ignore_ascii_case("NON-PARTICIPANT") => "resource",
                _ => "required",
            };
            Some(Attendee { address: address.to_owned(), name: p.param("CN").map(str::to_owned), kind })
        })
        .collect();
    Ok(Draft { uid, start, end, summary: text("SUMMARY"), description: text("DESCRIPTION"), location: text("LOCATION"), attendees })
}

/// DTSTART/DTEND: `YYYYMMDDTHHMMSSZ` or a date (`VALUE=DATE`, `YYYYMMDD`). The gateway
/// writes UTC only, so a local time or a TZID is refused rather than guessed at.
fn when(prop: &ical::Property) -> Result<When, String> {
    let value = prop.value.trim();
    if prop.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.len() == 8 {
        return NaiveDate::parse_from_str(value, "%Y%m%d").map(When::Day).map_err(|_| format!("{}: not a date: {value:?}", prop.name));
    }
    let utc = value.strip_suffix('Z').ok_or_else(|| format!("{}: only UTC times are supported: {value:?}", prop.name))?;
    NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
        .map(|t| When::At(t.and_utc()))
        .map_err(|_| format!("{}: not a date-time: {value:?}", prop.name))
}

/// The Graph event body for a draft: POST (with `transactionId`, Graph's idempotency key)
/// or PATCH (without).
pub fn graph_event(draft: &Draft, transaction_id: Option<&str>) -> Value {
    let time = |w: When| {
        let t = match w {
            When::At(t) => t.naive_utc(),
            When::Day(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default(),
        };
        json!({ "dateTime": t.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC" })
    };
    let attendees: Vec<Value> = draft
        .attendees
        .iter()
        .map(|a| {
            let mut email = json!({ "address": a.address });
            if let Some(name) = &a.name {
                email["name"] = json!(name);
            }
            json!({ "emailAddress": email, "type": a.kind })
        })
        .collect();
    let mut body = json!({
        "subject": draft.summary,
        "body": { "contentType": "text", "content": draft.description },
        "start": time(draft.start),
        "end": time(draft.end),
        "isAllDay": matches!(draft.start, When::Day(_)),
        "location": { "displayName": draft.location },
        "attendees": attendees,
    });
    if let Some(id) = transaction_id {
        body["transactionId"] = json!(id);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    // The content lines as written, folds joined (values still escaped).
    fn unfold(text: &str) -> Vec<String> {
        text.replace("\r\n ", "").split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn calendars_take_the_hex_colour_or_a_named_one() {
        let hex =
            remote_calendar(&json!({"id": "c1", "name": "Work", "hexColor": "#1f6fb2", "color": "lightRed", "canEdit": true})).unwrap();
        assert_eq!(
            hex,
            RemoteCalendar { id: "c1".into(), name: "Work".into(), colour: Some("#1F6FB2".into()), time_zone: None, writable: true }
        );
        let named =
            remote_calendar(&json!({"id": "c2", "name": "Birthdays", "hexColor": "", "color": "lightBlue", "canEdit": false})).unwrap();
        assert_eq!((named.colour.as_deref(), named.writable), (Some("#A6D1F5"), false));
        assert_eq!(remote_calendar(&json!({"id": "c3", "color": "auto"})).unwrap().colour, None);
        assert_eq!(remote_calendar(&json!({"name": "no id"})), None);
        assert_eq!(remote_calendar(&json!("not an object")), None);
    }

    #[test]
    fn an_event_becomes_one_utc_vevent_with_escaped_text() {
        let event = json!({
            "id": "AAMk=1", "@odata.etag": "W/\"abc\"", "subject": "Review, part 1; go",
            "start": {"dateTime": "2026-03-02T09:30:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-02T10:00:00.0000000", "timeZone": "UTC"},
            "location": {"displayName": "Room 4\\B"}, "showAs": "free", "isCancelled": true,
            "lastModifiedDateTime": "2026-03-01T08:00:00Z",
            "organizer": {"emailAddress": {"name": "Doe, Jane", "address": "jane@example.com"}},
        });
        let object = calendar_object(&event, at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!((object.id.as_str(), object.etag.as_deref()), ("AAMk=1", Some("W/\"abc\"")));
        let lines = unfold(&object.ical);
        for expected in [
            "BEGIN:VCALENDAR",
            "UID:AAMk=1",
            "DTSTAMP:20260301T080000Z",
            "DTSTART:20260302T093000Z",
            "DTEND:20260302T100000Z",
            "SUMMARY:Review\\, part 1\\; go",
            "LOCATION:Room 4\\\\B",
            "ORGANIZER;CN=\"Doe, Jane\":mailto:jane@example.com",
            "TRANSP:TRANSPARENT",
            "STATUS:CANCELLED",
            "END:VCALENDAR",
        ] {
            assert!(lines.iter().any(|l| l == expected), "{expected} missing from {lines:?}");
        }
        assert!(object.ical.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn an_all_day_event_is_dates() {
        let event = json!({
            "id": "d", "isAllDay": true, "showAs": "busy",
            "start": {"dateTime": "2026-07-04T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-07-06T00:00:00.0000000", "timeZone": "UTC"},
        });
        let lines = unfold(&calendar_object(&event, Utc::now()).unwrap().ical);
        assert!(lines.contains(&"DTSTART;VALUE=DATE:20260704".to_owned()), "{lines:?}");
        assert!(lines.contains(&"DTEND;VALUE=DATE:20260706".to_owned()), "{lines:?}");
        assert!(lines.contains(&"TRANSP:OPAQUE".to_owned()));
    }

    #[test]
    fn times_graph_gives_in_a_windows_zone_are_converted_and_all_day_dates_kept() {
        let meeting = json!({
            "id": "t", "showAs": "busy",
            "start": {"dateTime": "2026-07-06T10:00:00.0000000", "timeZone": "Iran Standard Time"},
            "end": {"dateTime": "2026-07-06T11:30:00.0000000", "timeZone": "Iran Standard Time"},
        });
        let lines = unfold(&calendar_object(&meeting, Utc::now()).unwrap().ical);
        assert!(lines.contains(&"DTSTART:20260706T063000Z".to_owned()), "{lines:?}");
        assert!(lines.contains(&"DTEND:20260706T080000Z".to_owned()), "{lines:?}");

        let holiday = json!({
            "id": "h", "isAllDay": true,
            "start": {"dateTime": "2026-07-04T00:00:00.0000000", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-07-05T00:00:00.0000000", "timeZone": "W. Europe Standard Time"},
        });
        let lines = unfold(&calendar_object(&holiday, Utc::now()).unwrap().ical);
        assert!(lines.contains(&"DTSTART;VALUE=DATE:20260704".to_owned()), "{lines:?}");
        assert!(lines.contains(&"DTEND;VALUE=DATE:20260705".to_owned()), "{lines:?}");
    }

    #[test]
    fn hostile_events_are_errors_not_panics() {
        for event in [
            json!({}),
            json!({"id": "x"}),
            json!({"id": "x", "start": {"dateTime": "yesterday"}, "end": {"dateTime": 5}}),
            json!({"id": "x", "start": {"dateTime": "2026-01-01T00:00:00", "timeZone": "Mars Standard Time"},
                   "end": {"dateTime": "2026-01-01T01:00:00", "timeZone": "UTC"}}),
            json!([1, 2]),
        ] {
            assert!(calendar_object(&event, Utc::now()).is_err(), "{event}");
        }
    }

    #[test]
    fn the_gateways_vevent_becomes_a_graph_event() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:booking-42@concierge\r\nDTSTART:20260410T140000Z\r\nDTEND:20260410T143000Z\r\nSUMMARY:Fitting\\, second visit\r\nDESCRIPTION:Bring the receipt\\nand the shoes\r\nLOCATION:Shop\\; back room\r\nORGANIZER;CN=Shop:mailto:shop@example.com\r\nATTENDEE;CN=\"Roe, Richard\";ROLE=REQ-PARTICIPANT:mailto:richard@example.com\r\nATTENDEE;ROLE=OPT-PARTICIPANT:MAILTO:ann@exa\r\n mple.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let d = draft(text).unwrap();
        assert_eq!(d.uid, "booking-42@concierge");
        assert_eq!(d.summary, "Fitting, second visit");
        assert_eq!(d.description, "Bring the receipt\nand the shoes");
        assert_eq!(d.location, "Shop; back room");
        let body = graph_event(&d, Some("booking-42@concierge"));
        assert_eq!(
            body,
            json!({
                "subject": "Fitting, second visit",
                "body": {"contentType": "text", "content": "Bring the receipt\nand the shoes"},
                "start": {"dateTime": "2026-04-10T14:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-04-10T14:30:00", "timeZone": "UTC"},
                "isAllDay": false,
                "location": {"displayName": "Shop; back room"},
                "attendees": [
                    {"emailAddress": {"address": "richard@example.com", "name": "Roe, Richard"}, "type": "required"},
                    {"emailAddress": {"address": "ann@example.com"}, "type": "optional"},
                ],
                "transactionId": "booking-42@concierge",
            })
        );
        assert!(graph_event(&d, None).get("transactionId").is_none());
    }

    #[test]
    fn drafts_refuse_what_they_cannot_send() {
        assert!(draft("BEGIN:VCALENDAR\r\nEND:VCALENDAR").is_err());
        assert!(draft("BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT").is_err());
        assert!(draft("BEGIN:VEVENT\r\nDTSTART;TZID=Europe/Paris:20260101T100000\r\nEND:VEVENT").is_err());
        assert!(draft("BEGIN:VEVENT\r\nDTSTART:20260101T100000Z\r\nDTEND;VALUE=DATE:20260102\r\nEND:VEVENT").is_err());
        let day = draft("BEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20260101\r\nEND:VEVENT").unwrap();
        assert_eq!(day.end, When::Day(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()));
        assert_eq!(graph_event(&day, None)["isAllDay"], true);
    }
}
