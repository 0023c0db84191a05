//! radvd: Router Advertisements on the LAN (RFC 4861 §6.2), so hosts form
//! addresses in the delegated prefix (SLAAC, RFC 4862), route through the
//! router and find its DNS server (RFC 8106).
//!
//! The library is the sans-IO core ([`Advertiser`]) and the wire formats; the
//! binary (`src/main.rs`, `src/shell.rs`) owns the raw ICMPv6 socket, the files,
//! signals and the clock. It does not own the LAN's addresses or routes
//! (netconfigd) nor the delegation (dhcp6).
#![forbid(unsafe_code)]

pub mod advert;
pub mod advertiser;
pub mod config;
pub mod dns_options;
pub mod metrics;
pub mod prefixes;
pub mod random;
pub mod schedule;
pub mod solicit;

pub use advertiser::{Advertiser, Event, Inputs, Kind, Link, Transmit};
