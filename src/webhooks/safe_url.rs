//! Outbound safety: where a webhook may point. A webhook URL is chosen by a user, and the
//! gateway sits inside someone's network, so an unchecked URL would let any workspace admin
//! make the gateway call its neighbours (databases, admin panels, the cloud metadata service
//! at 169.254.169.254): server-side request forgery.
//!
//! The rules: https only (plain http only to this machine, and only when
//! `CONCIERGE_WEBHOOK_ALLOW_HTTP_LOOPBACK` is on, for development and tests); no user name or
//! password in the URL; and every address the host resolves to must be a public one. The
//! check runs when a webhook is saved (a clear BAD_USER_INPUT) and again before every
//! attempt, on a fresh DNS answer; the attempt then connects to the very address checked
//! (pinned in the HTTP client), so a DNS answer that changes in between (rebinding) cannot
//! send it elsewhere. Redirects are never followed: a 3xx is a failed attempt.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// Longest URL accepted.
const MAX_URL: usize = 2048;
/// Longest a DNS lookup may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// What the operator allows beyond the rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct UrlPolicy {
    /// Allow this machine (loopback), over http or https.
    pub allow_loopback: bool,
}

/// Where an attempt goes: the URL, and the checked address to connect to.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: Url,
    /// The host name to pin to `addr` (`None` when the URL names an IP address).
    pub domain: Option<String>,
    pub addr: SocketAddr,
}

/// How an address may be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Public,
    Loopback,
    /// Never: the reason names the range.
    Refused(&'static str),
}

/// The URL's form alone (no DNS): parseable, https (or http when loopback is allowed), with
/// a host and no credentials. The error is the message for the client.
pub fn check_form(raw: &str, policy: UrlPolicy) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return Err(format!("at most {MAX_URL} characters"));
    }
    let url = Url::parse(raw).map_err(|_| "not a valid URL (e.g. https://example.com/webhooks)".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_loopback => {}
        "http" => return Err("must use https".into()),
        _ => return Err("must be an https:// URL".into()),
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

/// Checks the URL's form, resolves its host now and checks every address it resolves to;
/// returns where to connect. The error is the message for the client (or the attempt's
/// `lastError`).
pub async fn resolve(raw: &str, policy: UrlPolicy) -> Result<Target, String> {
    let url = check_form(raw, policy)?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let (domain, addrs) = match url.host() {
        Some(Host::Ipv4(ip)) => (None, vec![SocketAddr::new(IpAddr::V4(ip), port)]),
        Some(Host::Ipv6(ip)) => (None, vec![SocketAddr::new(IpAddr::V6(ip), port)]),
        Some(Host::Domain(name)) => {
            let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((name, port))).await;
            let addrs: Vec<SocketAddr> = match lookup {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(_)) => return Err(format!("the host {name} does not resolve")),
                Err(_) => return Err(format!("resolving {name} timed out")),
            };
            if addrs.is_empty() {
                return Err(format!("the host {name} does not resolve"));
            }
            (Some(name.to_owned()), addrs)
        }
        None => return Err("must name a host".into()),
    };
    // Every address must pass: a name that also resolves to a private address is refused,
    // whichever address a connection would pick.
    for addr in &addrs {
        match classify(addr.ip()) {
            Class::Public => {}
            Class::Loopback if policy.allow_loopback => {}
            Class::Loopback => return Err(refusal(domain.as_deref(), addr.ip(), "a loopback address (this machine)")),
            Class::Refused(why) => return Err(refusal(domain.as_deref(), addr.ip(), why)),
        }
    }
    // Plain http only to this machine: nothing else may see the payload unencrypted.
    if url.scheme() == "http" && addrs.iter().any(|a| classify(a.ip()) != Class::Loopback) {
        return Err("must use https (plain http is allowed to this machine only)".into());
    }
    Ok(Target { url, domain, addr: addrs[0] })
}

