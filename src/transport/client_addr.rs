//! The client's address: the TCP peer, or, when the peer is a proxy the operator trusts
//! (`CONCIERGE_TRUSTED_PROXIES`), the address its `Forwarded` (RFC 7239) or `X-Forwarded-For`
//! header names. Rate limits, sessions and the security log all take it from here.
//!
//! Each proxy appends the address it was connected from, so the list is only as believable as
//! the hop that wrote it: walking right to left, every entry a trusted proxy wrote is taken, and
//! the first address that is not itself a trusted proxy is the client. Anything left of it was
//! written by the client and proves nothing. A header that does not parse is ignored whole.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, HeaderName, header, request::Parts};
use ipnet::IpNet;

use crate::app::AppState;
use crate::identity::service::ClientMeta;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose forwarding headers are believed; empty means none are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    /// `10.0.0.0/8, 192.0.2.7, fd00::/8`: CIDRs or single addresses, comma-separated.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip.to_canonical()),
                    Err(_) => return Err(format!("{item:?} is neither an address nor a CIDR range (CONCIERGE_TRUSTED_PROXIES)")),
                },
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }
}

/// One hop a forwarding header names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    Addr(IpAddr),
    /// `unknown`, an obfuscated identifier (`_hidden`), or an element without `for`: the proxy
    /// that wrote it does not say who connected to it.
    Unknown,
}

/// The client's address for a request that arrived from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let Some(hops) = forwarded_hops(headers) else {
        return peer;
    };
    let mut current = peer;
    for hop in hops.iter().rev() {
        match *hop {
            Hop::Addr(ip) => {
                current = ip.to_canonical();
                if !trusted.contains(current) {
                    return current;
                }
            }
            // A trusted proxy that cannot say who connected to it: it is as far as we know.
            Hop::Unknown => return current,
        }
    }
    // Every hop is a trusted proxy: the left-most is the client (one inside the trusted network).
    current
}

/// Reads one header line's hops; `None` when it does not parse.
type ParseHops = fn(&str) -> Option<Vec<Hop>>;

/// The hops of `Forwarded` (preferred, when present) or else `X-Forwarded-For`, left to right
/// across repeated header lines; `None` when the header does not parse.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let (name, parse): (&HeaderName, ParseHops) = if headers.contains_key(header::FORWARDED) {
        (&header::FORWARDED, parse_forwarded)
    } else {
        (&X_FORWARDED_FOR, parse_x_forwarded_for)
    };
    let mut hops = Vec::new();
    for value in headers.get_all(name) {
        hops.extend(parse(value.to_str().ok()?)?);
    }
    Some(hops)
}

/// `X-Forwarded-For: 203.0.113.7, [2001:db8::1]:4711, 198.51.100.9:80`.
fn parse_x_forwarded_for(value: &str) -> Option<Vec<Hop>> {
    value.split(',').map(|item| parse_node(item.trim())).collect()
}

/// `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`.
fn parse_forwarded(value: &str) -> Option<Vec<Hop>> {
    split_unquoted(value, ',')?
        .into_iter()
        .map(|element| {
            let mut hop = None;
            for pair in split_unquoted(element, ';')? {
                let pair = pair.trim();
                if pair.is_empty() {
                    continue;
                }
                let (name, value) = pair.split_once('=')?;
                let name = name.trim();
                if name.is_empty() || !name.bytes().all(is_tchar) {
                    return None;
                }
                let value = unquote(value.trim())?;
                if name.eq_ignore_ascii_case("for") {
                    // RFC 7239 section 4: a parameter occurs at most once per element.
                    if hop.is_some() {
                        return None;
                    }
                    hop = Some(parse_node(&value)?);
                }
            }
            Some(hop.unwrap_or(Hop::Unknown))
        })
        .collect()
}

/// A node (RFC 7239 section 6): `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::17]`,
/// `[2001:db8::17]:4711`, `unknown` or `_obfuscated` (ports may be obfuscated too).
fn parse_node(node: &str) -> Option<Hop> {
    if node.eq_ignore_ascii_case("unknown") {
        return Some(Hop::Unknown);
    }
    if let Some(name) = node.strip_prefix('_') {
        return valid_obfuscated(name).then_some(Hop::Unknown);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)).then_some(Hop::Addr(IpAddr::V6(ip)));
    }
    // An IPv6 address is bracketed; tolerate a bare one, which cannot be mistaken for anything else.
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(Hop::Addr(ip));
    }
    let (ip, port) = node.split_once(':')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    valid_port(port).then_some(Hop::Addr(IpAddr::V4(ip)))
}

fn valid_port(port: &str) -> bool {
    match port.strip_prefix('_') {
        Some(obfuscated) => valid_obfuscated(obfuscated),
        None => port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok(),
    }
}

