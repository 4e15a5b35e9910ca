//! Concierge: the GraphQL gateway for the "my account" side of a customer-engagement platform.

pub mod activity;
pub mod app;
pub mod assets;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod db;
pub mod error;
pub mod events;
pub mod fanout;
pub mod graphql;
pub mod identity;
pub mod mail;
pub mod mailboxes;
pub mod notifications;
pub mod platform_events;
pub mod security;
pub mod profile;
pub mod service_accounts;
pub mod services;
pub mod blob;
pub mod telemetry;
pub mod tokens;
pub mod webhooks;
pub mod workspace;
