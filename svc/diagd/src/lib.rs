//! diagd's library: the sans-IO core of the router's health checks.
//!
//! - [`tree`]: the checks, router7's tree and names, and the probe each needs;
//! - [`monitor`]: the schedule, dependencies, timeouts and the health verdict
//!   with hysteresis — time comes in as arguments, nothing here reads a clock;
//! - [`config`]: `/perm/diagd/config.json`, strict, validated once;
//! - [`lease`], [`routes`], [`addrs`]: pure evaluations of what the shell read
//!   (lease files, `/proc/net/route`, `/proc/net/ipv6_route`, `/proc/net/if_inet6`);
//! - [`echo`]: ICMP/ICMPv6 echo requests and replies;
//! - [`report`]: health.json, the HTML page, metrics and control-API fields.
//!
//! The binary (`main.rs`, `shell.rs`, `probes.rs`) owns the sockets, files,
//! signals, the clock and the HTTP listeners.
#![forbid(unsafe_code)]

pub mod addrs;
pub mod config;
pub mod echo;
pub mod lease;
pub mod monitor;
pub mod report;
pub mod routes;
pub mod tree;
