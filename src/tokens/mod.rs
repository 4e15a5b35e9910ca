//! Personal access tokens for API integrations.
pub mod graphql;
pub mod model;
pub mod scopes;
pub mod service;
pub mod store;
