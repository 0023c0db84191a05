//! Backups and restores on real folders (no root needed; Debian's `tar`
//! where named).

use super::*;
use crate::archive::Backup;
use crate::tar::header;
use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::PathBuf;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("backupd-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn write(&self, rel: &str, data: &[u8], mode: u32, mtime: i64) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        set_mtime(&p, mtime);
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mtime(p: &Path, mtime: i64) {
    let t = Timespec { tv_sec: mtime, tv_nsec: 0 };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &Timestamps { last_access: t, last_modification: t },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Everything under `root`: kind, permission bits, mtime (files), contents.
fn snapshot(root: &Path) -> BTreeMap<String, (char, u32, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    fn go(root: &Path, rel: &str, out: &mut BTreeMap<String, (char, u32, i64, Vec<u8>)>) {
        for e in std::fs::read_dir(root.join(rel)).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let p = root.join(&child);
            let st = rustix::fs::lstat(&p).unwrap();
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    out.insert(child.clone(), ('d', st.st_mode & 0o7777, 0, vec![]));
                    go(root, &child, out);
                }
                FileType::RegularFile => {
                    out.insert(child, ('f', st.st_mode & 0o7777, st.st_mtime, std::fs::read(&p).unwrap()));
                }
                FileType::Symlink => {
                    out.insert(
                        child,
                        ('l', 0, 0, std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()),
                    );
                }
                _ => {}
            }
        }
    }
    go(root, "", &mut out);
    out
}

fn backup_bytes(root: &Path) -> Vec<u8> {
    let mut gz = flate2::read::GzEncoder::new(Backup::new(root).unwrap(), flate2::Compression::fast());
    let mut out = Vec::new();
    gz.read_to_end(&mut out).unwrap();
    out
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(tar).unwrap();
    enc.finish().unwrap()
}

/// What a gzip stream holds; `None` when it is not a whole valid one.
fn gunzip(archive: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(archive).read_to_end(&mut out).ok()?;
    Some(out)
}

/// A typical /perm.
fn sample_perm() -> Dir {
    let d = Dir::new("src");
    d.write("random.seed", &[7u8; 512], 0o600, 1_700_000_000);
    d.write("dhcp4d/leases.json", b"[\n\t{\"hostname\": \"xps\"}\n]\n", 0o644, 1_700_000_100);
    d.write("dhcp6/duid", &[0, 10, 0, 3, 0, 1, 2, 3, 4, 5, 6, 7], 0o640, 1_700_000_200);
    d.write("router/password", b"pw\n", 0o600, 1_700_000_300);
    d.write(&format!("deep/{}/file", "x".repeat(200)), b"long path", 0o644, 1_700_000_400);
    d.write("empty", b"", 0o644, 1_700_000_500);
    std::fs::create_dir_all(d.0.join("emptydir")).unwrap();
    d
}

fn apply_to(perm: &Path, archive: &[u8]) -> Result<Applied, RestoreError> {
    let file = perm.parent().unwrap().join(format!("{}.tar.gz", perm.file_name().unwrap().to_string_lossy()));
    std::fs::write(&file, archive).unwrap();
    let staging = perm.join("backupd/nobackup/staging");
    let r = apply(perm, &file, &staging, &Limits::default());
    std::fs::remove_file(&file).unwrap();
    r
}

#[test]
fn a_backup_restores_to_an_identical_tree() {
    let src = sample_perm();
    let bytes = backup_bytes(&src.0);
    let m = validate(&bytes[..], &Limits::default()).unwrap();
    assert_eq!(m.entries.iter().filter(|e| matches!(e.kind, Kind::File(_))).count(), 6);
    let dst = Dir::new("dst");
    let applied = apply_to(&dst.0, &bytes).unwrap();
    assert_eq!((applied.files, applied.bytes), (6, m.total));
    let mut got = snapshot(&dst.0);
    // The staging folder's parents are backupd's own.
    got.remove("backupd");
    got.remove("backupd/nobackup");
    assert_eq!(got, snapshot(&src.0));
}

