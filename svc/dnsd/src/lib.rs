//! dnsd's core: the LAN's caching DNS forwarder and its local names, as a
//! sans-IO state machine ([`resolver::Resolver`]) that takes queries and
//! upstream replies with the time and returns answers and upstream queries.
//! The binary (`main.rs`, `shell.rs`) owns the sockets, files, signals and the
//! clock.
//!
//! | module | owns |
//! |---|---|
//! | [`wire`] | the DNS wire format: checked views, and the messages we write byte by byte |
//! | [`answer`] | upstream replies prepared for reuse: TTL positions, lifetimes (RFC 2308) |
//! | [`cache`] | the bounded answer cache (CLOCK eviction) |
//! | [`local`] | local names: leases, the router, `localhost`, private reverse zones |
//! | [`upstream`] | upstream servers: preference, RTT, health |
//! | [`resolver`] | the state machine tying them together |
//! | [`config`] | `/perm/dnsd/config.json` and where upstreams come from |
//! | [`metrics`] | what `/metrics` shows |
//! | [`entropy`] | randomness as an input |
//!
//! Contract: nothing here panics on any input from the network or a file; a
//! cache hit allocates nothing.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod answer;
pub mod cache;
pub mod config;
pub mod entropy;
pub mod local;
pub mod metrics;
pub mod resolver;
pub mod upstream;
pub mod wire;

#[cfg(test)]
pub(crate) mod tests;
