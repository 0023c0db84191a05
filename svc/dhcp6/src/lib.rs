//! dhcp6: the DHCPv6 client with prefix delegation on the uplink (RFC 8415).
//!
//! The library is the sans-IO core: [`wire`] (messages, with dhcproto),
//! [`timing`] (retransmission, §15), [`lease`] (what we hold, and its file
//! form), [`client`] (the state machine), [`config`] (`/perm/dhcp6/config.json`)
//! and [`duid`] (our identity). The binary (`main.rs`, `shell.rs`) owns the
//! socket, the files, signals and the clock.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod duid;
pub mod lease;
pub mod timing;
pub mod wire;

pub use client::{Client, Config, Drop, Event, IaKind, LossReason, Transmit};
pub use lease::Lease;
pub use timing::Random;
