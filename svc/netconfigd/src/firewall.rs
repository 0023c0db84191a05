//! The firewall netconfigd installs: one table `router7` per family, replaced
//! atomically, never touching anybody else's tables.
//!
//! router7 had counters, NAT and MSS clamping but no drop rules (its issues #32
//! and #91). Here, what arrives on the uplink is dropped unless it is
//! established/related, a DHCP reply, ICMP/ICMPv6 that IPv4 and IPv6 need
//! (RFC 4890 §4.3 for forwarding, §4.4 for the router itself), a port forwarding
//! (`ct status dnat`) or an opening from config.json. LAN and loopback are
//! trusted. `ct state invalid` is dropped everywhere. Named counters count
//! what router7 counted (`fwded`, `inputc`, `outputc`) plus the drops.
//!
//! Each rule is built together with the line `nft list ruleset` prints for it,
//! so the golden file doubles as a review of the firewall and the namespace test
//! can compare it with what the kernel really holds.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::{Cidr, FirewallConfig, PortForward, PortRange, Proto};
use crate::nft::{
    BaseChain, Chain, ChainType, CmpOp, CtKey, Expr, Family, Hook, MetaKey, PayloadBase, REG1, REG2, REG3, Rule, Table,
    Verdict,
};

/// The name of netconfigd's table in each family.
pub const TABLE: &str = "router7";

/// Counters of each table, in creation order.
pub const COUNTERS: [&str; 6] = ["fwded", "inputc", "outputc", "input_dropped", "forward_dropped", "invalid_dropped"];

/// ICMP echo requests accepted per second (the rest are dropped; RFC 4890 §4.4.1
/// recommends rate limiting what reaches the router itself).
pub const ECHO_RATE_PER_SECOND: u64 = 10;
/// Their burst.
pub const ECHO_BURST: u32 = 20;

/// What the firewall is built from.
#[derive(Debug, Clone)]
pub struct FirewallInputs<'a> {
    /// The uplink interface.
    pub uplink: &'a str,
    /// The LAN interface.
    pub lan: &'a str,
    /// The LAN's IPv4 address and prefix (port forwardings leave it alone).
    pub lan_v4: Option<Cidr>,
    /// Port forwardings.
    pub forwardings: &'a [PortForward],
    /// Openings.
    pub config: &'a FirewallConfig,
}

/// Builds one rule's expressions and its nft text side by side.
#[derive(Debug, Default)]
struct RuleBuilder {
    exprs: Vec<Expr>,
    words: Vec<String>,
}

fn ifname_bytes(name: &str) -> Vec<u8> {
    // IFNAMSIZ bytes, NUL padded, as the kernel stores interface names.
    let mut v = name.as_bytes().to_vec();
    v.resize(16, 0);
    v
}

