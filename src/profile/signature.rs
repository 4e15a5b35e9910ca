//! A user's email signature: rich text sanitised once when it is saved, with a fixed set of
//! custom values (`{{ user.first_name }}`) filled in for the sender when a message is sent.
//!
//! The templating is deliberately tiny: a placeholder is `{{`, optional spaces, one name from
//! [`CUSTOM_VALUES`], optional spaces and `}}`. There are no expressions, filters or loops, so a
//! user-supplied signature can never become a template language.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};

/// The largest signature accepted, in bytes of HTML, before and after sanitising.
pub const MAX_HTML_BYTES: usize = 20_000;

/// A custom value an editor can insert into a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomValue {
    /// What goes between the braces, e.g. `user.first_name`.
    pub name: &'static str,
    /// What the value holds, for the editor's picker.
    pub description: &'static str,
}

/// Every custom value a signature may use (for the `signatureCustomValues` query).
pub const CUSTOM_VALUES: &[CustomValue] = &[
    CustomValue { name: "user.full_name", description: "The sender's full name." },
    CustomValue { name: "user.first_name", description: "The sender's first name." },
    CustomValue { name: "user.last_name", description: "The sender's last name." },
    CustomValue { name: "user.display_name", description: "The name the sender shows to others." },
    CustomValue { name: "user.email", description: "The sender's email address." },
    CustomValue { name: "user.phone", description: "The sender's phone number." },
    CustomValue { name: "user.job_title", description: "The sender's job title." },
    CustomValue { name: "workspace.name", description: "The name of the sender's workspace." },
];

/// The custom values of one sender, at send time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values {
    pub full_name: String,
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    pub job_title: String,
    pub workspace_name: String,
}

impl Values {
    /// The value named by a placeholder; `None` for a name not in [`CUSTOM_VALUES`].
    fn get(&self, name: &str) -> Option<&str> {
        let value = match name {
            "user.full_name" => &self.full_name,
            "user.first_name" => &self.first_name,
            "user.last_name" => &self.last_name,
            "user.display_name" => &self.display_name,
            "user.email" => &self.email,
            "user.phone" => &self.phone,
            "user.job_title" => &self.job_title,
            "workspace.name" => &self.workspace_name,
            _ => return None,
        };
        Some(value)
    }
}

/// What an editor's formatting produces; nothing that runs, embeds or loads styles.
#[rustfmt::skip]
const TAGS: [&str; 31] = [
    "p", "br", "div", "span", "font", "small", "sub", "sup", "hr", "blockquote",
    "b", "strong", "i", "em", "u", "s",
    "h1", "h2", "h3", "h4", "ul", "ol", "li",
    "table", "thead", "tbody", "tr", "td", "th",
    "a", "img",
];

/// Sanitises signature HTML. Build it once at startup and share it: the ammonia policy is
/// configured here and nowhere else.
pub struct Sanitizer {
    policy: ammonia::Builder<'static>,
}

