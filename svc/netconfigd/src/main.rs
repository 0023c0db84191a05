//! netconfigd: links, addresses, routes, sysctls and the nftables firewall.
//!
//! Not implemented yet (issue #8): the binary accepts the common command
//! line and exits 125 ("do not restart me") so a supervisor leaves it alone.
#![forbid(unsafe_code)]

use runtime::cli::Spec;

const SPEC: Spec = Spec {
    name: "netconfigd",
    about: "links, addresses, routes, sysctls and the nftables firewall (not implemented yet)",
    uplink: true,
    lan: true,
    options: &[],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, |_base| {
        runtime::log_warn!("netconfigd is not implemented yet; exiting 125 so it is not restarted");
        Ok(runtime::service::EXIT_DO_NOT_RESTART)
    })
}
