//! Names we answer ourselves and never forward (router7's internal handler,
//! extended by RFC 6761 and RFC 6303):
//!
//! - the router's own name (uname's nodename) and every LAN host with a
//!   DHCP lease, as `<name>` and `<name>.lan`: A from the lease (or lan0's
//!   address for the router), AAAA only for the router (`<prefix>::1` of the
//!   delegated prefix; no other source knows a host's IPv6 address, so a host's
//!   AAAA is NODATA, as in router7); PTR for each of those addresses;
//! - `localhost` and every name under it (RFC 6761 §6.3): 127.0.0.1 and ::1;
//!   PTR of 127/8 and ::1 → `localhost`;
//! - `invalid` and below (RFC 6761 §6.4): NXDOMAIN;
//! - the zone `lan`: unknown names NXDOMAIN;
//! - the reverse zones of private and special ranges (RFC 6303 §4, RFC 6761
//!   §6.3, RFC 7793): 10/8, 172.16/12, 192.168/16, 127/8, 0/8, 169.254/16,
//!   the TEST-NETs, 255.255.255.255, 100.64/10, ::, ::1, fd00::/8, fe80::/10
//!   and 2001:db8::/32 — known addresses get their PTR, the rest NXDOMAIN.
//!
//! Names match without regard to ASCII case (RFC 4343). Negative answers carry
//! the zone's SOA (RFC 2308 §3) in the layout of RFC 6303 §3, with a TTL and
//! MINIMUM of [`TTL`]. Every answer is authoritative (AA).
//!
//! Rules from router7: the newest lease wins a name (static leases count as
//! newest: the user set them); a client can never take the router's name or
//! `localhost`; a name whose every lease expired answers NXDOMAIN instead of
//! leaking to the upstream. Leases with names that are not one valid DNS label
//! (letters, digits, `-`, `_`; at most 63 bytes) are skipped and reported.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crate::answer::Rendered;
use crate::wire::{self, CLASS_IN, Header, Query, flag, rcode, rtype};

/// The LAN's domain.
pub const DOMAIN: &str = "lan";
/// TTL of every local answer, and the SOA MINIMUM of local zones (seconds).
/// router7 used 3600; a minute lets a renamed or moved host show up quickly.
pub const TTL: u32 = 60;

/// One name from a DHCP lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseName {
    /// The host's name (the user's override if set).
    pub name: String,
    /// Its address.
    pub addr: Ipv4Addr,
    /// When the lease ends (`None`: static, never).
    pub expires: Option<Instant>,
}

/// What the local names are built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNames {
    /// The router's own name.
    pub hostname: Option<String>,
    /// The router's LAN address.
    pub router_v4: Option<Ipv4Addr>,
    /// The router's IPv6 address on the LAN (`<prefix>::1`).
    pub router_v6: Option<Ipv6Addr>,
    /// Names from leases.
    pub leases: Vec<LeaseName>,
}

#[derive(Debug, Clone)]
struct Host {
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
    expires: Option<Instant>,
}

impl Host {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

#[derive(Debug, Clone)]
struct ReverseZone {
    v6: bool,
    units: Vec<u8>,
    apex: String,
}

/// A record of a local answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRecord {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A name (dotted, without the final dot).
    Ptr(String),
    /// The SOA of the zone with this apex.
    Soa(String),
}

/// A local answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAnswer {
    /// NOERROR or NXDOMAIN.
    pub rcode: u16,
    /// The answer section (owned by the question's name).
    pub answers: Vec<LocalRecord>,
    /// The apex of the zone whose SOA goes into the authority section.
    pub authority: Option<String>,
}

impl LocalAnswer {
    fn records(answers: Vec<LocalRecord>, zone: Option<&str>) -> Self {
        let authority = if answers.is_empty() { zone.map(str::to_owned) } else { None };
        Self { rcode: rcode::NOERROR, answers, authority }
    }

    fn nxdomain(zone: Option<&str>) -> Self {
        Self { rcode: rcode::NXDOMAIN, answers: Vec::new(), authority: zone.map(str::to_owned) }
    }
}

/// The local names; see the module docs.
#[derive(Debug, Clone)]
pub struct LocalZone {
    hosts: HashMap<Vec<u8>, Host>,
    ptrs: HashMap<IpAddr, (String, Option<Instant>)>,
    zones: &'static [ReverseZone],
}

/// Whether `name` is one DNS label fit for a host name.
#[must_use]
pub fn valid_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= wire::MAX_LABEL_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn reverse_zones() -> &'static [ReverseZone] {
    static ZONES: std::sync::OnceLock<Vec<ReverseZone>> = std::sync::OnceLock::new();
    ZONES.get_or_init(build_reverse_zones)
}

