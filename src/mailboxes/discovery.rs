//! Finding a domain's mail servers from an address alone, the way mail clients do when no
//! preset serves the domain: the domain's autoconfig document (Thunderbird's convention,
//! `https://autoconfig.<domain>/mail/config-v1.1.xml` and
//! `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`), else its RFC 6186 SRV
//! records (`_imaps._tcp`, `_imap._tcp`, `_submissions._tcp`, `_submission._tcp`).
//!
//! What is found only fills in the generic IMAP/SMTP form; nothing is connected to and no
//! password is sent until the user connects, and connecting checks the servers again. The
//! lookups are a user's requests to hosts the user named (any domain), so they go through
//! the outbound address policy: an autoconfig host that resolves to a refused address is not
//! fetched. Autoconfig is read over HTTPS only (an answer read in the clear could send the
//! password elsewhere), with the operator's extra trusted certificates, no redirects, a small
//! body limit and a short time limit for the whole discovery.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use concierge_connector_sdk::outbound::OutboundPolicy;
use concierge_connector_sdk::trust::Trust;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::identity::model::AccountId;
use crate::security::throttle::AddressLimit;

/// The longest one discovery takes, every lookup and fetch included.
const TIME_LIMIT: Duration = Duration::from_secs(4);
/// The largest autoconfig document read.
const MAX_DOCUMENT: usize = 64 * 1024;
/// How long an answer (found or not) is kept for its address.
const CACHE_FOR: Duration = Duration::from_secs(10 * 60);
/// Addresses kept at most; the cache is emptied when it is full.
const CACHE_SIZE: usize = 1024;

/// Where discovered settings came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Autoconfig,
    Srv,
}

/// One server as the generic form takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// `SSL_TLS` or `STARTTLS`: a server offered only without encryption is not suggested.
    pub security: &'static str,
}

/// What discovery found for a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub source: Source,
    pub imap: Server,
    pub smtp: Option<Server>,
    /// The user name to sign in with, when it is not the email address.
    pub username: Option<String>,
}

impl Found {
    /// The values of the generic IMAP/SMTP form (`imapHost`, `imapPort`, …).
    pub fn settings(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let mut put = |prefix: &str, server: &Server| {
            out.insert(format!("{prefix}Host"), json!(server.host));
            out.insert(format!("{prefix}Port"), json!(server.port));
            out.insert(format!("{prefix}Security"), json!(server.security));
        };
        put("imap", &self.imap);
        if let Some(smtp) = &self.smtp {
            put("smtp", smtp);
        }
        if let Some(username) = &self.username {
            out.insert("username".into(), json!(username));
        }
        out
    }
}

/// Discoveries one account may start in [`PER_ACCOUNT_WINDOW`] (each may make a few DNS
/// lookups and two HTTPS requests to hosts the user named).
const PER_ACCOUNT: u32 = 30;
const PER_ACCOUNT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Finds mail servers for domains no preset serves.
pub struct Discovery {
    resolver: TokioResolver,
    policy: OutboundPolicy,
    trust: Trust,
    cache: Mutex<HashMap<String, (Instant, Option<Found>)>>,
    per_account: AddressLimit,
}

impl Discovery {
    /// Asks the name servers of `dns` (the system's, from `/etc/resolv.conf`, when empty),
    /// fetches under `policy`, trusts what `trust` trusts.
    pub fn new(dns: &[SocketAddr], policy: OutboundPolicy, trust: Trust) -> anyhow::Result<Discovery> {
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(2);
        options.attempts = 1;
        let builder = if dns.is_empty() {
            TokioResolver::builder_tokio()?
        } else {
            let mut config = ResolverConfig::new();
            for server in dns {
                config.add_name_server(NameServerConfig::new(*server, Protocol::Udp));
            }
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        };
        let resolver = builder.with_options(options).build();
        let per_account = AddressLimit::new(PER_ACCOUNT, PER_ACCOUNT_WINDOW);
        Ok(Discovery { resolver, policy, trust, cache: Mutex::new(HashMap::new()), per_account })
    }

    /// [`Discovery::discover`] on behalf of `account`, within its quota (RATE_LIMITED
    /// beyond it).
    pub async fn discover_for(&self, account: AccountId, email: &str, domain: &str) -> Result<Option<Found>> {
        self.per_account.attempt(Some(&account.to_string())).await?;
        Ok(self.discover(email, domain).await)
    }

