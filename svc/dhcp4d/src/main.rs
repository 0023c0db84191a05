//! dhcp4d: the DHCPv4 server on the LAN. The binary is the shell around the
//! library's core: sockets ([`sockets`]), the event loop ([`shell`]), the
//! lease file writer thread ([`writer`]) and the status pages ([`pages`]).
#![forbid(unsafe_code)]

mod pages;
mod shell;
mod sockets;
mod writer;

use runtime::cli::{Opt, Spec};

const SPEC: Spec = Spec {
    name: "dhcp4d",
    about: "the DHCPv4 server on the LAN",
    uplink: false,
    lan: true,
    options: &[
        Opt {
            name: "http",
            value: Some("[ADDR[,ADDR…]:]PORT"),
            help: "where the status pages listen [default: the private addresses, port 8067]",
        },
        Opt {
            name: "write-interval",
            value: Some("MS"),
            help: "shortest time between two writes of leases.json [default: 100]",
        },
    ],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
