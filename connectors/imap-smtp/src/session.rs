//! The IMAP [`MailSession`]: lists, fetches and waits on one folder opened read-only, and
//! recovers from calls the gateway cancelled.
//!
//! async-imap provides the connection, the response parser and sign-in (see `connect`). Every
//! later command
//! goes through [`Conn::run`], which reads raw responses itself: it sees response codes,
//! untagged EXISTS and BYE as structured data, and it never builds per-message futures.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, RequestId, Response, ResponseCode, Status,
};
use chrono::{DateTime, Utc};
use concierge_connector_sdk::{
    Checkpoint, ConnectorError, FieldError, MailSession, MessageRef, RawMessage, Wake, async_trait,
};
use tokio::time::{Instant, timeout, timeout_at};

use crate::Context;
use crate::classify::{ImapFailure, ImapStage, classify_imap};
use crate::connect::{Imap, Target, sign_in_to};
use crate::wire::{
    Position, Stamp, code_name, date_band, imap_date, parse_internal_date, parse_message_id,
    quote_mailbox, uid_sets,
};

/// UIDs per `UID FETCH`: with compact sets (`1:2500`) the command stays short, and the
/// server streams each chunk without a round trip per message.
const FETCH_CHUNK: usize = 2500;

/// Where the connection stands between calls. A call that is cancelled (the gateway drops
/// the future, e.g. mid-`wait`) leaves `Idling` or `Broken` behind, and the next call
/// recovers from it instead of reading a stale response as its own.
#[derive(Debug)]
enum State {
    Ready,
    /// IDLE is running under this tag: send DONE and drain before the next command.
    Idling(RequestId),
    /// A command was sent and its completion not read: reconnect.
    Broken,
}

struct Conn {
    imap: Imap,
    state: State,
    has_idle: bool,
    uidvalidity: u32,
    /// The server announced new or removed messages since the last listing.
    changed: bool,
}

/// One signed-in connection with the folder examined (read-only).
pub(crate) struct ImapSession {
    ctx: Arc<Context>,
    target: Target,
    conn: Option<Conn>,
}

