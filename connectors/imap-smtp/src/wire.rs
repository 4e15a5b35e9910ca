//! Pure mapping between IMAP wire values and Rust values: UID sets, mailbox names, search
//! dates, INTERNALDATE and response codes. No I/O, so it is tested on its own. (Checkpoints
//! and message ids are in `checkpoint`.)

use async_imap::imap_proto::ResponseCode;
use chrono::{DateTime, Days, NaiveDate, Utc};

/// Splits ascending, de-duplicated UIDs into IMAP sequence sets of at most `per_set` UIDs,
/// each written compactly (`1:500,502,510:512`), so a sync fetches in a few commands.
pub(crate) fn uid_sets(uids: &[u32], per_set: usize) -> Vec<String> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .chunks(per_set.max(1))
        .map(|chunk| {
            let mut out = String::new();
            let mut i = 0;
            while i < chunk.len() {
                let start = chunk[i];
                let mut end = start;
                while i + 1 < chunk.len() && chunk[i + 1] == end.wrapping_add(1) {
                    i += 1;
                    end = chunk[i];
                }
                if !out.is_empty() {
                    out.push(',');
                }
                if start == end {
                    out.push_str(&start.to_string());
                } else {
                    out.push_str(&format!("{start}:{end}"));
                }
                i += 1;
            }
            out
        })
        .collect()
}

/// A mailbox name as a quoted IMAP string, in modified UTF-7 (RFC 3501 §5.1.3) so names
/// like `Entwürfe` work. `None` when it holds a line break or NUL, which no IMAP string can.
pub(crate) fn quote_mailbox(name: &str) -> Option<String> {
    if name.contains(['\r', '\n', '\0']) {
        return None;
    }
    quote_raw(&modified_utf7(name))
}

