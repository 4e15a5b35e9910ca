//! Service accounts: a workspace's non-human principals (the platform's other services), with
//! their own `csat_` tokens and scopes. They never log in and never act as a user.
pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
