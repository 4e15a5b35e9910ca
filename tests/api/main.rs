//! Concierge's integration tests: one binary, one module per domain. Each test starts the
//! real server on a random port with a database of its own.

mod attacks;
mod availability;
mod calendar_lab;
mod calendars;
mod contacts;
mod deletion;
mod delivery;
mod digest;
mod discovery;
mod export;
mod frontend;
mod helpers;

mod identity;
mod limits;
mod live;
mod mail_faults;
mod mail_lab;
mod mailboxes;
mod metrics;
mod mutations;
mod notifications;
mod oauth_calendars;
mod oauth_mail;
mod passkeys;
mod platform_events;
mod profile;
mod push_endpoint;
mod recovery;
mod rekey;
mod replicas;
mod schema;
mod security;
mod security_log;
mod send;
mod sessions;
mod storage;
mod threads;
mod tokens;
mod traces;
mod transport;
mod webhooks;
mod websocket;
mod workspace;
