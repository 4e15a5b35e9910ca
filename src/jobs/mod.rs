//! Background work shared by several gateway processes: the one lease that keeps a piece of
//! work (a mailbox's sync, a calendar account's sync) to one process at a time.

pub mod lease;