fn prefix_mask(len: u8, total: usize) -> Vec<u8> {
    (0..total)
        .map(|i| {
            let bits = i32::from(len) - 8 * i32::try_from(i).unwrap_or(0);
            match bits {
                ..=0 => 0u8,
                8.. => 0xff,
                b => 0xffu8 << (8 - b),
            }
        })
        .collect()
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn icmp_name(family: Family, t: u8) -> String {
    let name = match (family, t) {
        (Family::Ip, 3) => "destination-unreachable",
        (Family::Ip, 8) => "echo-request",
        (Family::Ip, 11) => "time-exceeded",
        (Family::Ip, 12) => "parameter-problem",
        (Family::Ip6, 1) => "destination-unreachable",
        (Family::Ip6, 2) => "packet-too-big",
        (Family::Ip6, 3) => "time-exceeded",
        (Family::Ip6, 4) => "parameter-problem",
        (Family::Ip6, 128) => "echo-request",
        (Family::Ip6, 130) => "mld-listener-query",
        (Family::Ip6, 131) => "mld-listener-report",
        (Family::Ip6, 132) => "mld-listener-done",
        (Family::Ip6, 133) => "nd-router-solicit",
        (Family::Ip6, 134) => "nd-router-advert",
        (Family::Ip6, 135) => "nd-neighbor-solicit",
        (Family::Ip6, 136) => "nd-neighbor-advert",
        (Family::Ip6, 137) => "nd-redirect",
        (Family::Ip6, 143) => "mld2-listener-report",
        _ => return t.to_string(),
    };
    name.to_owned()
}

impl RuleBuilder {
    fn new() -> Self {
        Self::default()
    }

    fn word(&mut self, w: impl Into<String>) -> &mut Self {
        self.words.push(w.into());
        self
    }

    fn cmp(&mut self, op: CmpOp, data: Vec<u8>) {
        self.exprs.push(Expr::Cmp { sreg: REG1, op, data });
    }

    fn meta_ifname(&mut self, key: MetaKey, name: &str) -> &mut Self {
        self.exprs.push(Expr::Meta { key, dreg: REG1 });
        self.cmp(CmpOp::Eq, ifname_bytes(name));
        let which = if key == MetaKey::IifName { "iifname" } else { "oifname" };
        self.word(format!("{which} \"{name}\""))
    }

    fn iifname(&mut self, name: &str) -> &mut Self {
        self.meta_ifname(MetaKey::IifName, name)
    }

    fn oifname(&mut self, name: &str) -> &mut Self {
        self.meta_ifname(MetaKey::OifName, name)
    }

    /// Any of the conntrack state bits (`invalid` 1, `established` 2, `related` 4).
    fn ct_state(&mut self, bits: u32, text: &str) -> &mut Self {
        self.exprs.push(Expr::Ct { key: CtKey::State, dreg: REG1 });
        self.exprs.push(Expr::Bitwise { sreg: REG1, dreg: REG1, mask: bits.to_ne_bytes().to_vec(), xor: vec![0; 4] });
        self.cmp(CmpOp::Neq, vec![0; 4]);
        self.word(format!("ct state {text}"))
    }

    /// The connection was destination-NATed (IPS_DST_NAT): a port forwarding.
    fn ct_status_dnat(&mut self) -> &mut Self {
        self.exprs.push(Expr::Ct { key: CtKey::Status, dreg: REG1 });
        self.exprs.push(Expr::Bitwise {
            sreg: REG1,
            dreg: REG1,
            mask: 0x20u32.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        });
        self.cmp(CmpOp::Neq, vec![0; 4]);
        self.word("ct status dnat")
    }

    fn l4proto(&mut self, number: u8) {
        self.exprs.push(Expr::Meta { key: MetaKey::L4Proto, dreg: REG1 });
        self.cmp(CmpOp::Eq, vec![number]);
    }

    fn port_match(&mut self, offset: u32, ports: PortRange) {
        self.exprs.push(Expr::Payload { base: PayloadBase::Transport, offset, len: 2, dreg: REG1 });
        if ports.min == ports.max {
            self.cmp(CmpOp::Eq, ports.min.to_be_bytes().to_vec());
        } else {
            self.cmp(CmpOp::Gte, ports.min.to_be_bytes().to_vec());
            self.cmp(CmpOp::Lte, ports.max.to_be_bytes().to_vec());
        }
    }

    /// `tcp dport 22`, `udp dport 1000-2000`.
    fn dport(&mut self, proto: Proto, ports: PortRange) -> &mut Self {
        self.l4proto(proto.number());
        self.port_match(2, ports);
        self.word(format!("{} dport {ports}", proto.name()))
    }

    /// `udp sport 67 udp dport 68`.
    fn udp_ports(&mut self, sport: u16, dport: u16) -> &mut Self {
        self.l4proto(17);
        self.port_match(0, PortRange { min: sport, max: sport });
        self.port_match(2, PortRange { min: dport, max: dport });
        self.word(format!("udp sport {sport} udp dport {dport}"))
    }

    fn icmp_type(&mut self, family: Family, t: u8) -> &mut Self {
        let (proto, word) = match family {
            Family::Ip => (1, "icmp"),
            Family::Ip6 => (58, "icmpv6"),
        };
        self.l4proto(proto);
        self.exprs.push(Expr::Payload { base: PayloadBase::Transport, offset: 0, len: 1, dreg: REG1 });
        self.cmp(CmpOp::Eq, vec![t]);
        self.word(format!("{word} type {}", icmp_name(family, t)))
    }

    /// `ip saddr 203.0.113.0/24`, `ip6 daddr != …`, `ip daddr 1.2.3.4`.
    fn addr(&mut self, source: bool, net: Cidr, equal: bool) -> &mut Self {
        let (offset, total, word) = match (net.addr, source) {
            (IpAddr::V4(_), true) => (12, 4, "ip saddr"),
            (IpAddr::V4(_), false) => (16, 4, "ip daddr"),
            (IpAddr::V6(_), true) => (8, 16, "ip6 saddr"),
            (IpAddr::V6(_), false) => (24, 16, "ip6 daddr"),
        };
        self.exprs.push(Expr::Payload {
            base: PayloadBase::Network,
            offset,
            len: u32::try_from(total).unwrap_or(16),
            dreg: REG1,
        });
        let full = usize::from(net.len) == total * 8;
        if !full {
            self.exprs.push(Expr::Bitwise {
                sreg: REG1,
                dreg: REG1,
                mask: prefix_mask(net.len, total),
                xor: vec![0; total],
            });
        }
        let net = net.network();
        self.cmp(if equal { CmpOp::Eq } else { CmpOp::Neq }, ip_bytes(net.addr));
        let op = if equal { "" } else { "!= " };
        let value = if full { net.addr.to_string() } else { net.to_string() };
        self.word(format!("{word} {op}{value}"))
    }

    fn hoplimit(&mut self, v: u8) -> &mut Self {
        self.exprs.push(Expr::Payload { base: PayloadBase::Network, offset: 7, len: 1, dreg: REG1 });
        self.cmp(CmpOp::Eq, vec![v]);
        self.word(format!("ip6 hoplimit {v}"))
    }

    fn fib_daddr_local(&mut self) -> &mut Self {
        self.exprs.push(Expr::FibDaddrType { dreg: REG1 });
        self.cmp(CmpOp::Eq, 2u32.to_ne_bytes().to_vec()); // RTN_LOCAL
        self.word("fib daddr type local")
    }

    fn limit(&mut self, per_second: u64, burst: u32) -> &mut Self {
        self.exprs.push(Expr::Limit { rate: per_second, per_seconds: 1, burst });
        self.word(format!("limit rate {per_second}/second burst {burst} packets"))
    }

    fn counter(&mut self, name: &str) -> &mut Self {
        self.exprs.push(Expr::Counter(name.to_owned()));
        self.word(format!("counter name \"{name}\""))
    }

    /// `tcp flags syn / syn,rst`: a SYN without RST (SYN and SYN-ACK).
    fn tcp_syn(&mut self) -> &mut Self {
        self.l4proto(6);
        self.exprs.push(Expr::Payload { base: PayloadBase::Transport, offset: 13, len: 1, dreg: REG1 });
        self.exprs.push(Expr::Bitwise { sreg: REG1, dreg: REG1, mask: vec![0x06], xor: vec![0] });
        self.cmp(CmpOp::Eq, vec![0x02]);
        self.word("tcp flags syn / syn,rst")
    }

    /// Lowers the MSS option to what fits the route's MTU.
    fn clamp_mss_to_route_mtu(&mut self) -> &mut Self {
        self.exprs.push(Expr::RtTcpMss { dreg: REG1 });
        self.exprs.push(Expr::Hton16 { reg: REG1 });
        self.exprs.push(Expr::SetTcpMss { sreg: REG1 });
        self.word("tcp option maxseg size set rt mtu")
    }

    fn dnat(&mut self, addr: Ipv4Addr, ports: PortRange) -> &mut Self {
        self.exprs.push(Expr::ImmediateData { dreg: REG1, data: addr.octets().to_vec() });
        self.exprs.push(Expr::ImmediateData { dreg: REG2, data: ports.min.to_be_bytes().to_vec() });
        let max_reg = if ports.min == ports.max {
            REG2
        } else {
            self.exprs.push(Expr::ImmediateData { dreg: REG3, data: ports.max.to_be_bytes().to_vec() });
            REG3
        };
        self.exprs.push(Expr::Dnat { family: Family::Ip, addr: REG1, proto_min: REG2, proto_max: max_reg });
        self.word(format!("dnat to {addr}:{ports}"))
    }

    fn masquerade(&mut self) -> &mut Self {
        self.exprs.push(Expr::Masquerade);
        self.word("masquerade")
    }

    fn verdict(&mut self, v: Verdict) -> Rule {
        self.word(v.text());
        self.exprs.push(Expr::Verdict(v));
        self.build()
    }

    fn build(&mut self) -> Rule {
        Rule { exprs: std::mem::take(&mut self.exprs), text: std::mem::take(&mut self.words).join(" ") }
    }
}

fn base(name: &str, kind: ChainType, hook: Hook, priority: i32, rules: Vec<Rule>) -> Chain {
    Chain { name: name.into(), base: Some(BaseChain { kind, hook, priority, policy: Verdict::Accept }), rules }
}

fn regular(name: &str, rules: Vec<Rule>) -> Chain {
    Chain { name: name.into(), base: None, rules }
}

fn link_local() -> Cidr {
    Cidr { addr: IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), len: 10 }
}

