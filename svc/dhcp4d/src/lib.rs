//! dhcp4d: the DHCPv4 server on the LAN (router7's `cmd/dhcp4d`), as a
//! sans-IO core and the pieces its shell shares with tests and the fuzz target.
//!
//! | module | owns |
//! |---|---|
//! | [`wire`] | parsing client messages, encoding replies (RFC 2131 §2, RFC 2132) |
//! | [`server`] | the protocol: DISCOVER/OFFER, REQUEST/ACK/NAK, DECLINE, RELEASE, INFORM (RFC 2131 §4.3) |
//! | [`leases`] | the lease table: bindings, free pool, offers, quarantine, expiry order |
//! | [`config`] | router7's defaults and the optional `/perm/dhcp4d/config.json` |
//! | [`hostname`] | options 12 and 81 made into DNS labels |
//! | [`ratelimit`] | a token bucket per MAC |
//! | [`quirks`] | router7's client quirks (Nintendo's one-hour minimum lease) |
//! | [`stats`] | counters and gauges for `/metrics` |
//! | [`web`] | the lease table as HTML and JSON |
//! | [`jsonpos`] | line and column of a value in a JSON text, for config errors |
//!
//! It owns no socket, file or clock: the binary (`src/main.rs`, `src/shell.rs`,
//! `src/writer.rs`) reads the clock once per loop turn, passes datagrams in,
//! sends the replies, and persists the lease changes.
#![forbid(unsafe_code)]

pub mod config;
pub mod hostname;
pub mod jsonpos;
pub mod leases;
pub mod quirks;
pub mod ratelimit;
pub mod server;
pub mod stats;
pub mod web;
pub mod wire;

pub use config::Config;
pub use server::{LeaseEvent, Server};
pub use wire::{Destination, DropReason, Reply, Request};
