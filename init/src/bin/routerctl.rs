//! `routerctl`: status, logs, restart and stop from the serial console, through
//! init's control socket. See `init::routerctl`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = init::routerctl::run(&args, &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    std::process::ExitCode::from(code)
}