fn build_reverse_zones() -> Vec<ReverseZone> {
    let mut v4: Vec<Vec<u8>> = vec![vec![0], vec![10], vec![127], vec![169, 254]];
    v4.extend((16..=31).map(|b| vec![172, b]));
    v4.extend([vec![192, 0, 2], vec![192, 168], vec![198, 51, 100], vec![203, 0, 113], vec![255, 255, 255, 255]]);
    v4.extend((64..=127).map(|b| vec![100, b]));
    let mut v6: Vec<Vec<u8>> = vec![vec![0; 32], {
        let mut one = vec![0; 32];
        one[31] = 1;
        one
    }];
    v6.push(vec![0xf, 0xd]);
    v6.extend((0x8..=0xb).map(|n| vec![0xf, 0xe, n]));
    v6.push(vec![2, 0, 0, 1, 0, 0xd, 0xb, 8]);
    let zone = |v6: bool, units: Vec<u8>| {
        let mut parts: Vec<String> =
            units.iter().rev().map(|u| if v6 { format!("{u:x}") } else { u.to_string() }).collect();
        parts.push(if v6 { "ip6.arpa".into() } else { "in-addr.arpa".into() });
        ReverseZone { v6, apex: parts.join("."), units }
    };
    v4.into_iter().map(|u| zone(false, u)).chain(v6.into_iter().map(|u| zone(true, u))).collect()
}

/// A reverse name's address part, most significant unit first.
struct ReverseName {
    v6: bool,
    units: [u8; 32],
    len: usize,
    /// Labels left of the address that are not address units.
    junk: bool,
}

impl ReverseName {
    fn full(&self) -> bool {
        self.len == if self.v6 { 32 } else { 4 } && !self.junk
    }

    fn addr(&self) -> Option<IpAddr> {
        if !self.full() {
            return None;
        }
        Some(if self.v6 {
            let mut b = [0u8; 16];
            for (i, byte) in b.iter_mut().enumerate() {
                *byte = (self.units[2 * i] << 4) | self.units[2 * i + 1];
            }
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::new(self.units[0], self.units[1], self.units[2], self.units[3]))
        })
    }

    fn parse(labels: &[&[u8]]) -> Option<Self> {
        let n = labels.len();
        let (v6, rest) = match labels {
            [rest @ .., b"in-addr", b"arpa"] => (false, rest),
            [rest @ .., b"ip6", b"arpa"] => (true, rest),
            _ => return None,
        };
        let _ = n;
        let max = if v6 { 32 } else { 4 };
        let mut units = [0u8; 32];
        let mut len = 0;
        let mut junk = false;
        for label in rest.iter().rev() {
            let unit = if v6 { nibble(label) } else { octet(label) };
            match unit {
                Some(u) if len < max && !junk => {
                    units[len] = u;
                    len += 1;
                }
                _ => junk = true,
            }
        }
        Some(Self { v6, units, len, junk })
    }
}

fn octet(label: &[u8]) -> Option<u8> {
    if label.is_empty() || label.len() > 3 || (label.len() > 1 && label[0] == b'0') {
        return None;
    }
    std::str::from_utf8(label).ok()?.parse().ok()
}

fn nibble(label: &[u8]) -> Option<u8> {
    match label {
        [c] => char::from(*c).to_digit(16).and_then(|d| u8::try_from(d).ok()),
        _ => None,
    }
}

fn under(units: &[u8], len: usize, addr: IpAddr) -> bool {
    let all: Vec<u8> = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().iter().flat_map(|b| [b >> 4, b & 0xf]).collect(),
    };
    all.get(..len) == Some(&units[..len])
}

