//! The lease the client holds, on the monotonic clock, and its conversion to
//! and from `/perm/dhcp6/wire/lease.json` ([`runtime::perm::Dhcp6Lease`]),
//! which is on the wall clock.
//!
//! Deadlines are `Instant`s so a wall-clock jump (a router without an RTC
//! boots in 1970 and jumps when NTP syncs) never expires anything. Only the
//! file carries wall times, computed when it is written.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant, SystemTime};

use runtime::perm::{DelegatedPrefix, Dhcp6Lease, IpNet};
use runtime::timefmt::Timestamp;

/// A delegated prefix with its lifetimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    /// The network address (host bits zero).
    pub prefix: Ipv6Addr,
    /// Its length.
    pub len: u8,
    /// End of the preferred lifetime.
    pub preferred_until: Instant,
    /// End of the valid lifetime.
    pub valid_until: Instant,
    /// The valid lifetime has ended; kept because nothing replaced it.
    pub expired: bool,
}

/// An IA_NA address with its lifetimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub addr: Ipv6Addr,
    /// End of the preferred lifetime.
    pub preferred_until: Instant,
    /// End of the valid lifetime.
    pub valid_until: Instant,
    /// The valid lifetime has ended; kept because nothing replaced it.
    pub expired: bool,
}

/// What the servers gave us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The DUID of the server that last answered (absent in a lease router7 wrote).
    pub server_id: Option<Vec<u8>>,
    /// Delegated prefixes, oldest first (readers take the first one).
    pub prefixes: Vec<Prefix>,
    /// IA_NA addresses.
    pub addresses: Vec<Address>,
    /// DNS servers (option 23).
    pub dns: Vec<Ipv6Addr>,
    /// Domain search list (option 24).
    pub domains: Vec<String>,
    /// T1: when to Renew.
    pub renew_at: Instant,
    /// T2: when to Rebind.
    pub rebind_at: Instant,
}

/// The network part of `addr` for a prefix of `len` bits.
#[must_use]
pub fn mask(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u32::from(len.min(128));
    let m = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
    Ipv6Addr::from(u128::from(addr) & m)
}

impl Lease {
    /// Whether it holds a prefix or an address whose valid lifetime has not ended.
    #[must_use]
    pub fn has_valid(&self) -> bool {
        self.prefixes.iter().any(|p| !p.expired) || self.addresses.iter().any(|a| !a.expired)
    }

    /// Whether it holds an unexpired prefix.
    #[must_use]
    pub fn has_valid_prefix(&self) -> bool {
        self.prefixes.iter().any(|p| !p.expired)
    }

    /// Whether it holds an unexpired address.
    #[must_use]
    pub fn has_valid_address(&self) -> bool {
        self.addresses.iter().any(|a| !a.expired)
    }

    /// The earliest end of a valid lifetime not yet passed.
    #[must_use]
    pub fn next_expiry(&self) -> Option<Instant> {
        let p = self.prefixes.iter().filter(|p| !p.expired).map(|p| p.valid_until);
        let a = self.addresses.iter().filter(|a| !a.expired).map(|a| a.valid_until);
        p.chain(a).min()
    }

    /// The last end of a valid lifetime not yet passed (the end of Rebind, §18.2.5).
    #[must_use]
    pub fn last_expiry(&self) -> Option<Instant> {
        let p = self.prefixes.iter().filter(|p| !p.expired).map(|p| p.valid_until);
        let a = self.addresses.iter().filter(|a| !a.expired).map(|a| a.valid_until);
        p.chain(a).max()
    }

    /// The prefixes as `(network, length)`.
    #[must_use]
    pub fn prefix_list(&self) -> Vec<(Ipv6Addr, u8)> {
        self.prefixes.iter().map(|p| (p.prefix, p.len)).collect()
    }

    /// The file form, with wall times derived from `now` ↔ `wall`.
    #[must_use]
    pub fn to_perm(&self, now: Instant, wall: SystemTime) -> Dhcp6Lease {
        let stamp = |t: Instant| Timestamp::from_system(wall_of(t, now, wall));
        let ends = self.prefixes.iter().map(|p| p.valid_until).chain(self.addresses.iter().map(|a| a.valid_until));
        Dhcp6Lease {
            valid_until: stamp(ends.max().unwrap_or(now)),
            prefixes: self
                .prefixes
                .iter()
                .map(|p| IpNet { ip: std::net::IpAddr::V6(p.prefix), prefix_len: p.len })
                .collect(),
            dns: self.dns.clone(),
            delegations: self
                .prefixes
                .iter()
                .map(|p| DelegatedPrefix {
                    prefix: format!("{}/{}", p.prefix, p.len),
                    preferred_until: stamp(p.preferred_until),
                    valid_until: stamp(p.valid_until),
                })
                .collect(),
            renew_after: Some(stamp(self.renew_at)),
            rebind_after: Some(stamp(self.rebind_at)),
            server_duid: self.server_id.as_ref().map(|d| hex(d)),
            address: self.addresses.first().map(|a| a.addr),
        }
    }

