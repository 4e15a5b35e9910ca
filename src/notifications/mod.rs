//! Notifications: preferences (the event × channel matrix, audio alerts, the daily summary),
//! in-app notifications with a live subscription, and delivery by email and Web Push through
//! an outbox, with a daily summary email.

pub mod delivery;
pub mod digest;
pub mod email;
pub mod graphql;
pub mod links;
pub mod model;
pub mod outbox;
pub mod pages;
pub mod push;
pub mod service;
pub mod sources;
pub mod store;
