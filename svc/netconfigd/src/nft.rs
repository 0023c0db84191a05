//! The nftables ruleset as data, and its nfnetlink encoding.
//!
//! A [`Table`] holds named counters and chains of [`Rule`]s; a rule is a list
//! of kernel expressions ([`Expr`]) plus the line `nft list ruleset` prints for
//! it, so the ruleset can be reviewed (and golden-tested) as text while the
//! kernel receives exactly the expressions. [`batch`] turns tables into one
//! nfnetlink batch that the kernel commits atomically (all or nothing): for each
//! table "add (so it exists), delete, add again", then counters, chains, rules.
//!
//! Only the expressions netconfigd needs are encoded (payload, meta, cmp,
//! bitwise, ct, immediate/verdicts, objref counters, limit, nat, masq, fib, rt,
//! byteorder, exthdr write), after `linux/netfilter/nf_tables.h`. Replies
//! (counter, table and rule dumps) are decoded with `netlink-packet-core`'s
//! attribute iterator.

use std::fmt::Write as _;

use netlink_packet_core::{NlaBuffer, NlasIterator};

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
        for msg in self.content_messages(&std::collections::BTreeMap::new()) {
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

    fn content_messages(&self, values: &std::collections::BTreeMap<String, CounterValue>) -> Vec<Message> {
        let mut msgs = Vec::new();
        for c in &self.counters {
            let v = values.get(c).copied().unwrap_or_default();
            let mut a = Attrs::default();
            a.str(NFTA_OBJ_TABLE, &self.name);
            a.str(NFTA_OBJ_NAME, c);
            a.u32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
            a.nest(NFTA_OBJ_DATA, |d| {
                d.u64(NFTA_COUNTER_BYTES, v.bytes);
                d.u64(NFTA_COUNTER_PACKETS, v.packets);
            });
            msgs.push(Message::create(MsgType::NewObj, self.family, a));
        }
        // Chains first (a jump needs its target to exist), then the rules.
        for chain in &self.chains {
            let mut a = Attrs::default();
            a.str(NFTA_CHAIN_TABLE, &self.name);
            a.str(NFTA_CHAIN_NAME, &chain.name);
            if let Some(b) = &chain.base {
                a.nest(NFTA_CHAIN_HOOK, |h| {
                    h.u32(NFTA_HOOK_HOOKNUM, b.hook as u32);
                    h.u32(NFTA_HOOK_PRIORITY, b.priority.cast_unsigned());
                });
                a.u32(NFTA_CHAIN_POLICY, b.policy.code().cast_unsigned());
                a.str(
                    NFTA_CHAIN_TYPE,
                    match b.kind {
                        ChainType::Filter => "filter",
                        ChainType::Nat => "nat",
                    },
                );
            }
            msgs.push(Message::create(MsgType::NewChain, self.family, a));
        }
        for chain in &self.chains {
            for rule in &chain.rules {
                let mut a = Attrs::default();
                a.str(NFTA_RULE_TABLE, &self.name);
                a.str(NFTA_RULE_CHAIN, &chain.name);
                a.nest(NFTA_RULE_EXPRESSIONS, |list| {
                    for e in &rule.exprs {
                        list.nest(NFTA_LIST_ELEM, |elem| encode_expr(elem, e));
                    }
                });
                let mut m = Message::create(MsgType::NewRule, self.family, a);
                m.flags |= NLM_F_APPEND;
                msgs.push(m);
            }
        }
        msgs
    }
}

/// One nftables request of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What it does.
    pub kind: MsgType,
    /// The family in its nfgenmsg header.
    pub family: Family,
    /// Netlink flags beyond NLM_F_REQUEST | NLM_F_ACK.
    pub flags: u16,
    /// Its attributes.
    pub attrs: Vec<u8>,
}

