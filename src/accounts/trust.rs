//! A refused server certificate, as mailboxes and calendar accounts show it to the user.

use concierge_connector_sdk::trust::{PIN_SETTING, PresentedCertificate};

use crate::error::CertificateShown;

/// What the user is shown of a certificate their server presented and nobody trusts; they
/// pin it by setting the account's `tlsCertificateSha256` to its `sha256`.
pub fn shown(certificate: &PresentedCertificate) -> Box<CertificateShown> {
    Box::new(CertificateShown {
        sha256: certificate.sha256.to_string(),
        subject: certificate.subject.clone(),
        issuer: certificate.issuer.clone(),
        reason: certificate.reason.clone(),
        pin_setting: PIN_SETTING,
    })
}
