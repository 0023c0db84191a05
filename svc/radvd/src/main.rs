//! radvd: Router Advertisements on the LAN. See the library for the core and
//! `shell.rs` for the socket, the files and the loop.
#![forbid(unsafe_code)]

mod shell;
mod socket;

use runtime::cli::{Opt, Spec};

const SPEC: Spec = Spec {
    name: "radvd",
    about: "router advertisements on the LAN (SLAAC prefix, default route, DNS server)",
    uplink: false,
    lan: true,
    options: &[Opt {
        name: "metrics-port",
        value: Some("PORT"),
        help: "port of /metrics on the private addresses; 0 turns it off [default: 8068]",
    }],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
