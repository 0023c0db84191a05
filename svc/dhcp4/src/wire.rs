//! DHCPv4 messages as this client sends and accepts them: building DISCOVER,
//! REQUEST and RELEASE (RFC 2131 §4.4.1 table 5), and turning received bytes
//! into a [`Reply`] or a counted [`DropReason`].
//!
//! The BOOTP header is checked on the raw bytes before `dhcproto` decodes the
//! options: `dhcproto` trusts `hlen` when slicing `chaddr` and does not check
//! the magic cookie, so both are ours to reject first.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};

/// The fixed BOOTP header (RFC 2131 §2, figure 1) without options.
pub const BOOTP_HEADER_LEN: usize = 236;
/// The options' magic cookie (RFC 2131 §3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// The smallest message we send (RFC 1542 §2.1).
pub const MIN_MESSAGE_LEN: usize = 300;

/// Parameters we ask for (option 55). RFC 3442 §4: the classless static routes
/// option (121) "MUST appear in the parameter request list prior to both the
/// Router option code and the Static Routes option code".
pub const PARAMETER_REQUEST_LIST: [OptionCode; 9] = [
    OptionCode::SubnetMask,
    OptionCode::ClasslessStaticRoute,
    OptionCode::Router,
    OptionCode::DomainNameServer,
    OptionCode::DomainName,
    OptionCode::InterfaceMtu,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

/// Why a received packet was not used. Every reason is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Not an IPv4/UDP datagram the shell could take apart.
    Frame,
    /// Shorter than a BOOTP header with the magic cookie.
    Truncated,
    /// `op` is not BOOTREPLY.
    NotBootReply,
    /// `htype`/`hlen` are not Ethernet's 1/6.
    WrongHardware,
    /// `chaddr` is another client's.
    ForeignChaddr,
    /// The magic cookie is wrong.
    BadCookie,
    /// We have no transaction open (BOUND, INIT).
    NotWaiting,
    /// The `xid` is not our open transaction's.
    WrongXid,
    /// The options do not decode (truncated, bad lengths, bad UTF-8, …).
    MalformedOptions,
    /// Option 53 is missing.
    NoMessageType,
    /// A message type this state does not take (an ACK while SELECTING, …).
    UnexpectedType,
    /// An OFFER without a usable address or server identifier.
    InvalidOffer,
    /// An ACK without a usable address.
    InvalidAck,
}

impl DropReason {
    /// Every reason, in a fixed order (for counters).
    pub const ALL: [Self; 13] = [
        Self::Frame,
        Self::Truncated,
        Self::NotBootReply,
        Self::WrongHardware,
        Self::ForeignChaddr,
        Self::BadCookie,
        Self::NotWaiting,
        Self::WrongXid,
        Self::MalformedOptions,
        Self::NoMessageType,
        Self::UnexpectedType,
        Self::InvalidOffer,
        Self::InvalidAck,
    ];

    /// The name used in status and logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Frame => "frame",
            Self::Truncated => "truncated",
            Self::NotBootReply => "not_bootreply",
            Self::WrongHardware => "wrong_hardware",
            Self::ForeignChaddr => "foreign_chaddr",
            Self::BadCookie => "bad_cookie",
            Self::NotWaiting => "not_waiting",
            Self::WrongXid => "wrong_xid",
            Self::MalformedOptions => "malformed_options",
            Self::NoMessageType => "no_message_type",
            Self::UnexpectedType => "unexpected_type",
            Self::InvalidOffer => "invalid_offer",
            Self::InvalidAck => "invalid_ack",
        }
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// The kinds of reply a client acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// DHCPOFFER.
    Offer,
    /// DHCPACK.
    Ack,
    /// DHCPNAK.
    Nak,
    /// Anything else with a message type (a DISCOVER from a confused relay, …).
    Other,
}

/// A reply that passed the header checks and decoded.
#[derive(Debug, Clone)]
pub struct Reply {
    /// What it is.
    pub kind: ReplyKind,
    /// The decoded message.
    pub message: Message,
}

/// The BOOTP header fields we check before decoding anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Transaction ID.
    pub xid: u32,
}

