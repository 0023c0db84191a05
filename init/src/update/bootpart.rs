//! The boot partition (partition 1, FAT): the slots' kernels, `syslinux.cfg`
//! whose `DEFAULT` names the committed slot, and `ldlinux.sys` whose last
//! 1024 bytes are syslinux's ADV (the one-shot boot command).
//!
//! It is mounted (vfat) at `/boot` only for the duration of one operation and
//! unmounted right after, so a power loss almost always finds it clean. Files
//! are replaced by writing `<name>.tmp`, syncing, renaming over the name and
//! syncing the folder. FAT gives no atomic rename across a power loss (the
//! directory entry and the FAT are separate writes), which is why nothing the
//! running system needs is written this way before the commit: a torn kernel
//! file only breaks the inactive slot, which is not activatable until its
//! upload finished. The ADV is rewritten in place, never moved: syslinux
//! recorded its sectors at install time.
//!
//! With `--update-boot DIR` (supervise-only tests) a folder stands in and nothing is mounted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::mount::{MountFlags, UnmountFlags};

use bootslot::adv;
use bootslot::loader::CONFIG_FILE;

/// Where the boot partition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A FAT device, mounted at `mount_point` for each operation.
    Device {
        /// Partition 1 of the root disk.
        device: PathBuf,
        /// `/boot` on the root file system.
        mount_point: PathBuf,
    },
    /// A folder standing in for it.
    Folder(PathBuf),
}

/// The boot partition; one operation at a time.
#[derive(Debug)]
pub struct BootPartition {
    location: Location,
    lock: Mutex<()>,
}

fn errno(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

impl BootPartition {
    /// The partition at `location`.
    #[must_use]
    pub fn new(location: Location) -> Self {
        Self { location, lock: Mutex::new(()) }
    }

    /// Where it is.
    #[must_use]
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Runs `f` with the partition's root folder, mounting it around the call.
    ///
    /// # Errors
    /// When it cannot be mounted, or `f` fails.
    pub fn with<T>(&self, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
        let _one = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &self.location {
            Location::Folder(dir) => f(dir),
            Location::Device { device, mount_point } => {
                let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
                match rustix::mount::mount(device, mount_point, "vfat", flags, None) {
                    // Left mounted by an operation that was cut short: use it.
                    Ok(()) | Err(rustix::io::Errno::BUSY) => {}
                    Err(e) => {
                        return Err(io::Error::new(
                            errno(e).kind(),
                            format!("mount {} (vfat) on {}: {e}", device.display(), mount_point.display()),
                        ));
                    }
                }
                let result = f(mount_point);
                rustix::fs::sync();
                match (unmount(mount_point), result) {
                    (Err(e), Ok(_)) => Err(io::Error::other(format!("unmount {}: {e}", mount_point.display()))),
                    (_, result) => result,
                }
            }
        }
    }
}

/// How long a busy boot partition is waited for before it is detached.
const UNMOUNT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Unmounts `mount_point` once nothing holds a file on it. Busy is normally a
/// child init is just starting: forked while a file here was open, it holds a
/// copy of that descriptor until it executes its program (close-on-exec), a
/// few milliseconds. Past [`UNMOUNT_PATIENCE`] the mount is detached — the
/// data is synced already, the kernel unmounts it when the last file closes,
/// and the next operation mounts afresh — which is not an error either.
fn unmount(mount_point: &Path) -> Result<(), rustix::io::Errno> {
    let deadline = runtime::clock::now() + UNMOUNT_PATIENCE;
    loop {
        match rustix::mount::unmount(mount_point, UnmountFlags::empty()) {
            Err(rustix::io::Errno::BUSY) if runtime::clock::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(rustix::io::Errno::BUSY) => return rustix::mount::unmount(mount_point, UnmountFlags::DETACH),
            other => return other,
        }
    }
}

/// Syncs a folder so a rename in it is on the disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with what `write` puts into a new file: `<name>.tmp`,
/// synced, renamed over `name`, folder synced.
///
/// # Errors
/// From `write` (the temp file is removed) or the file system.
pub fn replace_file<T, E: From<io::Error>>(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
    let out = match write(&mut file) {
        Ok(v) => v,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)?;
    Ok(out)
}

/// `syslinux.cfg`.
///
/// # Errors
/// When it cannot be read.
pub fn read_config(dir: &Path) -> io::Result<String> {
    std::fs::read_to_string(dir.join(CONFIG_FILE))
}

/// Replaces `syslinux.cfg`.
///
/// # Errors
/// From the file system.
pub fn write_config(dir: &Path, text: &str) -> io::Result<()> {
    replace_file(dir, CONFIG_FILE, |f| f.write_all(text.as_bytes()))
}

fn open_adv(dir: &Path) -> io::Result<(File, u64, [u8; adv::ADV_BYTES])> {
    let path = dir.join(adv::LOADER_FILE);
    // Root may write it although syslinux marks it read-only (a FAT attribute).
    let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
    let len = file.seek(SeekFrom::End(0))?;
    let at = len.checked_sub(adv::ADV_BYTES as u64).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: too short to hold an ADV", path.display()))
    })?;
    file.seek(SeekFrom::Start(at))?;
    let mut bytes = [0u8; adv::ADV_BYTES];
    file.read_exact(&mut bytes)?;
    Ok((file, at, bytes))
}

