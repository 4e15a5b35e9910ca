//! Which server certificates a connector accepts, the way mail clients decide it.
//!
//! - A certificate that chains to the webpki roots, or to a certificate the operator trusts
//!   (`CONCIERGE_MAIL_CA_FILE`), is accepted for its host name.
//! - A certificate the operator trusts is also accepted *as itself*: a self-signed server
//!   certificate made the common way (`openssl req -x509`, which marks it `CA:TRUE`) is one
//!   webpki refuses as a server's own (`CaUsedAsEndEntity`), yet it is exactly the one the
//!   operator put in the file.
//! - A user may pin the SHA-256 fingerprint of one account's certificate, after seeing it in
//!   the error a refused certificate gives ([`PresentedCertificate`]): a certificate with that
//!   fingerprint is accepted for that account, whoever issued it and whatever name it bears,
//!   as Thunderbird's certificate exception does.
//!
//! Handshake signatures are always checked (with the certificate's key), so a pin or an exact
//! match proves the server holds the key.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::{Field, FieldError, FieldKind, Settings};

/// A certificate's SHA-256 fingerprint (over its DER), written `AB:CD:…` (32 pairs).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = &'static str;

    /// 64 hexadecimal digits, in either case, with or without `:` (or spaces) between pairs.
    fn from_str(s: &str) -> Result<Fingerprint, Self::Err> {
        let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
        if digits.len() != 64 {
            return Err("must be a SHA-256 fingerprint: 64 hexadecimal digits");
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| "must be hexadecimal")?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| "must be hexadecimal")?;
        }
        Ok(Fingerprint(out))
    }
}

/// The settings key of an account's pinned certificates, in every connector that has one.
pub const PIN_SETTING: &str = "tlsCertificateSha256";

/// The fingerprints in an account's [`PIN_SETTING`]: one, or a few separated by commas (an
/// account's servers may present different certificates). At most four.
pub fn pins(settings: &Settings) -> Result<Vec<Fingerprint>, FieldError> {
    let Some(list) = settings.get(PIN_SETTING).and_then(|v| v.as_str()) else { return Ok(Vec::new()) };
    let pins = list
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<Fingerprint>().map_err(|why| FieldError::new(PIN_SETTING, why)))
        .collect::<Result<Vec<_>, _>>()?;
    if pins.len() > 4 {
        return Err(FieldError::new(PIN_SETTING, "at most 4 fingerprints"));
    }
    Ok(pins)
}

/// The form field that pins certificates, for connectors whose users may reach servers with
/// certificates nobody vouches for.
pub fn pin_field() -> Field {
    Field::new(PIN_SETTING, "Trusted certificate (SHA-256)", FieldKind::Text).help(
        "Only for a server whose certificate is not trusted: the fingerprint the refusal showed, once the server's operator \
         has confirmed it",
    )
}

/// The certificate a server presented and the client refused: what the user is shown, so
/// they can compare it with what their server's operator says and pin it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCertificate {
    pub sha256: Fingerprint,
    /// The subject's distinguished name as OpenSSL prints it (`CN=mail.example.org`).
    pub subject: String,
    /// The issuer's, the same way (equal to `subject` for a self-signed certificate).
    pub issuer: String,
    /// Why it was refused (unknown issuer, another host's name, expired, …).
    pub reason: String,
}

impl PresentedCertificate {
    fn new(der: &[u8], reason: String) -> PresentedCertificate {
        let (subject, issuer) = match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => (cert.subject().to_string(), cert.issuer().to_string()),
            Err(_) => (String::new(), String::new()),
        };
        PresentedCertificate { sha256: Fingerprint::of(der), subject, issuer, reason }
    }
}

/// The trust every connection of one connector shares: webpki's roots, the operator's extra
/// certificates, and the crypto provider (ring).
#[derive(Clone)]
pub struct Trust {
    provider: Arc<CryptoProvider>,
    webpki: Arc<WebPkiServerVerifier>,
    /// The operator's extra certificates, DER: roots, and accepted as themselves too.
    extra: Arc<Vec<CertificateDer<'static>>>,
    /// The configuration of connections without pins, built once.
    shared: Arc<ClientConfig>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust").field("extra", &self.extra.len()).finish()
    }
}

