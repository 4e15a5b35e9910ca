//! iCalendar (RFC 5545) text as far as this connector needs it: reading the simple VEVENT
//! the gateway writes (writing is the SDK's [`Writer`]). Pure code, no I/O.

pub use concierge_connector_sdk::ical::{Writer, param_value};

/// One content line, parsed: the name in upper case, its parameters (names upper case,
/// values unquoted) and the raw value (TEXT still escaped: see [`unescape_text`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub params: Vec<(String, String)>,
    pub value: String,
}

impl Property {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Joins folded lines (a line starting with a space or a tab continues the previous one).
pub fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for physical in text.split('\n') {
        let physical = physical.strip_suffix('\r').unwrap_or(physical);
        match (physical.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ if physical.is_empty() => {}
            _ => lines.push(physical.to_owned()),
        }
    }
    lines
}

/// `NAME;P1=v;P2="a:b":value`. `None` for a line that is not a content line.
pub fn parse_line(line: &str) -> Option<Property> {
    // The name runs to the first ';' or ':'; parameter values may be quoted and hold both.
    let name_end = line.find([';', ':'])?;
    let name = line[..name_end].trim().to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    let mut rest = &line[name_end..];
    while let Some(after) = rest.strip_prefix(';') {
        let eq = after.find('=')?;
        let key = after[..eq].trim().to_ascii_uppercase();
        let mut value_part = &after[eq + 1..];
        let mut values = Vec::new();
        loop {
            if let Some(quoted) = value_part.strip_prefix('"') {
                let close = quoted.find('"')?;
                values.push(quoted[..close].to_owned());
                value_part = &quoted[close + 1..];
            } else {
                let end = value_part.find([',', ';', ':']).unwrap_or(value_part.len());
                values.push(value_part[..end].to_owned());
                value_part = &value_part[end..];
            }
            match value_part.strip_prefix(',') {
                Some(more) => value_part = more,
                None => break,
            }
        }
        params.push((key, values.join(",")));
        rest = value_part;
    }
    let value = rest.strip_prefix(':')?;
    Some(Property { name, params, value: value.to_owned() })
}

/// The inverse of [`escape_text`] (`\N` is a line break too; an unknown escape keeps the
/// character).
pub fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The properties of the first VEVENT of `text`, without those of components nested in it
/// (VALARM). `None` when there is no VEVENT.
pub fn first_event(text: &str) -> Option<Vec<Property>> {
    let mut props = Vec::new();
    let mut in_event = false;
    let mut nested = 0usize;
    for line in unfold(text) {
        let Some(prop) = parse_line(&line) else {
            continue;
        };
        let component = prop.value.trim().to_ascii_uppercase();
        match prop.name.as_str() {
            "BEGIN" if !in_event && component == "VEVENT" => in_event = true,
            "BEGIN" if in_event => nested += 1,
            "END" if in_event && nested > 0 => nested -= 1,
            "END" if in_event && component == "VEVENT" => return Some(props),
            _ if in_event && nested == 0 => props.push(prop),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_connector_sdk::ical::escape_text;

    #[test]
    fn text_is_escaped_and_unescaped_back() {
        let original = "Lunch; then, a walk\\run\r\nsecond line\nthird";
        let escaped = escape_text(original);
        assert_eq!(escaped, "Lunch\\; then\\, a walk\\\\run\\nsecond line\\nthird");
        assert_eq!(unescape_text(&escaped), "Lunch; then, a walk\\run\nsecond line\nthird");
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let mut w = Writer::default();
        let summary = "é".repeat(100); // 200 octets
        w.text("SUMMARY", &summary);
        let text = w.finish();
        for physical in text.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(physical.len() <= 75, "{} octets: {physical}", physical.len());
        }
        let lines = unfold(&text);
        assert_eq!(lines, vec![format!("SUMMARY:{summary}")]);
    }

    #[test]
    fn a_line_of_exactly_75_octets_is_not_folded() {
        let mut w = Writer::default();
        w.raw("X", &"a".repeat(73));
        assert_eq!(w.finish(), format!("X:{}\r\n", "a".repeat(73)));
    }

    #[test]
    fn quoted_parameters_may_hold_colons_and_semicolons() {
        let p = parse_line("ATTENDEE;CN=\"Doe; Jane: PhD\";ROLE=REQ-PARTICIPANT:mailto:jane@example.com").unwrap();
        assert_eq!(p.name, "ATTENDEE");
        assert_eq!(p.param("cn"), Some("Doe; Jane: PhD"));
        assert_eq!(p.param("ROLE"), Some("REQ-PARTICIPANT"));
        assert_eq!(p.value, "mailto:jane@example.com");
        assert_eq!(param_value("Doe; \"Jane\""), "\"Doe; Jane\"");
        assert_eq!(param_value("Jane Doe"), "Jane Doe");
    }

    #[test]
    fn the_first_event_skips_its_alarms_and_garbage() {
        let text = "BEGIN:VCALENDAR\r\nnot a line\r\nBEGIN:VEVENT\r\nUID:1\r\nSUMMARY:a\r\n  b\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let props = first_event(text).unwrap();
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["UID", "SUMMARY"]);
        assert_eq!(props[1].value, "a b");
        assert_eq!(first_event("BEGIN:VCALENDAR\r\nEND:VCALENDAR"), None);
        assert_eq!(first_event(";;;\n:\n=\nBEGIN;X=\"unterminated:VEVENT"), None);
    }
}