fn valid_obfuscated(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits on `sep` outside quoted strings; `None` when a quote is left open.
fn split_unquoted(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// A token as is, or a quoted string without its quotes and escapes.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.is_empty() && value.bytes().all(is_tchar)).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The client's address for a request, from its connection and headers; `None` when the
/// request did not come over a socket (in-process calls).
pub fn client_addr(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(client_ip(peer, &parts.headers, trusted))
}

/// Who sent a request, as sessions and the security log record it.
pub fn client_meta(parts: &Parts, trusted: &TrustedProxies) -> ClientMeta {
    ClientMeta {
        ip: client_addr(parts, trusted).map(|ip| ip.to_string()),
        user_agent: parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        accept_language: parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(200).collect()),
    }
}

/// [`client_meta`] as an extractor, for handlers outside `/graphql`.
pub struct Client(pub ClientMeta);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Client(client_meta(parts, &state.config.trusted_proxies)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PROXY: &str = "10.0.0.5";

    fn trusted(list: &str) -> TrustedProxies {
        list.parse().expect("valid list")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// The client address a request from `peer` with `headers` gets, with `10.0.0.0/8` trusted.
    fn client(peer: &str, headers: &[(&str, &str)]) -> IpAddr {
        client_with("10.0.0.0/8", peer, headers)
    }

    fn client_with(list: &str, peer: &str, headers: &[(&str, &str)]) -> IpAddr {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(HeaderName::from_bytes(name.as_bytes()).expect("name"), HeaderValue::from_str(value).expect("value"));
        }
        client_ip(ip(peer), &map, &trusted(list))
    }

    #[test]
    fn without_trusted_proxies_the_headers_are_ignored() {
        let headers = [("x-forwarded-for", "203.0.113.7"), ("forwarded", "for=198.51.100.9")];
        assert_eq!(client_with("", "127.0.0.1", &headers), ip("127.0.0.1"));
    }

    #[test]
    fn a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_claims() {
        assert_eq!(client("192.0.2.1", &[("x-forwarded-for", "203.0.113.7")]), ip("192.0.2.1"));
        assert_eq!(client("192.0.2.1", &[("forwarded", "for=203.0.113.7")]), ip("192.0.2.1"));
    }

    #[test]
    fn the_right_most_untrusted_address_of_x_forwarded_for_is_the_client() {
        assert_eq!(client(PROXY, &[("x-forwarded-for", "198.51.100.9, 203.0.113.7")]), ip("203.0.113.7"));
        assert_eq!(client(PROXY, &[("x-forwarded-for", "203.0.113.7")]), ip("203.0.113.7"));
    }

    #[test]
    fn trusted_hops_are_walked_through_right_to_left() {
        let headers = [("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.1.1.1, 10.2.2.2")];
        assert_eq!(client(PROXY, &headers), ip("203.0.113.7"));
    }

    #[test]
    fn entries_a_client_adds_on_the_left_change_nothing() {
        let spoofed = [("x-forwarded-for", "1.2.3.4, 10.9.9.9, 203.0.113.7")];
        assert_eq!(client(PROXY, &spoofed), ip("203.0.113.7"));
    }

    #[test]
    fn when_every_hop_is_trusted_the_left_most_is_the_client() {
        assert_eq!(client(PROXY, &[("x-forwarded-for", "10.3.3.3, 10.2.2.2")]), ip("10.3.3.3"));
    }

    #[test]
    fn repeated_header_lines_read_as_one_list_in_order() {
        let headers = [("x-forwarded-for", "198.51.100.9"), ("x-forwarded-for", "203.0.113.7, 10.2.2.2")];
        assert_eq!(client(PROXY, &headers), ip("203.0.113.7"));
    }

    #[test]
    fn x_forwarded_for_entries_may_carry_ports_and_brackets() {
        assert_eq!(client(PROXY, &[("x-forwarded-for", "203.0.113.7:51234")]), ip("203.0.113.7"));
        assert_eq!(client(PROXY, &[("x-forwarded-for", "[2001:db8::1]:4711")]), ip("2001:db8::1"));
        assert_eq!(client(PROXY, &[("x-forwarded-for", "[2001:db8::1]")]), ip("2001:db8::1"));
        assert_eq!(client(PROXY, &[("x-forwarded-for", "2001:db8::1")]), ip("2001:db8::1"));
    }

    #[test]
    fn a_malformed_x_forwarded_for_falls_back_to_the_peer() {
        for bad in [
            "",
            "not-an-address",
            "203.0.113.7,",
            "203.0.113.7, , 198.51.100.9",
            "203.0.113.7:99999",
            "[2001:db8::1",
            "203.0.113.7:80:80",
            "999.1.1.1",
        ] {
            assert_eq!(client(PROXY, &[("x-forwarded-for", bad)]), ip(PROXY), "{bad:?}");
        }
    }

    #[test]
    fn forwarded_names_the_client_with_for() {
        assert_eq!(client(PROXY, &[("forwarded", "for=203.0.113.7;proto=https;by=10.0.0.5")]), ip("203.0.113.7"));
        assert_eq!(client(PROXY, &[("forwarded", "For=\"203.0.113.7:4711\"")]), ip("203.0.113.7"));
        assert_eq!(client(PROXY, &[("forwarded", "for=198.51.100.9, for=203.0.113.7")]), ip("203.0.113.7"));
    }

    #[test]
    fn forwarded_reads_quoted_ipv6_with_and_without_a_port() {
        assert_eq!(client(PROXY, &[("forwarded", "for=\"[2001:db8:cafe::17]:4711\"")]), ip("2001:db8:cafe::17"));
        assert_eq!(client(PROXY, &[("forwarded", "for=\"[2001:db8:cafe::17]\";proto=http")]), ip("2001:db8:cafe::17"));
        assert_eq!(client(PROXY, &[("forwarded", "for=\"[2001:db8::1]:_port\"")]), ip("2001:db8::1"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let headers = [("x-forwarded-for", "198.51.100.9"), ("forwarded", "for=203.0.113.7")];
        assert_eq!(client(PROXY, &headers), ip("203.0.113.7"));
    }

    #[test]
    fn an_unknown_or_obfuscated_hop_ends_the_walk_at_the_proxy_that_wrote_it() {
        assert_eq!(client(PROXY, &[("forwarded", "for=unknown")]), ip(PROXY));
        assert_eq!(client(PROXY, &[("forwarded", "for=_hidden")]), ip(PROXY));
        assert_eq!(client(PROXY, &[("forwarded", "for=203.0.113.7, for=_gateway")]), ip(PROXY));
        assert_eq!(client(PROXY, &[("forwarded", "for=203.0.113.7, for=unknown, for=10.2.2.2")]), ip("10.2.2.2"));
        assert_eq!(client(PROXY, &[("forwarded", "proto=https")]), ip(PROXY));
        assert_eq!(client(PROXY, &[("x-forwarded-for", "203.0.113.7, unknown")]), ip(PROXY));
    }

    #[test]
    fn an_unknown_hop_left_of_the_client_does_not_matter() {
        assert_eq!(client(PROXY, &[("forwarded", "for=unknown, for=203.0.113.7")]), ip("203.0.113.7"));
    }

    #[test]
    fn a_malformed_forwarded_falls_back_to_the_peer() {
        for bad in [
            "for=",
            "for",
            "for=\"203.0.113.7",
            "for=203.0.113.7;for=198.51.100.9",
            "for=[2001:db8::1]x",
            "for=\"[2001:db8::1]:port\"",
            "for=_",
            "for=_bad!name",
            "fo r=203.0.113.7",
            "for=not-an-address",
            "for=203.0.113.7, for=\"garbage\"",
        ] {
            assert_eq!(client(PROXY, &[("forwarded", bad)]), ip(PROXY), "{bad:?}");
        }
    }

    #[test]
    fn quoted_values_may_hold_separators() {
        let header = "for=203.0.113.7;ext=\"a,b;c=\\\"d\\\"\"";
        assert_eq!(client(PROXY, &[("forwarded", header)]), ip("203.0.113.7"));
    }

    #[test]
    fn ipv4_mapped_peers_and_hops_count_as_their_ipv4_address() {
        assert_eq!(client("::ffff:10.0.0.5", &[("x-forwarded-for", "::ffff:203.0.113.7")]), ip("203.0.113.7"));
        assert_eq!(client_with("", "::ffff:127.0.0.1", &[]), ip("127.0.0.1"));
    }

    #[test]
    fn without_forwarding_headers_a_trusted_peer_is_the_client() {
        assert_eq!(client(PROXY, &[]), ip(PROXY));
    }

    #[test]
    fn a_non_ascii_header_falls_back_to_the_peer() {
        let mut map = HeaderMap::new();
        map.insert(X_FORWARDED_FOR.clone(), HeaderValue::from_bytes(b"203.0.113.7\xff").expect("opaque value"));
        assert_eq!(client_ip(ip(PROXY), &map, &trusted("10.0.0.0/8")), ip(PROXY));
    }

    #[test]
    fn trusted_proxies_take_cidrs_and_single_addresses() {
        let t = trusted(" 10.0.0.0/8 , 192.0.2.7, fd00::/8,");
        assert!(t.contains(ip("10.200.1.1")) && t.contains(ip("192.0.2.7")) && t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("192.0.2.8")) && !t.contains(ip("2001:db8::1")));
        assert!(t.contains(ip("::ffff:10.1.2.3")), "an IPv4-mapped peer is its IPv4 address");
        assert!(trusted("").is_empty());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.internal".parse::<TrustedProxies>().is_err());
    }
}
