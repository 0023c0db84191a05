//! An upstream reply prepared once for many askers: checked, stripped of what
//! belongs to one transaction (the ID, the OPT record and anything signed
//! after it), with the position of every TTL noted. Serving it — to the
//! clients waiting for it now, or from the cache later — copies the bytes and
//! patches the ID, the flags, the question's spelling and the TTLs (decremented
//! by the age, RFC 1035 §3.2.1 and RFC 2181 §8) into them: no parsing and no
//! allocation per answer.
//!
//! How long it may be served (its lifetime):
//! - a positive answer: the smallest TTL in it, at most [`TtlPolicy::max_ttl`];
//! - NXDOMAIN and NODATA: the SOA record of the authority section,
//!   `min(SOA TTL, SOA MINIMUM)` (RFC 2308 §5), at most
//!   [`TtlPolicy::max_negative_ttl`]; without a SOA, not at all (RFC 2308 §5);
//! - SERVFAIL: [`TtlPolicy::servfail_ttl`] (RFC 2308 §7.1 allows up to 5 min);
//! - anything else, or a truncated reply: not at all.
//!
//! The TTLs of one RRset are served as their minimum (RFC 2181 §5.2).

use std::time::Instant;

use crate::wire::{self, Edns, HEADER_LEN, Header, WireError, flag, rcode, rtype};

/// TTL limits applied to what we serve and cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    /// Longest lifetime of a positive answer (seconds).
    pub max_ttl: u32,
    /// Longest lifetime of a negative answer (seconds).
    pub max_negative_ttl: u32,
    /// Lifetime of an upstream SERVFAIL (seconds).
    pub servfail_ttl: u32,
    /// TTL of answers served stale when every upstream failed (RFC 8767 §4).
    pub stale_ttl: u32,
}

impl Default for TtlPolicy {
    fn default() -> Self {
        Self { max_ttl: 86_400, max_negative_ttl: 3_600, servfail_ttl: 5, stale_ttl: 30 }
    }
}

/// What kind of answer this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Records answering the question.
    Positive,
    /// NXDOMAIN or NODATA.
    Negative,
    /// SERVFAIL from upstream.
    ServFail,
    /// Any other rcode: passed on, never cached.
    Other,
}

/// Why an upstream reply cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// It does not parse.
    Malformed(WireError),
    /// Its extended rcode (in OPT) is not zero.
    ExtendedRcode,
}

/// A prepared reply; see the module docs.
///
/// One allocation holds the message (ID zero, question lower-cased) followed
/// by its TTL table: for each record, the TTL's position (u16) and the TTL to
/// serve at age 0 (u32). A message is at most 65,535 bytes, so positions fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    buf: Box<[u8]>,
    msg_len: u16,
    qname_end: u16,
    kind: Kind,
    rcode: u8,
    upstream_ad: bool,
    lifetime: u32,
    received: Instant,
}

/// Bytes per TTL table entry.
const TTL_ENTRY: usize = 6;

/// The client side of one answer: whom we answer and how.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The client's ID.
    pub id: u16,
    /// The client's flags (RD, CD and AD are echoed or honoured).
    pub flags: u16,
    /// The client's spelling of the name (equal to ours ignoring case).
    pub qname: &'a [u8],
    /// The client's EDNS, if any.
    pub edns: Option<Edns>,
    /// The largest reply the transport takes (UDP: 512 or the EDNS size; TCP: 65535).
    pub limit: usize,
}

impl Asker<'_> {
    fn wants_ad(&self) -> bool {
        self.flags & flag::AD != 0 || self.edns.is_some_and(|e| e.dnssec_ok)
    }
}

/// What rendering produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendered {
    /// The whole answer.
    Full,
    /// Only the question with TC set: the answer did not fit the transport.
    Truncated,
}

