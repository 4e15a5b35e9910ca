//! Identity: accounts, passwords, sign-up, log-in and sessions.
pub mod graphql;
pub mod model;
pub mod password;
pub mod service;
pub mod store;
