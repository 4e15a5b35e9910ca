//! The outbound address policy: which addresses the gateway may connect to on a user's
//! behalf. A user names a host (an IMAP server, a CalDAV URL, a push endpoint, a webhook),
//! and the gateway sits inside someone's network, so an unchecked host would let any user
//! make the gateway reach its neighbours (databases, admin panels, the cloud metadata
//! service at 169.254.169.254) and, from the errors, map which ports are open: server-side
//! request forgery.
//!
//! The rule is decided on the **resolved** addresses, every time a connection is made (not
//! only on the text when the settings are saved), and the connection then goes to an
//! address just checked, so a DNS answer that changes in between (rebinding) cannot send it
//! elsewhere. By default only public addresses pass; the operator opens ranges (a
//! self-hoster's LAN server, the project's own test labs on loopback) with an allow list of
//! CIDRs (`CONCIERGE_OUTBOUND_ALLOW` in the gateway).
//!
//! Endpoints the operator configured (OAuth providers, Microsoft Graph, Google's CalDAV
//! base URL, a provider's fixed IMAP/SMTP servers) are not chosen by users: connectors reach
//! them with [`OutboundPolicy::operator_configured`], which says so at the call site.
//!
//! ```ignore
//! let policy = OutboundPolicy::allowing(OutboundPolicy::parse_allow_list("10.0.0.0/8")?);
//! let tcp = policy.connect("imap.example.com", 993, Duration::from_secs(10)).await?;
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use ipnet::IpNet;
use tokio::net::TcpStream;

/// Longest a DNS lookup may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// What an address is, as far as reaching it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// A public address: reachable.
    Public,
    /// This machine (127.0.0.0/8, ::1, and IPv6 forms of them).
    Loopback,
    /// Not public; the text names the range ("a private address (RFC 1918)").
    Private(&'static str),
}

/// Which addresses may be reached. Cheap to clone. The default refuses everything but
/// public addresses.
#[derive(Clone, Debug, Default)]
pub struct OutboundPolicy {
    allow: Arc<[IpNet]>,
    /// Every address passes: the endpoint was configured by the operator, not a user.
    trusted: bool,
}

/// An address the policy refuses. Its message names the host and the range, never anything
/// learnt by connecting (nothing was).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The host as the user wrote it, when it is a name (not an IP literal).
    pub host: Option<String>,
    pub ip: IpAddr,
    /// The range, as [`Range::Private`] names it.
    pub range: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{host} resolves to {}, {}, which the gateway may not reach", self.ip, self.range),
            None => write!(f, "{} is {}, which the gateway may not reach", self.ip, self.range),
        }
    }
}

impl std::error::Error for Refusal {}

/// Why a host could not be reached through the policy.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// An address the host resolves to is refused: nothing was connected to.
    #[error("{0}")]
    Refused(Refusal),
    /// The name does not resolve (or the lookup failed or timed out).
    #[error("the host {host} does not resolve")]
    Unresolved { host: String },
    /// Connecting to a checked address failed.
    #[error("{0}")]
    Connect(std::io::Error),
    /// No checked address answered in time.
    #[error("connecting timed out")]
    TimedOut,
}

impl OutboundPolicy {
    /// Public addresses only.
    pub fn strict() -> OutboundPolicy {
        OutboundPolicy::default()
    }

    /// Public addresses, and any address in `ranges` (the operator's allow list).
    pub fn allowing(ranges: impl IntoIterator<Item = IpNet>) -> OutboundPolicy {
        OutboundPolicy { allow: ranges.into_iter().collect(), trusted: false }
    }

    /// For endpoints the operator configured (an OAuth provider, Microsoft Graph, a
    /// provider's fixed servers): every address passes. Never use it for a host a user
    /// typed or a server sent.
    pub fn operator_configured() -> OutboundPolicy {
        OutboundPolicy { allow: Arc::from([]), trusted: true }
    }