impl Trust {
    /// webpki's roots plus every certificate of `extra_pem` (a PEM bundle).
    pub fn new(extra_pem: Option<&[u8]>) -> Result<Trust, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut extra = Vec::new();
        if let Some(pem) = extra_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("the extra root certificates are not valid PEM: {e}"))?;
                roots.add(cert.clone()).map_err(|e| format!("an extra root certificate was refused: {e}"))?;
                extra.push(cert);
            }
            if extra.is_empty() {
                return Err("the extra root certificates hold no certificate".into());
            }
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let extra = Arc::new(extra);
        let shared = client_config(&provider, Verifier::new(&webpki, &extra, &[]))?;
        Ok(Trust { provider, webpki, extra, shared })
    }

    /// The operator's extra certificates, DER.
    pub fn extra_certificates(&self) -> &[CertificateDer<'static>] {
        &self.extra
    }

    /// A client configuration for one connection that accepts, besides what the trust
    /// accepts, certificates with one of `pins`; and the slot that holds the certificate
    /// refused, if the handshake fails on it.
    pub fn for_connection(&self, pins: &[Fingerprint]) -> (Arc<ClientConfig>, Refused) {
        let verifier = Verifier::new(&self.webpki, &self.extra, pins);
        let refused = Refused(Arc::clone(&verifier.refused));
        // Building a config is cheap (the roots are shared); it fails only when the provider
        // cannot do the default protocol versions, which `new` already proved it can.
        let config = client_config(&self.provider, verifier).unwrap_or_else(|_| Arc::clone(&self.shared));
        (config, refused)
    }
}

/// A client configuration that checks servers with `verifier`.
fn client_config(provider: &Arc<CryptoProvider>, verifier: Verifier) -> Result<Arc<ClientConfig>, String> {
    let config = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificate a connection refused, read after its handshake failed.
#[derive(Clone, Debug, Default)]
pub struct Refused(Arc<Mutex<Option<PresentedCertificate>>>);

impl Refused {
    pub fn take(&self) -> Option<PresentedCertificate> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    extra: Arc<Vec<CertificateDer<'static>>>,
    pins: Vec<Fingerprint>,
    refused: Arc<Mutex<Option<PresentedCertificate>>>,
}

impl Verifier {
    fn new(webpki: &Arc<WebPkiServerVerifier>, extra: &Arc<Vec<CertificateDer<'static>>>, pins: &[Fingerprint]) -> Verifier {
        Verifier { webpki: Arc::clone(webpki), extra: Arc::clone(extra), pins: pins.to_vec(), refused: Arc::default() }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(refusal) => {
                let der = end_entity.as_ref();
                let exact = self.extra.iter().any(|c| c.as_ref() == der);
                if exact || self.pins.contains(&Fingerprint::of(der)) {
                    return Ok(ServerCertVerified::assertion());
                }
                if let Ok(mut slot) = self.refused.lock() {
                    *slot = Some(PresentedCertificate::new(der, describe(&refusal)));
                }
                Err(refusal)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Why a certificate was refused, in words.
pub fn describe(e: &TlsError) -> String {
    use rustls::CertificateError;
    match e {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => "its issuer is not trusted".into(),
        TlsError::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }) => {
            "it is for another host name".into()
        }
        TlsError::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => "it has expired".into(),
        TlsError::InvalidCertificate(CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }) => {
            "it is not valid yet".into()
        }
        TlsError::InvalidCertificate(CertificateError::Revoked) => "it was revoked".into(),
        TlsError::InvalidCertificate(other) => format!("{other:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_as_people_copy_them() {
        let f = Fingerprint::of(b"certificate");
        let shown = f.to_string();
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert_eq!(shown.parse::<Fingerprint>(), Ok(f));
        assert_eq!(shown.replace(':', "").to_lowercase().parse::<Fingerprint>(), Ok(f));
        assert_eq!(shown.replace(':', " ").parse::<Fingerprint>(), Ok(f));
        assert!("AB:CD".parse::<Fingerprint>().is_err());
        assert!("ZZ".repeat(32).parse::<Fingerprint>().is_err());
        assert!("é".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn bad_extra_roots_are_reported_not_panicked_on() {
        assert!(Trust::new(None).is_ok());
        assert!(Trust::new(Some(b"not a certificate")).is_err());
        assert!(Trust::new(Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).is_err());
    }
}
