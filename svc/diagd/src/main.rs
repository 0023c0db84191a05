//! diagd: health checks.
//!
//! Not implemented yet (issue #12): the binary accepts the common command
//! line and exits 125 ("do not restart me") so a supervisor leaves it alone.
#![forbid(unsafe_code)]

use runtime::cli::Spec;

const SPEC: Spec =
    Spec { name: "diagd", about: "health checks (not implemented yet)", uplink: true, lan: true, options: &[] };

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, |_base| {
        runtime::log_warn!("diagd is not implemented yet; exiting 125 so it is not restarted");
        Ok(runtime::service::EXIT_DO_NOT_RESTART)
    })
}
