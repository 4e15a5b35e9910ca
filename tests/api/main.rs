//! Concierge's integration tests: one binary, one module per domain. Each test starts the
//! real server on a random port with a database of its own.

mod helpers;

mod identity;
mod limits;
mod mail_lab;
mod notifications;
mod profile;
mod schema;
mod security;
mod security_log;
mod sessions;
mod storage;
mod tokens;
mod transport;
mod websocket;
mod workspace;
