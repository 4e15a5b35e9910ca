//! Checkpoints and message ids, and how one listing of several folders becomes the SDK's
//! [`MessageRef`]s. Pure: no I/O, so the rules are unit-tested on their own.
//!
//! A checkpoint holds one position per synced folder (v2):
//! `{"v":2,"folders":[{"folder":"INBOX","uidvalidity":1700000000,"uid":42},{"folder":"Sent",…}]}`.
//! A position means: every message of that folder at or below `uid` is recorded or older than
//! the sync-from date. The one-folder form of earlier versions (v1,
//! `{"v":1,"folder":"INBOX","uidvalidity":…,"uid":…}`) still reads; folders it does not name
//! are listed from the sync-from date.
//!
//! Ids are `FOLDER/UIDVALIDITY/UID` (`INBOX/1700000000/42`), or `gm/<X-GM-MSGID>` on Gmail,
//! where one message can sit in several folders (labels) and must still be one message.

use std::collections::HashSet;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use concierge_connector_sdk::{Checkpoint, MessageRef};
use serde::{Deserialize, Serialize};

/// One folder's place in a sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FolderPosition {
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// A whole checkpoint: one position per folder it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub folders: Vec<FolderPosition>,
}

/// Either version, as stored.
#[derive(Deserialize)]
struct Stored {
    /// v1 checkpoints written before the version field existed have none.
    #[serde(default = "version_one")]
    v: u32,
    folder: Option<String>,
    uidvalidity: Option<u32>,
    uid: Option<u32>,
    folders: Option<Vec<FolderPosition>>,
}

fn version_one() -> u32 {
    1
}

impl Position {
    /// `None` for anything this connector did not write (or a later version did).
    pub fn parse(checkpoint: &Checkpoint) -> Option<Position> {
        let stored: Stored = serde_json::from_str(&checkpoint.0).ok()?;
        let folders = match stored.v {
            1 => vec![FolderPosition { folder: stored.folder?, uidvalidity: stored.uidvalidity?, uid: stored.uid? }],
            2 => stored.folders?,
            _ => return None,
        };
        let mut names = HashSet::new();
        if folders.is_empty() || !folders.iter().all(|f| names.insert(f.folder.as_str())) {
            return None;
        }
        Some(Position { folders })
    }

    pub fn get(&self, folder: &str) -> Option<&FolderPosition> {
        self.folders.iter().find(|f| f.folder == folder)
    }

    /// The v2 JSON (the same as the listing writes, see [`message_refs`]).
    #[cfg(test)]
    pub fn to_checkpoint(&self) -> Checkpoint {
        #[derive(Serialize)]
        struct V2<'a> {
            v: u32,
            folders: &'a [FolderPosition],
        }
        Checkpoint(serde_json::to_string(&V2 { v: 2, folders: &self.folders }).unwrap_or_default())
    }
}

/// A message id, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageId<'a> {
    /// `FOLDER/UIDVALIDITY/UID`.
    Folder { folder: &'a str, uidvalidity: u32, uid: u32 },
    /// `gm/<X-GM-MSGID>`.
    Gmail(u64),
}

impl MessageId<'_> {
    /// Folders may contain `/`, so the folder form splits from the right; a Gmail id has
    /// exactly one `/`, so it cannot be mistaken for one.
    pub fn parse(id: &str) -> Option<MessageId<'_>> {
        let mut parts = id.rsplitn(3, '/');
        let last = parts.next()?;
        let middle = parts.next()?;
        match parts.next() {
            Some(folder) => Some(MessageId::Folder { folder, uidvalidity: middle.parse().ok()?, uid: last.parse().ok()? }),
            None if middle == "gm" => last.parse().ok().map(MessageId::Gmail),
            None => None,
        }
    }
}

fn folder_id(folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!("{folder}/{uidvalidity}/{uid}")
}

fn gmail_id(msgid: u64) -> String {
    format!("gm/{msgid}")
}

/// What one listing found in one folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FolderListing {
    pub folder: String,
    pub uidvalidity: u32,
    /// The position before the first listed message: the checkpoint's, or, listing from the
    /// sync-from date, just below the first message listed (every lower UID is older), or the
    /// folder's highest UID when nothing is listed.
    pub start: u32,
    /// Ascending UIDs.
    pub messages: Vec<Listed>,
}

impl FolderListing {
    /// The position once every listed message is recorded.
    fn end(&self) -> u32 {
        self.messages.last().map_or(self.start, |m| m.uid)
    }
}

