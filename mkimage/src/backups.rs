//! The backup of `/perm` that `mkimage update` and `mkimage rollback` take
//! before they change anything on the router, as router7's rtr7-safe-update
//! did (its step 3: `GET :8077/backup.tar.gz`, and no update when that
//! fails): where the backups go, what they are called, and which old ones are
//! removed afterwards. The download itself is backupd's client
//! ([`backupd::client::download`]), which checks the whole archive before it
//! gets its final name, so a backup in the folder is always a complete one.
//!
//! Names are `backup-<host>-<time>[-<n>].tar.gz`, as `mkimage backup` names
//! its file (`<time>` is RFC 3339 in UTC to the second without the colons,
//! `<n>` counts from 2 when a name of that second is taken). The time in the
//! name, not the file's mtime (which a copy changes), orders them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use runtime::timefmt::Timestamp;

use crate::error::{Error, Result};

/// How many backups a rotation keeps unless told otherwise (rtr7-safe-update's `-keep_only_n`).
pub const DEFAULT_KEEP: usize = 5;

const PREFIX: &str = "backup-";
const SUFFIX: &str = ".tar.gz";

/// The default folder for router `hostname`'s backups:
/// `$XDG_CONFIG_HOME/router7-rs/<hostname>/backups` (default `~/.config/…`),
/// beside its password.
///
/// # Errors
/// When neither `XDG_CONFIG_HOME` nor `HOME` is set.
pub fn default_dir(hostname: &str) -> Result<PathBuf> {
    default_dir_from(std::env::var_os("XDG_CONFIG_HOME"), std::env::var_os("HOME"), hostname)
}

fn default_dir_from(xdg_config_home: Option<OsString>, home: Option<OsString>, hostname: &str) -> Result<PathBuf> {
    Ok(crate::password::config_dir_from(xdg_config_home, home, hostname)?.join("backups"))
}

/// `at` as it appears in a name: `2026-11-26T031500Z` (whole seconds, no colons).
#[must_use]
pub fn stamp(at: SystemTime) -> String {
    let t = Timestamp::from_system(at);
    Timestamp { secs: t.secs, nanos: 0 }.to_string().replace(':', "")
}

/// The `n`th name (1: no counter) for a backup of `host` taken at `at`.
/// Characters that do not belong in a file name become `_`.
#[must_use]
pub fn file_name(host: &str, at: SystemTime, n: u32) -> String {
    let host: String =
        host.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_:".contains(c) { c } else { '_' }).collect();
    let counter = if n > 1 { format!("-{n}") } else { String::new() };
    format!("{PREFIX}{host}-{}{counter}{SUFFIX}", stamp(at))
}

/// A free path in `dir` for a backup of `host` taken at `at`: the plain name,
/// or with a counter when that name (or its download in progress) exists.
#[must_use]
pub fn next_path(dir: &Path, host: &str, at: SystemTime) -> PathBuf {
    let taken = |p: &Path| {
        let mut partial = p.as_os_str().to_owned();
        partial.push(".partial");
        p.symlink_metadata().is_ok() || Path::new(&partial).symlink_metadata().is_ok()
    };
    let mut n = 1;
    loop {
        let p = dir.join(file_name(host, at, n));
        if !taken(&p) || n == u32::MAX {
            return p;
        }
        n += 1;
    }
}

/// Where a name made by [`file_name`] sorts: its time, then its counter.
/// `None` for every other name (not one of ours: never removed).
#[must_use]
pub fn order_key(name: &str) -> Option<(Timestamp, u32)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    // The counter: a last part of digits (the time ends with 'Z', never a digit).
    let (rest, n) = match rest.rsplit_once('-') {
        Some((r, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (r, n.parse::<u32>().ok()?),
        _ => (rest, 1),
    };
    if n == 0 {
        return None;
    }
    // <host>-YYYY-MM-DDTHHMMSS[.frac]Z, the host possibly with '-' in it.
    let mut parts = rest.rsplitn(4, '-');
    let (day_time, month, year, host) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if host.is_empty() {
        return None;
    }
    let (day, time) = day_time.split_once('T')?;
    let time = time.strip_suffix('Z')?;
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, format!(".{frac}")),
        None => (time, String::new()),
    };
    if hms.len() != 6 || !hms.is_ascii() {
        return None;
    }
    let text = format!("{year}-{month}-{day}T{}:{}:{}{frac}Z", &hms[..2], &hms[2..4], &hms[4..]);
    Some((text.parse().ok()?, n))
}

