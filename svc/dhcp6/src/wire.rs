//! DHCPv6 messages on the wire (RFC 8415 §8, §21), built and read with
//! `dhcproto::v6`.
//!
//! Reading goes through a strict framing pass first. dhcproto is lenient in
//! ways a client cannot afford: its option-list decoder stops silently at the
//! first option it cannot decode (so a bad DNS option would hide the IA_PD
//! after it), some options are read without regard to their stated length
//! (Preference, Elapsed Time, Status Code), and a Status Code shorter than two
//! bytes underflows a subtraction. So [`parse`] walks the TLVs itself, checks
//! the length of every option the client uses, keeps only those (skipping
//! vendor options and everything else it has no use for), and hands dhcproto a
//! clean buffer. The number of options dhcproto decodes must equal the number
//! kept, or the message is rejected: nothing is ever dropped silently.
//!
//! This module owns no state; [`crate::client`] decides what a message means.

use std::fmt;
use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, ORO, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

pub use dhcproto::v6::Status;

/// `All_DHCP_Relay_Agents_and_Servers` (RFC 8415 §7.1): where every message of ours goes.
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// The client's UDP port (RFC 8415 §7.2).
pub const CLIENT_PORT: u16 = 546;
/// The servers' and relay agents' UDP port (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;

/// Option codes the client reads (RFC 8415 §21, RFC 3646, RFC 8415 §21.24).
mod code {
    pub const CLIENT_ID: u16 = 1;
    pub const SERVER_ID: u16 = 2;
    pub const IA_NA: u16 = 3;
    pub const IAADDR: u16 = 5;
    pub const PREFERENCE: u16 = 7;
    pub const STATUS_CODE: u16 = 13;
    pub const DNS_SERVERS: u16 = 23;
    pub const DOMAIN_LIST: u16 = 24;
    pub const IA_PD: u16 = 25;
    pub const IAPREFIX: u16 = 26;
    pub const SOL_MAX_RT: u16 = 82;
}

/// Why a datagram is not a DHCPv6 message the client can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// The option at fault (0 for the header).
    pub option: u16,
    /// What is wrong with it.
    pub what: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.option == 0 { write!(f, "{}", self.what) } else { write!(f, "option {}: {}", self.option, self.what) }
    }
}

impl std::error::Error for Malformed {}

fn bad(option: u16, what: &'static str) -> Malformed {
    Malformed { option, what }
}

/// A Status Code option (RFC 8415 §21.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    /// The code.
    pub code: Status,
    /// The server's message for people.
    pub message: String,
}

impl StatusInfo {
    /// Whether this is `Success`.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.code == Status::Success
    }
}

/// An IA Address option (RFC 8415 §21.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaAddress {
    /// The address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime in seconds (0xffffffff = infinity, §7.7).
    pub preferred: u32,
    /// Valid lifetime in seconds.
    pub valid: u32,
}

/// An IA Prefix option (RFC 8415 §21.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaPrefix {
    /// The prefix.
    pub prefix: Ipv6Addr,
    /// Its length.
    pub len: u8,
    /// Preferred lifetime in seconds.
    pub preferred: u32,
    /// Valid lifetime in seconds.
    pub valid: u32,
}

/// An IA_NA option (RFC 8415 §21.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaNa {
    /// IAID.
    pub iaid: u32,
    /// T1 in seconds.
    pub t1: u32,
    /// T2 in seconds.
    pub t2: u32,
    /// Its addresses.
    pub addresses: Vec<IaAddress>,
    /// Its status, when the server sent one.
    pub status: Option<StatusInfo>,
}

/// An IA_PD option (RFC 8415 §21.21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPd {
    /// IAID.
    pub iaid: u32,
    /// T1 in seconds.
    pub t1: u32,
    /// T2 in seconds.
    pub t2: u32,
    /// Its prefixes.
    pub prefixes: Vec<IaPrefix>,
    /// Its status, when the server sent one.
    pub status: Option<StatusInfo>,
}

