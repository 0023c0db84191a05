//! Early boot as PID 1, as a table-driven sequence behind a seam: the
//! [`System`] trait is every syscall the sequence makes, [`RealSystem`] makes
//! them, and [`RecordingSystem`] records them for tests (after youki's
//! `syscall/test.rs`).
//!
//! The sequence ([`boot`]): the virtual file systems of [`EARLY_MOUNTS`], then
//! `/perm` — partition 4 of the root disk (see [`crate::rootdev`]): mounted as
//! ext4 when it holds an ext file system; formatted first (and said so) only
//! when it holds no file system at all; a partition with a file system that does
//! not mount is never formatted. When `/perm` cannot be had, a tmpfs takes its
//! place so the router still routes, and status says the state is temporary.
//! Then the hostname from `/etc/hostname` and loopback up.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::mount::MountFlags;
use serde::{Deserialize, Serialize};

use crate::cmdline::KernelCmdline;
use crate::rootdev::{self, RootError};

/// One mount(2) call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Source (a device or the file system's name).
    pub source: String,
    /// Mount point.
    pub target: PathBuf,
    /// File system type.
    pub fstype: String,
    /// Flags.
    pub flags: MountFlags,
    /// File-system-specific options.
    pub data: String,
}

/// A row of the early mount table.
#[derive(Debug, Clone, Copy)]
pub struct MountStep {
    /// Source.
    pub source: &'static str,
    /// Mount point.
    pub target: &'static str,
    /// File system type.
    pub fstype: &'static str,
    /// Flags.
    pub flags: MountFlags,
    /// Options.
    pub data: &'static str,
    /// Create the mount point first (it lives on a file system mounted earlier).
    pub create_target: bool,
}

const NOSUID_NODEV: MountFlags = MountFlags::NOSUID.union(MountFlags::NODEV);
const NOSUID_NODEV_NOEXEC: MountFlags = NOSUID_NODEV.union(MountFlags::NOEXEC);

/// The virtual file systems, in order. `/proc`, `/sys`, `/dev`, `/run`, `/tmp`
/// and `/perm` must exist on the (read-only) root file system.
pub const EARLY_MOUNTS: &[MountStep] = &[
    MountStep {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        create_target: false,
    },
    MountStep {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        create_target: false,
    },
    MountStep {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MountFlags::NOSUID,
        data: "mode=0755",
        create_target: false,
    },
    MountStep {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MountFlags::NOSUID.union(MountFlags::NOEXEC),
        data: "gid=5,mode=0620,ptmxmode=0666",
        create_target: true,
    },
    MountStep {
        source: "tmpfs",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: "mode=1777",
        create_target: true,
    },
    MountStep {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: "mode=0755",
        create_target: false,
    },
    MountStep {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: "mode=1777",
        create_target: false,
    },
];

/// Where `/perm` is mounted.
pub const PERM: &str = "/perm";
/// How long to wait for the `/perm` device to appear.
pub const DEVICE_WAIT: Duration = Duration::from_secs(10);
const DEVICE_POLL: Duration = Duration::from_millis(100);

/// Every syscall of the boot sequence.
pub trait System {
    /// Creates a folder (and its parents); an existing one is fine.
    fn mkdir(&mut self, path: &Path) -> io::Result<()>;
    /// mount(2).
    fn mount(&mut self, m: &Mount) -> io::Result<()>;
    /// Reads a text file.
    fn read_to_string(&mut self, path: &Path) -> io::Result<String>;
    /// Reads the first `len` bytes of a device (fewer if it is shorter).
    fn read_head(&mut self, device: &Path, len: usize) -> io::Result<Vec<u8>>;
    /// Whether a path exists.
    fn exists(&mut self, path: &Path) -> bool;
    /// `/perm`'s device for `root=` (see [`rootdev::perm_device`]).
    fn perm_device(&mut self, root: &str) -> Result<PathBuf, RootError>;
    /// Creates an ext file system on `device`; returns the tool used.
    fn mkfs(&mut self, device: &Path) -> Result<String, String>;
    /// sethostname(2).
    fn set_hostname(&mut self, name: &str) -> io::Result<()>;
    /// Brings `lo` up.
    fn loopback_up(&mut self) -> io::Result<()>;
    /// Sleeps (the fake records it instead).
    fn sleep(&mut self, d: Duration);
}