/// Of the file names in a backup folder, those a rotation that keeps the
/// `keep` newest backups removes (`keep` 0: none). Only names of ours count
/// and can go; `newest` (the backup just taken) always stays and is one of
/// the `keep`.
#[must_use]
pub fn to_remove<'a>(names: &'a [String], keep: usize, newest: &str) -> Vec<&'a str> {
    if keep == 0 {
        return Vec::new();
    }
    let mut ours: Vec<(Timestamp, u32, &str)> = names
        .iter()
        .filter(|n| n.as_str() != newest)
        .filter_map(|n| order_key(n).map(|(t, c)| (t, c, n.as_str())))
        .collect();
    ours.sort_unstable_by(|a, b| b.cmp(a)); // newest first
    ours.into_iter().skip(keep - 1).map(|(_, _, n)| n).collect()
}

/// A backup taken.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The file and what it holds.
    pub download: backupd::client::Downloaded,
    /// Old backups removed from the folder.
    pub removed: Vec<PathBuf>,
    /// Old backups that should have gone but could not be removed, with why.
    pub not_removed: Vec<(PathBuf, String)>,
}

/// Where a backup goes, how many are kept, and how long backupd may take to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The folder (created, mode 0700, when missing: backups hold the router's password).
    pub dir: PathBuf,
    /// How many of ours to keep there (0: all).
    pub keep: usize,
    /// How long to keep trying while the router refuses connections on 8077.
    pub wait: Duration,
}

/// How long `update` and `rollback` wait for backupd by default. A refused
/// connection means the router is up and backupd is not listening yet: right
/// after a reboot, init starts it within seconds. A router that is off or
/// unreachable does not refuse; that fails at once (or at the connect timeout).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// How often a refused connection is retried within [`Plan::wait`].
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Downloads a backup of `/perm` from backupd on `host` (its port 8077;
/// any port in `host` is dropped: it is init's) into `plan.dir` at a name for
/// `at`, then removes all but the `plan.keep` newest backups there.
///
/// While the router refuses the connection (backupd still starting), it tries
/// again every second for up to `plan.wait`, calling `waiting` once with a
/// line to show.
///
/// # Errors
/// When the folder cannot be made or the download fails (unreachable, wrong
/// password, an incomplete or corrupt archive); nothing is left in the folder then.
pub fn take(host: &str, password: &str, plan: &Plan, at: SystemTime, mut waiting: impl FnMut(&str)) -> Result<Taken> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = plan.dir.as_path();
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io(dir, e))?;
    let addr = backupd_addr(host);
    let dest = next_path(dir, host_of(host), at);
    let deadline = runtime::clock::now() + plan.wait;
    let mut said = false;
    let download = loop {
        match backupd::client::download(&addr, password, &dest) {
            Err(backupd::client::ClientError::Io(e))
                if e.kind() == std::io::ErrorKind::ConnectionRefused && runtime::clock::now() < deadline =>
            {
                if !std::mem::replace(&mut said, true) {
                    waiting(&format!(
                        "backupd on {addr} refused the connection (is the router still starting?); \
                         trying again for up to {} s",
                        plan.wait.as_secs()
                    ));
                }
                std::thread::sleep(RETRY_EVERY);
            }
            other => {
                break other
                    .map_err(|e| Error::Invalid(format!("the backup of /perm from backupd on {addr} failed: {e}")))?;
            }
        }
    };
    let mut taken = Taken { download, removed: Vec::new(), not_removed: Vec::new() };
    let newest = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) => {
            taken.not_removed.push((dir.to_owned(), format!("cannot list the folder: {e}")));
            Vec::new()
        }
    };
    for name in to_remove(&names, plan.keep, &newest) {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => taken.removed.push(path),
            Err(e) => taken.not_removed.push((path, e.to_string())),
        }
    }
    Ok(taken)
}

