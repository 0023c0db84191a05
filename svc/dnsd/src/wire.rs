//! The DNS wire format (RFC 1035 §4.1) as checked views over raw messages, and
//! the few fixed-layout messages we write byte by byte: upstream queries,
//! error replies and truncated replies.
//!
//! Every query passes through here, and a cache hit is answered without
//! allocating: we read the header, the question and the OPT record in place,
//! and answer by patching the ID, the question and the TTLs into stored wire
//! bytes (`answer`). The authoritative local answers are built with simple-dns
//! (`local`), and the tests and fuzz targets parse what we write with
//! simple-dns as an independent oracle.
//!
//! Names (RFC 1035 §3.1, §4.1.4): a label is at most 63 bytes, a name at most
//! 255 bytes on the wire (§2.3.4). A compression pointer must point before
//! itself and past the header; a name may take at most [`MAX_HOPS`] pointers.
//! So pointer loops, forward references and over-long names are errors, and no
//! input makes a walk run longer than 255 bytes of labels.
//!
//! Nothing here panics on any input: every read is bounds-checked.

use std::ops::Range;

/// Length of the header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Longest name on the wire, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Most compression pointers one name may follow.
pub const MAX_HOPS: usize = 64;
/// The UDP payload size we advertise and answer up to (the 2020 DNS flag day value).
pub const EDNS_UDP_SIZE: u16 = 1232;
/// The UDP limit without EDNS (RFC 1035 §4.2.1), and the floor of any EDNS size (RFC 6891 §6.2.5).
pub const MIN_UDP_SIZE: u16 = 512;
/// Length of an OPT record without options.
pub const OPT_LEN: usize = 11;

/// Header flag bits (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2).
pub mod flag {
    /// A response.
    pub const QR: u16 = 0x8000;
    /// The opcode field.
    pub const OPCODE_MASK: u16 = 0x7800;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Recursion available.
    pub const RA: u16 = 0x0080;
    /// Authentic data.
    pub const AD: u16 = 0x0020;
    /// Checking disabled.
    pub const CD: u16 = 0x0010;
    /// The response code field.
    pub const RCODE_MASK: u16 = 0x000f;
}

/// Response codes (RFC 1035 §4.1.1; BADVERS from RFC 6891 §9).
pub mod rcode {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// Format error.
    pub const FORMERR: u16 = 1;
    /// Server failure.
    pub const SERVFAIL: u16 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u16 = 3;
    /// Not implemented.
    pub const NOTIMP: u16 = 4;
    /// Refused.
    pub const REFUSED: u16 = 5;
    /// Bad EDNS version (extended, carried in OPT).
    pub const BADVERS: u16 = 16;
}

/// Record types we treat specially.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Domain name pointer.
    pub const PTR: u16 = 12;
    /// Mail exchange.
    pub const MX: u16 = 15;
    /// Text.
    pub const TXT: u16 = 16;
    /// Signature (SIG(0) in the additional section, RFC 2931).
    pub const SIG: u16 = 24;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// Service.
    pub const SRV: u16 = 33;
    /// Delegation name.
    pub const DNAME: u16 = 39;
    /// EDNS pseudo-record (RFC 6891).
    pub const OPT: u16 = 41;
    /// Delegation signer.
    pub const DS: u16 = 43;
    /// DNSSEC signature.
    pub const RRSIG: u16 = 46;
    /// DNSSEC key.
    pub const DNSKEY: u16 = 48;
    /// Service binding.
    pub const SVCB: u16 = 64;
    /// HTTPS service binding.
    pub const HTTPS: u16 = 65;
    /// Transaction key.
    pub const TKEY: u16 = 249;
    /// Transaction signature.
    pub const TSIG: u16 = 250;
    /// Incremental zone transfer.
    pub const IXFR: u16 = 251;
    /// Zone transfer.
    pub const AXFR: u16 = 252;
    /// Mailbox records (obsolete).
    pub const MAILB: u16 = 253;
    /// Mail agent records (obsolete).
    pub const MAILA: u16 = 254;
    /// Any type.
    pub const ANY: u16 = 255;
}

/// The Internet class.
pub const CLASS_IN: u16 = 1;

