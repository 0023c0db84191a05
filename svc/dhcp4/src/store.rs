//! dhcp4's files: what it reads (`/perm/interfaces.json` for a spoofed MAC)
//! and what it writes (`/perm/dhcp4/wire/lease.json` for its readers, the raw
//! DHCPACK in `/perm/dhcp4/wire/ack` for itself after a restart).
//!
//! Persisted times are wall time; the core's deadlines are monotonic. Wall time
//! is only read here and in the shell, and a stored expiry is turned into "how
//! long is left" once, at start.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dhcp4::Held;
use runtime::perm::{self, Dhcp4Lease, Interfaces};
use runtime::statefile::{self, StateError};
use runtime::{log_error, log_warn, netif};

/// The paths under `--perm`.
#[derive(Debug, Clone)]
pub struct Store {
    interfaces: PathBuf,
    lease: PathBuf,
    ack: PathBuf,
}

/// A lease found on disk at start.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The DHCPACK's BOOTP payload.
    pub ack: Vec<u8>,
    /// Time left by the wall clock, `None` when it ran out or is unknown.
    pub remaining: Option<Duration>,
    /// lease.json as found (for status), if it parses.
    pub doc: Option<Dhcp4Lease>,
}

impl Store {
    /// The files under `perm`.
    #[must_use]
    pub fn new(perm: &Path) -> Self {
        Self {
            interfaces: perm::interfaces_path(perm),
            lease: perm::dhcp4_lease_path(perm),
            ack: perm.join("dhcp4/wire/ack"),
        }
    }

    /// `spoof_hardware_addr` of `uplink` in interfaces.json, if set and valid.
    /// A missing file means none; a corrupt one is reported and treated as none.
    #[must_use]
    pub fn spoofed_mac(&self, uplink: &str) -> Option<[u8; 6]> {
        let interfaces: Interfaces = match statefile::read_json(&self.interfaces) {
            Ok(Some(i)) => i,
            Ok(None) => return None,
            Err(e) => {
                log_error!("{e}; ignoring it for the MAC address");
                return None;
            }
        };
        let unknown = interfaces.unknown_fields();
        if !unknown.is_empty() {
            log_warn!("{}: unknown fields {}", self.interfaces.display(), unknown.join(", "));
        }
        let text = &interfaces.by_name(uplink)?.spoof_hardware_addr;
        if text.is_empty() {
            return None;
        }
        let mac = netif::parse_mac(text);
        if mac.is_none() {
            log_warn!(
                "{}: spoof_hardware_addr {text:?} of {uplink} is not a MAC address; ignoring it",
                self.interfaces.display()
            );
        }
        mac
    }

    /// The lease stored by a previous run, if any.
    #[must_use]
    pub fn load(&self, wall_now: SystemTime) -> Option<Stored> {
        let ack = match statefile::read(&self.ack) {
            Ok(Some(a)) => a,
            Ok(None) => return None,
            Err(e) => {
                log_error!("{e}; starting without the stored lease");
                return None;
            }
        };
        let doc = match statefile::read_json::<Dhcp4Lease>(&self.lease) {
            Ok(d) => d,
            Err(e) => {
                log_warn!("{e}; the stored lease's expiry is unknown");
                None
            }
        };
        // router7 wrote its renewal time into valid_until (quirk 1): still a
        // time up to which the lease was certainly valid.
        let remaining =
            doc.as_ref().and_then(|d| d.valid_until.to_system().duration_since(wall_now).ok()).filter(|r| !r.is_zero());
        Some(Stored { ack, remaining, doc })
    }

    /// Writes the held lease, granted at wall time `granted`: the ACK first (our
    /// own restart state), then lease.json (what the readers act on). Returns
    /// the document written.
    pub fn save(&self, held: &Held, granted: SystemTime) -> Result<Dhcp4Lease, StateError> {
        let doc = held.lease.to_perm(granted);
        statefile::write_atomic(&self.ack, &held.ack)?;
        statefile::write_json(&self.lease, &doc)?;
        Ok(doc)
    }

    /// Rewrites lease.json only (after the wall clock jumped).
    pub fn save_doc(&self, doc: &Dhcp4Lease) -> Result<(), StateError> {
        statefile::write_json(&self.lease, doc)
    }

    /// Removes the stored ACK (after a NAK or a release); lease.json stays, as
    /// in router7: nothing deconfigures the uplink behind the user's back.
    pub fn forget_ack(&self) {
        match std::fs::remove_file(&self.ack) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log_error!("{}: cannot remove: {e}", self.ack.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("dhcp4-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    #[test]
    fn reads_the_spoofed_mac_of_the_uplink_only() {
        let dir = tmp("spoof");
        let store = Store::new(&dir.0);
        assert_eq!(store.spoofed_mac("uplink0"), None, "no file: none");
        std::fs::write(
            dir.0.join("interfaces.json"),
            r#"{"interfaces":[{"name":"lan0","spoof_hardware_addr":"02:00:00:00:00:01"},
                {"name":"uplink0","hardware_addr":"00:0d:b9:00:00:01","spoof_hardware_addr":"02:73:53:00:CA:FE"}]}"#,
        )
        .unwrap();
        assert_eq!(store.spoofed_mac("uplink0"), Some([2, 0x73, 0x53, 0, 0xca, 0xfe]));
        assert_eq!(store.spoofed_mac("uplink1"), None);
        std::fs::write(
            dir.0.join("interfaces.json"),
            r#"{"interfaces":[{"name":"uplink0","spoof_hardware_addr":"zz"}]}"#,
        )
        .unwrap();
        assert_eq!(store.spoofed_mac("uplink0"), None, "an invalid MAC is ignored");
        std::fs::write(dir.0.join("interfaces.json"), "{").unwrap();
        assert_eq!(store.spoofed_mac("uplink0"), None, "a corrupt file is ignored");
    }

    #[test]
    fn load_tells_time_left_from_a_lease_that_ran_out() {
        let dir = tmp("load");
        let store = Store::new(&dir.0);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(store.load(now).is_none());
        std::fs::create_dir_all(dir.0.join("dhcp4/wire")).unwrap();
        std::fs::write(dir.0.join("dhcp4/wire/ack"), b"ack bytes").unwrap();
        let stored = store.load(now).unwrap();
        assert_eq!((stored.ack.as_slice(), stored.remaining), (&b"ack bytes"[..], None), "no lease.json: unknown");
        let lease = |valid_until: &str| {
            format!(
                r#"{{"valid_until":"{valid_until}","client_ip":"192.0.2.10","subnet_mask":"255.255.255.0","router":"192.0.2.1","dns":[]}}"#
            )
        };
        std::fs::write(dir.0.join("dhcp4/wire/lease.json"), lease("2023-11-14T22:15:00Z")).unwrap();
        assert_eq!(store.load(now).unwrap().remaining, Some(Duration::from_secs(100)));
        std::fs::write(dir.0.join("dhcp4/wire/lease.json"), lease("2023-11-14T22:00:00Z")).unwrap();
        let stored = store.load(now).unwrap();
        assert_eq!(stored.remaining, None, "ran out");
        assert!(stored.doc.is_some());
        store.forget_ack();
        store.forget_ack();
        assert!(store.load(now).is_none());
        assert!(dir.0.join("dhcp4/wire/lease.json").exists(), "lease.json stays");
    }
}
