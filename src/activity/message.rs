//! What a mail activity event records about one email: the activity store's own message
//! type, which the MIME parser (`mailboxes::parse`) fills and GraphQL (`activity::graphql`)
//! shows; and the rules for showing its HTML and comparing its Message-IDs.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most bytes kept for [`MessageData::contents`] and [`MessageData::html`] (and the title),
/// cut on a char boundary: the event store holds a readable message, not an archive of it.
pub const MAX_CONTENTS: usize = 256 * 1024;

/// One mailbox from an address header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// The display name, decoded from RFC 2047 encoded words; `None` when absent or blank.
    pub name: Option<String>,
    /// The address as written (trimmed, never case-folded: matching folds case elsewhere).
    pub email: String,
}

/// A part of the message that is a file rather than the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The decoded file name (RFC 2231 `filename*` or RFC 2047 `name`), when the sender gave one.
    pub name: Option<String>,
    /// `type/subtype`, lower-cased.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
}

/// What a mail event records about one message (stored as its `data`, JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageData {
    /// The decoded subject; `""` when there is none.
    pub title: String,
    /// The plain-text body, or text made from the sanitised HTML when there is only HTML;
    /// at most [`MAX_CONTENTS`] bytes.
    pub contents: String,
    /// The HTML body as the sender wrote it (cut where it nests too deeply, and at
    /// `mailboxes::parse::MAX_HTML_INPUT` bytes); `None` when the message has no HTML part. **Unsanitised:**
    /// show it only through [`MessageData::html`] or [`sanitise_html`]. Sanitising is left to
    /// whoever shows it because it is most of the parsing time, and ingest must keep up with
    /// the server.
    pub html_source: Option<String>,
    pub from: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// Present on the sender's own copy (a Sent folder's, or what we sent), rarely otherwise.
    pub bcc: Vec<Address>,
    pub reply_to: Vec<Address>,
    /// The Date header in UTC; `None` when missing or naming a day that does not exist.
    pub date: Option<DateTime<Utc>>,
    /// Without angle brackets, trimmed.
    pub message_id: Option<String>,
    /// Ids without angle brackets.
    pub in_reply_to: Vec<String>,
    /// Ids without angle brackets, oldest first as written.
    pub references: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// Why the message could not be fully read; `None` when it was.
    pub malformed: Option<String>,
}

impl MessageData {
    /// The HTML body, sanitised.
    pub fn html(&self) -> Option<String> {
        self.html_source.as_deref().map(sanitise_html)
    }

    /// The key ingest deduplicates by after (mailbox, UIDVALIDITY, UID): `mid:<message-id>`
    /// lower-cased, or, for a message without a Message-ID, `sha256:<hex>` of the raw bytes so
    /// the same message fetched twice is still recognised.
    pub fn dedupe_key(&self, raw: &[u8]) -> String {
        match &self.message_id {
            Some(id) => format!("mid:{}", id_key(id)),
            None => format!("sha256:{:x}", Sha256::digest(raw)),
        }
    }
}

/// The form Message-IDs are compared in (own ids, In-Reply-To, References): lower-cased, as
/// in [`MessageData::dedupe_key`]. (The local part is case-sensitive in theory; clients
/// that rewrite ids change their case far more often than two ids differ only by it.)
pub fn id_key(id: &str) -> String {
    id.to_lowercase()
}

/// The sanitiser, built once: configuring ammonia builds a dozen hash sets, a quarter of its
/// time on a 2 KB message (26 µs shared, 34 µs built per call). Read-only, so sharing is safe.
static SANITISER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    // Defaults drop <script> and <style> with their content; <title> too, or the document
    // title would show up as the first line of the body.
    builder.add_clean_content_tags(["title"]);
    builder
});

/// HTML safe to show: ammonia's defaults (no scripts, styles, event handlers or
/// `javascript:` links), trimmed and capped at [`MAX_CONTENTS`] bytes.
pub fn sanitise_html(source: &str) -> String {
    let mut clean = SANITISER.clean(source).to_string();
    // Removed <head>, <script> and <style> leave blank lines behind.
    if clean.trim().len() != clean.len() {
        clean = clean.trim().to_owned();
    }
    if clean.len() <= MAX_CONTENTS {
        return clean;
    }
    let mut end = clean.floor_char_boundary(MAX_CONTENTS);
    // Don't end on half a tag. A browser drops an unfinished tag at the end of input anyway,
    // so this is tidiness, not safety: a prefix of sanitised HTML introduces nothing new.
    if let Some(open) = clean[..end].rfind('<')
        && !clean[open..end].contains('>')
    {
        end = open;
    }
    clean[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitiser_configuration_is_accepted_by_ammonia() {
        // ammonia asserts its configuration is consistent when it first cleans; a bad change to
        // SANITISER must fail here, not on the first HTML message in production.
        assert_eq!(SANITISER.clean("<title>t</title><p>x</p>").to_string(), "<p>x</p>");
    }
}
