//! The attack catalogue: each hole of issue 19 tried through the real server by hostile
//! actors (another workspace's owner, a narrow token, an anonymous caller, oversized input),
//! and refused.
mod lockout;
