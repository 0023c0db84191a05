//! The nftables ruleset as data.
//!
//! A [`Table`] holds named counters and chains of [`Rule`]s; a rule is a list
//! of kernel expressions ([`Expr`]) plus the line `nft list ruleset` prints for
//! it, so the ruleset can be reviewed (and golden-tested) as text while the
//! kernel receives exactly the expressions. [`wire`] encodes tables as one
//! atomic nfnetlink batch; [`dump`] reads the kernel's answers (tables, rules,
//! counters).

use std::fmt::Write as _;

pub mod dump;
pub mod wire;

pub use dump::{DumpEntry, parse_comment_udata, parse_entry};
pub use wire::{Message, encode_batch, encode_dump, replace_tables};

/// The nfnetlink subsystem of nftables.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// Starts an atomic batch.
pub const NFNL_MSG_BATCH_BEGIN: u16 = 16;
/// Commits an atomic batch.
pub const NFNL_MSG_BATCH_END: u16 = 17;

/// nftables message types (`enum nf_tables_msg_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum MsgType {
    /// NFT_MSG_NEWTABLE
    NewTable = 0,
    /// NFT_MSG_GETTABLE
    GetTable = 1,
    /// NFT_MSG_DELTABLE
    DelTable = 2,
    /// NFT_MSG_NEWCHAIN
    NewChain = 3,
    /// NFT_MSG_NEWRULE
    NewRule = 6,
    /// NFT_MSG_GETRULE
    GetRule = 7,
    /// NFT_MSG_NEWOBJ
    NewObj = 18,
    /// NFT_MSG_GETOBJ
    GetObj = 19,
}

impl MsgType {
    /// The netlink message type: subsystem in the high byte.
    #[must_use]
    pub fn nlmsg_type(self) -> u16 {
        (NFNL_SUBSYS_NFTABLES << 8) | self as u16
    }
}

/// An address family of nftables (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `ip`
    Ip,
    /// `ip6`
    Ip6,
}

impl Family {
    /// NFPROTO_IPV4 / NFPROTO_IPV6.
    #[must_use]
    pub fn nfproto(self) -> u8 {
        match self {
            Self::Ip => 2,
            Self::Ip6 => 10,
        }
    }

    /// The name nft uses.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Ip6 => "ip6",
        }
    }

    /// The label netconfigd's metrics use.
    #[must_use]
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Ip => "ipv4",
            Self::Ip6 => "ipv6",
        }
    }
}

/// A 128-bit register of the nftables VM (NFT_REG_1 …); register 0 is the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u32);

/// The first data register.
pub const REG1: Reg = Reg(1);
/// The second data register.
pub const REG2: Reg = Reg(2);
/// The third data register.
pub const REG3: Reg = Reg(3);

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// NF_ACCEPT
    Accept,
    /// NF_DROP
    Drop,
    /// NFT_JUMP to a chain of the same table.
    Jump(String),
    /// NFT_RETURN
    Return,
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Self::Drop => 0,
            Self::Accept => 1,
            Self::Jump(_) => -3,
            Self::Return => -5,
        }
    }

    /// How nft prints it.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::Accept => "accept".into(),
            Self::Drop => "drop".into(),
            Self::Jump(c) => format!("jump {c}"),
            Self::Return => "return".into(),
        }
    }
}

/// `meta` keys (`enum nft_meta_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// NFT_META_IIFNAME
    IifName = 6,
    /// NFT_META_OIFNAME
    OifName = 7,
    /// NFT_META_L4PROTO
    L4Proto = 16,
}

/// Comparison operators (`enum nft_cmp_ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// NFT_CMP_EQ
    Eq = 0,
    /// NFT_CMP_NEQ
    Neq = 1,
    /// NFT_CMP_LTE
    Lte = 3,
    /// NFT_CMP_GTE
    Gte = 5,
}

/// Where a payload load starts (`enum nft_payload_bases`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadBase {
    /// NFT_PAYLOAD_NETWORK_HEADER
    Network = 1,
    /// NFT_PAYLOAD_TRANSPORT_HEADER
    Transport = 2,
}

/// Conntrack keys (`enum nft_ct_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKey {
    /// NFT_CT_STATE
    State = 0,
    /// NFT_CT_STATUS
    Status = 2,
}

