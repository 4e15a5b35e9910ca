//! Availability: the status a user chooses and shows, live presence, working hours and free
//! intervals.

pub mod graphql;
pub mod model;
pub mod service;
pub mod store;
