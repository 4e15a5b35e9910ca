//! Sending mail from the platform through one of the user's mailboxes: compose (HTML and a
//! plain-text part, the user's signature, our own Message-ID, In-Reply-To and References
//! when it answers an activity event), send through the mailbox's connector (which leaves a
//! copy in the Sent folder), then record a `message.send` event on each recipient's
//! contact. The sync recognises the same message in the Sent folder by its Message-ID.

use std::time::Duration;

use chrono::Utc;
use concierge_connector_sdk::{ConnectorError, Outgoing};
use lettre::message::header::ContentType;
use lettre::message::{Attachment as LettreAttachment, Mailbox as LettreMailbox, MultiPart, SinglePart};
use tracing::instrument;

use super::ingest::{self, Owner};
use super::model::{MailboxId, MailboxStatus};
use super::service::MailboxService;
use crate::activity::model::EventId;
use crate::error::{Error, Result};
use crate::fanout::Change;
use crate::identity::service::Viewer;
use crate::profile::service::SignatureView;

/// How long the provider may take to accept a message.
const SEND_TIMEOUT: Duration = Duration::from_secs(120);
/// Most recipients (To, Cc and Bcc together) of one message.
pub const MAX_RECIPIENTS: usize = 100;

/// A file to attach.
pub struct OutgoingAttachment {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The message being replied to.
pub struct ReplyContext {
    pub message_id: String,
    pub references: Vec<String>,
}

pub struct SendInput {
    pub mailbox_id: MailboxId,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub html: String,
    pub reply_to: Option<ReplyContext>,
    pub attachments: Vec<OutgoingAttachment>,
}

/// What a send did.
pub struct Sent {
    /// Our Message-ID, without angle brackets.
    pub message_id: String,
    /// The `message.send` events recorded, one per recipient's contact.
    pub events: Vec<EventId>,
    pub saved_to_sent: bool,
    /// Things that went wrong after the message went out (it was sent all the same).
    pub warnings: Vec<String>,
}

impl MailboxService {
    /// Sends a message through the viewer's mailbox. Either it went out (and the result says
    /// whether the Sent copy and the events were kept), or nothing was sent and the error
    /// names the input at fault.
    #[instrument(skip_all, fields(mailbox_id = %input.mailbox_id.0))]
    pub async fn send_email(&self, viewer: &Viewer, input: SendInput, signature: &SignatureView) -> Result<Sent> {
        let max_bytes = self.max_send_bytes;
        let mailbox = self.mailbox(viewer, input.mailbox_id).await.map_err(|_| Error::invalid("mailboxId", "not a mailbox of yours"))?;
        if mailbox.status() == MailboxStatus::NeedsReauth {
            return Err(Error::Connector {
                code: "AUTHENTICATION_FAILED",
                field: "mailboxId".into(),
                message: "the mailbox needs you to sign in to it again before it can send".into(),
            });
        }
        let connector = self.sync.registry().get(&mailbox.connector).cloned().ok_or(Error::NotFound("connector"))?;
        if !connector.descriptor().capabilities.send {
            return Err(Error::invalid("mailboxId", "this mailbox's connector cannot send mail"));
        }

        let to = recipients("to", &input.to)?;
        let cc = recipients("cc", &input.cc)?;
        let bcc = recipients("bcc", &input.bcc)?;
        let count = to.len() + cc.len() + bcc.len();
        if count == 0 {
            return Err(Error::invalid("to", "name at least one recipient"));
        }
        if count > MAX_RECIPIENTS {
            return Err(Error::invalid("to", format!("at most {MAX_RECIPIENTS} recipients (To, Cc and Bcc together)")));
        }
        let subject = input.subject.trim();
        if subject.contains(['\r', '\n']) {
            return Err(Error::invalid("subject", "must be one line"));
        }
        if subject.chars().count() > 998 {
            return Err(Error::invalid("subject", "must be at most 998 characters"));
        }
        let body = super::parse::sanitise_html(&input.html);
        let body_text = html2text::from_read(body.as_bytes(), 78).unwrap_or_default();
        if subject.is_empty() && body_text.trim().is_empty() && input.attachments.is_empty() {
            return Err(Error::invalid("subject", "a message needs a subject, a body or an attachment"));
        }
        let attached: usize = input.attachments.iter().map(|a| a.bytes.len()).sum();
        if attached > max_bytes {
            return Err(too_large(max_bytes));
        }

        // Compose: the body, then the signature; HTML and plain text.
        let (html, text) = if signature.rendered.trim().is_empty() {
            (body, body_text)
        } else {
            (
                format!("{body}<br><br><div class=\"signature\">{}</div>", signature.rendered),
                format!("{body_text}\n\n-- \n{}", signature.text),
            )
        };
        let domain = mailbox.email_address.rsplit_once('@').map(|(_, d)| d).unwrap_or("concierge.invalid");
        let message_id = format!("{}@{domain}", uuid::Uuid::now_v7().simple());
        let from_name = viewer.account.shown_name();
        let from_address = mailbox.email_address.parse().map_err(|_| Error::invalid("mailboxId", "the mailbox's address cannot send"))?;
        let mut builder = lettre::Message::builder()
            .from(LettreMailbox::new(Some(from_name).filter(|n| !n.is_empty()), from_address))
            .subject(subject)
            .message_id(Some(format!("<{message_id}>")))
            .date_now()
            .keep_bcc();
        for (address, _) in &to {
            builder = builder.to(address.clone());
        }
        for (address, _) in &cc {
            builder = builder.cc(address.clone());
        }
        for (address, _) in &bcc {
            builder = builder.bcc(address.clone());
        }
        if let Some(reply) = &input.reply_to {
            builder = builder.in_reply_to(format!("<{}>", reply.message_id));
            let mut chain: Vec<String> = reply.references.iter().rev().take(20).rev().map(|r| format!("<{r}>")).collect();
            chain.push(format!("<{}>", reply.message_id));
            builder = builder.references(chain.join(" "));
        }
        let alternative = MultiPart::alternative_plain_html(text, html);
        let message = if input.attachments.is_empty() {
            builder.multipart(alternative)
        } else {
            let mut mixed = MultiPart::mixed().multipart(alternative);
            for (i, a) in input.attachments.into_iter().enumerate() {
                let kind = a
                    .content_type
                    .as_deref()
                    .and_then(|c| ContentType::parse(c).ok())
                    .unwrap_or_else(|| ContentType::parse("application/octet-stream").expect("a valid MIME type"));
                let name = a.filename.trim();
                if name.is_empty() || name.len() > 255 || name.contains(['\r', '\n']) {
                    return Err(Error::invalid(format!("attachments[{i}]"), "needs a file name of one line, at most 255 bytes"));
                }
                let part: SinglePart = LettreAttachment::new(name.to_owned()).body(a.bytes, kind);
                mixed = mixed.singlepart(part);
            }
            builder.multipart(mixed)
        }
        .map_err(|e| Error::invalid("to", format!("the message cannot be composed: {e}")))?;
        // Our own copy names the Bcc recipients; the one that travels does not.
        let with_bcc = message.formatted();
        let wire = without_bcc(&with_bcc);
        if wire.len() > max_bytes {
            return Err(too_large(max_bytes));
        }
        let envelope: Vec<String> = to.iter().chain(&cc).chain(&bcc).map(|(_, plain)| plain.clone()).collect();

        let account = self.sync.account(&mailbox, &connector).await?;
        let outgoing = Outgoing {
            from: &mailbox.email_address,
            recipients: &envelope,
            raw: &wire,
            sent_copy: (!bcc.is_empty()).then_some(with_bcc.as_slice()),
        };
        let receipt = match tokio::time::timeout(SEND_TIMEOUT, connector.send(&account, outgoing)).await {
            Ok(Ok(receipt)) => receipt,
            Ok(Err(e)) => return Err(send_error(&e)),
            Err(_) => {
                return Err(Error::Connector {
                    code: "UNREACHABLE",
                    field: "mailboxId".into(),
                    message: format!(
                        "the mail server did not accept the message within {} s; it may or may not have been sent",
                        SEND_TIMEOUT.as_secs()
                    ),
                });
            }
        };
        tracing::info!(recipients = envelope.len(), saved_to_sent = receipt.saved_to_sent, "sent a message");

        let mut warnings = Vec::new();
        if let Some(why) = &receipt.sent_copy_error {
            warnings.push(format!("sent, but no copy could be kept in the Sent folder: {why}"));
        }
        let owner = Owner {
            mailbox_id: mailbox.mailbox_id,
            account_id: mailbox.account_id,
            workspace_id: mailbox.workspace_id,
            address: mailbox.email_address.clone(),
        };
        let events = match ingest::record_sent(&self.db, &owner, &with_bcc, Utc::now()).await {
            Ok(recorded) => {
                let changes: Vec<Change> = recorded
                    .iter()
                    .map(|r| Change::Activity { workspace_id: owner.workspace_id, event_id: r.event_id, contact_id: r.contact_id })
                    .collect();
                self.fanout.publish_all(&changes).await;
                self.sync.wake_webhooks();
                recorded.into_iter().map(|r| r.event_id).collect()
            }
            Err(e) => {
                // The mail went out: say so, and let the Sent folder's sync record it later.
                tracing::error!(error = ?e, "recording a sent message");
                warnings.push("sent, but not yet recorded on the contacts; it will be when the Sent folder syncs".into());
                Vec::new()
            }
        };
        Ok(Sent { message_id, events, saved_to_sent: receipt.saved_to_sent, warnings })
    }
}

fn too_large(max: usize) -> Error {
    Error::Connector {
        code: "MESSAGE_TOO_LARGE",
        field: "attachments".into(),
        message: format!("the message may be at most {max} bytes, attachments included"),
    }
}

/// Parsed recipients of one field, each as lettre's mailbox and the bare address.
fn recipients(field: &'static str, list: &[String]) -> Result<Vec<(LettreMailbox, String)>> {
    list.iter()
        .enumerate()
        .map(|(i, raw)| {
            let raw = raw.trim();
            let bad = || Error::invalid(format!("{field}[{i}]"), format!("{raw:?} is not an email address"));
            let mailbox: LettreMailbox = raw.parse().map_err(|_| bad())?;
            let plain = mailbox.email.to_string();
            if !email_address::EmailAddress::is_valid(&plain) {
                return Err(bad());
            }
            Ok((mailbox, plain))
        })
        .collect()
}

/// The message without its Bcc header (and that header's folded continuation lines).
fn without_bcc(raw: &[u8]) -> Vec<u8> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 2).unwrap_or(raw.len());
    let (head, body) = raw.split_at(end);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// A connector's refusal as the client sees it.
fn send_error(e: &ConnectorError) -> Error {
    let field = match e {
        ConnectorError::Rejected { .. } => "to",
        _ => "mailboxId",
    };
    Error::Connector { code: e.code(), field: field.into(), message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bcc_header_and_its_continuation_lines_are_left_out_and_nothing_else() {
        let raw = b"From: a@x\r\nBcc: b@x,\r\n c@x\r\nTo: d@x\r\nSubject: Bcc: in a subject\r\n\r\nBcc: in the body\r\n";
        let out = without_bcc(raw);
        assert_eq!(out, b"From: a@x\r\nTo: d@x\r\nSubject: Bcc: in a subject\r\n\r\nBcc: in the body\r\n".to_vec());
    }

    #[test]
    fn recipients_name_the_entry_at_fault() {
        let err = recipients("cc", &["ok@example.com".into(), "not an address".into()]).unwrap_err();
        match err {
            Error::Invalid { field, .. } => assert_eq!(field, "cc[1]"),
            other => panic!("expected an input error, got {other:?}"),
        }
        let ok = recipients("to", &["Ann Example <ann@example.com>".into()]).expect("a named address is fine");
        assert_eq!(ok[0].1, "ann@example.com");
    }
}
