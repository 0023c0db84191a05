//! Which prefixes the LAN gets: the first /64 of each prefix delegated in
//! `/perm/dhcp6/wire/lease.json` (a /64 or longer stays as it is, as router7
//! did), plus the extras of `/perm/radvd/prefixes.json` (router7's file: a JSON
//! array of Go `net.IPNet`), each with the DHCPv6 lifetimes that cap what we
//! advertise (RFC 9096 §3, L-15: never advertise longer than the delegation lasts).
//!
//! Also the record of what was advertised (`/perm/radvd/advertised.json`), so a
//! prefix that vanished while radvd was not running (a reboot that brought a new
//! delegation) is still deprecated afterwards (RFC 9096 §3.5).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use runtime::perm::{Dhcp6Lease, IpNet, parse_cidr};
use runtime::timefmt::Timestamp;
use serde::{Deserialize, Serialize};

/// An IPv6 prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Prefix {
    /// `addr/len` with the bits past `len` cleared; `None` when `len > 128`.
    #[must_use]
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        if len > 128 {
            return None;
        }
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        Some(Self { addr: Ipv6Addr::from(u128::from(addr) & mask), len })
    }

    /// The prefix the LAN gets from a delegated (or configured) net: its first
    /// /64, or the net itself when it is a /64 or longer. IPv4 nets give `None`.
    #[must_use]
    pub fn for_lan(net: IpNet) -> Option<Self> {
        match net.ip {
            IpAddr::V6(v6) => Self::new(v6, net.prefix_len.max(64)),
            IpAddr::V4(_) => None,
        }
    }

    /// The network address.
    #[must_use]
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length.
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether SLAAC can form addresses in it: a 64-bit interface identifier on
    /// Ethernet (RFC 4862 §5.5.3 d, RFC 2464 §4) needs exactly a /64.
    #[must_use]
    pub fn autonomous(&self) -> bool {
        self.len == 64
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match parse_cidr(s) {
            Some((IpAddr::V6(v6), len)) => Self::new(v6, len).ok_or_else(|| format!("bad prefix {s:?}")),
            _ => Err(format!("not an IPv6 prefix: {s:?}")),
        }
    }
}

/// Where a prefix comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Delegated by DHCPv6.
    Lease,
    /// `/perm/radvd/prefixes.json`.
    Extra,
}

impl Source {
    /// For status and events.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Lease => "dhcp6",
            Self::Extra => "prefixes.json",
        }
    }
}

/// When a delegation's lifetimes end (wall time, as dhcp6 wrote them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// End of the preferred lifetime.
    pub preferred_until: Timestamp,
    /// End of the valid lifetime.
    pub valid_until: Timestamp,
}

/// One prefix to advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInput {
    /// The prefix.
    pub prefix: Prefix,
    /// Where it comes from.
    pub source: Source,
    /// The DHCPv6 lifetimes that cap it; `None` = uncapped (a configured prefix,
    /// or a router7 lease without `delegations`).
    pub lifetimes: Option<Lifetimes>,
}

/// At most this many prefixes are advertised, which keeps an RA well under
/// the IPv6 minimum MTU (RFC 8200 §5) whatever the lease holds.
pub const MAX_PREFIXES: usize = 16;

/// The prefixes of a lease and the extras file, deduplicated (a configured
/// prefix stays uncapped even when it is also delegated), with warnings for
/// what was skipped.
#[must_use]
pub fn collect(lease: Option<&Dhcp6Lease>, extras: &[IpNet]) -> (Vec<PrefixInput>, Vec<String>) {
    let mut out: Vec<PrefixInput> = Vec::new();
    let mut warnings = Vec::new();
    let add = |input: PrefixInput, out: &mut Vec<PrefixInput>, warnings: &mut Vec<String>| {
        if let Some(existing) = out.iter_mut().find(|p| p.prefix == input.prefix) {
            existing.lifetimes = match (existing.lifetimes, input.lifetimes) {
                (Some(a), Some(b)) => Some(if b.valid_until > a.valid_until { b } else { a }),
                _ => None,
            };
            if input.source == Source::Extra {
                existing.source = Source::Extra;
            }
        } else if out.len() < MAX_PREFIXES {
            out.push(input);
        } else {
            warnings.push(format!("more than {MAX_PREFIXES} prefixes; {} is not advertised", input.prefix));
        }
    };
    if let Some(lease) = lease {
        for net in &lease.prefixes {
            let Some(prefix) = Prefix::for_lan(*net) else {
                warnings.push(format!("lease.json: {net} is not an IPv6 prefix"));
                continue;
            };
            let delegated = Prefix::new(prefix.addr, net.prefix_len.min(128));
            let lifetimes = lease
                .delegations
                .iter()
                .find(|d| d.prefix.parse::<Prefix>().ok() == delegated)
                .map(|d| Lifetimes { preferred_until: d.preferred_until, valid_until: d.valid_until });
            add(PrefixInput { prefix, source: Source::Lease, lifetimes }, &mut out, &mut warnings);
        }
    }
    for net in extras {
        let Some(prefix) = Prefix::for_lan(*net) else {
            warnings.push(format!("prefixes.json: {net} is not an IPv6 prefix"));
            continue;
        };
        add(PrefixInput { prefix, source: Source::Extra, lifetimes: None }, &mut out, &mut warnings);
    }
    (out, warnings)
}

