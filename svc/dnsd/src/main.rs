//! dnsd: the LAN's caching DNS forwarder and local names.
//!
//! Not implemented yet (issue #6): the binary accepts the common command
//! line and exits 125 ("do not restart me") so a supervisor leaves it alone.
#![forbid(unsafe_code)]

use runtime::cli::Spec;

const SPEC: Spec = Spec {
    name: "dnsd",
    about: "the LAN's caching DNS forwarder and local names (not implemented yet)",
    uplink: false,
    lan: true,
    options: &[],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, |_base| {
        runtime::log_warn!("dnsd is not implemented yet; exiting 125 so it is not restarted");
        Ok(runtime::service::EXIT_DO_NOT_RESTART)
    })
}