impl LocalZone {
    /// Builds the names; returns them and a warning for every lease skipped.
    #[must_use]
    pub fn new(names: &LocalNames) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut hosts: HashMap<Vec<u8>, Host> = HashMap::new();
        let mut ptrs: HashMap<IpAddr, (String, Option<Instant>)> = HashMap::new();
        let router = names.hostname.as_deref().filter(|h| valid_label(h));
        if let Some(h) = names.hostname.as_deref()
            && router.is_none()
        {
            warnings.push(format!("the router's name {h:?} is not a DNS label; it is not published"));
        }
        if let Some(h) = router {
            hosts.insert(
                h.to_ascii_lowercase().into_bytes(),
                Host { v4: names.router_v4, v6: names.router_v6, expires: None },
            );
            for ip in [names.router_v4.map(IpAddr::V4), names.router_v6.map(IpAddr::V6)].into_iter().flatten() {
                ptrs.insert(ip, (format!("{h}.{DOMAIN}"), None));
            }
        }
        let mut leases: Vec<&LeaseName> = names.leases.iter().collect();
        // Newest first; static leases (no expiry) count as newest.
        leases.sort_by(|a, b| match (a.expires, b.expires) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => y.cmp(&x),
        });
        for lease in leases {
            if lease.name.is_empty() {
                continue;
            }
            if !valid_label(&lease.name) {
                warnings.push(format!("lease {}: name {:?} is not a DNS label; skipped", lease.addr, lease.name));
                continue;
            }
            let key = lease.name.to_ascii_lowercase().into_bytes();
            if key == b"localhost"
                || key == DOMAIN.as_bytes()
                || router.is_some_and(|h| h.eq_ignore_ascii_case(&lease.name))
            {
                warnings.push(format!("lease {}: name {:?} is reserved; skipped", lease.addr, lease.name));
                continue;
            }
            ptrs.entry(IpAddr::V4(lease.addr)).or_insert_with(|| (format!("{}.{DOMAIN}", lease.name), lease.expires));
            hosts.entry(key).or_insert_with(|| Host { v4: Some(lease.addr), v6: None, expires: lease.expires });
        }
        (Self { hosts, ptrs, zones: reverse_zones() }, warnings)
    }

    /// How many names are published.
    #[must_use]
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether no name is published.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The answer for `name` (lower-cased, uncompressed wire form) and
    /// `qtype`, or `None` when the name is not ours and goes upstream.
    #[must_use]
    pub fn lookup(&self, now: Instant, name: &[u8], qtype: u16) -> Option<LocalAnswer> {
        // Cheap test first: most names are none of ours.
        let mut count = 0;
        let mut last: &[u8] = &[];
        for label in wire::plain_labels(name) {
            count += 1;
            last = label;
        }
        let ours = matches!(last, b"localhost" | b"invalid" | b"arpa") || last == DOMAIN.as_bytes();
        if !(ours || count == 1 && self.hosts.contains_key(last)) {
            return None;
        }
        let labels: Vec<&[u8]> = wire::plain_labels(name).collect();
        match last {
            b"localhost" => Some(self.localhost(&labels, qtype)),
            b"invalid" => Some(LocalAnswer::nxdomain(None)),
            b"arpa" => self.reverse(now, &labels, qtype),
            _ if last == DOMAIN.as_bytes() => Some(match labels.as_slice() {
                [_] => Self::apex(DOMAIN, qtype),
                [host, _] => match self.hosts.get(*host) {
                    Some(h) if h.live(now) => Self::host(h, qtype, Some(DOMAIN)),
                    _ => LocalAnswer::nxdomain(Some(DOMAIN)),
                },
                _ => LocalAnswer::nxdomain(Some(DOMAIN)),
            }),
            _ => match self.hosts.get(last) {
                Some(h) if h.live(now) => Some(Self::host(h, qtype, None)),
                _ => Some(LocalAnswer::nxdomain(None)),
            },
        }
    }

    fn apex(zone: &str, qtype: u16) -> LocalAnswer {
        let answers =
            if matches!(qtype, rtype::SOA | rtype::ANY) { vec![LocalRecord::Soa(zone.to_owned())] } else { vec![] };
        LocalAnswer::records(answers, Some(zone))
    }

    fn localhost(&self, labels: &[&[u8]], qtype: u16) -> LocalAnswer {
        if labels.len() == 1 && qtype == rtype::SOA {
            return Self::apex("localhost", qtype);
        }
        let mut answers = Vec::new();
        if matches!(qtype, rtype::A | rtype::ANY) {
            answers.push(LocalRecord::A(Ipv4Addr::LOCALHOST));
        }
        if matches!(qtype, rtype::AAAA | rtype::ANY) {
            answers.push(LocalRecord::Aaaa(Ipv6Addr::LOCALHOST));
        }
        LocalAnswer::records(answers, Some("localhost"))
    }

    fn host(h: &Host, qtype: u16, zone: Option<&str>) -> LocalAnswer {
        let mut answers = Vec::new();
        if let Some(v4) = h.v4.filter(|_| matches!(qtype, rtype::A | rtype::ANY)) {
            answers.push(LocalRecord::A(v4));
        }
        if let Some(v6) = h.v6.filter(|_| matches!(qtype, rtype::AAAA | rtype::ANY)) {
            answers.push(LocalRecord::Aaaa(v6));
        }
        LocalAnswer::records(answers, zone)
    }

    fn ptr_of(&self, now: Instant, addr: IpAddr) -> Option<&str> {
        match self.ptrs.get(&addr) {
            Some((name, expires)) if expires.is_none_or(|e| now < e) => Some(name),
            _ => None,
        }
    }

    fn reverse(&self, now: Instant, labels: &[&[u8]], qtype: u16) -> Option<LocalAnswer> {
        let name = ReverseName::parse(labels)?;
        let ptr = |target: &str| {
            if matches!(qtype, rtype::PTR | rtype::ANY) { vec![LocalRecord::Ptr(target.to_owned())] } else { vec![] }
        };
        let zone = self
            .zones
            .iter()
            .find(|z| z.v6 == name.v6 && name.len >= z.units.len() && name.units[..z.units.len()] == z.units[..]);
        let Some(zone) = zone else {
            // Outside our zones only exact addresses we know (the router's
            // global IPv6 address) are answered here.
            let target = self.ptr_of(now, name.addr()?)?;
            return Some(LocalAnswer::records(ptr(target), None));
        };
        let apex = Some(zone.apex.as_str());
        if name.junk {
            return Some(LocalAnswer::nxdomain(apex));
        }
        if let Some(addr) = name.addr() {
            let loopback = addr.is_loopback();
            return Some(match self.ptr_of(now, addr) {
                Some(target) => LocalAnswer::records(ptr(target), apex),
                None if loopback => LocalAnswer::records(ptr("localhost"), apex),
                None => LocalAnswer::nxdomain(apex),
            });
        }
        if name.len == zone.units.len() {
            return Some(Self::apex(&zone.apex, qtype));
        }
        // An empty non-terminal exists when a known address lies below it (RFC 8020).
        let below = (!name.v6 && name.units[0] == 127)
            || self
                .ptrs
                .iter()
                .any(|(addr, (_, exp))| exp.is_none_or(|e| now < e) && under(&name.units, name.len, *addr));
        Some(if below { LocalAnswer::records(vec![], apex) } else { LocalAnswer::nxdomain(apex) })
    }
}

