//! The root file system of a slot: a sorted tree of directories, files and
//! symlinks with fixed owners, modes and one modification time, written as a
//! zstd-compressed SquashFS with the `backhand` crate.
//!
//! Reproducible by construction: entries are kept sorted by path, every inode
//! gets the same mtime (the build's `SOURCE_DATE_EPOCH`), owners come from the
//! tree (never from the build host), and backhand's writer compresses on one
//! thread (its `parallel` feature is off), so the same tree gives the same bytes.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};

use backhand::compression::Compressor;
use backhand::{FilesystemCompressor, FilesystemReader, FilesystemWriter, InnerNode, NodeHeader};

use crate::error::{Error, Result};

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A directory.
    Dir,
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits (e.g. `0o755`).
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// What it is.
    pub content: Content,
}

/// A root file system before it is written: absolute paths (`/etc/hostname`)
/// to entries, sorted. The root directory itself is implicit (0755 root:root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

fn check_path(path: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..].split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok { Ok(()) } else { Err(Error::Invalid(format!("bad path in the root file system: {path:?}"))) }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl Tree {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<()> {
        check_path(path)?;
        let dir = parent(path);
        if dir != "/" && !matches!(self.entries.get(dir), Some(Entry { content: Content::Dir, .. })) {
            return Err(Error::Invalid(format!("{path}: its folder {dir} is not in the root file system")));
        }
        if self.entries.contains_key(path) {
            return Err(Error::Invalid(format!("{path} is in the root file system twice")));
        }
        self.entries.insert(path.to_owned(), entry);
        Ok(())
    }

    /// Adds a directory owned by root.
    ///
    /// # Errors
    /// When the path is malformed, its parent is missing or it exists already.
    pub fn dir(&mut self, path: &str, mode: u16) -> Result<()> {
        self.insert(path, Entry { mode, uid: 0, gid: 0, content: Content::Dir })
    }

    /// Adds a regular file.
    ///
    /// # Errors
    /// As [`Tree::dir`].
    pub fn file(&mut self, path: &str, mode: u16, uid: u32, gid: u32, data: Vec<u8>) -> Result<()> {
        self.insert(path, Entry { mode, uid, gid, content: Content::File(data) })
    }

    /// Adds a symbolic link owned by root.
    ///
    /// # Errors
    /// As [`Tree::dir`].
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.insert(path, Entry { mode: 0o777, uid: 0, gid: 0, content: Content::Symlink(target.to_owned()) })
    }

    /// The entry at `path`.
    #[must_use]
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Every entry, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    /// Total bytes of file contents.
    #[must_use]
    pub fn content_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match &e.content {
                Content::File(d) => d.len() as u64,
                _ => 0,
            })
            .sum()
    }
}

fn squashfs_error(e: backhand::BackhandError) -> Error {
    Error::SquashFs(e.to_string())
}

/// Writes `tree` as a SquashFS (zstd, 128 KiB blocks) with every mtime set to
/// `mtime`; returns the bytes.
///
/// # Errors
/// When backhand cannot write the image.
pub fn write_squashfs(tree: &Tree, mtime: u32) -> Result<Vec<u8>> {
    let mut fs = FilesystemWriter::default();
    fs.set_time(mtime);
    fs.set_root_mode(0o755);
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    fs.set_compressor(FilesystemCompressor::new(Compressor::Zstd, None).map_err(squashfs_error)?);
    for (path, e) in tree.iter() {
        let header = NodeHeader { permissions: e.mode, uid: e.uid, gid: e.gid, mtime };
        match &e.content {
            Content::Dir => fs.push_dir(path, header),
            Content::File(data) => fs.push_file(Cursor::new(data.as_slice()), path, header),
            Content::Symlink(target) => fs.push_symlink(target.as_str(), path, header),
        }
        .map_err(|err| Error::SquashFs(format!("{path}: {err}")))?;
    }
    let mut out = Cursor::new(Vec::new());
    fs.write(&mut out).map_err(squashfs_error)?;
    Ok(out.into_inner())
}

