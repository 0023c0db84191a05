//! The desired state: a pure function from netconfigd's inputs
//! (interfaces.json, portforwardings.json, config.json, the DHCPv4 and DHCPv6
//! leases) to the links, addresses, routes, sysctls, `/tmp/resolv.conf` and
//! nftables tables the kernel should hold. It touches nothing; `reconcile`
//! compares it with the kernel and changes only what differs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use runtime::perm::{Dhcp4Lease, Dhcp6Lease, parse_cidr};

use crate::config::{Cidr, FirewallConfig, Mac, NetConfig, PortForward, mask};
use crate::firewall::{self, FirewallInputs};
use crate::nft::Table;

/// A link to configure, found by MAC (or by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    /// The name it must have.
    pub name: String,
    /// MACs that identify it (`hardware_addr`, `spoof_hardware_addr`).
    pub macs: Vec<Mac>,
    /// MTU to set.
    pub mtu: Option<u32>,
    /// MAC to set.
    pub mac: Option<Mac>,
}

/// A bridge to create and fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePlan {
    /// Its name.
    pub name: String,
    /// The MAC to create it with (its first member's), so nothing ever sees a random one.
    pub mac: Option<Mac>,
    /// Members by MAC.
    pub members: Vec<Mac>,
}

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AddrPlan {
    /// The interface.
    pub ifname: String,
    /// The address and prefix length.
    pub addr: Cidr,
}

/// Who installed a route, as the kernel records it (`rtm_protocol`).
pub mod proto {
    /// RTPROT_KERNEL: the kernel's own (prefix routes of addresses).
    pub const KERNEL: u8 = 2;
    /// RTPROT_STATIC: netconfigd's routes from configuration and the delegated prefix.
    pub const STATIC: u8 = 4;
    /// RTPROT_DHCP: netconfigd's routes from the DHCPv4 lease (as router7).
    pub const DHCP: u8 = 16;
}

/// Route types (`rtm_type`).
pub mod kind {
    /// RTN_UNICAST
    pub const UNICAST: u8 = 1;
    /// RTN_UNREACHABLE
    pub const UNREACHABLE: u8 = 7;
}

/// Route scopes (`rtm_scope`).
pub mod scope {
    /// RT_SCOPE_UNIVERSE
    pub const UNIVERSE: u8 = 0;
    /// RT_SCOPE_LINK
    pub const LINK: u8 = 253;
}

/// A route in the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    /// Destination network.
    pub dst: Cidr,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface.
    pub ifname: Option<String>,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// Scope ([`scope`]).
    pub scope: u8,
    /// Protocol ([`proto`]).
    pub proto: u8,
    /// Type ([`kind`]).
    pub kind: u8,
}

impl std::fmt::Display for RoutePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == kind::UNREACHABLE {
            write!(f, "unreachable ")?;
        }
        if self.dst.len == 0 {
            write!(f, "default")?
        } else {
            write!(f, "{}", self.dst)?
        }
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(i) = &self.ifname {
            write!(f, " dev {i}")?;
        }
        let p = match self.proto {
            proto::DHCP => "dhcp".to_owned(),
            proto::STATIC => "static".to_owned(),
            n => n.to_string(),
        };
        write!(f, " proto {p}")?;
        if self.scope == scope::LINK {
            write!(f, " scope link")?;
        }
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        Ok(())
    }
}

/// A sysctl, by path components under `/proc/sys` (interface names may contain dots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// `["net", "ipv4", "ip_forward"]`.
    pub key: Vec<String>,
    /// The value to write.
    pub value: String,
}

impl Sysctl {
    fn new(key: &[&str], value: &str) -> Self {
        Self { key: key.iter().map(|s| (*s).to_owned()).collect(), value: value.into() }
    }

    /// `net.ipv4.ip_forward`.
    #[must_use]
    pub fn name(&self) -> String {
        self.key.join(".")
    }
}

/// Everything the kernel should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Bridges, created before links are configured.
    pub bridges: Vec<BridgePlan>,
    /// Links.
    pub links: Vec<LinkPlan>,
    /// Addresses.
    pub addresses: Vec<AddrPlan>,
    /// The interface whose other IPv4 addresses are removed (the uplink, when
    /// a DHCPv4 lease exists: an old lease's address must go).
    pub exclusive_v4: Option<String>,
    /// Routes, on-link ones before those that need them as next hop.
    pub routes: Vec<RoutePlan>,
    /// Sysctls.
    pub sysctls: Vec<Sysctl>,
    /// The content of `/tmp/resolv.conf` (written only if missing or a symlink).
    pub resolv_conf: Option<String>,
    /// The nftables tables.
    pub tables: Vec<Table>,
    /// Things in the inputs that were ignored.
    pub warnings: Vec<String>,
}

