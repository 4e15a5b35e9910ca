//! Activity: what happened with a workspace's contacts (today, mail received), recorded once
//! per event, listed per contact or per workspace, and pushed live.

pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