/// Why bytes are not a valid message part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The message ends too early.
    Truncated,
    /// A label type other than a length or a pointer (RFC 6891 §5 retired them).
    BadLabel,
    /// A pointer that does not point back into the message body.
    BadPointer,
    /// A name over 255 bytes, or one following too many pointers (a loop).
    NameTooLong,
    /// Record data that does not fit its type.
    BadRdata,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "message truncated",
            Self::BadLabel => "bad label type",
            Self::BadPointer => "bad compression pointer",
            Self::NameTooLong => "name too long or pointer loop",
            Self::BadRdata => "bad record data",
        })
    }
}

/// Reads a big-endian u16 at `pos`.
#[must_use]
pub fn be16(msg: &[u8], pos: usize) -> Option<u16> {
    let b = msg.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads a big-endian u32 at `pos`.
#[must_use]
pub fn be32(msg: &[u8], pos: usize) -> Option<u32> {
    let b = msg.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes a big-endian u16 at `pos` (which the caller knows is in bounds).
pub fn put16(msg: &mut [u8], pos: usize, v: u16) {
    if let Some(b) = msg.get_mut(pos..pos + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// Writes a big-endian u32 at `pos` (which the caller knows is in bounds).
pub fn put32(msg: &mut [u8], pos: usize, v: u32) {
    if let Some(b) = msg.get_mut(pos..pos + 4) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// The message header (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Transaction ID.
    pub id: u16,
    /// Flags, opcode and rcode.
    pub flags: u16,
    /// Questions.
    pub qdcount: u16,
    /// Answer records.
    pub ancount: u16,
    /// Authority records.
    pub nscount: u16,
    /// Additional records.
    pub arcount: u16,
}

impl Header {
    /// The header of `msg`, if it is long enough.
    #[must_use]
    pub fn parse(msg: &[u8]) -> Option<Self> {
        Some(Self {
            id: be16(msg, 0)?,
            flags: be16(msg, 2)?,
            qdcount: be16(msg, 4)?,
            ancount: be16(msg, 6)?,
            nscount: be16(msg, 8)?,
            arcount: be16(msg, 10)?,
        })
    }

    /// The opcode.
    #[must_use]
    pub fn opcode(&self) -> u16 {
        (self.flags & flag::OPCODE_MASK) >> 11
    }

    /// The (non-extended) response code.
    #[must_use]
    pub fn rcode(&self) -> u16 {
        self.flags & flag::RCODE_MASK
    }

    /// Whether every bit of `bits` is set.
    #[must_use]
    pub fn has(&self, bits: u16) -> bool {
        self.flags & bits == bits
    }

    /// Appends the 12 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        for v in [self.id, self.flags, self.qdcount, self.ancount, self.nscount, self.arcount] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// The labels of a name, following compression pointers; each item is one
/// label's bytes. Ends after the root label, or with one error.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    msg: &'a [u8],
    pos: usize,
    len: usize,
    hops: usize,
    end: Option<usize>,
    done: bool,
}

impl<'a> Labels<'a> {
    /// The labels of the name at `pos` in `msg`.
    #[must_use]
    pub fn new(msg: &'a [u8], pos: usize) -> Self {
        Self { msg, pos, len: 0, hops: 0, end: None, done: false }
    }

    /// After the iterator finished without error: where the name ends in place
    /// (after its first pointer, or after its root label), and its wire length.
    #[must_use]
    pub fn finish(&self) -> (usize, usize) {
        (self.end.unwrap_or(self.pos), self.len)
    }

    fn fail(&mut self, e: WireError) -> Option<Result<&'a [u8], WireError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl<'a> Iterator for Labels<'a> {
    type Item = Result<&'a [u8], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let Some(&b) = self.msg.get(self.pos) else {
                return self.fail(WireError::Truncated);
            };
            match b & 0xc0 {
                0x00 => {
                    let l = usize::from(b);
                    self.len += 1 + l;
                    if self.len > MAX_NAME_LEN {
                        return self.fail(WireError::NameTooLong);
                    }
                    if l == 0 {
                        self.done = true;
                        self.pos += 1;
                        if self.end.is_none() {
                            self.end = Some(self.pos);
                        }
                        return None;
                    }
                    let Some(label) = self.msg.get(self.pos + 1..self.pos + 1 + l) else {
                        return self.fail(WireError::Truncated);
                    };
                    self.pos += 1 + l;
                    return Some(Ok(label));
                }
                0xc0 => {
                    let Some(&lo) = self.msg.get(self.pos + 1) else {
                        return self.fail(WireError::Truncated);
                    };
                    let target = (usize::from(b & 0x3f) << 8) | usize::from(lo);
                    // RFC 1035 §4.1.4: a pointer refers to a prior occurrence.
                    if target >= self.pos || target < HEADER_LEN {
                        return self.fail(WireError::BadPointer);
                    }
                    self.hops += 1;
                    if self.hops > MAX_HOPS {
                        return self.fail(WireError::NameTooLong);
                    }
                    if self.end.is_none() {
                        self.end = Some(self.pos + 2);
                    }
                    self.pos = target;
                }
                _ => return self.fail(WireError::BadLabel),
            }
        }
    }
}

/// Checks the name at `pos`; returns where it ends in place and its wire length.
pub fn skip_name(msg: &[u8], pos: usize) -> Result<(usize, usize), WireError> {
    let mut labels = Labels::new(msg, pos);
    for label in labels.by_ref() {
        label?;
    }
    Ok(labels.finish())
}

/// Whether the names at `a` and `b` are equal, ignoring ASCII case (RFC 4343).
pub fn names_equal(msg: &[u8], a: usize, b: usize) -> Result<bool, WireError> {
    let mut x = Labels::new(msg, a);
    let mut y = Labels::new(msg, b);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ok(true),
            (Some(Err(e)), _) | (_, Some(Err(e))) => return Err(e),
            (Some(Ok(p)), Some(Ok(q))) => {
                if !p.eq_ignore_ascii_case(q) {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
}

/// The labels of an uncompressed wire name (as the question carries it).
/// Stops at the root label or at anything malformed.
pub fn plain_labels(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let l = usize::from(*name.get(pos)?);
        if l == 0 || l > MAX_LABEL_LEN {
            return None;
        }
        let label = name.get(pos + 1..pos + 1 + l)?;
        pos += 1 + l;
        Some(label)
    })
}

/// One resource record, located in its message (RFC 1035 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the record starts (its owner name).
    pub start: usize,
    /// Its type.
    pub rtype: u16,
    /// Its class (the UDP payload size for OPT).
    pub class: u16,
    /// Where its TTL is.
    pub ttl_pos: usize,
    /// Its TTL (flags and extended rcode for OPT).
    pub ttl: u32,
    /// Its data.
    pub rdata: Range<usize>,
}

