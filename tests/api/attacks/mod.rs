//! The attack catalogue: each hole of the hardening issue, tried through the real server by a
//! hostile actor, and refused.

mod proxy;
mod transport;
