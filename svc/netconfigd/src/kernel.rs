//! The seam around the kernel: what netconfigd reads from it and asks of it,
//! as a trait. [`crate::rtnl::Netlink`] talks rtnetlink, nfnetlink and
//! `/proc/sys`; [`FakeKernel`] keeps the state in memory and records every
//! change, so `reconcile` is tested without root and a second apply can be
//! shown to change nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::IpAddr;

use crate::config::{Cidr, Mac};
use crate::nft::{CounterValues, Family, Table};

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Current MAC (`None` for links without one, e.g. loopback, tunnels).
    pub mac: Option<Mac>,
    /// Permanent MAC of the hardware, when the driver reports one.
    pub perm_mac: Option<Mac>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// ifindex of its bridge.
    pub master: Option<u32>,
}

/// A change to one link; `None` leaves that property alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkChange {
    /// New name.
    pub name: Option<String>,
    /// New MTU.
    pub mtu: Option<u32>,
    /// New MAC.
    pub mac: Option<Mac>,
    /// Up or down.
    pub up: Option<bool>,
    /// Enslave to this bridge.
    pub master: Option<u32>,
}

/// An interface address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// ifindex.
    pub index: u32,
    /// Address and prefix length.
    pub addr: Cidr,
    /// IFA_PROTO: who added it ([`ADDR_PROTO`] for netconfigd).
    pub proto: u8,
}

/// IFA_PROTO value marking addresses netconfigd added, so it can remove them
/// again when they are no longer wanted (a new delegated prefix, an edited
/// interfaces.json) without touching addresses anybody else added.
pub const ADDR_PROTO: u8 = 0x52;

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub dst: Cidr,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface.
    pub oif: Option<u32>,
    /// Preferred source.
    pub src: Option<IpAddr>,
    /// rtm_scope.
    pub scope: u8,
    /// rtm_protocol.
    pub proto: u8,
    /// rtm_type.
    pub kind: u8,
    /// RTA_PRIORITY (the metric).
    pub priority: u32,
}

impl Route {
    /// The kernel's default metric: 0 for IPv4, 1024 for IPv6.
    #[must_use]
    pub fn default_priority(dst: &Cidr) -> u32 {
        if dst.addr.is_ipv4() { 0 } else { 1024 }
    }
}

/// What netconfigd reads of nftables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NftState {
    /// Tables and their comments, by `(family, name)`.
    pub tables: BTreeMap<(Family, String), Option<String>>,
    /// Number of rules per table.
    pub rule_counts: BTreeMap<(Family, String), usize>,
    /// Counter values.
    pub counters: CounterValues,
}

