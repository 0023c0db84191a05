//! Restoring a backup: check the whole archive first, then make `/perm` equal
//! to it. A bad archive changes nothing.
//!
//! [`validate`] reads the gzip'd tar to its end: gzip's CRC and length, every
//! tar header's checksum, both end-of-archive blocks, nothing after them but
//! zeros and nothing after the gzip member; every path relative and
//! normalised (no `..`, no absolute path), no links, devices or FIFOs, no
//! entry inside a `nobackup` or `srv` folder, no path twice, no file where
//! another entry needs a folder; sizes within [`Limits`].
//!
//! [`apply`] then, still before touching `/perm`: refuses an archive whose
//! paths meet something in `/perm` of another kind (a folder where the
//! archive has a file, a link anywhere on a path), checks the free space,
//! and extracts every file into a staging folder on the same filesystem
//! (`/perm/backupd/nobackup/`, out of backups itself), each synced with its
//! mode, owner and time. Only then does it rename each file into place (one
//! atomic step per file), remove the regular files and empty folders that
//! the archive does not have (leaving `nobackup`/`srv` folders, links and
//! devices alone, as backups leave them out), and set the folders' modes,
//! owners and times. Paths in `/perm` are walked by descriptor without
//! following links, so a link cannot send a write outside `/perm`.
//!
//! Set-user-ID and set-group-ID bits are not restored. Owners are restored
//! when the service may (`CAP_CHOWN`); otherwise the files belong to
//! backupd and the summary says how many kept the wrong owner.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use flate2::bufread::GzDecoder;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use serde::Serialize;

use crate::archive::skipped_name;
use crate::tar::{self, BLOCK, Entry, Kind, Reader, Step};

/// Bounds on what a restore accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The uploaded (compressed) archive.
    pub max_upload: u64,
    /// All file contents together.
    pub max_total: u64,
    /// One file.
    pub max_file: u64,
    /// Entries.
    pub max_entries: usize,
}

impl Default for Limits {
    /// `/perm` holds leases, keys and small state; these leave room for
    /// years of it and stop an archive from filling the disk.
    fn default() -> Self {
        Self { max_upload: 1 << 30, max_total: 2 << 30, max_file: 1 << 30, max_entries: 100_000 }
    }
}

/// Why a restore did not happen (or, for [`RestoreError::Io`], stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// The archive is malformed or holds something we do not restore (400).
    Invalid(String),
    /// Over a size or count limit (413).
    TooLarge(String),
    /// An archive path meets something of another kind in `/perm` (409).
    Conflict(String),
    /// Not enough free space (507).
    NoSpace(String),
    /// A file-system error (500). Before the first rename nothing has changed.
    Io(String),
}

impl RestoreError {
    /// The HTTP status for it.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::TooLarge(_) => 413,
            Self::Conflict(_) => 409,
            Self::NoSpace(_) => 507,
            Self::Io(_) => 500,
        }
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(m) | Self::TooLarge(m) | Self::Conflict(m) | Self::NoSpace(m) | Self::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RestoreError {}

fn io_err(what: impl fmt::Display) -> impl FnOnce(io::Error) -> RestoreError {
    move |e| RestoreError::Io(format!("{what}: {e}"))
}

/// A checked archive's entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// In archive order (a folder before what is in it, as tar writes them).
    pub entries: Vec<Entry>,
    /// Bytes of file contents.
    pub total: u64,
}

impl Manifest {
    /// The files' and folders' paths.
    fn paths(&self) -> HashSet<&str> {
        self.entries.iter().map(|e| e.path.as_str()).collect()
    }
}

fn invalid(e: impl fmt::Display) -> RestoreError {
    RestoreError::Invalid(e.to_string())
}