/// A message from a server, reduced to what the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Advertise or Reply (Reconfigure and others are turned away before parsing).
    pub kind: MessageType,
    /// Transaction ID.
    pub xid: [u8; 3],
    /// Client Identifier (option 1).
    pub client_id: Option<Vec<u8>>,
    /// Server Identifier (option 2).
    pub server_id: Option<Vec<u8>>,
    /// Preference (option 7); 0 when absent (RFC 8415 §18.2.9).
    pub preference: u8,
    /// The top-level Status Code.
    pub status: Option<StatusInfo>,
    /// IA_NA options.
    pub ia_na: Vec<IaNa>,
    /// IA_PD options.
    pub ia_pd: Vec<IaPd>,
    /// DNS recursive name servers (option 23, RFC 3646).
    pub dns: Vec<Ipv6Addr>,
    /// Domain search list (option 24, RFC 3646), without trailing dots.
    pub domains: Vec<String>,
    /// SOL_MAX_RT (option 82, RFC 8415 §21.24).
    pub sol_max_rt: Option<u32>,
}

/// The message type and transaction ID of a datagram, without reading further.
pub fn header(bytes: &[u8]) -> Result<(MessageType, [u8; 3]), Malformed> {
    match bytes {
        [t, a, b, c, ..] => Ok((MessageType::from(*t), [*a, *b, *c])),
        _ => Err(bad(0, "shorter than a message header")),
    }
}

/// Which options are kept at each level of nesting.
#[derive(Clone, Copy)]
enum Level {
    Top,
    IaNa,
    IaPd,
    /// Inside an IA Address or IA Prefix: only the Status Code.
    Lease,
}

impl Level {
    fn keeps(self, option: u16) -> bool {
        use code::*;
        match self {
            Self::Top => {
                matches!(option, CLIENT_ID | SERVER_ID | IA_NA | PREFERENCE | STATUS_CODE | DNS_SERVERS)
                    || matches!(option, DOMAIN_LIST | IA_PD | SOL_MAX_RT)
            }
            Self::IaNa => matches!(option, IAADDR | STATUS_CODE),
            Self::IaPd => matches!(option, IAPREFIX | STATUS_CODE),
            Self::Lease => option == STATUS_CODE,
        }
    }
}

