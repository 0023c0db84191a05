//! Brings the kernel to a [`Plan`]: reads the current state through
//! [`Kernel`], changes only what differs, and reports per step (Links,
//! Addresses, Routes, Sysctls, Firewall) what it changed or why it failed.
//! Applying the same plan twice changes nothing the second time.
//!
//! A failing step does not stop the others: the firewall in particular is
//! always brought up to date, whatever happened to a link.
//!
//! Ownership: netconfigd removes only what it can tell is its own — addresses
//! tagged with [`ADDR_PROTO`], routes of protocol `dhcp` or `static` in the main
//! table, its `router7` nftables tables — plus, as router7 did, every other
//! IPv4 address of the uplink once a DHCPv4 lease names the one to keep.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::Mac;
use crate::kernel::{ADDR_PROTO, Kernel, KernelError, Link, LinkChange, Route};
use crate::nft::{CounterValues, Table};
use crate::plan::{Plan, RoutePlan, proto};

/// The steps of an apply; each becomes a condition of the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Bridges, renames, MTU, MAC, up.
    Links,
    /// Addresses and resolv.conf.
    Addresses,
    /// Routes.
    Routes,
    /// Sysctls.
    Sysctls,
    /// The nftables ruleset.
    Firewall,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 5] = [Step::Links, Step::Addresses, Step::Routes, Step::Sysctls, Step::Firewall];

    /// The condition type.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Links => "Links",
            Self::Addresses => "Addresses",
            Self::Routes => "Routes",
            Self::Sysctls => "Sysctls",
            Self::Firewall => "Firewall",
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepReport {
    /// Changes made, one line each.
    pub changes: Vec<String>,
    /// What failed.
    pub errors: Vec<String>,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Per step.
    pub steps: BTreeMap<Step, StepReport>,
}

impl Report {
    /// Every change.
    #[must_use]
    pub fn changes(&self) -> Vec<String> {
        self.steps.values().flat_map(|s| s.changes.iter().cloned()).collect()
    }

    /// Whether every step succeeded.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.steps.values().all(|s| s.errors.is_empty())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (step, r) in &self.steps {
            write!(f, "{}: {} changes, {} errors; ", step.name(), r.changes.len(), r.errors.len())?;
        }
        Ok(())
    }
}

fn has_mac(l: &Link, macs: &[Mac]) -> bool {
    l.mac.is_some_and(|m| macs.contains(&m)) || l.perm_mac.is_some_and(|m| macs.contains(&m))
}

/// Runs every step.
pub fn apply(plan: &Plan, k: &mut dyn Kernel) -> Report {
    let mut report = Report::default();
    let mut step = |s: Step, f: &mut dyn FnMut(&mut StepReport) -> Result<(), KernelError>| {
        let mut r = StepReport::default();
        if let Err(e) = f(&mut r) {
            r.errors.push(e.to_string());
        }
        report.steps.insert(s, r);
    };
    step(Step::Links, &mut |r| links(plan, k, r));
    step(Step::Addresses, &mut |r| addresses(plan, k, r));
    step(Step::Routes, &mut |r| routes(plan, k, r));
    step(Step::Sysctls, &mut |r| sysctls(plan, k, r));
    step(Step::Firewall, &mut |r| firewall(&plan.tables, k, r));
    report
}