/// `router7`, `router7:8080`, `192.0.2.1`, `[2001:db8::1]:8080`, `2001:db8::1` → the host part.
#[must_use]
pub fn host_of(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.split_once(':') {
        Some((h, port)) if !port.contains(':') => h,
        _ => host,
    }
}

/// backupd's address on the router an update's `--host` names.
#[must_use]
pub fn backupd_addr(host: &str) -> String {
    let h = host_of(host);
    if h.contains(':') { format!("[{h}]:{}", backupd::PORT) } else { format!("{h}:{}", backupd::PORT) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn names_are_mkimage_backups_to_the_second() {
        let t = at(1_764_126_900) + Duration::from_millis(250);
        assert_eq!(file_name("router7", t, 1), "backup-router7-2025-11-26T031500Z.tar.gz");
        assert_eq!(file_name("router7", t, 2), "backup-router7-2025-11-26T031500Z-2.tar.gz");
        assert_eq!(file_name("a/b c", t, 1), "backup-a_b_c-2025-11-26T031500Z.tar.gz");
    }

    #[test]
    fn names_read_back_in_time_order_and_others_are_not_ours() {
        let k = |n: &str| order_key(n);
        let t = at(1_764_126_900);
        for host in ["router7", "router7-upd", "192.168.42.1", "fd00::1"] {
            assert_eq!(k(&file_name(host, t, 1)), Some((Timestamp::from_system(t), 1)), "{host}");
            assert_eq!(k(&file_name(host, t, 3)), Some((Timestamp::from_system(t), 3)), "{host}");
        }
        // What `mkimage backup` named its files before: with the fraction.
        assert_eq!(
            k("backup-router7-2025-11-26T031500.25Z.tar.gz"),
            Some((Timestamp { secs: 1_764_126_900, nanos: 250_000_000 }, 1))
        );
        assert!(k(&file_name("r", t, 1)) < k(&file_name("r", t, 2)));
        assert!(k(&file_name("r", t, 9)) < k(&file_name("r", at(1_764_126_901), 1)));
        for foreign in [
            "backup-router7.tar.gz",
            "backup-manual.tar.gz",
            "backup-2025-11-26T031500Z.tar.gz",
            "backup-router7-2025-11-26T031500Z.tar.gz.partial",
            "backup-router7-2025-11-26T031500Z.tgz",
            "notes-router7-2025-11-26T031500Z.tar.gz",
            "backup-router7-2025-13-26T031500Z.tar.gz",
            "backup-router7-2025-11-26T0315Z.tar.gz",
            "backup-router7-2025-11-26T031500Z-0.tar.gz",
        ] {
            assert_eq!(k(foreign), None, "{foreign}");
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rotation_removes_the_oldest_of_ours_beyond_n() {
        let all = names(&[
            "backup-r-2025-11-20T000000Z.tar.gz",
            "backup-r-2025-11-24T000000Z.tar.gz",
            "backup-r-2025-11-24T000000Z-2.tar.gz",
            "backup-192.168.42.1-2025-11-22T000000Z.tar.gz",
            "backup-r-2025-11-26T031500Z.tar.gz",
            "backup-r-2025-11-21T000000.5Z.tar.gz",
        ]);
        let mut gone = to_remove(&all, 3, "backup-r-2025-11-26T031500Z.tar.gz");
        gone.sort_unstable();
        assert_eq!(
            gone,
            [
                "backup-192.168.42.1-2025-11-22T000000Z.tar.gz",
                "backup-r-2025-11-20T000000Z.tar.gz",
                "backup-r-2025-11-21T000000.5Z.tar.gz",
            ]
        );
        assert_eq!(to_remove(&all, 1, "backup-r-2025-11-26T031500Z.tar.gz").len(), 5);
        assert!(to_remove(&all, 6, "backup-r-2025-11-26T031500Z.tar.gz").is_empty());
    }

    #[test]
    fn rotation_keeps_foreign_files_and_the_one_just_taken() {
        let all = names(&[
            "notes.txt",
            "backup-manual.tar.gz",
            "backup-r-2025-11-26T031500Z.tar.gz.partial",
            "backup-r-2030-01-01T000000Z.tar.gz",
            "backup-r-2029-01-01T000000Z.tar.gz",
            "backup-r-2025-11-26T031500Z.tar.gz",
        ]);
        // The clock went back: the one just taken is not the newest by name, and stays.
        let gone = to_remove(&all, 2, "backup-r-2025-11-26T031500Z.tar.gz");
        assert_eq!(gone, ["backup-r-2029-01-01T000000Z.tar.gz"]);
        let gone = to_remove(&all, 1, "backup-r-2025-11-26T031500Z.tar.gz");
        assert_eq!(gone, ["backup-r-2030-01-01T000000Z.tar.gz", "backup-r-2029-01-01T000000Z.tar.gz"]);
    }

    #[test]
    fn keeping_zero_keeps_everything() {
        let all: Vec<String> = (0..20).map(|i| file_name("r", at(1_700_000_000 + i * 60), 1)).collect();
        assert!(to_remove(&all, 0, &all[19]).is_empty());
        assert_eq!(
            to_remove(&all, DEFAULT_KEEP, &all[19]),
            all[..15].iter().rev().map(String::as_str).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_default_folder_is_beside_the_password() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            default_dir_from(os("/x/cfg"), os("/home/me"), "router7").unwrap(),
            Path::new("/x/cfg/router7-rs/router7/backups")
        );
        assert_eq!(
            default_dir_from(None, os("/home/me"), "router7-upd").unwrap(),
            Path::new("/home/me/.config/router7-rs/router7-upd/backups")
        );
        assert_eq!(
            default_dir_from(os(""), os("/home/me"), "r").unwrap(),
            Path::new("/home/me/.config/router7-rs/r/backups")
        );
        assert!(default_dir_from(None, None, "r").is_err());
        // The password of the same router is kept one folder up.
        assert_eq!(
            default_dir_from(None, os("/home/me"), "r").unwrap().parent(),
            crate::password::config_dir_from(None, os("/home/me"), "r").ok().as_deref()
        );
    }

    #[test]
    fn a_taken_name_gets_a_counter() {
        let dir = std::env::temp_dir().join(format!("mkimage-backups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t = at(1_764_126_900);
        let first = next_path(&dir, "r", t);
        assert_eq!(first, dir.join("backup-r-2025-11-26T031500Z.tar.gz"));
        std::fs::write(&first, b"x").unwrap();
        assert_eq!(next_path(&dir, "r", t), dir.join("backup-r-2025-11-26T031500Z-2.tar.gz"));
        // A download in progress holds its name too.
        std::fs::write(dir.join("backup-r-2025-11-26T031500Z-2.tar.gz.partial"), b"x").unwrap();
        assert_eq!(next_path(&dir, "r", t), dir.join("backup-r-2025-11-26T031500Z-3.tar.gz"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_host_is_the_address_without_its_port() {
        // Also whose password it is (capture, backup, restore).
        assert_eq!(host_of("router7"), "router7");
        assert_eq!(host_of("router7:8077"), "router7");
        assert_eq!(host_of("192.0.2.1:5022"), "192.0.2.1");
        assert_eq!(host_of("[2001:db8::1]:8077"), "2001:db8::1");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn backupd_is_on_8077_at_the_updates_address() {
        assert_eq!(backupd_addr("192.168.42.1"), "192.168.42.1:8077");
        assert_eq!(backupd_addr("192.168.42.1:8080"), "192.168.42.1:8077");
        assert_eq!(backupd_addr("router7"), "router7:8077");
        assert_eq!(backupd_addr("fd00::1"), "[fd00::1]:8077");
        assert_eq!(backupd_addr("[fd00::1]:80"), "[fd00::1]:8077");
    }
}
