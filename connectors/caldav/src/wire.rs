//! The WebDAV/CalDAV wire format: request bodies we send and the `multistatus` answers we
//! read, and property values (colours, resource names). iCalendar itself is read with the
//! SDK's reader ([`concierge_connector_sdk::ical::read`]). Pure code, no I/O: every server answer passes through here, so nothing here panics on
//! what a server sends.

use roxmltree::{Document, Node};

pub const DAV: &str = "DAV:";
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub const APPLE: &str = "http://apple.com/ns/ical/";

/// A parsed `DAV:multistatus`.
#[derive(Debug, Default, PartialEq)]
pub struct Multistatus {
    pub responses: Vec<Response>,
    /// RFC 6578: the token after a sync-collection report.
    pub sync_token: Option<String>,
}

/// One `DAV:response`.
#[derive(Debug, Default, PartialEq)]
pub struct Response {
    pub href: String,
    /// The response-level status (sync-collection reports a removed member as 404 here).
    pub status: Option<u16>,
    /// Properties found (2xx propstats only).
    pub props: Props,
}

/// The properties the connector asks for; `None` when the server did not report one.
#[derive(Debug, Default, PartialEq)]
pub struct Props {
    pub collection: bool,
    pub calendar: bool,
    pub displayname: Option<String>,
    pub color: Option<String>,
    pub timezone: Option<String>,
    /// Local names of the privileges in `current-user-privilege-set`.
    pub privileges: Option<Vec<String>>,
    /// `supported-calendar-component-set` names (VEVENT, VTODO…).
    pub components: Option<Vec<String>>,
    pub etag: Option<String>,
    pub calendar_data: Option<String>,
    pub principal: Option<String>,
    pub home_sets: Vec<String>,
}

/// Parses a multistatus body; an error says what was wrong (for a Protocol error).
pub fn parse_multistatus(xml: &str) -> Result<Multistatus, String> {
    let doc = Document::parse(xml).map_err(|e| format!("malformed XML: {e}"))?;
    let root = doc.root_element();
    if !is(root, DAV, "multistatus") {
        return Err(format!("expected DAV:multistatus, got {}", root.tag_name().name()));
    }
    let mut out = Multistatus::default();
    for child in root.children().filter(Node::is_element) {
        if is(child, DAV, "sync-token") {
            out.sync_token = Some(text(child)).filter(|t| !t.is_empty());
        } else if is(child, DAV, "response") {
            out.responses.push(parse_response(child));
        }
    }
    Ok(out)
}

fn parse_response(node: Node) -> Response {
    let mut response = Response::default();
    for child in node.children().filter(Node::is_element) {
        if is(child, DAV, "href") && response.href.is_empty() {
            response.href = text(child);
        } else if is(child, DAV, "status") {
            response.status = parse_status(&text(child));
        } else if is(child, DAV, "propstat") {
            let ok = element(child, DAV, "status").and_then(|s| parse_status(&text(s))).is_some_and(|s| (200..300).contains(&s));
            if let (true, Some(prop)) = (ok, element(child, DAV, "prop")) {
                read_props(prop, &mut response.props);
            }
        }
    }
    response
}

fn read_props(prop: Node, props: &mut Props) {
    for p in prop.children().filter(Node::is_element) {
        let (ns, name) = (p.tag_name().namespace().unwrap_or(""), p.tag_name().name());
        match (ns, name) {
            (DAV, "resourcetype") => {
                props.collection = element(p, DAV, "collection").is_some();
                props.calendar = element(p, CALDAV, "calendar").is_some();
            }
            (DAV, "displayname") => props.displayname = Some(text(p)).filter(|s| !s.is_empty()),
            (APPLE, "calendar-color") => props.color = Some(text(p)),
            (CALDAV, "calendar-timezone") => props.timezone = Some(text(p)),
            (DAV, "current-user-privilege-set") => {
                let names = p
                    .children()
                    .filter(|c| is(*c, DAV, "privilege"))
                    .flat_map(|c| c.children().filter(Node::is_element))
                    .map(|c| c.tag_name().name().to_owned())
                    .collect();
                props.privileges = Some(names);
            }
            (CALDAV, "supported-calendar-component-set") => {
                let names = p
                    .children()
                    .filter(|c| is(*c, CALDAV, "comp"))
                    .filter_map(|c| c.attribute("name"))
                    .map(str::to_ascii_uppercase)
                    .collect();
                props.components = Some(names);
            }
            (DAV, "getetag") => props.etag = Some(text(p)).filter(|s| !s.is_empty()),
            (CALDAV, "calendar-data") => props.calendar_data = Some(p.text().unwrap_or("").to_owned()),
            (DAV, "current-user-principal") => props.principal = element(p, DAV, "href").map(text),
            (CALDAV, "calendar-home-set") => {
                props.home_sets = p.children().filter(|c| is(*c, DAV, "href")).map(text).filter(|h| !h.is_empty()).collect();
            }
            _ => {}
        }
    }
}

