//! The server's configuration: router7's defaults, derived from lan0's address
//! in `/perm/interfaces.json`, optionally refined by `/perm/dhcp4d/config.json`.
//!
//! The file is ours (router7 had none), so it is strict: unknown fields are an
//! error. It is read into [`ConfigFile`] and validated once into [`Config`];
//! every problem is reported as `file:line:column: what`, for syntax errors
//! (serde) and for values that parse but make no sense (a pool outside the
//! subnet) alike, and the caller keeps its last good configuration.
//!
//! Defaults (router7 §1.4): the server address is lan0's; the subnet is lan0's
//! prefix (router7 hard-coded a /24 whatever the prefix said; with router7's
//! `/24` files the two agree); the pool is 230 addresses from the server
//! address + 1; 20-minute leases; router and DNS server = the server address;
//! domain and search domain `lan`.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::hostname;
use crate::jsonpos::{self, Seg};
use crate::wire::{Mac, code};

/// router7's pool size.
pub const DEFAULT_POOL_SIZE: u32 = 230;
/// router7's lease time.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(20 * 60);
/// How long a declined address is kept from everyone (dnsmasq uses the same).
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(600);
/// How long an offered address stays reserved for the client it was offered to.
pub const OFFER_HOLD: Duration = Duration::from_secs(30);
/// The largest pool we manage (a /16): the allocator keeps two arrays of this size.
pub const MAX_POOL_SIZE: u32 = 65_536;
/// Shortest lease we hand out (short ones are for tests).
pub const MIN_LEASE_SECONDS: u32 = 10;
/// Longest lease we hand out.
pub const MAX_LEASE_SECONDS: u32 = 365 * 24 * 3600;

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub network: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// The subnet of `addr`/`prefix`.
    #[must_use]
    pub fn of(addr: Ipv4Addr, prefix: u8) -> Self {
        Self { network: Ipv4Addr::from(u32::from(addr) & mask_bits(prefix)), prefix }
    }

    /// The netmask.
    #[must_use]
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_bits(self.prefix))
    }

    /// The broadcast address.
    #[must_use]
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask_bits(self.prefix))
    }

    /// Whether `a` is in the subnet.
    #[must_use]
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & mask_bits(self.prefix) == u32::from(self.network)
    }

    /// Whether `a` is a host address of the subnet (not the network or broadcast address).
    #[must_use]
    pub fn is_host(&self, a: Ipv4Addr) -> bool {
        self.contains(a) && a != self.network && a != self.broadcast()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask_bits(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p),
    }
}

/// A static lease: this MAC always gets this address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticLease {
    /// The client.
    pub mac: Mac,
    /// Its address (inside or outside the pool).
    pub addr: Ipv4Addr,
    /// The name it gets, whatever it sends.
    pub hostname: Option<String>,
}

/// The validated configuration the core runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Our address: server identifier (option 54) and source of replies.
    pub server: Ipv4Addr,
    /// The LAN's subnet.
    pub subnet: Subnet,
    /// First pool address.
    pub pool_start: Ipv4Addr,
    /// Last pool address (inclusive).
    pub pool_end: Ipv4Addr,
    /// Lease time (option 51); T1 and T2 are 1/2 and 7/8 of it (RFC 2131 §4.4.5).
    pub lease_time: Duration,
    /// Option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Option 119.
    pub domain_search: Vec<String>,
    /// How long a declined address is not offered (RFC 2131 §4.3.3).
    pub decline_quarantine: Duration,
    /// How long an offer reserves its address.
    pub offer_hold: Duration,
    /// Static leases by MAC.
    pub static_leases: Vec<StaticLease>,
    /// The router's own hostname, sanitised; no client may take it.
    pub router_hostname: Option<String>,
    served: Vec<(u8, Vec<u8>)>,
}

/// Why the configuration was not accepted: `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A subnet written `a.b.c.d/n`, with host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetText(pub Subnet);

impl<'de> Deserialize<'de> for SubnetText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let bad = || D::Error::custom(format!("{text:?} is not an IPv4 subnet like \"192.168.42.0/24\""));
        let (ip, len) = text.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(D::Error::custom(format!("subnet {text}: the prefix length must be 8 to 30")));
        }
        let subnet = Subnet::of(ip, prefix);
        if subnet.network != ip {
            return Err(D::Error::custom(format!("subnet {text} has host bits set; did you mean \"{subnet}\"?")));
        }
        Ok(Self(subnet))
    }
}