/// NLM_F_REQUEST
pub const NLM_F_REQUEST: u16 = 0x1;
/// NLM_F_ACK
pub const NLM_F_ACK: u16 = 0x4;
/// NLM_F_DUMP
pub const NLM_F_DUMP: u16 = 0x300;
/// NLM_F_CREATE
pub const NLM_F_CREATE: u16 = 0x400;
/// NLM_F_APPEND
pub const NLM_F_APPEND: u16 = 0x800;

impl Message {
    fn create(kind: MsgType, family: Family, attrs: Attrs) -> Self {
        Self { kind, family, flags: NLM_F_CREATE, attrs: attrs.0 }
    }
}

/// The messages that replace `tables` atomically, with counters at `values`
/// (keyed by `(family, table, counter)`). For each table: create it (so the
/// delete cannot fail), delete it with everything in it, create it again with
/// its fingerprint comment, then its counters, chains and rules. Other tables
/// are never touched.
#[must_use]
pub fn replace_tables(tables: &[&Table], values: &CounterValues) -> Vec<Message> {
    let mut msgs = Vec::new();
    for t in tables {
        let mut name = Attrs::default();
        name.str(NFTA_TABLE_NAME, &t.name);
        msgs.push(Message::create(MsgType::NewTable, t.family, name.clone()));
        msgs.push(Message { kind: MsgType::DelTable, family: t.family, flags: 0, attrs: name.0.clone() });
        let mut a = name;
        a.u32(NFTA_TABLE_FLAGS, 0);
        a.bytes(NFTA_TABLE_USERDATA, &comment_udata(&t.comment()));
        msgs.push(Message::create(MsgType::NewTable, t.family, a));
        let mine: std::collections::BTreeMap<String, CounterValue> = values
            .iter()
            .filter(|((f, table, _), _)| *f == t.family && *table == t.name)
            .map(|((_, _, c), v)| (c.clone(), *v))
            .collect();
        msgs.extend(t.content_messages(&mine));
    }
    msgs
}

/// Counter values by `(family, table, counter name)`.
pub type CounterValues = std::collections::BTreeMap<(Family, String, String), CounterValue>;

/// libnftnl's user data TLV for a table comment (NFTNL_UDATA_TABLE_COMMENT = 0),
/// which nft prints as `comment "…"`.
fn comment_udata(comment: &str) -> Vec<u8> {
    let mut text: Vec<u8> = comment.bytes().take(126).collect();
    text.push(0);
    let mut out = vec![0u8, u8::try_from(text.len()).unwrap_or(127)];
    out.extend(text);
    out
}

/// Reads a table comment back out of its user data.
#[must_use]
pub fn parse_comment_udata(udata: &[u8]) -> Option<String> {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], usize::from(rest[1]));
        let value = rest.get(2..2 + len)?;
        if kind == 0 {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            return String::from_utf8(text.to_vec()).ok();
        }
        rest = &rest[2 + len..];
    }
    None
}

// Attribute numbers from linux/netfilter/nf_tables.h.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_TABLE_USERDATA: u16 = 6;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
const NFT_OBJECT_COUNTER: u32 = 1;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

/// Netlink attributes being built (4-byte aligned TLVs; numbers big-endian, as nftables wants).
#[derive(Debug, Clone, Default)]
pub struct Attrs(pub Vec<u8>);

impl Attrs {
    /// Appends a raw attribute.
    pub fn bytes(&mut self, kind: u16, value: &[u8]) {
        let len = u16::try_from(4 + value.len()).expect("our attributes are far below 64 KiB");
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    /// A NUL-terminated string.
    pub fn str(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(kind, &v);
    }

    /// A big-endian u32.
    pub fn u32(&mut self, kind: u16, v: u32) {
        self.bytes(kind, &v.to_be_bytes());
    }

    /// A big-endian u64.
    pub fn u64(&mut self, kind: u16, v: u64) {
        self.bytes(kind, &v.to_be_bytes());
    }

    /// A nested attribute.
    pub fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Attrs)) {
        let mut inner = Attrs::default();
        f(&mut inner);
        self.bytes(kind | NLA_F_NESTED, &inner.0);
    }
}