impl Record {
    /// Where the next record starts.
    #[must_use]
    pub fn end(&self) -> usize {
        self.rdata.end
    }
}

/// Reads and checks the record at `pos`. Names inside the data of the RFC 1035
/// types (the ones that may be compressed, RFC 3597 §4) are checked too, so a
/// stored message never refers past its end.
pub fn read_record(msg: &[u8], pos: usize) -> Result<Record, WireError> {
    let (name_end, _) = skip_name(msg, pos)?;
    let rtype = be16(msg, name_end).ok_or(WireError::Truncated)?;
    let class = be16(msg, name_end + 2).ok_or(WireError::Truncated)?;
    let ttl = be32(msg, name_end + 4).ok_or(WireError::Truncated)?;
    let rdlen = usize::from(be16(msg, name_end + 8).ok_or(WireError::Truncated)?);
    let start = name_end + 10;
    let rdata = start..start + rdlen;
    if rdata.end > msg.len() {
        return Err(WireError::Truncated);
    }
    check_rdata(msg, rtype, &rdata)?;
    Ok(Record { start: pos, rtype, class, ttl_pos: name_end + 4, ttl, rdata })
}

fn name_in(msg: &[u8], pos: usize, limit: usize) -> Result<usize, WireError> {
    let (end, _) = skip_name(msg, pos)?;
    if end > limit { Err(WireError::BadRdata) } else { Ok(end) }
}

fn check_rdata(msg: &[u8], rtype: u16, r: &Range<usize>) -> Result<(), WireError> {
    let exact = |end: usize| if end == r.end { Ok(()) } else { Err(WireError::BadRdata) };
    match rtype {
        rtype::A if r.len() != 4 => Err(WireError::BadRdata),
        rtype::AAAA if r.len() != 16 => Err(WireError::BadRdata),
        // NS, MD, MF, CNAME, MB, MG, MR, PTR: one name.
        2..=5 | 7..=9 | rtype::PTR => exact(name_in(msg, r.start, r.end)?),
        // MINFO: two names.
        14 => exact(name_in(msg, name_in(msg, r.start, r.end)?, r.end)?),
        // MX: preference, name.
        rtype::MX => exact(name_in(msg, r.start + 2, r.end)?),
        // SOA: two names and five 32-bit numbers.
        rtype::SOA => {
            let after = name_in(msg, name_in(msg, r.start, r.end)?, r.end)?;
            exact(after + 20)
        }
        _ => Ok(()),
    }
}

