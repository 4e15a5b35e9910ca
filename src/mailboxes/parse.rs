//! Parsing one raw RFC 5322 message, as an IMAP server hands it over (any shape, possibly
//! hostile), into the fields a mail activity event (`message.receive`, `message.send`)
//! records. Pure, no I/O.
//!
//! Everything here is best effort: [`parse`] always returns a [`ParsedMessage`] and says in
//! [`ParsedMessage::malformed`] what it could not read, because one broken message must never
//! stop a mailbox from syncing.
//!
//! What it produces is the activity store's own message type ([`crate::activity::message`]):
//! the parser fills it and knows nothing of how it is stored or shown.

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};

pub use crate::activity::message::{Address, Attachment, MAX_CONTENTS, MessageData as ParsedMessage, id_key, sanitise_html};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Most addresses kept per header, and most attachments listed: a hostile message with
/// 100,000 parts or recipients must not make an event of the same size.
pub const MAX_LISTED: usize = 1000;

/// HTML larger than this is cut before sanitising. The sanitised result is capped at
/// [`MAX_CONTENTS`] anyway, but removed `<style>`/`<script>` blocks can be large, so we read
/// somewhat more than we keep; beyond that a hostile 10 MB HTML part would only cost time.
pub const MAX_HTML_INPUT: usize = 4 * MAX_CONTENTS;

/// Width html2text wraps at. Wide on purpose: readers wrap text themselves, and hard line
/// breaks in the middle of sentences make previews and search snippets worse.
const HTML_TEXT_WIDTH: usize = 10_000;

/// Parses a raw message. Never panics, whatever the bytes.
pub fn parse(raw: &[u8]) -> ParsedMessage {
    // mail-parser is fuzzed and documented never to panic, and so are ammonia and html2text
    // in practice; but this runs on bytes from strangers inside the sync loop, where a panic
    // would stop the whole mailbox. If one ever slips through, record the message as
    // unreadable instead. (No shared state is touched, so unwinding cannot leave any broken.)
    panic::catch_unwind(AssertUnwindSafe(|| parse_message(raw))).unwrap_or_else(|_| unreadable(raw, "the parser failed on this message"))
}

fn parse_message(raw: &[u8]) -> ParsedMessage {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return unreadable(raw, "empty message");
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return unreadable(raw, "no header fields");
    };
    // mail-parser returns a message only when it has a part, but don't index on a promise.
    let Some(root) = message.parts.first() else {
        return unreadable(raw, "no header fields");
    };
    // mail-parser reads any `word: value` line as a header, so binary junk or a plain text
    // file "parses". A real message has at least one header it knows (From, Date,
    // Content-Type, Received, …); without one we do not trust any field we would extract.
    if root.headers.iter().all(|h| matches!(h.name, HeaderName::Other(_))) {
        return unreadable(raw, "not a MIME message");
    }

    let mut malformed = None;
    let body = extract_body(&message, root, raw, &mut malformed);
    let attachments = message
        .attachments
        .iter()
        .filter(|id| !body.recovered_parts.contains(id))
        .filter_map(|&id| message.part(id))
        .take(MAX_LISTED)
        .map(|part| attachment(part, raw))
        .collect();

    ParsedMessage {
        title: message.subject().map(|s| cap(s.trim()).to_owned()).unwrap_or_default(),
        contents: body.contents,
        html_source: body.html_source,
        from: addresses(&message, HeaderName::From),
        to: addresses(&message, HeaderName::To),
        cc: addresses(&message, HeaderName::Cc),
        bcc: addresses(&message, HeaderName::Bcc),
        reply_to: addresses(&message, HeaderName::ReplyTo),
        date: message.date().and_then(utc),
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        attachments,
        malformed,
    }
}

/// What we keep of a message nothing could be read from: its bytes as text, so a person can
/// still see what arrived.
fn unreadable(raw: &[u8], reason: &str) -> ParsedMessage {
    let head = &raw[..raw.len().min(MAX_CONTENTS)];
    ParsedMessage {
        title: String::new(),
        contents: cap(&String::from_utf8_lossy(head)).to_owned(),
        html_source: None,
        from: Vec::new(),
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        reply_to: Vec::new(),
        date: None,
        message_id: None,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        attachments: Vec::new(),
        malformed: Some(reason.to_owned()),
    }
}

struct Body {
    contents: String,
    html_source: Option<String>,
    /// Damaged text parts we read as body text, so they are not also listed as attachments.
    recovered_parts: Vec<u32>,
}

