//! Notifications: preferences (the event × channel matrix, audio alerts, the daily summary),
//! in-app notifications with a live subscription, and Web Push subscriptions.

pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
