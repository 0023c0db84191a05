//! dhcp6: the DHCPv6 client with prefix delegation on the uplink. The core is
//! the library; this binary is the shell (see `shell.rs`).
#![forbid(unsafe_code)]

mod shell;

use runtime::cli::Spec;

const SPEC: Spec = Spec {
    name: "dhcp6",
    about: "the DHCPv6 client with prefix delegation on the uplink",
    uplink: true,
    lan: false,
    options: &[],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