/// What happened to `/perm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermState {
    /// The ext4 file system on partition 4 is mounted.
    Mounted,
    /// Partition 4 had no file system; init created one and mounted it.
    Formatted,
    /// A tmpfs stands in: nothing written to `/perm` survives a reboot.
    Temporary,
    /// Not PID 1: `/perm` is a folder given on the command line.
    Folder,
}

/// `/perm`'s outcome, for status and the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermReport {
    /// The state.
    pub state: PermState,
    /// The device, when one was found.
    pub device: Option<PathBuf>,
    /// What happened, in words.
    pub detail: String,
}

/// What the boot sequence did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootReport {
    /// The kernel command line.
    pub cmdline: KernelCmdline,
    /// `/perm`.
    pub perm: PermReport,
    /// The hostname set.
    pub hostname: String,
    /// Lines for the console, in order, each with whether it is a warning.
    pub messages: Vec<(bool, String)>,
}

impl BootReport {
    fn say(&mut self, warning: bool, text: String) {
        self.messages.push((warning, text));
    }
}

fn mount_step(step: &MountStep) -> Mount {
    Mount {
        source: step.source.into(),
        target: step.target.into(),
        fstype: step.fstype.into(),
        flags: step.flags,
        data: step.data.into(),
    }
}

/// The default hostname when the image has none.
pub const DEFAULT_HOSTNAME: &str = "router7";