/// The SOA MINIMUM field of a checked SOA record (its last four data bytes).
#[must_use]
pub fn soa_minimum(msg: &[u8], record: &Record) -> Option<u32> {
    be32(msg, record.rdata.end.checked_sub(4)?)
}

/// What an OPT record says (RFC 6891 §6.1.2–6.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// The sender's UDP payload size.
    pub udp_size: u16,
    /// Upper 8 bits of the extended rcode.
    pub ext_rcode: u8,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK (RFC 3225).
    pub dnssec_ok: bool,
}

impl Edns {
    /// Reads an OPT record.
    #[must_use]
    pub fn from_record(r: &Record) -> Self {
        Self {
            udp_size: r.class,
            ext_rcode: (r.ttl >> 24) as u8,
            version: (r.ttl >> 16) as u8,
            dnssec_ok: r.ttl & 0x8000 != 0,
        }
    }

    /// The largest UDP reply this sender takes from us.
    #[must_use]
    pub fn reply_limit(&self) -> usize {
        usize::from(self.udp_size.clamp(MIN_UDP_SIZE, EDNS_UDP_SIZE))
    }
}

/// Appends our OPT record: payload size [`EDNS_UDP_SIZE`], version 0, no options.
pub fn emit_opt(out: &mut Vec<u8>, ext_rcode: u8, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&EDNS_UDP_SIZE.to_be_bytes());
    let ttl = (u32::from(ext_rcode) << 24) | if dnssec_ok { 0x8000 } else { 0 };
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
}

/// A question as a client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question<'a> {
    /// The name, uncompressed, in the client's spelling.
    pub name: &'a [u8],
    /// Its type.
    pub qtype: u16,
    /// Its class.
    pub qclass: u16,
}

/// A query that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// The header.
    pub header: Header,
    /// The one question.
    pub question: Question<'a>,
    /// EDNS, when the query had an OPT record.
    pub edns: Option<Edns>,
}

/// Why a message is not a query we forward or answer normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError<'a> {
    /// Drop it silently: no header, or it is itself a response (answering
    /// responses could make two servers talk to each other forever).
    Drop(DropReason),
    /// Answer with this rcode (extended when over 15).
    Reply {
        /// The header, for the ID and flags.
        header: Header,
        /// The question, when it parsed.
        question: Option<Question<'a>>,
        /// EDNS, when it parsed.
        edns: Option<Edns>,
        /// The response code.
        rcode: u16,
        /// Why, for metrics.
        reason: RejectReason,
    },
}

/// Why a message was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than a header.
    TooShort,
    /// The QR bit is set.
    Response,
}

/// Why a query was answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The opcode is not QUERY.
    Opcode,
    /// Not exactly one question (RFC 9619).
    QuestionCount,
    /// The question or a record did not parse.
    Malformed,
    /// More than one OPT record, or OPT outside the additional section (RFC 6891 §6.1.1).
    BadOpt,
    /// An EDNS version we do not speak (RFC 6891 §6.1.3).
    BadVersion,
    /// A class other than IN.
    Class,
    /// A type we never forward: zone transfers, meta types, OPT.
    Type,
}