/// Reads a gzip'd tar, checking everything (see the module docs), and hands
/// each entry to `each` with a reader of exactly its contents.
fn walk<R: BufRead>(
    input: R,
    limits: &Limits,
    mut each: impl FnMut(&Entry, &mut dyn Read) -> Result<(), RestoreError>,
) -> Result<Manifest, RestoreError> {
    let mut gz = GzDecoder::new(input);
    let mut reader = Reader::new();
    let mut manifest = Manifest::default();
    let mut files: HashSet<String> = HashSet::new();
    let mut dirs: HashSet<String> = HashSet::new();
    let mut explicit_dirs: HashSet<String> = HashSet::new();
    let read_err = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => RestoreError::Invalid("the archive is truncated".into()),
        _ => RestoreError::Invalid(format!("gzip: {e}")),
    };
    let mut block = [0u8; BLOCK];
    loop {
        gz.read_exact(&mut block).map_err(read_err)?;
        match reader.header(&block).map_err(invalid)? {
            Step::End => break,
            Step::Zero => {}
            Step::Metadata(len) => {
                let mut data = vec![0u8; usize::try_from(len).unwrap_or(0)];
                gz.read_exact(&mut data).map_err(read_err)?;
                let mut pad = vec![0u8; tar::padding(len)];
                gz.read_exact(&mut pad).map_err(read_err)?;
                reader.metadata(&data).map_err(invalid)?;
            }
            Step::Entry(entry) => {
                if entry.path.is_empty() {
                    continue; // the root folder itself ("./")
                }
                if manifest.entries.len() >= limits.max_entries {
                    return Err(RestoreError::TooLarge(format!("more than {} entries", limits.max_entries)));
                }
                if let Some(c) = entry.path.split('/').find(|c| skipped_name(c)) {
                    return Err(invalid(format!(
                        "{:?} is inside a {c:?} folder, which restores leave alone",
                        entry.path
                    )));
                }
                let mut ancestor = String::new();
                let components: Vec<&str> = entry.path.split('/').collect();
                for c in &components[..components.len() - 1] {
                    if !ancestor.is_empty() {
                        ancestor.push('/');
                    }
                    ancestor.push_str(c);
                    if files.contains(&ancestor) {
                        return Err(invalid(format!(
                            "{:?} needs {ancestor:?} to be a folder, but it is a file",
                            entry.path
                        )));
                    }
                    dirs.insert(ancestor.clone());
                }
                match entry.kind {
                    Kind::Dir => {
                        if files.contains(&entry.path) || !explicit_dirs.insert(entry.path.clone()) {
                            return Err(invalid(format!("{:?} appears twice", entry.path)));
                        }
                        dirs.insert(entry.path.clone());
                        each(&entry, &mut io::empty())?;
                    }
                    Kind::File(size) => {
                        if dirs.contains(&entry.path) || !files.insert(entry.path.clone()) {
                            return Err(invalid(format!("{:?} appears twice", entry.path)));
                        }
                        if size > limits.max_file {
                            return Err(RestoreError::TooLarge(format!(
                                "{:?} has {size} bytes; the most is {}",
                                entry.path, limits.max_file
                            )));
                        }
                        manifest.total += size;
                        if manifest.total > limits.max_total {
                            return Err(RestoreError::TooLarge(format!(
                                "more than {} bytes of files",
                                limits.max_total
                            )));
                        }
                        let mut contents = (&mut gz).take(size);
                        each(&entry, &mut contents)?;
                        // Whatever `each` left unread (validation reads nothing).
                        io::copy(&mut contents, &mut io::sink()).map_err(read_err)?;
                        if contents.limit() > 0 {
                            return Err(RestoreError::Invalid("the archive is truncated".into()));
                        }
                        let mut pad = vec![0u8; tar::padding(size)];
                        gz.read_exact(&mut pad).map_err(read_err)?;
                        reader.skip(size + pad.len() as u64);
                    }
                }
                manifest.entries.push(entry);
            }
        }
    }
    // After the end marker: only zero padding (tar writes whole records), then
    // the end of the gzip member (which checks its CRC and length), then nothing.
    let mut rest = [0u8; 8192];
    loop {
        let n = gz.read(&mut rest).map_err(read_err)?;
        if n == 0 {
            break;
        }
        if rest[..n].iter().any(|&b| b != 0) {
            return Err(invalid("data after the end of the archive"));
        }
    }
    let mut input = gz.into_inner();
    if !input.fill_buf().map_err(read_err)?.is_empty() {
        return Err(invalid("data after the gzip stream"));
    }
    Ok(manifest)
}

