//! TLS for IMAP: one rustls client configuration (ring, webpki roots plus the operator's extra
//! roots) and the stream type that is either plain TCP or TLS over TCP.
//!
//! async-imap has no TLS of its own, so the connector wraps the socket itself: at once for
//! SSL/TLS, after the STARTTLS command for STARTTLS. SMTP (lettre) gets the same roots.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use concierge_connector_sdk::{ConnectorError, OutboundPolicy};

use concierge_connector_sdk::trust::{Fingerprint, PresentedCertificate, Trust};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

/// The trust settings every connection of one connector shares.
#[derive(Clone, Debug)]
pub(crate) struct TlsSetup {
    pub trust: Trust,
}

/// webpki's roots plus every certificate of `extra_pem`, each also accepted as itself (see
/// [`concierge_connector_sdk::trust`]). The crypto provider is ring, named explicitly so no
/// process-wide default is needed.
pub(crate) fn setup(extra_pem: Option<&[u8]>) -> Result<TlsSetup, String> {
    Ok(TlsSetup { trust: Trust::new(extra_pem)? })
}

/// Why a handshake failed: the I/O error, and the certificate refused when that was why.
pub(crate) struct HandshakeError {
    pub error: io::Error,
    pub refused: Option<PresentedCertificate>,
}

/// Runs the TLS handshake over `tcp`, checking the certificate against `host` (or one of the
/// account's `pins`).
pub(crate) async fn handshake(
    setup: &TlsSetup,
    pins: &[Fingerprint],
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|_| HandshakeError { error: io::Error::new(io::ErrorKind::InvalidInput, "not a valid TLS server name"), refused: None })?;
    let (config, refused) = setup.trust.for_connection(pins);
    TlsConnector::from(config).connect(name, tcp).await.map_err(|error| HandshakeError { error, refused: refused.take() })
}

/// The error for a certificate the handshake refused.
pub(crate) fn untrusted(server: &str, certificate: PresentedCertificate) -> ConnectorError {
    ConnectorError::UntrustedCertificate {
        message: format!(
            "{server}: the server's certificate is not trusted ({}); its SHA-256 fingerprint is {}",
            certificate.reason, certificate.sha256
        ),
        certificate: Box::new(certificate),
    }
}

/// How long a server may stay silent after the TCP connect, in a mode where it speaks first
/// (no encryption, STARTTLS), before the connector asks whether the port wants TLS instead.
pub(crate) const SILENCE_BEFORE_PROBE: Duration = Duration::from_millis(1500);

/// Whether `host:port` expects a TLS handshake first (an implicit-TLS port such as 993 or
/// 465): a second connection sends a ClientHello, and any TLS answer counts (a finished
/// handshake, a certificate the client does not trust, an alert). A server that answers with
/// something that is not TLS, or not at all within `budget`, is no TLS port.
pub(crate) async fn speaks_tls(setup: &TlsSetup, policy: &OutboundPolicy, host: &str, port: u16, budget: Duration) -> bool {
    let probe = async {
        let tcp = policy.connect(host, port, budget).await.ok()?;
        match handshake(setup, &[], host, tcp).await {
            Ok(_) => Some(true),
            Err(HandshakeError { refused: Some(_), .. }) => Some(true),
            Err(HandshakeError { error: e, .. }) => {
                let not_tls = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|r| matches!(r, rustls::Error::InvalidMessage(_)));
                let tls_answer = e.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
                Some(tls_answer && !not_tls)
            }
        }
    };
    tokio::time::timeout(budget, probe).await.ok().flatten().unwrap_or(false)
}

/// The error for a plain or STARTTLS connection made to a port that wants TLS at once.
pub(crate) fn implicit_tls_port(server: &str) -> ConnectorError {
    ConnectorError::Tls {
        message: format!(
            "{server}: this port expects SSL/TLS from the first byte (implicit TLS): choose SSL/TLS, or the port for the security type you chose"
        ),
    }
}

/// A connection to a mail server, encrypted or not.
pub(crate) enum MailStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for MailStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailStream::Plain(_) => "MailStream::Plain",
            MailStream::Tls(_) => "MailStream::Tls",
        })
    }
}

impl MailStream {
    pub(crate) fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            MailStream::Plain(s) => s.peer_addr(),
            MailStream::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }
}

impl AsyncRead for MailStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_extra_roots_are_reported_not_panicked_on() {
        assert!(setup(None).is_ok());
        assert!(setup(Some(b"not a certificate")).is_err());
    }
}
