//! Sending through the account's SMTP server with lettre: implicit TLS, required STARTTLS or
//! plain (loopback / opt-in only), PLAIN/LOGIN for passwords and XOAUTH2 for tokens.
//!
//! The connection is driven step by step (connect, STARTTLS, AUTH, MAIL/RCPT/DATA) rather
//! than through lettre's transport, so each failure is classified with the step it happened
//! in: a 5xx to AUTH is a bad password, a 5xx to RCPT a refused message.

use std::fmt;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use base64::Engine as _;
use concierge_connector_sdk::trust::Fingerprint;
use concierge_connector_sdk::{ConnectorError, Credentials, FieldError, OutboundError, OutboundPolicy, Outgoing};
use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials as SmtpCredentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::Context;
use crate::classify::{SmtpFailure, SmtpStage, classify_smtp};
use crate::connect::describe;
use crate::settings::{Endpoint, Security};
use crate::tls::{MailStream, SILENCE_BEFORE_PROBE, TlsSetup, handshake, implicit_tls_port, speaks_tls, untrusted};
use crate::wire::tidy;

/// Sends `message` and returns the server's final reply (`250 2.0.0 Ok: queued as …`).
pub(crate) async fn send(
    ctx: &Context,
    outbound: &OutboundPolicy,
    target: Server<'_>,
    login: &str,
    credentials: &Credentials,
    message: Outgoing<'_>,
) -> Result<String, ConnectorError> {
    let envelope = envelope(&message)?;
    let mut conn = signed_in(ctx, outbound, target, login, credentials).await?;
    let server = describe("SMTP", target.endpoint);
    // DATA takes as long as the upload: allow 1 s per 64 KiB beyond the usual budget.
    let upload = Duration::from_secs((message.raw.len() / (64 * 1024)) as u64);
    let result = match timeout(ctx.options.command_timeout.saturating_add(upload), conn.send(&envelope, message.raw)).await {
        Err(_) => Err(classify_smtp(SmtpStage::Send, &server, SmtpFailure::TimedOut)),
        Ok(Err(e)) => Err(classify_smtp(SmtpStage::Send, &server, SmtpFailure::from(&e))),
        Ok(Ok(response)) => {
            let text: Vec<&str> = response.message().collect();
            Ok(tidy(&format!("{} {}", response.code(), text.join(" "))))
        }
    };
    quit(conn).await;
    result
}

/// Connects, secures and signs in, sends nothing, and says goodbye: how a mailbox's
/// sending side is checked when it is connected.
pub(crate) async fn check(
    ctx: &Context,
    outbound: &OutboundPolicy,
    target: Server<'_>,
    login: &str,
    credentials: &Credentials,
) -> Result<(), ConnectorError> {
    let conn = signed_in(ctx, outbound, target, login, credentials).await?;
    quit(conn).await;
    Ok(())
}

/// QUIT politely, whatever happened; a server that already hung up is fine too.
async fn quit(mut conn: AsyncSmtpConnection) {
    let _ = timeout(Duration::from_secs(2), conn.quit()).await;
}

/// The sending server of an account, and the certificates its user pinned.
#[derive(Clone, Copy)]
pub(crate) struct Server<'a> {
    pub endpoint: &'a Endpoint,
    pub pins: &'a [Fingerprint],
}

