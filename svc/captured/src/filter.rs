//! The classic BPF program attached to captured's `SOCK_RAW` packet sockets:
//! it keeps the configuration traffic of a router and drops the rest in the
//! kernel, so a busy uplink costs nothing.
//!
//! Kept (router7's `icmp6 or (udp and (port 67 or port 68 or port 546 or port 547))`, plus ARP):
//!
//! | what | how it is recognised |
//! |---|---|
//! | ARP | ethertype 0x0806 |
//! | DHCPv4 | IPv4, UDP, source or destination port 67 or 68; first fragments only |
//! | DHCPv6 | IPv6, next header UDP, source or destination port 546 or 547 |
//! | ICMPv6 (all of it: RS, RA, NS, NA, redirects, echo, errors) | next header 58, or a hop-by-hop options header (next header 0) followed by 58 — MLD reports carry the router-alert option (RFC 2711) in one |
//! | extra ports from `config.json` | UDP or TCP, either direction, over IPv4 (first fragments) and IPv6 (no extension headers) |
//!
//! Not recognised, by design: IPv6 UDP or TCP behind extension headers, and
//! ICMPv6 behind any extension header other than one hop-by-hop header (the
//! configuration protocols do not use them). Frames arrive with their Ethernet
//! header (offset 14 is the network header).

use std::fmt;

use runtime::bpf::{ACCEPT_ALL, AssembleError, Assembler, SockFilter, Target};

const ETHERTYPE: u32 = 12;
const NET: u32 = 14;
const ARP: u32 = 0x0806;
const IPV4: u32 = 0x0800;
const IPV6: u32 = 0x86dd;
const UDP: u32 = 17;
const TCP: u32 = 6;
const ICMPV6: u32 = 58;
const HOP_BY_HOP: u32 = 0;
/// IPv4: flags and fragment offset; IPv6: the byte after the fixed header.
const IPV4_FRAGMENT: u32 = NET + 6;
const IPV4_PROTOCOL: u32 = NET + 9;
const IPV6_NEXT_HEADER: u32 = NET + 6;
const IPV6_PAYLOAD: u32 = NET + 40;

/// DHCPv4 server and client ports.
pub const DHCP4_PORTS: [u16; 2] = [67, 68];
/// DHCPv6 client and server ports.
pub const DHCP6_PORTS: [u16; 2] = [546, 547];
/// At most this many extra ports per protocol: the program's forward jumps
/// must stay within 255 instructions.
pub const MAX_EXTRA_PORTS: usize = 16;

/// What to keep besides the fixed set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// More UDP ports (either direction).
    pub udp_ports: Vec<u16>,
    /// TCP ports (either direction).
    pub tcp_ports: Vec<u16>,
}

/// `A` holds a port: accept when it is one of `ports`, else fall through.
fn match_ports(mut asm: Assembler, ports: &[u16], accept: &'static str) -> Assembler {
    for &p in ports {
        asm = asm.jeq(u32::from(p), Target::Label(accept), Target::Next);
    }
    asm
}

/// Both ports of a transport header: `load` loads source (`off`) or destination (`off + 2`).
fn either_port(
    asm: Assembler,
    ports: &[u16],
    load: impl Fn(Assembler, u32) -> Assembler,
    off: u32,
    accept: &'static str,
    drop: &'static str,
) -> Assembler {
    let asm = match_ports(load(asm, off), ports, accept);
    let asm = match_ports(load(asm, off + 2), ports, accept);
    asm.ja_label(drop)
}

/// Jumps unconditionally (classic BPF has `ja`, but a `jeq` whose both
/// targets are the label does the same with the instructions we have).
trait Always {
    fn ja_label(self, label: &'static str) -> Self;
}

impl Always for Assembler {
    fn ja_label(self, label: &'static str) -> Self {
        self.jeq(0, Target::Label(label), Target::Label(label))
    }
}

/// Why no program was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// More than [`MAX_EXTRA_PORTS`] extra ports of one protocol.
    TooManyPorts,
    /// The assembler refused (a bug: the port limit keeps jumps in range).
    Assemble(AssembleError),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyPorts => write!(f, "at most {MAX_EXTRA_PORTS} extra ports per protocol"),
            Self::Assemble(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FilterError {}

/// The program: see the module docs. Fails only if `extra` has more than
/// [`MAX_EXTRA_PORTS`] ports of a protocol.
pub fn program(extra: &Extra) -> Result<Vec<SockFilter>, FilterError> {
    if extra.udp_ports.len() > MAX_EXTRA_PORTS || extra.tcp_ports.len() > MAX_EXTRA_PORTS {
        return Err(FilterError::TooManyPorts);
    }
    let udp4: Vec<u16> = DHCP4_PORTS.iter().chain(&extra.udp_ports).copied().collect();
    let udp6: Vec<u16> = DHCP6_PORTS.iter().chain(&extra.udp_ports).copied().collect();
    let tcp = &extra.tcp_ports;
    let ind = |a: Assembler, k: u32| a.ld_h_ind(k);
    let abs = |a: Assembler, k: u32| a.ld_h(k);

    let mut asm = Assembler::new()
        .ld_h(ETHERTYPE)
        .jeq(ARP, Target::Next, Target::Label("not_arp"))
        .ret(ACCEPT_ALL)
        .label("not_arp")
        .jeq(IPV4, Target::Next, Target::Label("ipv6"))
        // IPv4: only first fragments carry the transport header.
        .ld_h(IPV4_FRAGMENT)
        .jset(0x1fff, Target::Label("drop4"), Target::Next)
        .ld_b(IPV4_PROTOCOL);
    asm = if tcp.is_empty() {
        asm.jeq(UDP, Target::Next, Target::Label("drop4"))
    } else {
        asm.jeq(UDP, Target::Next, Target::Label("tcp4"))
    };
    asm = asm.ldx_ipv4_header_len(NET);
    asm = either_port(asm, &udp4, ind, NET, "accept4", "drop4");
    if !tcp.is_empty() {
        asm = asm.label("tcp4").jeq(TCP, Target::Next, Target::Label("drop4")).ldx_ipv4_header_len(NET);
        asm = either_port(asm, tcp, ind, NET, "accept4", "drop4");
    }
    asm = asm.label("accept4").ret(ACCEPT_ALL).label("drop4").ret(0);

    asm = asm
        .label("ipv6")
        .jeq(IPV6, Target::Next, Target::Label("drop6"))
        .ld_b(IPV6_NEXT_HEADER)
        .jeq(ICMPV6, Target::Label("accept6"), Target::Next)
        .jeq(HOP_BY_HOP, Target::Next, Target::Label("transport6"))
        // The hop-by-hop header's own next-header byte is its first.
        .ld_b(IPV6_PAYLOAD)
        .jeq(ICMPV6, Target::Label("accept6"), Target::Label("drop6"))
        .label("transport6");
    asm = if tcp.is_empty() {
        asm.jeq(UDP, Target::Next, Target::Label("drop6"))
    } else {
        asm.jeq(UDP, Target::Next, Target::Label("tcp6"))
    };
    asm = either_port(asm, &udp6, abs, IPV6_PAYLOAD, "accept6", "drop6");
    if !tcp.is_empty() {
        asm = asm.label("tcp6").jeq(TCP, Target::Next, Target::Label("drop6"));
        asm = either_port(asm, tcp, abs, IPV6_PAYLOAD, "accept6", "drop6");
    }
    asm.label("accept6").ret(ACCEPT_ALL).label("drop6").ret(0).finish().map_err(FilterError::Assemble)
}

#[cfg(test)]
mod tests;