fn extract_body(message: &Message<'_>, root: &MessagePart<'_>, raw: &[u8], malformed: &mut Option<String>) -> Body {
    let mut recovered_parts = Vec::new();
    let mut text = String::new();

    if let Some(leftover) = text_after_unterminated_headers(root, raw) {
        *malformed = Some("no header/body separator".to_owned());
        push_text(&mut text, leftover.trim());
    } else if let Some(reason) = broken_structure(message, raw) {
        *malformed = Some(reason.to_owned());
    }

    let mut recovered_html = Vec::new();
    for (id, part) in message.parts.iter().enumerate() {
        let Ok(id) = u32::try_from(id) else { break };
        let in_text_body = message.text_body.contains(&id);
        let PartType::Text(decoded) = &part.body else {
            continue;
        };
        if !part.is_encoding_problem {
            if in_text_body {
                push_text(&mut text, decoded);
            }
            continue;
        }
        // mail-parser gives up on a part whose transfer encoding is broken and hands back its
        // still-encoded text, usually as an attachment; a text or HTML part without a file
        // name is still the body the sender wrote, so decode what can be decoded and keep it.
        let kind = unnamed_text_kind(part);
        if decoded.is_empty() || !(in_text_body || kind.is_some()) {
            continue;
        }
        if malformed.is_none() {
            *malformed = Some("undecodable body part (bad base64 or quoted-printable)".to_owned());
        }
        let salvaged = match salvage(part, raw) {
            Some(bytes) => Cow::Owned(decode_charset(part, &bytes)),
            None => Cow::Borrowed(decoded.as_ref()),
        };
        if kind == Some(TextKind::Html) {
            recovered_html.push(salvaged.into_owned());
        } else {
            push_text(&mut text, &salvaged);
        }
        recovered_parts.push(id);
    }

    let mut html_source = html_body(message, recovered_html);
    if let Some(source) = &mut html_source
        && let Some(cut) = too_deep_at(source)
    {
        source.truncate(cut);
        if malformed.is_none() {
            *malformed = Some("HTML nested too deeply; the rest was dropped".to_owned());
        }
    }
    let contents = match &html_source {
        // Only HTML (or a blank plain-text alternative): read the text out of the sanitised
        // HTML rather than the original, so nothing a sanitiser removes (scripts, styles)
        // leaks into the text either.
        Some(source) if text.trim().is_empty() => html_to_text(&sanitise_html(source)),
        _ => text,
    };
    Body { contents, html_source, recovered_parts }
}

/// The text left after the last header when the header section ran to the end of the message,
/// i.e. the sender forgot the blank line and mail-parser had no body to read.
fn text_after_unterminated_headers<'a>(root: &MessagePart<'_>, raw: &'a [u8]) -> Option<Cow<'a, str>> {
    // That is exactly when mail-parser marks the root with an empty body at the very end.
    let no_body =
        root.is_encoding_problem && root.offset_body as usize >= raw.len() && matches!(&root.body, PartType::Text(t) if t.is_empty());
    if !no_body {
        return None;
    }
    let last_header_end = root.headers.iter().map(|h| h.offset_end as usize).max()?;
    let rest = raw.get(last_header_end..)?;
    // A message may legitimately be headers only, with no blank line after them.
    if rest.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(String::from_utf8_lossy(&rest[..rest.len().min(MAX_CONTENTS)]))
}

/// Structural damage worth recording: a multipart whose boundary is missing or never closed.
fn broken_structure(message: &Message<'_>, raw: &[u8]) -> Option<&'static str> {
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        if !ct.ctype().eq_ignore_ascii_case("multipart") {
            continue;
        }
        let Some(boundary) = ct.attribute("boundary") else {
            return Some("multipart without a boundary");
        };
        let closing = [b"--", boundary.as_bytes(), b"--"].concat();
        // mail-parser ends a multipart just after its closing delimiter (or where its parent's
        // next delimiter starts), so searching back from there finds it in a few bytes even
        // when a 10 MB attachment follows.
        let end = (part.offset_end as usize).saturating_add(closing.len()).min(raw.len());
        let span = raw.get(part.offset_body as usize..end).unwrap_or_default();
        if !span.windows(closing.len()).rev().any(|w| w == closing.as_slice()) {
            return Some("multipart boundary never closed");
        }
    }
    None
}

#[derive(Clone, Copy, PartialEq)]
enum TextKind {
    Plain,
    Html,
}

/// Whether a part looks like a body rather than a file: text/plain (or no type at all, which
/// means text/plain) or text/html, without a file name.
fn unnamed_text_kind(part: &MessagePart<'_>) -> Option<TextKind> {
    if part.attachment_name().is_some() {
        return None;
    }
    let Some(ct) = part.content_type() else {
        return Some(TextKind::Plain);
    };
    if !ct.ctype().eq_ignore_ascii_case("text") {
        return None;
    }
    match ct.subtype() {
        None => Some(TextKind::Plain),
        Some(sub) if sub.eq_ignore_ascii_case("plain") => Some(TextKind::Plain),
        Some(sub) if sub.eq_ignore_ascii_case("html") => Some(TextKind::Html),
        Some(_) => None,
    }
}

/// The decoded bytes of a part whose transfer encoding mail-parser could not decode (it then
/// keeps the still-encoded text), decoded leniently; `None` when the part was not encoded.
fn salvage(part: &MessagePart<'_>, raw: &[u8]) -> Option<Vec<u8>> {
    let encoded = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    let encoding = part.content_transfer_encoding()?.trim();
    if encoding.eq_ignore_ascii_case("base64") {
        Some(lenient_base64(encoded))
    } else if encoding.eq_ignore_ascii_case("quoted-printable") {
        Some(lenient_quoted_printable(encoded))
    } else {
        None
    }
}

