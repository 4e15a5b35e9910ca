//! System emails: composed in the recipient's language, sent through the configured SMTP
//! server, or written to the data folder's `outbox/` when none is configured (so a fresh
//! install loses nothing and needs no setup).

use crate::i18n;

use std::path::Path;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::error::{Error, Result};

/// One of the emails Concierge sends on its own account, with what it needs to say.
pub enum SystemEmail<'a> {
    /// To the new address: the link that confirms a login-email change.
    EmailChangeVerify { new_email: &'a str, link: &'a str, hours: i64 },
    /// To the old address: a change was asked for.
    EmailChangeNotice { new_email: &'a str, ip: &'a str },
    /// To the old address: the change happened.
    EmailChanged { new_email: &'a str },
    /// The password was changed.
    PasswordChanged { time: &'a str, ip: &'a str },
    /// "Forgot password": the link that sets a new one.
    PasswordReset { link: &'a str, minutes: i64, ip: &'a str },
    /// The password was set with a reset link.
    PasswordResetDone { time: &'a str, ip: &'a str },
    /// After sign-up: the link that proves the address.
    VerifyEmail { email: &'a str, link: &'a str, days: i64 },
    /// Someone signed up with an address that already has an account.
    SignUpAttempt { email: &'a str, reset: &'a str },
    /// The account will be deleted at `when` (UTC) unless the holder cancels.
    AccountDeletionScheduled { when: &'a str },
    /// To an invited address: who invites it where, and the link that answers (to sign up
    /// first when the address has no account).
    WorkspaceInvitation { workspace: &'a str, inviter: &'a str, role: &'a str, link: &'a str, hours: i64, has_account: bool },
}

impl SystemEmail<'_> {
    /// Subject and plain-text body in `language`, greeting `name`.
    pub fn compose(&self, language: &str, name: &str) -> (String, String) {
        let (hours, minutes, days);
        let (id, args): (&str, Vec<(&'static str, &str)>) = match self {
            SystemEmail::WorkspaceInvitation { workspace, inviter, role, link, hours: h, has_account } => {
                hours = h.to_string();
                let id = if *has_account { "invitation" } else { "invitation-sign-up" };
                (id, vec![("workspace", workspace), ("name", inviter), ("role", role), ("link", link), ("hours", &hours)])
            }
            SystemEmail::EmailChangeVerify { new_email, link, hours: h } => {
                hours = h.to_string();
                ("email-change-verify", vec![("new_email", new_email), ("link", link), ("hours", &hours)])
            }
            SystemEmail::EmailChangeNotice { new_email, ip } => ("email-change-notice", vec![("new_email", new_email), ("ip", ip)]),
            SystemEmail::EmailChanged { new_email } => ("email-changed", vec![("new_email", new_email)]),
            SystemEmail::PasswordChanged { time, ip } => ("password-changed", vec![("time", time), ("ip", ip)]),
            SystemEmail::PasswordReset { link, minutes: m, ip } => {
                minutes = m.to_string();
                ("password-reset", vec![("link", link), ("minutes", &minutes), ("ip", ip)])
            }
            SystemEmail::PasswordResetDone { time, ip } => ("password-reset-done", vec![("time", time), ("ip", ip)]),
            SystemEmail::VerifyEmail { email, link, days: d } => {
                days = d.to_string();
                ("verify-email", vec![("email", email), ("link", link), ("days", &days)])
            }
            SystemEmail::SignUpAttempt { email, reset } => ("sign-up-attempt", vec![("email", email), ("reset", reset)]),
            SystemEmail::AccountDeletionScheduled { when } => ("account-deletion", vec![("when", when)]),
        };
        let subject = i18n::text(language, &format!("{id}-subject"), &args);
        let body = format!(
            "{}\n\n{}\n\n{}\n",
            i18n::text(language, "greeting", &[("name", name)]),
            i18n::text(language, &format!("{id}-body"), &args).trim_end(),
            i18n::text(language, "signoff", &[]),
        );
        (subject, body)
    }
}

/// An email ready to go: subject, HTML and its plain-text twin.
pub struct Composed {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// A one-click link that stops emails like this one (RFC 8058 `List-Unsubscribe`).
    pub unsubscribe: Option<String>,
}

/// Why a delivery did not happen, and whether trying again can help.
#[derive(Debug)]
pub struct SendFailure {
    /// The server refused for good (a 5xx reply: no such mailbox, message refused).
    pub permanent: bool,
    pub reason: String,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    /// SMTP when `smtp_url` is given (`smtp://host:port` plain, `smtp://…?tls=required` for
    /// STARTTLS, `smtps://user:pass@host` for implicit TLS), else the outbox folder.
    pub fn new(smtp_url: Option<&str>, from: &str, data_dir: &Path) -> anyhow::Result<Mailer> {
        let from: Mailbox = from.parse().map_err(|e| anyhow::anyhow!("CONCIERGE_MAIL_FROM is not a mailbox: {e}"))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // The URL may hold a password: say what is wrong without echoing it.
                    .map_err(|e| anyhow::anyhow!("CONCIERGE_SMTP_URL is not a valid SMTP URL ({})", e.to_string().replace(url, "…")))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => {
                let outbox = data_dir.join("outbox");
                std::fs::create_dir_all(&outbox)?;
                tracing::info!(outbox = %outbox.display(), "no SMTP server configured: system emails are written to the outbox folder");
                Transport::Outbox(AsyncFileTransport::new(outbox))
            }
        };
        Ok(Mailer { transport, from })
    }

    /// Sends a composed email (HTML with a plain-text alternative) to `to`. `message_id`
    /// (`<unique@host>`) stays the same across retries of one delivery, so a receiver that
    /// got a message whose acknowledgement was lost can tell the retry is the same message.
    pub async fn deliver(&self, to: &str, name: &str, email: &Composed, message_id: &str) -> std::result::Result<(), SendFailure> {
        let permanent = |reason: String| SendFailure { permanent: true, reason };
        let address = to.parse().map_err(|_| permanent("not a deliverable address".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(Some(name.to_owned()), address))
            .subject(email.subject.clone())
            .message_id(Some(message_id.to_owned()));
        let message = match &email.unsubscribe {
            Some(link) => message.header(ListUnsubscribe(link.clone())).header(ListUnsubscribePost),
            None => message,
        };
        let message = message
            .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
            .map_err(|e| permanent(format!("cannot build the email: {e}")))?;
        let sent = match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(drop).map_err(|e| SendFailure {
                permanent: e.is_permanent(),
                // lettre's messages name the server and the reply, never credentials.
                reason: format!("SMTP: {e}"),
            }),
            Transport::Outbox(t) => {
                t.send(message).await.map(drop).map_err(|e| SendFailure { permanent: false, reason: format!("outbox: {e}") })
            }
        };
        if sent.is_ok() {
            metrics::counter!("concierge_emails_sent_total").increment(1);
        }
        sent
    }

    /// The sender address.
    pub fn address(&self) -> &lettre::Address {
        &self.from.email
    }

    /// The domain of the sender address, for message ids.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Sends a system email to `to`, in `language`.
    pub async fn send(&self, to: &str, name: &str, language: &str, email: SystemEmail<'_>) -> Result<()> {
        let (subject, body) = email.compose(language, name);
        let to: Mailbox =
            Mailbox::new(Some(name.to_owned()), to.parse().map_err(|_| Error::invalid("email", "not a deliverable address"))?);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot build an email: {e}")))?;
        let sent = match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(drop).map_err(|e| anyhow::anyhow!("SMTP: {e}")),
            Transport::Outbox(t) => t.send(message).await.map(drop).map_err(|e| anyhow::anyhow!("outbox: {e}")),
        };
        sent.map_err(Error::Internal)?;
        metrics::counter!("concierge_emails_sent_total").increment(1);
        Ok(())
    }
}

/// `List-Unsubscribe: <https://…>`: where a mail client's "unsubscribe" button posts.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.trim().trim_start_matches('<').trim_end_matches('>').to_owned()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): the link works by a POST
/// alone, with no page to confirm on.
#[derive(Clone)]
struct ListUnsubscribePost;

impl lettre::message::header::Header for ListUnsubscribePost {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}
