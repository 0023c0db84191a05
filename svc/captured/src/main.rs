//! captured: the packet ring buffer streamed to Wireshark. The binary is the
//! shell around the library: `shell.rs` (packet sockets, the loop, files,
//! signals) and `server.rs` (HTTP on private:5022, one thread per stream).
#![forbid(unsafe_code)]

mod server;
mod shell;

use runtime::cli::{Opt, Spec};

const SPEC: Spec = Spec {
    name: "captured",
    about: "captures DHCP, DHCPv6, ICMPv6 and ARP on the uplink and the LAN; streams pcapng on private:5022",
    uplink: true,
    lan: true,
    options: &[Opt { name: "port", value: Some("PORT"), help: "HTTP port on the private addresses [default: 5022]" }],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
