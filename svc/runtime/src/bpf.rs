//! Classic BPF programs for packet sockets: a small assembler with labels, the
//! programs our services attach, and an interpreter for exactly the instructions
//! the assembler emits, so filters are unit-tested on real frames without root.

use std::collections::HashMap;
use std::fmt;

pub use crate::sys::SockFilter;

const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const LDX_B_MSH: u16 = 0xb1;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const AND_K: u16 = 0x54;

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The next instruction.
    Next,
    /// A label defined later with [`Assembler::label`].
    Label(&'static str),
}

#[derive(Debug, Clone)]
enum Item {
    Insn { code: u16, k: u32, jt: Target, jf: Target },
    Label(&'static str),
}

/// A program that could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembleError(String);

impl fmt::Display for AssembleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BPF: {}", self.0)
    }
}

impl std::error::Error for AssembleError {}

/// Builds a program; jumps name labels, resolved (forward only) by [`Assembler::finish`].
#[derive(Debug, Default, Clone)]
pub struct Assembler {
    items: Vec<Item>,
}

impl Assembler {
    /// An empty program.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn op(mut self, code: u16, k: u32, jt: Target, jf: Target) -> Self {
        self.items.push(Item::Insn { code, k, jt, jf });
        self
    }

    /// `A = packet[k..k+4]` (big-endian).
    #[must_use]
    pub fn ld_w(self, k: u32) -> Self {
        self.op(LD_W_ABS, k, Target::Next, Target::Next)
    }
    /// `A = packet[k..k+2]` (big-endian).
    #[must_use]
    pub fn ld_h(self, k: u32) -> Self {
        self.op(LD_H_ABS, k, Target::Next, Target::Next)
    }
    /// `A = packet[k]`.
    #[must_use]
    pub fn ld_b(self, k: u32) -> Self {
        self.op(LD_B_ABS, k, Target::Next, Target::Next)
    }
    /// `A = packet[X+k..X+k+2]`.
    #[must_use]
    pub fn ld_h_ind(self, k: u32) -> Self {
        self.op(LD_H_IND, k, Target::Next, Target::Next)
    }
    /// `A = packet[X+k]`.
    #[must_use]
    pub fn ld_b_ind(self, k: u32) -> Self {
        self.op(LD_B_IND, k, Target::Next, Target::Next)
    }
    /// `X = 4 * (packet[k] & 0xf)` (the IPv4 header length).
    #[must_use]
    pub fn ldx_ipv4_header_len(self, k: u32) -> Self {
        self.op(LDX_B_MSH, k, Target::Next, Target::Next)
    }
    /// `A &= k`.
    #[must_use]
    pub fn and(self, k: u32) -> Self {
        self.op(AND_K, k, Target::Next, Target::Next)
    }
    /// `if A == k goto jt else goto jf`.
    #[must_use]
    pub fn jeq(self, k: u32, jt: Target, jf: Target) -> Self {
        self.op(JEQ_K, k, jt, jf)
    }
    /// `if A >= k goto jt else goto jf`.
    #[must_use]
    pub fn jge(self, k: u32, jt: Target, jf: Target) -> Self {
        self.op(JGE_K, k, jt, jf)
    }
    /// `if A & k != 0 goto jt else goto jf`.
    #[must_use]
    pub fn jset(self, k: u32, jt: Target, jf: Target) -> Self {
        self.op(JSET_K, k, jt, jf)
    }
    /// Accept `k` bytes of the packet (0 = drop).
    #[must_use]
    pub fn ret(self, k: u32) -> Self {
        self.op(RET_K, k, Target::Next, Target::Next)
    }
    /// Defines a label at the next instruction.
    #[must_use]
    pub fn label(mut self, name: &'static str) -> Self {
        self.items.push(Item::Label(name));
        self
    }

    /// Resolves labels into relative jumps.
    pub fn finish(self) -> Result<Vec<SockFilter>, AssembleError> {
        let mut labels: HashMap<&'static str, usize> = HashMap::new();
        let mut pc = 0usize;
        for item in &self.items {
            match item {
                Item::Label(name) => {
                    if labels.insert(name, pc).is_some() {
                        return Err(AssembleError(format!("label {name} defined twice")));
                    }
                }
                Item::Insn { .. } => pc += 1,
            }
        }
        let mut out = Vec::with_capacity(pc);
        for item in &self.items {
            let Item::Insn { code, k, jt, jf } = item else {
                continue;
            };
            let here = out.len();
            let offset = |t: &Target| -> Result<u8, AssembleError> {
                match t {
                    Target::Next => Ok(0),
                    Target::Label(name) => {
                        let at = *labels.get(name).ok_or_else(|| AssembleError(format!("undefined label {name}")))?;
                        let rel = at
                            .checked_sub(here + 1)
                            .ok_or_else(|| AssembleError(format!("backward jump to {name}")))?;
                        u8::try_from(rel).map_err(|_| AssembleError(format!("jump to {name} too far")))
                    }
                }
            };
            out.push(SockFilter { code: *code, jt: offset(jt)?, jf: offset(jf)?, k: *k });
        }
        if !matches!(out.last(), Some(SockFilter { code: RET_K, .. })) {
            return Err(AssembleError("program must end in ret".into()));
        }
        Ok(out)
    }
}