fn refusal(domain: Option<&str>, ip: IpAddr, why: &str) -> String {
    match domain {
        Some(d) => format!("{d} resolves to {ip}, {why}, which webhooks may not reach"),
        None => format!("{ip} is {why}, which webhooks may not reach"),
    }
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if ip.is_loopback() {
        Class::Loopback
    } else if o[0] == 0 {
        Class::Refused("an unspecified address (0.0.0.0/8)")
    } else if ip.is_private() {
        Class::Refused("a private address (RFC 1918)")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Class::Refused("a shared carrier-grade NAT address (100.64.0.0/10)")
    } else if ip.is_link_local() {
        Class::Refused("a link-local address (169.254.0.0/16, where cloud metadata services live)")
    } else if ip.is_multicast() {
        Class::Refused("a multicast address")
    } else if ip.is_broadcast() {
        Class::Refused("the broadcast address")
    } else if ip.is_documentation() {
        Class::Refused("a documentation address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Class::Refused("an IETF protocol address (192.0.0.0/24)")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Class::Refused("a benchmarking address (198.18.0.0/15)")
    } else if o[0] >= 240 {
        Class::Refused("a reserved address (240.0.0.0/4)")
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    // An IPv4 address written as IPv6 is judged as the IPv4 address it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_unspecified() {
        Class::Refused("the unspecified address (::)")
    } else if s[..6] == [0; 6] {
        Class::Refused("an IPv4-compatible address (::/96, deprecated)")
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
        classify_v4(embedded_v4())
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        Class::Refused("a local-use NAT64 address (64:ff9b:1::/48)")
    } else if s[0] == 0x2002 {
        // 6to4 reaches the IPv4 address in bits 16..48.
        classify_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Class::Refused("a unique local address (fc00::/7)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Class::Refused("a link-local address (fe80::/10)")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Class::Refused("a site-local address (fec0::/10)")
    } else if (s[0] & 0xff00) == 0xff00 {
        Class::Refused("a multicast address")
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        Class::Refused("a documentation address")
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        Class::Refused("an IETF protocol address (2001::/23, Teredo among them)")
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        Class::Refused("a discard-only address (100::/64)")
    } else {
        Class::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Class {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn only_public_addresses_pass() {
        for public in ["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"] {
            assert_eq!(class(public), Class::Public, "{public}");
        }
        for loopback in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(class(loopback), Class::Loopback, "{loopback}");
        }
        for refused in [
            "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.254", "169.254.169.254",
            "0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255", "192.0.2.10", "198.51.100.1", "203.0.113.9", "198.18.0.1",
            "240.0.0.1", "192.0.0.8", "::", "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1", "2001:db8::1",
            "3fff::1", "2001::1", "100::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::10.0.0.1", "64:ff9b::a00:1",
            "64:ff9b:1::1", "2002:a00:1::1",
        ] {
            assert!(matches!(class(refused), Class::Refused(_)), "{refused} passed");
        }
        assert_eq!(class("100.128.0.1"), Class::Public, "just past CGNAT");
        assert_eq!(class("172.32.0.1"), Class::Public, "just past 172.16/12");
    }

    #[test]
    fn the_url_form_is_checked_before_any_lookup() {
        let strict = UrlPolicy::default();
        let lab = UrlPolicy { allow_loopback: true };
        assert!(check_form("https://hooks.example.com/in?x=1", strict).is_ok());
        assert!(check_form("http://hooks.example.com/in", strict).is_err(), "http needs the loopback setting");
        assert!(check_form("http://127.0.0.1:9/in", lab).is_ok());
        assert!(check_form("ftp://example.com/", lab).is_err());
        assert!(check_form("https://user:pw@example.com/", strict).is_err(), "no credentials");
        assert!(check_form("https://user@example.com/", strict).is_err(), "no user name");
        assert!(check_form("not a url", strict).is_err());
        assert!(check_form("https://example.com:0/", strict).is_err());
        assert!(check_form(&format!("https://example.com/{}", "a".repeat(3000)), strict).is_err());
    }

    #[tokio::test]
    async fn addresses_are_checked_whatever_way_the_url_writes_them() {
        let strict = UrlPolicy::default();
        let lab = UrlPolicy { allow_loopback: true };
        for refused in [
            "https://10.0.0.1/x", "https://169.254.169.254/latest/meta-data/", "https://[::ffff:a9fe:a9fe]/", "https://0x7f.1/",
            "https://2130706433/", "https://[fd00::1]/", "https://127.0.0.1/", "https://localhost/",
        ] {
            assert!(resolve(refused, strict).await.is_err(), "{refused} passed");
        }
        let t = resolve("http://127.0.0.1:8123/hook", lab).await.unwrap();
        assert_eq!(t.addr, "127.0.0.1:8123".parse().unwrap());
        assert!(t.domain.is_none());
        let t = resolve("http://localhost:8123/hook", lab).await.unwrap();
        assert!(t.addr.ip().is_loopback());
        assert_eq!(t.domain.as_deref(), Some("localhost"));
        assert!(resolve("http://10.0.0.1/x", lab).await.is_err(), "the loopback setting allows loopback only");
    }
}
