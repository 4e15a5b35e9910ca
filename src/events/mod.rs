//! Events: the catalogue of every kind Concierge knows, shared by the notification matrix,
//! platform events coming in and webhooks going out.

pub mod catalogue;
pub mod graphql;
