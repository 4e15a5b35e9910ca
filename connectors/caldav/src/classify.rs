//! Every failure becomes a typed [`ConnectorError`] here, and only here: transport errors
//! (reqwest) and HTTP statuses. Messages name the host, never a password or token.

use std::error::Error as _;
use std::time::Duration;

use concierge_connector_sdk::ConnectorError;

/// What the request was for; the same status means different things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Signing in and finding the calendars: a 403 is a refused sign-in.
    SignIn,
    /// Reading a calendar: a 403 means access was withdrawn.
    Read,
    /// Writing or deleting an event: a 403 refuses this write (a read-only calendar).
    Write,
}

/// A transport failure (no HTTP status) talking to `host`.
pub(crate) fn transport(host: &str, error: &reqwest::Error) -> ConnectorError {
    // The resolver refused the name: a setting to fix, and nothing was connected to.
    if let Some(refusal) = concierge_connector_sdk::outbound::refusal_in(error) {
        return ConnectorError::Settings(concierge_connector_sdk::FieldError::new("url", refusal.to_string()));
    }
    let innermost = innermost(error);
    if is_tls(error) {
        return ConnectorError::Tls { message: format!("{host}: {innermost}") };
    }
    if error.is_timeout() {
        return ConnectorError::Unreachable { message: format!("{host}: no answer in time") };
    }
    if is_not_http(error) {
        return ConnectorError::Protocol { message: format!("{host}: the reply is not HTTP ({innermost})") };
    }
    if error.is_connect() || error.is_request() || error.is_body() {
        return ConnectorError::Unreachable { message: format!("{host}: {innermost}") };
    }
    ConnectorError::Protocol { message: format!("{host}: {innermost}") }
}

/// The server's certificate was refused: what it was, for the user to check and pin.
pub(crate) fn untrusted(host: &str, certificate: concierge_connector_sdk::trust::PresentedCertificate) -> ConnectorError {
    ConnectorError::UntrustedCertificate {
        message: format!(
            "{host}: the server's certificate is not trusted ({}); its SHA-256 fingerprint is {}",
            certificate.reason, certificate.sha256
        ),
        certificate: Box::new(certificate),
    }
}

/// An HTTP status that is not what the operation expects.
pub(crate) fn status(status: u16, retry_after: Option<Duration>, purpose: Purpose, what: &str) -> ConnectorError {
    match (status, purpose) {
        (401, _) | (403, Purpose::SignIn | Purpose::Read) => {
            ConnectorError::Authentication { message: format!("the server refused the credentials ({status}) for {what}") }
        }
        (403, Purpose::Write) => ConnectorError::Rejected { message: format!("the server refused to write {what} (403)") },
        (404 | 410, _) => ConnectorError::Gone { what: what.to_owned() },
        // A write's If-Match no longer matches: changed (or removed) elsewhere since read.
        (412, Purpose::Write) => ConnectorError::Conflict { message: format!("{what} changed on the server since it was read (412)") },
        (429, _) => ConnectorError::Throttled { retry_after, message: format!("{status} on {what}") },
        (503, _) if retry_after.is_some() => ConnectorError::Throttled { retry_after, message: format!("{status} on {what}") },
        (502..=504, _) => ConnectorError::Unreachable { message: format!("the server answered {status} on {what}") },
        _ => ConnectorError::Protocol { message: format!("unexpected HTTP status {status} on {what}") },
    }
}

/// Malformed XML or another answer that makes no sense.
pub(crate) fn protocol(what: &str, why: &str) -> ConnectorError {
    ConnectorError::Protocol { message: format!("{what}: {why}") }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for DAV servers; it counts as
/// absent, and the gateway's backoff applies).
pub(crate) fn retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The server answered, but not in HTTP (another service's port).
fn is_not_http(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(e) = source {
        if e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse) {
            return true;
        }
        source = e.source();
    }
    false
}

fn is_tls(error: &reqwest::Error) -> bool {
    error.source().is_some_and(names_rustls)
}

/// A rustls error anywhere in the chain, including inside `io::Error`s, which hide their
/// inner error from `source()` (the TLS stream wraps rustls errors in them, sometimes twice).
fn names_rustls(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    if let Some(inner) = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
        && names_rustls(inner)
    {
        return true;
    }
    error.source().is_some_and(names_rustls)
}

/// The most specific cause (`Connection refused`), which names no URL and no secret.
fn innermost(error: &reqwest::Error) -> String {
    let mut last: &dyn std::error::Error = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_the_gateway_should_do() {
        let s = |code, ra: Option<u64>, p| status(code, ra.map(Duration::from_secs), p, "x").code();
        assert_eq!(s(401, None, Purpose::Write), "AUTHENTICATION_FAILED");
        assert_eq!(s(403, None, Purpose::SignIn), "AUTHENTICATION_FAILED");
        assert_eq!(s(403, None, Purpose::Write), "REJECTED");
        assert_eq!(s(404, None, Purpose::Read), "GONE");
        assert_eq!(s(410, None, Purpose::Read), "GONE");
        assert_eq!(s(412, None, Purpose::Write), "CONFLICT");
        assert_eq!(s(429, None, Purpose::Read), "THROTTLED");
        assert_eq!(s(503, Some(5), Purpose::Read), "THROTTLED");
        assert_eq!(s(503, None, Purpose::Read), "UNREACHABLE");
        assert_eq!(s(500, None, Purpose::Read), "PROTOCOL_ERROR");
        assert_eq!(s(400, None, Purpose::Read), "PROTOCOL_ERROR");
        match status(429, Some(Duration::from_secs(7)), Purpose::Read, "x") {
            ConnectorError::Throttled { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        assert_eq!(retry_after(Some(" 120 ")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }
}