/// The chains every family shares: counting, invalid drop, MSS clamping, and
/// the split between trusted interfaces and the uplink.
fn filter_chains(
    family: Family,
    inputs: &FirewallInputs<'_>,
    input_uplink: Vec<Rule>,
    forward_uplink: Vec<Rule>,
) -> Vec<Chain> {
    let up = inputs.uplink;
    let invalid = || RuleBuilder::new().ct_state(1, "invalid").counter("invalid_dropped").verdict(Verdict::Drop);
    let established = || RuleBuilder::new().ct_state(6, "established,related").verdict(Verdict::Accept);
    let _ = family;
    vec![
        base(
            "input",
            ChainType::Filter,
            Hook::Input,
            0,
            vec![
                RuleBuilder::new().counter("inputc").build(),
                invalid(),
                RuleBuilder::new().iifname("lo").verdict(Verdict::Accept),
                established(),
                RuleBuilder::new().iifname(up).verdict(Verdict::Jump("input-uplink".into())),
            ],
        ),
        regular("input-uplink", input_uplink),
        base(
            "forward",
            ChainType::Filter,
            Hook::Forward,
            0,
            vec![
                RuleBuilder::new().counter("fwded").build(),
                invalid(),
                RuleBuilder::new().tcp_syn().clamp_mss_to_route_mtu().build(),
                established(),
                RuleBuilder::new().iifname(up).verdict(Verdict::Jump("forward-uplink".into())),
            ],
        ),
        regular("forward-uplink", forward_uplink),
        base("output", ChainType::Filter, Hook::Output, 0, vec![RuleBuilder::new().counter("outputc").build()]),
    ]
}