/// Runs a program on a packet the way the kernel does for the instructions the
/// [`Assembler`] emits: returns the accepted length (0 = dropped). A load past
/// the end of the packet drops it, as in the kernel.
#[must_use]
pub fn run(program: &[SockFilter], packet: &[u8]) -> u32 {
    let load = |at: usize, n: usize| -> Option<u32> {
        let bytes = packet.get(at..at.checked_add(n)?)?;
        Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
    };
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    while let Some(insn) = program.get(pc) {
        let k = insn.k as usize;
        pc += 1;
        let loaded = match insn.code {
            LD_W_ABS => load(k, 4),
            LD_H_ABS => load(k, 2),
            LD_B_ABS => load(k, 1),
            LD_H_IND => load(x as usize + k, 2),
            LD_B_IND => load(x as usize + k, 1),
            LDX_B_MSH => {
                let Some(b) = load(k, 1) else { return 0 };
                x = 4 * (b & 0xf);
                continue;
            }
            JEQ_K | JGE_K | JSET_K => {
                let taken = match insn.code {
                    JEQ_K => a == insn.k,
                    JGE_K => a >= insn.k,
                    _ => a & insn.k != 0,
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
                continue;
            }
            AND_K => {
                a &= insn.k;
                continue;
            }
            RET_K => return insn.k,
            _ => return 0,
        };
        match loaded {
            Some(v) => a = v,
            None => return 0,
        }
    }
    0
}

/// Where the network header starts in what the socket sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `SOCK_DGRAM` packet socket: the packet starts at the IP header.
    Cooked,
    /// `SOCK_RAW` packet socket: a 14-byte Ethernet header comes first.
    Ethernet,
}

/// How many bytes of a packet to keep: all of them, for any size we handle.
pub const ACCEPT_ALL: u32 = 0x0004_0000;

/// Accepts unfragmented IPv4 UDP datagrams to `port` (DHCP's 67 or 68).
pub fn ipv4_udp_to_port(link: Link, port: u16) -> Result<Vec<SockFilter>, AssembleError> {
    let ip = match link {
        Link::Cooked => 0,
        Link::Ethernet => 14,
    };
    let mut asm = Assembler::new();
    if link == Link::Ethernet {
        asm = asm.ld_h(12).jeq(0x0800, Target::Next, Target::Label("drop"));
    }
    asm.ld_b(ip)
        .and(0xf0)
        .jeq(0x40, Target::Next, Target::Label("drop"))
        .ld_b(ip + 9)
        .jeq(17, Target::Next, Target::Label("drop"))
        .ld_h(ip + 6)
        .jset(0x1fff, Target::Label("drop"), Target::Next)
        .ldx_ipv4_header_len(ip)
        .ld_h_ind(ip + 2)
        .jeq(u32::from(port), Target::Next, Target::Label("drop"))
        .ret(ACCEPT_ALL)
        .label("drop")
        .ret(0)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn udp_frame(dport: u16) -> Vec<u8> {
        crate::frame::build_udp4_ethernet(
            [2, 0, 0, 0, 0, 1],
            [0xff; 6],
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            SocketAddrV4::new(Ipv4Addr::BROADCAST, dport),
            64,
            b"payload",
        )
    }

    #[test]
    fn ipv4_udp_filter_accepts_only_the_port() {
        let eth = ipv4_udp_to_port(Link::Ethernet, 67).unwrap();
        let cooked = ipv4_udp_to_port(Link::Cooked, 67).unwrap();
        let frame = udp_frame(67);
        assert_eq!(run(&eth, &frame), ACCEPT_ALL);
        assert_eq!(run(&cooked, &frame[14..]), ACCEPT_ALL);
        assert_eq!(run(&eth, &udp_frame(68)), 0);
        assert_eq!(run(&cooked, &udp_frame(68)[14..]), 0);
        // Ethernet framing given to the cooked program (and vice versa) is rejected.
        assert_eq!(run(&eth, &frame[14..]), 0);
        assert_eq!(run(&cooked, &frame), 0);
        let mut v6 = frame[14..].to_vec();
        v6[0] = 0x65;
        assert_eq!(run(&cooked, &v6), 0, "not IPv4");
        // Truncated packets are dropped, never read out of bounds.
        for len in 0..frame.len().min(36) {
            assert_eq!(run(&eth, &frame[..len]), 0, "len {len}");
        }
    }

    #[test]
    fn ipv4_udp_filter_drops_tcp_arp_and_fragments() {
        let eth = ipv4_udp_to_port(Link::Ethernet, 67).unwrap();
        let mut tcp = udp_frame(67);
        tcp[14 + 9] = 6;
        assert_eq!(run(&eth, &tcp), 0);
        let mut arp = udp_frame(67);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(&eth, &arp), 0);
        let mut frag = udp_frame(67);
        frag[14 + 6] = 0x00;
        frag[14 + 7] = 0x10; // fragment offset 16
        assert_eq!(run(&eth, &frag), 0);
    }

    #[test]
    fn assembler_rejects_bad_programs() {
        assert!(Assembler::new().jeq(1, Target::Label("x"), Target::Next).ret(0).finish().is_err());
        assert!(Assembler::new().ld_b(0).finish().is_err(), "must end in ret");
        assert!(Assembler::new().label("a").label("a").ret(0).finish().is_err());
        let far = (0..300).fold(Assembler::new().jeq(1, Target::Label("end"), Target::Next), |a, _| a.ld_b(0));
        assert!(far.label("end").ret(0).finish().is_err());
    }
}