/// One listed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listed {
    pub uid: u32,
    /// Gmail's X-GM-MSGID, when the session uses Gmail's ids.
    pub gm_msgid: Option<u64>,
    pub received_at: Option<DateTime<Utc>>,
}

/// The refs of one listing: folder by folder in the order given (the configured folder first,
/// then Sent), oldest first within each. Each ref's checkpoint has every folder's position
/// once it and everything before it is recorded: folders listed earlier at their end, its own
/// at its UID, later ones at their start.
///
/// A Gmail message already listed in an earlier folder (sent to oneself: in INBOX and Sent)
/// is left out the second time; the ref before it takes its checkpoint instead, which is
/// sound because the message it stands for was listed (and so recorded) before that ref.
///
/// The constant parts of each folder's checkpoints are formatted once: an initial sync writes
/// one id and one checkpoint per message.
pub(crate) fn message_refs(listings: &[FolderListing]) -> Vec<MessageRef> {
    let entry = |l: &FolderListing, uid: u32| {
        // A string always serializes; the fallback only keeps this path free of panics.
        let folder = serde_json::to_string(&l.folder).unwrap_or_else(|_| "\"\"".into());
        format!(r#"{{"folder":{folder},"uidvalidity":{},"uid":{uid}}}"#, l.uidvalidity)
    };
    let total = listings.iter().map(|l| l.messages.len()).sum();
    let mut out: Vec<MessageRef> = Vec::with_capacity(total);
    let mut seen_gmail: HashSet<u64> = HashSet::new();
    for (i, listing) in listings.iter().enumerate() {
        if listing.messages.is_empty() {
            continue;
        }
        let mut prefix = String::from(r#"{"v":2,"folders":["#);
        for before in &listings[..i] {
            prefix.push_str(&entry(before, before.end()));
            prefix.push(',');
        }
        let folder = serde_json::to_string(&listing.folder).unwrap_or_else(|_| "\"\"".into());
        let _ = write!(prefix, r#"{{"folder":{folder},"uidvalidity":{},"uid":"#, listing.uidvalidity);
        let mut suffix = String::from("}");
        for after in &listings[i + 1..] {
            suffix.push(',');
            suffix.push_str(&entry(after, after.start));
        }
        suffix.push_str("]}");
        let checkpoint = |uid: u32| {
            let mut cp = String::with_capacity(prefix.len() + suffix.len() + 10);
            cp.push_str(&prefix);
            let _ = write!(cp, "{uid}");
            cp.push_str(&suffix);
            Checkpoint(cp)
        };
        for m in &listing.messages {
            let id = match m.gm_msgid {
                Some(msgid) => {
                    if !seen_gmail.insert(msgid) {
                        if let Some(last) = out.last_mut() {
                            last.checkpoint = checkpoint(m.uid);
                        }
                        continue;
                    }
                    gmail_id(msgid)
                }
                None => folder_id(&listing.folder, listing.uidvalidity, m.uid),
            };
            out.push(MessageRef { id, checkpoint: checkpoint(m.uid), received_at: m.received_at, size: None });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(folders: &[(&str, u32, u32)]) -> Position {
        Position { folders: folders.iter().map(|(f, v, u)| FolderPosition { folder: (*f).into(), uidvalidity: *v, uid: *u }).collect() }
    }

    fn listing(folder: &str, uidvalidity: u32, start: u32, uids: &[u32]) -> FolderListing {
        FolderListing {
            folder: folder.into(),
            uidvalidity,
            start,
            messages: uids.iter().map(|&uid| Listed { uid, gm_msgid: None, received_at: None }).collect(),
        }
    }

    #[test]
    fn v2_checkpoints_round_trip() {
        let p = position(&[("INBOX", 1_700_000_000, 42), ("A \"quoted\" \\ folder/ü", 7, u32::MAX)]);
        let cp = p.to_checkpoint();
        assert!(cp.0.starts_with(r#"{"v":2,"folders":[{"folder":"INBOX","uidvalidity":1700000000,"uid":42},"#), "{}", cp.0);
        assert_eq!(Position::parse(&cp), Some(p));
    }

    #[test]
    fn v1_checkpoints_still_read_as_one_folder() {
        let v1 = Checkpoint(r#"{"v":1,"folder":"INBOX","uidvalidity":1700000000,"uid":42}"#.into());
        assert_eq!(Position::parse(&v1), Some(position(&[("INBOX", 1_700_000_000, 42)])));
        let unversioned = Checkpoint(r#"{"folder":"INBOX","uidvalidity":1,"uid":2}"#.into());
        assert_eq!(Position::parse(&unversioned).map(|p| p.folders[0].uid), Some(2));
    }

    #[test]
    fn foreign_or_broken_checkpoints_are_refused() {
        for text in [
            "garbage",
            r#"{"v":3,"folders":[{"folder":"INBOX","uidvalidity":1,"uid":2}]}"#,
            r#"{"v":2,"folders":[]}"#,
            r#"{"v":2}"#,
            r#"{"v":1,"folder":"INBOX","uid":2}"#,
            r#"{"v":2,"folders":[{"folder":"INBOX","uidvalidity":1,"uid":2},{"folder":"INBOX","uidvalidity":1,"uid":3}]}"#,
        ] {
            assert_eq!(Position::parse(&Checkpoint(text.into())), None, "{text}");
        }
    }

    #[test]
    fn message_ids_split_from_the_right_and_gmail_ids_are_their_own_form() {
        assert_eq!(MessageId::parse("Archive/2024/7/42"), Some(MessageId::Folder { folder: "Archive/2024", uidvalidity: 7, uid: 42 }));
        assert_eq!(MessageId::parse("INBOX/7/42"), Some(MessageId::Folder { folder: "INBOX", uidvalidity: 7, uid: 42 }));
        assert_eq!(MessageId::parse("gm/1278455344230334865"), Some(MessageId::Gmail(1_278_455_344_230_334_865)));
        // A folder called "gm" keeps the folder form.
        assert_eq!(MessageId::parse("gm/7/42"), Some(MessageId::Folder { folder: "gm", uidvalidity: 7, uid: 42 }));
        for bad in ["INBOX/7/x", "42", "gm/x", "gx/42", "gm/"] {
            assert_eq!(MessageId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_ref_covers_its_folder_up_to_it_and_the_other_folders_as_listed() {
        let refs = message_refs(&[listing("INBOX", 5, 10, &[11, 14]), listing("Sent", 9, 2, &[3])]);
        let ids: Vec<&str> = refs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["INBOX/5/11", "INBOX/5/14", "Sent/9/3"]);
        let at = |i: usize| Position::parse(&refs[i].checkpoint).expect("parses");
        assert_eq!(at(0), position(&[("INBOX", 5, 11), ("Sent", 9, 2)]));
        assert_eq!(at(1), position(&[("INBOX", 5, 14), ("Sent", 9, 2)]));
        assert_eq!(at(2), position(&[("INBOX", 5, 14), ("Sent", 9, 3)]));
        assert_eq!(refs[2].checkpoint, position(&[("INBOX", 5, 14), ("Sent", 9, 3)]).to_checkpoint());
    }

    #[test]
    fn a_folder_with_nothing_new_keeps_its_start_in_every_checkpoint() {
        let refs = message_refs(&[listing("INBOX", 5, 10, &[]), listing("Sent", 9, 0, &[1, 2])]);
        assert_eq!(refs.len(), 2);
        assert_eq!(Position::parse(&refs[1].checkpoint), Some(position(&[("INBOX", 5, 10), ("Sent", 9, 2)])));
        assert!(message_refs(&[listing("INBOX", 5, 10, &[]), listing("Sent", 9, 0, &[])]).is_empty());
    }

    #[test]
    fn a_gmail_message_in_two_folders_is_listed_once_and_its_progress_kept() {
        let mut inbox = listing("INBOX", 5, 0, &[1, 2]);
        inbox.messages[0].gm_msgid = Some(100);
        inbox.messages[1].gm_msgid = Some(200);
        let mut sent = listing("[Gmail]/Sent Mail", 9, 0, &[7, 8]);
        sent.messages[0].gm_msgid = Some(300);
        // Sent to oneself: the same message, label Sent.
        sent.messages[1].gm_msgid = Some(100);
        let refs = message_refs(&[inbox, sent]);
        let ids: Vec<&str> = refs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["gm/100", "gm/200", "gm/300"]);
        // The last ref stands for the left-out copy too: the next listing starts after it.
        assert_eq!(Position::parse(&refs[2].checkpoint), Some(position(&[("INBOX", 5, 2), ("[Gmail]/Sent Mail", 9, 8)])));
    }
}