impl StoredAnswer {
    /// Prepares `msg`, a reply whose question the caller has already matched
    /// against ours.
    pub fn prepare(msg: &[u8], qtype: u16, now: Instant, policy: &TtlPolicy) -> Result<Self, Unusable> {
        let header = Header::parse(msg).ok_or(Unusable::Malformed(WireError::Truncated))?;
        let (qname_end, _) = wire::skip_name(msg, HEADER_LEN).map_err(Unusable::Malformed)?;
        let mut pos = qname_end + 4;
        if pos > msg.len() {
            return Err(Unusable::Malformed(WireError::Truncated));
        }
        let counts = [header.ancount, header.nscount, header.arcount];
        let mut kept = [0u16; 3];
        let mut records: Vec<(usize, wire::Record)> = Vec::new();
        'sections: for (section, count) in counts.into_iter().enumerate() {
            for _ in 0..count {
                let record = wire::read_record(msg, pos).map_err(Unusable::Malformed)?;
                // OPT belongs to the transaction, TSIG and SIG(0) sign it
                // (RFC 6891 §6.1.1, RFC 8945 §5.1, RFC 2931 §3): cut them and
                // whatever follows.
                let cut = section == 2 && matches!(record.rtype, rtype::OPT | rtype::TSIG | rtype::SIG);
                if cut {
                    if record.rtype == rtype::OPT && Edns::from_record(&record).ext_rcode != 0 {
                        return Err(Unusable::ExtendedRcode);
                    }
                    break 'sections;
                }
                pos = record.end();
                kept[section] += 1;
                records.push((section, record));
            }
        }
        if pos > usize::from(u16::MAX) {
            return Err(Unusable::Malformed(WireError::Truncated));
        }
        let mut bytes = msg[..pos].to_vec();
        wire::put16(&mut bytes, 0, 0);
        wire::lowercase_into(&msg[HEADER_LEN..qname_end], &mut bytes[HEADER_LEN..qname_end]);
        wire::put16(&mut bytes, 6, kept[0]);
        wire::put16(&mut bytes, 8, kept[1]);
        wire::put16(&mut bytes, 10, kept[2]);
        // Cutting can only break a message whose names point forward into what
        // was cut; read it again so a stored message is always whole.
        let mut check = qname_end + 4;
        for _ in 0..kept.iter().sum::<u16>() {
            check = wire::read_record(&bytes, check).map_err(Unusable::Malformed)?.end();
        }