fn openings(family: Family, config: &FirewallConfig) -> Vec<Rule> {
    let mut rules = Vec::new();
    for o in &config.input {
        let wanted = match o.from {
            None => true,
            Some(c) => c.addr.is_ipv4() == (family == Family::Ip),
        };
        if !wanted {
            continue;
        }
        let mut r = RuleBuilder::new();
        r.dport(o.proto, o.ports);
        if let Some(from) = o.from {
            r.addr(true, from, true);
        }
        rules.push(r.verdict(Verdict::Accept));
    }
    rules
}

fn ipv4_table(inputs: &FirewallInputs<'_>) -> Table {
    let f = Family::Ip;
    let mut input_uplink = vec![RuleBuilder::new().udp_ports(67, 68).verdict(Verdict::Accept)];
    input_uplink
        .push(RuleBuilder::new().icmp_type(f, 8).limit(ECHO_RATE_PER_SECOND, ECHO_BURST).verdict(Verdict::Accept));
    // Destination unreachable carries "fragmentation needed" (RFC 1191 path MTU discovery).
    for t in [3, 11, 12] {
        input_uplink.push(RuleBuilder::new().icmp_type(f, t).verdict(Verdict::Accept));
    }
    input_uplink.extend(openings(f, inputs.config));
    input_uplink.push(RuleBuilder::new().counter("input_dropped").verdict(Verdict::Drop));
    let forward_uplink = vec![
        RuleBuilder::new().ct_status_dnat().verdict(Verdict::Accept),
        RuleBuilder::new().counter("forward_dropped").verdict(Verdict::Drop),
    ];
    let mut chains = filter_chains(f, inputs, input_uplink, forward_uplink);

    let mut forwards = Vec::new();
    for pf in inputs.forwardings {
        for proto in &pf.protos {
            let mut r = RuleBuilder::new();
            // Only traffic for the router's own (uplink) addresses: not loopback,
            // not the LAN address, whatever address the uplink has right now.
            r.addr(false, Cidr { addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), len: 8 }, false);
            if let Some(lan) = inputs.lan_v4 {
                r.addr(false, lan.network(), false);
            }
            r.fib_daddr_local().dport(*proto, pf.ports).dnat(pf.dest_addr, pf.dest_ports);
            forwards.push(r.build());
        }
    }
    chains.push(base(
        "prerouting",
        ChainType::Nat,
        Hook::Prerouting,
        -100,
        vec![RuleBuilder::new().verdict(Verdict::Jump("portforwardings".into()))],
    ));
    chains.push(regular("portforwardings", forwards));
    chains.push(base(
        "postrouting",
        ChainType::Nat,
        Hook::Postrouting,
        100,
        vec![
            RuleBuilder::new().oifname(inputs.uplink).masquerade().build(),
            // Hairpin: a LAN host reaching a forwarded port through the public
            // address must see the reply come from the router, not the server.
            RuleBuilder::new().iifname(inputs.lan).oifname(inputs.lan).ct_status_dnat().masquerade().build(),
        ],
    ));
    Table { family: f, name: TABLE.into(), counters: COUNTERS.map(String::from).to_vec(), chains }
}