impl ImapSession {
    pub(crate) async fn open(
        ctx: Arc<Context>,
        target: Target,
    ) -> Result<ImapSession, ConnectorError> {
        let conn = connect(&ctx, &target).await?;
        Ok(ImapSession {
            ctx,
            target,
            conn: Some(conn),
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
            let mut conn = connect(&self.ctx, &self.target).await?;
            // Mail may have arrived while there was no usable connection, and IDLE only
            // reports what happens after it starts: have the next wait() say so.
            conn.changed = true;
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or_else(|| ConnectorError::Protocol {
            message: "no IMAP connection".into(),
        })
    }

    /// UIDs matching `criteria` (a UID SEARCH key list).
    async fn search(&mut self, criteria: &str) -> Result<Vec<u32>, ConnectorError> {
        let command_timeout = self.ctx.options.command_timeout;
        let conn = self.ready().await?;
        let mut uids = Vec::new();
        let result = conn
            .run(&format!("UID SEARCH {criteria}"), command_timeout, |r| {
                if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                    uids.extend_from_slice(found);
                }
            })
            .await;
        result.map_err(|f| self.fail(ImapStage::Command, f))?;
        Ok(uids)
    }
}

#[async_trait]
impl MailSession for ImapSession {
    async fn list(
        &mut self,
        since: DateTime<Utc>,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<Vec<MessageRef>, ConnectorError> {
        let folder = self.target.folder.clone();
        let conn = self.ready().await?;
        let uidvalidity = conn.uidvalidity;
        let after = match checkpoint {
            None => None,
            Some(cp) => {
                let position =
                    Position::parse(cp).ok_or_else(|| ConnectorError::CheckpointReset {
                        message: "the checkpoint was not written by this connector version".into(),
                    })?;
                if position.folder != folder {
                    return Err(ConnectorError::CheckpointReset {
                        message: format!(
                            "the synced folder changed from {} to {folder}",
                            position.folder
                        ),
                    });
                }
                // UIDVALIDITY changed: the server renumbered the folder, so "after UID n"
                // means nothing any more; resync from the sync-from date, and the gateway's
                // Message-ID dedupe stops repeats.
                if position.uidvalidity != uidvalidity {
                    return Err(ConnectorError::CheckpointReset {
                        message: format!(
                            "UIDVALIDITY of {folder} changed from {} to {uidvalidity}",
                            position.uidvalidity
                        ),
                    });
                }
                Some(position.uid)
            }
        };
        conn.changed = false;
        let range = match after {
            None => "ALL".to_owned(),
            Some(u32::MAX) => return Ok(Vec::new()),
            // `n:*` always matches the highest UID even when it is below n, so results are
            // filtered again below.
            Some(uid) => format!("UID {}:*", uid + 1),
        };

        // SEARCH SINCE compares calendar dates, not instants, and every date key makes the
        // server look at each message's date (the expensive part of a listing). So: all
        // UIDs (cheap), minus those dated before the band around `since` (one date scan,
        // usually empty on an initial sync), plus those in the band whose INTERNALDATE is
        // on or after `since`.
        let band = date_band(since);
        let mut uids = self.search(&range).await?;
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let older = self
            .search(&format!("{range} BEFORE {}", imap_date(band.sure)))
            .await?;
        let mut received: HashMap<u32, DateTime<Utc>> = HashMap::new();
        if !older.is_empty() {
            let older_set = uid_sets(&older, usize::MAX).concat();
            let edge_query = if older_set.len() <= 4000 {
                format!("UID {older_set} SINCE {}", imap_date(band.maybe))
            } else {
                format!(
                    "{range} SINCE {} BEFORE {}",
                    imap_date(band.maybe),
                    imap_date(band.sure)
                )
            };
            let edge = self.search(&edge_query).await?;
            if !edge.is_empty() {
                let command_timeout = self.ctx.options.command_timeout;
                let conn = self.ready().await?;
                let mut result = Ok(());
                for set in uid_sets(&edge, FETCH_CHUNK) {
                    result = conn
                        .run(
                            &format!("UID FETCH {set} (UID INTERNALDATE)"),
                            command_timeout,
                            |r| {
                                if let Some(item) = fetched(r)
                                    && let (Some(uid), Some(at)) = (item.uid, item.internal_date)
                                {
                                    received.insert(uid, at);
                                }
                            },
                        )
                        .await;
                    if result.is_err() {
                        break;
                    }
                }
                result.map_err(|f| self.fail(ImapStage::Command, f))?;
            }
            let older: HashSet<u32> = older.into_iter().collect();
            uids.retain(|uid| {
                !older.contains(uid) || received.get(uid).is_some_and(|at| *at >= since)
            });
        }
        uids.retain(|uid| after.is_none_or(|a| *uid > a));
        uids.sort_unstable();
        uids.dedup();
        let stamp = Stamp::new(&folder, uidvalidity);
        Ok(uids
            .into_iter()
            .map(|uid| MessageRef {
                id: stamp.id(uid),
                checkpoint: stamp.checkpoint(uid),
                received_at: received.get(&uid).copied(),
                size: None,
            })
            .collect())
    }

    async fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<RawMessage>, ConnectorError> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let folder = self.target.folder.clone();
        let command_timeout = self.ctx.options.command_timeout;
        let conn = self.ready().await?;
        let uidvalidity = conn.uidvalidity;
        let mut wanted = Vec::with_capacity(refs.len());
        for r in refs {
            let (f, v, uid) = parse_message_id(&r.id).ok_or_else(|| ConnectorError::Protocol {
                message: format!("{:?} is not a message id of this connector", r.id),
            })?;
            // Fetching by UID under another UIDVALIDITY would return other messages.
            if f != folder || v != uidvalidity {
                return Err(ConnectorError::CheckpointReset {
                    message: format!(
                        "message {} was listed under another folder or UIDVALIDITY",
                        r.id
                    ),
                });
            }
            wanted.push(uid);
        }

        let mut found: HashMap<u32, Fetched> = HashMap::with_capacity(wanted.len());
        let mut result = Ok(());
        for set in uid_sets(&wanted, FETCH_CHUNK) {
            result = conn
                // Exactly what a bare sync asks for: UID FETCH always returns the UID, and the
                // size is the body's length. INTERNALDATE would cost the server a date lookup
                // per message (~10% of the fetch), so received_at stays as listed.
                .run(
                    &format!("UID FETCH {set} BODY.PEEK[]"),
                    command_timeout,
                    |r| {
                        // Unsolicited FETCHes (flag changes) carry no body and are skipped.
                        if let Some(item) = fetched(r)
                            && let (Some(uid), Some(_)) = (item.uid, item.body.as_ref())
                        {
                            found.insert(uid, item);
                        }
                    },
                )
                .await;
            if result.is_err() {
                break;
            }
        }
        result.map_err(|f| self.fail(ImapStage::Command, f))?;

        // Each UID's bytes move into its message; only a UID asked for twice is copied.
        let mut left: HashMap<u32, usize> = HashMap::new();
        for uid in &wanted {
            *left.entry(*uid).or_default() += 1;
        }
        let mut out = Vec::with_capacity(refs.len());
        for (r, uid) in refs.iter().zip(wanted) {
            let Some(item) = found.get_mut(&uid) else {
                continue;
            };
            let Some(count) = left.get_mut(&uid) else {
                continue;
            };
            *count -= 1;
            let bytes = if *count == 0 {
                item.body.take()
            } else {
                item.body.clone()
            };
            let Some(bytes) = bytes else { continue };
            out.push(RawMessage {
                reference: MessageRef {
                    received_at: item.internal_date.or(r.received_at),
                    size: Some(bytes.len() as u64),
                    ..r.clone()
                },
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
        if conn.has_idle {
            match conn.idle_until(deadline, options).await {
                // A server that lists IDLE but refuses it is polled from now on.
                Err(ImapFailure::Refused { .. }) => conn.has_idle = false,
                result => return result.map_err(|f| self.fail(ImapStage::Command, f)),
            }
        }
        // No push: poll. A NOOP lets the server report news and keeps the session alive;
        // without push there is no telling what changed, so the answer is always Changed.
        tokio::time::sleep(
            deadline
                .saturating_duration_since(Instant::now())
                .min(options.poll_interval),
        )
        .await;
        let result = conn.run("NOOP", options.command_timeout, |_| {}).await;
        conn.changed = false;
        result.map_err(|f| self.fail(ImapStage::Command, f))?;
        Ok(Wake::Changed)
    }

    async fn close(mut self: Box<Self>) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let limit = self.ctx.options.command_timeout.min(Duration::from_secs(5));
        match std::mem::replace(&mut conn.state, State::Broken) {
            State::Ready => {}
            State::Idling(tag) => {
                if conn.finish_idle(tag, limit).await.is_err() {
                    return;
                }
            }
            // Mid-command: nothing polite left to say; dropping closes the socket.
            State::Broken => return,
        }
        // LOGOUT answers BYE before its OK; either way the session is over.
        let _ = conn.run("LOGOUT", limit, |_| {}).await;
    }
}

impl Conn {
    /// Sends one command and reads up to its tagged completion. Untagged responses go to
    /// `on_data`; EXISTS/EXPUNGE/RECENT also mark the folder as changed. `limit` bounds each
    /// step (a slow server streaming a big FETCH is fine; a silent one is not).
    async fn run(
        &mut self,
        command: &str,
        limit: Duration,
        mut on_data: impl FnMut(&Response<'_>),
    ) -> Result<(), ImapFailure> {
        self.state = State::Broken;
        let tag = timeout(limit, self.imap.run_command(command))
            .await
            .map_err(|_| ImapFailure::TimedOut)??;
        loop {
            let response = timeout(limit, self.imap.read_response())
                .await
                .map_err(|_| ImapFailure::TimedOut)??
                .ok_or(ImapFailure::Closed)?;
            match response.parsed() {
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if *done == tag => {
                    self.state = State::Ready;
                    return completion(
                        status,
                        outcome.code.as_ref(),
                        outcome.information.as_deref(),
                    );
                }
                // A completion for an earlier tag cannot be ours; skip it.
                Response::Done { .. } => {}
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(ImapFailure::bye(
                        code_name(outcome.code.as_ref()),
                        outcome.information.as_deref().unwrap_or(""),
                    ));
                }
                other => {
                    self.note(other);
                    on_data(other);
                }
            }
        }
    }

    fn note(&mut self, response: &Response<'_>) {
        if matches!(
            response,
            Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_))
                | Response::Expunge(_)
                | Response::Vanished { .. }
        ) {
            self.changed = true;
        }
    }

