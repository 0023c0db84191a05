//! Giving the start-up code back: a static binary of ours is mapped whole,
//! and the kernel maps up to 64 KiB around every page fault in it
//! (`fault_around_bytes`) from the page cache, so after start-up nearly every
//! page of the binary is resident in every process — though an idle service
//! runs a small part of it. Once a process has settled, [`release_executable`]
//! advises the kernel that access to its executable's read-only mappings is
//! random (no read-ahead), pages them out (which the kernel only does for a
//! file the process could write: init, as root) and unmaps what is left
//! (`MADV_DONTNEED`); what the process then touches faults back in from the
//! file. Nothing is lost: a mapping with a private (copied-on-write) page —
//! the relocated data made read-only after start — is left alone, as are the
//! writable ones.
//!
//! It is what keeps init and the nine services under their idle memory budget
//! (`ci/budgets`); it needs `CONFIG_ADVISE_SYSCALLS` (kernel-config), and
//! without it nothing happens but a debug line.

use std::io;
use std::path::Path;

use crate::sys::{self, Advice};

/// One mapping of `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// Whether it may be written (`.data`, `.bss`): left alone.
    pub writable: bool,
    /// The file it maps, if any.
    pub path: Option<String>,
    /// Its private (anonymous, copied-on-write) memory in KiB, from smaps;
    /// `None` when the text did not say (a `maps` file).
    pub anonymous_kib: Option<u64>,
}

/// Parses `/proc/<pid>/smaps` (or `maps`, which lacks the per-mapping
/// fields); lines that do not parse are skipped.
#[must_use]
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(kib) = line.strip_prefix("Anonymous:") {
            if let Some(last) = out.last_mut() {
                last.anonymous_kib = kib.trim().trim_end_matches("kB").trim().parse().ok();
            }
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some((start, end)) = fields.next().and_then(|r| r.split_once('-')) else { continue };
        let Some(perms) = fields.next() else { continue };
        // offset, device, inode, then the path (which may contain spaces).
        let rest: Vec<&str> = fields.skip(3).collect();
        let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else {
            continue;
        };
        out.push(Mapping {
            start,
            end,
            writable: perms.as_bytes().get(1) == Some(&b'w'),
            path: (!rest.is_empty()).then(|| rest.join(" ")),
            anonymous_kib: None,
        });
    }
    out
}

/// The mappings of `exe` that may be released: read-only, and known from
/// smaps to hold no private page (its code and constants).
#[must_use]
pub fn executable_mappings(maps: &[Mapping], exe: &Path) -> Vec<(usize, usize)> {
    let exe = exe.to_string_lossy();
    maps.iter()
        .filter(|m| !m.writable && m.anonymous_kib == Some(0) && m.path.as_deref() == Some(&*exe) && m.end > m.start)
        .map(|m| (m.start, m.end - m.start))
        .collect()
}

/// Releases this process's executable mappings (see the module docs);
/// returns the bytes released.
///
/// # Errors
/// When `/proc/self` cannot be read or the kernel refuses the advice.
pub fn release_executable() -> io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let maps = parse_maps(&std::fs::read_to_string("/proc/self/smaps")?);
    let mut bytes = 0;
    for (start, len) in executable_mappings(&maps, &exe) {
        sys::advise(start, len, Advice::Random)?;
        sys::advise(start, len, Advice::PageOut)?;
        sys::advise(start, len, Advice::DontNeed)?;
        bytes += len;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0a00000-55d0c0a3a000 r--p 00000000 fd:01 1234 /svc/dnsd
Size:                232 kB
Rss:                 232 kB
Anonymous:             0 kB
55d0c0a3a000-55d0c0b8e000 r-xp 0003a000 fd:01 1234 /svc/dnsd
Rss:                1360 kB
Anonymous:             0 kB
55d0c0b8e000-55d0c0bd2000 r--p 0018e000 fd:01 1234 /svc/dnsd
Anonymous:             0 kB
55d0c0bd2000-55d0c0bd3000 r--p 001d1000 fd:01 1234 /svc/dnsd
Anonymous:             4 kB
55d0c0bd3000-55d0c0bd9000 rw-p 001d2000 fd:01 1234 /svc/dnsd
Anonymous:            24 kB
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0 [heap]
Anonymous:           132 kB
7f00000000-7f00001000 r--p 00000000 fd:01 99 /perm/a file with spaces
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
garbage line
";

    #[test]
    fn only_the_executables_read_only_mappings_without_private_pages_are_released() {
        let maps = parse_maps(SMAPS);
        assert_eq!(maps.len(), 8, "the garbage line is skipped");
        assert_eq!(maps[6].path.as_deref(), Some("/perm/a file with spaces"));
        assert_eq!(maps[5].anonymous_kib, Some(132));
        assert_eq!(maps[7].anonymous_kib, None);
        // The relocated data made read-only (4 kB private) stays, as do the
        // writable data and other files.
        assert_eq!(
            executable_mappings(&maps, Path::new("/svc/dnsd")),
            [(0x55d0_c0a0_0000, 0x3a000), (0x55d0_c0a3_a000, 0x154000), (0x55d0_c0b8_e000, 0x44000)]
        );
        assert!(executable_mappings(&maps, Path::new("/svc/radvd")).is_empty());
        // A maps file says nothing of private pages: nothing is released.
        let plain: String =
            SMAPS.lines().filter(|l| !l.starts_with(char::is_uppercase)).map(|l| format!("{l}\n")).collect();
        assert!(executable_mappings(&parse_maps(&plain), Path::new("/svc/dnsd")).is_empty());
    }

    #[test]
    fn releasing_our_own_code_keeps_it_working_and_lowers_its_residency() {
        fn resident_file_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        let before = resident_file_kib();
        let bytes = release_executable().unwrap();
        assert!(bytes > 0);
        // Still running the same code, which faults back in as needed.
        let after = resident_file_kib();
        assert_eq!(parse_maps(SMAPS).len(), 8);
        assert!(after < before, "RssFile {before} KiB before, {after} KiB after");
    }
}
