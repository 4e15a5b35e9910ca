// The merged Mutation object nests one resolver per domain; with sixteen of them the
// compiler needs more than the default 128 levels to lay out its async body.
#![recursion_limit = "256"]
//! Concierge: the GraphQL gateway for the "my account" side of a customer-engagement platform.

pub mod accounts;
pub mod activity;
pub mod app;
pub mod assets;
pub mod availability;
pub mod blob;
pub mod calendars;
pub mod clock;
pub mod config;
pub mod connect;
pub mod contacts;
pub mod crypto;
pub mod db;
pub mod deletion;
pub mod error;
pub mod events;
pub mod export;
pub mod fanout;
pub mod graphql;
pub mod i18n;
pub mod identity;
pub mod ids;
pub mod input;
pub mod instance;
pub mod jobs;
pub mod mail;
pub mod mailboxes;
pub mod notifications;
pub mod outbound;
pub mod passkeys;
pub mod platform_events;
pub mod profile;
pub mod recovery;
pub mod rekey;
pub mod security;
pub mod service_accounts;
pub mod services;
pub mod telemetry;
pub mod tokens;
pub mod transport;
pub mod webhooks;
pub mod workspace;
