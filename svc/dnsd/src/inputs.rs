//! What dnsd reads from `/perm` and the system, re-read on SIGUSR1:
//!
//! | input | gives |
//! |---|---|
//! | `dnsd/config.json` | upstreams, cache size, listen addresses (`config`) |
//! | `dhcp4/wire/lease.json`, `dhcp6/wire/lease.json` | upstreams (`dns`); the delegated prefix (the router's `<prefix>::1`) |
//! | `dhcp4d/leases.json` | LAN host names |
//! | `interfaces.json` | the router's LAN address (else lan0's live address) |
//! | uname's nodename | the router's name |
//!
//! A missing file means "nothing yet". A corrupt one is reported with file,
//! line and column, and what we had from it before is kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use dnsd::config::{Config, ConfigFile};
use dnsd::local::{LeaseName, LocalNames};
use runtime::perm::{self, Dhcp4Lease, Dhcp4dLease, Dhcp6Lease, Interfaces};
use runtime::statefile;
use runtime::timefmt::Timestamp;
use serde::de::DeserializeOwned;

/// The last good contents of every input.
#[derive(Debug, Default)]
pub struct Inputs {
    /// `dnsd/config.json`, validated.
    pub config: Config,
    /// The DHCPv4 lease.
    pub dhcp4: Option<Dhcp4Lease>,
    /// The DHCPv6 lease.
    pub dhcp6: Option<Dhcp6Lease>,
    /// dhcp4d's leases.
    pub leases: Vec<Dhcp4dLease>,
    /// interfaces.json.
    pub interfaces: Option<Interfaces>,
}

/// `<perm>/dnsd/config.json`.
#[must_use]
pub fn config_path(perm: &Path) -> PathBuf {
    perm.join("dnsd/config.json")
}

/// Reads `path` into `slot`: a missing file clears it, a corrupt one keeps it.
fn refresh<T: DeserializeOwned>(path: &Path, slot: &mut Option<T>) {
    match statefile::read_json::<T>(path) {
        Ok(v) => *slot = v,
        Err(e) => runtime::log_error!("{e}; keeping what was read before"),
    }
}

impl Inputs {
    /// Re-reads every file under `perm`.
    pub fn reload(&mut self, perm: &Path) {
        let path = config_path(perm);
        match statefile::read_json::<ConfigFile>(&path) {
            Ok(None) => self.config = Config::default(),
            Ok(Some(file)) => match Config::try_from(file) {
                Ok(c) => self.config = c,
                Err(e) => runtime::log_error!("{}: {e}; keeping the previous configuration", path.display()),
            },
            Err(e) => runtime::log_error!("{e}; keeping the previous configuration"),
        }
        refresh(&perm::dhcp4_lease_path(perm), &mut self.dhcp4);
        refresh(&perm::dhcp6_lease_path(perm), &mut self.dhcp6);
        refresh(&perm::interfaces_path(perm), &mut self.interfaces);
        match statefile::read_json::<Vec<Dhcp4dLease>>(&perm::dhcp4d_leases_path(perm)) {
            Ok(v) => self.leases = v.unwrap_or_default(),
            Err(e) => runtime::log_error!("{e}; keeping the previous leases"),
        }
    }

    /// The local names: the router's and the leases', with expiries turned
    /// from wall time into the monotonic clock at `now` / `wall`.
    #[must_use]
    pub fn local_names(&self, lan: &str, now: Instant, wall: SystemTime) -> LocalNames {
        let hostname = rustix::system::uname().nodename().to_str().ok().map(str::to_owned).filter(|h| !h.is_empty());
        let router_v4 = self
            .interfaces
            .as_ref()
            .and_then(|i| i.ipv4_of(lan))
            .map(|(ip, _)| ip)
            .or_else(|| runtime::netif::ipv4_of(lan).ok().flatten().map(|(ip, _)| ip));
        let router_v6 =
            self.dhcp6.as_ref().and_then(|l| l.prefixes.iter().find_map(|p| first_address(p.ip, p.prefix_len)));
        let wall_now = Timestamp::from_system(wall);
        let leases = self
            .leases
            .iter()
            .filter_map(|l| {
                let addr: Ipv4Addr = l.addr?;
                let expires = if l.is_static() {
                    None
                } else if l.expired_at(wall_now) {
                    Some(now)
                } else {
                    Some(now + wall_now.until(l.expiry).min(Duration::from_secs(10 * 365 * 86_400)))
                };
                Some(LeaseName { name: l.name().to_owned(), addr, expires })
            })
            .collect();
        LocalNames { hostname, router_v4, router_v6, leases }
    }
}

