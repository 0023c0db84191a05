//! Starting a service: its home folder under `/perm`, its environment, and the
//! child set-up (own session and process group, signal mask cleared, own uid,
//! gid and groups, only its capabilities, no new privileges) done between fork
//! and exec by `runtime::sys::set_child_setup`.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use runtime::sys::{ChildSetup, Credentials};

use crate::manifest::ServiceSpec;

/// `PATH` for services.
pub const SERVICE_PATH: &str = "/svc:/bin";
/// Most entries a home folder's ownership fix walks (a runaway tree is left alone).
const MAX_CHOWN_ENTRIES: usize = 100_000;

/// How services are started.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    /// `/perm`.
    pub perm: PathBuf,
    /// `/run`.
    pub run: PathBuf,
    /// Switch to the manifest's user and capabilities (init runs as root);
    /// without root a service runs as init's own user.
    pub drop_privileges: bool,
    /// `/proc/sys/kernel/cap_last_cap`.
    pub last_cap: u32,
}

/// A started service.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid (and process group).
    pub pid: i32,
    /// Read end of its stdout, non-blocking.
    pub stdout: OwnedFd,
    /// Read end of its stderr, non-blocking.
    pub stderr: OwnedFd,
}

/// Reads the highest capability number the kernel knows.
#[must_use]
pub fn last_cap() -> u32 {
    fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|t| t.trim().parse().ok()).unwrap_or(40)
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> io::Result<usize> {
    let mut stack = vec![dir.to_path_buf()];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            n += 1;
            if n > MAX_CHOWN_ENTRIES {
                return Ok(n);
            }
            let path = entry.path();
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            if entry.file_type()?.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(n)
}

/// Creates `<perm>/<name>` (mode 0755, owned by the service) and returns it.
/// When the folder belongs to someone else (a router7 `/perm` carried over,
/// whose files root owned, or a changed uid), its whole tree is handed over.
pub fn prepare_home(spec: &ServiceSpec, cfg: &SpawnConfig) -> io::Result<PathBuf> {
    let home = cfg.perm.join(&spec.name);
    fs::create_dir_all(&home)?;
    if cfg.drop_privileges {
        let meta = fs::symlink_metadata(&home)?;
        if meta.uid() != spec.uid || meta.gid() != spec.gid {
            std::os::unix::fs::lchown(&home, Some(spec.uid), Some(spec.gid))?;
            chown_tree(&home, spec.uid, spec.gid)?;
        }
    }
    // Others read the state files services share (leases, interfaces), so the
    // folder is world-readable; secrets are written 0600 by their owner.
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755))?;
    Ok(home)
}

fn nonblocking(fd: OwnedFd) -> io::Result<OwnedFd> {
    rustix::io::ioctl_fionbio(&fd, true)?;
    Ok(fd)
}

/// Starts `spec` with its home at `home`.
pub fn spawn(spec: &ServiceSpec, home: &Path, cfg: &SpawnConfig) -> io::Result<Spawned> {
    let mut cmd = Command::new(&spec.path);
    cmd.args(spec.command_args(&cfg.perm, &cfg.run))
        .env_clear()
        .env("PATH", SERVICE_PATH)
        .envs(&spec.env)
        .env("HOME", home)
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let credentials = cfg.drop_privileges.then(|| Credentials {
        uid: spec.uid,
        gid: spec.gid,
        groups: spec.groups.clone(),
        capabilities: spec.capability_mask,
        last_cap: cfg.last_cap,
    });
    runtime::sys::set_child_setup(&mut cmd, ChildSetup { new_session: true, controlling_tty: false, credentials });
    let mut child = cmd.spawn()?;
    let pid = i32::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    // spawn() gave us both pipes because both were asked for.
    let stdout = child.stdout.take().map(OwnedFd::from).ok_or_else(|| io::Error::other("no stdout pipe"))?;
    let stderr = child.stderr.take().map(OwnedFd::from).ok_or_else(|| io::Error::other("no stderr pipe"))?;
    // Dropping `child` neither waits nor kills: init's reaper collects the exit.
    drop(child);
    Ok(Spawned { pid, stdout: nonblocking(stdout)?, stderr: nonblocking(stderr)? })
}
