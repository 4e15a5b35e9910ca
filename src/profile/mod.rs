//! The profile: personal data, language, login email change, photo and signature.

pub mod graphql;
pub mod model;
pub mod pages;
pub mod photo;
pub mod service;
pub mod signature;
pub mod store;
