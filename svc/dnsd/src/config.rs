//! `/perm/dnsd/config.json`, optional; its absence means the defaults:
//!
//! ```json
//! {
//!   "upstreams": ["192.0.2.53", "[2001:db8::53]:53", "192.0.2.54:5353"],
//!   "cache_entries": 10000,
//!   "cache_bytes": 4194304,
//!   "listen": ["192.168.42.1:53", "127.0.0.1:53"]
//! }
//! ```
//!
//! - `upstreams`: when given and not empty, the only servers asked, in this
//!   order of preference (no DHCP-learned servers, no fallback). A bare address
//!   means port 53.
//! - `cache_entries`, `cache_bytes`: the cache's bounds (0 entries: no cache).
//! - `listen`: replaces the default of port 53 on every private address.
//!
//! Unknown fields are an error (the file is ours, so a typo must not pass).
//!
//! Without `upstreams`, the servers are those of the DHCPv4 lease, then of the
//! DHCPv6 lease, and after them [`FALLBACK`], which is only asked while every
//! earlier server is down.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use runtime::perm::{Dhcp4Lease, Dhcp6Lease};
use serde::Deserialize;

use crate::cache::Limits;
use crate::upstream::{Source, UpstreamSpec};

/// The fallback servers: Cloudflare's and Google's public resolvers, one IPv4
/// and one IPv6 address of each, so neither operator's outage leaves us
/// without DNS. router7 used only Google's (and ignored the ISP's servers).
/// Neither filters answers; both publish privacy policies.
pub const FALLBACK: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V6(Ipv6Addr::new(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
];

/// Most upstreams we keep.
pub const MAX_UPSTREAMS: usize = 16;

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Upstream servers, `ADDR` or `ADDR:PORT` (`[V6]:PORT`).
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Most cache entries.
    #[serde(default)]
    pub cache_entries: Option<usize>,
    /// Most cache bytes.
    #[serde(default)]
    pub cache_bytes: Option<usize>,
    /// Listen addresses, `ADDR:PORT`.
    #[serde(default)]
    pub listen: Vec<String>,
}

/// The validated configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Configured upstreams (empty: from the leases, then the fallback).
    pub upstreams: Vec<SocketAddr>,
    /// Cache limits.
    pub cache: Limits,
    /// Listen addresses (empty: port 53 on every private address).
    pub listen: Vec<SocketAddr>,
}

/// Parses `ADDR`, `ADDR:PORT` or `[V6]:PORT`; a bare address gets `default_port`.
pub fn parse_addr(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok(sa);
    }
    text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, default_port)).map_err(|_| format!("not an address: {text:?}"))
}

impl TryFrom<ConfigFile> for Config {
    type Error = String;

