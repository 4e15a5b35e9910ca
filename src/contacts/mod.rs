//! Contacts: the people a workspace talks to, each with several email addresses, and the
//! matching of mail senders to them.

pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