/// A MAC address written `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacText(pub Mac);

impl<'de> Deserialize<'de> for MacText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let mac = runtime::netif::parse_mac(&text)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a MAC address like \"00:11:22:33:44:55\"")))?;
        if mac == [0; 6] || mac[0] & 1 == 1 {
            return Err(D::Error::custom(format!("{text} is not a unicast MAC address")));
        }
        Ok(Self(mac))
    }
}

/// The pool range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    /// First address.
    pub start: Ipv4Addr,
    /// Last address (inclusive).
    pub end: Ipv4Addr,
}

/// One static lease in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticLeaseFile {
    /// The client's MAC.
    pub hardware_addr: MacText,
    /// Its address.
    pub addr: Ipv4Addr,
    /// Its name (a DNS label: lower-case letters, digits, hyphens).
    #[serde(default)]
    pub hostname: Option<String>,
}

/// `/perm/dhcp4d/config.json` as written; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Default: lan0's prefix.
    #[serde(default)]
    pub subnet: Option<SubnetText>,
    /// Default: 230 addresses from the server address + 1.
    #[serde(default)]
    pub pool: Option<PoolFile>,
    /// Default: 1200.
    #[serde(default)]
    pub lease_seconds: Option<u32>,
    /// Default: the server address.
    #[serde(default)]
    pub router: Option<Ipv4Addr>,
    /// Default: the server address; `[]` sends none.
    #[serde(default)]
    pub dns_servers: Option<Vec<Ipv4Addr>>,
    /// Default: `lan`; `""` sends none.
    #[serde(default)]
    pub domain: Option<String>,
    /// Default: the domain.
    #[serde(default)]
    pub domain_search: Option<Vec<String>>,
    /// Default: 600.
    #[serde(default)]
    pub decline_quarantine_seconds: Option<u32>,
    /// Default: none.
    #[serde(default)]
    pub static_leases: Vec<StaticLeaseFile>,
}

struct Invalid {
    path: Vec<Seg>,
    message: String,
}

fn invalid(path: Vec<Seg>, message: String) -> Invalid {
    Invalid { path, message }
}

fn valid_domain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(|l| hostname::is_valid_label(&l.to_ascii_lowercase()))
}

/// RFC 1035 §3.1 names without compression, as RFC 3397 allows.
fn encode_search(names: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in names {
        for label in name.split('.') {
            out.push(u8::try_from(label.len()).unwrap_or(63));
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
    }
    out
}

fn seconds(d: Duration) -> [u8; 4] {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX).to_be_bytes()
}

impl Config {
    /// router7's configuration for a server at `server`/`prefix` (lan0's `addr`).
    /// A prefix outside 8..=30 (a bare address, a /31) falls back to a /24.
    #[must_use]
    pub fn defaults(server: Ipv4Addr, prefix: u8) -> Self {
        let prefix = if (8..=30).contains(&prefix) { prefix } else { 24 };
        let subnet = Subnet::of(server, prefix);
        let (pool_start, pool_end) = default_pool(server, subnet);
        let mut c = Self {
            server,
            subnet,
            pool_start,
            pool_end,
            lease_time: DEFAULT_LEASE,
            router: Some(server),
            dns_servers: vec![server],
            domain: Some("lan".into()),
            domain_search: vec!["lan".into()],
            decline_quarantine: DEFAULT_QUARANTINE,
            offer_hold: OFFER_HOLD,
            static_leases: Vec::new(),
            router_hostname: None,
            served: Vec::new(),
        };
        c.derive();
        c
    }

