//! dhcp6: the DHCPv6 client with prefix delegation on the uplink.
//!
//! Not implemented yet (issue #4): the binary accepts the common command
//! line and exits 125 ("do not restart me") so a supervisor leaves it alone.
#![forbid(unsafe_code)]

use runtime::cli::Spec;

const SPEC: Spec = Spec {
    name: "dhcp6",
    about: "the DHCPv6 client with prefix delegation on the uplink (not implemented yet)",
    uplink: true,
    lan: false,
    options: &[],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, |_base| {
        runtime::log_warn!("dhcp6 is not implemented yet; exiting 125 so it is not restarted");
        Ok(runtime::service::EXIT_DO_NOT_RESTART)
    })
}