/// What the plan is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// interfaces.json.
    pub net: &'a NetConfig,
    /// portforwardings.json.
    pub forwardings: &'a [PortForward],
    /// config.json's firewall.
    pub firewall: &'a FirewallConfig,
    /// The DHCPv4 lease, if any.
    pub dhcp4: Option<&'a Dhcp4Lease>,
    /// The DHCPv6 lease, if any.
    pub dhcp6: Option<&'a Dhcp6Lease>,
    /// The uplink interface.
    pub uplink: &'a str,
    /// The LAN interface.
    pub lan: &'a str,
}

fn v4(a: Ipv4Addr, len: u8) -> Cidr {
    Cidr { addr: IpAddr::V4(a), len }
}

fn dhcp4_plan(lease: &Dhcp4Lease, uplink: &str, plan: &mut Plan) {
    let Some(client) = lease.client_ip else {
        plan.warnings.push("dhcp4 lease without client_ip ignored".into());
        return;
    };
    let len = lease.prefix_len();
    plan.exclusive_v4 = Some(uplink.to_owned());
    plan.addresses.push(AddrPlan { ifname: uplink.into(), addr: v4(client, len) });
    let src = Some(IpAddr::V4(client));
    let route = |dst: Cidr, gateway: Option<Ipv4Addr>, scope: u8| RoutePlan {
        dst,
        gateway: gateway.map(IpAddr::V4),
        ifname: Some(uplink.to_owned()),
        src,
        scope,
        proto: proto::DHCP,
        kind: kind::UNICAST,
    };
    // RFC 3442 §3: with classless static routes, the Router option is ignored.
    let mut via: Vec<(Cidr, Option<Ipv4Addr>)> = Vec::new();
    if lease.classless_routes.is_empty() {
        if let Some(r) = lease.router {
            via.push((v4(Ipv4Addr::UNSPECIFIED, 0), Some(r)));
        }
    } else {
        for (i, r) in lease.classless_routes.iter().enumerate() {
            match parse_cidr(&r.destination) {
                Some((IpAddr::V4(a), l)) => {
                    let gw = (!r.gateway.is_unspecified()).then_some(r.gateway);
                    let dst = Cidr { addr: mask(IpAddr::V4(a), l), len: l };
                    via.push((dst, gw));
                }
                _ => plan.warnings.push(format!("dhcp4 lease classless_routes[{i}] {:?} ignored", r.destination)),
            }
        }
    }
    // The next hop first as an on-link host route (router7 did this for the
    // router; it also covers gateways outside the lease's subnet).
    let mut gateways: Vec<Ipv4Addr> = via.iter().filter_map(|(_, g)| *g).collect();
    gateways.dedup();
    for g in gateways {
        plan.routes.push(route(v4(g, 32), None, scope::LINK));
    }
    for (dst, gw) in via {
        let scope = if gw.is_none() { scope::LINK } else { scope::UNIVERSE };
        if gw.is_none() && dst.len == 32 && plan.routes.iter().any(|r| r.dst == dst) {
            continue;
        }
        plan.routes.push(route(dst, gw, scope));
    }
}

fn dhcp6_plan(lease: &Dhcp6Lease, lan: &str, plan: &mut Plan) {
    for p in &lease.prefixes {
        let IpAddr::V6(net) = p.ip else {
            plan.warnings.push(format!("dhcp6 prefix {p} is not IPv6; ignored"));
            continue;
        };
        let net = mask(IpAddr::V6(net), p.prefix_len);
        let IpAddr::V6(net6) = net else { continue };
        // router7: the prefix with its last byte set to 1, as a /64 (the first
        // /64 of the delegated prefix; longer prefixes keep their length).
        let mut octets = net6.octets();
        octets[15] = 1;
        let len = p.prefix_len.max(64);
        plan.addresses
            .push(AddrPlan { ifname: lan.into(), addr: Cidr { addr: IpAddr::V6(Ipv6Addr::from(octets)), len } });
        if p.prefix_len < 64 {
            // The rest of the delegation has no link here: without this route it
            // would follow the default route back to the ISP, which routes it
            // back to us, until the hop limit runs out.
            plan.routes.push(RoutePlan {
                dst: Cidr { addr: net, len: p.prefix_len },
                gateway: None,
                ifname: None,
                src: None,
                scope: scope::UNIVERSE,
                proto: proto::STATIC,
                kind: kind::UNREACHABLE,
            });
        }
    }
}

