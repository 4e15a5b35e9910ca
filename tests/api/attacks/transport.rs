//! Section 6, the HTTP transport: a client that never finishes its headers is cut off.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// Reads until the server closes the connection (EOF or reset) and returns what came, or
/// `None` if it is still open after `within`.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    match tokio::time::timeout(within, socket.read_to_end(&mut received)).await {
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();

    socket.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n").await.unwrap();

    let answer = closed_within(&mut socket, Duration::from_secs(10)).await;
    assert!(answer.is_some(), "the server still holds a connection whose headers never ended");
}

#[tokio::test]
async fn an_idle_connection_that_sends_nothing_is_closed_too() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout_secs = 1).await;
    let mut socket = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();

    let answer = closed_within(&mut socket, Duration::from_secs(10)).await;

    assert_eq!(answer.as_deref(), Some(""), "closed without an answer");
}