    /// Parses a comma-separated list of CIDRs (`127.0.0.0/8, ::1/128, 10.0.0.0/8`); a bare
    /// address is its own /32 or /128. Empty items are ignored.
    pub fn parse_allow_list(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse_range).collect()
    }

    /// The operator's allow list.
    pub fn allow_list(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether `ip` may be reached: a public address, or one the allow list covers.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.trusted || self.listed(ip) {
            return Ok(());
        }
        match classify(ip) {
            Range::Public => Ok(()),
            Range::Loopback => Err(Refusal { host: None, ip, range: "a loopback address (this machine)" }),
            Range::Private(range) => Err(Refusal { host: None, ip, range }),
        }
    }

    /// The allow list covers `ip` (an IPv4 address written as IPv6, `::ffff:a.b.c.d`, is
    /// covered by the IPv4 ranges too).
    fn listed(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.allow.iter().any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// Checks a host that is an IP literal (`10.0.0.1`, `[::1]`, `::1`); a name passes here,
    /// since it is checked when it resolves. For HTTP clients that resolve through
    /// [`OutboundPolicy::resolve`] but skip the resolver for IP literals (reqwest does).
    pub fn check_literal(&self, host: &str) -> Result<(), Refusal> {
        match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => self.check(ip),
            Err(_) => Ok(()),
        }
    }

    /// Resolves `host` (a name or an IP literal, IPv6 with or without brackets) and checks
    /// **every** address: a name that also resolves to a refused address is refused,
    /// whichever address a connection would pick. Returns the checked addresses.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let bare = host.trim_matches(['[', ']']);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check(ip).map_err(OutboundError::Refused)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let unresolved = || OutboundError::Unresolved { host: host.to_owned() };
        // RFC 6761: `localhost`, `localhost.` and `*.localhost` are this machine whatever DNS
        // says (a resolver that cannot find `localhost.` must not make it pass as unknown).
        let lookup_name = if is_localhost_name(bare) { "localhost" } else { bare };
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((lookup_name, port))).await {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(_)) | Err(_) if lookup_name == "localhost" => vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)],
            Ok(Err(_)) | Err(_) => return Err(unresolved()),
        };
        if addrs.is_empty() {
            return Err(unresolved());
        }
        for addr in &addrs {
            self.check(addr.ip()).map_err(|r| OutboundError::Refused(Refusal { host: Some(bare.to_owned()), ..r }))?;
        }
        Ok(addrs)
    }

    /// Resolves and checks `host`, then connects to the first checked address that answers
    /// (within `timeout` in all). A refused host gets no connection attempt at all.
    pub async fn connect(&self, host: &str, port: u16, timeout: Duration) -> Result<TcpStream, OutboundError> {
        let addrs = self.resolve(host, port).await?;
        let attempt = async {
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(tcp) => return Ok(tcp),
                    Err(e) => last = Some(e),
                }
            }
            Err(OutboundError::Connect(last.unwrap_or_else(|| std::io::Error::other("no address"))))
        };
        tokio::time::timeout(timeout, attempt).await.map_err(|_| OutboundError::TimedOut)?
    }
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// One range of an allow list: a CIDR (`10.0.0.0/8`, host bits dropped) or a bare address
/// (its own /32 or /128).
pub fn parse_range(item: &str) -> Result<IpNet, String> {
    let item = item.trim();
    if let Ok(net) = item.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    item.parse::<IpAddr>().map(IpNet::from).map_err(|_| format!("{item:?} is not a CIDR range (e.g. 10.0.0.0/8 or ::1/128)"))
}

