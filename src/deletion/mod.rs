//! Leaving: deleting an account after a grace period, and what stays behind.

pub mod graphql;
pub mod service;
pub mod store;
