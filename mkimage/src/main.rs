//! mkimage: the host tool. Not implemented yet (issue #10).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("mkimage: not implemented yet (issue #10)");
    std::process::ExitCode::FAILURE
}
