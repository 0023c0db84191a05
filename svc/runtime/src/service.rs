//! What every service binary does before its own work: parse the command line,
//! set up logging, create the event loop (blocking signals before any thread
//! exists), start the process's one HTTP server thread and on it the control
//! API on `<run>/router/<name>.sock` with events in
//! `<perm>/<name>/events.jsonl`, and write `<run>/<name>.pid`.
//!
//! ```no_run
//! use runtime::cli::Spec;
//! use runtime::service::{self, Base};
//! const SPEC: Spec = Spec { name: "example", about: "an example", uplink: false, lan: true, options: &[] };
//! fn run(base: Base) -> Result<i32, Box<dyn std::error::Error>> { Ok(0) }
//! fn main() -> std::process::ExitCode { service::main(&SPEC, run) }
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Args, CliError, Spec};
use crate::control::{self, Control};
use crate::event_loop::EventLoop;
use crate::httpd::Server;
use crate::notify::PidFile;

/// Exit code meaning "do not restart me" (gokrazy's convention).
pub const EXIT_DO_NOT_RESTART: i32 = 125;

/// A started service's shared parts.
#[derive(Debug)]
pub struct Base {
    /// The command line.
    pub args: Args,
    /// The loop, with the control API attached.
    pub event_loop: EventLoop,
    /// The control API handle.
    pub control: Control,
    /// The process's HTTP server (one thread): the control socket and every
    /// listener of the service's own pages.
    pub httpd: Server,
    /// The pid file, removed on a clean exit (`None` when init wrote it and we
    /// may not: services run unprivileged).
    pub pid_file: Option<PidFile>,
    /// The control socket, removed on a clean exit.
    pub socket: SocketFile,
}

/// A Unix socket path removed when dropped.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Base {
    /// The service's folder under `/perm`.
    #[must_use]
    pub fn perm_dir(&self, name: &str) -> PathBuf {
        self.args.perm.join(name)
    }
}

/// Parses arguments and starts the shared parts.
pub fn start(spec: &Spec, args: Args) -> Result<Base, Box<dyn Error>> {
    crate::log::set_debug(args.debug);
    crate::sys::single_malloc_arena();
    let mut event_loop = EventLoop::new()?;
    let events_file = args.perm.join(spec.name).join("events.jsonl");
    let control = Control::new(spec.name, Some(events_file), event_loop.waker());
    // After the loop: the server's thread inherits the blocked signals.
    let httpd = Server::new()?;
    let socket = control::socket_path(&args.run, spec.name);
    control.listen(&httpd, &socket).map_err(|e| format!("control socket {}: {e}", socket.display()))?;
    event_loop.attach_control(control.clone());
    let pid_file = match PidFile::create(&args.run, spec.name) {
        Ok(f) => Some(f),
        // Under init, /run is root's and init has written the file already.
        Err(_) if crate::notify::pid_file_names_us(&args.run, spec.name) => None,
        Err(e) => {
            crate::log_warn!("cannot write my pid file ({e}); nothing can notify me by name");
            None
        }
    };
    Ok(Base { args, event_loop, control, httpd, pid_file, socket: SocketFile(socket) })
}

/// Runs a service: parses the command line, starts the shared parts, calls
/// `run`, and maps the outcome to an exit code (errors are logged, exit 1;
/// usage errors exit 2).
pub fn main(spec: &Spec, run: impl FnOnce(Base) -> Result<i32, Box<dyn Error>>) -> ExitCode {
    let args = match spec.parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(CliError::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(CliError::Usage(text)) => {
            eprintln!("{text}");
            return ExitCode::from(2);
        }
    };
    let result = start(spec, args).and_then(run);
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            crate::log_error!("{}: {e}", spec.name);
            ExitCode::FAILURE
        }
    }
}
