//! dhcp4d: the DHCPv4 server on the LAN.
//!
//! Not implemented yet (issue #5): the binary accepts the common command
//! line and exits 125 ("do not restart me") so a supervisor leaves it alone.
#![forbid(unsafe_code)]

use runtime::cli::Spec;

const SPEC: Spec = Spec {
    name: "dhcp4d",
    about: "the DHCPv4 server on the LAN (not implemented yet)",
    uplink: false,
    lan: true,
    options: &[],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, |_base| {
        runtime::log_warn!("dhcp4d is not implemented yet; exiting 125 so it is not restarted");
        Ok(runtime::service::EXIT_DO_NOT_RESTART)
    })
}