fn emit_name(out: &mut Vec<u8>, dotted: &str) {
    for label in dotted.split('.').filter(|l| !l.is_empty()) {
        let bytes = &label.as_bytes()[..label.len().min(wire::MAX_LABEL_LEN)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

fn emit_record(out: &mut Vec<u8>, owner: Option<&str>, record: &LocalRecord) {
    match owner {
        // The question's name, always at offset 12 (RFC 1035 §4.1.4).
        None => out.extend_from_slice(&[0xc0, 0x0c]),
        Some(o) => emit_name(out, o),
    }
    let rt = match record {
        LocalRecord::A(_) => rtype::A,
        LocalRecord::Aaaa(_) => rtype::AAAA,
        LocalRecord::Ptr(_) => rtype::PTR,
        LocalRecord::Soa(_) => rtype::SOA,
    };
    out.extend_from_slice(&rt.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&TTL.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    match record {
        LocalRecord::A(a) => out.extend_from_slice(&a.octets()),
        LocalRecord::Aaaa(a) => out.extend_from_slice(&a.octets()),
        LocalRecord::Ptr(target) => emit_name(out, target),
        LocalRecord::Soa(apex) => {
            // RFC 6303 §3: "@ SOA @ nobody.invalid. 1 3600 1200 604800 <minimum>".
            emit_name(out, apex);
            emit_name(out, "nobody.invalid");
            for v in [1u32, 3600, 1200, 604_800, TTL] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    let len = u16::try_from(out.len() - len_at - 2).unwrap_or(0);
    wire::put16(out, len_at, len);
}

/// Writes a local answer to `query` into `out`; over `limit` bytes, only the
/// question goes out, with TC set.
pub fn write_answer(out: &mut Vec<u8>, query: &Query<'_>, answer: &LocalAnswer, limit: usize) -> Rendered {
    out.clear();
    let ancount = u16::try_from(answer.answers.len()).unwrap_or(0);
    let header = Header {
        id: query.header.id,
        flags: wire::reply_flags(query.header.flags, answer.rcode) | flag::AA,
        qdcount: 1,
        ancount,
        nscount: u16::from(answer.authority.is_some()),
        arcount: u16::from(query.edns.is_some()),
    };
    header.emit(out);
    out.extend_from_slice(query.question.name);
    out.extend_from_slice(&query.question.qtype.to_be_bytes());
    out.extend_from_slice(&query.question.qclass.to_be_bytes());
    let question_end = out.len();
    for record in &answer.answers {
        emit_record(out, None, record);
    }
    if let Some(apex) = &answer.authority {
        emit_record(out, Some(apex), &LocalRecord::Soa(apex.clone()));
    }
    if let Some(e) = query.edns {
        wire::emit_opt(out, 0, e.dnssec_ok);
    }
    if out.len() <= limit {
        return Rendered::Full;
    }
    out.truncate(question_end);
    wire::put16(out, 2, header.flags | flag::TC);
    for pos in [6, 8] {
        wire::put16(out, pos, 0);
    }
    if let Some(e) = query.edns {
        wire::emit_opt(out, 0, e.dnssec_ok);
    }
    Rendered::Truncated
}