    /// IDLE until news, `deadline`, or the renewal interval; renews IDLE (DONE, IDLE again)
    /// so no server drops it for inactivity (RFC 2177 asks for less than 29 minutes).
    async fn idle_until(
        &mut self,
        deadline: Instant,
        options: &crate::Options,
    ) -> Result<Wake, ImapFailure> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Wake::TimedOut);
            }
            let slice_end = deadline.min(far(now, options.idle_renew));
            let tag = self.start_idle(options.command_timeout).await?;
            let news = loop {
                let response = match timeout_at(slice_end, self.imap.read_response()).await {
                    Err(_) => break false,
                    Ok(read) => read?.ok_or(ImapFailure::Closed)?,
                };
                match response.parsed() {
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => {
                        return Err(ImapFailure::bye(
                            code_name(outcome.code.as_ref()),
                            outcome.information.as_deref().unwrap_or(""),
                        ));
                    }
                    Response::Done {
                        tag: done,
                        status,
                        outcome,
                    } if *done == tag => {
                        // The server ended IDLE by itself.
                        self.state = State::Ready;
                        completion(
                            status,
                            outcome.code.as_ref(),
                            outcome.information.as_deref(),
                        )?;
                        break self.changed;
                    }
                    other => {
                        self.note(other);
                        if self.changed {
                            break true;
                        }
                    }
                }
            };
            if let State::Idling(tag) = std::mem::replace(&mut self.state, State::Broken) {
                self.finish_idle(tag, options.command_timeout).await?;
            } else {
                self.state = State::Ready;
            }
            if news || self.changed {
                self.changed = false;
                return Ok(Wake::Changed);
            }
        }
    }

    async fn start_idle(&mut self, limit: Duration) -> Result<RequestId, ImapFailure> {
        self.state = State::Broken;
        let tag = timeout(limit, self.imap.run_command("IDLE"))
            .await
            .map_err(|_| ImapFailure::TimedOut)??;
        loop {
            let response = timeout(limit, self.imap.read_response())
                .await
                .map_err(|_| ImapFailure::TimedOut)??
                .ok_or(ImapFailure::Closed)?;
            match response.parsed() {
                Response::Continue(_) => {
                    self.state = State::Idling(tag.clone());
                    return Ok(tag);
                }
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if *done == tag => {
                    self.state = State::Ready;
                    completion(
                        status,
                        outcome.code.as_ref(),
                        outcome.information.as_deref(),
                    )?;
                    return Err(ImapFailure::Unexpected(
                        "the server ended IDLE before it began",
                    ));
                }
                Response::Done { .. } => {}
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(ImapFailure::bye(
                        code_name(outcome.code.as_ref()),
                        outcome.information.as_deref().unwrap_or(""),
                    ));
                }
                other => self.note(other),
            }
        }
    }

    /// Ends IDLE: DONE, then read to IDLE's completion, keeping any news it carries.
    async fn finish_idle(&mut self, tag: RequestId, limit: Duration) -> Result<(), ImapFailure> {
        self.state = State::Broken;
        timeout(limit, self.imap.run_command_untagged("DONE"))
            .await
            .map_err(|_| ImapFailure::TimedOut)??;
        loop {
            let response = timeout(limit, self.imap.read_response())
                .await
                .map_err(|_| ImapFailure::TimedOut)??
                .ok_or(ImapFailure::Closed)?;
            match response.parsed() {
                Response::Done { tag: done, .. } if *done == tag => {
                    self.state = State::Ready;
                    return Ok(());
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(ImapFailure::bye(
                        code_name(outcome.code.as_ref()),
                        outcome.information.as_deref().unwrap_or(""),
                    ));
                }
                other => self.note(other),
            }
        }
    }
}