    /// The servers for `email` (at `domain`, lower case), or None when neither autoconfig
    /// nor SRV records say, or not within the time limit.
    pub async fn discover(&self, email: &str, domain: &str) -> Option<Found> {
        // Kept per address, not per domain: an autoconfig document's user name is made from
        // the address (`%EMAILLOCALPART%`).
        let key = email.to_ascii_lowercase();
        if let Some(known) = self.cached(&key) {
            return known;
        }
        let found = tokio::time::timeout(TIME_LIMIT, async {
            let (autoconfig, srv) = tokio::join!(self.autoconfig(email, domain), self.srv(domain));
            autoconfig.or(srv)
        })
        .await
        .unwrap_or_else(|_| {
            tracing::debug!(domain, "mail settings discovery ran out of time");
            None
        });
        self.remember(&key, found.clone());
        found
    }

    fn cached(&self, key: &str) -> Option<Option<Found>> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(key).filter(|(at, _)| at.elapsed() < CACHE_FOR).map(|(_, found)| found.clone())
    }

    fn remember(&self, key: &str, found: Option<Found>) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(key.to_owned(), (Instant::now(), found));
    }

    /// The first autoconfig document found, read.
    async fn autoconfig(&self, email: &str, domain: &str) -> Option<Found> {
        let (autoconfig_host, query) = (format!("autoconfig.{domain}"), form_urlencoded_email(email));
        let places = [
            (autoconfig_host.clone(), format!("https://{autoconfig_host}/mail/config-v1.1.xml?emailaddress={query}")),
            (domain.to_owned(), format!("https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml")),
        ];
        for (host, url) in places {
            if let Some(document) = self.fetch(&host, &url).await
                && let Some(found) = read_autoconfig(&document, email, domain)
            {
                return Some(found);
            }
        }
        None
    }

    /// `url`'s body, when `host` resolves to addresses the policy allows and the server
    /// answers 200 with a document of at most [`MAX_DOCUMENT`] bytes.
    async fn fetch(&self, host: &str, url: &str) -> Option<String> {
        let addresses = self.allowed_addresses(host).await?;
        let (tls, _) = self.trust.for_connection(&[]);
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .resolve_to_addrs(host, &addresses)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIME_LIMIT)
            .build()
            .ok()?;
        let mut response = client.get(url).send().await.map_err(|e| tracing::debug!(url, error = %e, "no autoconfig")).ok()?;
        if !response.status().is_success() {
            return None;
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.ok()? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT {
                tracing::debug!(url, "autoconfig document too large");
                return None;
            }
        }
        String::from_utf8(body).ok()
    }

    /// `host`'s addresses (port 443) when every one of them is allowed: a name that points
    /// one address inside the network is not fetched at all.
    async fn allowed_addresses(&self, host: &str) -> Option<Vec<SocketAddr>> {
        let ips: Vec<IpAddr> = self.resolver.lookup_ip(format!("{host}.")).await.ok()?.iter().collect();
        if ips.is_empty() {
            return None;
        }
        for ip in &ips {
            if let Err(refusal) = self.policy.check(*ip) {
                tracing::info!(host, %refusal, "autoconfig host refused by the outbound policy");
                return None;
            }
        }
        Some(ips.into_iter().map(|ip| SocketAddr::new(ip, 443)).collect())
    }

    /// What the domain's SRV records offer; implicit TLS first (RFC 8314).
    async fn srv(&self, domain: &str) -> Option<Found> {
        let (imaps, imap, submissions, submission) = tokio::join!(
            self.service("_imaps", domain),
            self.service("_imap", domain),
            self.service("_submissions", domain),
            self.service("_submission", domain),
        );
        let pick = |tls: Option<(String, u16)>, starttls: Option<(String, u16)>| {
            tls.map(|(host, port)| Server { host, port, security: "SSL_TLS" }).or(starttls.map(|(host, port)| Server {
                host,
                port,
                security: "STARTTLS",
            }))
        };
        Some(Found { source: Source::Srv, imap: pick(imaps, imap)?, smtp: pick(submissions, submission), username: None })
    }

    /// The preferred target of `<service>._tcp.<domain>`: lowest priority, then highest
    /// weight. None when there is no record, or the service is declared absent (target `.`).
    async fn service(&self, service: &str, domain: &str) -> Option<(String, u16)> {
        let lookup = self.resolver.srv_lookup(format!("{service}._tcp.{domain}.")).await.ok()?;
        let best = lookup.iter().min_by_key(|srv| (srv.priority(), std::cmp::Reverse(srv.weight())))?;
        let host = best.target().to_ascii();
        let host = host.trim_end_matches('.');
        if host.is_empty() || best.port() == 0 {
            return None;
        }
        Some((host.to_ascii_lowercase(), best.port()))
    }
}

