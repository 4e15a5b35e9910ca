//! How the connector takes servers that misbehave: a scripted HTTP server answers each
//! request as the test says, so every failure is typed and none panics.

use std::sync::Arc;
use std::time::Duration;

use concierge_connector_caldav::{CaldavConnector, Options};
use concierge_connector_sdk::{Account, CalendarConnector, ConnectorError, Credentials, OutboundPolicy, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the scripted server answers to one request (its head and body, as text).
pub(crate) type Script = dyn Fn(&str) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync;

/// Serves `script` on a free loopback port; the base URL.
pub(crate) async fn scripted_server(script: Arc<Script>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let script = Arc::clone(&script);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = vec![0u8; 16384];
                loop {
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, headers, body) = script(&String::from_utf8_lossy(&seen));
                let mut answer = format!("HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
                for (k, v) in headers {
                    answer.push_str(&format!("{k}: {v}\r\n"));
                }
                answer.push_str("\r\n");
                answer.push_str(&body);
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/")
}

/// The scripted servers listen on 127.0.0.1, which the outbound policy refuses by default.
fn on_loopback() -> Options {
    Options { outbound: OutboundPolicy::allowing(["127.0.0.1/32".parse().expect("CIDR")]), ..Options::default() }
}

/// A listener on `ip` that counts the connections made to it; its port and the count.
async fn counting_listener(ip: &str) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(tcp);
        }
    });
    (port, hits)
}

fn account(url: &str) -> Account {
    let settings = serde_json::json!({ "url": url }).as_object().cloned().unwrap_or_default();
    Account {
        address: "zoe@lab.test".into(),
        settings,
        credentials: Credentials::Password { username: "zoe".into(), password: Secret::new("zoe-secret") },
    }
}

const DISCOVERY: &str = r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/</d:href><d:propstat><d:prop><d:current-user-principal><d:href>/zoe/</d:href></d:current-user-principal><c:calendar-home-set><d:href>/zoe/</d:href></c:calendar-home-set></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;

/// A CalDAV server as far as sign-in goes, answering `then` to everything after it.
fn signs_in_then(then: (u16, Vec<(&'static str, String)>, String)) -> Arc<Script> {
    Arc::new(
        move |request: &str| {
            if request.contains("current-user-principal") { (207, Vec::new(), DISCOVERY.to_owned()) } else { then.clone() }
        },
    )
}

#[tokio::test]
async fn too_many_requests_is_throttled_with_the_servers_delay() {
    let url = scripted_server(Arc::new(|_: &str| (429, vec![("Retry-After", "7".to_owned())], String::new()))).await;

    let error = CaldavConnector::generic(on_loopback()).open(&account(&url)).await.err().expect("open must fail");

    match error {
        ConnectorError::Throttled { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_xml_is_a_protocol_error() {
    let url = scripted_server(signs_in_then((207, Vec::new(), "<d:multistatus xmlns:d=\"DAV:\"><d:response>".into()))).await;
    let mut session = CaldavConnector::generic(on_loopback()).open(&account(&url)).await.expect("open");

    let error = session.calendars().await.expect_err("garbage");

    assert_eq!(error.code(), "PROTOCOL_ERROR", "{error}");
}

#[tokio::test]
async fn a_server_in_trouble_is_unreachable_for_now() {
    let url = scripted_server(signs_in_then((503, Vec::new(), "down for maintenance".into()))).await;
    let mut session = CaldavConnector::generic(on_loopback()).open(&account(&url)).await.expect("open");

    let error = session.changes("/zoe/work/", None, &[]).await.expect_err("503");

    assert_eq!(error.code(), "UNREACHABLE", "{error}");
    assert!(!error.to_string().contains("zoe-secret"));
}

#[tokio::test]
async fn a_server_that_does_not_speak_tls_on_an_https_address_is_a_tls_error() {
    // Answers plain HTTP at once, whatever the client sends (a TLS ClientHello here).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
        }
    });

    let error =
        CaldavConnector::generic(on_loopback()).open(&account(&format!("https://127.0.0.1:{port}/"))).await.err().expect("open must fail");

    assert_eq!(error.code(), "TLS_FAILED", "{error}");
}

#[tokio::test]
async fn a_url_on_a_refused_address_is_a_settings_error_before_any_connection() {
    let (port, hits) = counting_listener("127.0.0.1").await;
    let strict = CaldavConnector::generic(Options::default());

    for url in [format!("http://127.0.0.1:{port}/dav/"), format!("http://localhost:{port}/dav/")] {
        let error = strict.open(&account(&url)).await.err().expect("refused");
        match error {
            ConnectorError::Settings(f) => assert_eq!(f.field, "url", "{url}"),
            other => panic!("{url}: expected a settings error, got {other:?}"),
        }
    }

    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_not_followed() {
    // 127.0.0.2 is loopback too, but outside the allow list (127.0.0.1/32).
    let (port, hits) = counting_listener("127.0.0.2").await;
    let url =
        scripted_server(Arc::new(move |_: &str| (301, vec![("Location", format!("http://127.0.0.2:{port}/dav/"))], String::new()))).await;

    let error = CaldavConnector::generic(on_loopback()).open(&account(&url)).await.err().expect("open must fail");

    match error {
        ConnectorError::Settings(f) => assert_eq!(f.field, "url"),
        other => panic!("expected a settings error, got {other:?}"),
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}
