//! The IMAP [`MailSession`]: lists, fetches and waits on the configured folder and the
//! account's Sent folder, both opened read-only, and recovers from calls the gateway
//! cancelled.
//!
//! One connection serves both folders, EXAMINEd in turn. Listing does Sent first and the
//! configured folder last, so the session usually ends on the folder IDLE watches; the Sent
//! folder is looked at with a cheap STATUS when nothing says it changed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, Response};
use chrono::{DateTime, Utc};
use concierge_connector_sdk::{Checkpoint, ConnectorError, FieldError, MailSession, MessageRef, RawMessage, Wake, async_trait};
use tokio::time::Instant;

use crate::Context;
use crate::checkpoint::{FolderListing, FolderPosition, Listed, MessageId, Position, message_refs};
use crate::classify::{ImapFailure, ImapStage, classify_imap};
use crate::conn::{Conn, Fetched, FolderState, State, far, fetched};
use crate::connect::Target;
use crate::sent;
use crate::wire::{date_band, imap_date, quote_mailbox, uid_sets};

/// UIDs per `UID FETCH`: with compact sets (`1:2500`) the command stays short, and the
/// server streams each chunk without a round trip per message.
const FETCH_CHUNK: usize = 2500;

/// One synced folder.
struct Folder {
    /// As people read it: in ids and checkpoints.
    name: String,
    /// Quoted, as commands send it.
    wire: String,
    /// What the last listing saw, to tell later whether mail was added since.
    seen: Option<Seen>,
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    state: FolderState,
    /// The highest UID in the folder then (0 when empty).
    highest: u32,
}

impl Seen {
    /// Whether a folder now in `now` may hold mail this listing did not see. New mail always
    /// moves UIDNEXT; without UIDNEXT there is no telling, so yes.
    fn outdated_by(&self, now: FolderState) -> bool {
        now.uidnext.is_none() || self.state != now
    }
}

/// One signed-in connection, with the folders it syncs.
pub(crate) struct ImapSession {
    ctx: Arc<Context>,
    target: Target,
    conn: Option<Conn>,
    /// The configured folder first, then the Sent folder when the account has one.
    folders: Vec<Folder>,
    /// Ids are Gmail's X-GM-MSGID (the connector allows it and the server has X-GM-EXT-1).
    gmail_ids: bool,
    /// Where each Gmail id of the last listing is: folder index, UIDVALIDITY, UID. Ids from
    /// elsewhere are searched for (`locate_gmail`).
    located: HashMap<u64, (usize, u32, u32)>,
}

impl ImapSession {
    pub(crate) async fn open(ctx: Arc<Context>, target: Target) -> Result<ImapSession, ConnectorError> {
        let server = target.server();
        let fail = |stage, failure| classify_imap(stage, &server, failure);
        let limit = ctx.options.command_timeout;
        let mut conn = Conn::open(&ctx, &target).await?;
        let wire = quote_mailbox(&target.folder)
            .ok_or_else(|| ConnectorError::Settings(FieldError::new("folder", "must not contain line breaks")))?;
        // Opening the configured folder now makes a wrong folder name fail here, typed.
        conn.examine(&wire, limit).await.map_err(|f| fail(ImapStage::OpenFolder, f))?;
        let mut folders = vec![Folder { name: target.folder.clone(), wire, seen: None }];
        let named = match &target.sent_folder {
            Some(name) if name != &target.folder => quote_mailbox(name).map(|wire| sent::SentFolder { name: name.clone(), wire }),
            Some(_) => None,
            None => sent::find(&mut conn, &target.folder, &ctx).await.map_err(|f| fail(ImapStage::Command, f))?,
        };
        if let Some(found) = named {
            folders.push(Folder { name: found.name, wire: found.wire, seen: None });
        }
        conn.changed = false;
        Ok(ImapSession {
            gmail_ids: ctx.gmail_extensions && conn.caps.gmail,
            ctx,
            target,
            conn: Some(conn),
            folders,
            located: HashMap::new(),
        })
    }

    fn fail(&self, stage: ImapStage, failure: ImapFailure) -> ConnectorError {
        classify_imap(stage, &self.target.server(), failure)
    }