impl Sanitizer {
    /// `own_origin` is the gateway's public URL (e.g. `http://127.0.0.1:8080`). Images may come
    /// from any `https://` URL or from this origin (where uploaded images are served).
    pub fn new(own_origin: &str) -> Self {
        let own_origin = own_origin.trim().trim_end_matches('/').to_owned();
        let mut policy = ammonia::Builder::default();
        policy
            .tags(HashSet::from(TAGS))
            // Removed together with their content: their text is never meant to be read.
            .clean_content_tags(HashSet::from(["script", "style", "iframe", "object", "noscript"]))
            // No `style`: CSS can hide text, overlay the message or fetch URLs, and filtering
            // it property by property is more policy than a signature needs.
            .generic_attributes(HashSet::from(["align", "title", "lang", "dir"]))
            .tag_attributes(HashMap::from([
                ("a", HashSet::from(["href"])),
                ("img", HashSet::from(["src", "alt", "width", "height"])),
                ("font", HashSet::from(["color", "face", "size"])),
                ("table", HashSet::from(["width", "border", "cellpadding", "cellspacing"])),
                ("td", HashSet::from(["colspan", "rowspan", "width", "valign"])),
                ("th", HashSet::from(["colspan", "rowspan", "width", "valign"])),
                ("ol", HashSet::from(["start"])),
            ]))
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            // A signature travels in mail, where a relative URL points nowhere.
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some("noopener noreferrer"))
            // Only `src` needs more than a scheme check: an image is fetched whenever the mail
            // is opened, so it must come over TLS, or from our own origin (plain http in
            // development).
            .attribute_filter(move |element, attribute, value| {
                if element == "img" && attribute == "src" && !image_allowed(value, &own_origin) { None } else { Some(Cow::Borrowed(value)) }
            });
        Sanitizer { policy }
    }

    /// Sanitises and validates signature HTML for storing. Unknown custom values are refused,
    /// naming them; text that merely looks like the start of one (`{{user.first_name` without
    /// its braces closed) stays literal text.
    pub fn clean(&self, html: &str) -> Result<String> {
        if html.len() > MAX_HTML_BYTES {
            return Err(too_long());
        }
        // Checked on the input too, so an unknown value is reported even where the sanitiser
        // would have dropped it (say, in an `onclick`) and the user would never see it.
        let mut unknown = unknown_names(html);
        let clean = self.policy.clean(html).to_string();
        // And on the output, which is what gets rendered: removing markup or decoding
        // entities (`&#123;&#123;`) can assemble a placeholder the input did not spell out.
        for name in unknown_names(&clean) {
            if !unknown.contains(&name) {
                unknown.push(name);
            }
        }
        if !unknown.is_empty() {
            return Err(unknown_custom_values(&unknown));
        }
        // The sanitiser can grow the HTML (closing tags, `rel` on every link).
        if clean.len() > MAX_HTML_BYTES {
            return Err(too_long());
        }
        Ok(clean)
    }
}

/// Renders the custom values into HTML returned by [`Sanitizer::clean`]. Values are escaped for
/// where they land: HTML-escaped in text and ordinary attributes, percent-encoded in `href` and
/// `src`, so no value can add markup, leave its attribute or change where a link points.
pub fn render_html(clean_html: &str, values: &Values) -> String {
    // `clean_html` is html5ever's serialisation: `<` only opens tags, attribute values are
    // always double-quoted and `"` inside them is `&quot;`. That makes the context of each
    // placeholder a matter of counting, not of parsing HTML again.
    enum Context {
        Text,
        Tag,
        AttributeValue { start: usize, url: bool },
    }

    let bytes = clean_html.as_bytes();
    let mut out = String::with_capacity(clean_html.len() + 256);
    let mut context = Context::Text;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match (&context, bytes[i]) {
            (Context::Text | Context::AttributeValue { .. }, b'{') => {
                let found = placeholder_at(clean_html, i).and_then(|placeholder| Some((placeholder.end, values.get(placeholder.name)?)));
                if let Some((end, value)) = found {
                    out.push_str(&clean_html[copied..i]);
                    match context {
                        Context::AttributeValue { start, url: true } => {
                            let in_mailto = starts_with_ignore_case(&clean_html[start..i], "mailto:");
                            push_url_encoded(&mut out, value, in_mailto);
                        }
                        _ => push_html_escaped(&mut out, value),
                    }
                    copied = end;
                    i = end;
                    continue;
                }
            }
            (Context::Text, b'<') => context = Context::Tag,
            (Context::Tag, b'>') => context = Context::Text,
            (Context::Tag, b'"') => {
                let name = clean_html[..i]
                    .strip_suffix('=')
                    .and_then(|before| before.rsplit(|c: char| c.is_ascii_whitespace()).next())
                    .unwrap_or("");
                let url = name.eq_ignore_ascii_case("href") || name.eq_ignore_ascii_case("src");
                context = Context::AttributeValue { start: i + 1, url };
            }
            (Context::AttributeValue { .. }, b'"') => context = Context::Tag,
            _ => {}
        }
        i += 1;
    }
    out.push_str(&clean_html[copied..]);
    out
}