/// Base64 is line-based in mail, and damage (a line of junk, a transfer cut short, a missing
/// boundary) is usually whole lines: decode every clean line, skip the rest, and restart
/// after padding so a later run still lines up.
fn lenient_base64(encoded: &[u8]) -> Vec<u8> {
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    fn flush(run: &mut Vec<u8>, out: &mut Vec<u8>) {
        // One leftover character holds no whole byte.
        let usable = run.len() - usize::from(run.len() % 4 == 1);
        // Every byte is from the alphabet and the length is valid, so this cannot fail.
        let _ = ENGINE.decode_vec(&run[..usable], out);
        run.clear();
    }
    let mut out = Vec::with_capacity(encoded.len() / 4 * 3);
    let mut run = Vec::new();
    for line in encoded.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        let data_len = line.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
        let (data, padding) = line.split_at(data_len);
        if data.is_empty() || !data.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
            continue;
        }
        run.extend_from_slice(data);
        if !padding.is_empty() {
            flush(&mut run, &mut out);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Quoted-printable where `=XX` decodes, `=` at a line end joins lines, and anything else
/// (a stray `=`, bad hex) is kept as written.
fn lenient_quoted_printable(encoded: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while let Some(&b) = encoded.get(i) {
        if b == b'=' {
            match (encoded.get(i + 1), encoded.get(i + 2)) {
                (Some(b'\n'), _) => {
                    i += 2;
                    continue;
                }
                (Some(b'\r'), Some(b'\n')) => {
                    i += 3;
                    continue;
                }
                (Some(&h), Some(&l)) => {
                    if let (Some(h), Some(l)) = (hex(h), hex(l)) {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn decode_charset(part: &MessagePart<'_>, bytes: &[u8]) -> String {
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    match charset.and_then(|c| charset_decoder(c.as_bytes())) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// All HTML body parts (and damaged ones we recovered), joined; `None` when there is none.
/// mail-parser also lists a plain-text alternative among the HTML bodies: that is not HTML.
fn html_body(message: &Message<'_>, recovered: Vec<String>) -> Option<String> {
    let parts = message.html_body.iter().filter_map(|&id| match &message.part(id)?.body {
        PartType::Html(source) => Some(source.as_ref()),
        _ => None,
    });
    let mut html: Option<String> = None;
    for source in parts.chain(recovered.iter().map(String::as_str)) {
        let joined = html.get_or_insert_with(String::new);
        if joined.len() >= MAX_HTML_INPUT {
            break;
        }
        if !joined.is_empty() {
            joined.push('\n');
        }
        let room = MAX_HTML_INPUT - joined.len();
        joined.push_str(&source[..source.floor_char_boundary(room)]);
    }
    html
}

/// Deepest element nesting handed to the HTML parser. html5ever (under both ammonia and
/// html2text) rescans its stack of open elements for many start tags, so its time grows with
/// depth × tags: 100,000 nested `<div>`s (500 KB) took 50 s, nested lists over 3 minutes.
/// Real mail nests a few dozen deep; long quoted reply chains a few hundred.
const MAX_HTML_DEPTH: usize = 1_000;

/// Where `html` first nests deeper than [`MAX_HTML_DEPTH`], if it does. A rough tokenizer
/// that only ever errs towards deeper than html5ever will build: it skips what html5ever
/// skips (comments, raw-text elements), does not count elements that never stay open
/// (void elements, and those whose end tag is optional and that close each other, such as
/// `p`, `li`, `td`, which need a counted parent like `ul` or `table` to nest), and lets an
/// end tag close only an element it has open.
fn too_deep_at(html: &str) -> Option<usize> {
    const VOID: &[&str] = &[
        "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input", "keygen", "link", "meta",
        "param", "source", "track", "wbr",
    ];
    const OPTIONAL_END: &[&str] = &[
        "body", "caption", "colgroup", "dd", "dt", "head", "html", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc", "tbody", "td",
        "tfoot", "th", "thead", "tr",
    ];
    // Their content is text to html5ever until the matching end tag.
    const RAW_TEXT: &[&str] = &["iframe", "noembed", "noframes", "plaintext", "script", "style", "textarea", "title", "xmp"];
    let is = |list: &[&str], name: &[u8]| list.iter().any(|t| name.eq_ignore_ascii_case(t.as_bytes()));

    let bytes = html.as_bytes();
    let mut open: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while let Some(found) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'<')) {
        let start = i + found;
        let after = &bytes[start + 1..];
        i = start + 1;
        match after.first() {
            Some(b'!') => {
                let end = if after.starts_with(b"!--") { b"-->".as_slice() } else { b">" };
                i = find_ci(after, end).map_or(bytes.len(), |p| start + 1 + p + end.len());
            }
            Some(b'/') => {
                let name = tag_name(&after[1..]);
                if let Some(pos) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                    open.truncate(pos);
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name = tag_name(after);
                if is(RAW_TEXT, name) {
                    let close = [b"</".as_slice(), name].concat();
                    i = find_ci(after, &close).map_or(bytes.len(), |p| start + 1 + p + close.len());
                } else if !is(VOID, name) && !is(OPTIONAL_END, name) {
                    open.push(name);
                    if open.len() > MAX_HTML_DEPTH {
                        return Some(start);
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn tag_name(after_lt: &[u8]) -> &[u8] {
    let end = after_lt.iter().position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>').unwrap_or(after_lt.len());
    &after_lt[..end]
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

fn html_to_text(html: &str) -> String {
    // The trivial decorator writes plain words: no `#` before headings, no `[…]` around links.
    let config = html2text::config::with_decorator(html2text::render::TrivialDecorator::new());
    match config.string_from_read(html.as_bytes(), HTML_TEXT_WIDTH) {
        Ok(text) => cap(text.trim()).to_owned(),
        // html2text only fails on I/O errors from the reader, which a byte slice has none of;
        // should it fail anyway, tag-soup text is still better than nothing.
        Err(_) => cap(html).to_owned(),
    }
}

fn attachment(part: &MessagePart<'_>, raw: &[u8]) -> Attachment {
    let content_type = match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        // RFC 2045: no Content-Type means text/plain.
        None => "text/plain".to_owned(),
    };
    let size = match &part.body {
        // A message/rfc822 part kept as-is carries the whole outer message as its raw bytes in
        // mail-parser, so measure its span instead.
        PartType::Message(_) if part.encoding == mail_parser::Encoding::None => part.offset_end.saturating_sub(part.offset_body) as usize,
        // Cut short or damaged: report what the sender's bytes decode to, not their encoding.
        _ if part.is_encoding_problem => salvage(part, raw).map_or(part.len(), |bytes| bytes.len()),
        _ => part.len(),
    };
    Attachment { name: part.attachment_name().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned), content_type, size: size as u64 }
}

/// The Date header in UTC; `None` for a date that does not exist (31 February, hour 25, …)
/// rather than mail-parser's rolled-over guess.
fn utc(date: &mail_parser::DateTime) -> Option<DateTime<Utc>> {
    if !date.is_valid() {
        return None;
    }
    let local = chrono::NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())?.and_hms_opt(
        date.hour.into(),
        date.minute.into(),
        date.second.into(),
    )?;
    let east = (i32::from(date.tz_hour) * 3600 + i32::from(date.tz_minute) * 60) * if date.tz_before_gmt { -1 } else { 1 };
    let offset = chrono::FixedOffset::east_opt(east)?;
    Some(local.and_local_timezone(offset).single()?.with_timezone(&Utc))
}

/// Every mailbox in every header of this name, groups flattened; entries without `@` dropped.
fn addresses(message: &Message<'_>, header: HeaderName<'static>) -> Vec<Address> {
    message
        .header_values(header)
        .filter_map(HeaderValue::as_address)
        .flat_map(|list| list.iter())
        .filter_map(|addr| {
            let email = addr.address()?.trim();
            if !email.contains('@') {
                return None;
            }
            let name = addr.name().map(str::trim).filter(|n| !n.is_empty());
            Some(Address { name: name.map(str::to_owned), email: email.to_owned() })
        })
        .take(MAX_LISTED)
        .collect()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
}

fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Appends a body part as a paragraph, with `\n` line ends, keeping the whole within
/// [`MAX_CONTENTS`].
fn push_text(out: &mut String, piece: &str) {
    let piece = piece.trim_end();
    let separator = if out.is_empty() { "" } else { "\n\n" };
    if piece.is_empty() || out.len() + separator.len() >= MAX_CONTENTS {
        return;
    }
    out.push_str(separator);
    let room = MAX_CONTENTS - out.len();
    // Look at no more than could fit once CRLFs become LFs: a 10 MB text part is not copied
    // only to be cut.
    let piece = &piece[..piece.floor_char_boundary(room.saturating_mul(2))];
    let piece = if piece.contains('\r') { Cow::Owned(piece.replace("\r\n", "\n")) } else { Cow::Borrowed(piece) };
    out.push_str(&piece[..piece.floor_char_boundary(room)]);
}

fn cap(s: &str) -> &str {
    &s[..s.floor_char_boundary(MAX_CONTENTS)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/eml/");

    fn corpus(name: &str) -> Vec<u8> {
        let path = format!("{CORPUS}{name}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
    }

    fn parse_corpus(name: &str) -> ParsedMessage {
        parse(&corpus(name))
    }

    fn addr(name: Option<&str>, email: &str) -> Address {
        Address { name: name.map(str::to_owned), email: email.to_owned() }
    }

    fn at(rfc3339: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(rfc3339).expect("test date").with_timezone(&Utc))
    }

    fn assert_sanitised(html: &str) {
        let lower = html.to_ascii_lowercase();
        for banned in [
            "<script",
            "<style",
            "<iframe",
            "<form",
            "<input",
            "onclick",
            "onload",
            "onmouseover",
            "onerror",
            "javascript:",
            "document.cookie",
            "evil.example",
            "tracker.example",
        ] {
            assert!(!lower.contains(banned), "sanitised HTML still contains {banned:?}: {html}");
        }
    }

    // --- the corpus -------------------------------------------------------------------------

    #[test]
    fn alternative_message_keeps_the_plain_text_and_sanitises_the_html() {
        let m = parse_corpus("alternative_quoted_printable.eml");

        assert_eq!(m.title, "Quarterly numbers");
        assert_eq!(
            m.contents,
            "Cześć Anno,\n\nThe quarterly numbers are in: revenue is up 12% and the café reopening \
             went well. This sentence is deliberately long so that the quoted-printable encoder has \
             to insert a soft line break somewhere in the middle of it.\n\nPiotr"
        );
        let html = m.html();
        let html = html.as_deref().expect("the HTML alternative");
        assert!(html.contains("<b>up 12%</b> and the café reopening went well."), "{html}");
        assert!(html.contains(r#"<a href="https://example.com/report""#), "{html}");
        assert!(!html.contains("<head"), "{html}");
        assert_eq!(m.from, [addr(Some("Piotr Nowak"), "piotr@example.pl")]);
        assert_eq!(m.to, [addr(Some("Anna Kowalska"), "anna@example.com"), addr(None, "bob@example.org")]);
        assert_eq!(m.cc, [addr(Some("Sales, EMEA"), "sales-emea@example.com")]);
        assert_eq!(m.reply_to, [addr(Some("Piotr (work)"), "piotr.nowak@example.pl")]);
        assert_eq!(m.date, at("2024-05-14T09:15:00Z"));
        assert_eq!(m.message_id.as_deref(), Some("20240514091500.ABC123@mail.example.pl"));
        assert!(m.in_reply_to.is_empty() && m.references.is_empty());
        assert!(m.attachments.is_empty());
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn html_only_message_loses_scripts_handlers_and_styles_and_gets_text_from_the_clean_html() {
        let m = parse_corpus("html_only_hostile.eml");

        assert_eq!(m.title, "Your exclusive offer");
        let html = m.html();
        let html = html.as_deref().expect("the HTML body");
        assert_sanitised(html);
        assert!(html.starts_with("<h1>Spring sale</h1>"), "the <title> is dropped too: {html}");
        assert!(html.contains(r#"<a href="https://shop.example/sale""#), "{html}");
        for text in ["Spring sale", "Save 40% on everything this week.", "Click here or visit the shop.", "Unsubscribe any time."] {
            assert!(m.contents.contains(text), "{text:?} missing from {:?}", m.contents);
        }
        for leaked in ["document", "display:none", "alert", "Offer\n", "<"] {
            assert!(!m.contents.contains(leaked), "{leaked:?} leaked into {:?}", m.contents);
        }
        assert_eq!(m.date, at("2024-05-15T12:00:00Z"));
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn utf8_encoded_word_subject_with_emoji_is_decoded_across_folded_words() {
        let m = parse_corpus("subject_utf8_encoded_words.eml");

        assert_eq!(m.title, "Zażółć gęślą jaźń 🎉");
        assert_eq!(m.from, [addr(Some("Grażyna Żółw"), "grazyna@example.pl")]);
        assert_eq!(m.contents, "Pchnąć w tę łódź jeża lub ośm skrzyń fig.");
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn iso_8859_2_subject_name_and_body_are_decoded_to_utf8() {
        let m = parse_corpus("subject_iso_8859_2.eml");

        assert_eq!(m.title, "Zażółć gęślą jaźń");
        assert_eq!(m.from, [addr(Some("Michał Wójcik"), "michal@example.pl")]);
        assert_eq!(m.contents, "Treść wiadomości w kodowaniu ISO-8859-2: żółw, źdźbło, łąka.");
        assert_eq!(m.date, at("2024-05-17T05:30:00Z"));
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn addresses_and_attachments_are_capped() {
        let to: Vec<String> = (0..3000).map(|i| format!("r{i}@x.test")).collect();
        let mut raw = format!(
            "From: a@x.test\r\nTo: {}\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
            to.join(", ")
        );
        for i in 0..3000 {
            raw.push_str(&format!("--b\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\n\r\nx\r\n"));
        }
        raw.push_str("--b--\r\n");
        let m = parse(raw.as_bytes());
        assert_eq!(m.to.len(), MAX_LISTED);
        assert_eq!(m.attachments.len(), MAX_LISTED);
        assert_eq!(m.to[0].email, "r0@x.test");
    }

    #[test]
    fn attachments_report_decoded_rfc2231_names_types_and_sizes() {
        let m = parse_corpus("two_attachments_encoded_names.eml");

        // The first name is a single RFC 2231 `filename*` in UTF-8; the second is split over
        // `filename*0*`/`filename*1*` in ISO-8859-2 (with an RFC 2047 `name` beside it).
        assert_eq!(
            m.attachments,
            [
                Attachment {
                    name: Some("Sprawozdanie kwartalne żółć.pdf".to_owned()),
                    content_type: "application/pdf".to_owned(),
                    size: 1234,
                },
                Attachment { name: Some("Zdjęcie z wakacji.png".to_owned()), content_type: "image/png".to_owned(), size: 517 },
            ]
        );
        assert_eq!(m.contents, "Both files are attached.");
        assert_eq!(m.html(), None);
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn message_without_subject_has_an_empty_title_and_is_not_malformed() {
        let m = parse_corpus("no_subject.eml");

        assert_eq!(m.title, "");
        assert_eq!(m.contents, "A message that never had a Subject header.");
        assert_eq!(m.html(), None, "a text-only message has no HTML");
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn very_long_folded_subject_and_unfolded_to_header_are_read_whole() {
        let raw = corpus("long_header_lines.eml");
        let longest_line = raw.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap_or(0);
        assert!(longest_line > 5_000, "the corpus file keeps its unfolded To line");

        let m = parse(&raw);

        let expected: Vec<String> = (0..600).map(|i| format!("word{i:04}")).collect();
        assert!(m.title.len() > 5_000);
        assert_eq!(m.title, expected.join(" "));
        assert_eq!(m.to.len(), 200);
        assert_eq!(m.to[0], addr(Some("User 000"), "user000@example.com"));
        assert_eq!(m.to[199], addr(Some("User 199"), "user199@example.com"));
        assert_eq!(m.contents, "Body after very long headers.");
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn multipart_that_is_never_closed_keeps_its_parts_and_is_marked_malformed() {
        let m = parse_corpus("unterminated_multipart.eml");

        assert_eq!(m.malformed.as_deref(), Some("multipart boundary never closed"));
        assert_eq!(m.title, "Cut off in transit");
        assert_eq!(m.contents, "The first part arrived intact.");
        // 92 base64 characters survive the cut: 69 bytes of data.
        assert_eq!(
            m.attachments,
            [Attachment { name: Some("data.bin".to_owned()), content_type: "application/octet-stream".to_owned(), size: 69 }]
        );
    }

    #[test]
    fn body_with_a_bad_base64_line_keeps_the_text_around_it_and_is_marked_malformed() {
        let m = parse_corpus("bad_base64_body.eml");

        assert_eq!(m.contents, "Readable text before the damage. And the rest of the sentence.");
        assert_eq!(m.malformed.as_deref(), Some("undecodable body part (bad base64 or quoted-printable)"));
        assert!(m.attachments.is_empty(), "the damaged body is not listed as a file");
        assert_eq!(m.title, "Garbled body");
    }

    #[test]
    fn reply_ids_come_without_angle_brackets_in_header_order() {
        let m = parse_corpus("reply_with_references.eml");

        assert_eq!(m.title, "Re: Quarterly numbers");
        assert_eq!(m.message_id.as_deref(), Some("reply-3@example.org"));
        assert_eq!(m.in_reply_to, ["20240514091500.ABC123@mail.example.pl"]);
        assert_eq!(m.references, ["thread-root@example.com", "20240513.other@mail.example.pl", "20240514091500.ABC123@mail.example.pl",]);
        assert_eq!(m.contents, "Thanks, looks good.\n\n> The quarterly numbers are in.");
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn bcc_is_read_where_the_senders_copy_keeps_it() {
        let m = parse(
            b"From: me@example.com\r\nTo: a@example.org\r\nBcc: Boss <boss@example.org>, b@example.net\r\n\
              Subject: Sent\r\n\r\nbody",
        );

        assert_eq!(m.bcc, [addr(Some("Boss"), "boss@example.org"), addr(None, "b@example.net")]);
        assert!(parse_corpus("reply_with_references.eml").bcc.is_empty());
    }

    #[test]
    fn group_addresses_are_flattened_and_entries_without_at_sign_dropped() {
        let m = parse_corpus("group_addresses.eml");

        assert_eq!(m.to, [addr(None, "alice@example.com"), addr(Some("Bob B."), "bob@example.org"), addr(None, "carol@example.net"),]);
        // An empty group (undisclosed-recipients:;) and a bare "postmaster" leave nothing.
        assert!(m.cc.is_empty(), "{:?}", m.cc);
        assert_eq!(m.from, [addr(Some("Coordinator"), "coord@example.com")]);
    }

    #[test]
    fn message_without_message_id_is_recognised_by_its_bytes() {
        let raw = corpus("no_message_id.eml");
        let m = parse(&raw);

        assert_eq!(m.message_id, None);
        assert_eq!(m.title, "Nightly job finished");
        assert_eq!(m.malformed, None);
        let key = m.dedupe_key(&raw);
        let hex = key.strip_prefix("sha256:").expect("a hash key");
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(parse(&raw).dedupe_key(&raw.clone()), key, "fetched twice, same key");
        let mut other = raw.clone();
        other.extend_from_slice(b"P.S.\r\n");
        assert_ne!(parse(&other).dedupe_key(&other), key);
    }

    #[test]
    fn message_id_dedupe_key_is_lower_cased_and_ignores_the_bytes() {
        let raw = corpus("alternative_quoted_printable.eml");
        let m = parse(&raw);

        assert_eq!(m.dedupe_key(&raw), "mid:20240514091500.abc123@mail.example.pl");
        assert_eq!(m.dedupe_key(b"other bytes"), m.dedupe_key(&raw));
    }

    #[test]
    fn missing_blank_line_after_headers_keeps_headers_and_the_stray_text() {
        let m = parse_corpus("no_header_body_separator.eml");

        assert_eq!(m.malformed.as_deref(), Some("no header/body separator"));
        assert_eq!(m.title, "Missing blank line");
        assert_eq!(m.from, [addr(None, "broken-client@example.com")]);
        assert_eq!(m.message_id.as_deref(), Some("no-separator@example.com"));
        assert_eq!(m.contents, "This line should have been the body.");
    }

    #[test]
    fn forwarded_message_is_an_attachment_and_its_body_stays_out_of_the_contents() {
        let m = parse_corpus("forwarded_message.eml");

        assert_eq!(m.contents, "Forwarding this to you.");
        assert_eq!(
            m.attachments,
            [Attachment { name: Some("Original.eml".to_owned()), content_type: "message/rfc822".to_owned(), size: 118 }]
        );
        assert_eq!(m.malformed, None);
    }

    // --- shapes built at run time -----------------------------------------------------------

    fn b64_lines(data: &[u8]) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
        for line in encoded.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push_str("\r\n");
        }
        out
    }

    #[test]
    fn ten_megabyte_attachment_is_measured_and_the_contents_capped() {
        let attachment: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let text: String = (0..40_000).map(|i| format!("line {i} of a very long body\r\n")).collect();
        assert!(text.len() > MAX_CONTENTS);
        let raw = format!(
            "From: big@example.com\r\nTo: anna@example.com\r\nSubject: Big\r\n\
             Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"big\"\r\n\r\n\
             --big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
             --big\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"blob.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}--big--\r\n",
            b64_lines(&attachment)
        );

        let m = parse(raw.as_bytes());

        assert_eq!(
            m.attachments,
            [Attachment { name: Some("blob.bin".to_owned()), content_type: "application/octet-stream".to_owned(), size: 10 * 1024 * 1024 }]
        );
        assert!(m.contents.len() <= MAX_CONTENTS);
        assert!(m.contents.len() > MAX_CONTENTS - 100, "cut at the cap, not earlier");
        assert!(m.contents.starts_with("line 0 of a very long body\nline 1 "));
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn contents_are_cut_on_a_char_boundary() {
        let body = "ż".repeat(MAX_CONTENTS); // two bytes each
        let raw = format!("From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}");

        let m = parse(raw.as_bytes());

        assert_eq!(m.contents.len(), MAX_CONTENTS);
        assert!(m.contents.ends_with('ż'));
    }

    #[test]
    fn huge_html_is_sanitised_and_capped_without_a_half_tag_at_the_end() {
        let paragraphs: String = (0..40_000).map(|i| format!("<p class=\"x\" onclick=\"f({i})\">paragraph {i}</p>\r\n")).collect();
        let raw = format!("From: a@example.com\r\nContent-Type: text/html\r\n\r\n{paragraphs}");

        let m = parse(raw.as_bytes());

        let html = m.html();
        let html = html.as_deref().expect("HTML");
        assert!(html.len() <= MAX_CONTENTS);
        assert!(html.len() > MAX_CONTENTS / 2);
        assert_sanitised(html);
        let tail = &html[html.rfind('<').unwrap_or(0)..];
        assert!(tail.contains('>'), "ends inside a tag: {tail:?}");
        assert!(m.contents.len() <= MAX_CONTENTS);
        assert!(m.contents.starts_with("paragraph 0\n\nparagraph 1\n"), "{:?}", &m.contents[..40]);
    }

    #[test]
    fn deeply_nested_html_is_cut_at_the_nesting_limit_instead_of_parsed_for_minutes() {
        let bomb = "<div>".repeat(100_000);
        let raw = format!("From: a@example.com\r\nContent-Type: text/html\r\n\r\n<p>Before the bomb</p>{bomb}after");

        let m = parse(raw.as_bytes());

        assert_eq!(m.malformed.as_deref(), Some("HTML nested too deeply; the rest was dropped"));
        assert!(m.contents.starts_with("Before the bomb"), "{:?}", m.contents);
        assert!(!m.contents.contains("after"));
    }

    #[test]
    fn ordinary_nesting_and_sloppy_unclosed_tags_are_not_cut() {
        // 2,000 unclosed <p> and <li> and 300 properly nested tables are normal HTML.
        let sloppy = "<p>para<li>item".repeat(2_000);
        let tables = "<table><tr><td>".repeat(300) + &"</td></tr></table>".repeat(300);
        let raw = format!("From: a@example.com\r\nContent-Type: text/html\r\n\r\n{sloppy}{tables}<b>end</b>");

        let m = parse(raw.as_bytes());

        assert_eq!(m.malformed, None);
        assert!(m.html().as_deref().is_some_and(|h| h.contains("<b>end</b>")));
    }

    #[test]
    fn text_only_alternative_has_no_html() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
                    --b\r\nContent-Type: text/plain\r\n\r\nonly text\r\n--b--\r\n";

        let m = parse(raw);

        assert_eq!(m.contents, "only text");
        assert_eq!(m.html(), None);
        assert_eq!(m.malformed, None);
    }

    #[test]
    fn blank_plain_alternative_falls_back_to_text_from_the_html() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
                    --b\r\nContent-Type: text/plain\r\n\r\n \r\n\
                    --b\r\nContent-Type: text/html\r\n\r\n<p>the real text</p>\r\n--b--\r\n";

        let m = parse(raw);

        assert_eq!(m.contents, "the real text");
        assert_eq!(m.html().as_deref(), Some("<p>the real text</p>"));
    }

    #[test]
    fn html_body_with_bad_base64_is_recovered_and_still_sanitised() {
        let html = b64_lines(b"<p onclick=\"x()\">Still readable</p><script>bad()</script>");
        let raw = format!(
            "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {html}#### line noise ####\r\n--b--\r\n"
        );

        let m = parse(raw.as_bytes());

        assert_eq!(m.html().as_deref(), Some("<p>Still readable</p>"));
        assert_eq!(m.contents, "Still readable");
        assert!(m.attachments.is_empty(), "{:?}", m.attachments);
        assert_eq!(m.malformed.as_deref(), Some("undecodable body part (bad base64 or quoted-printable)"));
    }

    #[test]
    fn quoted_printable_with_a_stray_equals_sign_is_decoded_around_it() {
        let raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                    Caf=C3=A9 is open =\r\ntoday ==broken== end\r\n";

        let m = parse(raw);

        assert_eq!(m.contents, "Café is open today ==broken== end");
        assert!(m.malformed.is_some());
    }

    #[test]
    fn date_that_does_not_exist_is_dropped() {
        let m = parse(b"From: a@example.com\r\nDate: Fri, 31 Feb 2024 10:00:00 +0000\r\n\r\nhi");

        assert_eq!(m.date, None);
        assert_eq!(m.contents, "hi");
    }

    #[test]
    fn empty_input_is_an_empty_malformed_message() {
        for raw in [&b""[..], b"\r\n\r\n"] {
            let m = parse(raw);
            assert_eq!(m.malformed.as_deref(), Some("empty message"));
            assert_eq!(m.title, "");
        }
    }

    #[test]
    fn binary_garbage_is_kept_as_lossy_text_and_marked_not_a_message() {
        let mut state = 7u64;
        let garbage: Vec<u8> = (0..20_000).map(|_| lcg(&mut state) as u8).collect();

        let m = parse(&garbage);

        assert_eq!(m.malformed.as_deref(), Some("not a MIME message"));
        assert_eq!(m.title, "");
        assert!(!m.contents.is_empty() && m.contents.len() <= MAX_CONTENTS);
        assert!(m.from.is_empty() && m.attachments.is_empty() && m.html().is_none());
        assert!(m.dedupe_key(&garbage).starts_with("sha256:"));
    }

    #[test]
    fn a_line_without_a_colon_has_no_header_fields() {
        let m = parse(b"just some words, not mail");

        assert!(m.malformed.is_some());
        assert_eq!(m.contents, "just some words, not mail");
    }

    // --- robustness ---------------------------------------------------------------------------

    fn lcg(state: &mut u64) -> u64 {
        *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        *state >> 33
    }

    #[test]
    fn truncated_and_bit_flipped_corpus_messages_never_break_the_parser() {
        let mut files: Vec<_> = std::fs::read_dir(CORPUS)
            .expect("corpus directory")
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        files.sort();
        assert!(files.len() >= 14, "corpus went missing: {files:?}");

        let mut state = 0x5eed_u64;
        let mut inputs = 0;
        for path in &files {
            let raw = std::fs::read(path).expect("corpus file");
            let mut check = |bytes: &[u8]| {
                inputs += 1;
                let m = parse(bytes);
                assert_ne!(
                    m.malformed.as_deref(),
                    Some("the parser failed on this message"),
                    "a dependency panicked on {} ({} bytes)",
                    path.display(),
                    bytes.len()
                );
                assert!(m.contents.len() <= MAX_CONTENTS && m.title.len() <= MAX_CONTENTS);
                assert!(m.html().is_none_or(|h| h.len() <= MAX_CONTENTS));
                let _ = m.dedupe_key(bytes);
            };
            // Every prefix, in steps, like a fetch cut short.
            let step = (raw.len() / 150).max(1);
            for end in (0..raw.len()).step_by(step) {
                check(&raw[..end]);
            }
            // Damaged copies: a few random bytes replaced, including with CR, LF, '-', '=' and NUL.
            for _ in 0..150 {
                let mut damaged = raw.clone();
                for _ in 0..1 + lcg(&mut state) % 8 {
                    let at = (lcg(&mut state) as usize) % damaged.len();
                    damaged[at] = match lcg(&mut state) % 6 {
                        0 => b'\r',
                        1 => b'\n',
                        2 => b'-',
                        3 => b'=',
                        4 => 0,
                        _ => lcg(&mut state) as u8,
                    };
                }
                check(&damaged);
            }
        }
        assert!(inputs > 3_000, "only {inputs} inputs");
    }
}
