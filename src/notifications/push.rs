//! Web Push delivery: encrypts a payload for one browser subscription (RFC 8291, aes128gcm),
//! signs the request with the gateway's VAPID key (RFC 8292), posts it to the push service
//! (RFC 8030), and says from the answer whether to retry, drop the subscription or give up.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use concierge_connector_sdk::OutboundPolicy;
use concierge_connector_sdk::outbound::{PolicyResolver, refusal_in};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use sha2::{Digest as _, Sha256};
use web_push_native::jwt_simple::algorithms::{ECDSAP256KeyPairLike as _, ECDSAP256PublicKeyLike as _, ES256KeyPair};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::{Auth, WebPushBuilder, p256};

/// The largest plaintext that fits one 4096-byte aes128gcm record: 4096 minus the 86-byte
/// header (with the 65-byte key id), the 16-byte tag and the 1-byte padding delimiter.
const MAX_PAYLOAD: usize = 3993;

/// RFC 8292 §2: push services refuse tokens that expire more than 24 hours ahead. The token's
/// lifetime is independent of the message's TTL, which may be zero or weeks.
const VAPID_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

const URGENCIES: [&str; 4] = ["very-low", "low", "normal", "high"];

const TTL: HeaderName = HeaderName::from_static("ttl");
const URGENCY: HeaderName = HeaderName::from_static("urgency");
const TOPIC: HeaderName = HeaderName::from_static("topic");

/// The gateway's application-server identity (RFC 8292): an ES256 key pair and a contact URI.
pub struct Vapid {
    key_pair: ES256KeyPair,
    public_key: String,
    contact: String,
}

impl Vapid {
    /// Derives the key pair from a 32-byte seed, so every replica given the same seed signs
    /// with the same identity (browsers bind a subscription to one application server key).
    /// A seed that is not a valid P-256 scalar (zero, or not below the group order) is
    /// replaced by SHA-256(seed ‖ counter) for counter = 0, 1, … until one is.
    pub fn from_seed(seed: [u8; 32], contact: String) -> Vapid {
        let mut candidate = seed;
        let mut counter = 0u32;
        let key_pair = loop {
            if let Ok(key_pair) = ES256KeyPair::from_bytes(&candidate) {
                break key_pair;
            }
            candidate = Sha256::new().chain_update(seed).chain_update(counter.to_be_bytes()).finalize().into();
            counter = counter.wrapping_add(1);
        };
        let public_key = URL_SAFE_NO_PAD.encode(key_pair.public_key().public_key().to_bytes_uncompressed());
        Vapid { key_pair, public_key, contact }
    }

    /// The application server key that clients pass to `pushManager.subscribe`: the
    /// uncompressed P-256 point (65 bytes), base64url without padding.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// `Authorization: vapid t=<jwt>, k=<public key>` for a push resource at `origin`.
    fn authorization(&self, origin: &str) -> Result<HeaderValue, String> {
        let claims = Claims::create(VAPID_TOKEN_LIFETIME.into()).with_audience(origin).with_subject(&self.contact);
        let token = self.key_pair.sign(claims).map_err(|_| "could not sign the VAPID token".to_owned())?;
        HeaderValue::try_from(format!("vapid t={token}, k={}", self.public_key))
            .map_err(|_| "the VAPID contact is not a valid header value".to_owned())
    }
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid").field("public_key", &self.public_key).field("contact", &self.contact).finish_non_exhaustive()
    }
}

/// What became of one push message, and so what the caller does next.
#[derive(Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The push service accepted it (2xx, usually 201).
    Delivered,
    /// 404 or 410: the subscription is dead; the caller deletes it.
    Gone,
    /// A network error, a timeout, 429 or 5xx: try again later. The reason holds no secrets.
    Retry(String),
    /// Any other failure (bad keys, an oversized payload, 400, 401/403 for VAPID, 413): retrying
    /// the same message cannot help.
    Rejected(String),
}

/// Sends push messages; cheap to clone (one connection pool, one shared identity).
#[derive(Clone)]
pub struct PushSender {
    /// Resolves names through `outbound`.
    client: reqwest::Client,
    vapid: Arc<Vapid>,
    /// Which addresses endpoints may reach, checked again at every send (an endpoint's name
    /// may resolve elsewhere than when it was registered).
    outbound: OutboundPolicy,
}

impl PushSender {
    pub fn new(vapid: Arc<Vapid>, outbound: OutboundPolicy) -> PushSender {
        let client = reqwest::Client::builder()
            // Names resolve only to addresses the policy allows, on every new connection;
            // IP literals skip the resolver and are checked in `send`.
            .dns_resolver(Arc::new(PolicyResolver(outbound.clone())))
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            // A push service answers; it does not redirect. Following one would post the
            // encrypted message to wherever a subscriber-supplied endpoint points next.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the TLS backend initialises");
        PushSender { client, vapid, outbound }
    }