fn put_option(out: &mut Vec<u8>, option: u16, body: &[u8]) -> Result<(), Malformed> {
    let len = u16::try_from(body.len()).map_err(|_| bad(option, "too long"))?;
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Copies the options of `buf` that `level` keeps into `out`, checking each
/// one's length; returns how many options it kept, nested ones included.
fn filter(buf: &[u8], level: Level, out: &mut Vec<u8>) -> Result<usize, Malformed> {
    use code::*;
    let mut kept = 0;
    let mut rest = buf;
    while !rest.is_empty() {
        let [c0, c1, l0, l1, tail @ ..] = rest else {
            return Err(bad(0, "option header cut short"));
        };
        let option = u16::from_be_bytes([*c0, *c1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let Some((body, next)) = tail.split_at_checked(len) else {
            return Err(bad(option, "longer than the message"));
        };
        rest = next;
        if !level.keeps(option) {
            continue;
        }
        // An IA or lease option: a fixed part, then options of the next level.
        let nested = |fixed: usize, inner: Level, out: &mut Vec<u8>| -> Result<usize, Malformed> {
            if body.len() < fixed {
                return Err(bad(option, "shorter than its fixed fields"));
            }
            let mut inner_out = body[..fixed].to_vec();
            let n = filter(&body[fixed..], inner, &mut inner_out)?;
            put_option(out, option, &inner_out)?;
            Ok(n)
        };
        kept += 1;
        match option {
            CLIENT_ID | SERVER_ID if body.is_empty() => return Err(bad(option, "empty DUID")),
            IA_NA => kept += nested(12, Level::IaNa, out)?,
            IA_PD => kept += nested(12, Level::IaPd, out)?,
            IAADDR => kept += nested(24, Level::Lease, out)?,
            IAPREFIX => kept += nested(25, Level::Lease, out)?,
            PREFERENCE if len != 1 => return Err(bad(option, "length is not 1")),
            SOL_MAX_RT if len != 4 => return Err(bad(option, "length is not 4")),
            DNS_SERVERS if len % 16 != 0 => return Err(bad(option, "length is not a multiple of 16")),
            STATUS_CODE => {
                let [s0, s1, message @ ..] = body else {
                    return Err(bad(option, "shorter than a status code"));
                };
                // §21.13: the message is UTF-8. One that is not is replaced, not
                // fatal: the code is what matters.
                if std::str::from_utf8(message).is_ok() {
                    put_option(out, option, body)?;
                } else {
                    let mut fixed = vec![*s0, *s1];
                    fixed.extend_from_slice(b"(status message is not UTF-8)");
                    put_option(out, option, &fixed)?;
                }
            }
            _ => put_option(out, option, body)?,
        }
    }
    Ok(kept)
}

fn count_decoded(opts: &DhcpOptions) -> usize {
    opts.iter()
        .map(|o| {
            1 + match o {
                DhcpOption::IANA(ia) => count_decoded(&ia.opts),
                DhcpOption::IAPD(ia) => count_decoded(&ia.opts),
                DhcpOption::IAAddr(a) => count_decoded(&a.opts),
                DhcpOption::IAPrefix(p) => count_decoded(&p.opts),
                _ => 0,
            }
        })
        .sum()
}

fn status_of(opts: &DhcpOptions) -> Option<StatusInfo> {
    match opts.get(OptionCode::StatusCode) {
        Some(DhcpOption::StatusCode(s)) => Some(StatusInfo { code: s.status, message: s.msg.clone() }),
        _ => None,
    }
}

fn ia_na_of(ia: &IANA) -> IaNa {
    let addresses = ia
        .opts
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some(IaAddress { addr: a.addr, preferred: a.preferred_life, valid: a.valid_life }),
            _ => None,
        })
        .collect();
    IaNa { iaid: ia.id, t1: ia.t1, t2: ia.t2, addresses, status: status_of(&ia.opts) }
}

fn ia_pd_of(ia: &IAPD) -> IaPd {
    let prefixes = ia
        .opts
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAPrefix(p) => Some(IaPrefix {
                prefix: p.prefix_ip,
                len: p.prefix_len,
                preferred: p.preferred_lifetime,
                valid: p.valid_lifetime,
            }),
            _ => None,
        })
        .collect();
    IaPd { iaid: ia.id, t1: ia.t1, t2: ia.t2, prefixes, status: status_of(&ia.opts) }
}

/// Reads a message from a server. Options the client has no use for are
/// skipped; a malformed option it uses rejects the whole message.
pub fn parse(bytes: &[u8]) -> Result<Inbound, Malformed> {
    let (kind, xid) = header(bytes)?;
    let mut clean = bytes[..4].to_vec();
    let kept = filter(&bytes[4..], Level::Top, &mut clean)?;
    let msg = Message::decode(&mut Decoder::new(&clean)).map_err(|_| bad(0, "undecodable"))?;
    if count_decoded(msg.opts()) != kept {
        return Err(bad(0, "an option did not decode"));
    }
    let mut inbound = Inbound {
        kind,
        xid,
        client_id: None,
        server_id: None,
        preference: 0,
        status: None,
        ia_na: Vec::new(),
        ia_pd: Vec::new(),
        dns: Vec::new(),
        domains: Vec::new(),
        sol_max_rt: None,
    };
    // With several of one kind, the first counts (IAs excepted).
    for option in msg.opts().iter() {
        match option {
            DhcpOption::ClientId(d) => {
                inbound.client_id.get_or_insert_with(|| d.clone());
            }
            DhcpOption::ServerId(d) => {
                inbound.server_id.get_or_insert_with(|| d.clone());
            }
            DhcpOption::Preference(p) => inbound.preference = *p,
            DhcpOption::StatusCode(s) => {
                inbound.status.get_or_insert_with(|| StatusInfo { code: s.status, message: s.msg.clone() });
            }
            DhcpOption::IANA(ia) => inbound.ia_na.push(ia_na_of(ia)),
            DhcpOption::IAPD(ia) => inbound.ia_pd.push(ia_pd_of(ia)),
            DhcpOption::DomainNameServers(d) if inbound.dns.is_empty() => inbound.dns.clone_from(d),
            DhcpOption::DomainSearchList(names) if inbound.domains.is_empty() => {
                inbound.domains = names
                    .iter()
                    .map(|n| n.to_string().trim_end_matches('.').to_owned())
                    .filter(|n| !n.is_empty())
                    .collect();
            }
            DhcpOption::Unknown(u) if u16::from(u.code()) == code::SOL_MAX_RT => {
                if let Ok(b) = <[u8; 4]>::try_from(u.data()) {
                    inbound.sol_max_rt.get_or_insert(u32::from_be_bytes(b));
                }
            }
            _ => {}
        }
    }
    Ok(inbound)
}