#[test]
fn debian_tar_reads_our_archive() {
    let Some(tar) = runtime::testing::tool("tar", "debian_tar_reads_our_archive") else { return };
    let Some(diff) = runtime::testing::tool("diff", "debian_tar_reads_our_archive") else { return };
    let src = sample_perm();
    let out = Dir::new("tarx");
    let file = out.0.join("backup.tar.gz");
    std::fs::write(&file, backup_bytes(&src.0)).unwrap();
    let x = out.0.join("x");
    std::fs::create_dir(&x).unwrap();
    let st = std::process::Command::new(&tar).arg("-xzf").arg(&file).arg("-C").arg(&x).status().unwrap();
    assert!(st.success());
    let d = std::process::Command::new(&diff).arg("-r").arg(&src.0).arg(&x).output().unwrap();
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stdout));
    // Modes and file times too (diff compares contents only).
    let (a, b) = (snapshot(&src.0), snapshot(&x));
    assert_eq!(a, b);
}

#[test]
fn an_archive_made_by_debian_tar_restores() {
    let Some(tar) = runtime::testing::tool("tar", "an_archive_made_by_debian_tar_restores") else { return };
    let src = sample_perm();
    let out = Dir::new("tarc");
    let file = out.0.join("made.tar.gz");
    let st = std::process::Command::new(&tar).arg("-czf").arg(&file).arg("-C").arg(&src.0).arg(".").status().unwrap();
    assert!(st.success());
    let dst = Dir::new("tarcdst");
    apply_to(&dst.0, &std::fs::read(&file).unwrap()).unwrap();
    let mut got = snapshot(&dst.0);
    got.remove("backupd");
    got.remove("backupd/nobackup");
    assert_eq!(got, snapshot(&src.0));
}

#[test]
fn nobackup_srv_links_and_temp_files_stay_out() {
    let src = sample_perm();
    src.write("dhcp4d/nobackup/cache.bin", b"big", 0o644, 1);
    src.write("srv/www/index.html", b"legacy", 0o644, 1);
    src.write("dhcp4d/.leases.json.tmp", b"in flight", 0o644, 1);
    symlink("/etc/passwd", src.0.join("link")).unwrap();
    let mut b = Backup::new(&src.0).unwrap();
    let mut tar = Vec::new();
    b.read_to_end(&mut tar).unwrap();
    assert_eq!(b.counts().skipped, 4);
    let m = validate(&gzip(&tar)[..], &Limits::default()).unwrap();
    let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.iter().all(|p| !p.contains("nobackup") && !p.starts_with("srv") && !p.contains(".tmp") && *p != "link"),
        "{paths:?}"
    );
    assert!(paths.contains(&"dhcp4d/leases.json"));
}

/// A tar with entries written by hand.
fn tar_of(headers: &[[u8; BLOCK]], data: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, d) in headers.iter().zip(data) {
        out.extend_from_slice(h);
        out.extend_from_slice(d);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.extend_from_slice(&crate::tar::END);
    out
}

fn raw(name: &str, typeflag: u8, size: usize, link: &str) -> [u8; BLOCK] {
    let e = Entry { path: "placeholder".into(), kind: Kind::File(size as u64), mode: 0o644, uid: 0, gid: 0, mtime: 1 };
    let mut h: [u8; BLOCK] = header(&e)[..BLOCK].try_into().unwrap();
    h[..100].fill(0);
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    h
}

/// The archive is refused, and /perm is exactly as before.
fn refused_without_change(archive: &[u8], expect: &str) {
    let perm = sample_perm();
    let outside = Dir::new("outside");
    let before = snapshot(&perm.0);
    let e = apply_to(&perm.0, archive).unwrap_err();
    assert!(e.to_string().contains(expect), "{e} (wanted {expect:?})");
    let mut after = snapshot(&perm.0);
    after.remove("backupd");
    after.remove("backupd/nobackup");
    assert_eq!(after, before, "a refused archive changed /perm");
    assert!(snapshot(&outside.0).is_empty());
    assert!(validate(archive, &Limits::default()).is_err() || e.status() == 409);
}

#[test]
fn path_traversal_absolute_paths_and_links_are_refused_with_nothing_changed() {
    let ok = raw("dhcp4d/leases.json", b'0', 2, "");
    for (name, typeflag, link, expect) in [
        ("../x", b'0', "", "\"..\""),
        ("a/../../x", b'0', "", "\"..\""),
        ("/etc/x", b'0', "", "absolute"),
        ("evil", b'2', "/etc/passwd", "symbolic link"),
        ("hard", b'1', "dhcp4d/leases.json", "hard link"),
        ("dev", b'3', "", "device"),
        ("dhcp4d/nobackup/x", b'0', "", "nobackup"),
    ] {
        let bad = raw(name, typeflag, 2, link);
        let archive = gzip(&tar_of(&[ok, bad], &[b"[]", b"xx"]));
        refused_without_change(&archive, expect);
    }
}

