//! The account's Sent folder: finding it (the `\Sent` special-use attribute, else a
//! well-known name) and keeping a copy of mail the connector sent (APPEND with `\Seen`), for
//! servers that do not do it themselves.

use crate::Context;
use crate::classify::{ImapFailure, ImapStage, classify_imap};
use crate::conn::{Conn, ListedFolder};
use crate::connect::Target;
use crate::wire::{quote_mailbox, quote_raw};

/// Names clients and servers give the Sent folder when they do not mark it, in order of
/// preference.
const SENT_NAMES: [&str; 3] = ["Sent", "Sent Items", "Sent Messages"];

/// A folder to sync or append to: how people read its name, and how commands send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SentFolder {
    pub name: String,
    /// Quoted, as the server spelled it.
    pub wire: String,
}

/// Chooses the Sent folder among listed ones: the first selectable folder marked `\Sent`,
/// else one with a well-known name at the top level or under INBOX (`INBOX.Sent` on servers
/// whose folders all live under INBOX). Never `exclude` (the folder synced anyway).
pub(crate) fn pick_sent<'a>(listed: &'a [ListedFolder], exclude: &str) -> Option<&'a ListedFolder> {
    let candidates = || listed.iter().filter(|f| f.selectable && f.name != exclude);
    if let Some(marked) = candidates().find(|f| f.sent) {
        return Some(marked);
    }
    SENT_NAMES.iter().find_map(|wanted| {
        candidates().find(|f| {
            let leaf = match f.delimiter.as_deref().filter(|d| !d.is_empty()) {
                Some(d) => match f.name.split_once(d) {
                    Some((parent, leaf)) if parent.eq_ignore_ascii_case("INBOX") => leaf,
                    Some(_) => return false,
                    None => f.name.as_str(),
                },
                None => f.name.as_str(),
            };
            leaf.eq_ignore_ascii_case(wanted)
        })
    })
}

/// Finds the Sent folder: `LIST (SPECIAL-USE)` when the server can answer it, then a plain
/// LIST (its attributes, then the names). `None` when the account has none, or the server
/// refuses to list.
pub(crate) async fn find(conn: &mut Conn, exclude: &str, ctx: &Context) -> Result<Option<SentFolder>, ImapFailure> {
    let limit = ctx.options.command_timeout;
    let mut listed = Vec::new();
    if conn.caps.special_use && conn.caps.list_extended {
        match conn.list(r#"LIST (SPECIAL-USE) "" "*""#, limit).await {
            Ok(folders) => listed = folders,
            // A server that announces the extension but refuses the command: list plainly.
            Err(ImapFailure::Refused { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    if pick_sent(&listed, exclude).is_none() {
        listed = match conn.list(r#"LIST "" "*""#, limit).await {
            Ok(folders) => folders,
            Err(ImapFailure::Refused { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
    }
    Ok(pick_sent(&listed, exclude).and_then(|f| Some(SentFolder { name: f.name.clone(), wire: quote_raw(&f.wire_name)? })))
}

/// Appends `raw` to the account's Sent folder, marked read, over a connection of its own.
/// The error says why in words for people (it is a warning on a send that succeeded).
pub(crate) async fn save_copy(ctx: &Context, target: &Target, raw: &[u8]) -> Result<(), String> {
    let server = target.server();
    let fail = |failure| classify_imap(ImapStage::Command, &server, failure).to_string();
    let mut conn = Conn::open(ctx, target).await.map_err(|e| e.to_string())?;
    let limit = ctx.options.command_timeout;
    let result = async {
        let folder = match &target.sent_folder {
            Some(name) => SentFolder {
                name: name.clone(),
                wire: quote_mailbox(name).ok_or_else(|| format!("the Sent folder {name:?} is not a folder name"))?,
            },
            None => find(&mut conn, "", ctx).await.map_err(fail)?.ok_or_else(|| format!("{server}: the account has no Sent folder"))?,
        };
        conn.append(&folder.wire, r"(\Seen)", raw, limit)
            .await
            .map_err(|f| format!("could not keep a copy in {}: {}", folder.name, fail(f)))
    }
    .await;
    conn.logout(limit.min(std::time::Duration::from_secs(5))).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, sent: bool) -> ListedFolder {
        ListedFolder { wire_name: name.into(), name: name.into(), delimiter: Some("/".into()), sent, selectable: true }
    }

    #[test]
    fn the_sent_attribute_wins_over_names() {
        let listed = [folder("INBOX", false), folder("Sent", false), folder("Gesendet", true)];
        assert_eq!(pick_sent(&listed, "INBOX").map(|f| f.name.as_str()), Some("Gesendet"));
    }

    #[test]
    fn without_the_attribute_a_well_known_name_is_used() {
        let listed = [folder("INBOX", false), folder("Archive/Sent", false), folder("sent items", false)];
        assert_eq!(pick_sent(&listed, "INBOX").map(|f| f.name.as_str()), Some("sent items"));
        let mut dotted = folder("INBOX.Sent Messages", false);
        dotted.delimiter = Some(".".into());
        assert_eq!(pick_sent(&[dotted], "INBOX").map(|f| f.name.as_str()), Some("INBOX.Sent Messages"));
        assert_eq!(pick_sent(&[folder("INBOX", false), folder("Drafts", false)], "INBOX"), None);
    }

    #[test]
    fn unselectable_and_excluded_folders_are_skipped() {
        let mut hidden = folder("[Gmail]/Sent Mail", true);
        hidden.selectable = false;
        assert_eq!(pick_sent(&[hidden], "INBOX"), None);
        // Syncing Sent as the main folder: there is no second one.
        assert_eq!(pick_sent(&[folder("Sent", true)], "Sent"), None);
    }
}
