//! Signing in and finding calendars: what `open` and `calendars` make of real servers, and
//! of addresses that are not CalDAV servers.

use concierge_connector_caldav::{CaldavConnector, Options};
use concierge_connector_sdk::{CalendarConnector, ConnectorError, Credentials, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::lab::Lab;

#[tokio::test]
async fn calendars_are_listed_with_their_name_colour_and_write_access() {
    let lab = Lab::start();
    let alice = lab.user().await;
    let work = lab.client(&alice).make_calendar("Work", "work", Some("#ff8800cc")).await;
    let shared = lab.admin().make_calendar_for(&lab.client(&alice), "Holidays", "ro-holidays").await;

    let mut session = lab.session(&alice).await;
    let mut calendars = session.calendars().await.expect("calendars");
    calendars.sort_by(|a, b| a.id.cmp(&b.id));

    assert_eq!(calendars.len(), 2, "{calendars:?}");
    let (holidays, work_cal) = (&calendars[0], &calendars[1]);
    assert_eq!(work_cal.id, work);
    assert_eq!(work_cal.name, "Work");
    assert_eq!(work_cal.colour.as_deref(), Some("#FF8800"));
    assert!(work_cal.writable);
    assert_eq!(holidays.id, shared);
    assert_eq!(holidays.name, "Holidays");
    assert!(!holidays.writable, "the lab's rights make ro-* calendars read-only for their owner");
}

#[tokio::test]
async fn discovery_starts_from_the_server_the_principal_or_a_calendar_address() {
    let lab = Lab::start();
    let bob = lab.user().await;
    let id = lab.client(&bob).make_calendar("Main", "main", None).await;
    let base = lab.url.trim_end_matches('/');

    for start in [lab.url.clone(), format!("{base}/{}/", bob.name), format!("{base}{id}")] {
        let mut session = lab.connector().open(&lab.account_at(&bob, &start)).await.unwrap_or_else(|e| panic!("open at {start}: {e}"));
        let ids: Vec<String> = session.calendars().await.expect("calendars").into_iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![id.clone()], "starting at {start}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error() {
    let lab = Lab::start();
    let carol = lab.user().await;
    let mut account = lab.account(&carol);
    account.credentials = Credentials::Password { username: carol.name.clone(), password: Secret::new("not-her-password") };

    let error = lab.connector().open(&account).await.err().expect("open must fail");

    assert_eq!(error.code(), "AUTHENTICATION_FAILED", "{error}");
    assert!(!error.to_string().contains("not-her-password"));
}

#[tokio::test]
async fn an_address_that_is_not_a_caldav_server_is_a_settings_error_on_url() {
    let lab = Lab::start();
    let dave = lab.user().await;
    let answers = [
        // A web site: a 404 page.
        http("404 Not Found", "text/html", "<html><body>Not here</body></html>"),
        // An application that fails on a method it does not know.
        http("500 Internal Server Error", "text/plain", "PROPFIND?"),
        // A 207 that is not a multistatus.
        http("207 Multi-Status", "text/html", "<html>hello</html>"),
        // Not HTTP at all: another service's port (an IMAP greeting).
        "* OK IMAP4rev1 Service Ready\r\n".to_owned(),
    ];
    for answer in answers {
        let server = server_answering(answer.clone()).await;

        let error = lab.connector().open(&lab.account_at(&dave, &server)).await.err().expect("open must fail");

        match error {
            ConnectorError::Settings(field) => assert_eq!(field.field, "url", "{answer}"),
            other => panic!("expected a settings error on url for {answer:?}, got {other:?}"),
        }
    }
}

fn http(status: &str, content_type: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let lab = Lab::start();
    let erin = lab.user().await;
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };

    let error = lab.connector().open(&lab.account_at(&erin, &format!("http://127.0.0.1:{port}/"))).await.err().expect("open must fail");

    assert_eq!(error.code(), "UNREACHABLE", "{error}");
}

#[tokio::test]
async fn plain_http_to_a_remote_server_is_refused_unless_the_operator_allows_it() {
    let settings = serde_json::json!({ "url": "http://calendar.example.com/" }).as_object().cloned().unwrap_or_default();

    let refused = CaldavConnector::generic(Options::default()).validate(&settings).expect_err("refused");
    let allowed = CaldavConnector::generic(Options { allow_plaintext_remote: true, ..Options::default() }).validate(&settings);

    assert_eq!(refused.field, "url");
    assert!(allowed.is_ok());
}

/// A server that answers every request with `answer`, as it is. Its URL.
async fn server_answering(answer: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/")
}