/// The address as a query value.
fn form_urlencoded_email(email: &str) -> String {
    url::form_urlencoded::byte_serialize(email.as_bytes()).collect()
}

/// The IMAP and SMTP servers of an autoconfig document (`clientConfig` version 1.1):
/// the first encrypted `incomingServer type="imap"`, SSL before STARTTLS, and likewise
/// the first `outgoingServer type="smtp"`.
pub fn read_autoconfig(document: &str, email: &str, domain: &str) -> Option<Found> {
    let xml = roxmltree::Document::parse(document).ok()?;
    let provider = xml.root_element().children().find(|n| n.has_tag_name("emailProvider"))?;
    let local_part = email.rsplit_once('@').map_or(email, |(local, _)| local);
    let fill = |text: &str| text.replace("%EMAILADDRESS%", email).replace("%EMAILLOCALPART%", local_part).replace("%EMAILDOMAIN%", domain);
    let servers = |tag: &str, kind: &str| {
        let mut found: Vec<(Server, Option<String>)> = provider
            .children()
            .filter(|n| n.has_tag_name(tag) && n.attribute("type") == Some(kind))
            .filter_map(|n| {
                let text = |name: &str| n.children().find(|c| c.has_tag_name(name)).and_then(|c| c.text()).map(str::trim);
                let security = match text("socketType")? {
                    "SSL" => "SSL_TLS",
                    "STARTTLS" => "STARTTLS",
                    _ => return None,
                };
                let host = fill(text("hostname")?).to_ascii_lowercase();
                let port = text("port")?.parse::<u16>().ok().filter(|p| *p != 0)?;
                let valid_host =
                    !host.is_empty() && host.len() <= 253 && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
                valid_host.then(|| (Server { host, port, security }, text("username").map(fill)))
            })
            .collect();
        found.sort_by_key(|(server, _)| server.security != "SSL_TLS");
        found.into_iter().next()
    };
    let (imap, username) = servers("incomingServer", "imap")?;
    let smtp = servers("outgoingServer", "smtp").map(|(server, _)| server);
    let username = username.filter(|name| !name.is_empty() && !name.eq_ignore_ascii_case(email));
    Some(Found { source: Source::Autoconfig, imap, smtp, username })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENT: &str = r#"<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="acme.example">
    <domain>acme.example</domain>
    <incomingServer type="pop3">
      <hostname>pop.acme.example</hostname><port>995</port><socketType>SSL</socketType>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname><port>143</port><socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>IMAP.acme.example</hostname><port>993</port><socketType>SSL</socketType>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.acme.example</hostname><port>25</port><socketType>plain</socketType>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.acme.example</hostname><port>587</port><socketType>STARTTLS</socketType>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;

    #[test]
    fn an_autoconfig_document_gives_its_encrypted_imap_and_smtp_servers() {
        let found = read_autoconfig(DOCUMENT, "ann@acme.example", "acme.example").expect("found");
        assert_eq!(found.imap, Server { host: "imap.acme.example".into(), port: 993, security: "SSL_TLS" });
        assert_eq!(found.smtp, Some(Server { host: "smtp.acme.example".into(), port: 587, security: "STARTTLS" }));
        assert_eq!(found.username.as_deref(), Some("ann"));
        let settings = found.settings();
        assert_eq!(settings["imapPort"], 993);
        assert_eq!(settings["smtpSecurity"], "STARTTLS");
    }

    #[test]
    fn the_email_address_as_user_name_is_left_to_the_default() {
        let document = DOCUMENT.replace("%EMAILLOCALPART%", "%EMAILADDRESS%");
        assert_eq!(read_autoconfig(&document, "ann@acme.example", "acme.example").unwrap().username, None);
    }

    #[test]
    fn documents_without_an_encrypted_imap_server_or_with_bad_hosts_give_nothing() {
        let plain = DOCUMENT.replace("<socketType>SSL</socketType>", "<socketType>plain</socketType>").replace("STARTTLS", "plain");
        assert_eq!(read_autoconfig(&plain, "ann@acme.example", "acme.example"), None);
        let bad_host = DOCUMENT.replace("imap.%EMAILDOMAIN%", "imap.acme.example/evil").replace("IMAP.acme.example", "x y");
        assert_eq!(read_autoconfig(&bad_host, "ann@acme.example", "acme.example"), None);
        for junk in ["", "<clientConfig>", "not xml at all", "<a><emailProvider/></a>"] {
            assert_eq!(read_autoconfig(junk, "ann@acme.example", "acme.example"), None, "{junk}");
        }
    }
}
