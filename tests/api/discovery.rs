//! `discoverMailSettings` beyond presets: a domain's autoconfig document and its SRV records,
//! answered by a DNS server and an HTTPS server this test starts on loopback.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{TestApp, codes, error_of};

/// Where the autoconfig server listens (the gateway may reach it), and an address beside it
/// the gateway's outbound policy refuses, with the same server behind it to count requests.
const ALLOWED: Ipv4Addr = Ipv4Addr::new(127, 0, 44, 3);
const REFUSED: Ipv4Addr = Ipv4Addr::new(127, 0, 44, 4);

/// A DNS server on loopback answering A and SRV questions from a fixed table (names in lower
/// case, with the final dot). A name it has no record of at all is NXDOMAIN.
struct Dns {
    address: SocketAddr,
}

type Records = HashMap<(String, RecordType), Vec<RData>>;

impl Dns {
    async fn start(records: Records) -> Dns {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind dns");
        let address = socket.local_addr().expect("dns address");
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buffer).await {
                let Ok(request) = Message::from_vec(&buffer[..n]) else { continue };
                let mut response = Message::new();
                response
                    .set_id(request.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(request.op_code())
                    .set_recursion_desired(request.recursion_desired())
                    .set_recursion_available(true)
                    .set_authoritative(true);
                response.add_queries(request.queries().to_vec());
                let mut known = false;
                for query in request.queries() {
                    let name = query.name().to_ascii().to_ascii_lowercase();
                    known |= records.keys().any(|(n, _)| *n == name);
                    for data in records.get(&(name, query.query_type())).into_iter().flatten() {
                        response.add_answer(Record::from_rdata(query.name().clone(), 60, data.clone()));
                    }
                }
                if !known {
                    response.set_response_code(ResponseCode::NXDomain);
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        Dns { address }
    }
}

fn a(ip: Ipv4Addr) -> RData {
    RData::A(A(ip))
}

fn srv(priority: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(priority, 0, port, Name::from_ascii(target).expect("target")))
}

/// An HTTPS server on port 443 of both loopback addresses, with a self-signed certificate made
/// the common way for every name the tests use. It answers by the request's Host and path,
/// and keeps every request it was sent as "host path" (with the address it came in on).
struct Autoconfig {
    certificate: std::path::PathBuf,
    requests: Arc<Mutex<Vec<(Ipv4Addr, String)>>>,
    _dir: tempfile::TempDir,
}

impl Autoconfig {
    async fn start(documents: HashMap<String, String>) -> Autoconfig {
        let dir = tempfile::tempdir().expect("dir");
        let names: Vec<String> = documents.keys().map(|k| format!("DNS:{}", k.split_once(' ').map_or(k.as_str(), |(h, _)| h))).collect();
        let (acceptor, cert) = crate::helpers::self_signed_acceptor(dir.path(), "autoconfig lab", &names.join(",")).await;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let documents = Arc::new(documents);
        for ip in [ALLOWED, REFUSED] {
            let listener = tokio::net::TcpListener::bind((ip, 443)).await.expect("bind port 443 on loopback (the tests run as root)");
            let (acceptor, requests, documents) = (acceptor.clone(), requests.clone(), documents.clone());
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, requests, documents) = (acceptor.clone(), requests.clone(), documents.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                            if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                                return;
                            }
                            head.push(byte[0]);
                        }
                        let head = String::from_utf8_lossy(&head).to_string();
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let host = head
                            .lines()
                            .find_map(|l| l.strip_prefix("host: ").or_else(|| l.strip_prefix("Host: ")))
                            .unwrap_or("")
                            .trim()
                            .to_owned();
                        let path_only = path.split('?').next().unwrap_or("").to_owned();
                        requests.lock().unwrap().push((ip, format!("{host} {path}")));
                        let answer = match documents.get(&format!("{host} {path_only}")) {
                            Some(body) => format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            ),
                            None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
                        };
                        let _ = tls.write_all(answer.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
        }
        Autoconfig { certificate: cert, requests, _dir: dir }
    }

    fn requests(&self) -> Vec<(Ipv4Addr, String)> {
        self.requests.lock().unwrap().clone()
    }
}

