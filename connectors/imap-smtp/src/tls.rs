//! TLS for IMAP: one rustls client configuration (ring, webpki roots plus the operator's extra
//! roots) and the stream type that is either plain TCP or TLS over TCP.
//!
//! async-imap has no TLS of its own, so the connector wraps the socket itself: at once for
//! SSL/TLS, after the STARTTLS command for STARTTLS. SMTP (lettre) gets the same roots.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// The trust settings every connection of one connector shares.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    pub config: Arc<ClientConfig>,
    /// The operator's extra roots, DER, for lettre's own configuration.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup").field("extra_roots", &self.extra_roots.len()).finish()
    }
}

/// Builds the client configuration: webpki's roots, plus every certificate of `extra_pem`.
/// The crypto provider is ring, named explicitly so no process-wide default is needed.
pub(crate) fn setup(extra_pem: Option<&[u8]>) -> Result<TlsSetup, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut extra_roots = Vec::new();
    if let Some(pem) = extra_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("the extra root certificates are not valid PEM: {e}"))?;
            roots.add(cert.clone()).map_err(|e| format!("an extra root certificate was refused: {e}"))?;
            extra_roots.push(cert);
        }
        if extra_roots.is_empty() {
            return Err("the extra root certificates hold no certificate".into());
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsSetup { config: Arc::new(config), extra_roots })
}

/// Runs the TLS handshake over `tcp`, checking the certificate against `host`.
pub(crate) async fn handshake(setup: &TlsSetup, host: &str, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a valid TLS server name"))?;
    TlsConnector::from(Arc::clone(&setup.config)).connect(name, tcp).await
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
        assert!(setup(Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).is_err());
    }
}