/// A connection past AUTH: connected (implicit TLS, or required STARTTLS) and signed in.
///
/// TLS is the connector's own (its trust, the account's pins), not lettre's: the connector
/// connects, does STARTTLS by hand when asked for, and hands lettre the secured stream.
async fn signed_in(
    ctx: &Context,
    outbound: &OutboundPolicy,
    target: Server<'_>,
    login: &str,
    credentials: &Credentials,
) -> Result<AsyncSmtpConnection, ConnectorError> {
    let endpoint = target.endpoint;
    let server = describe("SMTP", endpoint);
    let timed_out = |stage| classify_smtp(stage, &server, SmtpFailure::TimedOut);
    let options = &ctx.options;
    let tls_setup = ctx.tls.as_ref().map_err(|why| ConnectorError::Tls { message: why.clone() })?;
    let host = endpoint.host.trim_matches(['[', ']']);

    // Only the addresses the policy allows are connected to; TLS still verifies the name.
    let addrs = match outbound.resolve(host, endpoint.port).await {
        Ok(addrs) => addrs,
        Err(OutboundError::Refused(refusal)) => {
            return Err(ConnectorError::Settings(FieldError::new("smtpHost", refusal.to_string())));
        }
        Err(other) => {
            return Err(ConnectorError::Unreachable { message: format!("{server}: {other}") });
        }
    };
    let hello = ClientId::default();
    // Greeting and EHLO are part of connecting, so they share its budget.
    let budget = options.connect_timeout.saturating_add(options.command_timeout);
    let establishing = timeout(budget, establish(tls_setup, target, &addrs, &server, &hello, options.connect_timeout));
    tokio::pin!(establishing);
    let established = if endpoint.security == Security::SslTls {
        establishing.await
    } else {
        // The server speaks first here; a silent one may be an implicit-TLS port (465)
        // waiting for a handshake: ask, rather than wait out the whole budget.
        let tls_port = async {
            tokio::time::sleep(SILENCE_BEFORE_PROBE).await;
            speaks_tls(tls_setup, outbound, host, endpoint.port, Duration::from_secs(2)).await
        };
        tokio::pin!(tls_port);
        tokio::select! {
            established = &mut establishing => established,
            tls = &mut tls_port => {
                if tls {
                    return Err(implicit_tls_port(&server));
                }
                establishing.await
            }
        }
    };
    let mut conn = established.map_err(|_| timed_out(SmtpStage::Connect))??;
    let fail = |stage, e: &lettre::transport::smtp::Error| classify_smtp(stage, &server, SmtpFailure::from(e));

    let result: Result<(), ConnectorError> = async {
        match credentials {
            Credentials::Password { password, .. } => {
                // A relay port that lets mail in without signing in (port 25, an internal
                // relay) offers no AUTH: a password could never be used there.
                if conn.server_info().get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login]).is_none() {
                    return Err(ConnectorError::Settings(FieldError::new(
                        "smtpPort",
                        "the server offers no password sign-in (AUTH PLAIN or LOGIN) on this port: use its submission port \
                         (587 with STARTTLS, or 465 with SSL/TLS)",
                    )));
                }
                let creds = SmtpCredentials::new(login.to_owned(), password.expose().to_owned());
                timeout(options.command_timeout, conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds))
                    .await
                    .map_err(|_| timed_out(SmtpStage::SignIn))?
                    .map_err(|e| fail(SmtpStage::SignIn, &e))?;
            }
            Credentials::OAuth2 { tokens, .. } => {
                let token = tokens.access_token().await?;
                let first = timeout(options.command_timeout, xoauth2(&mut conn, login, token.expose()))
                    .await
                    .map_err(|_| timed_out(SmtpStage::SignIn))?;
                if let Err(e) = first {
                    let error = fail(SmtpStage::SignIn, &e);
                    if !matches!(error, ConnectorError::Authentication { .. }) {
                        return Err(error);
                    }
                    // One fresh token, as for IMAP.
                    let token = tokens.refresh().await?;
                    timeout(options.command_timeout, xoauth2(&mut conn, login, token.expose()))
                        .await
                        .map_err(|_| timed_out(SmtpStage::SignIn))?
                        .map_err(|e| fail(SmtpStage::SignIn, &e))?;
                }
            }
        }

        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(conn),
        Err(e) => {
            quit(conn).await;
            Err(e)
        }
    }
}