/// A failed kernel operation, with what was being done.
#[derive(Debug)]
pub struct KernelError {
    /// What was being done (`set MTU of lan0 to 1492`).
    pub what: String,
    /// Why it failed.
    pub source: io::Error,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for KernelError {}

impl KernelError {
    /// Wraps `source` with `what`.
    pub fn new(what: impl Into<String>, source: io::Error) -> Self {
        Self { what: what.into(), source }
    }
}

/// Result of a kernel operation.
pub type KResult<T> = Result<T, KernelError>;

/// What netconfigd needs from the kernel (and the one host file it writes).
pub trait Kernel {
    /// All links.
    fn links(&mut self) -> KResult<Vec<Link>>;
    /// Creates a bridge.
    fn create_bridge(&mut self, name: &str, mac: Option<Mac>) -> KResult<()>;
    /// Changes a link.
    fn set_link(&mut self, index: u32, change: &LinkChange) -> KResult<()>;
    /// All addresses.
    fn addresses(&mut self) -> KResult<Vec<Address>>;
    /// Adds (or replaces) an address, tagged [`ADDR_PROTO`].
    fn add_address(&mut self, index: u32, addr: Cidr) -> KResult<()>;
    /// Removes an address.
    fn del_address(&mut self, index: u32, addr: Cidr) -> KResult<()>;
    /// The routes of the main table.
    fn routes(&mut self) -> KResult<Vec<Route>>;
    /// Adds (or replaces) a route in the main table.
    fn add_route(&mut self, route: &Route) -> KResult<()>;
    /// Removes a route of the main table.
    fn del_route(&mut self, route: &Route) -> KResult<()>;
    /// Reads `/proc/sys/<key>`; `None` if it does not exist.
    fn read_sysctl(&mut self, key: &[String]) -> KResult<Option<String>>;
    /// Writes `/proc/sys/<key>`.
    fn write_sysctl(&mut self, key: &[String], value: &str) -> KResult<()>;
    /// Tables, rule counts and counters of nftables.
    fn nft_state(&mut self) -> KResult<NftState>;
    /// Replaces `tables` (and only them) in one atomic batch, counters at `values`.
    fn nft_replace(&mut self, tables: &[&Table], values: &CounterValues) -> KResult<()>;
    /// Writes resolv.conf if it is missing or a symlink; says whether it wrote.
    fn ensure_resolv_conf(&mut self, contents: &str) -> KResult<bool>;
}

/// A kernel in memory that records each change as a line of text.
#[derive(Debug, Clone, Default)]
pub struct FakeKernel {
    /// Links.
    pub links: Vec<Link>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Sysctls by dotted name (only existing ones can be written).
    pub sysctls: BTreeMap<String, String>,
    /// nftables.
    pub nft: NftState,
    /// Rendered tables (what the last commit installed), by `(family, name)`.
    pub nft_tables: BTreeMap<(Family, String), String>,
    /// resolv.conf, if written.
    pub resolv_conf: Option<String>,
    /// Every change, in order.
    pub log: Vec<String>,
    /// Operations that fail: a change whose log line starts with one of these.
    pub fail: Vec<String>,
}

fn not_found(what: String) -> KernelError {
    KernelError::new(what, io::Error::from_raw_os_error(19)) // ENODEV
}

impl FakeKernel {
    fn record(&mut self, line: String) -> KResult<()> {
        if self.fail.iter().any(|f| line.starts_with(f.as_str())) {
            return Err(KernelError::new(line, io::Error::from_raw_os_error(1)));
        }
        self.log.push(line);
        Ok(())
    }

    fn name_of(&self, index: u32) -> String {
        self.links.iter().find(|l| l.index == index).map_or_else(|| format!("if{index}"), |l| l.name.clone())
    }

    /// Adds a link (as `ip link add … type dummy` would).
    pub fn add_link(&mut self, name: &str, mac: Option<Mac>) -> u32 {
        let index = self.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
        self.links.push(Link { index, name: name.into(), mac, perm_mac: None, mtu: 1500, up: false, master: None });
        self.sysctls.insert(format!("net.ipv6.conf.{name}.accept_ra"), "1".into());
        index
    }
}

impl Kernel for FakeKernel {
    fn links(&mut self) -> KResult<Vec<Link>> {
        Ok(self.links.clone())
    }

    fn create_bridge(&mut self, name: &str, mac: Option<Mac>) -> KResult<()> {
        self.record(format!("create bridge {name} mac {:?}", mac.map(runtime::netif::format_mac)))?;
        self.add_link(name, mac);
        Ok(())
    }

    fn set_link(&mut self, index: u32, c: &LinkChange) -> KResult<()> {
        let name = self.name_of(index);
        self.record(format!("set link {name} {c:?}"))?;
        if let Some(n) = &c.name
            && self.links.iter().any(|l| l.name == *n && l.index != index)
        {
            return Err(KernelError::new(format!("rename {name} to {n}"), io::Error::from_raw_os_error(17)));
        }
        let link = self.links.iter_mut().find(|l| l.index == index).ok_or_else(|| not_found(name.clone()))?;
        if let Some(n) = &c.name {
            if link.up {
                return Err(KernelError::new(format!("rename {name} while up"), io::Error::from_raw_os_error(16)));
            }
            link.name.clone_from(n);
        }
        if let Some(m) = c.mtu {
            link.mtu = m;
        }
        if let Some(m) = c.mac {
            link.mac = Some(m);
        }
        if let Some(u) = c.up {
            link.up = u;
        }
        if let Some(m) = c.master {
            link.master = Some(m);
        }
        let new_name = link.name.clone();
        if new_name != name
            && let Some(v) = self.sysctls.remove(&format!("net.ipv6.conf.{name}.accept_ra"))
        {
            self.sysctls.insert(format!("net.ipv6.conf.{new_name}.accept_ra"), v);
        }
        Ok(())
    }

