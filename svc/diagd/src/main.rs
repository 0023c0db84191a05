//! diagd: the router's health checks. The binary is the shell around the
//! library's sans-IO monitor: `shell.rs` (the loop, probes, publishing),
//! `probes.rs` (echo sockets, TCP connects), `web.rs` (HTTP on private:7733).
#![forbid(unsafe_code)]

mod changes;
mod probes;
mod shell;
mod web;

use runtime::cli::{Opt, Spec};

const SPEC: Spec = Spec {
    name: "diagd",
    about: "health checks of the uplink: link, DHCP leases, gateways, TCP reachability; private:7733",
    uplink: true,
    lan: true,
    options: &[
        Opt {
            name: "http",
            value: Some("ADDR:PORT"),
            help: "serve HTTP only on this address [default: every private address, port 7733]",
        },
        Opt {
            name: "ipv6",
            value: Some("MODE"),
            help: "whether IPv6 checks count: auto, required or ignored [default: config.json's, else auto]",
        },
    ],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