    /// The defaults refined by the config file's `text` (read from `file`).
    pub fn from_file(server: Ipv4Addr, prefix: u8, file: &Path, text: &str) -> Result<Self, ConfigError> {
        let parsed: ConfigFile = serde_json::from_str(text).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            let message = e.to_string();
            let suffix = format!(" at line {line} column {column}");
            let message = message.strip_suffix(&suffix).map_or(message.clone(), str::to_owned);
            ConfigError { file: file.to_owned(), line, column, message }
        })?;
        Self::from_parsed(server, prefix, &parsed).map_err(|inv| {
            let (line, column) = jsonpos::locate(text, &inv.path).unwrap_or((0, 0));
            ConfigError {
                file: file.to_owned(),
                line,
                column,
                message: format!("{}: {}", jsonpos::display(&inv.path), inv.message),
            }
        })
    }

    fn from_parsed(server: Ipv4Addr, prefix: u8, f: &ConfigFile) -> Result<Self, Invalid> {
        let mut c = Self::defaults(server, prefix);
        if let Some(SubnetText(subnet)) = f.subnet {
            if !subnet.is_host(server) {
                return Err(invalid(
                    vec![Seg::Key("subnet")],
                    format!("the server address {server} (lan0 in interfaces.json) is not a host of {subnet}"),
                ));
            }
            c.subnet = subnet;
            (c.pool_start, c.pool_end) = default_pool(server, subnet);
        }
        let subnet = c.subnet;
        if let Some(pool) = &f.pool {
            let at = |k| vec![Seg::Key("pool"), Seg::Key(k)];
            for (k, a) in [("start", pool.start), ("end", pool.end)] {
                if !subnet.is_host(a) {
                    return Err(invalid(at(k), format!("{a} is not a host address of the subnet {subnet}")));
                }
            }
            if pool.start > pool.end {
                return Err(invalid(at("end"), format!("{} comes before the start {}", pool.end, pool.start)));
            }
            let size = u32::from(pool.end) - u32::from(pool.start) + 1;
            if size > MAX_POOL_SIZE {
                return Err(invalid(at("end"), format!("the pool has {size} addresses; at most {MAX_POOL_SIZE}")));
            }
            if (pool.start..=pool.end).contains(&server) {
                return Err(invalid(vec![Seg::Key("pool")], format!("the pool contains the server address {server}")));
            }
            (c.pool_start, c.pool_end) = (pool.start, pool.end);
        }
        if let Some(s) = f.lease_seconds {
            if !(MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS).contains(&s) {
                return Err(invalid(
                    vec![Seg::Key("lease_seconds")],
                    format!("{s} is outside {MIN_LEASE_SECONDS}..={MAX_LEASE_SECONDS}"),
                ));
            }
            c.lease_time = Duration::from_secs(u64::from(s));
        }
        if let Some(r) = f.router {
            if !subnet.is_host(r) {
                return Err(invalid(vec![Seg::Key("router")], format!("{r} is not a host address of {subnet}")));
            }
            if c.in_pool(r) {
                return Err(invalid(vec![Seg::Key("router")], format!("{r} is inside the pool")));
            }
            c.router = Some(r);
        }
        if let Some(dns) = &f.dns_servers {
            if dns.len() > 8 {
                return Err(invalid(vec![Seg::Key("dns_servers")], "at most 8 servers".into()));
            }
            for (i, a) in dns.iter().enumerate() {
                if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                    return Err(invalid(
                        vec![Seg::Key("dns_servers"), Seg::Index(i)],
                        format!("{a} is not a server address"),
                    ));
                }
            }
            c.dns_servers.clone_from(dns);
        }
        if let Some(d) = &f.domain {
            if d.is_empty() {
                c.domain = None;
            } else if valid_domain(d) {
                c.domain = Some(d.clone());
            } else {
                return Err(invalid(vec![Seg::Key("domain")], format!("{d:?} is not a domain name")));
            }
            c.domain_search = c.domain.iter().cloned().collect();
        }
        if let Some(search) = &f.domain_search {
            for (i, d) in search.iter().enumerate() {
                if !valid_domain(d) {
                    return Err(invalid(
                        vec![Seg::Key("domain_search"), Seg::Index(i)],
                        format!("{d:?} is not a domain name"),
                    ));
                }
            }
            if encode_search(search).len() > 255 {
                return Err(invalid(vec![Seg::Key("domain_search")], "longer than one option can carry".into()));
            }
            c.domain_search.clone_from(search);
        }
        if let Some(q) = f.decline_quarantine_seconds {
            if q > 7 * 24 * 3600 {
                return Err(invalid(vec![Seg::Key("decline_quarantine_seconds")], "at most a week".into()));
            }
            c.decline_quarantine = Duration::from_secs(u64::from(q));
        }
        let mut macs = HashSet::new();
        let mut addrs = HashSet::new();
        for (i, s) in f.static_leases.iter().enumerate() {
            let at = |k| vec![Seg::Key("static_leases"), Seg::Index(i), Seg::Key(k)];
            if !subnet.is_host(s.addr) || s.addr == server {
                return Err(invalid(at("addr"), format!("{} is not a client address of {subnet}", s.addr)));
            }
            if c.router == Some(s.addr) {
                return Err(invalid(at("addr"), format!("{} is the router", s.addr)));
            }
            if !macs.insert(s.hardware_addr.0) {
                return Err(invalid(at("hardware_addr"), "this MAC has a static lease already".into()));
            }
            if !addrs.insert(s.addr) {
                return Err(invalid(at("addr"), format!("{} is another static lease's address", s.addr)));
            }
            if let Some(h) = &s.hostname
                && !hostname::is_valid_label(h)
            {
                return Err(invalid(
                    at("hostname"),
                    format!("{h:?} is not a DNS label (lower-case letters, digits, inner hyphens, at most 63)"),
                ));
            }
            c.static_leases.push(StaticLease { mac: s.hardware_addr.0, addr: s.addr, hostname: s.hostname.clone() });
        }
        c.derive();
        Ok(c)
    }

    /// Sets the router's own hostname (from `uname`), which no client may take.
    #[must_use]
    pub fn with_router_hostname(mut self, raw: &str) -> Self {
        self.router_hostname = hostname::sanitize(raw.as_bytes());
        self
    }

    /// Whether `a` is in the pool.
    #[must_use]
    pub fn in_pool(&self, a: Ipv4Addr) -> bool {
        (self.pool_start..=self.pool_end).contains(&a)
    }

    /// Number of pool addresses.
    #[must_use]
    pub fn pool_size(&self) -> u32 {
        u32::from(self.pool_end) - u32::from(self.pool_start) + 1
    }

    /// Renewal time T1 (RFC 2131 §4.4.5: 0.5 × lease).
    #[must_use]
    pub fn t1(&self) -> Duration {
        self.lease_time / 2
    }

    /// Rebinding time T2 (RFC 2131 §4.4.5: 0.875 × lease).
    #[must_use]
    pub fn t2(&self) -> Duration {
        self.lease_time * 7 / 8
    }

    /// The encoded value of an option we serve, if we have it.
    #[must_use]
    pub fn served(&self, code: u8) -> Option<&[u8]> {
        self.served.iter().find(|(c, _)| *c == code).map(|(_, v)| v.as_slice())
    }

    /// Every option we serve, in the order sent when the client does not ask.
    pub fn served_codes(&self) -> impl Iterator<Item = u8> + '_ {
        self.served.iter().map(|(c, _)| *c)
    }

    fn derive(&mut self) {
        let mut s: Vec<(u8, Vec<u8>)> = vec![(code::SUBNET_MASK, self.subnet.mask().octets().to_vec())];
        if let Some(r) = self.router {
            s.push((code::ROUTER, r.octets().to_vec()));
        }
        if !self.dns_servers.is_empty() {
            s.push((code::DNS, self.dns_servers.iter().flat_map(|a| a.octets()).collect()));
        }
        if let Some(d) = &self.domain {
            s.push((code::DOMAIN_NAME, d.as_bytes().to_vec()));
        }
        if !self.domain_search.is_empty() {
            s.push((code::DOMAIN_SEARCH, encode_search(&self.domain_search)));
        }
        s.push((code::BROADCAST, self.subnet.broadcast().octets().to_vec()));
        s.push((code::RENEWAL_TIME, seconds(self.t1()).to_vec()));
        s.push((code::REBINDING_TIME, seconds(self.t2()).to_vec()));
        self.served = s;
    }
}

