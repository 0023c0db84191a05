//! backupd: backups of /perm over HTTP. The binary is the shell around the
//! library: `shell.rs` (listeners, password, signals, control API) and
//! `server.rs` (the requests, each transfer on its own thread).
#![forbid(unsafe_code)]

mod server;
mod shell;

use runtime::cli::{Opt, Spec};

const SPEC: Spec = Spec {
    name: "backupd",
    about: "backups of /perm (GET /backup.tar.gz) and restores (POST /restore) on private:8077",
    uplink: false,
    lan: true,
    options: &[Opt { name: "port", value: Some("PORT"), help: "HTTP port on the private addresses [default: 8077]" }],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, shell::run)
}
