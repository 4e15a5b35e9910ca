//! GraphQL subscriptions over WebSocket, speaking `graphql-transport-ws` and the legacy
//! `graphql-ws`. The token comes in `connection_init` (`{"authorization": "Bearer …"}` or
//! `{"token": "…"}`); a
//! token that does not authenticate is refused (4403), no token means an anonymous
//! connection whose subscriptions that need an account fail with UNAUTHENTICATED. A
//! service-account token is refused too (4403): service accounts publish over HTTP and have
//! nothing to subscribe to. An address that sent too many bad tokens is refused with 4429.
//! The close code of a refused `connection_init` comes from its error's `extensions.code`
//! ([`close_code`]), never from its text.
//! Connections are closed cleanly (1001) when the server shuts down.
//! An authenticated connection counts towards its account's presence while it is open.
//! Subscriptions run through [`LiveExecutor`], so an idle one holds only its topic listener.

use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use async_graphql::Data;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt as _, Stream, StreamExt as _, future};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::context::{RequestAuth, bearer};
use super::live::LiveExecutor;
use crate::app::AppState;
use crate::availability::service::PresenceGuard;
use crate::fanout::{Change, Lagged, Topic, TopicStream};
use crate::identity::model::AccountId;
use crate::identity::service::ClientMeta;
use crate::service_accounts::model::Principal;
use crate::services::Services;

/// A subscription message is small; refuse anything larger than this.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The WebSocket close code for a refused `connection_init`, from its error's code.
pub fn close_code(error: &async_graphql::Error) -> u16 {
    let code = error.extensions.as_ref().and_then(|e| e.get("code"));
    match code {
        Some(async_graphql::Value::String(code)) => match code.as_str() {
            "UNAUTHENTICATED" => 4401,
            "FORBIDDEN" => 4403,
            "RATE_LIMITED" => 4429,
            "INTERNAL" => 1011,
            _ => 4400,
        },
        _ => 4400,
    }
}

fn forbidden() -> async_graphql::Error {
    async_graphql::Error::from(crate::error::Error::forbidden("this token cannot open a subscription connection"))
}

pub async fn upgrade(state: AppState, upgrade: WebSocketUpgrade, parts: &Parts) -> Response {
    let offered = parts.headers.get(header::SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(protocol) = offered.split(',').find_map(|p| WebSocketProtocols::from_str(p.trim()).ok()) else {
        return (StatusCode::BAD_REQUEST, "offer the graphql-transport-ws or graphql-ws subprotocol").into_response();
    };
    let meta = crate::transport::client_meta(parts, &state.config.trusted_proxies);
    upgrade
        .protocols([protocol.sec_websocket_protocol()])
        // Small buffers: an idle subscriber should cost kilobytes, not tungstenite's 128 KiB
        // default. Subscription messages are small; a larger one is read in several reads.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let tracker = state.tasks.clone();
            tracker.track_future(serve(state, socket, protocol, meta))
        })
}

/// Sets the connection up and returns the future that serves it. The set-up is not part of
/// that future: an async fn keeps room for its arguments and every moved-from local for as
/// long as it runs, and an idle connection should cost only what it holds.
fn serve(state: AppState, socket: WebSocket, protocol: WebSocketProtocols, meta: ClientMeta) -> BoxFuture<'static, ()> {
    let (sink, stream) = socket.split();
    let stopping = state.shutdown.clone();
    let input = stream.take_until(stopping.clone().cancelled_owned()).take_while(|m| future::ready(m.is_ok())).filter_map(|m| {
        future::ready(match m {
            Ok(Message::Text(t)) => Some(t.as_bytes().to_vec()),
            Ok(Message::Binary(b)) => Some(b.to_vec()),
            _ => None,
        })
    });
    let services = state.services.clone();
    // The credential the connection authenticated with, re-checked when its account's
    // credentials change.
    let (authenticated, watched) = watch::channel::<Option<(String, AccountId)>>(None);
    // Set when `connection_init` is refused: the close code its error's code calls for.
    let refused = Arc::new(OnceLock::<u16>::new());
    let refusal = refused.clone();
    let on_init = move |payload: serde_json::Value| async move {
        let result = init(&services, &authenticated, meta, payload).await;
        if let Err(e) = &result {
            let _ = refusal.set(close_code(e));
        }
        result
    };
    let messages =
        Box::pin(async_graphql::http::WebSocket::new(LiveExecutor(state.schema.clone()), input, protocol).on_connection_init(on_init));
    Box::pin(pump(state.services, stopping, sink, messages, watched, refused))
}

