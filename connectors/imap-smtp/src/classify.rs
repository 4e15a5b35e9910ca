//! The one place that turns what went wrong on the wire into a [`ConnectorError`], so the
//! gateway knows whether to back off, re-authorise, wait or ask for new settings.
//!
//! Failures are first captured as plain data ([`ImapFailure`], [`SmtpFailure`]) together with
//! the stage of the conversation they happened in: a `NO` to LOGIN is a bad password, a `NO`
//! to EXAMINE a missing folder. The mapping itself is pure and unit-tested.
//!
//! Messages never quote what we sent (passwords, tokens) nor free text from low-level errors
//! that may echo server data (the IMAP parser's errors quote the bytes it choked on, which
//! can be mail content): only response codes, the server's status text and our own words.

use std::error::Error as StdError;
use std::io;

use concierge_connector_sdk::{ConnectorError, FieldError};
use tokio_rustls::rustls;

use crate::wire::{split_response_code, tidy};

/// Where in an IMAP conversation a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImapStage {
    /// DNS and TCP connect.
    Connect,
    /// The TLS handshake (implicit TLS, or after STARTTLS).
    TlsHandshake,
    /// Waiting for the server's first line.
    Greeting,
    /// The STARTTLS command itself.
    StartTls,
    /// LOGIN or AUTHENTICATE.
    SignIn,
    /// EXAMINE of the synced folder.
    OpenFolder,
    /// Any later command (SEARCH, FETCH, IDLE, NOOP).
    Command,
}

