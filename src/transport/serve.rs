//! Serving connections with hyper directly (axum::serve has no knobs): HTTP/1.1 with
//! WebSocket upgrades, a header-read timeout, the peer's address for handlers, and a graceful
//! stop in which in-flight requests finish and idle connections close.

use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// Serves `router` on `listener` until `stop` is cancelled, then waits for the connections
/// to finish their requests in flight (the caller bounds that wait).
pub async fn serve(listener: TcpListener, router: Router, header_read_timeout: Duration, stop: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    backoff_after(e).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        connections.spawn(serve_connection(stream, peer, router.clone(), header_read_timeout, stop.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request.map(Body::new))
    });
    let mut builder = http1::Builder::new();
    // Without it a client that never finishes its headers holds the connection (and its
    // memory) forever; the timer is what makes hyper enforce the timeout at all.
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service).with_upgrades());
    tokio::select! {
        result = connection.as_mut() => finished(result),
        () = stop.cancelled() => {
            // Finish the request in flight (if any), then close.
            connection.as_mut().graceful_shutdown();
            finished(connection.await);
        }
    }
}

fn finished(result: hyper::Result<()>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A failed accept: the peer's own trouble (reset before we got to it) needs no pause; running
/// out of file descriptors does, or the loop would spin.
async fn backoff_after(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
