//! dnsd: the LAN's caching DNS forwarder and local names.
//!
//! The binary is the shell around the core in the library: it reads the
//! inputs (`inputs`), owns the sockets (`net`, `listeners`, `tcp`), moderates
//! busy listeners (`moderation`) and runs one mio loop (`shell`). See the
//! crate's README for files, ports and configuration.
#![forbid(unsafe_code)]

mod inputs;
mod listeners;
mod moderation;
mod net;
mod shell;
mod tcp;

use runtime::cli::{Opt, Spec};

const SPEC: Spec = Spec {
    name: "dnsd",
    about: "the LAN's caching DNS forwarder and local names",
    uplink: false,
    lan: true,
    options: &[
        Opt {
            name: "listen",
            value: Some("ADDR:PORT[,…]"),
            help: "serve DNS (UDP and TCP) on exactly these addresses [default: port 53 on every private address]",
        },
        Opt {
            name: "http-port",
            value: Some("PORT"),
            help: "port of /metrics on every private address; 0 turns it off [default: 8053]",
        },
    ],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
