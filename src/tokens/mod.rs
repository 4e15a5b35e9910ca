//! Personal access tokens for API integrations.
pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