/// `/perm/radvd/advertised.json`: what hosts may still hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The prefixes.
    pub prefixes: Vec<RecordEntry>,
}

/// One prefix of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEntry {
    /// `addr/len`.
    pub prefix: String,
    /// The longest a host may still keep an address in it, seconds.
    pub valid_seconds: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::perm::DelegatedPrefix;

    fn net(s: &str) -> IpNet {
        let (ip, prefix_len) = parse_cidr(s).unwrap();
        IpNet { ip, prefix_len }
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_lan_gets_the_first_64_of_a_delegation() {
        assert_eq!(Prefix::for_lan(net("2a02:168:4a00::/48")).unwrap().to_string(), "2a02:168:4a00::/64");
        assert_eq!(Prefix::for_lan(net("2a02:168:4a00:5::/64")).unwrap().to_string(), "2a02:168:4a00:5::/64");
        let longer = Prefix::for_lan(net("2a02:168:4a00:5:1::/80")).unwrap();
        assert_eq!((longer.to_string().as_str(), longer.autonomous()), ("2a02:168:4a00:5:1::/80", false));
        assert_eq!(Prefix::for_lan(net("2a02:168:4a00:5::1/64")).unwrap().to_string(), "2a02:168:4a00:5::/64");
        assert_eq!(Prefix::for_lan(net("192.168.1.0/24")), None);
        assert_eq!("2001:db8::1/56".parse::<Prefix>().unwrap().to_string(), "2001:db8::/56");
        assert!("10.0.0.0/8".parse::<Prefix>().is_err() && "::/129".parse::<Prefix>().is_err());
    }

    #[test]
    fn lease_prefixes_carry_their_delegation_lifetimes() {
        let lease = Dhcp6Lease {
            valid_until: ts("2026-01-01T00:30:00Z"),
            prefixes: vec![net("2a02:168:4a00::/48"), net("2001:db8:5::/56")],
            dns: vec![],
            delegations: vec![DelegatedPrefix {
                prefix: "2a02:168:4a00::/48".into(),
                preferred_until: ts("2026-01-01T01:00:00Z"),
                valid_until: ts("2026-01-01T02:00:00Z"),
            }],
            renew_after: None,
            rebind_after: None,
            server_duid: None,
            address: None,
        };
        let (got, warnings) = collect(Some(&lease), &[net("2001:db8:77::/64"), net("10.0.0.0/8")]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].prefix.to_string(), "2a02:168:4a00::/64");
        assert_eq!(got[0].lifetimes.unwrap().valid_until, ts("2026-01-01T02:00:00Z"));
        assert_eq!((got[1].source, got[1].lifetimes), (Source::Lease, None), "no delegation entry: uncapped");
        assert_eq!((got[2].source, got[2].prefix.to_string().as_str()), (Source::Extra, "2001:db8:77::/64"));
        assert_eq!(warnings, ["prefixes.json: 10.0.0.0/8 is not an IPv6 prefix"]);
    }

    #[test]
    fn a_configured_copy_of_a_delegated_prefix_is_uncapped_and_counted_once() {
        let lease: Dhcp6Lease = serde_json::from_str(
            r#"{"valid_until":"2026-01-01T00:00:00Z","prefixes":[{"IP":"2a02:168:4a00::","Mask":"////////AAAAAAAAAAAAAA=="}],
                "delegations":[{"prefix":"2a02:168:4a00::/48","preferred_until":"2026-01-01T01:00:00Z","valid_until":"2026-01-01T02:00:00Z"}]}"#,
        )
        .unwrap();
        let (got, _) = collect(Some(&lease), &[net("2a02:168:4a00::/64")]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].source, got[0].lifetimes), (Source::Extra, None));
        let (none, w) = collect(None, &[]);
        assert!(none.is_empty() && w.is_empty());
    }

    #[test]
    fn more_than_sixteen_prefixes_are_cut_with_a_warning() {
        let extras: Vec<IpNet> = (0..20).map(|i| net(&format!("2001:db8:{i:x}::/64"))).collect();
        let (got, warnings) = collect(None, &extras);
        assert_eq!(got.len(), MAX_PREFIXES);
        assert_eq!(warnings.len(), 4);
    }
}