/// Checks the fixed header of `bytes` as a BOOTREPLY to `mac`.
pub fn check_header(bytes: &[u8], mac: [u8; 6]) -> Result<Header, DropReason> {
    if bytes.len() < BOOTP_HEADER_LEN + MAGIC_COOKIE.len() {
        return Err(DropReason::Truncated);
    }
    if bytes[0] != 2 {
        return Err(DropReason::NotBootReply);
    }
    if bytes[1] != 1 || bytes[2] != 6 {
        return Err(DropReason::WrongHardware);
    }
    if bytes[28..34] != mac {
        return Err(DropReason::ForeignChaddr);
    }
    if bytes[BOOTP_HEADER_LEN..BOOTP_HEADER_LEN + 4] != MAGIC_COOKIE {
        return Err(DropReason::BadCookie);
    }
    Ok(Header { xid: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) })
}

/// The options this client acts on: mask, router, DNS, domain, MTU, lease
/// time, message type, server identifier, message, T1, T2, classless routes.
const USED_OPTIONS: [u8; 12] = [1, 3, 6, 15, 26, 51, 53, 54, 56, 58, 59, 121];
/// Of those, the ones holding text.
const TEXT_OPTIONS: [u8; 2] = [15, 56];

/// Walks an options field (RFC 2132 §2: code, length, value; pad and end have
/// no length) and keeps the values of [`USED_OPTIONS`], the instances of one
/// code concatenated (RFC 3396 §7). An option running past the end is
/// malformed; a field that simply ends without the end option is tolerated.
fn used_options(mut options: &[u8]) -> Result<BTreeMap<u8, Vec<u8>>, DropReason> {
    let mut used: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    loop {
        match options {
            [] | [255, ..] => return Ok(used),
            [0, rest @ ..] => options = rest,
            [code, len, rest @ ..] if rest.len() >= usize::from(*len) => {
                let (value, rest) = rest.split_at(usize::from(*len));
                if USED_OPTIONS.contains(code) {
                    used.entry(*code).or_default().extend_from_slice(value);
                }
                options = rest;
            }
            _ => return Err(DropReason::MalformedOptions),
        }
    }
}

/// Decodes the whole message after [`check_header`] passed.
///
/// Only the options we use reach `dhcproto`, rebuilt from our own walk of the
/// wire: its decoders for options we never read (FQDN, bulk leasequery, …)
/// assert on lengths in debug builds, and it stops at the first option it
/// cannot decode, silently keeping the ones before. A used option that does
/// not decode drops the reply as [`DropReason::MalformedOptions`]; text that is
/// not UTF-8 (a domain name, a NAK's message) only loses that option.
pub fn decode(bytes: &[u8]) -> Result<Reply, DropReason> {
    let options_at = BOOTP_HEADER_LEN + MAGIC_COOKIE.len();
    let (Some(header), Some(options)) = (bytes.get(..options_at), bytes.get(options_at..)) else {
        return Err(DropReason::Truncated);
    };
    let mut used = used_options(options)?;
    used.retain(|code, value| !TEXT_OPTIONS.contains(code) || std::str::from_utf8(value).is_ok());
    let mut rebuilt = Vec::with_capacity(bytes.len());
    rebuilt.extend_from_slice(header);
    for (code, value) in &used {
        if value.is_empty() {
            rebuilt.extend_from_slice(&[*code, 0]);
        }
        for chunk in value.chunks(255) {
            rebuilt.push(*code);
            rebuilt.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
            rebuilt.extend_from_slice(chunk);
        }
    }
    rebuilt.push(255);
    let message = Message::decode(&mut Decoder::new(&rebuilt)).map_err(|_| DropReason::MalformedOptions)?;
    if message.opts().len() != used.len() {
        return Err(DropReason::MalformedOptions);
    }
    let kind = match message.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(MessageType::Offer)) => ReplyKind::Offer,
        Some(DhcpOption::MessageType(MessageType::Ack)) => ReplyKind::Ack,
        Some(DhcpOption::MessageType(MessageType::Nak)) => ReplyKind::Nak,
        Some(DhcpOption::MessageType(_)) => ReplyKind::Other,
        _ => return Err(DropReason::NoMessageType),
    };
    Ok(Reply { kind, message })
}