/// Authenticates `connection_init`'s credential, if it has one, into the connection's data.
async fn init(
    services: &Services,
    authenticated: &watch::Sender<Option<(String, AccountId)>>,
    meta: ClientMeta,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    // `{"authorization": "Bearer …"}` as a header would be, or a bare `{"token": "…"}`
    // (`authToken` in some Apollo set-ups).
    let header = ["authorization", "Authorization"].iter().find_map(|k| payload.get(*k).and_then(|v| v.as_str()));
    let bare = ["token", "authToken"].iter().find_map(|k| payload.get(*k).and_then(|v| v.as_str()));
    let credential = match (header, bare) {
        (Some(value), _) => Some(bearer(Some(value)).ok_or_else(forbidden)?),
        (None, Some(token)) => Some(token.trim().to_owned()),
        (None, None) => None,
    };
    let viewer = match credential {
        None => None,
        Some(token) => match Box::pin(services.authenticate_principal_from(&token, meta.ip.as_deref())).await? {
            Some(Principal::User(viewer)) => {
                authenticated.send_replace(Some((token.clone(), viewer.account_id())));
                Some(viewer)
            }
            Some(Principal::ServiceAccount(_)) | None => return Err(forbidden()),
        },
    };
    let mut data = Data::default();
    data.insert(RequestAuth::resolved(viewer, meta));
    Ok(data)
}

/// Serves the connection; while it is authenticated it counts towards its account's presence,
/// and the count is released before the task ends.
async fn pump(
    services: Arc<Services>,
    stopping: CancellationToken,
    sink: SplitSink<WebSocket, Message>,
    messages: Pin<Box<dyn Stream<Item = WsMessage> + Send>>,
    watched: watch::Receiver<Option<(String, AccountId)>>,
    refused: Arc<OnceLock<u16>>,
) {
    let mut presence = None;
    relay(services, stopping, sink, messages, watched, refused, &mut presence).await;
    if let Some(guard) = presence {
        guard.release().await;
    }
}

/// Relays the protocol's messages to the socket, and closes it when the credential the
/// connection authenticated with stops working.
async fn relay(
    services: Arc<Services>,
    stopping: CancellationToken,
    mut sink: SplitSink<WebSocket, Message>,
    mut messages: Pin<Box<dyn Stream<Item = WsMessage> + Send>>,
    mut watched: watch::Receiver<Option<(String, AccountId)>>,
    refused: Arc<OnceLock<u16>>,
    presence: &mut Option<PresenceGuard>,
) {
    // Listens to the account's topic once the connection has authenticated.
    let mut changes: Option<TopicStream> = None;
    loop {
        let message = tokio::select! {
            message = messages.next() => match message {
                Some(m) => m,
                None => break,
            },
            Ok(()) = watched.changed(), if changes.is_none() => {
                let account_id = watched.borrow_and_update().as_ref().map(|(_, id)| *id);
                if let Some(account_id) = account_id {
                    changes = Some(services.fanout.subscribe(Topic::Account(account_id)));
                    *presence = Some(services.availability.connected(account_id));
                }
                continue;
            }
            Some(change) = next_change(&mut changes) => {
                // Lagged (Err): a credential change may have been among those missed.
                if !matches!(change, Ok(Change::Sessions { .. } | Change::Account { .. }) | Err(_)) {
                    continue;
                }
                let current = watched.borrow().clone();
                let Some((token, _)) = current else { continue };
                // Boxed: the connection's future would otherwise keep room for this rare check.
                if matches!(Box::pin(services.authenticate(&token)).await, Ok(None)) {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 4401, reason: "session ended".into() }))).await;
                    let _ = sink.close().await;
                    return;
                }
                continue;
            }
        };
        let message = match message {
            WsMessage::Text(text) => Message::Text(text.into()),
            WsMessage::Close(code, reason) => {
                let code = refused.get().copied().unwrap_or(code);
                Message::Close(Some(CloseFrame { code, reason: reason.into() }))
            }
        };
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            let _ = sink.close().await;
            return;
        }
    }
    // The legacy protocol answers a refused `connection_init` with a message and ends: the
    // close frame still carries the refusal's code.
    if let Some(&code) = refused.get() {
        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: "connection refused".into() }))).await;
    } else if stopping.is_cancelled() {
        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }))).await;
    }
    let _ = sink.close().await;
}

/// The next change on the connection's topic; pending until it has one.
async fn next_change(changes: &mut Option<TopicStream>) -> Option<Result<Change, Lagged>> {
    match changes {
        Some(stream) => stream.next().await,
        None => future::pending().await,
    }
}