    fn addresses(&mut self) -> KResult<Vec<Address>> {
        Ok(self.addresses.clone())
    }

    fn add_address(&mut self, index: u32, addr: Cidr) -> KResult<()> {
        let name = self.name_of(index);
        self.record(format!("add address {addr} dev {name}"))?;
        self.addresses.retain(|a| !(a.index == index && a.addr.addr == addr.addr));
        self.addresses.push(Address { index, addr, proto: ADDR_PROTO });
        Ok(())
    }

    fn del_address(&mut self, index: u32, addr: Cidr) -> KResult<()> {
        let name = self.name_of(index);
        self.record(format!("del address {addr} dev {name}"))?;
        self.addresses.retain(|a| !(a.index == index && a.addr == addr));
        // Like the kernel, routes preferring the removed source go with it.
        self.routes.retain(|r| r.src != Some(addr.addr));
        Ok(())
    }

    fn routes(&mut self) -> KResult<Vec<Route>> {
        Ok(self.routes.clone())
    }

    fn add_route(&mut self, r: &Route) -> KResult<()> {
        self.record(format!("add route {r:?}"))?;
        self.routes.retain(|x| !(x.dst == r.dst && x.priority == r.priority && x.dst.addr.is_ipv4()));
        self.routes.retain(|x| x != r);
        self.routes.push(r.clone());
        Ok(())
    }

    fn del_route(&mut self, r: &Route) -> KResult<()> {
        self.record(format!("del route {r:?}"))?;
        self.routes.retain(|x| x != r);
        Ok(())
    }

    fn read_sysctl(&mut self, key: &[String]) -> KResult<Option<String>> {
        Ok(self.sysctls.get(&key.join(".")).cloned())
    }

    fn write_sysctl(&mut self, key: &[String], value: &str) -> KResult<()> {
        let name = key.join(".");
        self.record(format!("sysctl {name}={value}"))?;
        match self.sysctls.get_mut(&name) {
            Some(v) => {
                *v = value.to_owned();
                Ok(())
            }
            None => Err(not_found(name)),
        }
    }

    fn nft_state(&mut self) -> KResult<NftState> {
        Ok(self.nft.clone())
    }

    fn nft_replace(&mut self, tables: &[&Table], values: &CounterValues) -> KResult<()> {
        let names: Vec<String> = tables.iter().map(|t| format!("{} {}", t.family.name(), t.name)).collect();
        self.record(format!("nft replace {}", names.join(", ")))?;
        for t in tables {
            let key = (t.family, t.name.clone());
            self.nft.tables.insert(key.clone(), Some(t.comment()));
            self.nft.rule_counts.insert(key.clone(), t.rule_count());
            self.nft.counters.retain(|(f, table, _), _| !(*f == t.family && *table == t.name));
            for c in &t.counters {
                let k = (t.family, t.name.clone(), c.clone());
                let v = values.get(&k).copied().unwrap_or_default();
                self.nft.counters.insert(k, v);
            }
            self.nft_tables.insert(key, t.render(&BTreeMap::new()));
        }
        Ok(())
    }

    fn ensure_resolv_conf(&mut self, contents: &str) -> KResult<bool> {
        if self.resolv_conf.is_some() {
            return Ok(false);
        }
        self.record(format!("write resolv.conf {contents:?}"))?;
        self.resolv_conf = Some(contents.to_owned());
        Ok(true)
    }
}
