//! The attack catalogue: each hole of the hardening issue tried through the real server by a
//! hostile caller, and shown refused.

mod automation;
mod validation_cost;
