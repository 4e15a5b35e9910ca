//! Background work shared by several gateway processes: the one lease that keeps a piece of
//! work (a mailbox's sync, a calendar account's sync) to one process at a time, the claims
//! queue workers take on their rows and renew while an attempt runs, the one retry schedule
//! every kind of work follows after a failure, and the one loop queue workers run.

pub mod claims;
pub mod lease;
pub mod retry;
pub mod worker;
