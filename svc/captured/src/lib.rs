//! captured: a ring buffer of the router's configuration traffic (DHCPv4,
//! DHCPv6, ICMPv6, ARP, and ports named in `/perm/captured/config.json`) on
//! the uplink and the LAN, streamed over HTTP as pcapng so Wireshark shows
//! each packet with the interface it was seen on.
//!
//! The library holds everything but the sockets and threads: the BPF program
//! ([`filter`]), the bounded ring ([`ring`]), the hub between the capture
//! loop and the streaming clients with their bounded queues ([`hub`]), the
//! pcapng stream ([`pcapng`]), request routing ([`request`]), the settings
//! ([`config`]), and the host tool's client ([`client`]). The binary's shell
//! owns the packet sockets, the HTTP listeners, the client threads and the clock.
//!
//! router7's captured streamed classic pcap over SSH and accepted any key;
//! this one speaks HTTP with the router password.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod filter;
pub mod hub;
pub mod pcapng;
pub mod request;
pub mod ring;