#[test]
fn duplicates_and_file_folder_clashes_are_refused() {
    let a = raw("a", b'0', 1, "");
    let ab = raw("a/b", b'0', 1, "");
    refused_without_change(&gzip(&tar_of(&[a, a], &[b"1", b"2"])), "twice");
    refused_without_change(&gzip(&tar_of(&[a, ab], &[b"1", b"2"])), "is a file");
    refused_without_change(&gzip(&tar_of(&[ab, a], &[b"1", b"2"])), "twice");
}

#[test]
fn truncated_or_corrupt_archives_are_refused_with_nothing_changed() {
    let src = sample_perm();
    let good = backup_bytes(&src.0);
    for cut in [10, good.len() / 2, good.len() - 9, good.len() - 1] {
        refused_without_change(&good[..cut], "");
    }
    // The tar ends early inside a gzip stream that is itself complete.
    let mut tar = Vec::new();
    Backup::new(&src.0).unwrap().read_to_end(&mut tar).unwrap();
    refused_without_change(&gzip(&tar[..tar.len() - 2 * BLOCK]), "truncated");
    refused_without_change(&gzip(&tar[..BLOCK + 100]), "truncated");
    // A flipped bit: a tar checksum, the deflate stream or gzip's CRC catches
    // it. Not every flip changes what the archive holds (a back-reference
    // moved within a run of tar's zero padding gives the same bytes, and the
    // archive is then as good as the original), so the first flip from the
    // middle on that does.
    let plain = gunzip(&good).unwrap();
    let bad = (good.len() / 2..good.len() - 8)
        .map(|i| {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            bad
        })
        .find(|bad| gunzip(bad).is_none_or(|p| p != plain))
        .unwrap();
    refused_without_change(&bad, "");
    // Only the CRC in gzip's trailer is wrong.
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    refused_without_change(&bad_crc, "gzip");
    // Something after the archive.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    refused_without_change(&trailing, "after");
    refused_without_change(b"not gzip at all", "gzip");
}

#[test]
fn a_link_in_perm_cannot_send_a_write_outside() {
    let perm = sample_perm();
    let outside = Dir::new("victim");
    symlink(&outside.0, perm.0.join("dhcp6link")).unwrap();
    let archive = gzip(&tar_of(&[raw("dhcp6link/x", b'0', 3, "")], &[b"bad"]));
    let e = apply_to(&perm.0, &archive).unwrap_err();
    assert_eq!(e.status(), 409, "{e}");
    assert!(snapshot(&outside.0).is_empty());
}

#[test]
fn restore_makes_perm_equal_to_the_backup_but_leaves_nobackup_and_links() {
    let src = sample_perm();
    let archive = backup_bytes(&src.0);
    let dst = sample_perm();
    dst.write("dhcp4d/leases.json", b"newer", 0o600, 1_800_000_000);
    dst.write("extra/file", b"not in the backup", 0o644, 1);
    dst.write("dhcp4d/stale", b"gone", 0o644, 1);
    dst.write("dhcp4d/nobackup/cache", b"kept", 0o644, 1);
    symlink("/nowhere", dst.0.join("alink")).unwrap();
    let applied = apply_to(&dst.0, &archive).unwrap();
    assert_eq!((applied.removed_files, applied.removed_dirs), (2, 1));
    let mut got = snapshot(&dst.0);
    assert_eq!(got.remove("dhcp4d/nobackup/cache").map(|v| v.3), Some(b"kept".to_vec()));
    assert!(got.remove("dhcp4d/nobackup").is_some());
    assert!(got.remove("alink").is_some());
    got.remove("backupd");
    got.remove("backupd/nobackup");
    assert_eq!(got, snapshot(&src.0));
}

#[test]
fn limits_are_enforced() {
    let src = sample_perm();
    let bytes = backup_bytes(&src.0);
    let small = Limits { max_file: 100, ..Limits::default() };
    assert!(matches!(validate(&bytes[..], &small), Err(RestoreError::TooLarge(_))));
    let few = Limits { max_entries: 3, ..Limits::default() };
    assert!(matches!(validate(&bytes[..], &few), Err(RestoreError::TooLarge(_))));
    let total = Limits { max_total: 500, ..Limits::default() };
    assert!(matches!(validate(&bytes[..], &total), Err(RestoreError::TooLarge(_))));
}