/// router7's pool: 230 addresses from the server address + 1, kept inside the
/// subnet's host addresses (router7 ran past the /24 when the server was not .1).
fn default_pool(server: Ipv4Addr, subnet: Subnet) -> (Ipv4Addr, Ipv4Addr) {
    let first_host = u32::from(subnet.network) + 1;
    let last_host = u32::from(subnet.broadcast()) - 1;
    let s = u32::from(server);
    if s < last_host {
        let end = (s + DEFAULT_POOL_SIZE).min(last_host);
        (Ipv4Addr::from(s + 1), Ipv4Addr::from(end))
    } else {
        // The server is the last host: take the addresses below it.
        let start = s.saturating_sub(DEFAULT_POOL_SIZE).max(first_host);
        (Ipv4Addr::from(start), Ipv4Addr::from(s - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 42, 1);

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_file(SERVER, 24, Path::new("/perm/dhcp4d/config.json"), text)
    }

    #[test]
    fn defaults_are_router7s() {
        let c = Config::defaults(SERVER, 24);
        assert_eq!(c.subnet.to_string(), "192.168.42.0/24");
        assert_eq!((c.pool_start, c.pool_end), (ip("192.168.42.2"), ip("192.168.42.231")));
        assert_eq!(c.pool_size(), 230);
        assert_eq!(c.lease_time, Duration::from_secs(1200));
        assert_eq!(c.router, Some(SERVER));
        assert_eq!(c.dns_servers, vec![SERVER]);
        assert_eq!(c.served(code::DOMAIN_NAME), Some(&b"lan"[..]));
        assert_eq!(c.served(code::DOMAIN_SEARCH), Some(&[3, b'l', b'a', b'n', 0][..]));
        assert_eq!(c.served(code::SUBNET_MASK), Some(&[255, 255, 255, 0][..]));
        assert_eq!(c.served(code::RENEWAL_TIME), Some(&600u32.to_be_bytes()[..]));
        assert_eq!(c.served(code::REBINDING_TIME), Some(&1050u32.to_be_bytes()[..]));
        assert_eq!(load("{}").unwrap(), c, "an empty file is the defaults");
    }

    #[test]
    fn defaults_stay_inside_the_subnet() {
        let c = Config::defaults(ip("192.168.42.100"), 24);
        assert_eq!((c.pool_start, c.pool_end), (ip("192.168.42.101"), ip("192.168.42.254")));
        let c = Config::defaults(ip("192.168.42.254"), 24);
        assert_eq!((c.pool_start, c.pool_end), (ip("192.168.42.24"), ip("192.168.42.253")));
        let c = Config::defaults(ip("10.0.0.1"), 16);
        assert_eq!(c.subnet.to_string(), "10.0.0.0/16");
        assert_eq!(c.pool_end, ip("10.0.0.231"));
        // A bare address (no prefix) falls back to router7's /24.
        assert_eq!(Config::defaults(SERVER, 32).subnet.prefix, 24);
    }

    #[test]
    fn reads_every_setting() {
        let c = load(
            r#"{
                "subnet": "192.168.42.0/23",
                "pool": {"start": "192.168.43.10", "end": "192.168.43.19"},
                "lease_seconds": 3600,
                "router": "192.168.42.254",
                "dns_servers": ["192.168.42.1", "9.9.9.9"],
                "domain": "home.arpa",
                "domain_search": ["home.arpa", "lan"],
                "decline_quarantine_seconds": 60,
                "static_leases": [
                    {"hardware_addr": "02:00:00:00:00:01", "addr": "192.168.42.10", "hostname": "nas"},
                    {"hardware_addr": "02:00:00:00:00:02", "addr": "192.168.43.15"}
                ]
            }"#,
        )
        .unwrap();
        assert_eq!(c.subnet.to_string(), "192.168.42.0/23");
        assert_eq!((c.pool_start, c.pool_end, c.pool_size()), (ip("192.168.43.10"), ip("192.168.43.19"), 10));
        assert_eq!(c.lease_time, Duration::from_secs(3600));
        assert_eq!(c.served(code::ROUTER), Some(&[192, 168, 42, 254][..]));
        assert_eq!(c.served(code::DNS), Some(&[192, 168, 42, 1, 9, 9, 9, 9][..]));
        assert_eq!(c.served(code::SUBNET_MASK), Some(&[255, 255, 254, 0][..]));
        assert_eq!(c.served(code::BROADCAST), Some(&[192, 168, 43, 255][..]));
        let search = c.served(code::DOMAIN_SEARCH).unwrap();
        assert_eq!(search, b"\x04home\x04arpa\x00\x03lan\x00");
        assert_eq!(c.decline_quarantine, Duration::from_secs(60));
        assert_eq!(c.static_leases.len(), 2);
        assert_eq!(c.static_leases[0].hostname.as_deref(), Some("nas"));
    }

    #[test]
    fn empty_values_turn_options_off() {
        let c = load(r#"{"dns_servers": [], "domain": ""}"#).unwrap();
        assert_eq!(c.served(code::DNS), None);
        assert_eq!(c.served(code::DOMAIN_NAME), None);
        assert_eq!(c.served(code::DOMAIN_SEARCH), None);
    }

    #[test]
    fn rejects_unknown_fields_with_their_position() {
        let e = load("{\n  \"lease_seconds\": 600,\n  \"lease_time\": 600\n}").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("unknown field `lease_time`"), "{e}");
        let e =
            load(r#"{"static_leases": [{"hardware_addr": "02:00:00:00:00:01", "addr": "192.168.42.9", "name": "x"}]}"#)
                .unwrap_err();
        assert!(e.message.contains("unknown field `name`"), "{e}");
        let e = load(r#"{"pool": {"start": "192.168.42.9", "end": "192.168.42.20", "size": 3}}"#).unwrap_err();
        assert!(e.message.contains("unknown field `size`"), "{e}");
    }

    #[test]
    fn reports_bad_values_with_file_line_and_column() {
        let cases = [
            ("{\n\"subnet\": \"192.168.42.0/33\"}", 2, 28, "prefix length"),
            ("{\n\"subnet\": \"192.168.42.1/24\"}", 2, 28, "host bits"),
            ("{\n\"subnet\": \"10.0.0.0/24\"}", 2, 11, "not a host of"),
            ("{\"pool\": {\"start\": \"192.168.42.10\",\n \"end\": \"192.168.43.1\"}}", 2, 9, "pool.end"),
            ("{\"pool\": {\"start\": \"192.168.42.20\", \"end\": \"192.168.42.10\"}}", 1, 44, "comes before"),
            ("{\"pool\": {\"start\": \"192.168.42.0\", \"end\": \"192.168.42.10\"}}", 1, 20, "pool.start"),
            ("{\"pool\": {\"start\": \"192.168.42.1\", \"end\": \"192.168.42.10\"}}", 1, 10, "server address"),
            ("{\"lease_seconds\": 5}", 1, 19, "lease_seconds"),
            ("{\"router\": \"10.1.1.1\"}", 1, 12, "router"),
            ("{\"domain\": \"a..b\"}", 1, 12, "domain"),
            ("{\"dns_servers\": [\"1.1.1.1\", \"0.0.0.0\"]}", 1, 29, "dns_servers[1]"),
            (
                "{\"static_leases\": [{\"hardware_addr\": \"02:00:00:00:00:01\", \"addr\": \"192.168.43.9\"}]}",
                1,
                67,
                "static_leases[0].addr",
            ),
            (
                "{\"static_leases\": [{\"hardware_addr\": \"02:00:00:00:00:01\", \"addr\": \"192.168.42.9\"},\n{\"hardware_addr\": \"02:00:00:00:00:01\", \"addr\": \"192.168.42.8\"}]}",
                2,
                19,
                "static_leases[1].hardware_addr",
            ),
            (
                "{\"static_leases\": [{\"hardware_addr\": \"02:00:00:00:00:01\", \"addr\": \"192.168.42.9\", \"hostname\": \"My NAS\"}]}",
                1,
                95,
                "hostname",
            ),
            (
                "{\"static_leases\": [{\"hardware_addr\": \"01:00:5e:00:00:01\", \"addr\": \"192.168.42.9\"}]}",
                1,
                56,
                "unicast",
            ),
            ("{\"lease_seconds\": \"1200\"}", 1, 24, "invalid type"),
            ("{\"router\": \"192.168.42.\"}", 1, 24, "invalid IPv4"),
        ];
        for (text, line, column, needle) in cases {
            let e = load(text).unwrap_err();
            let shown = e.to_string();
            assert!(shown.starts_with("/perm/dhcp4d/config.json:"), "{shown}");
            assert!(shown.contains(needle), "{text}: {shown}");
            assert_eq!((e.line, e.column), (line, column), "{text}: {shown}");
            assert!(!shown.contains(" at line "), "the position is given once: {shown}");
        }
    }

    #[test]
    fn subnets_know_their_hosts() {
        let s = Subnet::of(ip("10.0.5.9"), 16);
        assert_eq!(s.network, ip("10.0.0.0"));
        assert_eq!(s.broadcast(), ip("10.0.255.255"));
        assert!(s.is_host(ip("10.0.0.1")) && !s.is_host(ip("10.0.0.0")) && !s.is_host(ip("10.0.255.255")));
        assert!(!s.contains(ip("10.1.0.1")));
    }
}