fn document(imap_host: &str, username: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="%EMAILDOMAIN%">
    <domain>%EMAILDOMAIN%</domain>
    <displayName>Lab mail</displayName>
    <incomingServer type="imap">
      <hostname>{imap_host}</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>{username}</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.%EMAILDOMAIN%</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>{username}</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#
    )
}

const DISCOVER: &str = "query($e: String!) { discoverMailSettings(email: $e) { domain source settings connector { kind } } }";

#[tokio::test]
async fn discovery_reads_autoconfig_and_srv_records_under_the_outbound_policy() {
    let mut records: Records = HashMap::new();
    let mut add = |name: &str, kind: RecordType, data: RData| records.entry((format!("{name}."), kind)).or_default().push(data);
    // An autoconfig host, a domain serving the well-known path itself, and SRV records.
    add("autoconfig.auto.test", RecordType::A, a(ALLOWED));
    add("known.test", RecordType::A, a(ALLOWED));
    add("_imaps._tcp.srv.test", RecordType::SRV, srv(0, 0, "."));
    add("_imap._tcp.srv.test", RecordType::SRV, srv(0, 143, "imap.srv.test."));
    add("_submissions._tcp.srv.test", RecordType::SRV, srv(10, 465, "smtp-b.srv.test."));
    add("_submissions._tcp.srv.test", RecordType::SRV, srv(5, 465, "smtp-a.srv.test."));
    add("_submission._tcp.srv.test", RecordType::SRV, srv(0, 587, "smtp-c.srv.test."));
    // Hostile: an autoconfig host pointing inside the network (the policy refuses it), and one
    // serving a document far too large. Each also has SRV records to fall back on, or none.
    add("autoconfig.inside.test", RecordType::A, a(REFUSED));
    add("autoconfig.big.test", RecordType::A, a(ALLOWED));
    add("_imaps._tcp.big.test", RecordType::SRV, srv(0, 993, "imap.big.test."));
    let dns = Dns::start(records).await;

    let mut documents = HashMap::new();
    documents.insert("autoconfig.auto.test /mail/config-v1.1.xml".to_owned(), document("imap.%EMAILDOMAIN%", "%EMAILLOCALPART%"));
    documents.insert("known.test /.well-known/autoconfig/mail/config-v1.1.xml".to_owned(), document("mail.known.test", "%EMAILADDRESS%"));
    documents.insert("autoconfig.inside.test /mail/config-v1.1.xml".to_owned(), document("imap.inside.test", "%EMAILADDRESS%"));
    documents.insert(
        "autoconfig.big.test /mail/config-v1.1.xml".to_owned(),
        format!("{}<!--{}-->", document("imap.big.test", "x"), "x".repeat(100_000)),
    );
    let autoconfig = Autoconfig::start(documents).await;

    let app = TestApp::spawn_with(|c| {
        c.dns_servers = vec![dns.address];
        c.outbound_allow = vec![format!("{ALLOWED}/32").parse().unwrap()];
        c.mail_ca_file = Some(autoconfig.certificate.clone());
    })
    .await;
    let ada = app.user("ada@example.com").await;
    let discover = |email: &'static str| {
        let (app, token) = (&app, ada.token.clone());
        async move { app.gql(Some(&token), DISCOVER, json!({ "e": email })).await }
    };

    // From autoconfig.<domain>, with the address in the query and the user name filled in.
    let r = discover("ann@Auto.test").await;
    let found = &r["data"]["discoverMailSettings"];
    assert_eq!(found["source"], "AUTOCONFIG", "{r}");
    assert_eq!(found["domain"], "auto.test");
    assert_eq!(found["connector"]["kind"], "imap");
    assert_eq!(
        found["settings"],
        json!({ "imapHost": "imap.auto.test", "imapPort": 993, "imapSecurity": "SSL_TLS",
                "smtpHost": "smtp.auto.test", "smtpPort": 587, "smtpSecurity": "STARTTLS", "username": "ann" })
    );
    assert!(
        autoconfig.requests().contains(&(ALLOWED, "autoconfig.auto.test /mail/config-v1.1.xml?emailaddress=ann%40Auto.test".into())),
        "{:?}",
        autoconfig.requests()
    );
    // Another address at the domain gets its own user name, not the first one's.
    let r = discover("bob@auto.test").await;
    assert_eq!(r["data"]["discoverMailSettings"]["settings"]["username"], "bob", "{r}");

    // From the domain's own well-known path; the address as user name is the form's default.
    let r = discover("bob@known.test").await;
    let found = &r["data"]["discoverMailSettings"];
    assert_eq!(found["source"], "AUTOCONFIG", "{r}");
    assert_eq!(found["settings"]["imapHost"], "mail.known.test");
    assert_eq!(found["settings"].get("username"), None, "{r}");

    // From SRV records: a service declared absent ("."), the lowest priority, implicit TLS first.
    let r = discover("cy@srv.test").await;
    let found = &r["data"]["discoverMailSettings"];
    assert_eq!(found["source"], "SRV", "{r}");
    assert_eq!(
        found["settings"],
        json!({ "imapHost": "imap.srv.test", "imapPort": 143, "imapSecurity": "STARTTLS",
                "smtpHost": "smtp-a.srv.test", "smtpPort": 465, "smtpSecurity": "SSL_TLS" })
    );

    // An autoconfig host inside the network is never fetched; nothing else says: null.
    let r = discover("eve@inside.test").await;
    assert_eq!(r["data"]["discoverMailSettings"], Value::Null, "{r}");
    assert!(autoconfig.requests().iter().all(|(ip, _)| *ip != REFUSED), "the refused address was reached: {:?}", autoconfig.requests());

    // A document beyond the size limit is not read; the SRV records answer instead.
    let r = discover("dan@big.test").await;
    let found = &r["data"]["discoverMailSettings"];
    assert_eq!(found["source"], "SRV", "{r}");
    assert_eq!(found["settings"]["imapHost"], "imap.big.test");
    assert_eq!(found["settings"].get("smtpHost"), None, "no SMTP service was offered: {r}");

    // A domain no record names: null. A preset still comes first (Yahoo's domain is served
    // by its preset, whatever DNS says).
    let r = discover("who@nothing-here.test").await;
    assert_eq!(r["data"]["discoverMailSettings"], Value::Null, "{r}");
    let r = discover("who@yahoo.com").await;
    assert_eq!(r["data"]["discoverMailSettings"]["source"], "PRESET", "{r}");

    // Anonymous callers and malformed addresses are refused before anything is looked up.
    let r = app.gql(None, DISCOVER, json!({ "e": "ann@auto.test" })).await;
    assert_eq!(codes(&r), ["UNAUTHENTICATED"], "{r}");
    for bad in ["auto.test", "@auto.test", "ann@", &format!("ann@{}.test", "a".repeat(300))] {
        let r = app.gql(Some(&ada.token), DISCOVER, json!({ "e": bad })).await;
        assert_eq!(error_of(&r), ("BAD_USER_INPUT".into(), Some("email".into())), "{bad}: {r}");
    }
}

#[tokio::test]
async fn one_account_cannot_make_the_gateway_look_up_domains_without_limit() {
    let dns = Dns::start(HashMap::new()).await;
    let app = TestApp::spawn_with(|c| c.dns_servers = vec![dns.address]).await;
    let (ada, bea) = (app.user("ada@example.com").await, app.user("bea@example.com").await);
    let mut limited = None;
    for i in 0..40 {
        let r = app.gql(Some(&ada.token), DISCOVER, json!({ "e": format!("x@domain-{i}.test") })).await;
        if codes(&r) == ["RATE_LIMITED"] {
            limited = Some(i);
            break;
        }
        assert_eq!(r["data"]["discoverMailSettings"], Value::Null, "{r}");
    }
    assert_eq!(limited, Some(30), "the 31st lookup in ten minutes is refused");
    // Another account is not held back by the first one's lookups.
    let r = app.gql(Some(&bea.token), DISCOVER, json!({ "e": "x@domain-0.test" })).await;
    assert_eq!(r["data"]["discoverMailSettings"], Value::Null, "{r}");
    assert!(r.get("errors").is_none(), "{r}");
}