/// Option 54, if present.
#[must_use]
pub fn server_id(message: &Message) -> Option<Ipv4Addr> {
    match message.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    }
}

/// Option 56 (a NAK's explanation), if present.
#[must_use]
pub fn server_message(message: &Message) -> Option<String> {
    match message.opts().get(OptionCode::Message) {
        Some(DhcpOption::Message(text)) => Some(text.chars().filter(|c| !c.is_control()).take(200).collect()),
        _ => None,
    }
}

/// Whether `ip` can be a host address of ours.
#[must_use]
pub fn usable_host_address(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
}

/// What the client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outgoing {
    /// DHCPDISCOVER (INIT → SELECTING).
    Discover,
    /// DHCPREQUEST answering an OFFER (REQUESTING): opt 50 + opt 54, broadcast.
    RequestSelecting,
    /// DHCPREQUEST verifying a stored lease (INIT-REBOOT): opt 50, no opt 54, broadcast.
    RequestInitReboot,
    /// DHCPREQUEST extending the lease at T1 (RENEWING): ciaddr, unicast to the server.
    RequestRenewing,
    /// DHCPREQUEST extending the lease at T2 (REBINDING): ciaddr, broadcast.
    RequestRebinding,
    /// DHCPRELEASE: ciaddr + opt 54, unicast to the server.
    Release,
}

impl Outgoing {
    /// Every kind, in a fixed order (for counters).
    pub const ALL: [Self; 6] = [
        Self::Discover,
        Self::RequestSelecting,
        Self::RequestInitReboot,
        Self::RequestRenewing,
        Self::RequestRebinding,
        Self::Release,
    ];

    /// The name used in status and logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discover => "discover",
            Self::RequestSelecting => "request_selecting",
            Self::RequestInitReboot => "request_init_reboot",
            Self::RequestRenewing => "request_renewing",
            Self::RequestRebinding => "request_rebinding",
            Self::Release => "release",
        }
    }

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Who we are on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `chaddr` and the client identifier's hardware address.
    pub mac: [u8; 6],
    /// Option 12, when the system has a name.
    pub hostname: Option<String>,
}

impl Identity {
    /// Longest hostname we send (a DNS label's limit; RFC 1035 §2.3.4).
    pub const MAX_HOSTNAME: usize = 63;

    /// An identity; `hostname` is dropped when empty or Linux's `(none)`, and
    /// cut to [`Self::MAX_HOSTNAME`] bytes at a character boundary.
    #[must_use]
    pub fn new(mac: [u8; 6], hostname: Option<&str>) -> Self {
        let hostname = hostname.map(str::trim).filter(|h| !h.is_empty() && *h != "(none)").map(|h| {
            let mut end = h.len().min(Self::MAX_HOSTNAME);
            while !h.is_char_boundary(end) {
                end -= 1;
            }
            h[..end].to_owned()
        });
        Self { mac, hostname }
    }

    /// Option 61: type 1 (Ethernet) followed by the MAC (RFC 2132 §9.14).
    #[must_use]
    pub fn client_id(&self) -> Vec<u8> {
        let mut id = Vec::with_capacity(7);
        id.push(1);
        id.extend_from_slice(&self.mac);
        id
    }
}

/// The fields of one outgoing message that vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// Transaction ID.
    pub xid: u32,
    /// Seconds since this acquisition or renewal began.
    pub secs: u16,
    /// `ciaddr`: our address in RENEWING/REBINDING and in a RELEASE, else 0.
    pub ciaddr: Ipv4Addr,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
}