/// What went wrong, as data.
#[derive(Debug)]
pub(crate) enum ImapFailure {
    Io(io::Error),
    TimedOut,
    /// The connection ended without a BYE.
    Closed,
    /// A tagged `NO` (`bad == false`) or `BAD`.
    Refused {
        bad: bool,
        code: Option<String>,
        text: String,
    },
    /// An untagged BYE: the server is closing the connection.
    Bye {
        code: Option<String>,
        text: String,
    },
    /// Something the client did not expect; the words are ours.
    Unexpected(&'static str),
    /// A value we were asked to send cannot be sent (a line break in a user name).
    InvalidInput(&'static str),
}

impl ImapFailure {
    /// A tagged or untagged status with its text (`[CODE] human text`).
    pub fn refused(bad: bool, code: Option<String>, text: &str) -> ImapFailure {
        let (embedded, human) = split_response_code(text);
        ImapFailure::Refused { bad, code: code.or(embedded), text: human }
    }

    pub fn bye(code: Option<String>, text: &str) -> ImapFailure {
        let (embedded, human) = split_response_code(text);
        ImapFailure::Bye { code: code.or(embedded), text: human }
    }
}

impl From<io::Error> for ImapFailure {
    fn from(e: io::Error) -> ImapFailure {
        ImapFailure::Io(e)
    }
}

impl From<async_imap::error::Error> for ImapFailure {
    fn from(e: async_imap::error::Error) -> ImapFailure {
        use async_imap::error::Error;
        match e {
            Error::Io(e) => ImapFailure::Io(e),
            Error::No(s) => from_status_debug(false, &s),
            Error::Bad(s) => from_status_debug(true, &s),
            Error::ConnectionLost => ImapFailure::Closed,
            // Parse errors quote the server's bytes (and SASL challenges): never shown.
            Error::Parse(_) => ImapFailure::Unexpected("the server sent a response the client could not parse"),
            Error::Validate(_) => ImapFailure::InvalidInput("the user name or password contains a line break"),
            _ => ImapFailure::Unexpected("the server answered something the client did not expect"),
        }
    }
}

/// async-imap reports a tagged NO/BAD to LOGIN/AUTHENTICATE only as the text
/// `code: {Option<ResponseCode>:?}, info: {Option<&str>:?}`; this recovers the code and the
/// server's text from it (the rest of the connector reads responses itself, structured).
fn from_status_debug(bad: bool, s: &str) -> ImapFailure {
    let (code_part, info_part) = match s.rfind(", info: ") {
        Some(at) => (&s[..at], &s[at + ", info: ".len()..]),
        None => (s, "None"),
    };
    let code = code_part
        .strip_prefix("code: Some(")
        .map(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("").to_ascii_uppercase())
        .filter(|c| !c.is_empty());
    let info = info_part
        .strip_prefix("Some(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .map(|quoted| quoted.replace("\\\"", "\"").replace("\\\\", "\\"))
        .unwrap_or_default();
    ImapFailure::refused(bad, code, &info)
}

/// Maps one IMAP failure. `server` names the endpoint (`IMAP mail.example.com:993 (SSL/TLS)`)
/// so the person reading the message knows which of the two servers is meant.
pub(crate) fn classify_imap(stage: ImapStage, server: &str, failure: ImapFailure) -> ConnectorError {
    let unreachable = |why: String| ConnectorError::Unreachable { message: format!("{server}: {why}") };
    let tls = |why: String| ConnectorError::Tls { message: format!("{server}: {why}") };
    let protocol = |why: String| ConnectorError::Protocol { message: format!("{server}: {why}") };
    match failure {
        ImapFailure::Io(e) => {
            if let Some(why) = rustls_cause(&e) {
                return tls(why);
            }
            match stage {
                // A reset mid-handshake is the server going away (a restart), not TLS: a
                // server that disagrees about TLS answers with an alert or with plain text.
                ImapStage::TlsHandshake
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    unreachable(format!("the connection was {} during the TLS handshake; is the server restarting?", io_kind(e.kind())))
                }
                ImapStage::TlsHandshake => {
                    tls(format!("the TLS handshake failed ({}); check that the port expects this security type", io_kind(e.kind())))
                }
                // Connect errors come from the OS and the resolver, never from the server's
                // data, so their text is safe and useful ("Name or service not known").
                ImapStage::Connect => unreachable(format!("cannot connect: {e}")),
                _ if is_transport(e.kind()) => unreachable(format!("connection lost ({})", io_kind(e.kind()))),
                _ => protocol("the server sent data the client could not read".into()),
            }
        }
        ImapFailure::TimedOut => match stage {
            ImapStage::Connect => unreachable("timed out connecting".into()),
            ImapStage::TlsHandshake => tls("timed out during the TLS handshake; check that the port expects this security type".into()),
            ImapStage::Greeting => {
                unreachable("no greeting from the server in time; if the port expects TLS from the first byte, choose SSL/TLS".into())
            }
            _ => unreachable("the server stopped answering".into()),
        },
        ImapFailure::Closed => match stage {
            ImapStage::TlsHandshake => tls("the server closed the connection during the TLS handshake".into()),
            _ => unreachable("the server closed the connection".into()),
        },
        ImapFailure::Unexpected(what) => protocol(what.into()),
        ImapFailure::InvalidInput(what) => match stage {
            ImapStage::SignIn => ConnectorError::Authentication { message: format!("{server}: {what}") },
            _ => protocol(what.into()),
        },
        ImapFailure::Bye { code, text } => {
            if let Some(e) = by_code(code.as_deref(), stage, server, &text) {
                return e;
            }
            unreachable(format!("the server closed the session: {}", tidy(&text)))
        }
        ImapFailure::Refused { bad, code, text } => {
            if let Some(e) = by_code(code.as_deref(), stage, server, &text) {
                return e;
            }
            match (stage, bad) {
                // Most servers answer a wrong password with a bare NO.
                (ImapStage::SignIn, false) => ConnectorError::Authentication { message: format!("{server}: {}", tidy(&text)) },
                // A BAD to LOGIN may echo the command line: keep its text out.
                (ImapStage::SignIn, true) => protocol("the server rejected the sign-in command as malformed".into()),
                (ImapStage::StartTls, _) => tls(format!("the server refused STARTTLS: {}", tidy(&text))),
                (ImapStage::OpenFolder, false) => {
                    ConnectorError::Settings(FieldError::new("folder", "does not exist on the server or cannot be opened"))
                }
                (_, true) => protocol(format!("the server rejected a command: {}", tidy(&text))),
                (_, false) => protocol(format!("the server refused a command: {}", tidy(&text))),
            }
        }
    }
}