/// The plain-text alternative of a rendered signature: paragraphs and line breaks kept, links
/// written as `text <url>`, no markup. Lines are not wrapped; the mail composer does that.
pub fn to_text(rendered_html: &str) -> String {
    let lines = html2text::config::rich()
        // Table cells one under another: signatures use tables for layout, not for data.
        .raw_mode(true)
        .allow_width_overflow()
        .no_link_wrapping()
        .lines_from_read(rendered_html.as_bytes(), TEXT_WIDTH);
    match lines {
        Ok(lines) => text_with_links(&lines),
        Err(err) => {
            // Not expected with overflow allowed and an in-memory input; degrade, don't fail.
            tracing::warn!(error = %err, "signature could not be laid out as text");
            strip_tags(rendered_html)
        }
    }
}

/// Wide enough that no signature line wraps.
const TEXT_WIDTH: usize = 10_000;

type RichLine = html2text::render::TaggedLine<Vec<html2text::render::RichAnnotation>>;

/// Joins html2text's lines, appending ` <url>` after each link whose text is not already its URL.
fn text_with_links(lines: &[RichLine]) -> String {
    struct OpenLink<'a> {
        url: &'a str,
        text: String,
        /// Where the link's text ends in the output, which may be lines before the link closes.
        end: usize,
    }

    fn close(out: &mut String, link: Option<OpenLink<'_>>) {
        let Some(link) = link else { return };
        let text = link.text.trim();
        let bare = link.url.strip_prefix("mailto:").unwrap_or(link.url);
        if text != link.url && text != bare {
            out.insert_str(link.end, &format!(" <{}>", link.url));
        }
    }

    let mut out = String::new();
    let mut open: Option<OpenLink<'_>> = None;
    for line in lines {
        for piece in line.tagged_strings() {
            let url = piece.tag.iter().find_map(|annotation| match annotation {
                html2text::render::RichAnnotation::Link(url) => Some(url.as_str()),
                _ => None,
            });
            if open.as_ref().map(|link| link.url) != url {
                close(&mut out, open.take());
                open = url.map(|url| OpenLink { url, text: String::new(), end: 0 });
            }
            out.push_str(&piece.s);
            if let Some(link) = open.as_mut() {
                link.text.push_str(&piece.s);
                link.end = out.len();
            }
        }
        out.push('\n');
    }
    close(&mut out, open);

    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    lines.join("\n").trim_matches('\n').to_owned()
}

/// A last resort for [`to_text`]: the text without tags or line structure.
fn strip_tags(html: &str) -> String {
    let text = ammonia::Builder::empty().clean(html).to_string();
    // Undo html5ever's text escaping (these are the only entities it writes in text).
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&")
}

/// A `{{ name }}` found in a text, with the byte offset just past its closing braces.
struct Placeholder<'a> {
    name: &'a str,
    end: usize,
}

/// Reads a placeholder starting at byte `start` of `text`; `None` if there is none there.
fn placeholder_at(text: &str, start: usize) -> Option<Placeholder<'_>> {
    let rest = text.get(start..)?.strip_prefix("{{")?;
    let inner = skip_spaces(rest);
    let name_len = inner.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.').count();
    if name_len == 0 {
        return None;
    }
    let (name, after) = inner.split_at(name_len);
    let after = skip_spaces(after).strip_prefix("}}")?;
    Some(Placeholder { name, end: text.len() - after.len() })
}

/// Skips the spaces an editor may put inside the braces, including non-breaking ones
/// (`&nbsp;` once serialised).
fn skip_spaces(mut text: &str) -> &str {
    loop {
        let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\u{a0}']);
        match trimmed.strip_prefix("&nbsp;") {
            Some(rest) => text = rest,
            None => return trimmed,
        }
    }
}

/// Names of the placeholders in `html` that are not custom values, first occurrence first.
fn unknown_names(html: &str) -> Vec<String> {
    let mut unknown: Vec<String> = Vec::new();
    let mut from = 0;
    while let Some(offset) = html[from..].find("{{") {
        let start = from + offset;
        match placeholder_at(html, start) {
            Some(placeholder) => {
                let known = CUSTOM_VALUES.iter().any(|value| value.name == placeholder.name);
                if !known && !unknown.iter().any(|name| name == placeholder.name) {
                    unknown.push(placeholder.name.to_owned());
                }
                from = placeholder.end;
            }
            // `{` is one byte, so this stays on a character boundary.
            None => from = start + 1,
        }
    }
    unknown
}

