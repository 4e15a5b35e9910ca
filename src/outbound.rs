//! Where the gateway may send HTTP on a user's behalf (webhooks, Web Push endpoints): the
//! URL rules on top of the outbound address policy ([`OutboundPolicy`], in the connector
//! SDK, which mail and calendar connectors use too).
//!
//! The rules: https only (plain http only to this machine, when the operator's
//! `CONCIERGE_OUTBOUND_ALLOW` opens loopback, for development and tests); no user name or
//! password in the URL; and every address the host resolves to must pass the policy. The
//! check runs when the URL is saved (a clear BAD_USER_INPUT, before any connection) and again
//! before every request, on a fresh DNS answer; webhooks then connect to the very address
//! checked (pinned in the HTTP client) and push resolves through the policy
//! ([`PolicyResolver`]), so a DNS answer that changes in between (rebinding) cannot send a
//! request elsewhere. Redirects are never followed.

use std::net::{IpAddr, SocketAddr};

use concierge_connector_sdk::OutboundPolicy;
pub use concierge_connector_sdk::outbound::PolicyResolver;
use concierge_connector_sdk::outbound::{OutboundError, Range, classify};
use url::{Host, Url};

/// Longest URL accepted.
const MAX_URL: usize = 2048;

/// Where a request goes: the URL, and the checked address to connect to.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: Url,
    /// The host name to pin to `addr` (`None` when the URL names an IP address).
    pub domain: Option<String>,
    pub addr: SocketAddr,
}

/// The URL's form alone (no DNS): parseable, http(s), with a host and no credentials. The
/// error is the message for the client.
pub fn check_form(raw: &str) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return Err(format!("at most {MAX_URL} characters"));
    }
    let url = Url::parse(raw).map_err(|_| "not a valid URL (e.g. https://example.com/webhooks)".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an https:// URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password; put credentials in the path or query if the receiver needs them".into());
    }
    if url.host().is_none() {
        return Err("must name a host".into());
    }
    if url.port() == Some(0) {
        return Err("port 0 cannot be reached".into());
    }
    Ok(url)
}

/// Checks the URL's form, resolves its host now and checks every address it resolves to
/// against `policy`; returns where to connect. Nothing is connected to. The error is the
/// message for the client (or the attempt's `lastError`).
pub async fn resolve(raw: &str, policy: &OutboundPolicy) -> Result<Target, String> {
    let url = check_form(raw)?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let (domain, host) = match url.host() {
        Some(Host::Ipv4(ip)) => (None, ip.to_string()),
        Some(Host::Ipv6(ip)) => (None, ip.to_string()),
        Some(Host::Domain(name)) => (Some(name.to_owned()), name.to_owned()),
        None => return Err("must name a host".into()),
    };
    let addrs = policy.resolve(&host, port).await.map_err(|e| match e {
        OutboundError::Refused(refusal) => refusal.to_string(),
        other => other.to_string(),
    })?;
    // Plain http only to this machine: nothing else may see the payload unencrypted.
    if url.scheme() == "http" && !addrs.iter().all(|a| is_loopback(a.ip())) {
        return Err("must use https (plain http is allowed to this machine only)".into());
    }
    Ok(Target { url, domain, addr: addrs[0] })
}

/// Like [`resolve`], for URLs whose every request resolves through the policy again (push
/// endpoints, sent through [`PolicyResolver`]): an https URL whose name does not resolve now
/// is accepted, since it reaches nothing, and when it does resolve the request's resolver
/// decides. Any address it does resolve to must pass now.
pub async fn check_rechecked(raw: &str, policy: &OutboundPolicy) -> Result<Url, String> {
    let url = check_form(raw)?;
    if let (Some(Host::Domain(name)), "https") = (url.host(), url.scheme()) {
        let port = url.port_or_known_default().unwrap_or(443);
        match policy.resolve(name, port).await {
            Ok(_) | Err(OutboundError::Unresolved { .. }) => return Ok(url),
            Err(e) => return Err(e.to_string()),
        }
    }
    resolve(raw, policy).await.map(|t| t.url)
}

fn is_loopback(ip: IpAddr) -> bool {
    classify(ip) == Range::Loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> OutboundPolicy {
        OutboundPolicy::allowing(["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap(), "10.0.0.0/8".parse().unwrap()])
    }

    #[test]
    fn the_url_form_is_checked_before_any_lookup() {
        assert!(check_form("https://hooks.example.com/in?x=1").is_ok());
        assert!(check_form("http://127.0.0.1:9/in").is_ok());
        assert!(check_form("ftp://example.com/").is_err());
        assert!(check_form("https://user:pw@example.com/").is_err(), "no credentials");
        assert!(check_form("https://user@example.com/").is_err(), "no user name");
        assert!(check_form("not a url").is_err());
        assert!(check_form("https://example.com:0/").is_err());
        assert!(check_form(&format!("https://example.com/{}", "a".repeat(3000))).is_err());
    }

    #[tokio::test]
    async fn addresses_are_checked_whatever_way_the_url_writes_them() {
        let strict = OutboundPolicy::strict();
        for refused in [
            "https://10.0.0.1/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://0x7f.1/",
            "https://2130706433/",
            "https://[fd00::1]/",
            "https://127.0.0.1/",
            "https://localhost/",
            "https://127.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[2002:7f00:1::]/",
        ] {
            assert!(resolve(refused, &strict).await.is_err(), "{refused} passed");
        }
        let t = resolve("http://127.0.0.1:8123/hook", &lab()).await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:8123".parse().unwrap());
        assert!(t.domain.is_none());
        let t = resolve("http://localhost:8123/hook", &lab()).await.unwrap();
        assert!(t.addr.ip().is_loopback());
        assert_eq!(t.domain.as_deref(), Some("localhost"));
    }

    #[tokio::test]
    async fn a_rechecked_url_may_name_a_host_that_does_not_resolve_yet() {
        let strict = OutboundPolicy::strict();
        assert!(check_rechecked("https://push.invalid/x", &strict).await.is_ok());
        assert!(check_rechecked("http://push.invalid/x", &strict).await.is_err(), "http must prove it stays on this machine");
        assert!(check_rechecked("https://localhost/x", &strict).await.is_err());
        assert!(check_rechecked("https://127.0.0.1/x", &strict).await.is_err());
    }

    #[tokio::test]
    async fn plain_http_goes_to_this_machine_only() {
        assert!(resolve("http://10.0.0.1/x", &lab()).await.is_err(), "allowed, but not this machine");
        assert!(resolve("https://10.0.0.1/x", &lab()).await.is_ok());
        assert!(resolve("http://127.0.0.1/x", &OutboundPolicy::strict()).await.is_err(), "loopback needs the allow list");
    }
}
