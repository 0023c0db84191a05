//! init: the PID 1 of the appliance. Not implemented yet (issue #9).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("init: not implemented yet (issue #9)");
    std::process::ExitCode::FAILURE
}