    /// The lease a file describes, with instants derived from `now` ↔ `wall`
    /// (what ended before `wall` ends at `now`). A file router7 wrote has no
    /// per-prefix lifetimes: its `valid_until` stands for all of them. `None`
    /// when the file holds neither a prefix nor an address.
    #[must_use]
    pub fn from_perm(file: &Dhcp6Lease, now: Instant, wall: SystemTime) -> Option<Self> {
        let instant = |t: Timestamp| instant_of(t.to_system(), now, wall);
        let whole = instant(file.valid_until);
        let prefixes: Vec<Prefix> = file
            .prefixes
            .iter()
            .filter_map(|net| {
                let std::net::IpAddr::V6(ip) = net.ip else { return None };
                let own = format!("{}/{}", mask(ip, net.prefix_len), net.prefix_len);
                let d = file.delegations.iter().find(|d| d.prefix == own);
                let valid_until = d.map_or(whole, |d| instant(d.valid_until));
                Some(Prefix {
                    prefix: mask(ip, net.prefix_len),
                    len: net.prefix_len,
                    preferred_until: d.map_or(whole, |d| instant(d.preferred_until)).min(valid_until),
                    valid_until,
                    expired: false,
                })
            })
            .collect();
        let addresses: Vec<Address> = file
            .address
            .iter()
            .map(|a| Address { addr: *a, preferred_until: whole, valid_until: whole, expired: false })
            .collect();
        if prefixes.is_empty() && addresses.is_empty() {
            return None;
        }
        Some(Self {
            server_id: file.server_duid.as_deref().and_then(unhex),
            prefixes,
            addresses,
            dns: file.dns.clone(),
            domains: Vec::new(),
            renew_at: file.renew_after.map_or(now, instant),
            rebind_at: file.rebind_after.map_or(now, instant),
        })
    }
}

/// The wall time of `t`, given that `now` is `wall`.
fn wall_of(t: Instant, now: Instant, wall: SystemTime) -> SystemTime {
    if t >= now { wall.checked_add(t - now).unwrap_or(wall) } else { wall.checked_sub(now - t).unwrap_or(wall) }
}

/// The instant of wall time `t`, given that `now` is `wall`; the past maps to `now`.
fn instant_of(t: SystemTime, now: Instant, wall: SystemTime) -> Instant {
    match t.duration_since(wall) {
        Ok(ahead) => now.checked_add(ahead.min(Duration::from_secs(u64::from(u32::MAX)))).unwrap_or(now),
        Err(_) => now,
    }
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex; `None` for anything else or an odd length.
#[must_use]
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.is_empty() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_host_bits() {
        assert_eq!(mask("2a02:168:4a00:1::5".parse().unwrap(), 48), "2a02:168:4a00::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(mask("2001:db8::1".parse().unwrap(), 0), Ipv6Addr::UNSPECIFIED);
        assert_eq!(mask("2001:db8::1".parse().unwrap(), 128), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn round_trips_through_the_file_with_wall_times() {
        let now = runtime::clock::now();
        let wall: SystemTime = "2018-05-14T09:09:37Z".parse::<Timestamp>().unwrap().to_system();
        let s = Duration::from_secs;
        let lease = Lease {
            server_id: Some(vec![0, 1, 0, 1, 0x22, 0x43]),
            prefixes: vec![Prefix {
                prefix: "2a02:168:4a00::".parse().unwrap(),
                len: 48,
                preferred_until: now + s(3600),
                valid_until: now + s(86400),
                expired: false,
            }],
            addresses: vec![Address {
                addr: "2a02:168:2000:5:add7:17aa:9163:8ef3".parse().unwrap(),
                preferred_until: now + s(3600),
                valid_until: now + s(86400),
                expired: false,
            }],
            dns: vec!["2001:1620:2777:1::10".parse().unwrap()],
            domains: vec![],
            renew_at: now + s(1200),
            rebind_at: now + s(1800),
        };
        let file = lease.to_perm(now, wall);
        let text = serde_json::to_string(&file).unwrap();
        assert!(text.contains(r#""prefixes":[{"IP":"2a02:168:4a00::","Mask":"////////AAAAAAAAAAAAAA=="}]"#), "{text}");
        assert_eq!(file.valid_until.to_string(), "2018-05-15T09:09:37Z");
        assert_eq!(file.renew_after.unwrap().to_string(), "2018-05-14T09:29:37Z");
        assert_eq!(file.server_duid.as_deref(), Some("000100012243"));
        assert_eq!(file.delegations[0].prefix, "2a02:168:4a00::/48");

        // Read back an hour later: everything is an hour closer.
        let later = now + s(3600);
        let back = Lease::from_perm(&file, later, wall + s(3600)).unwrap();
        assert_eq!(back.prefixes[0].valid_until, now + s(86400));
        assert_eq!(back.prefixes[0].preferred_until, later, "ended: maps to now");
        assert_eq!(back.server_id, lease.server_id);
        assert_eq!(back.addresses[0].addr, lease.addresses[0].addr);
        assert_eq!(back.renew_at, later);
    }

    #[test]
    fn reads_a_router7_lease_whose_valid_until_stands_for_every_prefix() {
        let router7: Dhcp6Lease = serde_json::from_str(
            r#"{"valid_until":"2018-05-14T09:29:37Z","prefixes":[{"IP":"2a02:168:4a00::","Mask":"////////AAAAAAAAAAAAAA=="}],"dns":["2001:1620:2777:1::10"]}"#,
        )
        .unwrap();
        let now = runtime::clock::now();
        let wall = "2018-05-14T09:09:37Z".parse::<Timestamp>().unwrap().to_system();
        let l = Lease::from_perm(&router7, now, wall).unwrap();
        assert_eq!(l.prefix_list(), vec![("2a02:168:4a00::".parse().unwrap(), 48)]);
        assert_eq!(l.prefixes[0].valid_until, now + Duration::from_secs(1200));
        assert_eq!(l.server_id, None);
        let empty: Dhcp6Lease =
            serde_json::from_str(r#"{"valid_until":"2018-05-14T09:29:37Z","prefixes":[],"dns":[]}"#).unwrap();
        assert!(Lease::from_perm(&empty, now, wall).is_none());
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(unhex(&hex(&[0, 0x0a, 0xff])), Some(vec![0, 0x0a, 0xff]));
        for bad in ["", "0", "zz", "0g"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
    }
}
