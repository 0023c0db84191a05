//! The `/perm` partition: ext4, made by Debian's `mkfs.ext4` (no Rust crate
//! writes ext4 well) straight into the image at the partition's offset, filled
//! from a staging folder (`-d`), then owners and modes fixed with `debugfs`
//! so they never depend on who ran the build.
//!
//! Reproducible: fixed UUID and directory hash seed (derived from the disk
//! signature), and `E2FSPROGS_FAKE_TIME`/`SOURCE_DATE_EPOCH` for every
//! timestamp. Init (issue #9) formats partition 4 only when it holds no valid
//! file system, so an image from mkimage boots with this one.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::layout::{DiskId, Extent};

/// Volume label of `/perm`.
pub const LABEL: &str = "perm";

/// A file to put on `/perm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermFile {
    /// Path relative to `/perm`, e.g. `router/password`.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Contents.
    pub data: Vec<u8>,
}

/// A folder on `/perm` whose mode and owner are not the default 0755 root:root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermDir {
    /// Path relative to `/perm`, e.g. `router`; it must hold one of the files.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The file system UUID of `/perm` on disk `id` (also its hash seed).
#[must_use]
pub fn uuid(id: DiskId) -> String {
    format!("{:08x}-7237-4000-8000-000000000004", id.0)
}

fn set_time(path: &Path, epoch: u64) -> Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    let times = fs::FileTimes::new().set_accessed(t).set_modified(t);
    fs::File::open(path).and_then(|f| f.set_times(times)).map_err(|e| Error::io(path, e))
}

/// Copies `files` into `staging`; returns the folders they need (relative).
/// mkfs.ext4 -d copies modification times, so every one is set to `epoch`.
fn stage(staging: &Path, files: &[PermFile], epoch: u64) -> Result<Vec<String>> {
    let mut dirs = Vec::new();
    for f in files {
        if f.path.starts_with('/') || f.path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(Error::Invalid(format!("bad /perm path {:?}", f.path)));
        }
        let target = staging.join(&f.path);
        let mut parent = Path::new(&f.path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
        if let Some(p) = target.parent() {
            fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
        }
        fs::write(&target, &f.data).map_err(|e| Error::io(&target, e))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(f.mode)).map_err(|e| Error::io(&target, e))?;
        set_time(&target, epoch)?;
    }
    dirs.sort();
    dirs.dedup();
    // Deepest first: setting a folder's time must come after its contents.
    for d in dirs.iter().rev() {
        set_time(&staging.join(d), epoch)?;
    }
    set_time(staging, epoch)?;
    Ok(dirs)
}

/// Creates ext4 on `extent` of the image or device `target` with `files`;
/// the folders they need are 0755 root:root unless `dirs` says otherwise.
/// `scratch` is an empty folder for the staging copy.
///
/// # Errors
/// When mkfs.ext4 or debugfs fail, or a folder of `dirs` holds no file.
pub fn make(
    target: &Path,
    extent: Extent,
    id: DiskId,
    epoch: u64,
    files: &[PermFile],
    dirs: &[PermDir],
    scratch: &Path,
) -> Result<()> {
    let staging: PathBuf = scratch.join("perm");
    fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let needed = stage(&staging, files, epoch)?;
    if let Some(d) = dirs.iter().find(|d| !needed.contains(&d.path)) {
        return Err(Error::Invalid(format!("/perm folder {:?} holds no file", d.path)));
    }
    let uuid = uuid(id);
    let epoch = epoch.to_string();
    crate::tools::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096", "-L", LABEL, "-U", &uuid, "-E"])
            .arg(format!("hash_seed={uuid},root_owner=0:0,offset={}", extent.start))
            .arg("-d")
            .arg(&staging)
            .arg(target)
            .arg(format!("{}k", extent.size / 1024))
            .env("E2FSPROGS_FAKE_TIME", &epoch)
            .env("SOURCE_DATE_EPOCH", &epoch),
    )?;
    // mkfs.ext4 -d copies the staging folder's owners (the user who runs the
    // build) and change times (which no one can set); set what the router
    // expects and the build's time.
    let mut script = String::new();
    let mut inodes: Vec<(String, u32, u32, u32)> = needed
        .iter()
        .map(|d| match dirs.iter().find(|o| &o.path == d) {
            Some(o) => (d.clone(), o.uid, o.gid, 0o040_000 | (o.mode & 0o7777)),
            None => (d.clone(), 0, 0, 0o040_755),
        })
        .collect();
    inodes.extend(files.iter().map(|f| (f.path.clone(), f.uid, f.gid, 0o100_000 | (f.mode & 0o7777))));
    for (path, uid, gid, mode) in inodes {
        let _ = writeln!(script, "sif /{path} uid {uid}\nsif /{path} gid {gid}\nsif /{path} mode 0{mode:o}");
        for field in ["atime", "mtime", "ctime", "crtime"] {
            let _ = writeln!(script, "sif /{path} {field} @{epoch}");
        }
    }
    let script_path = scratch.join("debugfs.cmd");
    fs::write(&script_path, script).map_err(|e| Error::io(&script_path, e))?;
    let device = format!("{}?offset={}", target.display(), extent.start);
    let out = crate::tools::run(
        Command::new("debugfs")
            .arg("-w")
            .arg("-f")
            .arg(&script_path)
            .arg(&device)
            .env("E2FSPROGS_FAKE_TIME", &epoch)
            .env("SOURCE_DATE_EPOCH", &epoch),
    )?;
    // debugfs reports command errors on stderr but still exits 0.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = stderr.lines().find(|l| !l.starts_with("debugfs ") && !l.trim().is_empty()) {
        return Err(Error::Tool {
            command: format!("debugfs -w {device}"),
            status: "error".into(),
            stderr: line.into(),
        });
    }
    Ok(())
}
