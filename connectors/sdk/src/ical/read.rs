//! Reading iCalendar (RFC 5545) text into components and properties: the one parser (the
//! `icalendar` crate's) that the gateway and every connector read with. Pure code, no I/O;
//! no input may panic.

use std::fmt;

/// A component (`VCALENDAR`, `VEVENT`, `VTIMEZONE`, `VALARM`…) with its properties and the
/// components nested in it, in the order the text gave them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Component {
    /// The name, in upper case.
    pub name: String,
    /// Its own properties (not those of nested components).
    pub properties: Vec<Property>,
    /// Nested components.
    pub components: Vec<Component>,
}

/// One content line: `NAME;PARAM=value:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The name, in upper case.
    pub name: String,
    /// Parameters with a value: names in upper case, values trimmed and unquoted.
    pub params: Vec<(String, String)>,
    /// The value as written, except that a TEXT value (SUMMARY, LOCATION, DESCRIPTION, UID…)
    /// is unescaped: `\,` is a comma, `\n` a line break.
    pub value: String,
}

/// Why text could not be read as iCalendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// The byte offset, in the unfolded text, where reading stopped.
    pub at: usize,
    /// The parser's name for what it expected there.
    pub code: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unreadable at byte {} ({})", self.at, self.code)
    }
}

impl std::error::Error for ReadError {}

impl Component {
    /// True when the component is named `name` (any case).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The first property named `name` (any case).
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.is(name))
    }

    /// The first property named `name`, trimmed, when it is not empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.property(name).map(|p| p.value.trim().to_owned()).filter(|s| !s.is_empty())
    }

    /// Nested components named `name`.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Component> + 'a {
        self.components.iter().filter(move |c| c.is(name))
    }

    /// This component or the first one nested in it (depth first) named `name`.
    pub fn find(&self, name: &str) -> Option<&Component> {
        if self.is(name) {
            return Some(self);
        }
        self.components.iter().find_map(|c| c.find(name))
    }
}

impl Property {
    /// True when the property is named `name` (any case).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The first parameter named `name` (any case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads `text` (folded or not, CRLF or LF) into its top-level components: usually one
/// VCALENDAR. Lines that are not content lines make the whole text unreadable.
pub fn parse(text: &str) -> Result<Vec<Component>, ReadError> {
    let unfolded = icalendar::parser::unfold(text);
    // The simple variant: the verbose one renders the input into its message.
    let roots = icalendar::parser::read_calendar_simple(&unfolded)
        .map_err(|e| ReadError { at: unfolded.len().saturating_sub(e.input.len()), code: format!("{:?}", e.code) })?;
    Ok(roots.iter().map(component).collect())
}

/// The properties of the first VEVENT in `text` (not those of components nested in it,
/// such as VALARM). `None` when the text is unreadable or holds no VEVENT.
pub fn first_event(text: &str) -> Option<Vec<Property>> {
    let roots = parse(text).ok()?;
    roots.iter().find_map(|c| c.find("VEVENT")).map(|event| event.properties.clone())
}

/// The TZID of the first VTIMEZONE in `text` (a CalDAV `calendar-timezone` value), when
/// it has a non-empty one.
pub fn first_tzid(text: &str) -> Option<String> {
    let roots = parse(text).ok()?;
    roots.iter().find_map(|c| c.find("VTIMEZONE")).and_then(|tz| tz.text("TZID"))
}

/// Whether `text` has a line `BEGIN:<name>`: a look that does not parse, for connectors
/// that pass objects on to the gateway (which parses them once, and counts the unreadable).
pub fn has_component(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        line.get(..6).is_some_and(|begin| begin.eq_ignore_ascii_case("BEGIN:")) && line[6..].trim().eq_ignore_ascii_case(name)
    })
}

fn component(c: &icalendar::parser::Component<'_>) -> Component {
    Component {
        name: c.name.as_str().trim().to_ascii_uppercase(),
        properties: c.properties.iter().map(property).collect(),
        components: c.components.iter().map(component).collect(),
    }
}

fn property(p: &icalendar::parser::Property<'_>) -> Property {
    let params = p
        .params
        .iter()
        .filter_map(|param| {
            let value = param.val.as_ref()?.as_str().trim().trim_matches('"');
            Some((param.key.as_str().trim().to_ascii_uppercase(), value.to_owned()))
        })
        .collect();
    Property { name: p.name.as_str().trim().to_ascii_uppercase(), params, value: p.val.as_str().to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ical::{Writer, escape_text};

    #[test]
    fn text_values_are_unescaped_and_quoted_parameters_may_hold_colons_and_semicolons() {
        let original = "Lunch; then, a walk\\run\r\nsecond line\nthird";
        let text = format!(
            "BEGIN:VEVENT\r\nSUMMARY:{}\r\nATTENDEE;CN=\"Doe; Jane: PhD\";ROLE=REQ-PARTICIPANT:mailto:jane@example.com\r\nEND:VEVENT\r\n",
            escape_text(original)
        );
        let props = first_event(&text).expect("an event");
        assert_eq!(props[0].value, "Lunch; then, a walk\\run\nsecond line\nthird");
        assert_eq!(props[1].name, "ATTENDEE");
        assert_eq!(props[1].param("cn"), Some("Doe; Jane: PhD"));
        assert_eq!(props[1].param("ROLE"), Some("REQ-PARTICIPANT"));
        assert_eq!(props[1].value, "mailto:jane@example.com");
    }

    #[test]
    fn folded_lines_are_read_whole() {
        let mut w = Writer::default();
        let summary = "é".repeat(100); // 200 octets
        w.raw("BEGIN", "VEVENT");
        w.text("SUMMARY", &summary);
        w.raw("END", "VEVENT");
        let props = first_event(&w.finish()).expect("an event");
        assert_eq!(props[0].value, summary);
    }

    #[test]
    fn the_first_event_skips_its_alarms() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:a\r\n  b\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let props = first_event(text).expect("an event");
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["UID", "SUMMARY"]);
        assert_eq!(props[1].value, "a b");
        assert_eq!(first_event("BEGIN:VCALENDAR\r\nEND:VCALENDAR"), None);
        assert_eq!(first_event(";;;\n:\n=\nBEGIN;X=\"unterminated:VEVENT"), None);
    }

    #[test]
    fn time_zones_come_from_the_first_vtimezone_and_odd_text_is_harmless() {
        let zone = "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID;X-A=b:America/New_York\nEND:VTIMEZONE\nEND:VCALENDAR\n";
        assert_eq!(first_tzid(zone).as_deref(), Some("America/New_York"));
        assert_eq!(first_tzid("TZID:Outside/Any\nBEGIN:VTIMEZONE\nTZIé\nTZID\n"), None);
        assert_eq!(first_tzid("BEGIN:VTIMEZONE\nTZID:\nEND:VTIMEZONE\n"), None);
    }

    #[test]
    fn events_are_told_from_tasks_without_parsing() {
        assert!(has_component("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "VEVENT"));
        assert!(has_component("  begin:vevent  \n", "VEVENT"));
        assert!(!has_component("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nEND:VTODO\r\nEND:VCALENDAR\r\n", "VEVENT"));
        assert!(!has_component("BEGIN:VEVENTS\nBEGIN:é", "VEVENT"));
    }

    #[test]
    fn unreadable_text_says_where() {
        let error = parse("BEGIN:VCALENDAR\r\nhello world\r\n").expect_err("unreadable");
        assert!(error.to_string().starts_with("unreadable at byte "), "{error}");
    }
}
