//! Security: password change, two-factor authentication (TOTP) and recovery codes.
pub mod graphql;
pub mod log;
pub mod service;
pub mod store;
pub mod throttle;