/// `<prefix>::1`, the address netconfigd gives lan0 from a delegated prefix.
fn first_address(ip: IpAddr, len: u8) -> Option<Ipv6Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    if len > 64 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
    Some(Ipv6Addr::from((u128::from(v6) & mask) | 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routers_v6_address_is_the_prefix_plus_one() {
        let ip: IpAddr = "2a02:168:4a00::".parse().unwrap();
        assert_eq!(first_address(ip, 48), Some("2a02:168:4a00::1".parse().unwrap()));
        assert_eq!(
            first_address("2a02:168:4a00:5::77".parse().unwrap(), 64),
            Some("2a02:168:4a00:5::1".parse().unwrap())
        );
        assert_eq!(first_address(ip, 96), None);
        assert_eq!(first_address("10.0.0.0".parse().unwrap(), 8), None);
    }

    #[test]
    fn reads_leases_and_keeps_them_when_the_file_turns_corrupt() {
        let dir = std::env::temp_dir().join(format!("dnsd-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dhcp4d")).unwrap();
        let leases = dir.join("dhcp4d/leases.json");
        std::fs::write(
            &leases,
            r#"[{"num":21,"addr":"192.168.42.23","hardware_addr":"aa:bb:cc:dd:ee:ff","hostname":"xps","hostname_override":"","expiry":"2999-01-01T00:00:00Z"},
               {"num":2,"addr":"192.168.42.4","hardware_addr":"11:22:33:44:55:66","hostname":"printer","hostname_override":"laser","expiry":"0001-01-01T00:00:00Z"},
               {"num":3,"addr":"192.168.42.5","hardware_addr":"11:22:33:44:55:67","hostname":"gone","hostname_override":"","expiry":"2000-01-01T00:00:00Z"}]"#,
        )
        .unwrap();
        let mut inputs = Inputs::default();
        inputs.reload(&dir);
        let now = runtime::clock::now();
        let names = inputs.local_names("lo", now, runtime::clock::wall_now());
        let by_name = |n: &str| names.leases.iter().find(|l| l.name == n).unwrap().clone();
        assert!(by_name("xps").expires.is_some_and(|e| e > now + Duration::from_secs(86_400)));
        assert_eq!(by_name("laser").expires, None, "static, with the override as its name");
        assert_eq!(by_name("gone").expires, Some(now), "already expired");

        std::fs::write(&leases, "[{").unwrap();
        inputs.reload(&dir);
        assert_eq!(inputs.leases.len(), 3, "a corrupt file keeps the last good leases");
        std::fs::remove_file(&leases).unwrap();
        inputs.reload(&dir);
        assert!(inputs.leases.is_empty(), "a missing file means no leases");

        std::fs::create_dir_all(dir.join("dnsd")).unwrap();
        std::fs::write(config_path(&dir), r#"{"upstreams":["192.0.2.53"]}"#).unwrap();
        inputs.reload(&dir);
        assert_eq!(inputs.config.upstreams.len(), 1);
        std::fs::write(config_path(&dir), r#"{"upstreams":["192.0.2.53"],"colour":"blue"}"#).unwrap();
        inputs.reload(&dir);
        assert_eq!(inputs.config.upstreams.len(), 1, "a config with unknown fields is refused; the old one stays");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