fn encode_expr(a: &mut Attrs, e: &Expr) {
    let (name, data): (&str, Attrs) = match e {
        Expr::Meta { key, dreg } => {
            let mut d = Attrs::default();
            d.u32(1, dreg.0); // NFTA_META_DREG
            d.u32(2, *key as u32); // NFTA_META_KEY
            ("meta", d)
        }
        Expr::Cmp { sreg, op, data } => {
            let mut d = Attrs::default();
            d.u32(1, sreg.0); // NFTA_CMP_SREG
            d.u32(2, *op as u32); // NFTA_CMP_OP
            d.nest(3, |v| v.bytes(NFTA_DATA_VALUE, data)); // NFTA_CMP_DATA
            ("cmp", d)
        }
        Expr::Bitwise { sreg, dreg, mask, xor } => {
            let mut d = Attrs::default();
            d.u32(1, sreg.0); // NFTA_BITWISE_SREG
            d.u32(2, dreg.0); // NFTA_BITWISE_DREG
            d.u32(3, u32::try_from(mask.len()).unwrap_or(0)); // NFTA_BITWISE_LEN
            d.nest(4, |v| v.bytes(NFTA_DATA_VALUE, mask)); // NFTA_BITWISE_MASK
            d.nest(5, |v| v.bytes(NFTA_DATA_VALUE, xor)); // NFTA_BITWISE_XOR
            ("bitwise", d)
        }
        Expr::Payload { base, offset, len, dreg } => {
            let mut d = Attrs::default();
            d.u32(1, dreg.0); // NFTA_PAYLOAD_DREG
            d.u32(2, *base as u32); // NFTA_PAYLOAD_BASE
            d.u32(3, *offset); // NFTA_PAYLOAD_OFFSET
            d.u32(4, *len); // NFTA_PAYLOAD_LEN
            ("payload", d)
        }
        Expr::Ct { key, dreg } => {
            let mut d = Attrs::default();
            d.u32(1, dreg.0); // NFTA_CT_DREG
            d.u32(2, *key as u32); // NFTA_CT_KEY
            ("ct", d)
        }
        Expr::ImmediateData { dreg, data } => {
            let mut d = Attrs::default();
            d.u32(1, dreg.0); // NFTA_IMMEDIATE_DREG
            d.nest(2, |v| v.bytes(NFTA_DATA_VALUE, data)); // NFTA_IMMEDIATE_DATA
            ("immediate", d)
        }
        Expr::Verdict(v) => {
            let mut d = Attrs::default();
            d.u32(1, 0); // NFTA_IMMEDIATE_DREG = NFT_REG_VERDICT
            d.nest(2, |data| {
                data.nest(NFTA_DATA_VERDICT, |verdict| {
                    verdict.u32(NFTA_VERDICT_CODE, v.code().cast_unsigned());
                    if let Verdict::Jump(chain) = v {
                        verdict.str(NFTA_VERDICT_CHAIN, chain);
                    }
                });
            });
            ("immediate", d)
        }
        Expr::Counter(name) => {
            let mut d = Attrs::default();
            d.u32(1, NFT_OBJECT_COUNTER); // NFTA_OBJREF_IMM_TYPE
            d.str(2, name); // NFTA_OBJREF_IMM_NAME
            ("objref", d)
        }
        Expr::Limit { rate, per_seconds, burst } => {
            let mut d = Attrs::default();
            d.u64(1, *rate); // NFTA_LIMIT_RATE
            d.u64(2, *per_seconds); // NFTA_LIMIT_UNIT
            d.u32(3, *burst); // NFTA_LIMIT_BURST
            d.u32(4, 0); // NFTA_LIMIT_TYPE = NFT_LIMIT_PKTS
            d.u32(5, 0); // NFTA_LIMIT_FLAGS
            ("limit", d)
        }
        Expr::Dnat { family, addr, proto_min, proto_max } => {
            let mut d = Attrs::default();
            d.u32(1, 1); // NFTA_NAT_TYPE = NFT_NAT_DNAT
            d.u32(2, u32::from(family.nfproto())); // NFTA_NAT_FAMILY
            d.u32(3, addr.0); // NFTA_NAT_REG_ADDR_MIN
            d.u32(4, addr.0); // NFTA_NAT_REG_ADDR_MAX
            d.u32(5, proto_min.0); // NFTA_NAT_REG_PROTO_MIN
            d.u32(6, proto_max.0); // NFTA_NAT_REG_PROTO_MAX
            d.u32(7, 0x3); // NFTA_NAT_FLAGS = MAP_IPS | PROTO_SPECIFIED
            ("nat", d)
        }
        Expr::Masquerade => ("masq", Attrs::default()),
        Expr::FibDaddrType { dreg } => {
            let mut d = Attrs::default();
            d.u32(1, dreg.0); // NFTA_FIB_DREG
            d.u32(2, 3); // NFTA_FIB_RESULT = NFT_FIB_RESULT_ADDRTYPE
            d.u32(3, 2); // NFTA_FIB_FLAGS = NFTA_FIB_F_DADDR
            ("fib", d)
        }
        Expr::RtTcpMss { dreg } => {
            let mut d = Attrs::default();
            d.u32(1, dreg.0); // NFTA_RT_DREG
            d.u32(2, 3); // NFTA_RT_KEY = NFT_RT_TCPMSS
            ("rt", d)
        }
        Expr::Hton16 { reg } => {
            let mut d = Attrs::default();
            d.u32(1, reg.0); // NFTA_BYTEORDER_SREG
            d.u32(2, reg.0); // NFTA_BYTEORDER_DREG
            d.u32(3, 1); // NFTA_BYTEORDER_OP = NFT_BYTEORDER_HTON
            d.u32(4, 2); // NFTA_BYTEORDER_LEN
            d.u32(5, 2); // NFTA_BYTEORDER_SIZE
            ("byteorder", d)
        }
        Expr::SetTcpMss { sreg } => {
            let mut d = Attrs::default();
            d.bytes(2, &[2]); // NFTA_EXTHDR_TYPE = TCPOPT_MAXSEG (u8)
            d.u32(3, 2); // NFTA_EXTHDR_OFFSET: the value after kind and length
            d.u32(4, 2); // NFTA_EXTHDR_LEN
            d.u32(6, 1); // NFTA_EXTHDR_OP = NFT_EXTHDR_OP_TCPOPT
            d.u32(7, sreg.0); // NFTA_EXTHDR_SREG
            ("exthdr", d)
        }
    };
    a.str(NFTA_EXPR_NAME, name);
    a.bytes(NFTA_EXPR_DATA | NLA_F_NESTED, &data.0);
}