    /// The connection, ready for a command: finishes an IDLE left by a cancelled `wait`, and
    /// reconnects when a cancelled or failed command left the connection unusable.
    async fn ready(&mut self) -> Result<&mut Conn, ConnectorError> {
        let command_timeout = self.ctx.options.command_timeout;
        let reusable = match self.conn.as_mut() {
            Some(conn) => match std::mem::replace(&mut conn.state, State::Broken) {
                State::Ready => {
                    conn.state = State::Ready;
                    true
                }
                State::Idling(tag) => conn.finish_idle(tag, command_timeout).await.is_ok(),
                State::Broken => false,
            },
            None => false,
        };
        if !reusable {
            self.conn = None;
            let mut conn = Conn::open(&self.ctx, &self.target).await?;
            // Mail may have arrived while there was no usable connection, and IDLE only
            // reports what happens after it starts: have the next wait() say so.
            conn.changed = true;
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or_else(|| ConnectorError::Protocol { message: "no IMAP connection".into() })
    }

    /// Makes folder `idx` the selected one (EXAMINE unless it already is) and returns its
    /// state. Outside a listing, a folder that gained mail since it was listed sets
    /// `changed`. `None` when the Sent folder cannot be opened any more: it is dropped.
    async fn select(&mut self, idx: usize, listing: bool) -> Result<Option<FolderState>, ConnectorError> {
        let limit = self.ctx.options.command_timeout;
        let wire = self.folders[idx].wire.clone();
        let seen = self.folders[idx].seen;
        let server = self.target.server();
        let conn = self.ready().await?;
        if let Some((selected, state)) = &conn.selected
            && *selected == wire
        {
            return Ok(Some(*state));
        }
        match conn.examine(&wire, limit).await {
            Ok(state) => {
                if !listing && seen.is_none_or(|s| s.outdated_by(state)) {
                    conn.changed = true;
                }
                Ok(Some(state))
            }
            Err(failure) => match classify_imap(ImapStage::OpenFolder, &server, failure) {
                // Deleted or renamed since the session began: sync without it.
                ConnectorError::Settings(_) if idx > 0 => {
                    tracing::warn!(folder = %self.folders[idx].name, "the Sent folder cannot be opened any more; no longer syncing it");
                    self.folders.truncate(idx);
                    self.located.retain(|_, at| at.0 < idx);
                    Ok(None)
                }
                other => Err(other),
            },
        }
    }

    /// Lists one folder after `after` (or from `since`). `None` when the folder is gone.
    async fn list_folder(
        &mut self,
        idx: usize,
        since: DateTime<Utc>,
        after: Option<FolderPosition>,
    ) -> Result<Option<FolderListing>, ConnectorError> {
        let limit = self.ctx.options.command_timeout;
        let name = self.folders[idx].name.clone();
        let wire = self.folders[idx].wire.clone();
        let seen = self.folders[idx].seen;

        // Not selected, listed before up to (or past) the checkpoint, and STATUS shows no
        // new mail since: nothing to list, and no need to leave the selected folder.
        if let (Some(pos), Some(seen)) = (&after, seen)
            && pos.uidvalidity == seen.state.uidvalidity
            && pos.uid >= seen.highest
        {
            let conn = self.ready().await?;
            if conn.selected.as_ref().is_none_or(|(w, _)| *w != wire) {
                match conn.status(&wire, limit).await {
                    Ok(now) if !seen.outdated_by(now) => {
                        return Ok(Some(FolderListing {
                            folder: name,
                            uidvalidity: pos.uidvalidity,
                            start: pos.uid,
                            messages: Vec::new(),
                        }));
                    }
                    // Gone or refused: EXAMINE below tells which.
                    Ok(_) | Err(ImapFailure::Refused { .. }) => {}
                    Err(f) => return Err(self.fail(ImapStage::Command, f)),
                }
            }
        }

        let Some(state) = self.select(idx, true).await? else {
            return Ok(None);
        };
        // UIDVALIDITY changed: the server renumbered the folder, so "after UID n" means
        // nothing any more; resync from the sync-from date, and the gateway's Message-ID
        // dedupe stops repeats.
        if let Some(pos) = &after
            && pos.uidvalidity != state.uidvalidity
        {
            return Err(ConnectorError::CheckpointReset {
                message: format!("UIDVALIDITY of {name} changed from {} to {}", pos.uidvalidity, state.uidvalidity),
            });
        }
        let gmail = self.gmail_ids;
        let conn = self.ready().await?;
        let scan = scan(conn, since, after.as_ref().map(|p| p.uid), gmail, limit).await.map_err(|f| self.fail(ImapStage::Command, f))?;
        self.folders[idx].seen = Some(Seen {
            state: FolderState {
                uidvalidity: state.uidvalidity,
                // Mail that came between EXAMINE and SEARCH was listed too.
                uidnext: state.uidnext.map(|n| n.max(scan.highest.saturating_add(1))),
            },
            highest: scan.highest,
        });
        // Listing from the date, every UID below the first one listed is older than `since`.
        let start = match &after {
            Some(pos) => pos.uid,
            None => scan.uids.first().map_or(scan.highest, |first| first.saturating_sub(1)),
        };
        Ok(Some(FolderListing {
            folder: name,
            uidvalidity: state.uidvalidity,
            start,
            messages: scan
                .uids
                .iter()
                .map(|uid| Listed { uid: *uid, gm_msgid: scan.gm.get(uid).copied(), received_at: scan.received.get(uid).copied() })
                .collect(),
        }))
    }

    /// Has the Sent folder gained mail since it was listed? A STATUS, from the folder IDLE
    /// watches (so no EXAMINE back and forth).
    async fn sent_changed(&mut self) -> Result<bool, ConnectorError> {
        let limit = self.ctx.options.command_timeout;
        let Some(folder) = self.folders.get(1) else {
            return Ok(false);
        };
        let (wire, seen) = (folder.wire.clone(), folder.seen);
        let conn = self.ready().await?;
        match conn.status(&wire, limit).await {
            Ok(now) => Ok(std::mem::take(&mut conn.changed) || seen.is_none_or(|s| s.outdated_by(now))),
            // Gone, most likely: the next listing finds out.
            Err(ImapFailure::Refused { .. }) => Ok(true),
            Err(f) => Err(self.fail(ImapStage::Command, f)),
        }
    }

    /// Finds Gmail ids this session has not listed (another session did) by searching each
    /// folder for them. Those found nowhere have vanished.
    async fn locate_gmail(&mut self, wanted: &[u64]) -> Result<HashMap<u64, (usize, u32, u32)>, ConnectorError> {
        let limit = self.ctx.options.command_timeout;
        let mut found = HashMap::new();
        let mut idx = 0;
        while idx < self.folders.len() {
            let Some(state) = self.select(idx, false).await? else {
                break;
            };
            for msgid in wanted {
                if found.contains_key(msgid) {
                    continue;
                }
                let conn = self.ready().await?;
                let uids = search(conn, &format!("X-GM-MSGID {msgid}"), limit).await.map_err(|f| self.fail(ImapStage::Command, f))?;
                if let Some(uid) = uids.into_iter().max() {
                    found.insert(*msgid, (idx, state.uidvalidity, uid));
                }
            }
            idx += 1;
        }
        Ok(found)
    }
}

/// What a scan of one folder found.
#[derive(Default)]
struct Scan {
    /// Ascending: the messages to list.
    uids: Vec<u32>,
    /// INTERNALDATE of those whose date had to be checked.
    received: HashMap<u32, DateTime<Utc>>,
    /// The highest UID in the folder (0 when empty).
    highest: u32,
    /// X-GM-MSGID by UID, when asked for.
    gm: HashMap<u32, u64>,
}

/// UIDs matching `criteria` (a UID SEARCH key list) in the selected folder.
async fn search(conn: &mut Conn, criteria: &str, limit: Duration) -> Result<Vec<u32>, ImapFailure> {
    let mut uids = Vec::new();
    conn.run(&format!("UID SEARCH {criteria}"), limit, |r| {
        if let Response::MailboxData(MailboxDatum::Search(found)) = r {
            uids.extend_from_slice(found);
        }
    })
    .await?;
    Ok(uids)
}

/// The selected folder's messages after UID `after`, or received on or after `since`.
async fn scan(conn: &mut Conn, since: DateTime<Utc>, after: Option<u32>, gmail: bool, limit: Duration) -> Result<Scan, ImapFailure> {
    let range = match after {
        None => "ALL".to_owned(),
        Some(u32::MAX) => {
            return Ok(Scan { highest: u32::MAX, ..Scan::default() });
        }
        Some(uid) => format!("UID {}:*", uid + 1),
    };

    // SEARCH SINCE compares calendar dates, not instants, and every date key makes the
    // server look at each message's date (the expensive part of a listing). So: all UIDs
    // (cheap), minus those dated before the band around `since` (one date scan, usually
    // empty on an initial sync), plus those in the band whose INTERNALDATE is on or after
    // `since`.
    let band = date_band(since);
    let mut uids = search(conn, &range, limit).await?;
    let highest = uids.iter().copied().max().unwrap_or(0);
    // `n:*` always matches the highest UID, even below n: nothing new is an empty list.
    uids.retain(|uid| after.is_none_or(|a| *uid > a));
    if uids.is_empty() {
        return Ok(Scan { highest, ..Scan::default() });
    }
    let older = search(conn, &format!("{range} BEFORE {}", imap_date(band.sure)), limit).await?;
    let mut received: HashMap<u32, DateTime<Utc>> = HashMap::new();
    if !older.is_empty() {
        let older_set = uid_sets(&older, usize::MAX).concat();
        let edge_query = if older_set.len() <= 4000 {
            format!("UID {older_set} SINCE {}", imap_date(band.maybe))
        } else {
            format!("{range} SINCE {} BEFORE {}", imap_date(band.maybe), imap_date(band.sure))
        };
        let edge = search(conn, &edge_query, limit).await?;
        for set in uid_sets(&edge, FETCH_CHUNK) {
            conn.run(&format!("UID FETCH {set} (UID INTERNALDATE)"), limit, |r| {
                if let Some(item) = fetched(r)
                    && let (Some(uid), Some(at)) = (item.uid, item.internal_date)
                {
                    received.insert(uid, at);
                }
            })
            .await?;
        }
        let older: HashSet<u32> = older.into_iter().collect();
        uids.retain(|uid| !older.contains(uid) || received.get(uid).is_some_and(|at| *at >= since));
    }
    uids.sort_unstable();
    uids.dedup();

    let mut gm = HashMap::new();
    if gmail {
        for set in uid_sets(&uids, FETCH_CHUNK) {
            conn.run(&format!("UID FETCH {set} (UID X-GM-MSGID)"), limit, |r| {
                if let Some(item) = fetched(r)
                    && let (Some(uid), Some(msgid)) = (item.uid, item.gm_msgid)
                {
                    gm.insert(uid, msgid);
                }
            })
            .await?;
        }
    }
    Ok(Scan { uids, received, highest, gm })
}

#[async_trait]
impl MailSession for ImapSession {
    async fn list(&mut self, since: DateTime<Utc>, checkpoint: Option<&Checkpoint>) -> Result<Vec<MessageRef>, ConnectorError> {
        let main = self.folders[0].name.clone();
        let position = match checkpoint {
            None => None,
            Some(cp) => Some(Position::parse(cp).ok_or_else(|| ConnectorError::CheckpointReset {
                message: "the checkpoint was not written by this connector version".into(),
            })?),
        };
        if let Some(p) = &position
            && p.get(&main).is_none()
        {
            return Err(ConnectorError::CheckpointReset {
                message: format!("the synced folder changed from {} to {main}", p.folders[0].folder),
            });
        }
        self.ready().await?.changed = false;

        // Sent first, the configured folder last: the session ends on the folder IDLE
        // watches. The refs still come configured folder first.
        let count = self.folders.len();
        let mut listed: Vec<Option<FolderListing>> = vec![None; count];
        for idx in (1..count).chain([0]) {
            if idx >= self.folders.len() {
                continue;
            }
            let after = position.as_ref().and_then(|p| p.get(&self.folders[idx].name)).cloned();
            listed[idx] = self.list_folder(idx, since, after).await?;
        }
        if self.gmail_ids {
            // The refs the gateway fetches next are this listing's: keep only its places,
            // so a long session's map stays the size of one listing.
            self.located.clear();
            for (idx, listing) in listed.iter().enumerate() {
                let Some(listing) = listing else { continue };
                for m in &listing.messages {
                    if let Some(msgid) = m.gm_msgid {
                        self.located.insert(msgid, (idx, listing.uidvalidity, m.uid));
                    }
                }
            }
        }
        let listings: Vec<FolderListing> = listed.into_iter().flatten().collect();
        Ok(message_refs(&listings))
    }

