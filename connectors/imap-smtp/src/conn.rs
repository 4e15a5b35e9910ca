//! One signed-in IMAP connection and the commands the connector sends on it.
//!
//! async-imap provides the connection, the response parser and sign-in (see `connect`).
//! Every later command goes through [`Conn::run`], which reads raw responses itself: it sees
//! response codes, untagged EXISTS and BYE as structured data, and it never builds
//! per-message futures.

use std::time::Duration;

use async_imap::imap_proto::{
    AttributeValue, Capability, MailboxDatum, NameAttribute, Outcome, RequestId, Response, ResponseCode, Status, StatusAttribute,
};
use chrono::{DateTime, Utc};
use concierge_connector_sdk::{ConnectorError, Wake};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout, timeout_at};

use crate::Context;
use crate::classify::{ImapFailure, ImapStage, classify_imap};
use crate::connect::{Imap, Target, sign_in_to};
use crate::wire::{code_name, decode_modified_utf7, parse_internal_date};

/// Where the connection stands between calls. A call that is cancelled (the gateway drops
/// the future, e.g. mid-`wait`) leaves `Idling` or `Broken` behind, and the next call
/// recovers from it instead of reading a stale response as its own.
#[derive(Debug)]
pub(crate) enum State {
    Ready,
    /// IDLE is running under this tag: send DONE and drain before the next command.
    Idling(RequestId),
    /// A command was sent and its completion not read: reconnect.
    Broken,
}

/// What the server can do, from the CAPABILITY after sign-in (SPECIAL-USE, for one, is
/// often announced only then).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Caps {
    pub idle: bool,
    pub special_use: bool,
    pub list_extended: bool,
    /// Gmail's X-GM-EXT-1 (X-GM-MSGID, X-GM-LABELS, X-GM-THRID).
    pub gmail: bool,
}

/// A folder as EXAMINE or STATUS reports it: enough to tell whether mail was added since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FolderState {
    pub uidvalidity: u32,
    /// Missing when the server does not say (RFC 3501 lets it).
    pub uidnext: Option<u32>,
}

/// One folder of a LIST response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListedFolder {
    /// The name as the server spelled it (modified UTF-7): what commands must send.
    pub wire_name: String,
    /// The name as people read it (the wire name when it does not decode).
    pub name: String,
    pub delimiter: Option<String>,
    /// Marked `\Sent` (RFC 6154).
    pub sent: bool,
    /// Not `\Noselect` or `\NonExistent`.
    pub selectable: bool,
}

pub(crate) struct Conn {
    imap: Imap,
    pub state: State,
    pub caps: Caps,
    /// The folder EXAMINEd now (its quoted wire name) and what EXAMINE reported.
    pub selected: Option<(String, FolderState)>,
    /// The server announced new or removed messages since the last listing.
    pub changed: bool,
}

impl Conn {
    /// Connects, signs in and reads CAPABILITY. No folder is selected yet.
    pub async fn open(ctx: &Context, target: &Target) -> Result<Conn, ConnectorError> {
        let imap = sign_in_to(ctx, target).await?;
        let mut conn = Conn { imap, state: State::Ready, caps: Caps::default(), selected: None, changed: false };
        let mut caps = Caps::default();
        conn.run("CAPABILITY", ctx.options.command_timeout, |r| {
            if let Response::Capabilities(list) = r {
                for c in list {
                    if let Capability::Atom(atom) = c {
                        let atom = atom.to_ascii_uppercase();
                        match atom.as_str() {
                            "IDLE" => caps.idle = true,
                            "SPECIAL-USE" => caps.special_use = true,
                            "LIST-EXTENDED" => caps.list_extended = true,
                            "X-GM-EXT-1" => caps.gmail = true,
                            _ => {}
                        }
                    }
                }
            }
        })
        .await
        .map_err(|f| classify_imap(ImapStage::Command, &target.server(), f))?;
        conn.caps = caps;
        conn.changed = false;
        Ok(conn)
    }