/// Frames `msgs` as one atomic batch starting at sequence number `seq`; every
/// message asks for an ACK so each failure names its message.
#[must_use]
pub fn encode_batch(msgs: &[Message], seq: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let subsys = NFNL_SUBSYS_NFTABLES;
    push_nlmsg(&mut out, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, subsys, &[]);
    for (i, m) in msgs.iter().enumerate() {
        let s = seq.wrapping_add(1).wrapping_add(u32::try_from(i).unwrap_or(u32::MAX));
        push_nlmsg(
            &mut out,
            m.kind.nlmsg_type(),
            NLM_F_REQUEST | NLM_F_ACK | m.flags,
            s,
            m.family.nfproto(),
            0,
            &m.attrs,
        );
    }
    let end_seq = seq.wrapping_add(1).wrapping_add(u32::try_from(msgs.len()).unwrap_or(u32::MAX));
    push_nlmsg(&mut out, NFNL_MSG_BATCH_END, NLM_F_REQUEST, end_seq, 0, subsys, &[]);
    out
}

/// One dump request (`NLM_F_DUMP`) of `kind` for NFPROTO `nfproto` (0: all families).
#[must_use]
pub fn encode_dump(kind: MsgType, nfproto: u8, seq: u32) -> Vec<u8> {
    let mut out = Vec::new();
    push_nlmsg(&mut out, kind.nlmsg_type(), NLM_F_REQUEST | NLM_F_DUMP, seq, nfproto, 0, &[]);
    out
}