/// What `ip` is. IPv6 forms that reach an IPv4 address (v4-mapped, NAT64, 6to4) are judged
/// as the address they reach.
pub fn classify(ip: IpAddr) -> Range {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Range {
    let o = ip.octets();
    if ip.is_loopback() {
        Range::Loopback
    } else if o[0] == 0 {
        Range::Private("an unspecified address (0.0.0.0/8)")
    } else if ip.is_private() {
        Range::Private("a private address (RFC 1918)")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Range::Private("a shared carrier-grade NAT address (100.64.0.0/10)")
    } else if ip.is_link_local() {
        Range::Private("a link-local address (169.254.0.0/16, where cloud metadata services live)")
    } else if ip.is_multicast() {
        Range::Private("a multicast address")
    } else if ip.is_broadcast() {
        Range::Private("the broadcast address")
    } else if ip.is_documentation() {
        Range::Private("a documentation address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Range::Private("an IETF protocol address (192.0.0.0/24)")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Range::Private("a benchmarking address (198.18.0.0/15)")
    } else if o[0] >= 240 {
        Range::Private("a reserved address (240.0.0.0/4)")
    } else {
        Range::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Range {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if ip.is_loopback() {
        Range::Loopback
    } else if ip.is_unspecified() {
        Range::Private("the unspecified address (::)")
    } else if s[..6] == [0; 6] {
        Range::Private("an IPv4-compatible address (::/96, deprecated)")
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
        classify_v4(embedded_v4())
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        Range::Private("a local-use NAT64 address (64:ff9b:1::/48)")
    } else if s[0] == 0x2002 {
        // 6to4 reaches the IPv4 address in bits 16..48.
        classify_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Range::Private("a unique local address (fc00::/7)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Range::Private("a link-local address (fe80::/10)")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Range::Private("a site-local address (fec0::/10)")
    } else if (s[0] & 0xff00) == 0xff00 {
        Range::Private("a multicast address")
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        Range::Private("a documentation address")
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        Range::Private("an IETF protocol address (2001::/23, Teredo among them)")
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        Range::Private("a discard-only address (100::/64)")
    } else {
        Range::Public
    }
}

/// A [`reqwest`] resolver that answers only with addresses the policy allows: give it to
/// `ClientBuilder::dns_resolver`, and check IP-literal hosts with
/// [`OutboundPolicy::check_literal`] before each request (reqwest does not resolve them). A
/// refused name fails the request with a [`Refusal`] in the error's source chain
/// ([`refusal_in`] finds it), before any connection.
#[cfg(feature = "reqwest")]
#[derive(Clone, Debug)]
pub struct PolicyResolver(pub OutboundPolicy);

#[cfg(feature = "reqwest")]
impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            match policy.resolve(name.as_str(), 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(OutboundError::Refused(refusal)) => Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>),
                Err(other) => Err(Box::new(other) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// The [`Refusal`] somewhere in an error's source chain (a request [`PolicyResolver`] refused).
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refusal> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(ip: &str) -> Range {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn only_public_addresses_are_public() {
        for public in ["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"] {
            assert_eq!(range(public), Range::Public, "{public}");
        }
        for loopback in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::"] {
            assert_eq!(range(loopback), Range::Loopback, "{loopback}");
        }
        for private in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.9",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "100::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
        ] {
            assert!(matches!(range(private), Range::Private(_)), "{private} is public");
        }
        assert_eq!(range("100.128.0.1"), Range::Public, "just past CGNAT");
        assert_eq!(range("172.32.0.1"), Range::Public, "just past 172.16/12");
    }

    #[test]
    fn the_default_refuses_all_but_public_addresses() {
        let strict = OutboundPolicy::strict();
        assert!(strict.check("93.184.215.14".parse().unwrap()).is_ok());
        for refused in ["127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1", "64:ff9b::7f00:1"] {
            assert!(strict.check(refused.parse().unwrap()).is_err(), "{refused} passed");
        }
    }

    #[test]
    fn the_allow_list_opens_its_ranges_and_nothing_else() {
        let lab = OutboundPolicy::allowing(OutboundPolicy::parse_allow_list(" 127.0.0.0/8, ::1/128 ,10.1.2.3").unwrap());
        for allowed in ["127.0.0.1", "127.200.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3", "8.8.8.8"] {
            assert!(lab.check(allowed.parse().unwrap()).is_ok(), "{allowed} refused");
        }
        for refused in ["10.1.2.4", "192.168.0.1", "169.254.169.254", "fd00::1"] {
            assert!(lab.check(refused.parse().unwrap()).is_err(), "{refused} passed");
        }
        assert!(OutboundPolicy::parse_allow_list("10.0.0.0/33").is_err());
        assert!(OutboundPolicy::parse_allow_list("lan").is_err());
        assert_eq!(OutboundPolicy::parse_allow_list("").unwrap(), vec![]);
        assert_eq!(OutboundPolicy::parse_allow_list("10.9.9.9/8").unwrap(), vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
    }

    #[test]
    fn operator_configured_endpoints_are_not_checked() {
        assert!(OutboundPolicy::operator_configured().check("127.0.0.1".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn hosts_are_judged_by_what_they_resolve_to() {
        let strict = OutboundPolicy::strict();
        for host in ["localhost", "localhost.", "LocalHost", "db.localhost", "127.0.0.1", "[::1]", "::1", "10.0.0.1"] {
            assert!(matches!(strict.resolve(host, 993).await, Err(OutboundError::Refused(_))), "{host} passed");
        }
        let Err(OutboundError::Refused(refusal)) = strict.resolve("localhost", 993).await else { panic!("localhost passed") };
        assert_eq!(refusal.host.as_deref(), Some("localhost"));
        let lab = OutboundPolicy::allowing(OutboundPolicy::parse_allow_list("127.0.0.0/8,::1/128").unwrap());
        let addrs = lab.resolve("localhost", 993).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 993));
    }

    #[tokio::test]
    async fn a_refused_host_gets_no_connection_attempt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = OutboundPolicy::strict().connect("127.0.0.1", port, Duration::from_secs(5)).await;
        assert!(matches!(refused, Err(OutboundError::Refused(_))));
        assert!(listener.accept().is_err(), "nothing connected");
        let lab = OutboundPolicy::allowing(["127.0.0.0/8".parse().unwrap()]);
        assert!(lab.connect("127.0.0.1", port, Duration::from_secs(5)).await.is_ok());
    }
}
