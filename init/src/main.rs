//! The `init` binary: see the crate docs.
fn main() -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