/// An IA_NA as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaNaRequest {
    /// IAID.
    pub iaid: u32,
    /// Addresses held or offered (hints in a Solicit or Request).
    pub addresses: Vec<Ipv6Addr>,
}

/// An IA_PD as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPdRequest {
    /// IAID.
    pub iaid: u32,
    /// Prefixes held or offered.
    pub prefixes: Vec<(Ipv6Addr, u8)>,
    /// A prefix-length hint sent as `::/len` when no prefix is named (RFC 8415 §18.2.1).
    pub length_hint: Option<u8>,
}

/// A message the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound<'a> {
    /// Solicit, Request, Renew, Rebind or Release.
    pub kind: MessageType,
    /// Transaction ID.
    pub xid: [u8; 3],
    /// Our DUID, sent byte for byte.
    pub client_id: &'a [u8],
    /// The server's DUID (Request, Renew, Release).
    pub server_id: Option<&'a [u8]>,
    /// Elapsed Time in hundredths of a second (RFC 8415 §21.9).
    pub elapsed_cs: u16,
    /// Whether to ask for DNS servers, the domain list and SOL_MAX_RT (not in a Release).
    pub oro: bool,
    /// The IA_NA, if any.
    pub ia_na: Option<IaNaRequest>,
    /// The IA_PD, if any.
    pub ia_pd: Option<IaPdRequest>,
}

