//! Secrets at rest: values Concierge must read back (TOTP secrets, later mailbox
//! credentials) are sealed with XChaCha20-Poly1305 under the gateway's key, each bound to
//! what it belongs to (the associated data), so a sealed value cannot be moved elsewhere.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::Rng as _;

const NONCE_BYTES: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Kept for deriving purpose-bound keys (never used directly for anything else).
    key: [u8; 32],
}

impl SecretBox {
    /// The key from `CONCIERGE_SECRET_KEY` (32 bytes, base64), or else from `secret.key` in
    /// the data folder, created on first start (readable by the owner only). Replicas sharing
    /// a database must share the key, so they set the variable.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<SecretBox> {
        let key = match configured {
            Some(b64) => decode_key(b64).context("CONCIERGE_SECRET_KEY must be 32 bytes in base64")?,
            None => key_file(&data_dir.join("secret.key"))?,
        };
        Ok(SecretBox { cipher: XChaCha20Poly1305::new(&Key::from(key)), key })
    }

    /// A key given as text (32 bytes, base64), or read from an existing key file: the
    /// previous key, for `concierge rekey`. Never creates a file.
    pub fn from_old_key(text: Option<&str>, file: Option<&Path>) -> anyhow::Result<SecretBox> {
        let key = match (text, file) {
            (Some(b64), None) => decode_key(b64).context("the old key must be 32 bytes in base64")?,
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                decode_key(&text).with_context(|| format!("{} is not a valid key", path.display()))?
            }
            _ => anyhow::bail!("give the old key either as text (--old-key) or as a file (--old-key-file)"),
        };
        Ok(SecretBox { cipher: XChaCha20Poly1305::new(&Key::from(key)), key })
    }

    /// Whether two boxes hold the same key.
    pub fn same_key(&self, other: &SecretBox) -> bool {
        use subtle::ConstantTimeEq as _;
        self.key.ct_eq(&other.key).into()
    }

    /// A 32-byte key for one purpose, derived from the gateway's key (HMAC-SHA-256 keyed
    /// with it over `purpose`): replicas sharing the key derive the same one, and it reveals
    /// nothing about the key or about keys for other purposes.
    pub fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    /// `nonce || ciphertext`, authenticated together with `bound_to`.
    pub fn seal(&self, plaintext: &[u8], bound_to: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: bound_to })
            .map_err(|_| anyhow::anyhow!("sealing a secret failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, sealed: &[u8], bound_to: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > NONCE_BYTES, "sealed secret too short");
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into()?;
        self.cipher.decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: bound_to }).map_err(|_| anyhow::Error::new(Unreadable))
    }
}

/// A sealed value that did not open: sealed under another key (the gateway's key changed
/// without `concierge rekey`), or damaged.
#[derive(Debug, thiserror::Error)]
#[error("a sealed secret did not open (wrong key or tampered)")]
pub struct Unreadable;

impl Unreadable {
    /// Whether `error` is (or was caused by) a sealed value that did not open.
    pub fn caused(error: &crate::error::Error) -> bool {
        matches!(error, crate::error::Error::Internal(e) if e.downcast_ref::<Unreadable>().is_some())
    }
}

fn decode_key(b64: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("not 32 bytes"))
}

fn key_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return decode_key(&existing).with_context(|| format!("{} is not a valid key", path.display()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let encoded = base64::engine::general_purpose::STANDARD.encode(key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, encoded.as_bytes())?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => key_file(path),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::load(None, dir.path()).unwrap();
        let again = SecretBox::load(None, dir.path()).unwrap();
        let sealed = a.seal(b"JBSWY3DPEHPK3PXP", b"account-1").unwrap();

        assert_eq!(again.open(&sealed, b"account-1").unwrap(), b"JBSWY3DPEHPK3PXP", "the key file is reused");
        assert!(a.open(&sealed, b"account-2").is_err(), "bound to its account");
        let other = SecretBox::load(Some(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])), dir.path()).unwrap();
        assert!(other.open(&sealed, b"account-1").is_err());
        assert!(SecretBox::load(Some("too short"), dir.path()).is_err());
    }
}