fn ipv6_table(inputs: &FirewallInputs<'_>) -> Table {
    let f = Family::Ip6;
    let ll = link_local();
    // DHCPv6 replies come from the server's link-local address (RFC 8415 §7.2… answers
    // to our multicast Solicit cannot be matched by conntrack).
    let mut input_uplink = vec![RuleBuilder::new().addr(true, ll, true).udp_ports(547, 546).verdict(Verdict::Accept)];
    // RFC 4890 §4.4.1: error messages the router needs.
    for t in [1, 2, 3, 4] {
        input_uplink.push(RuleBuilder::new().icmp_type(f, t).verdict(Verdict::Accept));
    }
    input_uplink
        .push(RuleBuilder::new().icmp_type(f, 128).limit(ECHO_RATE_PER_SECOND, ECHO_BURST).verdict(Verdict::Accept));
    // RFC 4861: router solicitation/advertisement and redirect come from
    // link-local addresses with hop limit 255 (so never from off-link).
    for t in [133, 134, 137] {
        input_uplink
            .push(RuleBuilder::new().icmp_type(f, t).hoplimit(255).addr(true, ll, true).verdict(Verdict::Accept));
    }
    // Neighbour solicitations and advertisements: hop limit 255 proves they are
    // on-link; their source may be unspecified (DAD, RFC 4862 §5.4) or global.
    for t in [135, 136] {
        input_uplink.push(RuleBuilder::new().icmp_type(f, t).hoplimit(255).verdict(Verdict::Accept));
    }
    // MLD (RFC 3810 §5: link-local sources) for multicast on the uplink.
    for t in [130, 131, 132, 143] {
        input_uplink.push(RuleBuilder::new().icmp_type(f, t).addr(true, ll, true).verdict(Verdict::Accept));
    }
    input_uplink.extend(openings(f, inputs.config));
    input_uplink.push(RuleBuilder::new().counter("input_dropped").verdict(Verdict::Drop));

    // RFC 4890 §4.3.1: errors that must not be dropped in transit (conntrack also
    // lets the related ones through) and echo requests, rate limited.
    let mut forward_uplink = Vec::new();
    for t in [1, 2, 3, 4] {
        forward_uplink.push(RuleBuilder::new().icmp_type(f, t).verdict(Verdict::Accept));
    }
    forward_uplink
        .push(RuleBuilder::new().icmp_type(f, 128).limit(ECHO_RATE_PER_SECOND, ECHO_BURST).verdict(Verdict::Accept));
    for o in &inputs.config.forward6 {
        forward_uplink
            .push(RuleBuilder::new().addr(false, o.dest, true).dport(o.proto, o.ports).verdict(Verdict::Accept));
    }
    forward_uplink.push(RuleBuilder::new().counter("forward_dropped").verdict(Verdict::Drop));
    let chains = filter_chains(f, inputs, input_uplink, forward_uplink);
    Table { family: f, name: TABLE.into(), counters: COUNTERS.map(String::from).to_vec(), chains }
}

