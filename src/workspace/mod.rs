//! Workspaces, memberships and roles, invitations, and who may change them.
pub mod graphql;
pub mod invitations;
pub mod model;
pub mod service;
pub mod store;