/// A mailbox name exactly as the server spelled it (in a LIST response: already modified
/// UTF-7), as a quoted IMAP string. `None` when it holds a line break or NUL.
pub(crate) fn quote_raw(wire_name: &str) -> Option<String> {
    if wire_name.contains(['\r', '\n', '\0']) {
        return None;
    }
    Some(format!("\"{}\"", wire_name.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// The inverse of the encoding [`quote_mailbox`] applies: a LIST name in modified UTF-7 as
/// people read it (`Entw&APw-rfe` → `Entwürfe`). `None` when it is not valid modified UTF-7.
pub(crate) fn decode_modified_utf7(wire_name: &str) -> Option<String> {
    use base64::Engine as _;
    let engine = base64::engine::GeneralPurpose::new(&base64::alphabet::IMAP_MUTF7, base64::engine::general_purpose::NO_PAD);
    let mut out = String::with_capacity(wire_name.len());
    let mut rest = wire_name;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find('-')?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = engine.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn modified_utf7(name: &str) -> String {
    use base64::Engine as _;
    let engine = base64::engine::GeneralPurpose::new(&base64::alphabet::IMAP_MUTF7, base64::engine::general_purpose::NO_PAD);
    let mut out = String::with_capacity(name.len());
    let mut wide: Vec<u8> = Vec::new();
    let flush = |wide: &mut Vec<u8>, out: &mut String| {
        if !wide.is_empty() {
            out.push('&');
            out.push_str(&engine.encode(&wide));
            out.push('-');
            wide.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut wide, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                wide.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut wide, &mut out);
    out
}

/// An IMAP `date` (`7-Jul-2024`) for SEARCH SINCE/BEFORE. Month names are English by
/// protocol, whatever the locale.
pub(crate) fn imap_date(date: NaiveDate) -> String {
    date.format("%-d-%b-%Y").to_string()
}

/// SEARCH SINCE compares calendar dates in the server's time zone, not instants. These
/// bounds split the mailbox so that only a narrow band needs its INTERNALDATE checked:
/// messages dated on or after `sure` are after `since` in every time zone (±14 h), and
/// those dated before `maybe` are before it in every time zone.
pub(crate) struct DateBand {
    pub maybe: NaiveDate,
    pub sure: NaiveDate,
}

pub(crate) fn date_band(since: DateTime<Utc>) -> DateBand {
    // Clamped to years IMAP dates can spell (4 digits), so an odd `since` cannot panic or
    // make the server answer BAD.
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    let latest = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    let day = since.date_naive().clamp(earliest, latest);
    DateBand {
        maybe: day.checked_sub_days(Days::new(1)).unwrap_or(day).max(earliest),
        sure: day.checked_add_days(Days::new(2)).unwrap_or(day).min(latest),
    }
}

/// Parses an IMAP INTERNALDATE (`17-Jul-1996 02:44:25 -0700`; the day may be space-padded).
pub(crate) fn parse_internal_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z").ok().map(|d| d.with_timezone(&Utc))
}

/// A response's code (`AUTHENTICATIONFAILED`) and its human text, from the text that follows
/// `OK`/`NO`/`BAD`/`BYE`. The parser in use knows only RFC 3501's codes and leaves newer
/// ones (RFC 5530: `[UNAVAILABLE]`, `[LIMIT]`, …) at the start of the text, so both come here.
pub(crate) fn split_response_code(text: &str) -> (Option<String>, String) {
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        let code = rest[..end].split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let human = rest[end + 1..].trim().to_owned();
        return ((!code.is_empty()).then_some(code), human);
    }
    (None, trimmed.trim_end().to_owned())
}

/// Server text made safe to show: one line, printable, bounded. It comes from the server, so
/// it can carry neither our password nor mail content, but it can be long or odd.
pub(crate) fn tidy(text: &str) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.trim().to_owned()
}

/// The names of the codes the parser knows; unknown ones stay in the text, where
/// `ImapFailure::refused` finds them.
pub(crate) fn code_name(code: Option<&ResponseCode<'_>>) -> Option<String> {
    let name = match code? {
        ResponseCode::Alert => "ALERT",
        ResponseCode::Parse => "PARSE",
        ResponseCode::TryCreate => "TRYCREATE",
        ResponseCode::ReadOnly => "READ-ONLY",
        ResponseCode::ReadWrite => "READ-WRITE",
        _ => return None,
    };
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn uid_sets_are_compact_and_bounded() {
        assert_eq!(uid_sets(&[1, 2, 3, 5, 7, 8, 9], 100), ["1:3,5,7:9"]);
        assert_eq!(uid_sets(&[9, 1, 2, 2], 100), ["1:2,9"]);
        assert_eq!(uid_sets(&(1..=1200).collect::<Vec<_>>(), 500), ["1:500", "501:1000", "1001:1200"]);
        assert_eq!(uid_sets(&[u32::MAX - 1, u32::MAX], 10), [format!("{}:{}", u32::MAX - 1, u32::MAX)]);
        assert!(uid_sets(&[], 10).is_empty());
    }

    #[test]
    fn mailbox_names_are_quoted_in_modified_utf7() {
        assert_eq!(quote_mailbox("INBOX").as_deref(), Some("\"INBOX\""));
        assert_eq!(quote_mailbox("Entwürfe").as_deref(), Some("\"Entw&APw-rfe\""));
        assert_eq!(quote_mailbox("日本語").as_deref(), Some("\"&ZeVnLIqe-\""));
        assert_eq!(quote_mailbox("A&B \"q\"").as_deref(), Some(r#""A&-B \"q\"""#));
        assert_eq!(quote_mailbox("bad\r\nname"), None);
    }

    #[test]
    fn list_names_decode_from_modified_utf7_and_back() {
        for name in ["INBOX", "Entwürfe", "日本語", "A&B", "[Gmail]/Sent Mail", "Éléments envoyés"] {
            let quoted = quote_mailbox(name).unwrap();
            let wire = &quoted[1..quoted.len() - 1];
            assert_eq!(decode_modified_utf7(wire).as_deref(), Some(name), "{wire}");
        }
        assert_eq!(decode_modified_utf7("Messages envoy&AOk-s").as_deref(), Some("Messages envoyés"));
        assert_eq!(decode_modified_utf7("broken &AOk"), None);
        assert_eq!(decode_modified_utf7("odd &AA-"), None);
    }

    #[test]
    fn raw_names_are_quoted_as_they_are() {
        assert_eq!(quote_raw("Entw&APw-rfe").as_deref(), Some("\"Entw&APw-rfe\""));
        assert_eq!(quote_raw(r#"a "b" \ c"#).as_deref(), Some(r#""a \"b\" \\ c""#));
        assert_eq!(quote_raw("bad\nname"), None);
    }

    #[test]
    fn search_dates_are_english_and_unpadded() {
        assert_eq!(imap_date(NaiveDate::from_ymd_opt(2024, 7, 7).unwrap()), "7-Jul-2024");
        let band = date_band(Utc.with_ymd_and_hms(2024, 3, 1, 13, 0, 0).unwrap());
        let extreme = date_band(DateTime::<Utc>::MIN_UTC);
        assert_eq!(imap_date(extreme.maybe), "1-Jan-1900");
        assert_eq!(imap_date(date_band(DateTime::<Utc>::MAX_UTC).sure), "31-Dec-9999");
        assert_eq!((imap_date(band.maybe), imap_date(band.sure)), ("29-Feb-2024".into(), "3-Mar-2024".into()));
    }

    #[test]
    fn internal_dates_parse_with_and_without_padding() {
        let want = Utc.with_ymd_and_hms(1996, 7, 17, 9, 44, 25).unwrap();
        assert_eq!(parse_internal_date("17-Jul-1996 02:44:25 -0700"), Some(want));
        assert_eq!(parse_internal_date(" 7-Jul-1996 09:44:25 +0000").map(|d| d.timestamp()), Some(want.timestamp() - 10 * 86400));
        assert_eq!(parse_internal_date("yesterday"), None);
    }

    #[test]
    fn response_codes_are_split_from_their_text() {
        assert_eq!(
            split_response_code("[AUTHENTICATIONFAILED] Authentication failed."),
            (Some("AUTHENTICATIONFAILED".into()), "Authentication failed.".into())
        );
        assert_eq!(split_response_code("[LIMIT 10] Too many"), (Some("LIMIT".into()), "Too many".into()));
        assert_eq!(split_response_code("Logged in"), (None, "Logged in".into()));
        assert_eq!(split_response_code("[unterminated"), (None, "[unterminated".into()));
    }

    #[test]
    fn tidy_text_is_one_bounded_line() {
        assert_eq!(tidy("a\r\nb"), "a  b");
        assert_eq!(tidy(&"x".repeat(300)).chars().count(), 201);
    }

    #[test]
    fn known_codes_get_their_names() {
        assert_eq!(code_name(Some(&ResponseCode::Alert)).as_deref(), Some("ALERT"));
        assert_eq!(code_name(Some(&ResponseCode::UidNext(3))), None);
        assert_eq!(code_name(None), None);
    }
}