/// The two tables: `ip router7` and `ip6 router7`.
#[must_use]
pub fn build(inputs: &FirewallInputs<'_>) -> Vec<Table> {
    vec![ipv4_table(inputs), ipv6_table(inputs)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks_cover_partial_bytes() {
        assert_eq!(prefix_mask(10, 4), [0xff, 0xc0, 0, 0]);
        assert_eq!(prefix_mask(24, 4), [0xff, 0xff, 0xff, 0]);
        assert_eq!(prefix_mask(0, 2), [0, 0]);
    }

    #[test]
    fn interface_names_are_padded_to_ifnamsiz() {
        // nft --debug=netlink: cmp eq reg 1 0x696c7075 0x00306b6e 0x00000000 0x00000000
        assert_eq!(ifname_bytes("uplink0"), b"uplink0\0\0\0\0\0\0\0\0\0");
    }

    #[test]
    fn port_ranges_use_two_comparisons_in_network_order() {
        let rule = RuleBuilder::new().dport(Proto::Udp, PortRange { min: 1000, max: 2000 }).verdict(Verdict::Accept);
        assert_eq!(rule.text, "udp dport 1000-2000 accept");
        // As nft --debug=netlink shows it: cmp gte reg 1 0x0000e803, cmp lte reg 1 0x0000d007.
        assert!(rule.exprs.contains(&Expr::Cmp { sreg: REG1, op: CmpOp::Gte, data: vec![0x03, 0xe8] }));
        assert!(rule.exprs.contains(&Expr::Cmp { sreg: REG1, op: CmpOp::Lte, data: vec![0x07, 0xd0] }));
    }

    #[test]
    fn dnat_of_a_range_uses_three_registers() {
        let rule = RuleBuilder::new().dnat(Ipv4Addr::new(192, 168, 42, 99), PortRange { min: 8040, max: 8060 }).build();
        assert_eq!(rule.text, "dnat to 192.168.42.99:8040-8060");
        assert_eq!(
            rule.exprs.last(),
            Some(&Expr::Dnat { family: Family::Ip, addr: REG1, proto_min: REG2, proto_max: REG3 })
        );
        assert_eq!(rule.exprs[0], Expr::ImmediateData { dreg: REG1, data: vec![192, 168, 42, 99] });
    }
}
