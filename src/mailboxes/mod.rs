//! Mailboxes: connecting mail accounts through connectors, syncing their mail into activity
//! events, and showing how each sync is doing.

pub mod authorize;
pub mod discovery;
pub mod graphql;
pub mod ingest;
pub mod model;
pub mod oauth;
pub mod parse;
pub mod send;
pub mod service;
pub mod store;
pub mod sync;