/// RFC 5530 response codes (and a few providers' own) mean the same in any command.
fn by_code(code: Option<&str>, stage: ImapStage, server: &str, text: &str) -> Option<ConnectorError> {
    let text = tidy(text);
    let message = format!("{server}: {text}");
    Some(match code? {
        "AUTHENTICATIONFAILED" | "AUTHORIZATIONFAILED" | "EXPIRED" | "CONTACTADMIN" => ConnectorError::Authentication { message },
        // Gmail and others put the reason a sign-in failed into an ALERT.
        "ALERT" if stage == ImapStage::SignIn => ConnectorError::Authentication { message },
        "PRIVACYREQUIRED" => ConnectorError::Settings(FieldError::new(
            "imapSecurity",
            "must be SSL/TLS or STARTTLS: the server signs in only over an encrypted connection",
        )),
        "UNAVAILABLE" => ConnectorError::Unreachable { message: format!("{server}: temporarily unavailable: {text}") },
        "LIMIT" | "THROTTLED" | "OVERQUOTA" | "INUSE" => ConnectorError::Throttled { retry_after: None, message },
        "NONEXISTENT" if stage == ImapStage::OpenFolder => {
            ConnectorError::Settings(FieldError::new("folder", "does not exist on the server"))
        }
        "SERVERBUG" => ConnectorError::Protocol { message: format!("{server}: server bug: {text}") },
        _ => return None,
    })
}

/// Where in an SMTP submission a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SmtpStage {
    /// TCP connect, implicit TLS, greeting and EHLO.
    Connect,
    StartTls,
    SignIn,
    /// MAIL FROM, RCPT TO, DATA.
    Send,
}

/// What went wrong with SMTP, as data.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SmtpFailure {
    /// A negative reply: its three-digit code and the server's text.
    Reply {
        code: u16,
        text: String,
    },
    Tls(String),
    Io(io::ErrorKind),
    TimedOut,
    /// The client gave up by itself (no common AUTH mechanism, no STARTTLS offered, an
    /// address it cannot send); the words are lettre's or ours.
    Client(String),
    /// The reply could not be parsed.
    Malformed,
}

impl From<&lettre::transport::smtp::Error> for SmtpFailure {
    fn from(e: &lettre::transport::smtp::Error) -> SmtpFailure {
        if let Some(code) = e.status() {
            // The source of a reply error is the server's text, joined.
            let text = e.source().map(|s| s.to_string()).unwrap_or_default();
            return SmtpFailure::Reply { code: u16::from(code), text };
        }
        let mut source = e.source();
        while let Some(err) = source {
            if let Some(r) = err.downcast_ref::<rustls::Error>() {
                return SmtpFailure::Tls(describe_rustls(r));
            }
            if let Some(io) = err.downcast_ref::<io::Error>() {
                if let Some(why) = rustls_cause(io) {
                    return SmtpFailure::Tls(why);
                }
                if io.kind() == io::ErrorKind::TimedOut {
                    return SmtpFailure::TimedOut;
                }
                if !e.is_tls() {
                    return SmtpFailure::Io(io.kind());
                }
            }
            source = err.source();
        }
        if e.is_tls() {
            SmtpFailure::Tls("the TLS handshake failed".into())
        } else if e.is_timeout() {
            SmtpFailure::TimedOut
        } else if e.is_client() {
            SmtpFailure::Client(e.source().map(|s| tidy(&s.to_string())).unwrap_or_else(|| "client error".into()))
        } else if e.is_response() {
            SmtpFailure::Malformed
        } else {
            SmtpFailure::Io(io::ErrorKind::Other)
        }
    }
}

