//! `/perm/captured/config.json`: our optional settings. Absent means the
//! defaults (router7's 50,000-packet ring, plus a 32 MiB byte bound; the fixed
//! filter). Parsed strictly: an unknown field is an error, so a typo is
//! reported instead of silently ignored.
//!
//! ```json
//! {"ring_packets": 50000, "ring_bytes": 33554432, "extra_udp_ports": [53], "extra_tcp_ports": [], "max_clients": 4}
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::filter::{DHCP4_PORTS, DHCP6_PORTS, Extra, MAX_EXTRA_PORTS};
use crate::ring::Limits;

/// Streaming clients at once, by default.
pub const DEFAULT_MAX_CLIENTS: usize = 4;
/// The largest ring we accept: memory is the router's.
pub const MAX_RING_BYTES: usize = 512 << 20;
/// The smallest byte bound (a few full frames).
pub const MIN_RING_BYTES: usize = 64 << 10;
/// The most packets a ring may hold.
pub const MAX_RING_PACKETS: usize = 1_000_000;
/// The most clients at once (each is a thread and a queue of up to 4 MiB).
pub const MAX_CLIENTS: usize = 32;

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Packets the ring keeps (default 50,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_packets: Option<usize>,
    /// Bytes the ring keeps (default 32 MiB; 64 bytes of overhead per packet count too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_bytes: Option<usize>,
    /// UDP ports to capture besides DHCP (either direction).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_udp_ports: Vec<u16>,
    /// TCP ports to capture (either direction).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_tcp_ports: Vec<u16>,
    /// Streaming clients at once (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clients: Option<usize>,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The ring's bounds.
    pub limits: Limits,
    /// The filter's extra ports.
    pub extra: Extra,
    /// Streaming clients at once.
    pub max_clients: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self { limits: Limits::default(), extra: Extra::default(), max_clients: DEFAULT_MAX_CLIENTS }
    }
}

pub use runtime::statefile::ConfigError;

/// `<perm>/captured/config.json`.
#[must_use]
pub fn path(perm: &Path) -> PathBuf {
    perm.join("captured/config.json")
}

fn ports(field: &str, list: &[u16], fixed: &[u16]) -> Result<Vec<u16>, String> {
    if list.len() > MAX_EXTRA_PORTS {
        return Err(format!("{field}: at most {MAX_EXTRA_PORTS} ports"));
    }
    let mut seen = BTreeSet::new();
    for &p in list {
        if p == 0 {
            return Err(format!("{field}: port 0 is not a port"));
        }
        if !seen.insert(p) {
            return Err(format!("{field}: port {p} is listed twice"));
        }
    }
    // Ports the fixed filter keeps anyway need no extra instructions.
    Ok(list.iter().copied().filter(|p| !fixed.contains(p)).collect())
}

impl Settings {
    /// Validates a parsed file.
    pub fn from_file(file: &ConfigFile, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.to_owned(), message };
        let defaults = Limits::default();
        let max_packets = file.ring_packets.unwrap_or(defaults.max_packets);
        if !(1..=MAX_RING_PACKETS).contains(&max_packets) {
            return Err(invalid(format!("ring_packets must be 1 to {MAX_RING_PACKETS}, not {max_packets}")));
        }
        let max_bytes = file.ring_bytes.unwrap_or(defaults.max_bytes);
        if !(MIN_RING_BYTES..=MAX_RING_BYTES).contains(&max_bytes) {
            return Err(invalid(format!("ring_bytes must be {MIN_RING_BYTES} to {MAX_RING_BYTES}, not {max_bytes}")));
        }
        let max_clients = file.max_clients.unwrap_or(DEFAULT_MAX_CLIENTS);
        if !(1..=MAX_CLIENTS).contains(&max_clients) {
            return Err(invalid(format!("max_clients must be 1 to {MAX_CLIENTS}, not {max_clients}")));
        }
        let fixed: Vec<u16> = DHCP4_PORTS.iter().chain(&DHCP6_PORTS).copied().collect();
        let udp_ports = ports("extra_udp_ports", &file.extra_udp_ports, &fixed).map_err(invalid)?;
        let tcp_ports = ports("extra_tcp_ports", &file.extra_tcp_ports, &[]).map_err(invalid)?;
        Ok(Self { limits: Limits { max_packets, max_bytes }, extra: Extra { udp_ports, tcp_ports }, max_clients })
    }

    /// Reads `<perm>/captured/config.json`: `Ok(defaults)` when it is absent.
    pub fn load(perm: &Path) -> Result<Self, ConfigError> {
        let path = path(perm);
        match runtime::statefile::read_json::<ConfigFile>(&path) {
            Ok(None) => Ok(Self::default()),
            Ok(Some(file)) => Self::from_file(&file, &path),
            Err(e) => Err(ConfigError::File(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        let file: ConfigFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Settings::from_file(&file, Path::new("config.json")).map_err(|e| e.to_string())
    }

    #[test]
    fn absent_fields_mean_the_defaults() {
        assert_eq!(parse("{}").unwrap(), Settings::default());
        assert_eq!(Settings::default().limits, Limits { max_packets: 50_000, max_bytes: 32 << 20 });
    }

    #[test]
    fn reads_every_field() {
        let s = parse(
            r#"{"ring_packets": 1000, "ring_bytes": 1048576, "extra_udp_ports": [53, 67, 123],
                "extra_tcp_ports": [179], "max_clients": 2}"#,
        )
        .unwrap();
        assert_eq!(s.limits, Limits { max_packets: 1000, max_bytes: 1 << 20 });
        assert_eq!(s.extra, Extra { udp_ports: vec![53, 123], tcp_ports: vec![179] });
        assert_eq!(s.max_clients, 2);
    }

    #[test]
    fn rejects_unknown_fields() {
        let e = parse(r#"{"ring_packet": 10}"#).unwrap_err();
        assert!(e.contains("unknown field `ring_packet`"), "{e}");
    }

    #[test]
    fn rejects_values_out_of_range() {
        for bad in [
            r#"{"ring_packets": 0}"#,
            r#"{"ring_bytes": 1024}"#,
            r#"{"ring_bytes": 1073741824}"#,
            r#"{"max_clients": 0}"#,
            r#"{"max_clients": 33}"#,
            r#"{"extra_udp_ports": [0]}"#,
            r#"{"extra_tcp_ports": [80, 80]}"#,
            r#"{"extra_udp_ports": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}"#,
            r#"{"extra_udp_ports": [70000]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_missing_file_is_the_defaults_and_a_corrupt_one_names_the_line() {
        let dir = std::env::temp_dir().join(format!("captured-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("captured")).unwrap();
        assert_eq!(Settings::load(&dir).unwrap(), Settings::default());
        std::fs::write(path(&dir), "{\n  \"ring_packets\": 10,\n  oops\n}").unwrap();
        let e = Settings::load(&dir).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains('3'), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