/// TCP to the first checked address that answers, TLS as the settings say (STARTTLS driven
/// by hand), and lettre's own greeting and EHLO over the result.
async fn establish(
    tls_setup: &TlsSetup,
    target: Server<'_>,
    addrs: &[SocketAddr],
    server: &str,
    hello: &ClientId,
    connect_timeout: Duration,
) -> Result<AsyncSmtpConnection, ConnectorError> {
    let endpoint = target.endpoint;
    let fail = |stage, failure| classify_smtp(stage, server, failure);
    let tcp = timeout(connect_timeout, first_answering(addrs))
        .await
        .map_err(|_| fail(SmtpStage::Connect, SmtpFailure::TimedOut))?
        .map_err(|e| fail(SmtpStage::Connect, SmtpFailure::Io(e.kind())))?;
    let _ = tcp.set_nodelay(true);
    let secure = |tcp| async move {
        handshake(tls_setup, target.pins, &endpoint.host, tcp).await.map_err(|e| match e.refused {
            Some(certificate) => untrusted(server, certificate),
            // A reset mid-handshake is the server going away (a restart), not TLS.
            None if matches!(e.error.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe) => {
                classify_smtp(SmtpStage::Connect, server, SmtpFailure::Io(e.error.kind()))
            }
            None => classify_smtp(SmtpStage::StartTls, server, tls_failure(&e.error)),
        })
    };
    let stream = match endpoint.security {
        Security::None => Transport::new(MailStream::Plain(tcp)),
        Security::SslTls => Transport::new(MailStream::Tls(Box::new(secure(tcp).await?))),
        Security::StartTls => {
            let (tcp, greeting) = starttls(tcp, hello).await.map_err(|(stage, failure)| fail(stage, failure))?;
            // lettre reads a greeting before its EHLO; after STARTTLS the server sends none,
            // so it is given the one the server sent before the upgrade.
            Transport::replaying(greeting, MailStream::Tls(Box::new(secure(tcp).await?)))
        }
    };
    AsyncSmtpConnection::connect_with_transport(Box::new(stream), hello)
        .await
        .map_err(|e| classify_smtp(SmtpStage::Connect, server, SmtpFailure::from(&e)))
}

async fn first_answering(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
}

/// What broke a handshake that refused no certificate: a plain answer to a ClientHello, or
/// the connection going away.
fn tls_failure(e: &std::io::Error) -> SmtpFailure {
    match crate::classify::rustls_cause(e) {
        Some(why) => SmtpFailure::Tls(why),
        None => SmtpFailure::Io(e.kind()),
    }
}