/// `from + after`, saturating at a century instead of panicking on a huge timeout.
fn far(from: Instant, after: Duration) -> Instant {
    from.checked_add(after)
        .or_else(|| from.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(from)
}

fn completion(
    status: &Status,
    code: Option<&ResponseCode<'_>>,
    text: Option<&str>,
) -> Result<(), ImapFailure> {
    match status {
        Status::Ok => Ok(()),
        Status::No => Err(ImapFailure::refused(
            false,
            code_name(code),
            text.unwrap_or(""),
        )),
        Status::Bad => Err(ImapFailure::refused(
            true,
            code_name(code),
            text.unwrap_or(""),
        )),
        Status::Bye => Err(ImapFailure::bye(code_name(code), text.unwrap_or(""))),
        Status::PreAuth => Err(ImapFailure::Unexpected(
            "the server answered a command with PREAUTH",
        )),
    }
}

/// What one FETCH response carried.
#[derive(Default)]
struct Fetched {
    uid: Option<u32>,
    internal_date: Option<DateTime<Utc>>,
    body: Option<Vec<u8>>,
}

/// Wire to types: a FETCH response's UID, INTERNALDATE and BODY[].
fn fetched(response: &Response<'_>) -> Option<Fetched> {
    let Response::Fetch(_, attributes) = response else {
        return None;
    };
    let mut item = Fetched::default();
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(uid) => item.uid = Some(*uid),
            AttributeValue::InternalDate(date) => item.internal_date = parse_internal_date(date),
            AttributeValue::BodySection {
                section: None,
                data: Some(data),
                ..
            }
            | AttributeValue::Rfc822(Some(data)) => {
                item.body = Some(data.to_vec());
            }
            _ => {}
        }
    }
    Some(item)
}

