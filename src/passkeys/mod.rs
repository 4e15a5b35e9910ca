//! Passkeys (WebAuthn): registered by a signed-in user, then used for passwordless sign-in
//! (discoverable credentials) or as the second factor of a password log-in. The ceremonies
//! are webauthn-rs's; this domain keeps their state (sealed, used once) and the credentials.

pub mod graphql;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