fn links(plan: &Plan, k: &mut dyn Kernel, r: &mut StepReport) -> Result<(), KernelError> {
    for b in &plan.bridges {
        let mut all = k.links()?;
        if !all.iter().any(|l| l.name == b.name) {
            match k.create_bridge(&b.name, b.mac) {
                Ok(()) => r.changes.push(format!("created bridge {}", b.name)),
                Err(e) => {
                    r.errors.push(e.to_string());
                    continue;
                }
            }
            all = k.links()?;
        }
        let Some(bridge) = all.iter().find(|l| l.name == b.name).cloned() else { continue };
        for l in all.iter().filter(|l| l.index != bridge.index && has_mac(l, &b.members)) {
            let mut c = LinkChange::default();
            if l.master != Some(bridge.index) {
                c.master = Some(bridge.index);
            }
            if !l.up {
                c.up = Some(true);
            }
            if c != LinkChange::default() {
                match k.set_link(l.index, &c) {
                    Ok(()) => r.changes.push(format!("added {} to bridge {}", l.name, b.name)),
                    Err(e) => r.errors.push(e.to_string()),
                }
            }
        }
    }
    let all = k.links()?;
    for l in &all {
        // Links without a MAC (loopback, tunnels) are matched by name only (router7).
        let found =
            plan.links.iter().find(|p| has_mac(l, &p.macs)).or_else(|| plan.links.iter().find(|p| p.name == l.name));
        let Some(p) = found else { continue };
        let mut c = LinkChange::default();
        if l.name != p.name {
            if all.iter().any(|o| o.name == p.name && o.index != l.index) {
                r.errors.push(format!("cannot rename {} to {}: another link has that name", l.name, p.name));
                continue;
            }
            c.name = Some(p.name.clone());
        }
        if let Some(m) = p.mtu.filter(|m| *m != l.mtu) {
            c.mtu = Some(m);
        }
        if let Some(m) = p.mac.filter(|m| Some(*m) != l.mac) {
            c.mac = Some(m);
        }
        if c != LinkChange::default() {
            // A link must be down to be renamed (and some drivers refuse a new
            // MAC while up); it goes up again below.
            if (c.name.is_some() || c.mac.is_some())
                && l.up
                && let Err(e) = k.set_link(l.index, &LinkChange { up: Some(false), ..LinkChange::default() })
            {
                r.errors.push(e.to_string());
                continue;
            }
            match k.set_link(l.index, &c) {
                Ok(()) => r.changes.push(describe_link_change(&l.name, &c)),
                Err(e) => {
                    r.errors.push(e.to_string());
                    continue;
                }
            }
        }
        if !l.up || c.name.is_some() || c.mac.is_some() {
            match k.set_link(l.index, &LinkChange { up: Some(true), ..LinkChange::default() }) {
                Ok(()) if !l.up => r.changes.push(format!("set {} up", p.name)),
                Ok(()) => {}
                Err(e) => r.errors.push(e.to_string()),
            }
        }
    }
    Ok(())
}

fn describe_link_change(name: &str, c: &LinkChange) -> String {
    let mut parts = Vec::new();
    if let Some(n) = &c.name {
        parts.push(format!("renamed to {n}"));
    }
    if let Some(m) = c.mtu {
        parts.push(format!("mtu {m}"));
    }
    if let Some(m) = c.mac {
        parts.push(format!("mac {}", runtime::netif::format_mac(m)));
    }
    format!("link {name}: {}", parts.join(", "))
}

fn index_of(links: &[Link], name: &str) -> Option<u32> {
    links.iter().find(|l| l.name == name).map(|l| l.index)
}

fn addresses(plan: &Plan, k: &mut dyn Kernel, r: &mut StepReport) -> Result<(), KernelError> {
    let links = k.links()?;
    let current = k.addresses()?;
    let mut wanted: Vec<(u32, crate::config::Cidr)> = Vec::new();
    for a in &plan.addresses {
        let Some(index) = index_of(&links, &a.ifname) else {
            r.errors.push(format!("address {}: interface {} does not exist", a.addr, a.ifname));
            continue;
        };
        wanted.push((index, a.addr));
        if current.iter().any(|c| c.index == index && c.addr == a.addr) {
            continue;
        }
        match k.add_address(index, a.addr) {
            Ok(()) => r.changes.push(format!("added address {} to {}", a.addr, a.ifname)),
            Err(e) => r.errors.push(e.to_string()),
        }
    }
    let exclusive = plan.exclusive_v4.as_deref().and_then(|n| index_of(&links, n));
    for c in &current {
        if wanted.contains(&(c.index, c.addr)) {
            continue;
        }
        let stale_uplink_v4 = Some(c.index) == exclusive && c.addr.addr.is_ipv4();
        if c.proto != ADDR_PROTO && !stale_uplink_v4 {
            continue;
        }
        let name = links.iter().find(|l| l.index == c.index).map_or("?", |l| l.name.as_str());
        match k.del_address(c.index, c.addr) {
            Ok(()) => r.changes.push(format!("removed address {} from {name}", c.addr)),
            Err(e) => r.errors.push(e.to_string()),
        }
    }
    if let Some(text) = &plan.resolv_conf {
        match k.ensure_resolv_conf(text) {
            Ok(true) => r.changes.push(format!("wrote resolv.conf: {}", text.trim_end())),
            Ok(false) => {}
            Err(e) => r.errors.push(e.to_string()),
        }
    }
    Ok(())
}

