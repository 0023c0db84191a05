//! Facts about the machine for status pages: memory (`/proc/meminfo`), a
//! process's resident memory (`/proc/<pid>/statm`), uptime (`/proc/uptime`),
//! the kernel release, file system usage (`statvfs`) and the addresses.
//! Parsers take text so they are tested without a `/proc`.

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// `MemTotal` and `MemAvailable`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Installed memory the kernel manages.
    pub total_bytes: u64,
    /// Memory available for new work without swapping.
    pub available_bytes: u64,
}

/// Parses `/proc/meminfo`.
#[must_use]
pub fn parse_meminfo(text: &str) -> Memory {
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Memory { total_bytes: field("MemTotal"), available_bytes: field("MemAvailable") }
}

/// Reads `/proc/meminfo`.
#[must_use]
pub fn memory() -> Memory {
    std::fs::read_to_string("/proc/meminfo").map(|t| parse_meminfo(&t)).unwrap_or_default()
}

/// Resident bytes from `/proc/<pid>/statm` (second field, in pages).
#[must_use]
pub fn parse_statm(text: &str, page_size: u64) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse::<u64>().ok().map(|pages| pages * page_size)
}

/// The resident memory of process `pid`.
#[must_use]
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    parse_statm(&text, rustix::param::page_size() as u64)
}

/// Seconds since boot from `/proc/uptime`.
#[must_use]
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Seconds since boot.
#[must_use]
pub fn uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime").ok().and_then(|t| parse_uptime(&t))
}

/// The running kernel's release (`uname -r`).
#[must_use]
pub fn kernel_release() -> String {
    rustix::system::uname().release().to_string_lossy().into_owned()
}

/// Size and use of a file system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Size.
    pub total_bytes: u64,
    /// In use.
    pub used_bytes: u64,
    /// Free for unprivileged users.
    pub available_bytes: u64,
}

/// `statvfs` of the file system holding `path`.
#[must_use]
pub fn usage(path: &Path) -> Option<Usage> {
    let s = rustix::fs::statvfs(path).ok()?;
    let unit = s.f_frsize;
    Some(Usage {
        total_bytes: s.f_blocks * unit,
        used_bytes: s.f_blocks.saturating_sub(s.f_bfree) * unit,
        available_bytes: s.f_bavail * unit,
    })
}

/// One address of an up interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The interface.
    pub interface: String,
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Private in router7's sense (loopback, RFC 1918/ULA, link-local, CGNAT).
    pub private: bool,
}

/// The addresses of every up interface.
#[must_use]
pub fn addresses() -> Vec<Address> {
    let mut out: Vec<Address> = runtime::netif::addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.up)
        .map(|a| Address {
            private: runtime::netif::is_private(a.addr),
            interface: a.ifname,
            address: a.addr,
            prefix_len: a.prefix_len,
        })
        .collect();
    out.sort_by(|a, b| (&a.interface, a.address).cmp(&(&b.interface, b.address)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo_statm_and_uptime() {
        let meminfo = "MemTotal:        3915640 kB\nMemFree:         1000000 kB\nMemAvailable:    3000000 kB\n";
        assert_eq!(parse_meminfo(meminfo), Memory { total_bytes: 3_915_640 * 1024, available_bytes: 3_000_000 * 1024 });
        assert_eq!(parse_meminfo("garbage"), Memory::default());
        assert_eq!(parse_statm("1000 250 100 10 0 300 0\n", 4096), Some(250 * 4096));
        assert_eq!(parse_statm("1000", 4096), None);
        assert_eq!(parse_uptime("12345.67 40000.00\n"), Some(12345.67));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn reads_this_machine() {
        assert!(memory().total_bytes > 0);
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(rss_bytes(me).unwrap() > 0);
        let u = usage(Path::new("/")).unwrap();
        assert!(u.total_bytes >= u.used_bytes);
        assert!(uptime().unwrap() > 0.0);
        assert!(!kernel_release().is_empty());
        assert!(addresses().iter().any(|a| a.address.is_loopback() && a.private));
    }
}
