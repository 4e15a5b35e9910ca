//! Activity: what happened with a workspace's contacts (today, mail received and sent, in
//! threads), recorded once per event, listed per contact, per workspace or per thread, and
//! pushed live.

pub mod graphql;
pub mod message;
pub mod model;
pub mod service;
pub mod store;