/// `HTTP/1.1 404 Not Found` → 404.
fn parse_status(line: &str) -> Option<u16> {
    line.split_whitespace().nth(1)?.parse().ok()
}

fn is(node: Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

fn element<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(*c, ns, name))
}

fn text(node: Node) -> String {
    node.descendants().filter(Node::is_text).filter_map(|t| t.text()).collect::<String>().trim().to_owned()
}

/// A `DAV:error` body names this precondition (`valid-sync-token`, `no-uid-conflict`).
pub fn names_precondition(xml: &str, ns: &str, name: &str) -> bool {
    Document::parse(xml).is_ok_and(|doc| doc.descendants().any(|n| is(n, ns, name)))
}

/// RFC 4791 `no-uid-conflict`: the href of the resource that already holds the UID.
pub fn uid_conflict_href(xml: &str) -> Option<String> {
    let doc = Document::parse(xml).ok()?;
    let conflict = doc.descendants().find(|n| is(*n, CALDAV, "no-uid-conflict"))?;
    element(conflict, DAV, "href").map(text).filter(|h| !h.is_empty())
}

// --- request bodies ------------------------------------------------------------------

const XMLNS: &str = r#"xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="http://apple.com/ns/ical/""#;

/// PROPFIND for discovery: who am I, where are my calendars, what is this resource.
pub fn propfind_discovery() -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><d:propfind {XMLNS}><d:prop><d:current-user-principal/><c:calendar-home-set/><d:resourcetype/></d:prop></d:propfind>"#
    )
}

/// PROPFIND on the calendar home: each calendar's description.
pub fn propfind_calendars() -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><d:propfind {XMLNS}><d:prop><d:resourcetype/><d:displayname/><a:calendar-color/><c:calendar-timezone/><d:current-user-privilege-set/><c:supported-calendar-component-set/></d:prop></d:propfind>"#
    )
}

/// PROPFIND for ETags (and what each member is).
pub fn propfind_etags() -> String {
    format!(r#"<?xml version="1.0" encoding="utf-8"?><d:propfind {XMLNS}><d:prop><d:resourcetype/><d:getetag/></d:prop></d:propfind>"#)
}

/// RFC 6578 sync-collection; no token: everything.
pub fn sync_collection(token: Option<&str>) -> String {
    let token = token.map(escape).unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><d:sync-collection {XMLNS}><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/><d:resourcetype/></d:prop></d:sync-collection>"#
    )
}

/// RFC 4791 calendar-multiget of these hrefs.
pub fn multiget(hrefs: &[String]) -> String {
    let hrefs: String = hrefs.iter().map(|h| format!("<d:href>{}</d:href>", escape(h))).collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><c:calendar-multiget {XMLNS}><d:prop><d:getetag/><c:calendar-data/></d:prop>{hrefs}</c:calendar-multiget>"#
    )
}

/// XML text escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

// --- Property values ---------------------------------------------------------------

/// Apple's `calendar-color` (`#RRGGBB` or `#RRGGBBAA`) as `#RRGGBB`, upper case; anything
/// else is no colour.
pub fn colour(value: &str) -> Option<String> {
    let hex = value.trim().trim_start_matches('#');
    let ok = (hex.len() == 6 || hex.len() == 8) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| format!("#{}", hex[..6].to_ascii_uppercase()))
}

/// A resource name for an event UID: letters, digits, `-` and `.` stay; any other byte
/// becomes `_XX` (so distinct UIDs stay distinct, and the same UID always maps to the same
/// name, which makes a repeated PUT replace instead of duplicate). Very long UIDs keep a
/// prefix plus a hash.
pub fn resource_name(uid: &str) -> String {
    let mut name = String::new();
    for b in uid.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("_{b:02X}"));
        }
    }
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    if name.len() > 120 {
        // FNV-1a: stable across builds (std's hasher is not promised to be).
        let hash = uid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        name.truncate(100);
        name.push_str(&format!("-{hash:016x}"));
    }
    format!("{name}.ics")
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_connector_sdk::ical::read::first_tzid;

    const CALENDARS: &str = r##"<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:ICAL="http://apple.com/ns/ical/">
 <response><href>/alice/</href><propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href>/alice/work/</href>
  <propstat><prop><resourcetype><collection/><C:calendar/></resourcetype><displayname>Work</displayname>
   <ICAL:calendar-color>#ff8800cc</ICAL:calendar-color>
   <C:calendar-timezone>BEGIN:VCALENDAR