/// Connects, signs in, reads CAPABILITY and EXAMINEs the folder.
async fn connect(ctx: &Context, target: &Target) -> Result<Conn, ConnectorError> {
    let server = target.server();
    let fail = |stage, failure| classify_imap(stage, &server, failure);
    let options = &ctx.options;
    let imap = sign_in_to(ctx, target).await?;
    let mut conn = Conn {
        imap,
        state: State::Ready,
        has_idle: false,
        uidvalidity: 0,
        changed: false,
    };

    let mut has_idle = false;
    conn.run("CAPABILITY", options.command_timeout, |r| {
        if let Response::Capabilities(caps) = r {
            has_idle = caps.iter().any(|c| matches!(c, async_imap::imap_proto::Capability::Atom(a) if a.eq_ignore_ascii_case("IDLE")));
        }
    })
    .await
    .map_err(|f| fail(ImapStage::Command, f))?;
    conn.has_idle = has_idle;

    let folder = quote_mailbox(&target.folder).ok_or_else(|| {
        ConnectorError::Settings(FieldError::new("folder", "must not contain line breaks"))
    })?;
    let mut uidvalidity = None;
    // EXAMINE, not SELECT: read-only, so syncing never changes \Seen or \Recent.
    conn.run(&format!("EXAMINE {folder}"), options.command_timeout, |r| {
        if let Response::Data {
            status: Status::Ok,
            outcome,
        } = r
            && let Some(ResponseCode::UidValidity(v)) = outcome.code
        {
            uidvalidity = Some(v);
        }
    })
    .await
    .map_err(|f| fail(ImapStage::OpenFolder, f))?;
    conn.uidvalidity = uidvalidity.ok_or_else(|| {
        fail(
            ImapStage::OpenFolder,
            ImapFailure::Unexpected("the server did not report the folder's UIDVALIDITY"),
        )
    })?;
    // EXAMINE's own EXISTS is not news.
    conn.changed = false;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::imap_proto::Response;

    #[test]
    fn fetch_responses_map_to_uid_date_size_and_body() {
        let raw = b"* 3 FETCH (UID 42 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 5 BODY[] {5}\r\nhello)\r\n";
        let (_, response) = Response::parse(raw).unwrap();
        let item = fetched(&response).unwrap();
        assert_eq!(item.uid, Some(42));
        assert_eq!(item.body.as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            item.internal_date.map(|d| d.to_rfc3339()),
            Some("1996-07-17T09:44:25+00:00".into())
        );

        let (_, flags_only) = Response::parse(b"* 4 FETCH (FLAGS (\\Seen) UID 43)\r\n").unwrap();
        let item = fetched(&flags_only).unwrap();
        assert_eq!((item.uid, item.body.is_none()), (Some(43), true));
        let (_, exists) = Response::parse(b"* 4 EXISTS\r\n").unwrap();
        assert!(fetched(&exists).is_none());
    }
}