        let rc = header.rcode();
        let mut ttls: Vec<(u32, u32)> =
            records.iter().map(|(_, r)| (r.ttl_pos as u32, clamp_ttl(r.ttl, policy.max_ttl))).collect();
        normalise_rrsets(msg, &records, &mut ttls);
        let mut answers = records.iter().filter(|(s, _)| *s == 0).map(|(_, r)| r);
        let has_qtype = answers.clone().any(|r| r.rtype == qtype) || (qtype == rtype::ANY && kept[0] > 0);
        let has_chain = answers.any(|r| r.rtype == rtype::CNAME || r.rtype == rtype::DNAME);
        let soa = records.iter().find(|(s, r)| *s == 1 && r.rtype == rtype::SOA).map(|(_, r)| r);
        let min_ttl = ttls.iter().map(|&(_, t)| t).min().unwrap_or(0);
        let negative = soa.map(|soa| {
            let minimum = wire::soa_minimum(msg, soa).unwrap_or(0);
            // min(SOA TTL, SOA MINIMUM); the SOA's own TTL is among min_ttl.
            minimum.min(min_ttl).min(policy.max_negative_ttl)
        });
        let (kind, lifetime) = match (rc, negative) {
            (rcode::NOERROR, _) if has_qtype => (Kind::Positive, min_ttl),
            (rcode::NOERROR | rcode::NXDOMAIN, Some(negative)) => (Kind::Negative, negative),
            // A CNAME chain the upstream did not follow to the end: the client may.
            (rcode::NOERROR, None) if has_chain => (Kind::Positive, min_ttl),
            // NODATA or NXDOMAIN without a SOA: passed on, not cached (RFC 2308 §5).
            (rcode::NOERROR, None) if kept[0] == 0 => (Kind::Negative, 0),
            (rcode::NXDOMAIN, None) => (Kind::Negative, 0),
            (rcode::SERVFAIL, _) => (Kind::ServFail, policy.servfail_ttl),
            _ => (Kind::Other, 0),
        };
        if kind == Kind::Negative {
            // RFC 2308 §5: the SOA (and the rest) is served with the negative TTL.
            for t in &mut ttls {
                t.1 = t.1.min(lifetime);
            }
        }
        let lifetime = if header.has(flag::TC) { 0 } else { lifetime };
        let msg_len = bytes.len();
        bytes.reserve_exact(ttls.len() * TTL_ENTRY);
        for &(at, ttl) in &ttls {
            bytes.extend_from_slice(&(at as u16).to_be_bytes());
            bytes.extend_from_slice(&ttl.to_be_bytes());
        }
        Ok(Self {
            buf: bytes.into_boxed_slice(),
            msg_len: msg_len as u16,
            qname_end: qname_end as u16,
            kind,
            rcode: rc as u8,
            upstream_ad: header.has(flag::AD),
            lifetime,
            received: now,
        })
    }

    /// What kind of answer it is.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its response code.
    #[must_use]
    pub fn rcode(&self) -> u16 {
        u16::from(self.rcode)
    }

    fn msg(&self) -> &[u8] {
        &self.buf[..usize::from(self.msg_len)]
    }

    /// The question as stored: the name lower-cased, then type and class.
    #[must_use]
    pub fn question(&self) -> &[u8] {
        let end = usize::from(self.qname_end) + 4;
        self.buf.get(HEADER_LEN..end).unwrap_or_default()
    }

    /// How long it may be served, in seconds from when it was received (0: not cacheable).
    #[must_use]
    pub fn lifetime(&self) -> u32 {
        self.lifetime
    }

    /// When it stops being fresh.
    #[must_use]
    pub fn expires(&self) -> Instant {
        self.received + std::time::Duration::from_secs(u64::from(self.lifetime))
    }

    /// The bytes it holds (for the cache's size accounting).
    #[must_use]
    pub fn size(&self) -> usize {
        self.buf.len() + std::mem::size_of::<Self>()
    }

    /// Writes the answer for `asker` into `out`, with TTLs decremented by the
    /// age at `now` (or all set to `stale_ttl` when serving it stale).
    pub fn render(&self, now: Instant, asker: &Asker<'_>, stale_ttl: Option<u32>, out: &mut Vec<u8>) -> Rendered {
        let age = u32::try_from(now.saturating_duration_since(self.received).as_secs()).unwrap_or(u32::MAX);
        let qname_end = usize::from(self.qname_end);
        out.clear();
        out.extend_from_slice(self.msg());
        wire::put16(out, 0, asker.id);
        let ad = if self.upstream_ad && asker.wants_ad() { flag::AD } else { 0 };
        wire::put16(out, 2, wire::reply_flags(asker.flags, self.rcode()) | ad);
        if let Some(q) = out.get_mut(HEADER_LEN..qname_end)
            && q.len() == asker.qname.len()
        {
            q.copy_from_slice(asker.qname);
        }
        for entry in self.buf[usize::from(self.msg_len)..].chunks_exact(TTL_ENTRY) {
            let pos = usize::from(u16::from_be_bytes([entry[0], entry[1]]));
            let ttl = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
            let served = stale_ttl.unwrap_or_else(|| ttl.saturating_sub(age));
            wire::put32(out, pos, served);
        }
        if let Some(e) = asker.edns {
            let ar = wire::be16(out, 10).unwrap_or(0);
            wire::put16(out, 10, ar.saturating_add(1));
            wire::emit_opt(out, 0, e.dnssec_ok);
        }
        if out.len() <= asker.limit {
            return Rendered::Full;
        }
        // RFC 2181 §9 and RFC 6891 §7: what does not fit is cut and TC set; the
        // client asks again over TCP.
        out.truncate(qname_end + 4);
        let flags = wire::be16(out, 2).unwrap_or(0) | flag::TC;
        wire::put16(out, 2, flags);
        wire::put16(out, 6, 0);
        wire::put16(out, 8, 0);
        wire::put16(out, 10, u16::from(asker.edns.is_some()));
        if let Some(e) = asker.edns {
            wire::emit_opt(out, 0, e.dnssec_ok);
        }
        Rendered::Truncated
    }
}

/// RFC 2181 §8: a TTL with the top bit set means zero.
fn clamp_ttl(ttl: u32, max: u32) -> u32 {
    if ttl & 0x8000_0000 != 0 { 0 } else { ttl.min(max) }
}

/// RFC 2181 §5.2: the records of one RRset (same section, owner, type and
/// class) are served with their smallest TTL. Quadratic, so only for messages
/// of a sane size; a huge one keeps per-record TTLs.
fn normalise_rrsets(msg: &[u8], records: &[(usize, wire::Record)], ttls: &mut [(u32, u32)]) {
    const MAX_RECORDS: usize = 64;
    if records.len() > MAX_RECORDS {
        return;
    }
    for i in 0..records.len() {
        for j in i + 1..records.len() {
            let (si, ri) = &records[i];
            let (sj, rj) = &records[j];
            if si == sj
                && ri.rtype == rj.rtype
                && ri.class == rj.class
                && wire::names_equal(msg, ri.start, rj.start) == Ok(true)
            {
                let m = ttls[i].1.min(ttls[j].1);
                ttls[i].1 = m;
                ttls[j].1 = m;
            }
        }
    }
}