    async fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<RawMessage>, ConnectorError> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let limit = self.ctx.options.command_timeout;
        let not_ours = |id: &str| ConnectorError::Protocol { message: format!("{id:?} is not a message id of this connector") };

        // Where each ref lives: folder index, UIDVALIDITY, UID.
        let mut wanted: Vec<Option<(usize, u32, u32)>> = Vec::with_capacity(refs.len());
        let mut unknown_gmail: Vec<u64> = Vec::new();
        for r in refs {
            wanted.push(match MessageId::parse(&r.id).ok_or_else(|| not_ours(&r.id))? {
                MessageId::Folder { folder, uidvalidity, uid } => {
                    let idx = self.folders.iter().position(|f| f.name == folder).ok_or_else(|| ConnectorError::CheckpointReset {
                        message: format!("message {} was listed under a folder this session does not sync", r.id),
                    })?;
                    Some((idx, uidvalidity, uid))
                }
                MessageId::Gmail(_) if !self.gmail_ids => {
                    return Err(ConnectorError::CheckpointReset {
                        message: format!("message {} was listed with Gmail ids, which this session does not use", r.id),
                    });
                }
                MessageId::Gmail(msgid) => {
                    let at = self.located.get(&msgid).copied();
                    if at.is_none() {
                        unknown_gmail.push(msgid);
                    }
                    at
                }
            });
        }
        if !unknown_gmail.is_empty() {
            let found = self.locate_gmail(&unknown_gmail).await?;
            for (r, at) in refs.iter().zip(wanted.iter_mut()) {
                if at.is_none()
                    && let Some(MessageId::Gmail(msgid)) = MessageId::parse(&r.id)
                {
                    *at = found.get(&msgid).copied();
                }
            }
            self.located.extend(found);
        }

