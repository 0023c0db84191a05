//! The nfnetlink encoding of [`Table`]s: one batch that the kernel commits
//! atomically (all or nothing), after `linux/netfilter/nf_tables.h`. Only the
//! expressions netconfigd needs are encoded: payload, meta, cmp, bitwise, ct,
//! immediate/verdicts, objref counters, limit, nat, masq, fib, rt, byteorder,
//! exthdr write.

use super::{
    ChainType, CounterValue, CounterValues, Expr, Family, MsgType, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END,
    NFNL_SUBSYS_NFTABLES, Table, Verdict,
};

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
        msgs.extend(table_messages(t, &mine));
    }
    msgs
}

/// libnftnl's user data TLV for a table comment (NFTNL_UDATA_TABLE_COMMENT = 0),
/// which nft prints as `comment "…"`.
fn comment_udata(comment: &str) -> Vec<u8> {
    let mut text: Vec<u8> = comment.bytes().take(126).collect();
    text.push(0);
    let mut out = vec![0u8, u8::try_from(text.len()).unwrap_or(127)];
    out.extend(text);
    out
}

// Attribute numbers from linux/netfilter/nf_tables.h.
pub(crate) const NFTA_TABLE_NAME: u16 = 1;
pub(crate) const NFTA_TABLE_FLAGS: u16 = 2;
pub(crate) const NFTA_TABLE_USERDATA: u16 = 6;
pub(crate) const NFTA_CHAIN_TABLE: u16 = 1;
pub(crate) const NFTA_CHAIN_NAME: u16 = 3;
pub(crate) const NFTA_CHAIN_HOOK: u16 = 4;
pub(crate) const NFTA_CHAIN_POLICY: u16 = 5;
pub(crate) const NFTA_CHAIN_TYPE: u16 = 7;
pub(crate) const NFTA_HOOK_HOOKNUM: u16 = 1;
pub(crate) const NFTA_HOOK_PRIORITY: u16 = 2;
pub(crate) const NFTA_RULE_TABLE: u16 = 1;
pub(crate) const NFTA_RULE_CHAIN: u16 = 2;
pub(crate) const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub(crate) const NFTA_LIST_ELEM: u16 = 1;
pub(crate) const NFTA_EXPR_NAME: u16 = 1;
pub(crate) const NFTA_EXPR_DATA: u16 = 2;
pub(crate) const NFTA_OBJ_TABLE: u16 = 1;
pub(crate) const NFTA_OBJ_NAME: u16 = 2;
pub(crate) const NFTA_OBJ_TYPE: u16 = 3;
pub(crate) const NFTA_OBJ_DATA: u16 = 4;
pub(crate) const NFT_OBJECT_COUNTER: u32 = 1;
pub(crate) const NFTA_COUNTER_BYTES: u16 = 1;
pub(crate) const NFTA_COUNTER_PACKETS: u16 = 2;
pub(crate) const NFTA_DATA_VALUE: u16 = 1;
pub(crate) const NFTA_DATA_VERDICT: u16 = 2;
pub(crate) const NFTA_VERDICT_CODE: u16 = 1;
pub(crate) const NFTA_VERDICT_CHAIN: u16 = 2;
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