/// Appends one netlink message with an nfgenmsg header (family, version 0, res_id).
fn push_nlmsg(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &[u8]) {
    let len = u32::try_from(16 + 4 + attrs.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    out.push(family);
    out.push(0); // NFNETLINK_V0
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
}

/// What a dump of tables, objects or rules says about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpEntry {
    /// A table and its comment.
    Table {
        /// Family.
        family: Family,
        /// Name.
        name: String,
        /// Its comment (our fingerprint), if any.
        comment: Option<String>,
    },
    /// A counter object.
    Counter {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Name.
        name: String,
        /// Value.
        value: CounterValue,
    },
    /// A rule (only where it lives is kept).
    Rule {
        /// Family.
        family: Family,
        /// Table.
        table: String,
    },
}

fn family_of(nfproto: u8) -> Option<Family> {
    match nfproto {
        2 => Some(Family::Ip),
        10 => Some(Family::Ip6),
        _ => None,
    }
}

fn attr_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

fn attr_u64(v: &[u8]) -> u64 {
    v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

/// Parses the payload of one nftables reply message (after the netlink header):
/// nfgenmsg then attributes. Entries of other families and messages we do not
/// read give `None`; malformed attributes give an error.
pub fn parse_entry(kind: u16, payload: &[u8]) -> Result<Option<DumpEntry>, String> {
    let Some(family) = payload.first().copied().and_then(family_of) else {
        return Ok(None);
    };
    let attrs = payload.get(4..).ok_or("short nfgenmsg")?;
    let mut fields: Vec<(u16, Vec<u8>)> = Vec::new();
    for nla in NlasIterator::new(attrs) {
        let nla: NlaBuffer<&[u8]> = nla.map_err(|e| e.to_string())?;
        fields.push((nla.kind(), nla.value().to_vec()));
    }
    let get = |k: u16| fields.iter().find(|(kind, _)| *kind == k).map(|(_, v)| v.as_slice());
    let sub = kind & 0xff;
    if kind >> 8 != NFNL_SUBSYS_NFTABLES {
        return Ok(None);
    }
    if sub == MsgType::NewTable as u16 {
        let name = attr_str(get(NFTA_TABLE_NAME).ok_or("table without a name")?);
        let comment = get(NFTA_TABLE_USERDATA).and_then(parse_comment_udata);
        return Ok(Some(DumpEntry::Table { family, name, comment }));
    }
    if sub == MsgType::NewObj as u16 {
        let ty = get(NFTA_OBJ_TYPE).and_then(|v| v.get(..4)).and_then(|b| <[u8; 4]>::try_from(b).ok());
        if ty.map(u32::from_be_bytes) != Some(NFT_OBJECT_COUNTER) {
            return Ok(None);
        }
        let table = attr_str(get(NFTA_OBJ_TABLE).ok_or("object without a table")?);
        let name = attr_str(get(NFTA_OBJ_NAME).ok_or("object without a name")?);
        let mut value = CounterValue::default();
        if let Some(data) = get(NFTA_OBJ_DATA) {
            for nla in NlasIterator::new(data) {
                let nla: NlaBuffer<&[u8]> = nla.map_err(|e| e.to_string())?;
                match nla.kind() {
                    NFTA_COUNTER_BYTES => value.bytes = attr_u64(nla.value()),
                    NFTA_COUNTER_PACKETS => value.packets = attr_u64(nla.value()),
                    _ => {}
                }
            }
        }
        return Ok(Some(DumpEntry::Counter { family, table, name, value }));
    }
    if sub == MsgType::NewRule as u16 {
        let table = attr_str(get(NFTA_RULE_TABLE).ok_or("rule without a table")?);
        return Ok(Some(DumpEntry::Rule { family, table }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn attributes_are_aligned_and_big_endian() {
        let mut a = Attrs::default();
        a.str(1, "nat");
        a.u32(2, 6);
        assert_eq!(hex(&a.0), "080001006e61740008000200".to_owned() + "00000006");
    }

    #[test]
    fn comment_round_trips_through_user_data() {
        let udata = comment_udata("managed by netconfigd; fingerprint 0123");
        assert_eq!(udata[0], 0);
        assert_eq!(usize::from(udata[1]), udata.len() - 2);
        assert_eq!(parse_comment_udata(&udata).as_deref(), Some("managed by netconfigd; fingerprint 0123"));
        assert_eq!(parse_comment_udata(&[0, 200, 1]), None, "a truncated TLV is not read past its end");
    }

    #[test]
    fn a_verdict_jump_names_its_chain() {
        let mut a = Attrs::default();
        encode_expr(&mut a, &Expr::Verdict(Verdict::Jump("portforwardings".into())));
        let text = String::from_utf8_lossy(&a.0);
        assert!(text.contains("immediate") && text.contains("portforwardings"));
        // NFTA_VERDICT_CODE is NFT_JUMP (-3) in network byte order.
        assert!(hex(&a.0).contains("fffffffd"), "{}", hex(&a.0));
    }

    #[test]
    fn batch_is_framed_by_begin_and_end_with_increasing_sequence_numbers() {
        let table = Table { family: Family::Ip6, name: "t".into(), counters: vec!["c".into()], chains: vec![] };
        let msgs = replace_tables(&[&table], &CounterValues::new());
        assert_eq!(
            msgs.iter().map(|m| m.kind).collect::<Vec<_>>(),
            [MsgType::NewTable, MsgType::DelTable, MsgType::NewTable, MsgType::NewObj]
        );
        let bytes = encode_batch(&msgs, 100);
        let mut seqs = Vec::new();
        let mut types = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
            types.push(u16::from_ne_bytes(rest[4..6].try_into().unwrap()));
            seqs.push(u32::from_ne_bytes(rest[8..12].try_into().unwrap()));
            assert_eq!(len % 4, 0);
            rest = &rest[len..];
        }
        assert_eq!(types, [16, 0xa00, 0xa02, 0xa00, 0xa12, 17]);
        assert_eq!(seqs, [100, 101, 102, 103, 104, 105]);
    }

    #[test]
    fn parses_a_counter_object_from_a_dump() {
        let mut a = Attrs::default();
        a.str(NFTA_OBJ_TABLE, "router7");
        a.str(NFTA_OBJ_NAME, "fwded");
        a.u32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
        a.nest(NFTA_OBJ_DATA, |d| {
            d.u64(NFTA_COUNTER_BYTES, 42);
            d.u64(NFTA_COUNTER_PACKETS, 23);
        });
        let mut payload = vec![10, 0, 0, 0];
        payload.extend(a.0);
        let entry = parse_entry(MsgType::NewObj.nlmsg_type(), &payload).unwrap();
        assert_eq!(
            entry,
            Some(DumpEntry::Counter {
                family: Family::Ip6,
                table: "router7".into(),
                name: "fwded".into(),
                value: CounterValue { packets: 23, bytes: 42 },
            })
        );
        assert!(parse_entry(MsgType::NewObj.nlmsg_type(), &[10, 0, 0, 0, 200, 0, 1]).is_err(), "garbage is an error");
        assert_eq!(parse_entry(MsgType::NewObj.nlmsg_type(), &[7, 0, 0, 0]).unwrap(), None, "other families");
    }
}
