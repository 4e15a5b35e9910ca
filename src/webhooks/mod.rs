//! Webhooks out: a workspace's HTTPS endpoints that receive its events, signed the Standard
//! Webhooks way (Svix, EmailEngine and others do the same). Producers queue deliveries in
//! their own transaction ([`enqueue`]), a worker sends them in order per webhook with
//! retries for more than a day ([`delivery`]), and every URL is checked against
//! server-side request forgery before it is saved and before every attempt ([`crate::outbound`]).

pub mod delivery;
pub mod graphql;
pub mod model;
pub mod outbox;
pub mod service;
pub mod signature;
pub mod store;

pub use outbox::{OutgoingEvent, enqueue, enqueue_all};
pub use service::{WebhookScope, WebhookSettings, Webhooks};