/// Reads a SquashFS back into a [`Tree`] plus its superblock's time (tests).
/// (backhand gives the root folder itself mtime 0 and no way to set it; that
/// is constant too, so it does not hurt reproducibility.)
///
/// # Errors
/// When the bytes are not a SquashFS backhand can read.
pub fn read_squashfs<R: Read + Seek + Send>(image: R) -> Result<(Tree, u32)> {
    let fs = FilesystemReader::from_reader(std::io::BufReader::new(image)).map_err(squashfs_error)?;
    let mut tree = Tree::new();
    for node in fs.files() {
        let path = node.fullpath.to_string_lossy().into_owned();
        let h = node.header;
        if path == "/" {
            continue;
        }
        if h.mtime != fs.mod_time {
            return Err(Error::SquashFs(format!("{path}: mtime {} differs from the image's {}", h.mtime, fs.mod_time)));
        }
        let content = match &node.inner {
            InnerNode::Dir(_) => Content::Dir,
            InnerNode::File(f) => {
                let mut data = Vec::new();
                fs.file(f).reader().read_to_end(&mut data).map_err(|e| Error::SquashFs(format!("{path}: {e}")))?;
                Content::File(data)
            }
            InnerNode::Symlink(s) => Content::Symlink(s.link.to_string_lossy().into_owned()),
            _ => return Err(Error::SquashFs(format!("{path}: unexpected node type"))),
        };
        tree.entries.insert(path, Entry { mode: h.permissions, uid: h.uid, gid: h.gid, content });
    }
    Ok((tree, fs.mod_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.dir("/etc", 0o755).unwrap();
        t.dir("/etc/router", 0o755).unwrap();
        t.file("/etc/router/password", 0o640, 0, 1000, b"secret\n".to_vec()).unwrap();
        t.file("/etc/hostname", 0o644, 0, 0, b"router7\n".to_vec()).unwrap();
        t.symlink("/etc/resolv.conf", "/tmp/resolv.conf").unwrap();
        t.dir("/proc", 0o555).unwrap();
        t.file("/init", 0o755, 0, 0, vec![0x7f; 300_000]).unwrap();
        t
    }

    #[test]
    fn squashfs_reads_back_with_owners_modes_and_links() {
        let tree = sample();
        let image = write_squashfs(&tree, 1_700_000_000).unwrap();
        assert_eq!(&image[..4], b"hsqs", "SquashFS magic");
        let (back, mtime) = read_squashfs(Cursor::new(image)).unwrap();
        assert_eq!(mtime, 1_700_000_000);
        assert_eq!(back, tree);
    }

    #[test]
    fn squashfs_bytes_depend_only_on_the_tree_and_time() {
        let a = write_squashfs(&sample(), 1_700_000_000).unwrap();
        let b = write_squashfs(&sample(), 1_700_000_000).unwrap();
        assert_eq!(a, b);
        let c = write_squashfs(&sample(), 1_700_000_001).unwrap();
        assert_ne!(a, c, "the time is part of the image");
        let mut other = sample();
        other.file("/etc/version", 0o644, 0, 0, b"2".to_vec()).unwrap();
        assert_ne!(a, write_squashfs(&other, 1_700_000_000).unwrap());
    }

    #[test]
    fn squashfs_is_zstd_compressed() {
        let image = write_squashfs(&sample(), 0).unwrap();
        // Superblock: compression id at byte 20 (little endian u16); 6 = zstd.
        assert_eq!(u16::from_le_bytes([image[20], image[21]]), 6);
        assert!(image.len() < 300_000, "300 kB of one byte compresses");
    }

    #[test]
    fn tree_rejects_orphans_duplicates_and_bad_paths() {
        let mut t = Tree::new();
        assert!(t.file("/etc/hostname", 0o644, 0, 0, vec![]).is_err(), "no /etc yet");
        t.dir("/etc", 0o755).unwrap();
        assert!(t.dir("/etc", 0o755).is_err());
        for bad in ["etc/x", "/etc/", "/etc/../x", "/", "/etc//x"] {
            assert!(t.dir(bad, 0o755).is_err(), "{bad}");
        }
        t.file("/etc/x", 0o644, 0, 0, vec![]).unwrap();
        assert!(t.dir("/etc/x/y", 0o755).is_err(), "a file is not a folder");
    }
}