fn unknown_custom_values(names: &[String]) -> Error {
    let noun = if names.len() == 1 { "value" } else { "values" };
    let list: Vec<String> = names.iter().map(|name| format!("{{{{{name}}}}}")).collect();
    Error::invalid("html", format!("unknown custom {noun} {}", list.join(", ")))
}

fn too_long() -> Error {
    Error::invalid("html", format!("the signature is longer than {MAX_HTML_BYTES} bytes"))
}

/// Whether an image may load from `src`: any `https://` URL, or a URL on the gateway's origin.
fn image_allowed(src: &str, own_origin: &str) -> bool {
    if starts_with_ignore_case(src, "https://") {
        return true;
    }
    // The origin must end where the URL's authority ends: `http://host:8080.evil.test/` and
    // `http://host:8080@evil.test/` start with the same characters but go elsewhere.
    !own_origin.is_empty()
        && starts_with_ignore_case(src, own_origin)
        && matches!(src.as_bytes().get(own_origin.len()), None | Some(b'/' | b'?' | b'#'))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len() && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn push_html_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Percent-encodes all but unreserved characters, so a value is data inside the URL and never
/// its structure (no `/`, `?`, `#`, `:` or quote survives). In a `mailto:` link, `@` and `+`
/// stay readable: they belong to an address, and mail clients expect them literal.
fn push_url_encoded(out: &mut String, value: &str, in_mailto: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (in_mailto && matches!(b, b'@' | b'+'));
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:8080";

    fn clean(html: &str) -> String {
        Sanitizer::new(ORIGIN).clean(html).expect("the signature is accepted")
    }

    /// The message of an invalid-input error on `html`; fails the test for anything else.
    fn refused(result: Result<String>) -> String {
        match result {
            Err(Error::Invalid { field, message, .. }) => {
                assert_eq!(field, "html");
                message.into_owned()
            }
            other => panic!("expected the html to be refused, got {other:?}"),
        }
    }

    fn zoe() -> Values {
        Values {
            full_name: "Zoë Ångström".into(),
            first_name: "Zoë".into(),
            last_name: "Ångström".into(),
            display_name: "Zo".into(),
            email: "zoe+sig@acme.test".into(),
            phone: "+44 20 7946 0000".into(),
            job_title: "Head of Things".into(),
            workspace_name: "Acme".into(),
        }
    }

    #[test]
    fn script_tags_are_removed_with_their_content() {
        let html = clean("<p>Hi<script>alert(1)</script></p><style>p{}</style>");
        assert_eq!(html, "<p>Hi</p>");
    }

    #[test]
    fn event_handlers_such_as_onerror_are_removed() {
        let html = clean(r#"<img src="https://cdn.test/a.png" onerror="alert(1)"><p onclick="x()">Hi</p>"#);
        assert!(!html.contains("onerror") && !html.contains("onclick"), "{html}");
        assert!(html.contains(r#"src="https://cdn.test/a.png""#), "{html}");
    }

    #[test]
    fn style_attributes_and_embedded_frames_are_removed() {
        let html = clean(r#"<p style="position:fixed">Hi</p><iframe src="https://evil.test"></iframe><object data="x"></object>"#);
        assert_eq!(html, "<p>Hi</p>");
    }

    #[test]
    fn javascript_link_is_removed_but_its_text_kept() {
        let html = clean(r#"<a href="javascript:alert(1)">Call me</a>"#);
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("Call me"), "{html}");
    }

    #[test]
    fn http_https_and_mailto_links_are_kept_with_noopener() {
        for href in ["http://acme.test/", "https://acme.test/", "mailto:zoe@acme.test"] {
            let html = clean(&format!(r#"<a href="{href}">Acme</a>"#));
            assert_eq!(html, format!(r#"<a href="{href}" rel="noopener noreferrer">Acme</a>"#));
        }
    }

    #[test]
    fn relative_links_and_images_are_dropped() {
        let html = clean(r#"<a href="/settings">Settings</a><img src="/logo.png" alt="Logo">"#);
        assert!(!html.contains("href") && !html.contains("src"), "{html}");
    }

    #[test]
    fn https_image_is_kept() {
        let html = clean(r#"<img src="https://cdn.acme.test/logo.png" alt="Acme" width="120" height="40">"#);
        assert_eq!(html, r#"<img src="https://cdn.acme.test/logo.png" alt="Acme" width="120" height="40">"#);
    }

    #[test]
    fn plain_http_image_from_elsewhere_is_refused() {
        let html = clean(r#"<img src="http://evil.test/pixel.gif" alt="x">"#);
        assert_eq!(html, r#"<img alt="x">"#);
    }

    #[test]
    fn image_from_own_origin_is_kept() {
        let src = "http://127.0.0.1:8080/files/logo.png";
        let html = clean(&format!(r#"<img src="{src}">"#));
        assert_eq!(html, format!(r#"<img src="{src}">"#));
    }

    #[test]
    fn image_from_a_lookalike_of_own_origin_is_refused() {
        for src in ["http://127.0.0.1:8080.evil.test/a.png", "http://127.0.0.1:8080@evil.test/a.png", "http://127.0.0.1:80801/a.png"] {
            let html = clean(&format!(r#"<img src="{src}">"#));
            assert_eq!(html, "<img>", "{src}");
        }
    }

    #[test]
    fn data_url_image_is_dropped() {
        let html = clean(r#"<img src="data:image/png;base64,iVBORw0KGgo=" alt="x">"#);
        assert_eq!(html, r#"<img alt="x">"#);
    }

    #[test]
    fn unknown_custom_value_is_refused_naming_it() {
        let message = refused(Sanitizer::new(ORIGIN).clean("<p>{{user.favourite_colour}}</p>"));
        assert!(message.contains("{{user.favourite_colour}}"), "{message}");
    }

    #[test]
    fn unknown_custom_value_in_an_attribute_is_refused() {
        let sanitizer = Sanitizer::new(ORIGIN);
        for html in [r#"<a href="mailto:{{user.mail}}">Mail</a>"#, r#"<p onclick="{{user.mail}}">Hi</p>"#] {
            let message = refused(sanitizer.clean(html));
            assert!(message.contains("user.mail"), "{message}");
        }
    }

    #[test]
    fn unknown_custom_value_assembled_by_sanitising_is_refused() {
        let sanitizer = Sanitizer::new(ORIGIN);
        for html in ["{<script></script>{user.secret}}", "&#123;&#123;user.secret&#125;&#125;"] {
            let message = refused(sanitizer.clean(html));
            assert!(message.contains("user.secret"), "{message}");
        }
    }

    #[test]
    fn unclosed_placeholder_is_left_as_literal_text() {
        let html = clean("<p>{{user.first_name</p>");
        assert_eq!(render_html(&html, &zoe()), "<p>{{user.first_name</p>");
    }

    #[test]
    fn every_custom_value_renders() {
        let values = zoe();
        for custom in CUSTOM_VALUES {
            let html = clean(&format!("<p>{{{{{}}}}}</p>", custom.name));
            let expected = values.get(custom.name).expect("every custom value has a value");
            assert_eq!(to_text(&render_html(&html, &values)), expected, "{}", custom.name);
        }
    }

    #[test]
    fn custom_values_include_the_sender_and_workspace_names() {
        for name in [
            "user.full_name",
            "user.first_name",
            "user.last_name",
            "user.display_name",
            "user.email",
            "user.phone",
            "user.job_title",
            "workspace.name",
        ] {
            assert!(CUSTOM_VALUES.iter().any(|value| value.name == name), "{name}");
        }
    }

    #[test]
    fn values_are_html_escaped() {
        let values = Values { full_name: r#"<b>x</b> & "y""#.into(), ..zoe() };
        let html = clean(r#"<p title="{{user.full_name}}">{{user.full_name}}</p>"#);
        assert_eq!(
            render_html(&html, &values),
            r#"<p title="&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;">&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;</p>"#
        );
    }

    #[test]
    fn spaces_inside_braces_are_allowed() {
        let html = clean("<p>{{ user.first_name }} {{user.last_name  }} {{&nbsp;workspace.name&nbsp;}}</p>");
        assert_eq!(render_html(&html, &zoe()), "<p>Zoë Ångström Acme</p>");
    }

    #[test]
    fn mailto_link_with_the_email_renders_the_address() {
        let html = clean(r#"<a href="mailto:{{ user.email }}">{{user.email}}</a>"#);
        assert_eq!(render_html(&html, &zoe()), r#"<a href="mailto:zoe+sig@acme.test" rel="noopener noreferrer">zoe+sig@acme.test</a>"#);
    }

    #[test]
    fn value_in_a_link_cannot_leave_the_attribute_or_restructure_the_url() {
        let values = Values { job_title: r#"a" onclick="x()" /../?q#"#.into(), ..zoe() };
        let html = clean(r#"<a href="https://acme.test/team/{{user.job_title}}">Team</a>"#);
        assert_eq!(
            render_html(&html, &values),
            r#"<a href="https://acme.test/team/a%22%20onclick%3D%22x%28%29%22%20%2F..%2F%3Fq%23" rel="noopener noreferrer">Team</a>"#
        );
    }

    #[test]
    fn value_cannot_supply_the_link_scheme() {
        let html = clean(r#"<a href="{{user.email}}">Mail</a>"#);
        assert!(!html.contains("href"), "{html}");
    }

    #[test]
    fn over_long_html_is_refused() {
        let html = format!("<p>{}</p>", "a".repeat(MAX_HTML_BYTES));
        refused(Sanitizer::new(ORIGIN).clean(&html));
    }

    #[test]
    fn html_that_grows_past_the_limit_when_cleaned_is_refused() {
        // Each `<a href=http://a>` gains closing tags, quotes and a `rel` when cleaned.
        let html = "<a href=http://a>".repeat(MAX_HTML_BYTES / 20);
        assert!(html.len() <= MAX_HTML_BYTES);
        refused(Sanitizer::new(ORIGIN).clean(&html));
    }

    #[test]
    fn to_text_gives_readable_text_with_the_rendered_name_and_no_tags() {
        let html = clean(
            "<p><b>{{user.full_name}}</b><br>{{user.job_title}}, {{workspace.name}}</p>\
             <p><a href=\"https://acme.test\">Our website</a> | <a href=\"mailto:{{user.email}}\">{{user.email}}</a></p>",
        );
        let text = to_text(&render_html(&html, &zoe()));
        assert_eq!(text, "Zoë Ångström\nHead of Things, Acme\n\nOur website <https://acme.test> | zoe+sig@acme.test");
    }

    #[test]
    fn to_text_lays_out_table_cells_one_per_line() {
        let html = clean(
            r#"<table><tr><td><img src="https://acme.test/logo.png" alt="Acme"></td><td>{{user.full_name}}<br>{{user.phone}}</td></tr></table>"#,
        );
        let text = to_text(&render_html(&html, &zoe()));
        assert!(!text.contains('<') && !text.contains('│') && !text.contains('─'), "{text}");
        assert!(text.contains("Zoë Ångström\n+44 20 7946 0000"), "{text}");
    }

    #[test]
    fn non_ascii_text_survives() {
        let values = Values { full_name: "李小龍".into(), ..zoe() };
        let html = clean("<p>Zoë · {{user.full_name}} 🎉</p>");
        let rendered = render_html(&html, &values);
        assert_eq!(rendered, "<p>Zoë · 李小龍 🎉</p>");
        assert_eq!(to_text(&rendered), "Zoë · 李小龍 🎉");
    }

    #[test]
    fn deeply_nested_markup_neither_panics_nor_overflows() {
        let html = format!("{}deep{}", "<blockquote><div>".repeat(500), "</div></blockquote>".repeat(500));
        let text = to_text(&render_html(&clean(&html), &zoe()));
        assert!(text.contains("deep"), "{text}");
    }

    #[test]
    fn text_fallback_strips_tags_and_unescapes() {
        assert_eq!(strip_tags("<p>a &amp; b &lt;c&gt;</p><br>d"), "a & b <c>d");
    }

    #[test]
    fn sanitizer_can_be_shared_between_requests() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Sanitizer>();
    }
}