pub(crate) fn classify_smtp(stage: SmtpStage, server: &str, failure: SmtpFailure) -> ConnectorError {
    let msg = |why: String| format!("{server}: {why}");
    match failure {
        SmtpFailure::Reply { code, text } => {
            let text = tidy(&text);
            match (code, stage) {
                // 530 authentication required, 534 mechanism too weak / app password needed,
                // 535 credentials invalid, 538 encryption required for the mechanism.
                (530 | 534 | 535 | 538, _) => ConnectorError::Authentication { message: msg(format!("{code} {text}")) },
                (500..=599, SmtpStage::SignIn) => ConnectorError::Authentication { message: msg(format!("{code} {text}")) },
                // 421 with a policy code (X.7.x) is the server limiting this account (too many
                // sessions or messages: Dovecot's `421 4.7.0 Maximum number of connections`,
                // Gmail's `421 4.7.0 Try again later`); without one, the service is down.
                (421, _) if matches!(enhanced_status(&text), Some((4, 7, _))) => {
                    ConnectorError::Throttled { retry_after: None, message: msg(format!("{code} {text}")) }
                }
                (421, _) => ConnectorError::Unreachable { message: msg(format!("service not available: {code} {text}")) },
                (454, SmtpStage::SignIn) => {
                    ConnectorError::Unreachable { message: msg(format!("temporary authentication failure: {code} {text}")) }
                }
                (400..=499, _) => ConnectorError::Throttled { retry_after: None, message: msg(format!("{code} {text}")) },
                (_, SmtpStage::Connect) => {
                    ConnectorError::Unreachable { message: msg(format!("the server refused the session: {code} {text}")) }
                }
                (_, SmtpStage::StartTls) => ConnectorError::Tls { message: msg(format!("the server refused STARTTLS: {code} {text}")) },
                // A permanent refusal while sending (a recipient, the content, the size):
                // this message will never go, the account is fine.
                (500..=599, SmtpStage::Send) => {
                    ConnectorError::Rejected { message: msg(format!("the server refused the message: {code} {text}")) }
                }
                (_, _) => ConnectorError::Protocol { message: msg(format!("unexpected reply: {code} {text}")) },
            }
        }
        SmtpFailure::Tls(why) => ConnectorError::Tls { message: msg(why) },
        SmtpFailure::TimedOut => ConnectorError::Unreachable { message: msg("timed out".into()) },
        SmtpFailure::Io(kind) => match stage {
            SmtpStage::Connect => ConnectorError::Unreachable { message: msg(format!("cannot connect ({})", io_kind(kind))) },
            SmtpStage::StartTls => ConnectorError::Tls { message: msg(format!("the TLS handshake failed ({})", io_kind(kind))) },
            _ => ConnectorError::Unreachable { message: msg(format!("connection lost ({})", io_kind(kind))) },
        },
        SmtpFailure::Client(why) => match stage {
            SmtpStage::StartTls => ConnectorError::Tls { message: msg(why) },
            SmtpStage::SignIn => ConnectorError::Authentication { message: msg(why) },
            _ => ConnectorError::Protocol { message: msg(why) },
        },
        SmtpFailure::Malformed => ConnectorError::Protocol { message: msg("the server sent a reply the client could not parse".into()) },
    }
}

/// The RFC 3463 enhanced status code a reply's text starts with (`4.7.0 …`): class,
/// subject and detail.
fn enhanced_status(text: &str) -> Option<(u8, u16, u16)> {
    let mut parts = text.split_whitespace().next()?.splitn(3, '.');
    let class = parts.next()?.parse().ok()?;
    let subject = parts.next()?.parse().ok()?;
    let detail = parts.next()?.parse().ok()?;
    matches!(class, 2 | 4 | 5).then_some((class, subject, detail))
}

