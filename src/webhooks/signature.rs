//! Standard Webhooks signing (<https://www.standardwebhooks.com/>): a secret is `whsec_` and
//! the base64 of random bytes; a message is signed as
//! `v1,` + base64(HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")), and the
//! `webhook-signature` header may carry several such signatures separated by spaces (during
//! a rotation, one per valid secret). Every Standard Webhooks library verifies this.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac as _;
use rand::Rng as _;

/// The prefix every webhook secret carries.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a secret (the spec asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// Fresh secret bytes.
pub fn generate() -> Vec<u8> {
    let mut bytes = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// The secret as a receiver configures it: `whsec_<base64>`.
pub fn display(secret: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(secret))
}

/// One `v1,<base64>` signature of a message.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: a signature by each secret, space-separated.
pub fn header(secrets: &[&[u8]], id: &str, timestamp: i64, body: &str) -> String {
    secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The example from the Standard Webhooks specification and its reference libraries.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_prefixed_base64_and_several_sign_at_once() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        let shown = display(&a);
        assert!(shown.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&shown[6..]).unwrap(), a);
        let h = header(&[&a, &b], "id", 1, "{}");
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts, [sign(&a, "id", 1, "{}"), sign(&b, "id", 1, "{}")]);
    }
}
