//! The HTTP transport, between the socket and the handlers: serving connections, and who the
//! client is (behind proxies too).

mod client_addr;
pub mod serve;

pub use client_addr::{Client, TrustedProxies, client_addr, client_ip, client_meta};