    fn try_from(file: ConfigFile) -> Result<Self, String> {
        let mut upstreams = Vec::new();
        for u in &file.upstreams {
            let addr = parse_addr(u, 53).map_err(|e| format!("upstreams: {e}"))?;
            if addr.port() == 0 || addr.ip().is_unspecified() {
                return Err(format!("upstreams: {u:?} cannot be asked"));
            }
            if !upstreams.contains(&addr) {
                upstreams.push(addr);
            }
        }
        if upstreams.len() > MAX_UPSTREAMS {
            return Err(format!("upstreams: at most {MAX_UPSTREAMS}"));
        }
        let defaults = Limits::default();
        let max_entries = file.cache_entries.unwrap_or(defaults.max_entries);
        let max_bytes = file.cache_bytes.unwrap_or(defaults.max_bytes);
        if max_entries > 1_000_000 {
            return Err("cache_entries: at most 1000000".into());
        }
        if max_bytes > 1 << 30 {
            return Err("cache_bytes: at most 1 GiB".into());
        }
        let listen = file
            .listen
            .iter()
            .map(|l| parse_addr(l, 53).map_err(|e| format!("listen: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { upstreams, cache: Limits { max_entries, max_bytes, ..defaults }, listen })
    }
}

/// The upstreams to use: the configured ones, or the leases' then the fallback.
/// Addresses in `own` (ours: asking ourselves would loop) and IPv6 link-local
/// servers (we would not know their interface) are left out.
#[must_use]
pub fn upstreams(
    config: &Config,
    dhcp4: Option<&Dhcp4Lease>,
    dhcp6: Option<&Dhcp6Lease>,
    own: &[SocketAddr],
) -> Vec<UpstreamSpec> {
    let mut out: Vec<UpstreamSpec> = Vec::new();
    let mut add = |addr: SocketAddr, source: Source| {
        let link_local = matches!(addr.ip(), IpAddr::V6(v6) if v6.is_unicast_link_local());
        let ours = own.contains(&addr) || addr.ip().is_unspecified() || addr.ip().is_multicast();
        if !link_local && !ours && !out.iter().any(|u| u.addr == addr) && out.len() < MAX_UPSTREAMS {
            out.push(UpstreamSpec { addr, source });
        }
    };
    if !config.upstreams.is_empty() {
        for &a in &config.upstreams {
            add(a, Source::Config);
        }
        return out;
    }
    for ip in dhcp4.map(|l| l.dns.as_slice()).unwrap_or_default() {
        add(SocketAddr::new(IpAddr::V4(*ip), 53), Source::Dhcp4);
    }
    for ip in dhcp6.map(|l| l.dns.as_slice()).unwrap_or_default() {
        add(SocketAddr::new(IpAddr::V6(*ip), 53), Source::Dhcp6);
    }
    for ip in FALLBACK {
        add(SocketAddr::new(ip, 53), Source::Fallback);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let file: ConfigFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Config::try_from(file)
    }

    #[test]
    fn reads_the_documented_example() {
        let c = parse(
            r#"{"upstreams": ["192.0.2.53", "[2001:db8::53]:53", "192.0.2.54:5353"],
                "cache_entries": 10000, "cache_bytes": 4194304, "listen": ["192.168.42.1:53", "127.0.0.1:53"]}"#,
        )
        .unwrap();
        assert_eq!(
            c.upstreams,
            ["192.0.2.53:53", "[2001:db8::53]:53", "192.0.2.54:5353"].map(|a| a.parse::<SocketAddr>().unwrap())
        );
        assert_eq!((c.cache.max_entries, c.cache.max_bytes), (10_000, 4 << 20));
        assert_eq!(c.listen.len(), 2);
        assert_eq!(parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let err = parse(r#"{"upstream": ["192.0.2.53"]}"#).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        assert!(parse(r#"{"upstreams": ["dns.example"]}"#).is_err());
        assert!(parse(r#"{"upstreams": ["0.0.0.0"]}"#).is_err());
        assert!(parse(r#"{"listen": ["192.0.2.1:99999"]}"#).is_err());
        assert!(parse(r#"{"cache_entries": 2000000}"#).is_err());
    }

    fn lease4(dns: &[&str]) -> Dhcp4Lease {
        let dns: Vec<String> = dns.iter().map(|d| format!("{d:?}")).collect();
        serde_json::from_str(&format!(
            r#"{{"valid_until":"2018-05-18T12:47:20Z","client_ip":"85.195.207.62","subnet_mask":"255.255.255.128",
                "router":"85.195.207.1","dns":[{}]}}"#,
            dns.join(",")
        ))
        .unwrap()
    }

    #[test]
    fn orders_config_then_leases_then_fallback() {
        let l4 = lease4(&["77.109.128.2", "213.144.129.20", "77.109.128.2"]);
        let l6: Dhcp6Lease = serde_json::from_str(
            r#"{"valid_until":"2018-05-14T20:00:00Z","prefixes":[],"dns":["2001:1620:2777:1::10","fe80::1"]}"#,
        )
        .unwrap();
        let got = upstreams(&Config::default(), Some(&l4), Some(&l6), &[]);
        let addrs: Vec<String> = got.iter().map(|u| u.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "77.109.128.2:53",
                "213.144.129.20:53",
                "[2001:1620:2777:1::10]:53",
                "1.1.1.1:53",
                "8.8.8.8:53",
                "[2606:4700:4700::1111]:53",
                "[2001:4860:4860::8888]:53"
            ]
        );
        assert_eq!(got[0].source, Source::Dhcp4);
        assert_eq!(got[2].source, Source::Dhcp6);
        assert_eq!(got[3].source, Source::Fallback);

        let config = parse(r#"{"upstreams": ["192.0.2.53"]}"#).unwrap();
        let only: Vec<UpstreamSpec> = upstreams(&config, Some(&l4), None, &[]);
        assert_eq!(only, [UpstreamSpec { addr: "192.0.2.53:53".parse().unwrap(), source: Source::Config }]);

        let none = upstreams(&Config::default(), None, None, &["1.1.1.1:53".parse().unwrap()]);
        assert_eq!(none.len(), 3, "our own address is never an upstream");
    }
}