        // Folder by folder, the configured one last (IDLE watches it next).
        let mut by_folder: BTreeMap<usize, Vec<(u32, u32)>> = BTreeMap::new();
        for (idx, uidvalidity, uid) in wanted.iter().flatten() {
            by_folder.entry(*idx).or_default().push((*uidvalidity, *uid));
        }
        let order: Vec<usize> = by_folder.keys().copied().filter(|i| *i != 0).chain(by_folder.contains_key(&0).then_some(0)).collect();
        let mut found: HashMap<(usize, u32), Fetched> = HashMap::with_capacity(refs.len());
        for idx in order {
            if idx >= self.folders.len() {
                continue;
            }
            let Some(state) = self.select(idx, false).await? else {
                // The folder is gone, and its messages with it.
                continue;
            };
            let entries = &by_folder[&idx];
            // Fetching by UID under another UIDVALIDITY would return other messages.
            if entries.iter().any(|(v, _)| *v != state.uidvalidity) {
                return Err(ConnectorError::CheckpointReset {
                    message: format!("messages were listed under another UIDVALIDITY of {}", self.folders[idx].name),
                });
            }
            let uids: Vec<u32> = entries.iter().map(|(_, uid)| *uid).collect();
            let conn = self.ready().await?;
            let mut result = Ok(());
            for set in uid_sets(&uids, FETCH_CHUNK) {
                // Exactly what a bare sync asks for: UID FETCH always returns the UID, and
                // the size is the body's length. INTERNALDATE would cost the server a date
                // lookup per message (~10% of the fetch), so received_at stays as listed.
                result = conn
                    .run(&format!("UID FETCH {set} BODY.PEEK[]"), limit, |r| {
                        // Unsolicited FETCHes (flag changes) carry no body and are skipped.
                        if let Some(item) = fetched(r)
                            && let (Some(uid), Some(_)) = (item.uid, item.body.as_ref())
                        {
                            found.insert((idx, uid), item);
                        }
                    })
                    .await;
                if result.is_err() {
                    break;
                }
            }
            result.map_err(|f| self.fail(ImapStage::Command, f))?;
        }

