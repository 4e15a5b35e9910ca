//! Workspaces, memberships and roles, and who may change them.
pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