/// The plain part of STARTTLS (RFC 3207), by hand: the greeting, EHLO, `STARTTLS`, `220`.
/// Returns the bare connection, ready for the handshake, and the greeting's lines. Anything
/// the server sends after its `220` is refused: it would be read as if it came over TLS.
async fn starttls(tcp: TcpStream, hello: &ClientId) -> Result<(TcpStream, Vec<u8>), (SmtpStage, SmtpFailure)> {
    let mut conn = BufReader::new(tcp);
    let (code, greeting) = reply(&mut conn).await.map_err(|f| (SmtpStage::Connect, f))?;
    if code != 220 {
        return Err((SmtpStage::Connect, SmtpFailure::Reply { code, text: String::from_utf8_lossy(&greeting).into_owned() }));
    }
    conn.get_mut().write_all(format!("EHLO {hello}\r\n").as_bytes()).await.map_err(|e| (SmtpStage::Connect, SmtpFailure::Io(e.kind())))?;
    let (code, ehlo) = reply(&mut conn).await.map_err(|f| (SmtpStage::Connect, f))?;
    if code != 250 {
        return Err((SmtpStage::Connect, SmtpFailure::Reply { code, text: String::from_utf8_lossy(&ehlo).into_owned() }));
    }
    // Required, not opportunistic: a server that stops offering STARTTLS (or a man in the
    // middle stripping it) must not get the password in clear.
    let offered = String::from_utf8_lossy(&ehlo).lines().any(|l| l.get(4..).is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS")));
    if !offered {
        return Err((SmtpStage::StartTls, SmtpFailure::Client("the server does not offer STARTTLS".into())));
    }
    conn.get_mut().write_all(b"STARTTLS\r\n").await.map_err(|e| (SmtpStage::StartTls, SmtpFailure::Io(e.kind())))?;
    let (code, text) = reply(&mut conn).await.map_err(|f| (SmtpStage::StartTls, f))?;
    if code != 220 {
        return Err((SmtpStage::StartTls, SmtpFailure::Reply { code, text: String::from_utf8_lossy(&text).into_owned() }));
    }
    if !conn.buffer().is_empty() {
        return Err((SmtpStage::StartTls, SmtpFailure::Client("the server sent data after agreeing to STARTTLS".into())));
    }
    Ok((conn.into_inner(), greeting))
}

/// One SMTP reply, all its lines (`250-…` up to `250 …`): the code and the raw lines. At
/// most 100 lines of 1,000 bytes.
async fn reply(conn: &mut BufReader<TcpStream>) -> Result<(u16, Vec<u8>), SmtpFailure> {
    let mut all = Vec::new();
    for _ in 0..100 {
        let mut line = Vec::new();
        let n = (&mut *conn).take(1000).read_until(b'\n', &mut line).await.map_err(|e| SmtpFailure::Io(e.kind()))?;
        if n == 0 {
            return Err(SmtpFailure::Io(std::io::ErrorKind::UnexpectedEof));
        }
        let code = std::str::from_utf8(line.get(..3).unwrap_or_default()).ok().and_then(|c| c.parse::<u16>().ok());
        let Some(code) = code else { return Err(SmtpFailure::Malformed) };
        let last = line.get(3) != Some(&b'-');
        all.extend_from_slice(&line);
        if last {
            return Ok((code, all));
        }
    }
    Err(SmtpFailure::Malformed)
}

/// The stream lettre talks over: the connector's (plain or TLS), after any bytes it must
/// read first.
#[derive(Debug)]
struct Transport {
    first: std::io::Cursor<Vec<u8>>,
    stream: MailStream,
}

impl Transport {
    fn new(stream: MailStream) -> Transport {
        Transport::replaying(Vec::new(), stream)
    }

    fn replaying(first: Vec<u8>, stream: MailStream) -> Transport {
        Transport { first: std::io::Cursor::new(first), stream }
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let pending = &this.first.get_ref()[this.first.position() as usize..];
        if !pending.is_empty() {
            let n = pending.len().min(buf.remaining());
            buf.put_slice(&pending[..n]);
            this.first.set_position(this.first.position() + n as u64);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Transport {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.stream.peer_addr()
    }
}

/// The SMTP envelope. An empty sender is the null reverse-path (`MAIL FROM:<>`).
fn envelope(message: &Outgoing<'_>) -> Result<Envelope, ConnectorError> {
    let bad = |what: String| ConnectorError::Protocol { message: what };
    let from = match message.from.trim() {
        "" => None,
        from => Some(from.parse::<Address>().map_err(|_| bad(format!("the envelope sender {:?} is not a valid address", tidy(from))))?),
    };
    let to = message
        .recipients
        .iter()
        .map(|r| r.trim().parse::<Address>().map_err(|_| bad(format!("the envelope recipient {:?} is not a valid address", tidy(r)))))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(from, to).map_err(|_| bad("a message needs at least one recipient".into()))
}

/// `AUTH XOAUTH2 <base64>` by hand: lettre's own XOAUTH2 cannot answer the error challenge
/// a refused token gets (`334 <base64 JSON>`), which needs an empty line before the 535.
async fn xoauth2(conn: &mut AsyncSmtpConnection, login: &str, token: &str) -> Result<(), lettre::transport::smtp::Error> {
    let payload = base64::engine::general_purpose::STANDARD.encode(crate::connect::xoauth2_payload(login, token));
    let response = conn.command(Line(format!("AUTH XOAUTH2 {payload}"))).await?;
    if response.has_code(334) {
        conn.command(Line(String::new())).await?;
    }
    Ok(())
}

/// One raw command line. Its Display is what goes on the wire; it is never logged (lettre's
/// tracing feature is off).
struct Line(String);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing<'a>(from: &'a str, to: &'a [String]) -> Outgoing<'a> {
        Outgoing { from, recipients: to, raw: b"", sent_copy: None }
    }

    #[test]
    fn envelopes_need_valid_addresses_and_a_recipient() {
        let to = vec!["bob@example.com".to_owned(), " carol@example.org ".to_owned()];
        let e = envelope(&outgoing("alice@example.com", &to)).unwrap();
        assert_eq!(e.to().len(), 2);
        assert!(envelope(&outgoing("", &to)).unwrap().from().is_none());
        assert!(matches!(envelope(&outgoing("not an address", &to)), Err(ConnectorError::Protocol { .. })));
        assert!(matches!(envelope(&outgoing("alice@example.com", &[])), Err(ConnectorError::Protocol { .. })));
        assert!(matches!(envelope(&outgoing("alice@example.com", &["x".to_owned()])), Err(ConnectorError::Protocol { .. })));
    }
}