/// The TLS reason inside an I/O error, if there is one (tokio-rustls wraps rustls errors
/// in `io::ErrorKind::InvalidData`).
pub(crate) fn rustls_cause(e: &io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    inner.downcast_ref::<rustls::Error>().map(describe_rustls)
}

fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error, InvalidMessage};
    match e {
        Error::InvalidMessage(InvalidMessage::InvalidContentType) | Error::InvalidMessage(_) => {
            "the server did not answer with TLS; check the port and the security type (SSL/TLS or STARTTLS)".into()
        }
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => "the server's certificate is not trusted (unknown issuer)".into(),
        Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for this host name".into()
        }
        Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired".into()
        }
        other => format!("TLS error: {other}"),
    }
}

fn is_transport(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | UnexpectedEof
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
            | AddrNotAvailable
            | NetworkDown
    )
}

fn io_kind(kind: io::ErrorKind) -> &'static str {
    use io::ErrorKind::*;
    match kind {
        ConnectionRefused => concierge_connector_sdk::CONNECTION_REFUSED,
        ConnectionReset => "connection reset",
        ConnectionAborted => "connection aborted",
        BrokenPipe => "broken pipe",
        UnexpectedEof => "unexpected end of stream",
        TimedOut => "timed out",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        _ => "I/O error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "IMAP mail.example.com:993 (SSL/TLS)";

    fn imap(stage: ImapStage, failure: ImapFailure) -> ConnectorError {
        classify_imap(stage, S, failure)
    }

    #[test]
    fn a_refused_login_is_an_authentication_error_with_or_without_a_code() {
        let coded = ImapFailure::refused(false, None, "[AUTHENTICATIONFAILED] Authentication failed.");
        assert!(matches!(imap(ImapStage::SignIn, coded), ConnectorError::Authentication { .. }));
        let bare = ImapFailure::refused(false, None, "Login failed");
        assert!(matches!(imap(ImapStage::SignIn, bare), ConnectorError::Authentication { .. }));
        let alert = ImapFailure::refused(false, Some("ALERT".into()), "Application-specific password required");
        assert!(matches!(imap(ImapStage::SignIn, alert), ConnectorError::Authentication { .. }));
    }

    #[test]
    fn async_imap_status_text_keeps_its_code() {
        let e = async_imap::error::Error::No(r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#.into());
        match ImapFailure::from(e) {
            ImapFailure::Refused { bad: false, code, text } => {
                assert_eq!(code.as_deref(), Some("AUTHENTICATIONFAILED"));
                assert_eq!(text, "Authentication failed.");
            }
            other => panic!("{other:?}"),
        }
        let e = async_imap::error::Error::No(r#"code: Some(Alert), info: Some("Web login \"required\"")"#.into());
        match ImapFailure::from(e) {
            ImapFailure::Refused { code, text, .. } => {
                assert_eq!((code.as_deref(), text.as_str()), (Some("ALERT"), "Web login \"required\""))
            }
            other => panic!("{other:?}"),
        }
        let e = async_imap::error::Error::Bad("code: None, info: None".into());
        assert!(matches!(ImapFailure::from(e), ImapFailure::Refused { bad: true, code: None, .. }));
    }

    #[test]
    fn temporary_and_rate_codes_are_unreachable_or_throttled() {
        let unavailable = ImapFailure::refused(false, None, "[UNAVAILABLE] Temporary authentication failure.");
        assert!(matches!(imap(ImapStage::SignIn, unavailable), ConnectorError::Unreachable { .. }));
        for code in ["LIMIT", "OVERQUOTA", "INUSE", "THROTTLED"] {
            let f = ImapFailure::refused(false, None, &format!("[{code}] slow down"));
            assert!(matches!(imap(ImapStage::Command, f), ConnectorError::Throttled { retry_after: None, .. }), "{code}");
        }
        let bye = ImapFailure::bye(None, "[LIMIT] Too many connections");
        assert!(matches!(imap(ImapStage::Greeting, bye), ConnectorError::Throttled { .. }));
    }

    #[test]
    fn a_bye_means_the_server_went_away() {
        let bye = ImapFailure::bye(None, "IMAP session state is inconsistent, please relogin.");
        assert!(matches!(imap(ImapStage::Command, bye), ConnectorError::Unreachable { .. }));
    }

    #[test]
    fn a_missing_folder_names_the_folder_field() {
        let f = ImapFailure::refused(false, None, "[NONEXISTENT] Mailbox doesn't exist: Archive");
        assert!(matches!(imap(ImapStage::OpenFolder, f), ConnectorError::Settings(FieldError { ref field, .. }) if field == "folder"));
        let bare = ImapFailure::refused(false, None, "Mailbox doesn't exist");
        assert!(matches!(imap(ImapStage::OpenFolder, bare), ConnectorError::Settings(_)));
    }

    #[test]
    fn plaintext_refusal_asks_for_encryption() {
        let f = ImapFailure::refused(false, None, "[PRIVACYREQUIRED] Plaintext authentication disallowed");
        assert!(matches!(imap(ImapStage::SignIn, f), ConnectorError::Settings(FieldError { ref field, .. }) if field == "imapSecurity"));
    }

    #[test]
    fn transport_failures_depend_on_the_stage() {
        let refused = || ImapFailure::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(imap(ImapStage::Connect, refused()), ConnectorError::Unreachable { .. }));
        assert!(matches!(imap(ImapStage::Command, refused()), ConnectorError::Unreachable { .. }));
        let eof = || ImapFailure::Io(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(matches!(imap(ImapStage::TlsHandshake, eof()), ConnectorError::Tls { .. }));
        let reset = || ImapFailure::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(
            matches!(imap(ImapStage::TlsHandshake, reset()), ConnectorError::Unreachable { .. }),
            "a reset while a server restarts is no TLS failure"
        );
        assert!(matches!(imap(ImapStage::TlsHandshake, ImapFailure::TimedOut), ConnectorError::Tls { .. }));
        assert!(matches!(imap(ImapStage::Greeting, ImapFailure::TimedOut), ConnectorError::Unreachable { .. }));
        assert!(matches!(imap(ImapStage::Command, ImapFailure::Closed), ConnectorError::Unreachable { .. }));
    }

    #[test]
    fn tls_errors_inside_io_errors_are_tls_whatever_the_stage() {
        let plain_server =
            io::Error::new(io::ErrorKind::InvalidData, rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType));
        assert!(matches!(imap(ImapStage::Command, ImapFailure::Io(plain_server)), ConnectorError::Tls { .. }));
        let untrusted =
            io::Error::new(io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        match imap(ImapStage::TlsHandshake, ImapFailure::Io(untrusted)) {
            ConnectorError::Tls { message } => {
                assert!(message.contains("not trusted"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parser_errors_never_quote_server_bytes() {
        let leaky = io::Error::other("Error during parsing of \"* 1 FETCH (BODY[] {12}\\r\\nsecret body\"");
        let e = imap(ImapStage::Command, ImapFailure::Io(leaky));
        assert!(matches!(e, ConnectorError::Protocol { .. }));
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = imap(
            ImapStage::Command,
            ImapFailure::from(async_imap::error::Error::Parse(async_imap::error::ParseError::Unexpected("secret".into()))),
        );
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn a_bad_login_does_not_echo_the_command() {
        let f = ImapFailure::refused(true, None, "Error in IMAP command LOGIN: alice hunter2");
        let e = imap(ImapStage::SignIn, f);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn starttls_refusal_is_tls() {
        let f = ImapFailure::refused(true, None, "STARTTLS not supported");
        assert!(matches!(imap(ImapStage::StartTls, f), ConnectorError::Tls { .. }));
    }

    fn smtp(stage: SmtpStage, code: u16) -> ConnectorError {
        classify_smtp(stage, "SMTP smtp.example.com:587 (STARTTLS)", SmtpFailure::Reply { code, text: "5.7.8 nope".into() })
    }

    #[test]
    fn smtp_replies_map_by_code_and_stage() {
        assert!(matches!(smtp(SmtpStage::SignIn, 535), ConnectorError::Authentication { .. }));
        assert!(matches!(smtp(SmtpStage::Send, 530), ConnectorError::Authentication { .. }));
        assert!(matches!(smtp(SmtpStage::SignIn, 534), ConnectorError::Authentication { .. }));
        assert!(matches!(smtp(SmtpStage::SignIn, 504), ConnectorError::Authentication { .. }));
        assert!(matches!(smtp(SmtpStage::SignIn, 454), ConnectorError::Unreachable { .. }));
        assert!(matches!(smtp(SmtpStage::Connect, 421), ConnectorError::Unreachable { .. }));
        assert!(matches!(smtp(SmtpStage::Send, 451), ConnectorError::Throttled { .. }));
        assert!(matches!(smtp(SmtpStage::Send, 452), ConnectorError::Throttled { .. }));
        assert!(matches!(smtp(SmtpStage::Send, 550), ConnectorError::Rejected { .. }));
        assert!(matches!(smtp(SmtpStage::Connect, 554), ConnectorError::Unreachable { .. }));
        assert!(matches!(smtp(SmtpStage::StartTls, 554), ConnectorError::Tls { .. }));
    }

    #[test]
    fn a_421_with_a_policy_code_is_throttling_and_without_one_unreachable() {
        let reply = |text: &str| SmtpFailure::Reply { code: 421, text: text.into() };
        let server = "SMTP smtp.example.com:587 (STARTTLS)";
        let limited = "4.7.0 Maximum number of connections from user+IP exceeded (mail_max_userip_connections=1)";
        assert_eq!(classify_smtp(SmtpStage::SignIn, server, reply(limited)).code(), "THROTTLED");
        assert_eq!(classify_smtp(SmtpStage::Send, server, reply("4.7.28 Our system has detected an unusual rate")).code(), "THROTTLED");
        assert_eq!(classify_smtp(SmtpStage::Connect, server, reply("4.3.2 Service shutting down")).code(), "UNREACHABLE");
        assert_eq!(classify_smtp(SmtpStage::Connect, server, reply("Service not available")).code(), "UNREACHABLE");
        assert_eq!(enhanced_status("4.7.0 Try again later"), Some((4, 7, 0)));
        assert_eq!(enhanced_status("4.7 Try again later"), None);
        assert_eq!(enhanced_status("Try again later"), None);
    }

    #[test]
    fn smtp_transport_failures() {
        let c = |stage, f| classify_smtp(stage, "SMTP x:25 (None)", f);
        assert!(matches!(c(SmtpStage::Connect, SmtpFailure::Io(io::ErrorKind::ConnectionRefused)), ConnectorError::Unreachable { .. }));
        assert!(matches!(c(SmtpStage::Send, SmtpFailure::TimedOut), ConnectorError::Unreachable { .. }));
        assert!(matches!(c(SmtpStage::Connect, SmtpFailure::Tls("x".into())), ConnectorError::Tls { .. }));
        assert!(matches!(c(SmtpStage::StartTls, SmtpFailure::Client("STARTTLS is not supported".into())), ConnectorError::Tls { .. }));
        assert!(matches!(
            c(SmtpStage::SignIn, SmtpFailure::Client("No compatible mechanism".into())),
            ConnectorError::Authentication { .. }
        ));
        assert!(matches!(c(SmtpStage::Send, SmtpFailure::Malformed), ConnectorError::Protocol { .. }));
    }
}