/// Checks a whole archive without writing anything.
pub fn validate<R: BufRead>(input: R, limits: &Limits) -> Result<Manifest, RestoreError> {
    walk(input, limits, |_, _| Ok(()))
}

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Applied {
    /// Files written.
    pub files: u64,
    /// Folders in the archive.
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files removed because the archive does not have them.
    pub removed_files: u64,
    /// Empty folders removed because the archive does not have them.
    pub removed_dirs: u64,
    /// Entries whose owner could not be set (no `CAP_CHOWN`).
    pub owner_not_restored: u64,
}

fn open_dir(dirfd: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dirfd,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens folder `rel` under `root` without following links, creating missing
/// folders (mode 0755, fixed later when the archive has them) if `create`.
fn open_path(root: &OwnedFd, rel: &str, create: bool) -> io::Result<OwnedFd> {
    let mut fd = rustix::io::dup(root)?;
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        fd = match open_dir(&fd, c) {
            Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                rustix::fs::mkdirat(&fd, c, Mode::from_raw_mode(0o755))?;
                open_dir(&fd, c)?
            }
            other => other?,
        };
    }
    Ok(fd)
}

fn split_parent(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// What is at `rel` under `root`, not following links; `None` if nothing.
fn kind_at(root: &OwnedFd, rel: &str) -> io::Result<Option<FileType>> {
    let (parent, name) = split_parent(rel);
    let mut fd = rustix::io::dup(root)?;
    for c in parent.split('/').filter(|c| !c.is_empty()) {
        match rustix::fs::statat(&fd, c, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => fd = open_dir(&fd, c)?,
            Ok(_) => return Err(io::Error::other(format!("{c} is not a folder"))),
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    match rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Refuses an archive whose paths meet something of another kind in `/perm`.
fn check_against(root: &OwnedFd, manifest: &Manifest) -> Result<(), RestoreError> {
    for e in &manifest.entries {
        let found = kind_at(root, &e.path).map_err(|err| {
            RestoreError::Conflict(format!("{:?}: a parent in /perm is not a folder ({err})", e.path))
        })?;
        let ok = match (e.kind, found) {
            (_, None) => true,
            (Kind::Dir, Some(t)) => t == FileType::Directory,
            (Kind::File(_), Some(t)) => t == FileType::RegularFile,
        };
        if !ok {
            return Err(RestoreError::Conflict(format!(
                "{:?} is a {} in the archive but a {:?} in /perm",
                e.path,
                if e.kind == Kind::Dir { "folder" } else { "file" },
                found
            )));
        }
    }
    Ok(())
}

fn set_metadata(fd: &OwnedFd, e: &Entry, applied: &mut Applied) -> io::Result<()> {
    // Never set-user-ID or set-group-ID from an archive.
    rustix::fs::fchmod(fd, Mode::from_raw_mode(e.mode & 0o1777))?;
    let owner = u32::try_from(e.uid).ok().zip(u32::try_from(e.gid).ok());
    let chowned = owner
        .is_some_and(|(uid, gid)| rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).is_ok());
    if !chowned {
        let st = rustix::fs::fstat(fd)?;
        if Some((st.st_uid, st.st_gid)) != owner {
            applied.owner_not_restored += 1;
        }
    }
    let t = Timespec { tv_sec: e.mtime, tv_nsec: 0 };
    rustix::fs::futimens(fd, &Timestamps { last_access: t, last_modification: t })?;
    Ok(())
}

fn free_bytes(root: &OwnedFd) -> io::Result<u64> {
    let st = rustix::fs::fstatvfs(root)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Replaces `/perm` (`perm`) with the archive at `archive`, staging under
/// `staging` (a fresh folder on `perm`'s filesystem, inside a `nobackup`
/// folder; removed afterwards). See the module docs for the order of things.
pub fn apply(perm: &Path, archive: &Path, staging: &Path, limits: &Limits) -> Result<Applied, RestoreError> {
    let open = || File::open(archive).map(|f| BufReader::with_capacity(64 << 10, f)).map_err(io_err(archive.display()));
    let manifest = validate(open()?, limits)?;
    let root = rustix::fs::open(perm, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| RestoreError::Io(format!("{}: {e}", perm.display())))?;
    check_against(&root, &manifest)?;
    let free = free_bytes(&root).map_err(io_err("free space"))?;
    let needed = manifest.total + (manifest.entries.len() as u64) * 4096;
    if free < needed {
        return Err(RestoreError::NoSpace(format!("{needed} bytes needed, {free} free")));
    }

    // Stage every file: the last step that can fail for want of space or a bad read.
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging).map_err(io_err(staging.display()))?;
    let staged = StagingGuard(staging.to_owned());
    let stage_fd = rustix::fs::open(staging, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| RestoreError::Io(format!("{}: {e}", staging.display())))?;
    let mut applied = Applied::default();
    let mut index = 0usize;
    walk(open()?, limits, |e, contents| {
        let Kind::File(_) = e.kind else { return Ok(()) };
        let name = format!("f{index}");
        index += 1;
        let fd = rustix::fs::openat(
            &stage_fd,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|err| RestoreError::Io(format!("staging {:?}: {err}", e.path)))?;
        let mut file = File::from(fd);
        let n = io::copy(contents, &mut file).map_err(io_err(format!("staging {:?}", e.path)))?;
        file.flush().map_err(io_err(&e.path))?;
        let fd = OwnedFd::from(file);
        set_metadata(&fd, e, &mut applied).map_err(io_err(&e.path))?;
        rustix::fs::fsync(&fd).map_err(|err| RestoreError::Io(format!("{:?}: {err}", e.path)))?;
        applied.bytes += n;
        Ok(())
    })?;
    rustix::fs::fsync(&stage_fd).map_err(|e| RestoreError::Io(format!("staging: {e}")))?;

    // Into place, one rename per file.
    let mut index = 0usize;
    let mut touched: Vec<String> = vec![String::new()];
    for e in &manifest.entries {
        let (parent, name) = split_parent(&e.path);
        let pfd = open_path(&root, parent, true).map_err(io_err(format!("{parent:?}")))?;
        match e.kind {
            Kind::Dir => {
                match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(err) => return Err(RestoreError::Io(format!("{:?}: {err}", e.path))),
                }
                applied.dirs += 1;
            }
            Kind::File(_) => {
                let staged_name = format!("f{index}");
                index += 1;
                rustix::fs::renameat(&stage_fd, staged_name.as_str(), &pfd, name)
                    .map_err(|err| RestoreError::Io(format!("{:?}: {err}", e.path)))?;
                applied.files += 1;
                touched.push(parent.to_owned());
            }
        }
    }

    // What the archive does not have goes.
    let keep = manifest.paths();
    prune(perm, "", &keep, &mut applied).map_err(io_err("removing what the backup does not have"))?;

    // Folders last (deepest first): adding files changed their times.
    let mut dirs: Vec<&Entry> = manifest.entries.iter().filter(|e| e.kind == Kind::Dir).collect();
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path.matches('/').count()));
    for e in dirs {
        let fd = open_path(&root, &e.path, false).map_err(io_err(&e.path))?;
        set_metadata(&fd, e, &mut applied).map_err(io_err(&e.path))?;
        touched.push(e.path.clone());
    }
    touched.sort();
    touched.dedup();
    for dir in touched {
        if let Ok(fd) = open_path(&root, &dir, false) {
            let _ = rustix::fs::fsync(&fd);
        }
    }
    drop(staged);
    Ok(applied)
}

/// Removes the staging folder however the restore ends.
struct StagingGuard(std::path::PathBuf);

impl Drop for StagingGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes regular files and (then empty) folders under `rel` that `keep`
/// does not name; never follows links, never enters `nobackup`/`srv`.
fn prune(perm: &Path, rel: &str, keep: &HashSet<&str>, applied: &mut Applied) -> io::Result<()> {
    let dir = perm.join(rel);
    let mut names: Vec<String> =
        std::fs::read_dir(&dir)?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    names.sort();
    for name in names {
        if skipped_name(&name) {
            continue;
        }
        let child = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
        let path = perm.join(&child);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let t = meta.file_type();
        if t.is_dir() {
            prune(perm, &child, keep, applied)?;
            if !keep.contains(child.as_str()) {
                match std::fs::remove_dir(&path) {
                    Ok(()) => applied.removed_dirs += 1,
                    // Something we leave alone is inside (a link, a nobackup folder).
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {}
                    Err(e) => return Err(e),
                }
            }
        } else if t.is_file() && !keep.contains(child.as_str()) {
            std::fs::remove_file(&path)?;
            applied.removed_files += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
