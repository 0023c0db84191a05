//! dhcp4's protocol core: the DHCPv4 client of router7-rs's uplink, without
//! any I/O. It owns the RFC 2131 state machine ([`client`]), the messages it
//! sends and accepts ([`wire`]), what a lease holds and how it is persisted
//! ([`lease`]), and its counters ([`metrics`]).
//!
//! It does not own sockets, files, signals or the clock: the binary's shell
//! (`src/main.rs`, `src/shell.rs`) does, and passes time and packets in.
#![forbid(unsafe_code)]

pub mod client;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod lease;
pub mod metrics;
pub mod wire;

pub use client::{Action, Client, Destination, Event, Held, Random, RestoreError, StateName, Transmit};
pub use lease::{Lease, LeaseTimes};
pub use metrics::Metrics;
pub use wire::{DropReason, Identity, Outgoing};