        // Each message's bytes move into its ref; only one asked for twice is copied.
        let mut left: HashMap<(usize, u32), usize> = HashMap::new();
        for (idx, _, uid) in wanted.iter().flatten() {
            *left.entry((*idx, *uid)).or_default() += 1;
        }
        let mut out = Vec::with_capacity(refs.len());
        for (r, at) in refs.iter().zip(wanted) {
            let Some((idx, _, uid)) = at else { continue };
            let Some(item) = found.get_mut(&(idx, uid)) else {
                continue;
            };
            let Some(count) = left.get_mut(&(idx, uid)) else {
                continue;
            };
            *count -= 1;
            let bytes = if *count == 0 { item.body.take() } else { item.body.clone() };
            let Some(bytes) = bytes else { continue };
            out.push(RawMessage {
                reference: MessageRef { received_at: item.internal_date.or(r.received_at), size: Some(bytes.len() as u64), ..r.clone() },
                bytes,
            });
        }
        Ok(out)
    }

    async fn wait(&mut self, timeout_after: Duration) -> Result<Wake, ConnectorError> {
        let deadline = far(Instant::now(), timeout_after);
        let ctx = Arc::clone(&self.ctx);
        let options = &ctx.options;
        let conn = self.ready().await?;
        if std::mem::take(&mut conn.changed) {
            return Ok(Wake::Changed);
        }
        if conn.caps.idle {
            // IDLE watches the configured folder; mail that came while another folder was
            // selected shows as a moved UIDNEXT when it is selected again.
            self.select(0, false).await?;
            loop {
                let conn = self.ready().await?;
                if std::mem::take(&mut conn.changed) {
                    return Ok(Wake::Changed);
                }
                // With a Sent folder, IDLE pauses every `sent_check_interval` for a STATUS of
                // it: IDLE sees only the selected folder.
                let watch_sent = self.folders.len() > 1;
                let slice_end = if watch_sent { deadline.min(far(Instant::now(), options.sent_check_interval)) } else { deadline };
                let conn = self.ready().await?;
                match conn.idle_until(slice_end, options).await {
                    Ok(Wake::Changed) => return Ok(Wake::Changed),
                    Ok(Wake::TimedOut) => {}
                    // A server that lists IDLE but refuses it is polled from now on.
                    Err(ImapFailure::Refused { .. }) => {
                        conn.caps.idle = false;
                        break;
                    }
                    Err(f) => return Err(self.fail(ImapStage::Command, f)),
                }
                if Instant::now() >= deadline {
                    return Ok(Wake::TimedOut);
                }
                if self.sent_changed().await? {
                    return Ok(Wake::Changed);
                }
            }
        }
        // No push: poll. A NOOP lets the server report news and keeps the session alive;
        // without push there is no telling what changed (nor in the other folder), so the
        // answer is always Changed.
        tokio::time::sleep(deadline.saturating_duration_since(Instant::now()).min(options.poll_interval)).await;
        let conn = self.ready().await?;
        let result = conn.run("NOOP", options.command_timeout, |_| {}).await;
        conn.changed = false;
        result.map_err(|f| self.fail(ImapStage::Command, f))?;
        Ok(Wake::Changed)
    }

    async fn close(mut self: Box<Self>) {
        let limit = self.ctx.options.command_timeout.min(Duration::from_secs(5));
        if let Some(conn) = self.conn.take() {
            conn.logout(limit).await;
        }
    }
}