BEGIN:VTIMEZONE
TZID:Europe/Berlin
END:VTIMEZONE
END:VCALENDAR</C:calendar-timezone>
   <current-user-privilege-set><privilege><read/></privilege><privilege><write/></privilege></current-user-privilege-set>
   <C:supported-calendar-component-set><C:comp name="VEVENT"/><C:comp name="vtodo"/></C:supported-calendar-component-set>
  </prop><status>HTTP/1.1 200 OK</status></propstat>
  <propstat><prop><getetag/></prop><status>HTTP/1.1 404 Not Found</status></propstat>
 </response>
 <sync-token>http://x/sync/7</sync-token>
</multistatus>"##;

    #[test]
    fn a_calendar_listing_reads_every_property_and_ignores_404_propstats() {
        let ms = parse_multistatus(CALENDARS).unwrap();
        assert_eq!(ms.responses.len(), 2);
        assert_eq!(ms.sync_token.as_deref(), Some("http://x/sync/7"));
        let work = &ms.responses[1].props;
        assert!(work.calendar && work.collection);
        assert_eq!(work.displayname.as_deref(), Some("Work"));
        assert_eq!(work.color.as_deref().and_then(colour), Some("#FF8800".into()));
        assert_eq!(work.timezone.as_deref().and_then(first_tzid), Some("Europe/Berlin".into()));
        assert_eq!(work.privileges, Some(vec!["read".into(), "write".into()]));
        assert_eq!(work.components, Some(vec!["VEVENT".into(), "VTODO".into()]));
        assert_eq!(work.etag, None);
        assert!(!ms.responses[0].props.calendar);
    }

    #[test]
    fn a_removed_member_carries_its_status_on_the_response() {
        let xml = r#"<d:multistatus xmlns:d="DAV:"><d:response><d:href>/a/b.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response></d:multistatus>"#;
        let ms = parse_multistatus(xml).unwrap();
        assert_eq!(ms.responses[0].status, Some(404));
        assert_eq!(ms.responses[0].href, "/a/b.ics");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in
            ["", "<html><body>hi</body></html>", "<d:multistatus xmlns:d=\"DAV:\">", "\u{0}\u{1}", "<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"]
        {
            assert!(parse_multistatus(body).is_err(), "{body:?}");
        }
        assert!(!names_precondition("not xml", DAV, "valid-sync-token"));
        assert_eq!(uid_conflict_href("<<"), None);
    }

    #[test]
    fn preconditions_and_uid_conflicts_are_found() {
        let xml = r#"<d:error xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><c:no-uid-conflict><d:href>/a/other.ics</d:href></c:no-uid-conflict></d:error>"#;
        assert!(names_precondition(xml, CALDAV, "no-uid-conflict"));
        assert_eq!(uid_conflict_href(xml).as_deref(), Some("/a/other.ics"));
    }

    #[test]
    fn colours_are_normalised_or_dropped() {
        assert_eq!(colour("#1a2B3c").as_deref(), Some("#1A2B3C"));
        assert_eq!(colour("#1A2B3CFF").as_deref(), Some("#1A2B3C"));
        assert_eq!(colour("red"), None);
        assert_eq!(colour("#12345"), None);
        assert_eq!(colour("#ééééé"), None);
    }

    #[test]
    fn resource_names_are_safe_distinct_and_stable() {
        assert_eq!(resource_name("abc-1.2"), "abc-1.2.ics");
        assert_eq!(resource_name("a/b@c"), "a_2Fb_40c.ics");
        assert_ne!(resource_name("a_2F"), resource_name("a/"));
        assert_eq!(resource_name(""), "_.ics");
        assert_eq!(resource_name("../x"), "_.._2Fx.ics");
        let long = "x".repeat(500);
        assert_eq!(resource_name(&long), resource_name(&long));
        assert!(resource_name(&long).len() < 130);
    }

    #[test]
    fn hrefs_are_escaped_in_a_multiget() {
        let body = multiget(&["/a/x&y.ics".into()]);
        assert!(body.contains("<d:href>/a/x&amp;y.ics</d:href>"));
    }
}
