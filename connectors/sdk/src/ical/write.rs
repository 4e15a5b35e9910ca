//! Writing iCalendar (RFC 5545) text, for connectors that convert a provider's events to
//! the iCalendar objects the gateway reads, and the VCALENDAR the gateway writes for an
//! appointment ([`appointment`]): content lines with TEXT escaping and 75-octet folding.
//! Pure code, no I/O.

use chrono::{DateTime, Utc};

/// Builds an iCalendar document one content line at a time, CRLF-terminated and folded.
#[derive(Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// A line whose value is already in its final form (a date, a keyword, a URI).
    pub fn raw(&mut self, name: &str, value: &str) {
        fold_into(&mut self.out, &format!("{name}:{value}"));
    }

    /// A TEXT property (SUMMARY, LOCATION, DESCRIPTION): the value is escaped.
    pub fn text(&mut self, name: &str, value: &str) {
        self.raw(name, &escape_text(value));
    }

    /// The document written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// An appointment to write to a user's calendar, as [`appointment`] renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentIcal {
    /// Stable across updates of the same appointment.
    pub uid: String,
    /// Bumped on every update (RFC 5546), so clients take the newer copy.
    pub sequence: u32,
    /// When this version was written (DTSTAMP).
    pub stamp: DateTime<Utc>,
    /// DTSTART.
    pub start: DateTime<Utc>,
    /// DTEND.
    pub end: DateTime<Utc>,
    /// SUMMARY.
    pub summary: String,
    /// DESCRIPTION, when there is one.
    pub description: Option<String>,
    /// LOCATION, when there is one.
    pub location: Option<String>,
    /// ORGANIZER.
    pub organizer: Party,
    /// ATTENDEEs, each a required participant whose answer is asked for.
    pub attendees: Vec<Party>,
}

/// An organizer or attendee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// The address, written as a `mailto:` URI.
    pub email: String,
    /// Shown as CN.
    pub name: Option<String>,
}

/// Renders the VCALENDAR for an appointment written to a user's calendar: one VEVENT in
/// UTC, text escaped and lines folded at 75 octets as RFC 5545 §3.1 and §3.3.11 require.
pub fn appointment(a: &AppointmentIcal) -> String {
    let mut w = Writer::default();
    w.raw("BEGIN", "VCALENDAR");
    w.raw("VERSION", "2.0");
    w.raw("PRODID", "-//Concierge//Appointments//EN");
    w.raw("CALSCALE", "GREGORIAN");
    w.raw("BEGIN", "VEVENT");
    w.text("UID", &a.uid);
    w.raw("DTSTAMP", &utc_stamp(a.stamp));
    w.raw("SEQUENCE", &a.sequence.to_string());
    w.raw("DTSTART", &utc_stamp(a.start));
    w.raw("DTEND", &utc_stamp(a.end));
    w.text("SUMMARY", &a.summary);
    if let Some(description) = &a.description {
        w.text("DESCRIPTION", description);
    }
    if let Some(location) = &a.location {
        w.text("LOCATION", location);
    }
    w.raw(&format!("ORGANIZER{}", cn_param(&a.organizer)), &format!("mailto:{}", mailto(&a.organizer.email)));
    for attendee in &a.attendees {
        w.raw(
            &format!("ATTENDEE{};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE", cn_param(attendee)),
            &format!("mailto:{}", mailto(&attendee.email)),
        );
    }
    w.raw("STATUS", "CONFIRMED");
    w.raw("END", "VEVENT");
    w.raw("END", "VCALENDAR");
    w.finish()
}

/// A UTC DATE-TIME value: `20260310T090000Z`.
pub fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A CN parameter (`;CN=…`, quoted when it must be), or nothing.
fn cn_param(party: &Party) -> String {
    match party.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!(";CN={}", param_value(name)),
        None => String::new(),
    }
}

// An address goes into a URI: anything that could end the line or the value is dropped.
fn mailto(email: &str) -> String {
    email.trim().chars().filter(|c| !c.is_control() && !c.is_whitespace()).collect()
}

/// RFC 5545 3.3.11: backslash, semicolon and comma are escaped, line breaks become `\n`.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            // Other control characters are not allowed in TEXT.
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value (CN=…): quoted when it holds `:`, `;` or `,`. Parameter values have no
/// escapes, so double quotes and control characters are dropped.
pub fn param_value(value: &str) -> String {
    let clean: String = value.chars().filter(|c| *c != '"' && !c.is_control()).collect();
    if clean.contains([':', ';', ',']) { format!("\"{clean}\"") } else { clean }
}

