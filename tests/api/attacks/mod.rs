//! The attack catalogue: what a hostile tenant with free accounts, a narrow token or no
//! credential at all tries, each through the real server, and what they get instead.

mod automation;
mod lockout;
mod outbound;
mod proxy;
mod scopes;
mod transport;
mod validation_cost;