/// Builds the BOOTP payload of an outgoing message (RFC 2131 §4.4.1 table 5).
#[must_use]
pub fn build(kind: Outgoing, identity: &Identity, f: Fields) -> Vec<u8> {
    let mut msg = Message::default();
    msg.set_opcode(Opcode::BootRequest)
        .set_htype(HType::Eth)
        .set_xid(f.xid)
        .set_secs(f.secs)
        .set_ciaddr(f.ciaddr)
        .set_chaddr(&identity.mac);
    let message_type = match kind {
        Outgoing::Discover => MessageType::Discover,
        Outgoing::Release => MessageType::Release,
        _ => MessageType::Request,
    };
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(message_type));
    opts.insert(DhcpOption::ClientIdentifier(identity.client_id()));
    if let Some(ip) = f.requested_ip {
        opts.insert(DhcpOption::RequestedIpAddress(ip));
    }
    if let Some(ip) = f.server_id {
        opts.insert(DhcpOption::ServerIdentifier(ip));
    }
    // Table 5: a RELEASE carries nothing beyond 53, 54 and 61.
    if kind != Outgoing::Release {
        if let Some(name) = &identity.hostname {
            opts.insert(DhcpOption::Hostname(name.clone()));
        }
        opts.insert(DhcpOption::ParameterRequestList(PARAMETER_REQUEST_LIST.to_vec()));
    }
    // Encoding into a Vec only fails for values dhcproto cannot represent; ours
    // are bounded (the hostname is capped when the identity is made).
    let mut bytes = msg.to_vec().unwrap_or_default();
    // RFC 1542 §2.1: some relay agents drop BOOTP messages under 300 octets;
    // zeros after the end option are pad.
    if !bytes.is_empty() && bytes.len() < MIN_MESSAGE_LEN {
        bytes.resize(MIN_MESSAGE_LEN, 0);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0xd8, 0x58, 0xd7, 0x00, 0x4e, 0xdf];

    fn identity() -> Identity {
        Identity { mac: MAC, hostname: Some("router7".into()) }
    }

    fn reply_bytes(kind: MessageType, xid: u32, mac: &[u8]) -> Vec<u8> {
        let mut msg = Message::default();
        msg.set_opcode(Opcode::BootReply).set_xid(xid).set_chaddr(mac).set_yiaddr(Ipv4Addr::new(10, 0, 0, 2));
        msg.opts_mut().insert(DhcpOption::MessageType(kind));
        msg.to_vec().unwrap()
    }

    #[test]
    fn discover_carries_client_id_hostname_and_the_parameter_list_with_121_before_3() {
        let bytes = build(
            Outgoing::Discover,
            &identity(),
            Fields { xid: 7, secs: 3, ciaddr: Ipv4Addr::UNSPECIFIED, requested_ip: None, server_id: None },
        );
        let msg = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!((msg.opcode(), msg.xid(), msg.secs(), msg.chaddr()), (Opcode::BootRequest, 7, 3, &MAC[..]));
        assert!(!msg.flags().broadcast(), "replies reach the raw socket either way");
        let opts = msg.opts();
        assert_eq!(opts.get(OptionCode::MessageType), Some(&DhcpOption::MessageType(MessageType::Discover)));
        assert_eq!(
            opts.get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![1, 0xd8, 0x58, 0xd7, 0x00, 0x4e, 0xdf]))
        );
        assert_eq!(opts.get(OptionCode::Hostname), Some(&DhcpOption::Hostname("router7".into())));
        let Some(DhcpOption::ParameterRequestList(list)) = opts.get(OptionCode::ParameterRequestList) else {
            panic!("no parameter request list");
        };
        let codes: Vec<u8> = list.iter().map(|c| u8::from(*c)).collect();
        for needed in [1, 3, 6, 15, 26, 51, 58, 59, 121] {
            assert!(codes.contains(&needed), "{needed} missing from {codes:?}");
        }
        let pos = |c: u8| codes.iter().position(|x| *x == c).unwrap();
        assert!(pos(121) < pos(3), "RFC 3442: 121 before 3");
        assert!(opts.get(OptionCode::RequestedIpAddress).is_none() && opts.get(OptionCode::ServerIdentifier).is_none());
    }

    #[test]
    fn release_carries_only_53_54_and_61() {
        let bytes = build(
            Outgoing::Release,
            &identity(),
            Fields {
                xid: 9,
                secs: 0,
                ciaddr: Ipv4Addr::new(10, 0, 0, 2),
                requested_ip: None,
                server_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
            },
        );
        let msg = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(msg.ciaddr(), Ipv4Addr::new(10, 0, 0, 2));
        let mut codes: Vec<u8> = msg.opts().iter().map(|(c, _)| u8::from(*c)).collect();
        codes.sort_unstable();
        assert_eq!(codes, vec![53, 54, 61]);
    }

    #[test]
    fn header_checks_reject_foreign_and_broken_packets() {
        let good = reply_bytes(MessageType::Ack, 0x1234, &MAC);
        assert_eq!(check_header(&good, MAC), Ok(Header { xid: 0x1234 }));
        assert_eq!(check_header(&good[..239], MAC), Err(DropReason::Truncated));
        let mut request = good.clone();
        request[0] = 1;
        assert_eq!(check_header(&request, MAC), Err(DropReason::NotBootReply));
        let mut long_hlen = good.clone();
        long_hlen[2] = 200;
        assert_eq!(check_header(&long_hlen, MAC), Err(DropReason::WrongHardware));
        let other = reply_bytes(MessageType::Ack, 0x1234, &[2, 0, 0, 0, 0, 9]);
        assert_eq!(check_header(&other, MAC), Err(DropReason::ForeignChaddr));
        let mut cookie = good.clone();
        cookie[236] = 0;
        assert_eq!(check_header(&cookie, MAC), Err(DropReason::BadCookie));
    }

    #[test]
    fn decoding_tells_message_types_and_rejects_broken_options() {
        assert_eq!(decode(&reply_bytes(MessageType::Offer, 1, &MAC)).unwrap().kind, ReplyKind::Offer);
        assert_eq!(decode(&reply_bytes(MessageType::Nak, 1, &MAC)).unwrap().kind, ReplyKind::Nak);
        assert_eq!(decode(&reply_bytes(MessageType::Discover, 1, &MAC)).unwrap().kind, ReplyKind::Other);
        let mut no_type = reply_bytes(MessageType::Ack, 1, &MAC);
        // Turn option 53 into a pad-free unknown option 250 of the same length.
        let at = no_type.iter().skip(240).position(|b| *b == 53).unwrap() + 240;
        no_type[at] = 250;
        assert_eq!(decode(&no_type).unwrap_err(), DropReason::NoMessageType);
        // A router option whose length runs past the end of the packet.
        let mut cut = reply_bytes(MessageType::Ack, 1, &MAC);
        cut.pop(); // the end option
        cut.extend_from_slice(&[3, 8, 10, 0, 0]);
        assert_eq!(decode(&cut).unwrap_err(), DropReason::MalformedOptions);
        // A router option of 5 bytes: whole on the wire, but not addresses.
        let mut odd = reply_bytes(MessageType::Ack, 1, &MAC);
        odd.pop();
        odd.extend_from_slice(&[3, 5, 10, 0, 0, 1, 1, 6, 4, 10, 0, 0, 53, 255]);
        assert_eq!(decode(&odd).unwrap_err(), DropReason::MalformedOptions);
        // Options we never read cannot hurt, however broken: an FQDN (81) of
        // length 0 and a bulk leasequery time (152) of 2 bytes.
        let mut unused = reply_bytes(MessageType::Ack, 1, &MAC);
        unused.pop();
        unused.extend_from_slice(&[81, 0, 152, 2, 1, 2, 255]);
        assert_eq!(decode(&unused).unwrap().kind, ReplyKind::Ack);
        // A domain name that is not UTF-8 loses the option, not the reply;
        // split option 6 instances are joined (RFC 3396).
        let mut latin1 = reply_bytes(MessageType::Ack, 1, &MAC);
        latin1.pop();
        latin1.extend_from_slice(&[15, 3, b'c', 0xe9, b'z', 6, 2, 10, 0, 0, 6, 2, 0, 53, 255]);
        let reply = decode(&latin1).unwrap();
        assert!(reply.message.opts().get(OptionCode::DomainName).is_none());
        assert_eq!(
            reply.message.opts().get(OptionCode::DomainNameServer),
            Some(&DhcpOption::DomainNameServer(vec![Ipv4Addr::new(10, 0, 0, 53)]))
        );
        // Pad bytes, and no end option at the very end, are fine.
        let mut padded = reply_bytes(MessageType::Ack, 1, &MAC);
        padded.pop();
        padded.extend_from_slice(&[0, 0, 6, 4, 10, 0, 0, 53]);
        let reply = decode(&padded).unwrap();
        assert_eq!(
            reply.message.opts().get(OptionCode::DomainNameServer),
            Some(&DhcpOption::DomainNameServer(vec![Ipv4Addr::new(10, 0, 0, 53)]))
        );
    }
}
