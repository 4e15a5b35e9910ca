//! Sending through the account's SMTP server with lettre: implicit TLS, required STARTTLS or
//! plain (loopback / opt-in only), PLAIN/LOGIN for passwords and XOAUTH2 for tokens.
//!
//! The connection is driven step by step (connect, STARTTLS, AUTH, MAIL/RCPT/DATA) rather
//! than through lettre's transport, so each failure is classified with the step it happened
//! in: a 5xx to AUTH is a bad password, a 5xx to RCPT a refused message.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use concierge_connector_sdk::{ConnectorError, Credentials, FieldError, OutboundError, OutboundPolicy, Outgoing};
use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials as SmtpCredentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::time::timeout;

use crate::Context;
use crate::classify::{SmtpFailure, SmtpStage, classify_smtp};
use crate::connect::describe;
use crate::settings::{Endpoint, Security};
use crate::wire::tidy;

/// Sends `message` and returns the server's final reply (`250 2.0.0 Ok: queued as …`).
pub(crate) async fn send(
    ctx: &Context,
    outbound: &OutboundPolicy,
    endpoint: &Endpoint,
    login: &str,
    credentials: &Credentials,
    message: Outgoing<'_>,
) -> Result<String, ConnectorError> {
    let server = describe("SMTP", endpoint);
    let fail = |stage, e: &lettre::transport::smtp::Error| classify_smtp(stage, &server, SmtpFailure::from(e));
    let timed_out = |stage| classify_smtp(stage, &server, SmtpFailure::TimedOut);
    let options = &ctx.options;
    let envelope = envelope(&message)?;

    let tls_setup = ctx.tls.as_ref().map_err(|why| ConnectorError::Tls { message: why.clone() })?;
    let host = endpoint.host.trim_matches(['[', ']']);
    let mut tls = TlsParameters::builder(host.to_owned());
    for root in &tls_setup.extra_roots {
        let cert = Certificate::from_der(root.to_vec()).map_err(|e| fail(SmtpStage::Connect, &e))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| fail(SmtpStage::Connect, &e))?;

    // lettre connects only to the addresses just checked; TLS still verifies the host name.
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
    let implicit = (endpoint.security == Security::SslTls).then(|| tls.clone());
    // Greeting and EHLO are part of connecting, so they share its budget.
    let budget = options.connect_timeout.saturating_add(options.command_timeout);
    let mut conn = timeout(budget, AsyncSmtpConnection::connect_tokio1(&addrs[..], Some(options.connect_timeout), &hello, implicit, None))
        .await
        .map_err(|_| timed_out(SmtpStage::Connect))?
        .map_err(|e| fail(SmtpStage::Connect, &e))?;

    let result: Result<String, ConnectorError> = async {
        if endpoint.security == Security::StartTls {
            // Required, not opportunistic: a server that stops offering STARTTLS (or a
            // man in the middle stripping it) must not get the password in clear.
            if !conn.can_starttls() {
                return Err(classify_smtp(SmtpStage::StartTls, &server, SmtpFailure::Client("the server does not offer STARTTLS".into())));
            }
            timeout(budget, conn.starttls(tls, &hello))
                .await
                .map_err(|_| timed_out(SmtpStage::StartTls))?
                .map_err(|e| fail(SmtpStage::StartTls, &e))?;
        }

        match credentials {
            Credentials::Password { password, .. } => {
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

        // DATA takes as long as the upload: allow 1 s per 64 KiB beyond the usual budget.
        let upload = Duration::from_secs((message.raw.len() / (64 * 1024)) as u64);
        let response = timeout(options.command_timeout.saturating_add(upload), conn.send(&envelope, message.raw))
            .await
            .map_err(|_| timed_out(SmtpStage::Send))?
            .map_err(|e| fail(SmtpStage::Send, &e))?;
        let text: Vec<&str> = response.message().collect();
        Ok(tidy(&format!("{} {}", response.code(), text.join(" "))))
    }
    .await;

    // QUIT politely, whatever happened; a server that already hung up is fine too.
    let _ = timeout(Duration::from_secs(2), conn.quit()).await;
    result
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
        Outgoing { from, recipients: to, raw: b"" }
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
