//! Signalling a service by name through `<run>/<name>.pid`, and writing one's own.
//!
//! router7 scanned `/proc/*/cmdline` for a prefix, so "dhcp4" could hit "dhcp4d".
//! Here the name must match exactly: the pid file is `<run>/<name>.pid`, and the
//! process it names must be called `name` (`/proc/<pid>/comm`), so a stale pid
//! file whose pid was reused by something else is never signalled.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustix::process::{Pid, Signal as RustixSignal, kill_process};

use crate::event_loop::Signal;
use crate::statefile;

/// Why a notification could not be sent.
#[derive(Debug)]
pub enum NotifyError {
    /// The name is not a plain service name.
    BadName(String),
    /// The pid file exists but does not hold a pid.
    BadPidFile(PathBuf),
    /// `kill(2)` failed.
    Kill {
        /// The service.
        name: String,
        /// Its pid.
        pid: i32,
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(n) => write!(f, "not a service name: {n:?}"),
            Self::BadPidFile(p) => write!(f, "{}: not a pid", p.display()),
            Self::Kill { name, pid, source } => {
                write!(f, "signalling {name} (pid {pid}): {source}")
            }
        }
    }
}

impl std::error::Error for NotifyError {}

/// What happened to a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The signal was sent to this pid.
    Sent(i32),
    /// The service is not running (no pid file, or a stale one); nothing was sent.
    NotRunning,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The pid file of service `name`.
#[must_use]
pub fn pid_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.pid"))
}

/// The kernel's `comm` for a process name: the first 15 bytes.
fn comm_of(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Sends `signal` to service `name` if, and only if, it is running under that name.
pub fn notify(run_dir: &Path, name: &str, signal: Signal) -> Result<Delivery, NotifyError> {
    if !valid_name(name) {
        return Err(NotifyError::BadName(name.to_owned()));
    }
    let path = pid_path(run_dir, name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Delivery::NotRunning),
        Err(_) => return Err(NotifyError::BadPidFile(path)),
    };
    let pid: i32 = text.trim().parse().map_err(|_| NotifyError::BadPidFile(path.clone()))?;
    let Some(pid_t) = Pid::from_raw(pid).filter(|_| pid > 1) else {
        return Err(NotifyError::BadPidFile(path));
    };
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) if comm.trim_end_matches('\n') == comm_of(name) => {}
        _ => return Ok(Delivery::NotRunning),
    }
    let sig = RustixSignal::from_named_raw(signal.number())
        .ok_or_else(|| NotifyError::BadName(format!("signal {}", signal.number())))?;
    match kill_process(pid_t, sig) {
        Ok(()) => Ok(Delivery::Sent(pid)),
        Err(rustix::io::Errno::SRCH) => Ok(Delivery::NotRunning),
        Err(e) => Err(NotifyError::Kill { name: name.to_owned(), pid, source: e.into() }),
    }
}

/// Notifies each of `names`, logging failures; for "after writing X, tell A, B and C".
pub fn notify_all(run_dir: &Path, names: &[&str], signal: Signal) {
    for name in names {
        match notify(run_dir, name, signal) {
            Ok(Delivery::Sent(_)) => {}
            Ok(Delivery::NotRunning) => crate::log_debug!("notify: {name} is not running"),
            Err(e) => crate::log_warn!("notify: {e}"),
        }
    }
}

/// Whether `<run>/<name>.pid` already holds this process's pid (init wrote it).
#[must_use]
pub fn pid_file_names_us(run_dir: &Path, name: &str) -> bool {
    fs::read_to_string(pid_path(run_dir, name)).is_ok_and(|t| t.trim() == std::process::id().to_string())
}

/// This process's pid file; removed again when dropped (a clean exit).
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes `<run>/<name>.pid` with our pid.
    pub fn create(run_dir: &Path, name: &str) -> Result<Self, statefile::StateError> {
        let path = pid_path(run_dir, name);
        statefile::write_atomic(&path, format!("{}\n", std::process::id()).as_bytes())?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only remove it if it is still ours (init may have written a newer one).
        if fs::read_to_string(&self.0).is_ok_and(|t| t.trim() == std::process::id().to_string()) {
            let _ = fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};
    use std::time::Duration;

    struct Killed(Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A process whose comm is `name`: a copy of `sleep` under that name.
    fn process_named(dir: &Path, name: &str) -> Killed {
        let exe = dir.join(name);
        crate::testing::install_executable(Path::new("/bin/sleep"), &exe);
        let child = Command::new(&exe).arg("30").spawn().unwrap();
        // spawn() returns once the exec is past its point of no return, which is
        // a moment before the kernel renames the task: wait for the new comm.
        let comm = format!("/proc/{}/comm", child.id());
        for _ in 0..500 {
            if fs::read_to_string(&comm).is_ok_and(|c| c.trim() == name) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Killed(child)
    }

    fn wait_for_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
        for _ in 0..200 {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    #[test]
    fn signals_exactly_the_named_service() {
        use std::os::unix::process::ExitStatusExt;
        let dir = std::env::temp_dir().join(format!("rt-notify-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut dhcp4d = process_named(&dir, "dhcp4d");
        fs::write(pid_path(&dir, "dhcp4d"), format!("{}\n", dhcp4d.0.id())).unwrap();

        // "dhcp4" is a prefix of "dhcp4d" but has no pid file: nothing is sent.
        assert_eq!(notify(&dir, "dhcp4", Signal::Usr1).unwrap(), Delivery::NotRunning);
        // A pid file pointing at a process of another name is stale.
        fs::write(pid_path(&dir, "dnsd"), format!("{}\n", dhcp4d.0.id())).unwrap();
        assert_eq!(notify(&dir, "dnsd", Signal::Usr1).unwrap(), Delivery::NotRunning);
        assert!(dhcp4d.0.try_wait().unwrap().is_none(), "dhcp4d must not have been signalled");

        assert!(matches!(notify(&dir, "../etc/passwd", Signal::Usr1), Err(NotifyError::BadName(_))));
        fs::write(pid_path(&dir, "radvd"), "garbage").unwrap();
        assert!(matches!(notify(&dir, "radvd", Signal::Usr1), Err(NotifyError::BadPidFile(_))));

        let pid = i32::try_from(dhcp4d.0.id()).unwrap();
        assert_eq!(notify(&dir, "dhcp4d", Signal::Usr1).unwrap(), Delivery::Sent(pid));
        let status = wait_for_exit(&mut dhcp4d.0).expect("sleep dies of SIGUSR1");
        assert_eq!(status.signal(), Some(libc::SIGUSR1));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pid_file_is_written_and_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("rt-pidfile-{}", std::process::id()));
        let f = PidFile::create(&dir, "svc").unwrap();
        let text = fs::read_to_string(pid_path(&dir, "svc")).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        drop(f);
        assert!(!pid_path(&dir, "svc").exists());
        fs::remove_dir_all(dir).unwrap();
    }
}