/// One kernel expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Loads packet metadata into `dreg`.
    Meta {
        /// What.
        key: MetaKey,
        /// Where to.
        dreg: Reg,
    },
    /// Compares `sreg` with `data`; a mismatch ends the rule.
    Cmp {
        /// The register.
        sreg: Reg,
        /// The operator.
        op: CmpOp,
        /// The value, in the register's byte order.
        data: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor`.
    Bitwise {
        /// Source.
        sreg: Reg,
        /// Destination.
        dreg: Reg,
        /// Mask, as long as the operands.
        mask: Vec<u8>,
        /// Xor, as long as the operands.
        xor: Vec<u8>,
    },
    /// Loads `len` bytes at `offset` from a header.
    Payload {
        /// Which header.
        base: PayloadBase,
        /// Byte offset.
        offset: u32,
        /// Byte count.
        len: u32,
        /// Where to.
        dreg: Reg,
    },
    /// Loads conntrack state or status bits.
    Ct {
        /// What.
        key: CtKey,
        /// Where to.
        dreg: Reg,
    },
    /// Sets a register to a value.
    ImmediateData {
        /// The register.
        dreg: Reg,
        /// The value.
        data: Vec<u8>,
    },
    /// Sets the verdict.
    Verdict(Verdict),
    /// Counts into the named counter object of the table (objref).
    Counter(String),
    /// Matches while under `rate` packets per `per_seconds` (burst `burst`).
    Limit {
        /// Packets.
        rate: u64,
        /// Per this many seconds.
        per_seconds: u64,
        /// Extra packets allowed in a burst.
        burst: u32,
    },
    /// Destination NAT to the address in `addr` and the ports in `proto_min..=proto_max`.
    Dnat {
        /// The family of the address.
        family: Family,
        /// Register holding the address.
        addr: Reg,
        /// Register holding the lowest port.
        proto_min: Reg,
        /// Register holding the highest port.
        proto_max: Reg,
    },
    /// Source NAT to the outgoing interface's address.
    Masquerade,
    /// `fib daddr type` into `dreg`.
    FibDaddrType {
        /// Where to.
        dreg: Reg,
    },
    /// `rt mtu`: the TCP MSS that fits the route's MTU, into `dreg`.
    RtTcpMss {
        /// Where to.
        dreg: Reg,
    },
    /// Host to network byte order of one 2-byte value in place.
    Hton16 {
        /// The register.
        reg: Reg,
    },
    /// Writes the register into the TCP MSS option (the kernel only ever lowers it).
    SetTcpMss {
        /// The register.
        sreg: Reg,
    },
}

/// A rule: expressions plus how nft lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What the kernel runs.
    pub exprs: Vec<Expr>,
    /// What `nft list ruleset` prints for it.
    pub text: String,
}

/// Chain types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    /// `filter`
    Filter,
    /// `nat`
    Nat,
}

/// Netfilter hooks (`enum nf_inet_hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// NF_INET_PRE_ROUTING
    Prerouting = 0,
    /// NF_INET_LOCAL_IN
    Input = 1,
    /// NF_INET_FORWARD
    Forward = 2,
    /// NF_INET_LOCAL_OUT
    Output = 3,
    /// NF_INET_POST_ROUTING
    Postrouting = 4,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Self::Prerouting => "prerouting",
            Self::Input => "input",
            Self::Forward => "forward",
            Self::Output => "output",
            Self::Postrouting => "postrouting",
        }
    }
}

/// Where a base chain attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    /// Filter or NAT.
    pub kind: ChainType,
    /// The hook.
    pub hook: Hook,
    /// Priority (dstnat = -100, filter = 0, srcnat = 100).
    pub priority: i32,
    /// What happens to packets no rule decided on.
    pub policy: Verdict,
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// Set for base chains.
    pub base: Option<BaseChain>,
    /// Its rules, in order.
    pub rules: Vec<Rule>,
}

/// A named counter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterValue {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
}

/// A table of netconfigd's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Its family.
    pub family: Family,
    /// Its name.
    pub name: String,
    /// Names of its counter objects.
    pub counters: Vec<String>,
    /// Its chains, regular chains before the base chains that jump to them.
    pub chains: Vec<Chain>,
}

fn priority_name(kind: ChainType, hook: Hook, p: i32) -> String {
    match (kind, hook, p) {
        (ChainType::Filter, _, 0) => "filter".into(),
        (ChainType::Nat, Hook::Prerouting, -100) => "dstnat".into(),
        (ChainType::Nat, Hook::Postrouting, 100) => "srcnat".into(),
        _ => p.to_string(),
    }
}

impl Table {
    /// A content fingerprint (FNV-1a over the encoded counters, chains and
    /// rules): equal fingerprints mean equal rulesets, so an apply whose table
    /// carries the fingerprint it would write has nothing to do.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for msg in wire::table_messages(self, &std::collections::BTreeMap::new()) {
            feed(&msg.kind.nlmsg_type().to_be_bytes());
            feed(&msg.attrs);
        }
        format!("{hash:016x}")
    }

    /// The comment stored in the table (shown by `nft list`), carrying the fingerprint.
    #[must_use]
    pub fn comment(&self) -> String {
        format!("managed by netconfigd; fingerprint {}", self.fingerprint())
    }

    /// Number of rules in all chains.
    #[must_use]
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    /// The table as `nft list table` prints it, counters at `values` (zero if absent).
    #[must_use]
    pub fn render(&self, values: &std::collections::BTreeMap<String, CounterValue>) -> String {
        let mut out = format!("table {} {} {{\n\tcomment \"{}\"\n", self.family.name(), self.name, self.comment());
        let mut first = true;
        for c in &self.counters {
            if !first {
                out.push('\n');
            }
            first = false;
            let v = values.get(c).copied().unwrap_or_default();
            let _ = write!(out, "\tcounter {c} {{\n\t\tpackets {} bytes {}\n\t}}\n", v.packets, v.bytes);
        }
        for chain in &self.chains {
            if !first {
                out.push('\n');
            }
            first = false;
            let _ = writeln!(out, "\tchain {} {{", chain.name);
            if let Some(b) = &chain.base {
                let kind = match b.kind {
                    ChainType::Filter => "filter",
                    ChainType::Nat => "nat",
                };
                let _ = writeln!(
                    out,
                    "\t\ttype {kind} hook {} priority {}; policy {};",
                    b.hook.name(),
                    priority_name(b.kind, b.hook, b.priority),
                    b.policy.text()
                );
            }
            for r in &chain.rules {
                let _ = writeln!(out, "\t\t{}", r.text);
            }
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
        out
    }
}

/// Counter values by `(family, table, counter name)`.
pub type CounterValues = std::collections::BTreeMap<(Family, String, String), CounterValue>;
