//! dhcp4: the DHCPv4 client on the uplink. The binary is the shell around the
//! library's sans-IO core: see `shell.rs` (sockets, control API, signals) and
//! `store.rs` (files).
#![forbid(unsafe_code)]

mod shell;
mod store;

use runtime::cli::Spec;

const SPEC: Spec = Spec {
    name: "dhcp4",
    about: "the DHCPv4 client on the uplink: keeps /perm/dhcp4/wire/lease.json current",
    uplink: true,
    lan: false,
    options: &[],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
