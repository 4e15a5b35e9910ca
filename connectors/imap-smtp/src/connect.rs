//! Reaching an IMAP server: TCP, then implicit TLS, STARTTLS by hand or nothing, the
//! greeting, and signing in (LOGIN, AUTHENTICATE PLAIN or XOAUTH2 with one token refresh).

use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use async_imap::{Authenticator, Client};
use concierge_connector_sdk::trust::Fingerprint;
use concierge_connector_sdk::{ConnectorError, Credentials, FieldError, OutboundError, OutboundPolicy};
use tokio::io::{AsyncRead, AsyncWrite, BufStream};
use tokio::time::timeout;

use crate::Context;
use crate::classify::{ImapFailure, ImapStage, classify_imap};
use crate::settings::{Endpoint, Security};
use crate::tls::{HandshakeError, MailStream, SILENCE_BEFORE_PROBE, handshake, implicit_tls_port, speaks_tls, untrusted};
use crate::wire::code_name;

/// A signed-in IMAP session over the connector's stream.
pub(crate) type Imap = async_imap::Session<BufStream<MailStream>>;

/// Everything needed to (re)connect one account.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub endpoint: Endpoint,
    pub folder: String,
    /// The Sent folder the user named, if any (else it is looked up).
    pub sent_folder: Option<String>,
    pub login: String,
    pub credentials: Credentials,
    /// Which addresses the IMAP host may resolve to.
    pub outbound: OutboundPolicy,
    /// Certificates the user trusts for this account, whoever issued them.
    pub pins: Vec<Fingerprint>,
}

impl Target {
    /// `IMAP host:port (SSL/TLS)`, for error messages.
    pub fn server(&self) -> String {
        describe("IMAP", &self.endpoint)
    }
}

pub(crate) fn describe(protocol: &str, e: &Endpoint) -> String {
    let security = match e.security {
        Security::SslTls => "SSL/TLS",
        Security::StartTls => "STARTTLS",
        Security::None => "no encryption",
    };
    format!("{protocol} {}:{} ({security})", e.host, e.port)
}

/// Connects (TCP, then TLS as the settings say), reads the greeting and signs in.
pub(crate) async fn sign_in_to(ctx: &Context, target: &Target) -> Result<Imap, ConnectorError> {
    let server = target.server();
    let fail = |stage, failure| classify_imap(stage, &server, failure);
    let options = &ctx.options;
    let tls = ctx.tls.as_ref().map_err(|why| ConnectorError::Tls { message: why.clone() })?;
    let endpoint = &target.endpoint;

    // Resolved and checked on every connect (no DNS rebinding between the check at save and
    // a later sync); a refused address gets no connection attempt.
    let tcp = target.outbound.connect(&endpoint.host, endpoint.port, options.connect_timeout).await.map_err(|e| match e {
        OutboundError::Refused(refusal) => ConnectorError::Settings(FieldError::new("imapHost", refusal.to_string())),
        OutboundError::TimedOut => fail(ImapStage::Connect, ImapFailure::TimedOut),
        OutboundError::Connect(e) => fail(ImapStage::Connect, ImapFailure::Io(e)),
        unresolved @ OutboundError::Unresolved { .. } => {
            fail(ImapStage::Connect, ImapFailure::Io(std::io::Error::other(unresolved.to_string())))
        }
    })?;
    // Commands are small and answered at once: don't let Nagle hold them back.
    let _ = tcp.set_nodelay(true);

    let stream = match endpoint.security {
        Security::None => MailStream::Plain(tcp),
        Security::SslTls => {
            let tls_stream = timeout(options.connect_timeout, handshake(tls, &target.pins, &endpoint.host, tcp))
                .await
                .map_err(|_| fail(ImapStage::TlsHandshake, ImapFailure::TimedOut))?
                .map_err(|e| handshake_failed(&server, e))?;
            MailStream::Tls(Box::new(tls_stream))
        }
        Security::StartTls => {
            // STARTTLS by hand: async-imap has no TLS. Whatever the server sent before the
            // handshake is dropped with the plain client, as RFC 3501 requires.
            let mut plain = Client::new(tcp);
            plain_greeting(&mut plain, ctx, target).await?;
            timeout(options.command_timeout, plain.run_command_and_check_ok("STARTTLS", None))
                .await
                .map_err(|_| fail(ImapStage::StartTls, ImapFailure::TimedOut))?
                .map_err(|e| fail(ImapStage::StartTls, e.into()))?;
            let tls_stream = timeout(options.connect_timeout, handshake(tls, &target.pins, &endpoint.host, plain.into_inner()))
                .await
                .map_err(|_| fail(ImapStage::TlsHandshake, ImapFailure::TimedOut))?
                .map_err(|e| handshake_failed(&server, e))?;
            MailStream::Tls(Box::new(tls_stream))
        }
    };

    // Reads in 64 KiB gulps (a sync is mostly one long FETCH stream, and the IMAP parser
    // asks for a few KiB at a time); writes are coalesced so a command leaves in one packet.
    let mut client = Client::new(BufStream::with_capacity(64 * 1024, 8 * 1024, stream));
    match endpoint.security {
        Security::SslTls => greeting(&mut client, options.connect_timeout).await.map_err(|f| fail(ImapStage::Greeting, f))?,
        Security::None => plain_greeting(&mut client, ctx, target).await?,
        // After STARTTLS there is no second greeting.
        Security::StartTls => {}
    }
    sign_in(client, target, options.command_timeout, &server).await
}