    pub fn vapid(&self) -> &Vapid {
        &self.vapid
    }

    /// Encrypts `payload` for a subscription's keys (`p256dh`: the 65-byte uncompressed point,
    /// `auth`: the 16-byte secret, raw bytes as stored) and posts it to `endpoint`, signed with
    /// VAPID, with `ttl`, an `urgency` ("very-low", "low", "normal" or "high") and a `Topic`
    /// derived from `topic_key`, so that a retried message replaces, rather than duplicates,
    /// one the push service still holds. Bad keys or a payload over 3,993 bytes are
    /// `Rejected` before anything is sent.
    #[allow(clippy::too_many_arguments)] // the delivery worker holds these separately, as stored
    pub async fn send(
        &self,
        endpoint: &str,
        p256dh: &[u8],
        auth: &[u8],
        payload: &[u8],
        topic_key: &str,
        ttl: Duration,
        urgency: &str,
    ) -> PushOutcome {
        // The endpoint's path is the subscription's capability; only its host reaches the logs.
        let host = endpoint.parse::<Uri>().ok().and_then(|uri| uri.host().map(str::to_owned)).unwrap_or_default();
        let outcome = match self.request(endpoint, p256dh, auth, payload, topic_key, ttl, urgency) {
            Err(reason) => PushOutcome::Rejected(reason),
            Ok(request) if self.outbound.check_literal(request.uri().host().unwrap_or_default()).is_err() => {
                PushOutcome::Rejected("refused: the endpoint's address may not be reached".into())
            }
            Ok(request) => {
                let (parts, body) = request.into_parts();
                let sent = self.client.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body).send().await;
                match sent {
                    Ok(response) => classify(response.status()),
                    // Refused by the resolver: nothing was sent, and retrying cannot help.
                    Err(error) if refusal_in(&error).is_some() => {
                        PushOutcome::Rejected("refused: the endpoint's host resolves to an address that may not be reached".into())
                    }
                    Err(error) => PushOutcome::Retry(network_reason(&error)),
                }
            }
        };
        match &outcome {
            PushOutcome::Delivered => tracing::debug!(%host, "push message delivered"),
            PushOutcome::Gone => tracing::info!(%host, "push subscription is gone"),
            PushOutcome::Retry(reason) => tracing::warn!(%host, %reason, "push message not delivered; will retry"),
            PushOutcome::Rejected(reason) => tracing::warn!(%host, %reason, "push message rejected"),
        }
        outcome
    }

    /// Builds the encrypted, signed request without sending it; an error is the reason to reject.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        endpoint: &str,
        p256dh: &[u8],
        auth: &[u8],
        payload: &[u8],
        topic_key: &str,
        ttl: Duration,
        urgency: &str,
    ) -> Result<http::Request<Vec<u8>>, String> {
        let uri: Uri = endpoint.parse().map_err(|_| "the endpoint is not a valid URL".to_owned())?;
        let origin = origin(&uri).ok_or_else(|| "the endpoint is not an http(s) URL with a host".to_owned())?;
        // A compressed point would parse too, but the Push API always hands out the 65-byte form.
        if p256dh.len() != 65 {
            return Err(format!("the p256dh key is {} bytes, not 65", p256dh.len()));
        }
        let ua_public = p256::PublicKey::from_sec1_bytes(p256dh).map_err(|_| "the p256dh key is not a P-256 point".to_owned())?;
        let auth: [u8; 16] = auth.try_into().map_err(|_| format!("the auth secret is {} bytes, not 16", auth.len()))?;
        if payload.len() > MAX_PAYLOAD {
            return Err(format!("the payload is {} bytes, over the {MAX_PAYLOAD}-byte limit", payload.len()));
        }
        let urgency = URGENCIES.into_iter().find(|known| *known == urgency).ok_or_else(|| format!("unknown urgency {urgency:?}"))?;

        // VAPID is added by hand, not by `with_vapid`: that names the audience without the
        // port and ties the token's expiry to the TTL.
        let mut request =
            WebPushBuilder::new(uri, ua_public, Auth::from(auth)).build(payload).map_err(|_| "could not encrypt the payload".to_owned())?;
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, self.vapid.authorization(&origin)?);
        headers.insert(TTL, HeaderValue::from(ttl.as_secs()));
        headers.insert(URGENCY, HeaderValue::from_static(urgency));
        headers.insert(TOPIC, HeaderValue::try_from(topic(topic_key)).map_err(|_| "invalid topic".to_owned())?);
        Ok(request)
    }
}

