//! A stand-in push service (RFC 8030) on 127.0.0.1, in the test process: it holds one browser's
//! subscription keys, checks each push as a real service would (aes128gcm, a VAPID token signed
//! for its origin), decrypts it and records what arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike as _, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;
use web_push_native::jwt_simple::common::VerificationOptions;
use web_push_native::jwt_simple::prelude::{Clock, Duration as JwtDuration};
use web_push_native::p256::elliptic_curve::rand_core::{OsRng, RngCore as _};
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint as _;
use web_push_native::{Auth, p256};

/// One browser's push subscription, served by a real HTTP server on a random port. The server
/// stops when this is dropped.
pub struct PushEndpoint {
    /// Where to post, e.g. `http://127.0.0.1:PORT/push/<random>`.
    pub url: String,
    /// The browser's public key: the uncompressed P-256 point, base64url without padding.
    pub p256dh: String,
    /// The browser's 16-byte auth secret, base64url without padding.
    pub auth: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

/// A push that passed every check, was decrypted and was answered with a 2xx status.
#[derive(Clone, Debug)]
pub struct Received {
    pub payload: serde_json::Value,
    pub topic: Option<String>,
    pub urgency: Option<String>,
    pub ttl: Option<String>,
    /// The `k=` of the `Authorization: vapid` header: the sender's application server key.
    pub vapid_key: String,
}

struct Shared {
    /// The VAPID token's required `aud`: `http://127.0.0.1:PORT`.
    origin: String,
    secret: p256::SecretKey,
    auth: Auth,
    state: Mutex<Log>,
    arrived: Notify,
}

struct Log {
    status: u16,
    attempts: usize,
    received: Vec<Received>,
}

impl PushEndpoint {
    /// Starts the server with a fresh browser key pair and auth secret; it answers 201.
    pub async fn start() -> PushEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the push endpoint");
        let port = listener.local_addr().expect("push endpoint address").port();
        let secret = p256::SecretKey::random(&mut OsRng);
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        let mut capability = [0u8; 16];
        OsRng.fill_bytes(&mut capability);
        let path = format!("/push/{}", URL_SAFE_NO_PAD.encode(capability));
        let origin = format!("http://127.0.0.1:{port}");

        let p256dh = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        let auth_b64 = URL_SAFE_NO_PAD.encode(auth);
        let shared = Arc::new(Shared {
            origin: origin.clone(),
            secret,
            auth: Auth::from(auth),
            state: Mutex::new(Log { status: 201, attempts: 0, received: Vec::new() }),
            arrived: Notify::new(),
        });
        let app = Router::new().route(&path, post(deliver)).with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the push endpoint serves");
        });
        PushEndpoint { url: format!("{origin}{path}"), p256dh, auth: auth_b64, shared, server }
    }

    /// Answers subsequent pushes that pass the checks with `status` (201 until changed).
    pub fn answer_with(&self, status: u16) {
        StatusCode::from_u16(status).expect("a valid HTTP status");
        self.log().status = status;
    }

    /// The pushes accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.log().received.clone()
    }

    /// Waits until `n` pushes have been accepted and returns them all; panics at `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the check, so a push landing in between still wakes it.
            let arrived = self.shared.arrived.notified();
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the push endpoint expected {n} accepted pushes within {timeout:?} but got {} ({} attempts in all)",
                    self.received().len(),
                    self.attempts()
                );
            }
        }
    }

    /// Every POST to the endpoint, including those refused or answered with an error status.
    pub fn attempts(&self) -> usize {
        self.log().attempts
    }

    /// Waits until `n` POSTs have arrived, whatever they were answered; panics at `timeout`.
    pub async fn wait_for_attempts(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let attempts = self.attempts();
            if attempts >= n {
                return attempts;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("the push endpoint expected {n} attempts within {timeout:?} but got {}", self.attempts());
            }
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.shared.state.lock().expect("push endpoint state")
    }
}

