//! Data export: an archive (JSON in a ZIP, with the profile photo) of everything an account
//! holds, built in the background, downloadable by its owner for a week, then swept.

pub mod graphql;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