/// Appends `line` folded to 75 octets per physical line (continuations start with a space,
/// which counts), never splitting a UTF-8 sequence, and ends it with CRLF.
fn fold_into(out: &mut String, line: &str) {
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += len;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_lines_fold_at_75_octets_without_splitting_a_character() {
        assert_eq!(escape_text("a,b;c\\d\r\ne\u{7}"), "a\\,b\\;c\\\\d\\ne");
        let mut w = Writer::default();
        w.text("SUMMARY", &"é".repeat(60));
        let text = w.finish();
        assert!(text.ends_with("\r\n"));
        for physical in text.trim_end().split("\r\n") {
            assert!(physical.len() <= 75, "{physical:?} is {} octets", physical.len());
        }
        let joined: String = text.trim_end().split("\r\n").enumerate().map(|(i, l)| if i == 0 { l } else { &l[1..] }).collect();
        assert_eq!(joined, format!("SUMMARY:{}", "é".repeat(60)));
        assert_eq!(param_value("Doe, Jane"), "\"Doe, Jane\"");
    }

    #[test]
    fn a_line_of_exactly_75_octets_is_not_folded() {
        let mut w = Writer::default();
        w.raw("X", &"a".repeat(73));
        assert_eq!(w.finish(), format!("X:{}\r\n", "a".repeat(73)));
    }

    #[test]
    fn a_parameter_value_is_quoted_only_when_it_must_be() {
        assert_eq!(param_value("Doe; \"Jane\""), "\"Doe; Jane\"");
        assert_eq!(param_value("Jane Doe"), "Jane Doe");
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("test instant")
    }

    fn appointment_fixture() -> AppointmentIcal {
        AppointmentIcal {
            uid: "appt-42@concierge".into(),
            sequence: 3,
            stamp: utc("2026-03-01T12:00:00Z"),
            start: utc("2026-03-10T09:00:00Z"),
            end: utc("2026-03-10T09:45:00Z"),
            summary: "Review, plan; decide \\ act\nthen lunch".into(),
            description: Some("Über die Straße: ".to_owned() + &"Größenänderung 老虎 ".repeat(12)),
            location: Some("Room 4, Building B; 2nd floor".into()),
            organizer: Party { email: "advisor@bank.example".into(), name: Some("Ada \"The\" Advisor".into()) },
            attendees: vec![
                Party { email: "client@example.com".into(), name: Some("Claire Client".into()) },
                Party { email: "observer@example.com".into(), name: None },
            ],
        }
    }

    #[test]
    fn appointment_escapes_text_and_folds_at_75_octets() {
        let text = appointment(&appointment_fixture());

        assert!(text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Concierge//Appointments//EN\r\n"));
        assert!(text.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        for physical in text.split("\r\n") {
            assert!(physical.len() <= 75, "{} octets: {physical:?}", physical.len());
        }
        assert!(!text.replace("\r\n", "").contains('\n'), "bare newline in output");
        let unfolded = text.replace("\r\n ", "");
        assert!(unfolded.contains("\r\nSUMMARY:Review\\, plan\\; decide \\\\ act\\nthen lunch\r\n"), "{unfolded}");
        assert!(unfolded.contains("\r\nLOCATION:Room 4\\, Building B\\; 2nd floor\r\n"));
        assert!(unfolded.contains("\r\nDTSTART:20260310T090000Z\r\nDTEND:20260310T094500Z\r\n"));
        assert!(unfolded.contains("\r\nDTSTAMP:20260301T120000Z\r\n"));
        assert!(unfolded.contains("\r\nSEQUENCE:3\r\n"));
        // A name is quoted only when it holds `:`, `;` or `,`.
        assert!(unfolded.contains("\r\nORGANIZER;CN=Ada The Advisor:mailto:advisor@bank.example\r\n"));
        assert!(
            unfolded.contains(
                "\r\nATTENDEE;CN=Claire Client;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:client@example.com\r\n"
            )
        );
        assert!(unfolded.contains("\r\nATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:observer@example.com\r\n"));
        assert!(unfolded.contains("\r\nSTATUS:CONFIRMED\r\n"));
        // The long description really was folded, and not inside a character.
        assert!(text.matches("\r\n ").count() >= 3, "{text}");
    }

    #[test]
    fn an_appointment_parses_back_to_the_same_start_end_summary_and_location() {
        let fixture = appointment_fixture();
        let object = crate::ical::parse_object(&appointment(&fixture)).expect("parses");

        assert_eq!(object.uid, fixture.uid);
        assert_eq!(object.summary.as_deref(), Some(fixture.summary.as_str()));
        assert_eq!(object.location, fixture.location);
        assert_eq!(object.series.start, crate::ical::When::Utc(fixture.start));
        assert_eq!(object.series.length.end_after(chrono_tz::Tz::UTC, fixture.start.naive_utc(), fixture.start), fixture.end);
        assert!(object.series.busy);
    }
}