impl Drop for PushEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn deliver(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let checked = shared.check(&headers, body);
    let answer = {
        let mut log = shared.state.lock().expect("push endpoint state");
        log.attempts += 1;
        match checked {
            Err(reason) => (StatusCode::BAD_REQUEST, reason),
            Ok(received) => {
                let status = StatusCode::from_u16(log.status).expect("checked in answer_with");
                if status.is_success() {
                    log.received.push(received);
                }
                (status, String::new())
            }
        }
    };
    shared.arrived.notify_waiters();
    answer
}

impl Shared {
    /// The push service's checks; an error names the first one that failed.
    fn check(&self, headers: &HeaderMap, body: Bytes) -> Result<Received, String> {
        let encoding = header(headers, "content-encoding");
        if encoding.as_deref() != Some("aes128gcm") {
            return Err(format!("Content-Encoding must be aes128gcm, not {encoding:?}"));
        }
        let authorization = header(headers, "authorization").ok_or("no Authorization header")?;
        let (token, key) = vapid_params(&authorization).ok_or_else(|| format!("not a vapid Authorization: {authorization}"))?;
        let key_bytes = URL_SAFE_NO_PAD.decode(key).map_err(|_| "k= is not base64url")?;
        let public = ES256PublicKey::from_bytes(&key_bytes).map_err(|_| "k= is not a P-256 public key")?;
        let options = VerificationOptions { allowed_audiences: Some([self.origin.clone()].into()), ..Default::default() };
        let claims = public
            .verify_token::<NoCustomClaims>(token, Some(options))
            .map_err(|e| format!("VAPID token refused (want aud {}): {e}", self.origin))?;
        // RFC 8292 §2: no more than 24 hours ahead.
        let expires_at = claims.expires_at.ok_or("the VAPID token has no exp")?;
        if expires_at > Clock::now_since_epoch() + JwtDuration::from_hours(24) {
            return Err("the VAPID token expires more than 24 hours ahead".into());
        }
        let plaintext = web_push_native::decrypt(body.to_vec(), &self.secret, &self.auth).map_err(|e| format!("cannot decrypt: {e}"))?;
        let payload = serde_json::from_slice(&plaintext).map_err(|e| format!("the payload is not JSON: {e}"))?;
        Ok(Received {
            payload,
            topic: header(headers, "topic"),
            urgency: header(headers, "urgency"),
            ttl: header(headers, "ttl"),
            vapid_key: key.to_owned(),
        })
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// `vapid t=<jwt>, k=<key>` (parameters in either order) → (jwt, key).
fn vapid_params(authorization: &str) -> Option<(&str, &str)> {
    let (scheme, params) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return None;
    }
    let (mut token, mut key) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=')? {
            ("t", value) => token = Some(value),
            ("k", value) => key = Some(value),
            _ => {}
        }
    }
    Some((token?, key?))
}

mod stand_in {
    //! The stand-in itself, driven by the gateway's real sender.

    use std::sync::Arc;
    use std::time::Duration;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use concierge::notifications::push::{PushOutcome, PushSender, Vapid};
    use serde_json::json;
    use web_push_native::jwt_simple::algorithms::ES256KeyPair;
    use web_push_native::{Auth, WebPushBuilder, p256};

    use super::PushEndpoint;

    const WAIT: Duration = Duration::from_secs(5);

    fn sender() -> PushSender {
        // The stand-in listens on loopback, which the outbound policy refuses by default.
        let loopback = concierge_connector_sdk::OutboundPolicy::allowing(["127.0.0.0/8".parse().expect("CIDR")]);
        PushSender::new(Arc::new(Vapid::from_seed([9; 32], "mailto:ops@example.com".into())), loopback)
    }

    async fn push(sender: &PushSender, endpoint: &PushEndpoint, payload: &serde_json::Value) -> PushOutcome {
        let p256dh = URL_SAFE_NO_PAD.decode(&endpoint.p256dh).expect("p256dh");
        let auth = URL_SAFE_NO_PAD.decode(&endpoint.auth).expect("auth");
        let body = serde_json::to_vec(payload).expect("json");
        sender.send(&endpoint.url, &p256dh, &auth, &body, "notification:1", Duration::from_secs(90), "high").await
    }