/// The greeting over a connection that is not (yet) encrypted. A server that stays silent
/// for a moment may be an implicit-TLS port waiting for a handshake: a probe asks, and if so
/// the answer is TLS_FAILED at once instead of a timeout much later.
async fn plain_greeting<T>(client: &mut Client<T>, ctx: &Context, target: &Target) -> Result<(), ConnectorError>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let server = target.server();
    let endpoint = &target.endpoint;
    let greeted = greeting(client, ctx.options.connect_timeout);
    tokio::pin!(greeted);
    let tls_port = async {
        tokio::time::sleep(SILENCE_BEFORE_PROBE).await;
        match ctx.tls.as_ref() {
            Ok(setup) => speaks_tls(setup, &target.outbound, &endpoint.host, endpoint.port, Duration::from_secs(2)).await,
            Err(_) => false,
        }
    };
    tokio::pin!(tls_port);
    let outcome = tokio::select! {
        outcome = &mut greeted => outcome,
        tls = &mut tls_port => {
            if tls {
                return Err(implicit_tls_port(&server));
            }
            greeted.await
        }
    };
    outcome.map_err(|f| classify_imap(ImapStage::Greeting, &server, f))
}

/// A refused certificate, or else whatever else broke the handshake.
fn handshake_failed(server: &str, e: HandshakeError) -> ConnectorError {
    match e.refused {
        Some(certificate) => untrusted(server, certificate),
        None => classify_imap(ImapStage::TlsHandshake, server, ImapFailure::Io(e.error)),
    }
}

/// Reads the server's first line: OK to go on; BYE is a refusal.
async fn greeting<T>(client: &mut Client<T>, limit: Duration) -> Result<(), ImapFailure>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let response = timeout(limit, client.read_response()).await.map_err(|_| ImapFailure::TimedOut)??.ok_or(ImapFailure::Closed)?;
    match response.parsed() {
        Response::Data { status: Status::Ok, .. } => Ok(()),
        Response::Data { status: Status::Bye, outcome } => {
            Err(ImapFailure::bye(code_name(outcome.code.as_ref()), outcome.information.as_deref().unwrap_or("")))
        }
        Response::Data { status: Status::PreAuth, .. } => {
            Err(ImapFailure::Unexpected("the server signed in by itself (PREAUTH), which is not supported"))
        }
        _ => Err(ImapFailure::Unexpected("the server did not greet like an IMAP server")),
    }
}

/// LOGIN (or AUTHENTICATE PLAIN when LOGIN cannot carry the password) for passwords;
/// XOAUTH2 for tokens, refreshing the token once when the server refuses it.
async fn sign_in(client: Client<BufStream<MailStream>>, target: &Target, limit: Duration, server: &str) -> Result<Imap, ConnectorError> {
    let fail = |failure: ImapFailure| classify_imap(ImapStage::SignIn, server, failure);
    let login = target.login.as_str();
    match &target.credentials {
        Credentials::Password { password, .. } => {
            let password = password.expose();
            let result = if login_can_carry(login) && login_can_carry(password) {
                timeout(limit, client.login(login, password)).await
            } else {
                timeout(limit, client.authenticate("PLAIN", Plain { login, password })).await
            };
            result.map_err(|_| fail(ImapFailure::TimedOut))?.map_err(|(e, _)| fail(e.into()))
        }
        Credentials::OAuth2 { tokens, .. } => {
            let token = tokens.access_token().await?;
            let first = timeout(limit, client.authenticate("XOAUTH2", XOAuth2::new(login, token.expose())))
                .await
                .map_err(|_| fail(ImapFailure::TimedOut))?;
            match first {
                Ok(session) => Ok(session),
                Err((e, client)) => {
                    let error = fail(e.into());
                    if !matches!(error, ConnectorError::Authentication { .. }) {
                        return Err(error);
                    }
                    // The token may have been revoked or expired early: one fresh one.
                    let token = tokens.refresh().await?;
                    timeout(limit, client.authenticate("XOAUTH2", XOAuth2::new(login, token.expose())))
                        .await
                        .map_err(|_| fail(ImapFailure::TimedOut))?
                        .map_err(|(e, _)| fail(e.into()))
                }
            }
        }
    }
}

/// LOGIN sends quoted strings: printable ASCII only, no quotes games beyond escaping.
fn login_can_carry(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// SASL PLAIN: `\0user\0password`.
struct Plain<'a> {
    login: &'a str,
    password: &'a str,
}

impl Authenticator for Plain<'_> {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.login, self.password).into_bytes()
    }
}

/// SASL XOAUTH2: `user=…\x01auth=Bearer …\x01\x01`. A refused token gets an error challenge
/// (JSON) that must be answered with an empty line before the server sends its NO.
pub(crate) struct XOAuth2 {
    first: Option<String>,
}

impl XOAuth2 {
    pub(crate) fn new(login: &str, token: &str) -> XOAuth2 {
        XOAuth2 { first: Some(xoauth2_payload(login, token)) }
    }
}

pub(crate) fn xoauth2_payload(login: &str, token: &str) -> String {
    format!("user={login}\x01auth=Bearer {token}\x01\x01")
}

impl Authenticator for XOAuth2 {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.first.take().map(String::into_bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_answers_once_then_acknowledges_the_error_challenge() {
        let mut auth = XOAuth2::new("alice@example.com", "tok");
        assert_eq!(auth.process(b""), b"user=alice@example.com\x01auth=Bearer tok\x01\x01");
        assert_eq!(auth.process(br#"{"status":"401"}"#), b"");
    }

    #[test]
    fn login_falls_back_for_unsendable_passwords() {
        assert!(login_can_carry("pa ss\"word\\"));
        assert!(!login_can_carry("pässword"));
        assert!(!login_can_carry("line\nbreak"));
    }
}
