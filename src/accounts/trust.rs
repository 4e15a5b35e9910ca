//! A refused server certificate, as mailboxes and calendar accounts show it to the user.

use concierge_connector_sdk::trust::PresentedCertificate;

use crate::error::CertificateShown;

/// What the user is shown of a certificate their server presented and nobody trusts; they
/// pin it by setting `pin_setting` to its `sha256`.
pub fn shown(certificate: &PresentedCertificate, pin_setting: &'static str) -> Box<CertificateShown> {
    Box::new(CertificateShown {
        sha256: certificate.sha256.to_string(),
        subject: certificate.subject.clone(),
        issuer: certificate.issuer.clone(),
        reason: certificate.reason.clone(),
        pin_setting,
    })
}
