//! Platform events: what the platform's other services publish (`publishEvents`, with a
//! service-account token), stored once per idempotency key and routed to each recipient
//! through their notification matrix like Concierge's own events.
pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
