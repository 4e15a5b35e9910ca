//! Writing iCalendar (RFC 5545) text, for connectors that convert a provider's events to
//! the iCalendar objects the gateway reads (and for the gateway's own appointments): content
//! lines with TEXT escaping and 75-octet folding. Pure code, no I/O.

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

    pub fn finish(self) -> String {
        self.out
    }
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
}
