//! The seam between Concierge and its mail and calendar connectors. The connector traits and
//! their types land with the mail-connectors work; this crate exists now so the workspace has
//! its final shape and the gateway already depends on it.