fn concrete(p: &RoutePlan, links: &[Link]) -> Result<Route, String> {
    let oif = match &p.ifname {
        None => None,
        Some(n) => Some(index_of(links, n).ok_or_else(|| format!("route {p}: interface {n} does not exist"))?),
    };
    Ok(Route {
        dst: p.dst,
        gateway: p.gateway,
        oif,
        src: p.src,
        scope: p.scope,
        proto: p.proto,
        kind: p.kind,
        priority: Route::default_priority(&p.dst),
    })
}

/// Whether the kernel's route `have` is the wanted `want` (an unset outgoing
/// interface in `want` matches any: unreachable routes are reported on `lo`).
fn same_route(have: &Route, want: &Route) -> bool {
    have.dst == want.dst
        && have.gateway == want.gateway
        && (want.oif.is_none() || have.oif == want.oif)
        && have.src == want.src
        && have.scope == want.scope
        && have.proto == want.proto
        && have.kind == want.kind
        && have.priority == want.priority
}

fn routes(plan: &Plan, k: &mut dyn Kernel, r: &mut StepReport) -> Result<(), KernelError> {
    let links = k.links()?;
    let current = k.routes()?;
    let mut wanted = Vec::new();
    for p in &plan.routes {
        match concrete(p, &links) {
            Ok(route) => wanted.push((p, route)),
            Err(e) => r.errors.push(e),
        }
    }
    for (p, want) in &wanted {
        if current.iter().any(|have| same_route(have, want)) {
            continue;
        }
        match k.add_route(want) {
            Ok(()) => r.changes.push(format!("added route {p}")),
            Err(e) => r.errors.push(e.to_string()),
        }
    }
    // Re-read: replacing a route (a new default gateway) also removed the old one.
    let current = k.routes()?;
    for have in &current {
        if !(have.proto == proto::DHCP || have.proto == proto::STATIC) {
            continue;
        }
        if wanted.iter().any(|(_, want)| same_route(have, want)) {
            continue;
        }
        match k.del_route(have) {
            Ok(()) => r.changes.push(format!("removed route {} (proto {})", have.dst, have.proto)),
            Err(e) => r.errors.push(e.to_string()),
        }
    }
    Ok(())
}

fn sysctls(plan: &Plan, k: &mut dyn Kernel, r: &mut StepReport) -> Result<(), KernelError> {
    for s in &plan.sysctls {
        match k.read_sysctl(&s.key)? {
            Some(v) if v.trim() == s.value => {}
            Some(_) => match k.write_sysctl(&s.key, &s.value) {
                Ok(()) => r.changes.push(format!("{}={}", s.name(), s.value)),
                Err(e) => r.errors.push(e.to_string()),
            },
            None => r.errors.push(format!("sysctl {} does not exist", s.name())),
        }
    }
    Ok(())
}