/// RFC 8030 §5.4 allows at most 32 base64url characters: the first 24 bytes of the key's
/// SHA-256 encode to exactly 32.
fn topic(topic_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(topic_key.as_bytes())[..24])
}

/// The push resource's origin (RFC 6454), the VAPID token's `aud`: the port is kept unless it
/// is the scheme's default.
fn origin(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let host = uri.host()?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    Some(match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn classify(status: StatusCode) -> PushOutcome {
    match status.as_u16() {
        200..=299 => PushOutcome::Delivered,
        404 | 410 => PushOutcome::Gone,
        429 | 500..=599 => PushOutcome::Retry(format!("the push service answered {status}")),
        _ => PushOutcome::Rejected(format!("the push service answered {status}")),
    }
}

/// reqwest's own message names the URL, whose path is the subscription's capability; keep
/// only the kind of failure and its root cause.
fn network_reason(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let Some(mut cause) = std::error::Error::source(error) else {
        return kind.to_owned();
    };
    while let Some(source) = cause.source() {
        cause = source;
    }
    format!("{kind}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use web_push_native::jwt_simple::algorithms::ES256PublicKey;
    use web_push_native::jwt_simple::claims::NoCustomClaims;
    use web_push_native::jwt_simple::common::VerificationOptions;
    use web_push_native::p256::elliptic_curve::rand_core::OsRng;
    use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint as _;

    fn sender() -> PushSender {
        PushSender::new(Arc::new(Vapid::from_seed([7; 32], "mailto:ops@example.com".into())), OutboundPolicy::strict())
    }

    /// A browser's side of a subscription: its key pair and auth secret.
    struct Browser {
        secret: p256::SecretKey,
        p256dh: Vec<u8>,
        auth: [u8; 16],
    }

    fn browser() -> Browser {
        let secret = p256::SecretKey::random(&mut OsRng);
        let p256dh = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        Browser { secret, p256dh, auth: *b"sixteen byte key" }
    }

    fn header<'a>(request: &'a http::Request<Vec<u8>>, name: &str) -> &'a str {
        request.headers()[name].to_str().expect("ascii header")
    }

    #[test]
    fn the_same_seed_gives_the_same_vapid_key() {
        let one = Vapid::from_seed([1; 32], "mailto:ops@example.com".into());
        let again = Vapid::from_seed([1; 32], "mailto:other@example.com".into());
        let other = Vapid::from_seed([2; 32], "mailto:ops@example.com".into());

        assert_eq!(one.public_key(), again.public_key());
        assert_ne!(one.public_key(), other.public_key());
        let point = URL_SAFE_NO_PAD.decode(one.public_key()).expect("base64url");
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 0x04);
    }

    #[test]
    fn a_seed_that_is_not_a_scalar_is_hashed_into_one() {
        // Zero and anything at or above the group order are not private keys.
        for seed in [[0; 32], [0xff; 32]] {
            let vapid = Vapid::from_seed(seed, "mailto:ops@example.com".into());
            assert_eq!(vapid.public_key(), Vapid::from_seed(seed, "mailto:ops@example.com".into()).public_key());
            assert_eq!(URL_SAFE_NO_PAD.decode(vapid.public_key()).expect("base64url").len(), 65);
        }
    }

    #[test]
    fn an_encrypted_message_decrypts_with_the_browser_keys() {
        let browser = browser();
        let payload = br#"{"title":"New message"}"#;

        let endpoint = "https://push.example.net/send/abc";
        let ttl = Duration::from_secs(3600);

        let request =
            sender().request(endpoint, &browser.p256dh, &browser.auth, payload, "notification:42", ttl, "high").expect("a valid request");

        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "https://push.example.net/send/abc");
        assert_eq!(header(&request, "content-encoding"), "aes128gcm");
        assert_eq!(header(&request, "ttl"), "3600");
        assert_eq!(header(&request, "urgency"), "high");
        assert_eq!(header(&request, "topic"), topic("notification:42"));
        let plaintext = web_push_native::decrypt(request.body().clone(), &browser.secret, &Auth::from(browser.auth))
            .expect("decrypts with the browser's keys");
        assert_eq!(plaintext, payload);
    }

    #[test]
    fn the_vapid_token_is_signed_for_the_endpoint_origin_including_its_port() {
        let browser = browser();
        let sender = sender();
        for (endpoint, audience) in [
            ("https://push.example.net/send/abc", "https://push.example.net"),
            ("https://push.example.net:443/send/abc", "https://push.example.net"),
            ("http://127.0.0.1:8123/push/abc", "http://127.0.0.1:8123"),
        ] {
            let request =
                sender.request(endpoint, &browser.p256dh, &browser.auth, b"{}", "t", Duration::ZERO, "normal").expect("a valid request");

            let authorization = header(&request, "authorization");
            let (token, key) = authorization.strip_prefix("vapid t=").and_then(|rest| rest.split_once(", k=")).expect("vapid t=…, k=…");
            assert_eq!(key, sender.vapid().public_key());
            let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(key).expect("base64url")).expect("a P-256 key");
            let options = VerificationOptions { allowed_audiences: Some([audience.to_owned()].into()), ..Default::default() };
            let claims = public.verify_token::<NoCustomClaims>(token, Some(options)).expect("signed for the origin");
            assert_eq!(claims.subject.as_deref(), Some("mailto:ops@example.com"));
        }
    }

    #[test]
    fn topics_are_32_base64url_characters_and_stable() {
        for key in ["", "notification:42", &"x".repeat(1000)] {
            let topic = topic(key);
            assert_eq!(topic.len(), 32);
            assert!(topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{topic}");
            assert_eq!(topic, super::topic(key));
        }
        assert_ne!(topic("notification:42"), topic("notification:43"));
    }

    #[test]
    fn a_payload_fills_at_most_one_4096_byte_record() {
        let browser = browser();
        let sender = sender();
        let request = |payload: &[u8]| {
            sender.request("https://push.example.net/x", &browser.p256dh, &browser.auth, payload, "t", Duration::ZERO, "low")
        };

        assert_eq!(request(&[b'a'; MAX_PAYLOAD]).expect("fits").body().len(), 4096);
        assert!(request(&[b'a'; MAX_PAYLOAD + 1]).is_err());
    }

    #[tokio::test]
    async fn bad_keys_are_rejected_without_a_network_call() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}/push/abc", listener.local_addr().expect("address"));
        let browser = browser();
        let mut off_curve = browser.p256dh.clone();
        off_curve[64] ^= 1;
        let compressed = browser.secret.public_key().to_encoded_point(true).as_bytes().to_vec();
        let sender = sender();

        for (p256dh, auth, payload, urgency) in [
            (&off_curve[..], &browser.auth[..], &b"{}"[..], "normal"),
            (&compressed[..], &browser.auth[..], &b"{}"[..], "normal"),
            (&browser.p256dh[..64], &browser.auth[..], &b"{}"[..], "normal"),
            (&browser.p256dh[..], &browser.auth[..15], &b"{}"[..], "normal"),
            (&browser.p256dh[..], &browser.auth[..], &[b'a'; MAX_PAYLOAD + 1][..], "normal"),
            (&browser.p256dh[..], &browser.auth[..], &b"{}"[..], "urgent"),
        ] {
            let outcome = sender.send(&endpoint, p256dh, auth, payload, "t", Duration::from_secs(60), urgency).await;
            assert!(matches!(outcome, PushOutcome::Rejected(_)), "{outcome:?}");
        }
        let accepted = listener.accept();
        assert!(matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "nothing connects: {accepted:?}");
    }

    #[tokio::test]
    async fn the_endpoint_address_is_checked_again_at_every_send() {
        // Registration checked the endpoint once; a name may resolve elsewhere later
        // (rebinding), so the send resolves through the policy again and connects nowhere.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let browser = browser();
        let sender = sender();

        for endpoint in [
            format!("http://127.0.0.1:{port}/push/abc"),
            format!("http://localhost:{port}/push/abc"),
            format!("http://[::ffff:127.0.0.1]:{port}/p"),
        ] {
            let outcome = sender.send(&endpoint, &browser.p256dh, &browser.auth, b"{}", "t", Duration::from_secs(60), "normal").await;
            assert!(matches!(outcome, PushOutcome::Rejected(_)), "{endpoint}: {outcome:?}");
        }
        let accepted = listener.accept();
        assert!(matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "nothing connects: {accepted:?}");
    }

    #[test]
    fn statuses_map_to_what_the_caller_does_next() {
        let expectations = [
            (200, "delivered"),
            (201, "delivered"),
            (202, "delivered"),
            (404, "gone"),
            (410, "gone"),
            (429, "retry"),
            (500, "retry"),
            (503, "retry"),
            (400, "rejected"),
            (401, "rejected"),
            (403, "rejected"),
            (413, "rejected"),
            (301, "rejected"),
        ];
        for (code, expected) in expectations {
            let outcome = classify(StatusCode::from_u16(code).expect("status"));
            let kind = match outcome {
                PushOutcome::Delivered => "delivered",
                PushOutcome::Gone => "gone",
                PushOutcome::Retry(_) => "retry",
                PushOutcome::Rejected(_) => "rejected",
            };
            assert_eq!(kind, expected, "HTTP {code}");
        }
    }
}