/// Computes the plan.
#[must_use]
pub fn plan(i: &Inputs<'_>) -> Plan {
    let mut plan = Plan {
        bridges: Vec::new(),
        links: Vec::new(),
        addresses: Vec::new(),
        exclusive_v4: None,
        routes: Vec::new(),
        sysctls: Vec::new(),
        resolv_conf: None,
        tables: Vec::new(),
        warnings: Vec::new(),
    };
    for b in &i.net.bridges {
        plan.bridges.push(BridgePlan {
            name: b.name.clone(),
            mac: b.members.first().copied(),
            members: b.members.clone(),
        });
    }
    for iface in &i.net.interfaces {
        plan.links.push(LinkPlan {
            name: iface.name.clone(),
            macs: iface.hardware_addr.iter().chain(iface.spoof_hardware_addr.iter()).copied().collect(),
            mtu: iface.mtu,
            mac: iface.spoof_hardware_addr,
        });
        for a in iface.addr.iter().chain(&iface.extra_addrs) {
            plan.addresses.push(AddrPlan { ifname: iface.name.clone(), addr: *a });
        }
        if iface.name == i.lan
            && let Some(a) = iface.addr
        {
            // Use dnsd for the router's own lookups (router7).
            plan.resolv_conf = Some(format!("nameserver {}\n", a.addr));
        }
    }
    if let Some(lease) = i.dhcp4 {
        dhcp4_plan(lease, i.uplink, &mut plan);
    }
    if let Some(lease) = i.dhcp6 {
        dhcp6_plan(lease, i.lan, &mut plan);
    }
    for iface in &i.net.interfaces {
        for r in &iface.extra_routes {
            plan.routes.push(RoutePlan {
                dst: r.destination,
                gateway: r.gateway,
                ifname: Some(iface.name.clone()),
                src: None,
                scope: if r.gateway.is_none() { scope::LINK } else { scope::UNIVERSE },
                proto: proto::STATIC,
                kind: kind::UNICAST,
            });
        }
    }
    plan.sysctls = vec![
        Sysctl::new(&["net", "ipv4", "ip_forward"], "1"),
        Sysctl::new(&["net", "ipv6", "conf", "all", "forwarding"], "1"),
        Sysctl::new(&["net", "ipv4", "icmp_ratelimit"], "0"),
        Sysctl::new(&["net", "ipv6", "icmp", "ratelimit"], "0"),
        // Forwarding turns RA processing off; 2 keeps the ISP's default route coming.
        Sysctl::new(&["net", "ipv6", "conf", i.uplink, "accept_ra"], "2"),
    ];
    let lan_v4 = i.net.by_name(i.lan).and_then(|l| l.addr).filter(|a| a.addr.is_ipv4());
    plan.tables = firewall::build(&FirewallInputs {
        uplink: i.uplink,
        lan: i.lan,
        lan_v4,
        forwardings: i.forwardings,
        config: i.firewall,
    });
    plan
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{parse_config, parse_forwardings, validate_interfaces};

    /// router7's TestNetconfig golden dhcp4 lease (fiber7).
    pub(crate) const GOLDEN_DHCP4: &str = r#"{
  "valid_until":"2018-05-18T23:46:04.429895261+02:00",
  "client_ip":"85.195.207.62",
  "subnet_mask":"255.255.255.128",
  "router":"85.195.207.1",
  "dns":["77.109.128.2","213.144.129.20"]
}"#;

    /// router7's TestNetconfig golden dhcp6 lease.
    pub(crate) const GOLDEN_DHCP6: &str = r#"{
  "valid_until":"0001-01-01T00:00:00Z",
  "prefixes":[{"IP":"2a02:168:4a00::","Mask":"////////AAAAAAAAAAAAAA=="}],
  "dns":["2001:1620:2777:1::10","2001:1620:2777:2::20"]
}"#;

    pub(crate) const GOLDEN_CONFIG: &str = r#"{"firewall":{
  "input":[{"proto":"tcp","port":"22","from":"203.0.113.0/24"},{"proto":"udp","port":"51820"}],
  "forward6":[{"proto":"tcp","port":"443","dest_addr":"2a02:168:4a00::10"}]}}"#;

    pub(crate) struct Golden {
        pub net: NetConfig,
        pub forwardings: Vec<PortForward>,
        pub firewall: FirewallConfig,
        pub dhcp4: Dhcp4Lease,
        pub dhcp6: Dhcp6Lease,
    }

    pub(crate) fn golden() -> Golden {
        let raw = serde_json::from_str(crate::config::tests::GOLDEN_INTERFACES).unwrap();
        let (net, _) = validate_interfaces(Path::new("interfaces.json"), &raw).unwrap();
        let (forwardings, _) =
            parse_forwardings(Path::new("pf.json"), crate::config::tests::GOLDEN_FORWARDINGS.as_bytes()).unwrap();
        let firewall = parse_config(Path::new("c.json"), GOLDEN_CONFIG.as_bytes()).unwrap();
        Golden {
            net,
            forwardings,
            firewall,
            dhcp4: serde_json::from_str(GOLDEN_DHCP4).unwrap(),
            dhcp6: serde_json::from_str(GOLDEN_DHCP6).unwrap(),
        }
    }

    pub(crate) fn golden_plan(g: &Golden) -> Plan {
        plan(&Inputs {
            net: &g.net,
            forwardings: &g.forwardings,
            firewall: &g.firewall,
            dhcp4: Some(&g.dhcp4),
            dhcp6: Some(&g.dhcp6),
            uplink: "uplink0",
            lan: "lan0",
        })
    }

    /// The plan as text, one item a line, for the golden file.
    pub(crate) fn render(p: &Plan) -> String {
        use std::fmt::Write as _;
        let mac = runtime::netif::format_mac;
        let mut s = String::new();
        for b in &p.bridges {
            let members: Vec<String> = b.members.iter().map(|m| mac(*m)).collect();
            let _ = writeln!(s, "bridge {} mac {:?} members {}", b.name, b.mac.map(mac), members.join(","));
        }
        for l in &p.links {
            let macs: Vec<String> = l.macs.iter().map(|m| mac(*m)).collect();
            let _ =
                writeln!(s, "link {} match [{}] mtu {:?} mac {:?} up", l.name, macs.join(","), l.mtu, l.mac.map(mac));
        }
        for a in &p.addresses {
            let _ = writeln!(s, "addr {} dev {}", a.addr, a.ifname);
        }
        if let Some(e) = &p.exclusive_v4 {
            let _ = writeln!(s, "only-these-ipv4 dev {e}");
        }
        for r in &p.routes {
            let _ = writeln!(s, "route {r}");
        }
        for c in &p.sysctls {
            let _ = writeln!(s, "sysctl {}={}", c.name(), c.value);
        }
        let _ = writeln!(s, "resolv.conf {:?}", p.resolv_conf);
        s
    }

    /// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it.
    pub(crate) fn assert_golden(name: &str, got: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name);
        if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if want != got {
            let diff: Vec<String> = want
                .lines()
                .zip(got.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .take(5)
                .map(|(i, (a, b))| format!("line {}:\n  want {a}\n  got  {b}", i + 1))
                .collect();
            panic!(
                "{} differs from the golden file (UPDATE_GOLDEN=1 rewrites it):\n{}\n--- got ---\n{got}",
                path.display(),
                diff.join("\n")
            );
        }
    }

    #[test]
    fn golden_plan_matches_router7s_testnetconfig() {
        let g = golden();
        let p = golden_plan(&g);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_golden("plan.txt", &render(&p));
    }

    #[test]
    fn golden_ruleset_matches() {
        let g = golden();
        let p = golden_plan(&g);
        let text: String = p.tables.iter().map(|t| t.render(&Default::default())).collect();
        assert_golden("ruleset.nft", &text);
    }

    /// The nfnetlink messages of the golden ruleset, one line each (type, family,
    /// attributes in hex), so any change to the encoding shows in review. The
    /// namespace tests prove the kernel accepts them and nft lists them as
    /// testdata/ruleset.nft says.
    #[test]
    fn golden_ruleset_encoding_matches() {
        use netlink_packet_core::{NlaBuffer, NlasIterator};
        let g = golden();
        let p = golden_plan(&g);
        let tables: Vec<&Table> = p.tables.iter().collect();
        let mut values = crate::nft::CounterValues::new();
        values.insert(
            (crate::nft::Family::Ip, "router7".into(), "fwded".into()),
            crate::nft::CounterValue { packets: 23, bytes: 42 },
        );
        let msgs = crate::nft::replace_tables(&tables, &values);
        let mut text = String::new();
        for m in &msgs {
            let hex: String = m.attrs.iter().map(|b| format!("{b:02x}")).collect();
            text.push_str(&format!("{:?} {} flags {:#x}: {hex}\n", m.kind, m.family.name(), m.flags));
            // Every attribute, nested ones included, is well formed.
            fn walk(bytes: &[u8]) {
                for nla in NlasIterator::new(bytes) {
                    let nla: NlaBuffer<&[u8]> = nla.unwrap();
                    if nla.nested_flag() {
                        walk(nla.value());
                    }
                }
            }
            walk(&m.attrs);
        }
        assert_golden("ruleset-batch.txt", &text);
        // The counter value read before a rebuild is written back.
        assert!(text.contains(&format!("{:016x}", 42u64)) && text.contains(&format!("{:016x}", 23u64)));
    }

    #[test]
    fn classless_routes_replace_the_router_option() {
        let g = golden();
        let mut lease = g.dhcp4.clone();
        lease.classless_routes = vec![
            runtime::perm::Route4 { destination: "0.0.0.0/0".into(), gateway: Ipv4Addr::new(85, 195, 207, 2) },
            runtime::perm::Route4 { destination: "10.8.0.0/16".into(), gateway: Ipv4Addr::new(85, 195, 207, 3) },
            runtime::perm::Route4 { destination: "192.0.2.0/24".into(), gateway: Ipv4Addr::UNSPECIFIED },
        ];
        let p = plan(&Inputs {
            net: &g.net,
            forwardings: &[],
            firewall: &FirewallConfig::default(),
            dhcp4: Some(&lease),
            dhcp6: None,
            uplink: "uplink0",
            lan: "lan0",
        });
        let routes: Vec<String> = p.routes.iter().filter(|r| r.proto == proto::DHCP).map(ToString::to_string).collect();
        assert_eq!(
            routes,
            [
                "85.195.207.2/32 dev uplink0 proto dhcp scope link src 85.195.207.62",
                "85.195.207.3/32 dev uplink0 proto dhcp scope link src 85.195.207.62",
                "default via 85.195.207.2 dev uplink0 proto dhcp src 85.195.207.62",
                "10.8.0.0/16 via 85.195.207.3 dev uplink0 proto dhcp src 85.195.207.62",
                "192.0.2.0/24 dev uplink0 proto dhcp scope link src 85.195.207.62",
            ]
        );
        assert!(!routes.iter().any(|r| r.contains("85.195.207.1")), "the Router option is ignored (RFC 3442)");
    }

    #[test]
    fn without_leases_nothing_on_the_uplink_is_managed() {
        let g = golden();
        let p = plan(&Inputs {
            net: &g.net,
            forwardings: &[],
            firewall: &FirewallConfig::default(),
            dhcp4: None,
            dhcp6: None,
            uplink: "uplink0",
            lan: "lan0",
        });
        assert_eq!(p.exclusive_v4, None);
        assert!(p.routes.iter().all(|r| r.proto == proto::STATIC && r.kind == kind::UNICAST));
        assert!(!p.addresses.iter().any(|a| a.ifname == "uplink0"));
    }

    #[test]
    fn a_slash_64_delegation_gets_no_unreachable_route() {
        let g = golden();
        let lease: Dhcp6Lease = serde_json::from_str(
            r#"{"valid_until":"0001-01-01T00:00:00Z","prefixes":[{"IP":"2001:db8:1:2::","Mask":"//////////8AAAAAAAAAAA=="}]}"#,
        )
        .unwrap();
        let p = plan(&Inputs {
            net: &g.net,
            forwardings: &[],
            firewall: &FirewallConfig::default(),
            dhcp4: None,
            dhcp6: Some(&lease),
            uplink: "uplink0",
            lan: "lan0",
        });
        assert!(p.addresses.contains(&AddrPlan {
            ifname: "lan0".into(),
            addr: Cidr { addr: "2001:db8:1:2::1".parse().unwrap(), len: 64 }
        }));
        assert!(!p.routes.iter().any(|r| r.kind == kind::UNREACHABLE));
    }
}