    /// Sends one command and reads up to its tagged completion. Untagged responses go to
    /// `on_data`; EXISTS/EXPUNGE/RECENT also mark the folder as changed. `limit` bounds each
    /// step (a slow server streaming a big FETCH is fine; a silent one is not).
    pub async fn run(&mut self, command: &str, limit: Duration, on_data: impl FnMut(&Response<'_>)) -> Result<(), ImapFailure> {
        self.state = State::Broken;
        let tag = timeout(limit, self.imap.run_command(command)).await.map_err(|_| ImapFailure::TimedOut)??;
        self.complete(tag, limit, on_data).await
    }

    /// Reads up to the tagged completion of `tag`.
    async fn complete(&mut self, tag: RequestId, limit: Duration, mut on_data: impl FnMut(&Response<'_>)) -> Result<(), ImapFailure> {
        loop {
            let response =
                timeout(limit, self.imap.read_response()).await.map_err(|_| ImapFailure::TimedOut)??.ok_or(ImapFailure::Closed)?;
            match response.parsed() {
                Response::Done { tag: done, status, outcome } if *done == tag => {
                    self.state = State::Ready;
                    return completion(status, outcome.code.as_ref(), outcome.information.as_deref());
                }
                // A completion for an earlier tag cannot be ours; skip it.
                Response::Done { .. } => {}
                Response::Data { status: Status::Bye, outcome } => return Err(bye(outcome)),
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
            Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_)) | Response::Expunge(_) | Response::Vanished { .. }
        ) {
            self.changed = true;
        }
    }

    /// EXAMINE (read-only, so syncing never changes \Seen or \Recent) of a folder given by its
    /// quoted wire name. Its own EXISTS is not news: `changed` is left as it was.
    pub async fn examine(&mut self, wire: &str, limit: Duration) -> Result<FolderState, ImapFailure> {
        // A failed EXAMINE leaves no folder selected (RFC 3501 §6.3.1).
        self.selected = None;
        let changed = self.changed;
        let mut uidvalidity = None;
        let mut uidnext = None;
        let result = self
            .run(&format!("EXAMINE {wire}"), limit, |r| {
                if let Response::Data { status: Status::Ok, outcome } = r {
                    match outcome.code {
                        Some(ResponseCode::UidValidity(v)) => uidvalidity = Some(v),
                        Some(ResponseCode::UidNext(n)) => uidnext = Some(n),
                        _ => {}
                    }
                }
            })
            .await;
        self.changed = changed;
        result?;
        let state = FolderState {
            uidvalidity: uidvalidity.ok_or(ImapFailure::Unexpected("the server did not report the folder's UIDVALIDITY"))?,
            uidnext,
        };
        self.selected = Some((wire.to_owned(), state));
        Ok(state)
    }

    /// STATUS of a folder that is not selected: has mail been added since a listing saw it?
    pub async fn status(&mut self, wire: &str, limit: Duration) -> Result<FolderState, ImapFailure> {
        let mut uidvalidity = None;
        let mut uidnext = None;
        self.run(&format!("STATUS {wire} (UIDNEXT UIDVALIDITY)"), limit, |r| {
            if let Response::MailboxData(MailboxDatum::Status { status, .. }) = r {
                for attribute in status {
                    match attribute {
                        StatusAttribute::UidValidity(v) => uidvalidity = Some(*v),
                        StatusAttribute::UidNext(n) => uidnext = Some(*n),
                        _ => {}
                    }
                }
            }
        })
        .await?;
        Ok(FolderState {
            uidvalidity: uidvalidity.ok_or(ImapFailure::Unexpected("the server's STATUS did not report the folder's UIDVALIDITY"))?,
            uidnext,
        })
    }

    /// The folders a LIST command (`LIST "" "*"`, or `LIST (SPECIAL-USE) "" "*"`) returns.
    pub async fn list(&mut self, command: &str, limit: Duration) -> Result<Vec<ListedFolder>, ImapFailure> {
        let mut folders = Vec::new();
        self.run(command, limit, |r| {
            if let Response::MailboxData(MailboxDatum::List(data)) = r {
                let flag = |wanted: &str| {
                    data.name_attributes.iter().any(|a| matches!(a, NameAttribute::Extension(e) if e.eq_ignore_ascii_case(wanted)))
                };
                let wire_name = data.name.to_string();
                folders.push(ListedFolder {
                    name: decode_modified_utf7(&wire_name).unwrap_or_else(|| wire_name.clone()),
                    wire_name,
                    delimiter: data.delimiter.as_ref().map(|d| d.to_string()),
                    sent: data.name_attributes.contains(&NameAttribute::Sent),
                    selectable: !data.name_attributes.contains(&NameAttribute::NoSelect) && !flag("\\NonExistent"),
                });
            }
        })
        .await?;
        Ok(folders)
    }

    /// APPEND `raw` with `flags` (`(\Seen)`) to the folder with this quoted wire name.
    /// A synchronising literal: the bytes go only after the server's `+`.
    pub async fn append(&mut self, wire: &str, flags: &str, raw: &[u8], limit: Duration) -> Result<(), ImapFailure> {
        self.state = State::Broken;
        let tag = timeout(limit, self.imap.run_command(format!("APPEND {wire} {flags} {{{}}}", raw.len())))
            .await
            .map_err(|_| ImapFailure::TimedOut)??;
        // Refused before the upload (no such folder, too big) is the server's answer.
        self.await_continuation(&tag, limit, "the server ended APPEND before taking the message").await?;
        // The upload takes as long as it takes: allow 1 s per 64 KiB beyond the usual budget.
        let upload = limit.saturating_add(Duration::from_secs((raw.len() / (64 * 1024)) as u64));
        let stream = self.imap.get_mut();
        timeout(upload, async {
            stream.write_all(raw).await?;
            stream.write_all(b"\r\n").await?;
            stream.flush().await
        })
        .await
        .map_err(|_| ImapFailure::TimedOut)??;
        self.complete(tag, limit, |_| {}).await
    }

    /// IDLE until news, `deadline`, or the renewal interval; renews IDLE (DONE, IDLE again)
    /// so no server drops it for inactivity (RFC 2177 asks for less than 29 minutes).
    pub async fn idle_until(&mut self, deadline: Instant, options: &crate::Options) -> Result<Wake, ImapFailure> {
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
                    Response::Data { status: Status::Bye, outcome } => return Err(bye(outcome)),
                    Response::Done { tag: done, status, outcome } if *done == tag => {
                        // The server ended IDLE by itself.
                        self.state = State::Ready;
                        completion(status, outcome.code.as_ref(), outcome.information.as_deref())?;
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
        let tag = timeout(limit, self.imap.run_command("IDLE")).await.map_err(|_| ImapFailure::TimedOut)??;
        self.await_continuation(&tag, limit, "the server ended IDLE before it began").await?;
        self.state = State::Idling(tag.clone());
        Ok(tag)
    }

    /// Reads until the server's `+` for the command `tag`. The command finishing first is
    /// its refusal (or, if it says OK, `early`); BYE ends the connection.
    async fn await_continuation(&mut self, tag: &RequestId, limit: Duration, early: &'static str) -> Result<(), ImapFailure> {
        loop {
            let response =
                timeout(limit, self.imap.read_response()).await.map_err(|_| ImapFailure::TimedOut)??.ok_or(ImapFailure::Closed)?;
            match response.parsed() {
                Response::Continue { .. } => return Ok(()),
                Response::Done { tag: done, status, outcome } if done == tag => {
                    self.state = State::Ready;
                    completion(status, outcome.code.as_ref(), outcome.information.as_deref())?;
                    return Err(ImapFailure::Unexpected(early));
                }
                Response::Done { .. } => {}
                Response::Data { status: Status::Bye, outcome } => return Err(bye(outcome)),
                other => self.note(other),
            }
        }
    }

    /// Ends IDLE: DONE, then read to IDLE's completion, keeping any news it carries.
    pub async fn finish_idle(&mut self, tag: RequestId, limit: Duration) -> Result<(), ImapFailure> {
        self.state = State::Broken;
        timeout(limit, self.imap.run_command_untagged("DONE")).await.map_err(|_| ImapFailure::TimedOut)??;
        loop {
            let response =
                timeout(limit, self.imap.read_response()).await.map_err(|_| ImapFailure::TimedOut)??.ok_or(ImapFailure::Closed)?;
            match response.parsed() {
                Response::Done { tag: done, .. } if *done == tag => {
                    self.state = State::Ready;
                    return Ok(());
                }
                Response::Data { status: Status::Bye, outcome } => return Err(bye(outcome)),
                other => self.note(other),
            }
        }
    }

    /// Signs out politely (finishing an IDLE first); a connection mid-command is just dropped.
    pub async fn logout(mut self, limit: Duration) {
        match std::mem::replace(&mut self.state, State::Broken) {
            State::Ready => {}
            State::Idling(tag) => {
                if self.finish_idle(tag, limit).await.is_err() {
                    return;
                }
            }
            // Mid-command: nothing polite left to say; dropping closes the socket.
            State::Broken => return,
        }
        // LOGOUT answers BYE before its OK; either way the session is over.
        let _ = self.run("LOGOUT", limit, |_| {}).await;
    }
}

/// `from + after`, saturating at a century instead of panicking on a huge timeout.
pub(crate) fn far(from: Instant, after: Duration) -> Instant {
    from.checked_add(after).or_else(|| from.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(from)
}

/// The failure an untagged BYE announces: the server is closing the connection.
fn bye(outcome: &Outcome<'_>) -> ImapFailure {
    ImapFailure::bye(code_name(outcome.code.as_ref()), outcome.information.as_deref().unwrap_or(""))
}

fn completion(status: &Status, code: Option<&ResponseCode<'_>>, text: Option<&str>) -> Result<(), ImapFailure> {
    match status {
        Status::Ok => Ok(()),
        Status::No => Err(ImapFailure::refused(false, code_name(code), text.unwrap_or(""))),
        Status::Bad => Err(ImapFailure::refused(true, code_name(code), text.unwrap_or(""))),
        Status::Bye => Err(ImapFailure::bye(code_name(code), text.unwrap_or(""))),
        Status::PreAuth => Err(ImapFailure::Unexpected("the server answered a command with PREAUTH")),
    }
}

/// What one FETCH response carried.
#[derive(Default)]
pub(crate) struct Fetched {
    pub uid: Option<u32>,
    pub internal_date: Option<DateTime<Utc>>,
    pub body: Option<Vec<u8>>,
    /// Gmail's X-GM-MSGID: one id for a message in any number of folders (labels).
    pub gm_msgid: Option<u64>,
}

/// Wire to types: a FETCH response's UID, INTERNALDATE, X-GM-MSGID and BODY[].
pub(crate) fn fetched(response: &Response<'_>) -> Option<Fetched> {
    let Response::Fetch(_, attributes) = response else {
        return None;
    };
    let mut item = Fetched::default();
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(uid) => item.uid = Some(*uid),
            AttributeValue::InternalDate(date) => item.internal_date = parse_internal_date(date),
            AttributeValue::GmailMsgId(id) => item.gm_msgid = Some(*id),
            AttributeValue::BodySection { section: None, data: Some(data), .. } | AttributeValue::Rfc822(Some(data)) => {
                item.body = Some(data.to_vec());
            }
            _ => {}
        }
    }
    Some(item)
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
        assert_eq!(item.internal_date.map(|d| d.to_rfc3339()), Some("1996-07-17T09:44:25+00:00".into()));
        assert_eq!(item.gm_msgid, None);

        let (_, flags_only) = Response::parse(b"* 4 FETCH (FLAGS (\\Seen) UID 43)\r\n").unwrap();
        let item = fetched(&flags_only).unwrap();
        assert_eq!((item.uid, item.body.is_none()), (Some(43), true));
        let (_, exists) = Response::parse(b"* 4 EXISTS\r\n").unwrap();
        assert!(fetched(&exists).is_none());
    }

    #[test]
    fn gmail_message_ids_are_read_from_fetch_responses() {
        // As Gmail answers `UID FETCH 1:* (UID X-GM-MSGID)`, in either order.
        let (_, response) = Response::parse(b"* 1 FETCH (X-GM-MSGID 1278455344230334865 UID 7)\r\n").unwrap();
        let item = fetched(&response).unwrap();
        assert_eq!((item.uid, item.gm_msgid), (Some(7), Some(1_278_455_344_230_334_865)));
        let (_, response) = Response::parse(b"* 2 FETCH (UID 8 X-GM-MSGID 18446744073709551615)\r\n").unwrap();
        assert_eq!(fetched(&response).unwrap().gm_msgid, Some(u64::MAX));
    }

    #[test]
    fn list_responses_carry_the_sent_attribute() {
        let (_, response) = Response::parse(b"* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n").unwrap();
        let Response::MailboxData(MailboxDatum::List(data)) = response else {
            panic!("not a LIST response: {response:?}");
        };
        assert!(data.name_attributes.contains(&NameAttribute::Sent));
        assert_eq!((data.name.as_ref(), data.delimiter.as_deref()), ("Sent", Some("/")));
    }
}
