//! netconfigd turns configuration and leases into kernel state: links,
//! addresses, routes, sysctls and the nftables firewall.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | reading and validating interfaces.json, portforwardings.json, config.json |
//! | [`plan`] | the desired state: a pure function of the inputs |
//! | [`firewall`] | the nftables ruleset netconfigd installs |
//! | [`nft`] | nftables as data and its nfnetlink encoding |
//! | [`kernel`] | the seam: a trait for the kernel, and a recording fake |
//! | [`reconcile`] | comparing the plan with the kernel and changing what differs |
//! | [`rtnl`] | the real kernel: rtnetlink, nfnetlink, `/proc/sys` |
//!
//! It does not own the leases (dhcp4, dhcp6 write them) nor the LAN's
//! services; it tells them when it applied a new configuration.
#![forbid(unsafe_code)]

pub mod config;
pub mod firewall;
pub mod kernel;
pub mod nft;
pub mod plan;
pub mod reconcile;
pub mod rtnl;