/// Encodes `m`. Lifetimes and T1/T2 are sent as 0: servers ignore them in
/// Renew and Rebind (RFC 8415 §18.2.4), and in a Solicit or Request they would
/// only be hints we have no reason to give.
#[must_use]
pub fn build(m: &Outbound<'_>) -> Vec<u8> {
    let mut msg = Message::new_with_id(m.kind, m.xid);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::ClientId(m.client_id.to_vec()));
    if let Some(server) = m.server_id {
        opts.insert(DhcpOption::ServerId(server.to_vec()));
    }
    opts.insert(DhcpOption::ElapsedTime(m.elapsed_cs));
    if m.oro {
        // §21.24: a client MUST include SOL_MAX_RT in every ORO it sends.
        opts.insert(DhcpOption::ORO(ORO {
            opts: vec![OptionCode::DomainNameServers, OptionCode::DomainSearchList, OptionCode::SolMaxRt],
        }));
    }
    if let Some(na) = &m.ia_na {
        let mut inner = DhcpOptions::new();
        for addr in &na.addresses {
            inner.insert(DhcpOption::IAAddr(IAAddr {
                addr: *addr,
                preferred_life: 0,
                valid_life: 0,
                opts: DhcpOptions::new(),
            }));
        }
        opts.insert(DhcpOption::IANA(IANA { id: na.iaid, t1: 0, t2: 0, opts: inner }));
    }
    if let Some(pd) = &m.ia_pd {
        let mut inner = DhcpOptions::new();
        let hint = pd.length_hint.filter(|_| pd.prefixes.is_empty()).map(|len| (Ipv6Addr::UNSPECIFIED, len));
        for (prefix, len) in pd.prefixes.iter().copied().chain(hint) {
            inner.insert(DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: 0,
                valid_lifetime: 0,
                prefix_len: len,
                prefix_ip: prefix,
                opts: DhcpOptions::new(),
            }));
        }
        opts.insert(DhcpOption::IAPD(IAPD { id: pd.iaid, t1: 0, t2: 0, opts: inner }));
    }
    let mut out = Vec::with_capacity(128);
    // Encoding into a Vec cannot run out of room, and every length we write
    // fits its field: DUIDs come from a file capped at 130 bytes and the IAs
    // hold a handful of 25-byte options.
    msg.encode(&mut Encoder::new(&mut out)).expect("encoding a client message into a Vec");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(code: u16, body: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn reply(options: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![7, 0x73, 0x8c, 0x3b];
        for o in options {
            v.extend_from_slice(o);
        }
        v
    }

    fn ia_pd_body(iaid: u32, t1: u32, t2: u32, inner: &[Vec<u8>]) -> Vec<u8> {
        let mut b = iaid.to_be_bytes().to_vec();
        b.extend_from_slice(&t1.to_be_bytes());
        b.extend_from_slice(&t2.to_be_bytes());
        for o in inner {
            b.extend_from_slice(o);
        }
        b
    }

    fn prefix_body(preferred: u32, valid: u32, len: u8, prefix: &str) -> Vec<u8> {
        let mut b = preferred.to_be_bytes().to_vec();
        b.extend_from_slice(&valid.to_be_bytes());
        b.push(len);
        b.extend_from_slice(&prefix.parse::<Ipv6Addr>().unwrap().octets());
        b
    }

    #[test]
    fn reads_an_ia_pd_with_its_status_and_the_dns_servers() {
        let status = opt(13, b"\x00\x00fine");
        let msg = reply(&[
            opt(1, &[0, 3, 0, 1, 2, 0x73, 0x53, 0, 0xca, 0xfe]),
            opt(2, &[0, 1, 2]),
            opt(25, &ia_pd_body(1, 1200, 1800, &[opt(26, &prefix_body(3600, 86400, 48, "2a02:168:4a00::")), status])),
            opt(23, &"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets()),
            opt(82, &3600u32.to_be_bytes()),
        ]);
        let m = parse(&msg).unwrap();
        assert_eq!(m.kind, MessageType::Reply);
        assert_eq!(m.xid, [0x73, 0x8c, 0x3b]);
        assert_eq!(m.server_id.as_deref(), Some(&[0, 1, 2][..]));
        assert_eq!(m.ia_pd.len(), 1);
        let pd = &m.ia_pd[0];
        assert_eq!((pd.iaid, pd.t1, pd.t2), (1, 1200, 1800));
        assert_eq!(
            pd.prefixes,
            vec![IaPrefix { prefix: "2a02:168:4a00::".parse().unwrap(), len: 48, preferred: 3600, valid: 86400 }]
        );
        assert_eq!(pd.status, Some(StatusInfo { code: Status::Success, message: "fine".into() }));
        assert_eq!(m.dns, vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
        assert_eq!(m.sol_max_rt, Some(3600));
    }

    #[test]
    fn rejects_options_whose_lengths_dhcproto_would_misread() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (reply(&[opt(13, &[0])]), 13),       // status shorter than its code (dhcproto underflows)
            (reply(&[opt(7, &[1, 2])]), 7),      // preference of two bytes
            (reply(&[opt(23, &[0; 17])]), 23),   // DNS not a multiple of 16
            (reply(&[opt(82, &[0, 0, 1])]), 82), // SOL_MAX_RT of three bytes
            (reply(&[opt(25, &[0; 11])]), 25),   // IA_PD shorter than IAID+T1+T2
            (reply(&[opt(2, &[])]), 2),          // empty server DUID
            (reply(&[opt(25, &ia_pd_body(1, 0, 0, &[opt(26, &[0; 24])]))]), 26),
            (reply(&[opt(25, &ia_pd_body(1, 0, 0, &[opt(26, &prefix_body(1, 2, 48, "::")), vec![0, 13, 0]]))]), 0),
        ];
        for (msg, option) in cases {
            let e = parse(&msg).unwrap_err();
            assert_eq!(e.option, option, "{msg:02x?}: {e}");
        }
        let mut truncated = reply(&[opt(23, &[0; 16])]);
        truncated.pop();
        assert_eq!(parse(&truncated).unwrap_err().option, 23);
        assert!(parse(&[7, 0, 0]).is_err());
    }

    #[test]
    fn skips_options_it_does_not_use_even_when_their_insides_are_nonsense() {
        // Vendor options (17) hold vendor sub-options that dhcproto would try to
        // read as DHCPv6 options; NTP (56) with a bad sub-option; Reconfigure Accept with a body.
        let msg = reply(&[
            opt(17, &[0, 0, 0, 9, 0, 7, 0, 4, 1, 2, 3, 4]),
            opt(56, &[0, 9, 0, 0]),
            opt(20, &[1, 2, 3]),
            opt(2, &[0, 1, 2]),
        ]);
        let m = parse(&msg).unwrap();
        assert_eq!(m.server_id.as_deref(), Some(&[0, 1, 2][..]));
    }

    #[test]
    fn a_status_message_that_is_not_utf8_is_replaced_not_fatal() {
        let msg = reply(&[opt(13, &[0, 6, 0xff, 0xfe])]);
        let m = parse(&msg).unwrap();
        let s = m.status.unwrap();
        assert_eq!(s.code, Status::NoPrefixAvail);
        assert!(s.message.contains("not UTF-8"));
    }

    #[test]
    fn builds_a_solicit_with_a_length_hint_and_every_required_option() {
        let duid = [0, 0x0a, 0, 3, 0, 1, 0x4c, 0x5e, 0x0c, 0x41, 0xbf, 0x39];
        let bytes = build(&Outbound {
            kind: MessageType::Solicit,
            xid: [0x48, 0xe5, 0x9e],
            client_id: &duid,
            server_id: None,
            elapsed_cs: 0,
            oro: true,
            ia_na: Some(IaNaRequest { iaid: 1, addresses: vec![] }),
            ia_pd: Some(IaPdRequest { iaid: 1, prefixes: vec![], length_hint: Some(56) }),
        });
        let msg = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(msg.msg_type(), MessageType::Solicit);
        assert_eq!(msg.xid(), [0x48, 0xe5, 0x9e]);
        assert_eq!(msg.opts().get(OptionCode::ClientId), Some(&DhcpOption::ClientId(duid.to_vec())));
        assert_eq!(msg.opts().get(OptionCode::ElapsedTime), Some(&DhcpOption::ElapsedTime(0)));
        assert!(msg.opts().get(OptionCode::ServerId).is_none());
        let Some(DhcpOption::ORO(oro)) = msg.opts().get(OptionCode::ORO) else { panic!("no ORO") };
        assert!(oro.opts.contains(&OptionCode::SolMaxRt) && oro.opts.contains(&OptionCode::DomainNameServers));
        let Some(DhcpOption::IAPD(pd)) = msg.opts().get(OptionCode::IAPD) else { panic!("no IA_PD") };
        assert_eq!(pd.id, 1);
        let Some(DhcpOption::IAPrefix(hint)) = pd.opts.get(OptionCode::IAPrefix) else { panic!("no hint") };
        assert_eq!((hint.prefix_ip, hint.prefix_len), (Ipv6Addr::UNSPECIFIED, 56));
        assert_eq!(msg.opts().get_all(OptionCode::IAPD).map(<[_]>::len), Some(1));
        assert!(matches!(msg.opts().get(OptionCode::IANA), Some(DhcpOption::IANA(na)) if na.id == 1));
    }
}