fn firewall(tables: &[Table], k: &mut dyn Kernel, r: &mut StepReport) -> Result<(), KernelError> {
    let state = k.nft_state()?;
    let stale: Vec<&Table> = tables
        .iter()
        .filter(|t| {
            let key = (t.family, t.name.clone());
            let comment_ok = state.tables.get(&key).is_some_and(|c| c.as_deref() == Some(t.comment().as_str()));
            let rules_ok = state.rule_counts.get(&key).copied().unwrap_or(0) == t.rule_count();
            !(comment_ok && rules_ok)
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    // Carry the counters over: they only ever grow, across re-applies too.
    let values: CounterValues = state
        .counters
        .iter()
        .filter(|((f, table, _), _)| stale.iter().any(|t| t.family == *f && t.name == *table))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    k.nft_replace(&stale, &values)?;
    for t in stale {
        r.changes.push(format!("replaced table {} {} ({} rules)", t.family.name(), t.name, t.rule_count()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::FakeKernel;
    use crate::nft::{CounterValue, Family};
    use crate::plan::tests::{golden, golden_plan};

    const UPLINK_MAC: Mac = [0x02, 0x73, 0x53, 0x00, 0xca, 0xfe];
    const LAN_MAC: Mac = [0x02, 0x73, 0x53, 0x00, 0xb0, 0x0c];

    fn testnetconfig_kernel() -> FakeKernel {
        let mut k = FakeKernel::default();
        k.add_link("lo", None);
        k.add_link("dummy0", Some(UPLINK_MAC));
        k.add_link("lan0", Some(LAN_MAC));
        // router7's test had a WireGuard wg0; any link without a MAC is matched by name.
        k.add_link("wg0", None);
        for s in [
            "net.ipv4.ip_forward",
            "net.ipv6.conf.all.forwarding",
            "net.ipv4.icmp_ratelimit",
            "net.ipv6.icmp.ratelimit",
        ] {
            k.sysctls.insert(s.into(), "0".into());
        }
        k.sysctls.insert("net.ipv4.icmp_ratelimit".into(), "1000".into());
        k
    }

    #[test]
    fn applies_router7s_testnetconfig_then_changes_nothing() {
        let g = golden();
        let plan = golden_plan(&g);
        let mut k = testnetconfig_kernel();
        let first = apply(&plan, &mut k);
        assert!(first.ok(), "{first:?}");
        crate::plan::tests::assert_golden("apply-log.txt", &(k.log.join("\n") + "\n"));
        let up = k.links.iter().find(|l| l.name == "uplink0").unwrap();
        assert!(up.up && up.mac == Some(UPLINK_MAC));
        let lan = k.links.iter().find(|l| l.name == "lan0").unwrap();
        assert_eq!((lan.mtu, lan.mac, lan.up), (1492, Some([0x02, 0x73, 0x53, 0x00, 0xb0, 0xaa]), true));
        assert_eq!(k.resolv_conf.as_deref(), Some("nameserver 192.168.42.1\n"));

        let before = k.log.len();
        let second = apply(&plan, &mut k);
        assert_eq!(second.changes(), Vec::<String>::new(), "a second apply changes nothing");
        assert_eq!(k.log.len(), before, "{:?}", &k.log[before..]);
    }

    #[test]
    fn a_changed_lease_replaces_the_old_address_and_routes() {
        let g = golden();
        let mut k = testnetconfig_kernel();
        apply(&golden_plan(&g), &mut k);
        let mut g2 = golden();
        g2.dhcp4.client_ip = Some("85.195.199.99".parse().unwrap());
        g2.dhcp4.router = Some("85.195.199.1".parse().unwrap());
        let report = apply(&golden_plan(&g2), &mut k);
        let changes = report.steps[&Step::Addresses].changes.clone();
        assert!(changes.contains(&"added address 85.195.199.99/25 to uplink0".to_owned()), "{changes:?}");
        assert!(changes.contains(&"removed address 85.195.207.62/25 from uplink0".to_owned()), "{changes:?}");
        let dhcp: Vec<String> =
            k.routes.iter().filter(|r| r.proto == proto::DHCP).map(|r| format!("{} {:?}", r.dst, r.gateway)).collect();
        assert_eq!(dhcp, ["85.195.199.1/32 None", "0.0.0.0/0 Some(85.195.199.1)"]);
    }

    #[test]
    fn counters_survive_a_rebuild_and_unchanged_tables_are_left_alone() {
        let g = golden();
        let mut k = testnetconfig_kernel();
        apply(&golden_plan(&g), &mut k);
        for (key, v) in &mut k.nft.counters {
            if key.2 == "fwded" {
                *v = CounterValue { packets: 23, bytes: 42 };
            }
        }
        let mut g2 = golden();
        g2.forwardings.remove(0);
        let report = apply(&golden_plan(&g2), &mut k);
        assert_eq!(
            report.steps[&Step::Firewall].changes,
            ["replaced table ip router7 (28 rules)"],
            "only the table that changed"
        );
        for f in [Family::Ip, Family::Ip6] {
            assert_eq!(k.nft.counters[&(f, "router7".into(), "fwded".into())], CounterValue { packets: 23, bytes: 42 });
        }
    }

    #[test]
    fn a_failing_step_does_not_stop_the_firewall() {
        let g = golden();
        let mut k = testnetconfig_kernel();
        k.fail = vec!["set link dummy0".into()];
        let report = apply(&golden_plan(&g), &mut k);
        assert!(!report.steps[&Step::Links].errors.is_empty());
        assert!(report.steps[&Step::Firewall].errors.is_empty());
        assert!(k.log.iter().any(|l| l.starts_with("nft replace ip router7, ip6 router7")), "{:?}", k.log);
    }

    #[test]
    fn foreign_addresses_and_routes_are_left_alone() {
        let g = golden();
        let mut k = testnetconfig_kernel();
        apply(&golden_plan(&g), &mut k);
        let lan = k.links.iter().find(|l| l.name == "lan0").unwrap().index;
        let foreign = crate::kernel::Address {
            index: lan,
            addr: crate::config::Cidr { addr: "10.9.9.9".parse().unwrap(), len: 8 },
            proto: 0,
        };
        k.addresses.push(foreign.clone());
        let ra_route = Route {
            dst: crate::config::Cidr { addr: "::".parse().unwrap(), len: 0 },
            gateway: Some("fe80::1".parse().unwrap()),
            oif: Some(lan),
            src: None,
            scope: 0,
            proto: 9,
            kind: 1,
            priority: 1024,
        };
        k.routes.push(ra_route.clone());
        // The delegated prefix changes: the old lan0 address (ours) goes, the foreign one stays.
        let mut g2 = golden();
        g2.dhcp6.prefixes[0].ip = "2a02:168:4b00::".parse().unwrap();
        let report = apply(&golden_plan(&g2), &mut k);
        let changes = report.changes();
        assert!(changes.contains(&"removed address 2a02:168:4a00::1/64 from lan0".to_owned()), "{changes:?}");
        assert!(changes.iter().any(|c| c.starts_with("removed route 2a02:168:4a00::/48")), "{changes:?}");
        assert!(k.addresses.contains(&foreign) && k.routes.contains(&ra_route));
    }

    #[test]
    fn bridges_are_created_with_the_first_members_mac_and_filled() {
        let raw = serde_json::from_str(
            r#"{"bridges":[{"name":"lan0","interface_hardware_addrs":["02:73:53:00:b0:0c"]}],
                "interfaces":[{"hardware_addr":"02:73:53:00:ca:fe","name":"uplink0"},
                              {"spoof_hardware_addr":"02:73:53:00:b0:aa","name":"lan0","addr":"192.168.42.1/24"}]}"#,
        )
        .unwrap();
        let (net, _) = crate::config::validate_interfaces(std::path::Path::new("i.json"), &raw).unwrap();
        let plan = crate::plan::plan(&crate::plan::Inputs {
            net: &net,
            forwardings: &[],
            firewall: &Default::default(),
            dhcp4: None,
            dhcp6: None,
            uplink: "uplink0",
            lan: "lan0",
        });
        let mut k = testnetconfig_kernel();
        k.links.retain(|l| l.name != "lan0");
        let eth0 = k.add_link("eth0", Some(LAN_MAC));
        let report = apply(&plan, &mut k);
        assert!(k.log[0].starts_with("create bridge lan0 mac Some(\"02:73:53:00:b0:0c\")"), "{:?}", k.log);
        let bridge = k.links.iter().find(|l| l.name == "lan0").unwrap().clone();
        assert_eq!(bridge.mac, Some([0x02, 0x73, 0x53, 0x00, 0xb0, 0xaa]), "then spoofed: {report:?}");
        let eth = k.links.iter().find(|l| l.index == eth0).unwrap();
        assert_eq!((eth.name.as_str(), eth.master, eth.up), ("eth0", Some(bridge.index), true));
        let before = k.log.len();
        assert!(apply(&plan, &mut k).changes().is_empty());
        assert_eq!(k.log.len(), before);
    }
}