/// The messages creating a table's counters (at `values`), chains and rules.
pub(crate) fn table_messages(t: &Table, values: &std::collections::BTreeMap<String, CounterValue>) -> Vec<Message> {
    let mut msgs = Vec::new();
    for c in &t.counters {
        let v = values.get(c).copied().unwrap_or_default();
        let mut a = Attrs::default();
        a.str(NFTA_OBJ_TABLE, &t.name);
        a.str(NFTA_OBJ_NAME, c);
        a.u32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
        a.nest(NFTA_OBJ_DATA, |d| {
            d.u64(NFTA_COUNTER_BYTES, v.bytes);
            d.u64(NFTA_COUNTER_PACKETS, v.packets);
        });
        msgs.push(Message::create(MsgType::NewObj, t.family, a));
    }
    // Chains first (a jump needs its target to exist), then the rules.
    for chain in &t.chains {
        let mut a = Attrs::default();
        a.str(NFTA_CHAIN_TABLE, &t.name);
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
        msgs.push(Message::create(MsgType::NewChain, t.family, a));
    }
    for chain in &t.chains {
        for rule in &chain.rules {
            let mut a = Attrs::default();
            a.str(NFTA_RULE_TABLE, &t.name);
            a.str(NFTA_RULE_CHAIN, &chain.name);
            a.nest(NFTA_RULE_EXPRESSIONS, |list| {
                for e in &rule.exprs {
                    list.nest(NFTA_LIST_ELEM, |elem| encode_expr(elem, e));
                }
            });
            let mut m = Message::create(MsgType::NewRule, t.family, a);
            m.flags |= NLM_F_APPEND;
            msgs.push(m);
        }
    }
    msgs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::parse_comment_udata;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The kernel options an expression needs beyond nf_tables' core
    /// (`nf_tables-objs` in linux/net/netfilter/Makefile: payload, cmp,
    /// bitwise, byteorder, meta, immediate, rt, exthdr, counter, …). The
    /// match is exhaustive, so a new expression must say what it needs.
    fn kernel_options(e: &Expr) -> &'static [&'static str] {
        match e {
            Expr::Meta { .. }
            | Expr::Cmp { .. }
            | Expr::Bitwise { .. }
            | Expr::Payload { .. }
            | Expr::ImmediateData { .. }
            | Expr::Verdict(_)
            | Expr::RtTcpMss { .. }
            | Expr::Hton16 { .. }
            | Expr::SetTcpMss { .. } => &[],
            Expr::Ct { .. } => &["CONFIG_NFT_CT"],
            Expr::Counter(_) => &["CONFIG_NFT_OBJREF"],
            Expr::Limit { .. } => &["CONFIG_NFT_LIMIT"],
            Expr::Dnat { .. } => &["CONFIG_NFT_NAT"],
            Expr::Masquerade => &["CONFIG_NFT_MASQ"],
            Expr::FibDaddrType { .. } => &["CONFIG_NFT_FIB_IPV4", "CONFIG_NFT_FIB_IPV6"],
        }
    }

    /// The appliance's kernel (kernel-config/router7.config) builds in every
    /// expression the ruleset uses. It once lacked objref (the named
    /// counters), and on the image every firewall batch failed with ENOENT
    /// at its first rule: no firewall, no NAT.
    #[test]
    fn the_appliance_kernel_has_every_expression_the_ruleset_uses() {
        let fragment =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../kernel-config/router7.config"))
                .expect("kernel-config/router7.config is part of the repository");
        let r = crate::nft::Reg(1);
        let every = [
            Expr::Meta { key: crate::nft::MetaKey::IifName, dreg: r },
            Expr::Cmp { sreg: r, op: crate::nft::CmpOp::Eq, data: vec![] },
            Expr::Bitwise { sreg: r, dreg: r, mask: vec![], xor: vec![] },
            Expr::Payload { base: crate::nft::PayloadBase::Transport, offset: 0, len: 2, dreg: r },
            Expr::Ct { key: crate::nft::CtKey::State, dreg: r },
            Expr::ImmediateData { dreg: r, data: vec![] },
            Expr::Verdict(Verdict::Accept),
            Expr::Counter("c".into()),
            Expr::Limit { rate: 1, per_seconds: 1, burst: 1 },
            Expr::Dnat { family: Family::Ip, addr: r, proto_min: r, proto_max: r },
            Expr::Masquerade,
            Expr::FibDaddrType { dreg: r },
            Expr::RtTcpMss { dreg: r },
            Expr::Hton16 { reg: r },
            Expr::SetTcpMss { sreg: r },
        ];
        for e in &every {
            for option in kernel_options(e) {
                assert!(
                    fragment.lines().any(|l| l.trim() == format!("{option}=y")),
                    "{e:?} needs {option}=y in kernel-config/router7.config"
                );
            }
        }
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
}
