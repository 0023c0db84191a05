//! What every router7-rs service shares: the mio event loop with timers, signals
//! and a waker; state files written atomically; notifying services by name; the
//! control API on a Unix socket; Prometheus metrics; raw packet sockets with
//! classic BPF; Ethernet/IPv4/UDP frames; pcap and pcapng; HTTP listeners on
//! private addresses with basic auth; the common command line.
//!
//! It owns no protocol: cores live in the service crates. All `unsafe` of the
//! workspace is in [`sys`]. Nothing here panics on outside data.
#![warn(missing_docs)]

pub mod base64;
pub mod bpf;
pub mod cli;
pub mod clock;
pub mod control;
pub mod event_loop;
pub mod frame;
pub mod http;
pub mod http_client;
pub mod httpd;
pub mod log;
pub mod metrics;
pub mod netif;
pub mod notify;
pub mod packet;
pub mod pages;
pub mod pcap;
pub mod perm;
pub mod service;
pub mod statefile;
pub mod sys;
pub mod testing;
pub mod timefmt;
pub mod timer;
pub mod unix_http;

pub use event_loop::{Context, EventLoop, Handler, LoopWaker, Ready, Signal};
pub use mio;