/// Parses a query (RFC 1035 §4.1; RFC 6891 §6.1.1 for OPT).
pub fn parse_query(msg: &[u8]) -> Result<Query<'_>, QueryError<'_>> {
    let header = Header::parse(msg).ok_or(QueryError::Drop(DropReason::TooShort))?;
    if header.has(flag::QR) {
        return Err(QueryError::Drop(DropReason::Response));
    }
    let reply = |question, edns, rcode, reason| QueryError::Reply { header, question, edns, rcode, reason };
    if header.opcode() != 0 {
        return Err(reply(None, None, rcode::NOTIMP, RejectReason::Opcode));
    }
    if header.qdcount != 1 {
        return Err(reply(None, None, rcode::FORMERR, RejectReason::QuestionCount));
    }
    // The question's name comes first, so it cannot be compressed.
    let mut pos = HEADER_LEN;
    let mut len = 0usize;
    loop {
        let Some(&l) = msg.get(pos) else {
            return Err(reply(None, None, rcode::FORMERR, RejectReason::Malformed));
        };
        if l > MAX_LABEL_LEN as u8 {
            return Err(reply(None, None, rcode::FORMERR, RejectReason::Malformed));
        }
        len += 1 + usize::from(l);
        pos += 1 + usize::from(l);
        if len > MAX_NAME_LEN || pos > msg.len() {
            return Err(reply(None, None, rcode::FORMERR, RejectReason::Malformed));
        }
        if l == 0 {
            break;
        }
    }
    let name = &msg[HEADER_LEN..pos];
    let (Some(qtype), Some(qclass)) = (be16(msg, pos), be16(msg, pos + 2)) else {
        return Err(reply(None, None, rcode::FORMERR, RejectReason::Malformed));
    };
    let question = Question { name, qtype, qclass };
    pos += 4;
    let mut edns = None;
    let sections = [header.ancount, header.nscount, header.arcount];
    for (section, count) in sections.into_iter().enumerate() {
        for _ in 0..count {
            let Ok(record) = read_record(msg, pos) else {
                return Err(reply(Some(question), None, rcode::FORMERR, RejectReason::Malformed));
            };
            pos = record.end();
            if record.rtype != rtype::OPT {
                continue;
            }
            // RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
            if section != 2 || edns.is_some() || msg.get(record.start) != Some(&0) {
                return Err(reply(Some(question), None, rcode::FORMERR, RejectReason::BadOpt));
            }
            edns = Some(Edns::from_record(&record));
        }
    }
    if let Some(e) = edns
        && e.version != 0
    {
        return Err(reply(Some(question), edns, rcode::BADVERS, RejectReason::BadVersion));
    }
    if qclass != CLASS_IN {
        return Err(reply(Some(question), edns, rcode::NOTIMP, RejectReason::Class));
    }
    match qtype {
        0 | rtype::OPT => return Err(reply(Some(question), edns, rcode::FORMERR, RejectReason::Type)),
        rtype::TKEY..=rtype::MAILA => {
            return Err(reply(Some(question), edns, rcode::NOTIMP, RejectReason::Type));
        }
        _ => {}
    }
    Ok(Query { header, question, edns })
}

/// Lower-cases a name's ASCII letters. Safe on a whole uncompressed wire name:
/// length bytes are at most 63, below `A`.
pub fn lowercase_into(name: &[u8], out: &mut [u8]) {
    for (o, b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
}

/// The response flags for a client: QR and RA, its RD and CD echoed, and the
/// opcode (always QUERY here) and `rcode`.
#[must_use]
pub fn reply_flags(query_flags: u16, rcode: u16) -> u16 {
    flag::QR | flag::RA | (query_flags & (flag::RD | flag::CD | flag::OPCODE_MASK)) | (rcode & flag::RCODE_MASK)
}

/// Writes an error reply: the header, the question when there is one, and an
/// OPT record when the query had one (RFC 6891 §7). An extended rcode goes
/// into the OPT record.
pub fn write_error(out: &mut Vec<u8>, query: &Header, question: Option<&Question<'_>>, edns: Option<Edns>, rc: u16) {
    out.clear();
    Header {
        id: query.id,
        flags: reply_flags(query.flags, rc),
        qdcount: u16::from(question.is_some()),
        ancount: 0,
        nscount: 0,
        arcount: u16::from(edns.is_some()),
    }
    .emit(out);
    if let Some(q) = question {
        out.extend_from_slice(q.name);
        out.extend_from_slice(&q.qtype.to_be_bytes());
        out.extend_from_slice(&q.qclass.to_be_bytes());
    }
    if let Some(e) = edns {
        emit_opt(out, (rc >> 4) as u8, e.dnssec_ok);
    }
}

/// Writes the query we send upstream: RD and AD set (RFC 6840 §5.7: AD asks for
/// the AD bit), CD when the client asked for it, and our OPT record unless we
/// are retrying without EDNS (RFC 6891 §7).
pub fn write_upstream_query(out: &mut Vec<u8>, id: u16, name: &[u8], qtype: u16, cd: bool, edns: Option<bool>) {
    out.clear();
    let flags = flag::RD | flag::AD | if cd { flag::CD } else { 0 };
    Header { id, flags, qdcount: 1, ancount: 0, nscount: 0, arcount: u16::from(edns.is_some()) }.emit(out);
    out.extend_from_slice(name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    if let Some(dnssec_ok) = edns {
        emit_opt(out, 0, dnssec_ok);
    }
}
