//! Connected accounts: what mailboxes and calendar accounts share, below both of them (so
//! neither imports the other): their ids, the connector registry, connect forms, the
//! operator's OAuth apps, and how a calendar asks for the credentials of the mailbox it shares
//! a grant with.

pub mod credentials;
pub mod forms;
pub mod model;
pub mod oauth;
pub mod providers;
pub mod registry;
pub mod trust;
