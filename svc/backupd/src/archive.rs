//! The backup as a stream: a tar of `/perm` produced on demand, a header or
//! a 64 KiB piece of a file at a time, so the archive is never in memory
//! (router7 read each file whole). The HTTP side wraps it in gzip and sends
//! it as it comes.
//!
//! What goes in (router7's rules, plus two): regular files and directories,
//! depth first in name order; skipped are entries named `nobackup` or `srv`
//! (router7's legacy name) at any depth, symbolic links, devices, FIFOs and
//! sockets, names that are not UTF-8, and the temp files of atomic writes in
//! flight (`.NAME.tmp`, see `runtime::statefile`). Kept per entry: the
//! permission bits, owner and group (numeric) and the modification time in
//! whole seconds.
//!
//! A file is opened without following links and described from the open
//! descriptor, then exactly that many bytes are sent: a file that grows
//! meanwhile is cut at its size when opened (a consistent prefix); one that
//! shrinks fails the backup, which is then incomplete for the client to see
//! (gzip and tar both end with markers), rather than silently wrong.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

use crate::tar::{self, Entry, Kind};

/// Names skipped wherever they are (router7's `nobackup`, and its legacy `srv`).
pub const SKIPPED_NAMES: [&str; 2] = ["nobackup", "srv"];
const CHUNK: usize = 64 << 10;

/// Whether an entry called `name` stays out of backups (and is left alone by restores).
#[must_use]
pub fn skipped_name(name: &str) -> bool {
    SKIPPED_NAMES.contains(&name)
}

/// A statefile temp file (`.NAME.tmp`), in flight.
fn temp_file(name: &str) -> bool {
    name.len() > 5 && name.starts_with('.') && name.ends_with(".tmp")
}

/// What a backup held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Regular files archived.
    pub files: u64,
    /// Directories archived.
    pub dirs: u64,
    /// Bytes of file contents archived.
    pub bytes: u64,
    /// Entries left out: `nobackup`/`srv`, links, devices, temp files, odd names.
    pub skipped: u64,
}

struct Level {
    /// Path relative to the root (`""` for the root).
    rel: String,
    names: std::vec::IntoIter<String>,
}

struct Open {
    file: File,
    path: PathBuf,
    left: u64,
    size: u64,
}

/// A tar of a folder, produced as it is read.
pub struct Backup {
    root: PathBuf,
    levels: Vec<Level>,
    out: VecDeque<u8>,
    open: Option<Open>,
    done: bool,
    counts: Counts,
    chunk: Vec<u8>,
}

impl std::fmt::Debug for Backup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backup").field("root", &self.root).field("counts", &self.counts).finish_non_exhaustive()
    }
}

fn entry_of(rel: &str, st: &rustix::fs::Stat, kind: Kind) -> Entry {
    Entry {
        path: rel.to_owned(),
        kind,
        mode: st.st_mode & 0o7777,
        uid: u64::from(st.st_uid),
        gid: u64::from(st.st_gid),
        mtime: st.st_mtime,
    }
}

impl Backup {
    /// A backup of the folder `root` (its contents; the folder itself is not an entry).
    pub fn new(root: &Path) -> io::Result<Self> {
        let names = Self::list(root)?;
        Ok(Self {
            root: root.to_owned(),
            levels: vec![Level { rel: String::new(), names: names.into_iter() }],
            out: VecDeque::new(),
            open: None,
            done: false,
            counts: Counts::default(),
            chunk: vec![0; CHUNK],
        })
    }

    /// What went in so far.
    #[must_use]
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The names in a folder, sorted; names that are not UTF-8 are skipped here.
    fn list(dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            match entry.file_name().into_string() {
                Ok(n) => names.push(n),
                Err(n) => runtime::log_warn!("backup: skipping {:?} in {}: not UTF-8", n, dir.display()),
            }
        }
        names.sort();
        Ok(names)
    }

    /// Queues the next piece: a header (and, for a directory, descends into
    /// it), the next chunk of the open file, or the end. `Ok(false)` at the end.
    fn produce(&mut self) -> io::Result<bool> {
        if let Some(open) = &mut self.open {
            if open.left == 0 {
                self.out.extend(std::iter::repeat_n(0u8, tar::padding(open.size)));
                self.open = None;
                return Ok(true);
            }
            let want = usize::try_from(open.left).unwrap_or(CHUNK).min(CHUNK);
            let n = open.file.read(&mut self.chunk[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while it was being backed up", open.path.display()),
                ));
            }
            open.left -= n as u64;
            self.counts.bytes += n as u64;
            self.out.extend(&self.chunk[..n]);
            return Ok(true);
        }
        loop {
            let Some(level) = self.levels.last_mut() else {
                if !self.done {
                    self.out.extend(tar::END);
                    self.done = true;
                    return Ok(true);
                }
                return Ok(false);
            };
            let Some(name) = level.names.next() else {
                self.levels.pop();
                continue;
            };
            let rel = if level.rel.is_empty() { name.clone() } else { format!("{}/{name}", level.rel) };
            if skipped_name(&name) || temp_file(&name) {
                self.counts.skipped += 1;
                continue;
            }
            let path = self.root.join(&rel);
            // Never open what is not a file or folder (opening a device can do things).
            match rustix::fs::lstat(&path).map(|st| FileType::from_raw_mode(st.st_mode)) {
                Ok(FileType::RegularFile | FileType::Directory) => {}
                Ok(_) | Err(rustix::io::Errno::NOENT) => {
                    self.counts.skipped += 1;
                    continue;
                }
                Err(e) => return Err(io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", path.display()))),
            }
            // Opened without following links; described from the descriptor.
            let fd = match rustix::fs::open(
                &path,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Gone since the listing (an atomic rename), or a link: not backed up.
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::LOOP | rustix::io::Errno::NXIO) => {
                    self.counts.skipped += 1;
                    continue;
                }
                Err(e) => return Err(io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", path.display()))),
            };
            let st = rustix::fs::fstat(&fd)?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {
                    let size = u64::try_from(st.st_size).unwrap_or(0);
                    // The descriptor was opened non-blocking only to not hang on a FIFO.
                    rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
                    self.out.extend(tar::header(&entry_of(&rel, &st, Kind::File(size))));
                    self.counts.files += 1;
                    self.open = Some(Open { file: File::from(fd), path, left: size, size });
                    return Ok(true);
                }
                FileType::Directory => {
                    let names = Self::list(&path)?;
                    self.out.extend(tar::header(&entry_of(&rel, &st, Kind::Dir)));
                    self.counts.dirs += 1;
                    self.levels.push(Level { rel, names: names.into_iter() });
                    return Ok(true);
                }
                _ => {
                    self.counts.skipped += 1;
                }
            }
        }
    }
}

impl Read for Backup {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out.is_empty() {
            if !self.produce()? {
                return Ok(0);
            }
        }
        let n = self.out.len().min(buf.len());
        for (dst, src) in buf.iter_mut().zip(self.out.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}
