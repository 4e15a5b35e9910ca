//! Getting back in and proving an address: "forgot password" links and email verification.
//! Both are single-use links mailed to the account's address (only their SHA-256 is stored),
//! and both answer the same whether or not an address has an account.

pub mod graphql;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