    #[tokio::test]
    async fn a_push_from_the_gateway_arrives_decrypted_with_its_headers() {
        let endpoint = PushEndpoint::start().await;
        let sender = sender();

        let outcome = push(&sender, &endpoint, &json!({ "title": "Hello" })).await;

        assert_eq!(outcome, PushOutcome::Delivered);
        let received = endpoint.wait_for(1, WAIT).await;
        assert_eq!(received[0].payload, json!({ "title": "Hello" }));
        assert_eq!(received[0].urgency.as_deref(), Some("high"));
        assert_eq!(received[0].ttl.as_deref(), Some("90"));
        assert_eq!(received[0].topic.as_ref().map(String::len), Some(32));
        assert_eq!(received[0].vapid_key, sender.vapid().public_key());
        assert_eq!(endpoint.attempts(), 1);
    }

    #[tokio::test]
    async fn an_error_status_counts_as_an_attempt_but_not_a_delivery() {
        let endpoint = PushEndpoint::start().await;
        let sender = sender();

        endpoint.answer_with(410);
        assert_eq!(push(&sender, &endpoint, &json!({ "n": 1 })).await, PushOutcome::Gone);
        endpoint.answer_with(503);
        assert!(matches!(push(&sender, &endpoint, &json!({ "n": 2 })).await, PushOutcome::Retry(_)));
        endpoint.answer_with(201);
        assert_eq!(push(&sender, &endpoint, &json!({ "n": 3 })).await, PushOutcome::Delivered);

        assert_eq!(endpoint.wait_for_attempts(3, WAIT).await, 3);
        let received = endpoint.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].payload, json!({ "n": 3 }));
    }

    #[tokio::test]
    async fn a_push_encrypted_for_another_browser_is_refused() {
        let endpoint = PushEndpoint::start().await;
        let other = PushEndpoint::start().await;
        let p256dh = URL_SAFE_NO_PAD.decode(&other.p256dh).expect("p256dh");
        let auth = URL_SAFE_NO_PAD.decode(&other.auth).expect("auth");

        let outcome = sender().send(&endpoint.url, &p256dh, &auth, b"{}", "t", Duration::from_secs(60), "normal").await;

        assert!(matches!(outcome, PushOutcome::Rejected(_)), "{outcome:?}");
        assert_eq!(endpoint.attempts(), 1);
        assert!(endpoint.received().is_empty());
    }

    #[tokio::test]
    async fn a_vapid_token_whose_audience_drops_the_port_is_refused() {
        let endpoint = PushEndpoint::start().await;
        let ua_public = p256::PublicKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(&endpoint.p256dh).expect("p256dh")).expect("point");
        let auth: [u8; 16] = URL_SAFE_NO_PAD.decode(&endpoint.auth).expect("auth").try_into().expect("16 bytes");
        let key_pair = ES256KeyPair::generate();
        // web-push-native's own VAPID signing names the audience scheme://host, without the port.
        let request = WebPushBuilder::new(endpoint.url.parse().expect("uri"), ua_public, Auth::from(auth))
            .with_vapid(&key_pair, "mailto:ops@example.com")
            .build(r#"{"n":1}"#)
            .expect("request");
        let (parts, body) = request.into_parts();

        let response =
            reqwest::Client::new().post(&endpoint.url).headers(parts.headers).body(body).send().await.expect("the push endpoint answers");

        assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(endpoint.attempts(), 1);
        assert!(endpoint.received().is_empty());
    }

    #[tokio::test]
    async fn a_push_without_vapid_or_encryption_is_refused() {
        let endpoint = PushEndpoint::start().await;

        let response = reqwest::Client::new()
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .body(r#"{"title":"plain"}"#)
            .send()
            .await
            .expect("the push endpoint answers");

        assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(endpoint.attempts(), 1);
        assert!(endpoint.received().is_empty());
    }
}