fn invalid(e: adv::AdvError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The one-shot boot command, if any.
///
/// # Errors
/// When `ldlinux.sys` is missing or holds no valid ADV.
pub fn boot_once(dir: &Path) -> io::Result<Option<String>> {
    let (_, _, bytes) = open_adv(dir)?;
    adv::boot_once(&bytes).map_err(invalid)
}

/// Sets (or with `None` clears) the one-shot boot command, in place.
///
/// # Errors
/// When `ldlinux.sys` is missing, holds no valid ADV, or cannot be written.
pub fn set_boot_once(dir: &Path, command: Option<&str>) -> io::Result<()> {
    let (mut file, at, bytes) = open_adv(dir)?;
    let new = adv::with_boot_once(&bytes, command).map_err(invalid)?;
    if new != bytes {
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&new)?;
        file.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("init-bootpart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_adv_is_rewritten_in_place_at_the_end_of_ldlinux_sys() {
        let d = folder("adv");
        let mut loader = vec![0x90u8; 3000];
        loader.extend_from_slice(&adv::encode(&[]).unwrap());
        std::fs::write(d.join("ldlinux.sys"), &loader).unwrap();
        assert_eq!(boot_once(&d).unwrap(), None);
        set_boot_once(&d, Some("b router.trial=1")).unwrap();
        assert_eq!(boot_once(&d).unwrap().as_deref(), Some("b router.trial=1"));
        let after = std::fs::read(d.join("ldlinux.sys")).unwrap();
        assert_eq!(after.len(), loader.len());
        assert_eq!(after[..3000], loader[..3000], "only the ADV changed");
        set_boot_once(&d, None).unwrap();
        assert_eq!(std::fs::read(d.join("ldlinux.sys")).unwrap(), loader);
        std::fs::write(d.join("ldlinux.sys"), [0u8; 2000]).unwrap();
        assert!(set_boot_once(&d, Some("b")).is_err(), "no valid ADV: nothing written");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A file held open on the mount for a moment (as by a child forked
    /// while a file there was open, until it executes its program) delays the
    /// unmount instead of failing it; one held for good gets the mount
    /// detached. tmpfs stands in for the FAT partition: the host kernel may
    /// lack vfat, and unmounting does not depend on the file system.
    #[test]
    fn a_file_held_open_for_a_moment_delays_the_unmount_and_one_held_for_good_detaches_it() {
        if !runtime::testing::root("a_file_held_open_for_a_moment_delays_the_unmount_and_one_held_for_good_detaches_it")
        {
            return;
        }
        let d = folder("unmount");
        let mounted = |p: &Path| std::fs::read_to_string("/proc/self/mounts").unwrap().contains(p.to_str().unwrap());
        let mount = |p: &Path| {
            std::fs::create_dir_all(p).unwrap();
            rustix::mount::mount("none", p, "tmpfs", MountFlags::empty(), None).unwrap();
            std::fs::write(p.join(CONFIG_FILE), "DEFAULT a\n").unwrap();
        };

        let briefly = d.join("briefly");
        mount(&briefly);
        let file = File::open(briefly.join(CONFIG_FILE)).unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(file);
        });
        assert_eq!(unmount(&briefly), Ok(()));
        holder.join().unwrap();
        assert!(!mounted(&briefly));

        let for_good = d.join("for-good");
        mount(&for_good);
        let file = File::open(for_good.join(CONFIG_FILE)).unwrap();
        assert_eq!(unmount(&for_good), Ok(()), "detached");
        assert!(!mounted(&for_good));
        drop(file);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn files_are_replaced_whole_or_not_at_all() {
        let d = folder("replace");
        write_config(&d, "DEFAULT a\n").unwrap();
        assert_eq!(read_config(&d).unwrap(), "DEFAULT a\n");
        let failed: io::Result<()> = replace_file(&d, CONFIG_FILE, |f| {
            f.write_all(b"DEF")?;
            Err(io::Error::other("cut off"))
        });
        assert!(failed.is_err());
        assert_eq!(read_config(&d).unwrap(), "DEFAULT a\n", "the old file stays");
        assert!(!d.join("syslinux.cfg.tmp").exists(), "no temp file left");
        let part = BootPartition::new(Location::Folder(d.clone()));
        assert_eq!(part.with(read_config).unwrap(), "DEFAULT a\n");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