/// A hostname as in RFC 1123 §2.1: letters, digits, `-` and dots, ≤ 64 bytes.
#[must_use]
pub fn valid_hostname(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Runs the boot sequence. Never fails: what goes wrong is reported and the
/// router carries on with what it has.
pub fn boot(sys: &mut dyn System) -> BootReport {
    let mut report = BootReport {
        cmdline: KernelCmdline::default(),
        perm: PermReport { state: PermState::Temporary, device: None, detail: String::new() },
        hostname: DEFAULT_HOSTNAME.into(),
        messages: Vec::new(),
    };
    for step in EARLY_MOUNTS {
        if step.create_target
            && let Err(e) = sys.mkdir(Path::new(step.target))
        {
            report.say(true, format!("mkdir {}: {e}", step.target));
        }
        match sys.mount(&mount_step(step)) {
            Ok(()) => {}
            // The kernel may have mounted it already (CONFIG_DEVTMPFS_MOUNT).
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {}
            Err(e) => report.say(true, format!("mount {} on {}: {e}", step.fstype, step.target)),
        }
    }
    match sys.read_to_string(Path::new("/proc/cmdline")) {
        Ok(text) => report.cmdline = KernelCmdline::parse(&text),
        Err(e) => report.say(true, format!("/proc/cmdline: {e}")),
    }
    report.perm = mount_perm(sys, &report.cmdline, &mut report.messages);
    match sys.read_to_string(Path::new("/etc/hostname")) {
        Ok(text) => {
            let name = text.lines().next().unwrap_or("").trim();
            if valid_hostname(name) {
                report.hostname = name.to_owned();
            } else {
                report.say(true, format!("/etc/hostname: {name:?} is not a hostname; using {DEFAULT_HOSTNAME}"));
            }
        }
        Err(e) => report.say(true, format!("/etc/hostname: {e}; using {DEFAULT_HOSTNAME}")),
    }
    if let Err(e) = sys.set_hostname(&report.hostname) {
        report.say(true, format!("sethostname: {e}"));
    }
    if let Err(e) = sys.loopback_up() {
        report.say(true, format!("loopback: {e}"));
    }
    report
}

fn perm_mount(device: &Path) -> Mount {
    Mount {
        source: device.display().to_string(),
        target: PERM.into(),
        fstype: "ext4".into(),
        flags: NOSUID_NODEV,
        data: String::new(),
    }
}

fn temporary(
    sys: &mut dyn System,
    device: Option<PathBuf>,
    why: String,
    messages: &mut Vec<(bool, String)>,
) -> PermReport {
    let tmpfs = Mount {
        source: "tmpfs".into(),
        target: PERM.into(),
        fstype: "tmpfs".into(),
        flags: NOSUID_NODEV,
        data: "mode=0755".into(),
    };
    let mut detail = format!("{why}; /perm is a temporary tmpfs: nothing written there survives a reboot");
    if let Err(e) = sys.mount(&tmpfs) {
        detail.push_str(&format!(" (and mounting the tmpfs failed too: {e})"));
    }
    messages.push((true, detail.clone()));
    PermReport { state: PermState::Temporary, device, detail }
}

fn mount_perm(sys: &mut dyn System, cmdline: &KernelCmdline, messages: &mut Vec<(bool, String)>) -> PermReport {
    let Some(root) = cmdline.root.clone() else {
        return temporary(sys, None, "no root= on the kernel command line".into(), messages);
    };
    // The disk is probed already (the kernel mounted root from it), but the
    // device node or sysfs entries of its partitions can trail a little.
    let mut waited = Duration::ZERO;
    let device = loop {
        let found = sys.perm_device(&root);
        match found {
            Ok(dev) if sys.exists(&dev) => break dev,
            _ if waited >= DEVICE_WAIT => {
                let why = match found {
                    Ok(dev) => format!("{} (partition 4 of root={root}) did not appear", dev.display()),
                    Err(e) => format!("cannot find partition 4 of root={root}: {e}"),
                };
                return temporary(sys, None, why, messages);
            }
            _ => {
                sys.sleep(DEVICE_POLL);
                waited += DEVICE_POLL;
            }
        }
    };
    let head = match sys.read_head(&device, rootdev::SIGNATURE_BYTES) {
        Ok(h) => h,
        Err(e) => {
            return temporary(sys, Some(device.clone()), format!("cannot read {}: {e}", device.display()), messages);
        }
    };
    match rootdev::fs_signature(&head) {
        Some("ext4") => match sys.mount(&perm_mount(&device)) {
            Ok(()) => PermReport {
                state: PermState::Mounted,
                device: Some(device.clone()),
                detail: format!("{} mounted on /perm", device.display()),
            },
            Err(e) => temporary(
                sys,
                Some(device.clone()),
                format!("{} holds an ext file system that does not mount ({e}); NOT formatting it", device.display()),
                messages,
            ),
        },
        Some(other) => temporary(
            sys,
            Some(device.clone()),
            format!("{} holds a {other} file system, not ext4; NOT formatting it", device.display()),
            messages,
        ),
        None => {
            messages
                .push((true, format!("{} holds no file system: creating ext4 on it (first boot)", device.display())));
            match sys.mkfs(&device) {
                Ok(tool) => match sys.mount(&perm_mount(&device)) {
                    Ok(()) => {
                        let detail = format!("{} formatted with {tool} and mounted on /perm", device.display());
                        messages.push((false, detail.clone()));
                        PermReport { state: PermState::Formatted, device: Some(device), detail }
                    }
                    Err(e) => temporary(
                        sys,
                        Some(device.clone()),
                        format!("{} was formatted but does not mount ({e})", device.display()),
                        messages,
                    ),
                },
                Err(e) => temporary(
                    sys,
                    Some(device.clone()),
                    format!("cannot create a file system on {}: {e}", device.display()),
                    messages,
                ),
            }
        }
    }
}

/// The real syscalls.
#[derive(Debug, Default)]
pub struct RealSystem;

/// Where init looks for a formatter, in order, with the arguments before the device.
pub const MKFS_TOOLS: &[(&str, &[&str])] = &[
    ("/sbin/mke2fs", &["-q", "-t", "ext4", "-L", "perm"]),
    ("/usr/sbin/mke2fs", &["-q", "-t", "ext4", "-L", "perm"]),
    ("/bin/mke2fs", &["-q", "-t", "ext4", "-L", "perm"]),
    // busybox makes ext2, which the ext4 driver mounts.
    ("/bin/busybox", &["mke2fs", "-L", "perm"]),
];

impl System for RealSystem {
    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn mount(&mut self, m: &Mount) -> io::Result<()> {
        let data = std::ffi::CString::new(m.data.as_str())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mount options"))?;
        let data = (!m.data.is_empty()).then_some(data.as_c_str());
        rustix::mount::mount(m.source.as_str(), &m.target, m.fstype.as_str(), m.flags, data).map_err(io::Error::from)
    }

    fn read_to_string(&mut self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn read_head(&mut self, device: &Path, len: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::with_capacity(len);
        std::fs::File::open(device)?.take(len as u64).read_to_end(&mut out)?;
        Ok(out)
    }

    fn exists(&mut self, path: &Path) -> bool {
        path.exists()
    }

    fn perm_device(&mut self, root: &str) -> Result<PathBuf, RootError> {
        rootdev::perm_device(root, Path::new("/sys"), Path::new("/dev"))
    }

    fn mkfs(&mut self, device: &Path) -> Result<String, String> {
        let Some((tool, args)) = MKFS_TOOLS.iter().find(|(t, _)| Path::new(t).is_file()) else {
            let tried: Vec<&str> = MKFS_TOOLS.iter().map(|(t, _)| *t).collect();
            return Err(format!("no formatter on the image (looked for {})", tried.join(", ")));
        };
        // Command::output waits for its own child; the supervisor's reaper does
        // not run yet during boot, so nothing else can take the exit status.
        let out =
            std::process::Command::new(tool).args(*args).arg(device).output().map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok((*tool).to_owned())
        } else {
            Err(format!("{tool} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    fn set_hostname(&mut self, name: &str) -> io::Result<()> {
        rustix::system::sethostname(name.as_bytes()).map_err(io::Error::from)
    }

    fn loopback_up(&mut self) -> io::Result<()> {
        runtime::netif::set_up("lo")
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// One recorded call of [`RecordingSystem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `mkdir`.
    Mkdir(PathBuf),
    /// `mount`.
    Mount(Mount),
    /// `mkfs`.
    Mkfs(PathBuf),
    /// `sethostname`.
    Hostname(String),
    /// `lo` up.
    LoopbackUp,
}

/// A fake [`System`] for tests: files and devices from maps, mounts that fail
/// on request, and a record of every call that changes something.
#[derive(Debug, Default)]
pub struct RecordingSystem {
    /// Calls that change the system, in order.
    pub calls: Vec<Call>,
    /// Text files by path.
    pub files: std::collections::BTreeMap<PathBuf, String>,
    /// Device contents by path.
    pub devices: std::collections::BTreeMap<PathBuf, Vec<u8>>,
    /// Mount points whose mount fails, with the errno.
    pub failing_mounts: std::collections::BTreeMap<PathBuf, i32>,
    /// What `perm_device` answers (by `root=` value).
    pub perm_devices: std::collections::BTreeMap<String, PathBuf>,
    /// Whether a formatter exists; a successful mkfs writes an ext4 magic.
    pub mkfs_available: bool,
    /// Total time slept.
    pub slept: Duration,
    /// After this much sleep, devices in `late_devices` appear.
    pub late_devices: Vec<(Duration, PathBuf, Vec<u8>)>,
}

/// An ext4-looking device head.
#[must_use]
pub fn ext4_head() -> Vec<u8> {
    let mut head = vec![0u8; 2048];
    head[1080] = 0x53;
    head[1081] = 0xef;
    head
}

impl System for RecordingSystem {
    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        self.calls.push(Call::Mkdir(path.into()));
        Ok(())
    }

    fn mount(&mut self, m: &Mount) -> io::Result<()> {
        self.calls.push(Call::Mount(m.clone()));
        match self.failing_mounts.get(&m.target) {
            Some(&errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }

    fn read_to_string(&mut self, path: &Path) -> io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn read_head(&mut self, device: &Path, len: usize) -> io::Result<Vec<u8>> {
        let d = self.devices.get(device).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(d[..len.min(d.len())].to_vec())
    }

    fn exists(&mut self, path: &Path) -> bool {
        self.devices.contains_key(path)
    }

    fn perm_device(&mut self, root: &str) -> Result<PathBuf, RootError> {
        self.perm_devices.get(root).cloned().ok_or_else(|| RootError(format!("no disk for {root}")))
    }

    fn mkfs(&mut self, device: &Path) -> Result<String, String> {
        self.calls.push(Call::Mkfs(device.into()));
        if !self.mkfs_available {
            return Err("no formatter on the image".into());
        }
        self.devices.insert(device.into(), ext4_head());
        Ok("/sbin/mke2fs".into())
    }

    fn set_hostname(&mut self, name: &str) -> io::Result<()> {
        self.calls.push(Call::Hostname(name.into()));
        Ok(())
    }

    fn loopback_up(&mut self) -> io::Result<()> {
        self.calls.push(Call::LoopbackUp);
        Ok(())
    }

    fn sleep(&mut self, d: Duration) {
        self.slept += d;
        let slept = self.slept;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.late_devices).into_iter().partition(|(at, _, _)| *at <= slept);
        self.late_devices = later;
        for (_, path, bytes) in due {
            self.devices.insert(path, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(root: &str, perm_dev: &str, contents: Option<Vec<u8>>) -> RecordingSystem {
        let mut sys = RecordingSystem::default();
        sys.files.insert("/proc/cmdline".into(), format!("console=ttyS0,115200 root={root} ro init=/init\n"));
        sys.files.insert("/etc/hostname".into(), "router7\n".into());
        sys.perm_devices.insert(root.into(), perm_dev.into());
        if let Some(c) = contents {
            sys.devices.insert(perm_dev.into(), c);
        }
        sys
    }

    fn mounts(sys: &RecordingSystem) -> Vec<(String, String, String)> {
        sys.calls
            .iter()
            .filter_map(|c| match c {
                Call::Mount(m) => Some((m.source.clone(), m.target.display().to_string(), m.fstype.clone())),
                _ => None,
            })
            .collect()
    }

    fn early() -> Vec<(String, String, String)> {
        EARLY_MOUNTS.iter().map(|s| (s.source.to_owned(), s.target.to_owned(), s.fstype.to_owned())).collect()
    }

    #[test]
    fn mounts_in_order_then_perm_then_hostname_and_loopback() {
        let mut sys = system("/dev/sda2", "/dev/sda4", Some(ext4_head()));
        let report = boot(&mut sys);
        let mut want = early();
        want.push(("/dev/sda4".into(), "/perm".into(), "ext4".into()));
        assert_eq!(mounts(&sys), want);
        // Mount points on devtmpfs are created right before their mount.
        let pts = sys.calls.iter().position(|c| *c == Call::Mkdir("/dev/pts".into())).unwrap();
        assert!(matches!(&sys.calls[pts + 1], Call::Mount(m) if m.target == Path::new("/dev/pts")));
        assert_eq!(&sys.calls[sys.calls.len() - 2..], [Call::Hostname("router7".into()), Call::LoopbackUp]);
        assert_eq!(report.perm.state, PermState::Mounted);
        assert_eq!(report.perm.device.as_deref(), Some(Path::new("/dev/sda4")));
        assert!(!sys.calls.iter().any(|c| matches!(c, Call::Mkfs(_))));
        assert_eq!(report.cmdline.root.as_deref(), Some("/dev/sda2"));
        assert!(report.messages.is_empty(), "{:?}", report.messages);
    }

    #[test]
    fn formats_a_blank_partition_once_and_says_so() {
        let mut sys = system("/dev/vda2", "/dev/vda4", Some(vec![0u8; 4096]));
        sys.mkfs_available = true;
        let report = boot(&mut sys);
        assert_eq!(report.perm.state, PermState::Formatted);
        let mkfs = sys.calls.iter().position(|c| *c == Call::Mkfs("/dev/vda4".into())).unwrap();
        assert!(matches!(&sys.calls[mkfs + 1], Call::Mount(m) if m.target == Path::new("/perm") && m.fstype == "ext4"));
        assert!(report.messages.iter().any(|(_, m)| m.contains("holds no file system: creating ext4")));
        // The next boot finds the file system and only mounts.
        let again = {
            let mut next = system("/dev/vda2", "/dev/vda4", sys.devices.get(Path::new("/dev/vda4")).cloned());
            let r = boot(&mut next);
            assert!(!next.calls.iter().any(|c| matches!(c, Call::Mkfs(_))));
            r
        };
        assert_eq!(again.perm.state, PermState::Mounted);
    }

    #[test]
    fn never_formats_a_file_system_that_does_not_mount() {
        let mut sys = system("/dev/sda2", "/dev/sda4", Some(ext4_head()));
        sys.mkfs_available = true;
        sys.failing_mounts.insert("/perm".into(), rustix::io::Errno::INVAL.raw_os_error());
        let report = boot(&mut sys);
        assert!(!sys.calls.iter().any(|c| matches!(c, Call::Mkfs(_))), "{:?}", sys.calls);
        assert_eq!(report.perm.state, PermState::Temporary);
        assert!(report.perm.detail.contains("NOT formatting"), "{}", report.perm.detail);
        // A tmpfs stands in.
        let last_perm = mounts(&sys).into_iter().rev().find(|m| m.1 == "/perm").unwrap();
        assert_eq!(last_perm.2, "tmpfs");
    }

    #[test]
    fn never_formats_another_file_system() {
        let mut fat = vec![0u8; 1024];
        fat[82..87].copy_from_slice(b"FAT32");
        fat[510] = 0x55;
        fat[511] = 0xaa;
        let mut sys = system("/dev/sda2", "/dev/sda4", Some(fat));
        sys.mkfs_available = true;
        let report = boot(&mut sys);
        assert!(!sys.calls.iter().any(|c| matches!(c, Call::Mkfs(_))));
        assert!(report.perm.detail.contains("vfat"), "{}", report.perm.detail);
        assert_eq!(report.perm.state, PermState::Temporary);
    }

    #[test]
    fn without_a_formatter_a_blank_partition_leaves_a_temporary_perm() {
        let mut sys = system("/dev/sda2", "/dev/sda4", Some(vec![0u8; 4096]));
        let report = boot(&mut sys);
        assert_eq!(report.perm.state, PermState::Temporary);
        assert!(report.perm.detail.contains("no formatter"), "{}", report.perm.detail);
    }

    #[test]
    fn waits_for_a_late_device_then_gives_up() {
        let mut sys = system("/dev/sda2", "/dev/sda4", None);
        sys.late_devices.push((Duration::from_millis(700), "/dev/sda4".into(), ext4_head()));
        let report = boot(&mut sys);
        assert_eq!(report.perm.state, PermState::Mounted);
        assert_eq!(sys.slept, Duration::from_millis(700));

        let mut never = system("/dev/sda2", "/dev/sda4", None);
        let report = boot(&mut never);
        assert_eq!(report.perm.state, PermState::Temporary);
        assert_eq!(never.slept, DEVICE_WAIT);
        assert!(report.perm.detail.contains("did not appear"), "{}", report.perm.detail);
    }

    #[test]
    fn tolerates_an_already_mounted_dev_and_reports_other_failures() {
        let mut sys = system("/dev/sda2", "/dev/sda4", Some(ext4_head()));
        sys.failing_mounts.insert("/dev".into(), rustix::io::Errno::BUSY.raw_os_error());
        sys.failing_mounts.insert("/tmp".into(), rustix::io::Errno::NODEV.raw_os_error());
        sys.files.insert("/etc/hostname".into(), "not a host name!\n".into());
        let report = boot(&mut sys);
        let text: Vec<&str> = report.messages.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("/tmp"));
        assert!(text[1].contains("not a hostname"));
        assert_eq!(report.hostname, DEFAULT_HOSTNAME);
        assert_eq!(report.perm.state, PermState::Mounted);
    }

    #[test]
    fn no_root_on_the_command_line_means_a_temporary_perm() {
        let mut sys = system("/dev/sda2", "/dev/sda4", Some(ext4_head()));
        sys.files.insert("/proc/cmdline".into(), "console=ttyS0\n".into());
        let report = boot(&mut sys);
        assert_eq!(report.perm.state, PermState::Temporary);
    }

    #[test]
    fn hostnames_follow_rfc_1123() {
        for good in ["router7", "r", "home-gw.example", "a1"] {
            assert!(valid_hostname(good), "{good}");
        }
        for bad in ["", "-x", "x-", "a..b", "under_score", "space x", &"x".repeat(65)] {
            assert!(!valid_hostname(bad), "{bad}");
        }
    }
}
