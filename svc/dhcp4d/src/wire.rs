//! DHCPv4 messages as the server sees them: a [`Request`] parsed from a
//! client's datagram (or rejected with a [`DropReason`] that is counted), and a
//! [`Reply`] encoded for sending.
//!
//! The parser is ours rather than `dhcproto`'s decoder on purpose: that decoder
//! stops silently at the first option it cannot decode (a hostname that is not
//! UTF-8 hides every option after it, the requested address included), so a
//! malformed packet could neither be counted nor told apart from a well-formed
//! one without those options. Here the option area is walked once with checked
//! lengths; only the options the server uses are kept. `dhcproto` remains the
//! independent encoder and decoder the tests and the fuzz target check us
//! against.
//!
//! Sources: RFC 2131 §2 (the fixed header), §4.1 (where replies go) and
//! table 3 (options in replies); RFC 2132 §3 (option format), §9.3 (option
//! overload); RFC 3396 (a long option split into several is concatenated);
//! RFC 4702 (client FQDN); RFC 3046 (relay agent information, echoed back).

use std::fmt;
use std::net::Ipv4Addr;

/// A hardware (MAC) address.
pub type Mac = [u8; 6];

/// The server's UDP port.
pub const SERVER_PORT: u16 = 67;
/// The client's UDP port.
pub const CLIENT_PORT: u16 = 68;

/// The fixed BOOTP header plus the magic cookie (RFC 2131 §3).
pub const HEADER_LEN: usize = 240;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// Replies are padded to the minimum BOOTP message size (RFC 1542 §2.1).
const MIN_REPLY_LEN: usize = 300;
/// What every client must accept (RFC 2131 §2: 576-byte IP datagrams), less IP and UDP headers.
const MIN_MAX_MESSAGE: usize = 576 - 28;
/// We never send more than fits an unfragmented Ethernet frame.
const MAX_MESSAGE: usize = 1500 - 28;
/// A hostname longer than this cannot be a DNS name at all (RFC 1035 §2.3.4).
pub const MAX_HOSTNAME_BYTES: usize = 255;

/// Option codes the server reads or writes (RFC 2132 unless noted).
pub mod code {
    /// Subnet mask (§3.3).
    pub const SUBNET_MASK: u8 = 1;
    /// Routers (§3.5).
    pub const ROUTER: u8 = 3;
    /// DNS servers (§3.8).
    pub const DNS: u8 = 6;
    /// Host name (§3.14).
    pub const HOSTNAME: u8 = 12;
    /// Domain name (§3.17).
    pub const DOMAIN_NAME: u8 = 15;
    /// Broadcast address (§5.3).
    pub const BROADCAST: u8 = 28;
    /// Requested IP address (§9.1).
    pub const REQUESTED_IP: u8 = 50;
    /// Lease time (§9.2).
    pub const LEASE_TIME: u8 = 51;
    /// Option overload (§9.3).
    pub const OVERLOAD: u8 = 52;
    /// Message type (§9.6).
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier (§9.7).
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list (§9.8).
    pub const PARAMETER_LIST: u8 = 55;
    /// Message, for people (§9.9).
    pub const MESSAGE: u8 = 56;
    /// Maximum message size (§9.10).
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal time T1 (§9.11).
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding time T2 (§9.12).
    pub const REBINDING_TIME: u8 = 59;
    /// Client FQDN (RFC 4702).
    pub const CLIENT_FQDN: u8 = 81;
    /// Relay agent information (RFC 3046).
    pub const RELAY_AGENT_INFO: u8 = 82;
    /// Domain search list (RFC 3397).
    pub const DOMAIN_SEARCH: u8 = 119;
    /// Padding.
    pub const PAD: u8 = 0;
    /// End of options.
    pub const END: u8 = 255;
}

/// DHCP message types (RFC 2132 §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Client looking for servers.
    Discover,
    /// Server offering an address.
    Offer,
    /// Client asking for (or renewing) an address.
    Request,
    /// Client saying the address is already in use.
    Decline,
    /// Server confirming.
    Ack,
    /// Server refusing.
    Nak,
    /// Client giving the address back.
    Release,
    /// Client asking for configuration only.
    Inform,
}

impl MessageType {
    /// The option 53 value.
    #[must_use]
    pub fn value(self) -> u8 {
        match self {
            Self::Discover => 1,
            Self::Offer => 2,
            Self::Request => 3,
            Self::Decline => 4,
            Self::Ack => 5,
            Self::Nak => 6,
            Self::Release => 7,
            Self::Inform => 8,
        }
    }

    /// The type for an option 53 value.
    #[must_use]
    pub fn from_value(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            4 => Self::Decline,
            5 => Self::Ack,
            6 => Self::Nak,
            7 => Self::Release,
            8 => Self::Inform,
            _ => return None,
        })
    }

    /// Upper-case name as in logs (`DHCPDISCOVER` without the prefix).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Discover => "DISCOVER",
            Self::Offer => "OFFER",
            Self::Request => "REQUEST",
            Self::Decline => "DECLINE",
            Self::Ack => "ACK",
            Self::Nak => "NAK",
            Self::Release => "RELEASE",
            Self::Inform => "INFORM",
        }
    }
}

/// Why a datagram was dropped without a reply. Every drop is counted under
/// [`DropReason::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than the fixed header.
    Short,
    /// Not a BOOTREQUEST (op ≠ 1).
    WrongOp,
    /// Not Ethernet (htype 1, hlen 6), no magic cookie, or an all-zero chaddr.
    BadHeader,
    /// An option runs past the end, has an impossible length, or the message
    /// type is missing or unknown.
    BadOptions,
    /// Option 12 or 81 longer than any DNS name can be.
    HugeHostname,
    /// Too many messages from this chaddr (see [`crate::ratelimit`]).
    RateLimited,
    /// Meant for another server (option 54), or relayed from another subnet.
    NotForUs,
    /// A message type a client never sends to a server (OFFER, ACK, NAK).
    UnexpectedType,
    /// Well-formed, but missing what its type needs (a REQUEST without an
    /// address, an INFORM without ciaddr).
    Invalid,
    /// A DECLINE or RELEASE for an address the client does not hold.
    NoBinding,
}

impl DropReason {
    /// Every reason, in the order metrics list them.
    pub const ALL: [Self; 10] = [
        Self::Short,
        Self::WrongOp,
        Self::BadHeader,
        Self::BadOptions,
        Self::HugeHostname,
        Self::RateLimited,
        Self::NotForUs,
        Self::UnexpectedType,
        Self::Invalid,
        Self::NoBinding,
    ];

    /// The metrics label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::WrongOp => "wrong_op",
            Self::BadHeader => "bad_header",
            Self::BadOptions => "bad_options",
            Self::HugeHostname => "huge_hostname",
            Self::RateLimited => "rate_limited",
            Self::NotForUs => "not_for_us",
            Self::UnexpectedType => "unexpected_type",
            Self::Invalid => "invalid",
            Self::NoBinding => "no_binding",
        }
    }

    /// Index into [`DropReason::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A client's message, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Option 53.
    pub kind: MessageType,
    /// Transaction id, echoed in the reply.
    pub xid: u32,
    /// The broadcast bit of `flags`.
    pub broadcast: bool,
    /// The client's address, when it has one (RENEWING, REBINDING, RELEASE, INFORM).
    pub ciaddr: Ipv4Addr,
    /// The relay agent's address, or 0.0.0.0.
    pub giaddr: Ipv4Addr,
    /// Hop count of relays.
    pub hops: u8,
    /// The client's hardware address.
    pub chaddr: Mac,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 55: the options the client wants, in its order.
    pub parameter_list: Option<Vec<u8>>,
    /// Option 57.
    pub max_message_size: Option<u16>,
    /// Option 12, raw bytes.
    pub hostname: Option<Vec<u8>>,
    /// The first label of option 81's domain name, raw bytes.
    pub fqdn_label: Option<Vec<u8>>,
    /// Option 82, to echo back (RFC 3046 §2.2).
    pub relay_agent_info: Option<Vec<u8>>,
}

/// The options the parser keeps, concatenated per code (RFC 3396).
#[derive(Default)]
struct Collected {
    message_type: Option<Vec<u8>>,
    requested_ip: Option<Vec<u8>>,
    server_id: Option<Vec<u8>>,
    parameter_list: Option<Vec<u8>>,
    max_message_size: Option<Vec<u8>>,
    hostname: Option<Vec<u8>>,
    fqdn: Option<Vec<u8>>,
    relay_agent_info: Option<Vec<u8>>,
    overload: Option<Vec<u8>>,
}

impl Collected {
    fn slot(&mut self, code: u8) -> Option<&mut Option<Vec<u8>>> {
        Some(match code {
            code::MESSAGE_TYPE => &mut self.message_type,
            code::REQUESTED_IP => &mut self.requested_ip,
            code::SERVER_ID => &mut self.server_id,
            code::PARAMETER_LIST => &mut self.parameter_list,
            code::MAX_MESSAGE_SIZE => &mut self.max_message_size,
            code::HOSTNAME => &mut self.hostname,
            code::CLIENT_FQDN => &mut self.fqdn,
            code::RELAY_AGENT_INFO => &mut self.relay_agent_info,
            code::OVERLOAD => &mut self.overload,
            _ => return None,
        })
    }

    /// Walks one option area (RFC 2132 §2). A missing END is tolerated at the
    /// end of the area; an option whose length runs past it is not.
    fn walk(&mut self, area: &[u8]) -> Result<(), DropReason> {
        let mut i = 0;
        while let Some(&c) = area.get(i) {
            match c {
                code::PAD => i += 1,
                code::END => return Ok(()),
                _ => {
                    let len = usize::from(*area.get(i + 1).ok_or(DropReason::BadOptions)?);
                    let data = area.get(i + 2..i + 2 + len).ok_or(DropReason::BadOptions)?;
                    if let Some(slot) = self.slot(c) {
                        let v = slot.get_or_insert_with(Vec::new);
                        // Hostnames are capped while collecting, so a flood of
                        // split options cannot make us buffer much.
                        if v.len() + data.len() > 2 * MAX_HOSTNAME_BYTES + 2 {
                            return Err(if matches!(c, code::HOSTNAME | code::CLIENT_FQDN) {
                                DropReason::HugeHostname
                            } else {
                                DropReason::BadOptions
                            });
                        }
                        v.extend_from_slice(data);
                    }
                    i += 2 + len;
                }
            }
        }
        Ok(())
    }
}

fn ipv4(bytes: &[u8]) -> Ipv4Addr {
    let mut o = [0u8; 4];
    o.copy_from_slice(&bytes[..4]);
    Ipv4Addr::from(o)
}

fn fixed_ip(v: Option<Vec<u8>>) -> Result<Option<Ipv4Addr>, DropReason> {
    match v {
        None => Ok(None),
        Some(b) if b.len() == 4 => Ok(Some(ipv4(&b))),
        Some(_) => Err(DropReason::BadOptions),
    }
}

/// The first label of an option 81 payload: flags, two RCODEs, then the name
/// in DNS wire format (flag E) or, deprecated, in ASCII (RFC 4702 §2.1).
fn fqdn_first_label(v: &[u8]) -> Result<Option<Vec<u8>>, DropReason> {
    let [flags, _rcode1, _rcode2, name @ ..] = v else {
        return Err(DropReason::BadOptions);
    };
    if name.len() > MAX_HOSTNAME_BYTES {
        return Err(DropReason::HugeHostname);
    }
    if flags & 0x04 != 0 {
        match name.split_first() {
            None | Some((0, _)) => Ok(None),
            Some((&len, rest)) => {
                let len = usize::from(len);
                if len > 63 {
                    return Err(DropReason::BadOptions);
                }
                rest.get(..len).map(|l| Some(l.to_vec())).ok_or(DropReason::BadOptions)
            }
        }
    } else {
        let label = name.split(|b| *b == b'.').next().unwrap_or_default();
        Ok((!label.is_empty()).then(|| label.to_vec()))
    }
}

impl Request {
    /// The fixed-header checks, cheap enough to run before anything else:
    /// the client's hardware address, or why the datagram is dropped.
    pub fn check_header(b: &[u8]) -> Result<Mac, DropReason> {
        if b.len() < HEADER_LEN {
            return Err(DropReason::Short);
        }
        if b[0] != 1 {
            return Err(DropReason::WrongOp);
        }
        if b[1] != 1 || b[2] != 6 || b[236..240] != MAGIC {
            return Err(DropReason::BadHeader);
        }
        let mut chaddr = [0u8; 6];
        chaddr.copy_from_slice(&b[28..34]);
        // No client has the all-zero address. (Group addresses are let through:
        // router7's own tests use 11:22:33:44:55:66.)
        if chaddr == [0; 6] {
            return Err(DropReason::BadHeader);
        }
        Ok(chaddr)
    }

    /// Parses a datagram that arrived on port 67.
    pub fn parse(b: &[u8]) -> Result<Self, DropReason> {
        let chaddr = Self::check_header(b)?;
        let mut opts = Collected::default();
        opts.walk(&b[HEADER_LEN..])?;
        // Option overload (RFC 2132 §9.3): the file field, then sname, carry more options.
        match opts.overload.take().as_deref() {
            None => {}
            Some([1]) => opts.walk(&b[108..236])?,
            Some([2]) => opts.walk(&b[44..108])?,
            Some([3]) => {
                opts.walk(&b[108..236])?;
                opts.walk(&b[44..108])?;
            }
            Some(_) => return Err(DropReason::BadOptions),
        }
        let kind = match opts.message_type.as_deref() {
            Some([t]) => MessageType::from_value(*t).ok_or(DropReason::BadOptions)?,
            _ => return Err(DropReason::BadOptions),
        };
        let max_message_size = match opts.max_message_size.as_deref() {
            None => None,
            Some([hi, lo]) => Some(u16::from_be_bytes([*hi, *lo])),
            Some(_) => return Err(DropReason::BadOptions),
        };
        if opts.hostname.as_ref().is_some_and(|h| h.len() > MAX_HOSTNAME_BYTES) {
            return Err(DropReason::HugeHostname);
        }
        let fqdn_label = match opts.fqdn.as_deref() {
            None => None,
            Some(v) => fqdn_first_label(v)?,
        };
        Ok(Self {
            kind,
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            broadcast: b[10] & 0x80 != 0,
            ciaddr: ipv4(&b[12..16]),
            giaddr: ipv4(&b[24..28]),
            hops: b[3],
            chaddr,
            requested_ip: fixed_ip(opts.requested_ip)?,
            server_id: fixed_ip(opts.server_id)?,
            parameter_list: opts.parameter_list,
            max_message_size,
            hostname: opts.hostname,
            fqdn_label,
            relay_agent_info: opts.relay_agent_info,
        })
    }
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Ethernet unicast to `mac` and IP `ip`, port 68: the client need not
    /// answer ARP yet, which is why the shell sends it on a packet socket.
    Unicast {
        /// The client's hardware address.
        mac: Mac,
        /// yiaddr (or ciaddr).
        ip: Ipv4Addr,
    },
    /// Ethernet and IP broadcast, port 68.
    Broadcast,
    /// A relay agent's address, port 67, through the kernel (which does ARP).
    Relay {
        /// giaddr.
        ip: Ipv4Addr,
    },
}

/// A reply ready to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// OFFER, ACK or NAK.
    pub kind: MessageType,
    /// Copied from the request.
    pub xid: u32,
    /// Broadcast bit (copied, and set on a relayed NAK: RFC 2131 §4.3.2).
    pub broadcast: bool,
    /// Copied from the request for ACKs to RENEWING/REBINDING and INFORM; else 0.
    pub ciaddr: Ipv4Addr,
    /// The address given; 0 for NAK and INFORM.
    pub yiaddr: Ipv4Addr,
    /// Copied from the request.
    pub giaddr: Ipv4Addr,
    /// Copied from the request.
    pub chaddr: Mac,
    /// Options after 53 and 54, already encoded (code, length, data…), in the
    /// order they should appear; optional ones that do not fit are left out.
    pub options: Vec<(u8, Vec<u8>)>,
    /// The server identifier (option 54).
    pub server_id: Ipv4Addr,
    /// The largest message the client accepts (option 57, at least 576 − 28).
    pub max_len: usize,
    /// Where to send it.
    pub dest: Destination,
}

impl Reply {
    /// The message size limit for a client's option 57.
    #[must_use]
    pub fn max_len_for(max_message_size: Option<u16>) -> usize {
        max_message_size.map_or(MIN_MAX_MESSAGE, |m| usize::from(m).clamp(MIN_MAX_MESSAGE, MAX_MESSAGE))
    }

    /// Encodes the BOOTP message (RFC 2131 §2). Options that would push it past
    /// `max_len` are left out, last ones first (53 and 54 always fit).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out[0] = 2; // BOOTREPLY
        out[1] = 1;
        out[2] = 6;
        out[4..8].copy_from_slice(&self.xid.to_be_bytes());
        if self.broadcast {
            out[10] = 0x80;
        }
        out[12..16].copy_from_slice(&self.ciaddr.octets());
        out[16..20].copy_from_slice(&self.yiaddr.octets());
        out[24..28].copy_from_slice(&self.giaddr.octets());
        out[28..34].copy_from_slice(&self.chaddr);
        out[236..240].copy_from_slice(&MAGIC);
        out.extend_from_slice(&[code::MESSAGE_TYPE, 1, self.kind.value()]);
        out.extend_from_slice(&[code::SERVER_ID, 4]);
        out.extend_from_slice(&self.server_id.octets());
        let room = self.max_len.max(MIN_MAX_MESSAGE);
        for (c, data) in &self.options {
            // Every option we send fits one TLV; longer data is a bug upstream,
            // and is left out rather than sent truncated.
            let Ok(len) = u8::try_from(data.len()) else { continue };
            // + 1 for the END that follows.
            if out.len() + 2 + data.len() + 1 > room {
                continue;
            }
            out.push(*c);
            out.push(len);
            out.extend_from_slice(data);
        }
        out.push(code::END);
        if out.len() < MIN_REPLY_LEN {
            out.resize(MIN_REPLY_LEN, 0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(op: u8, mac: Mac) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = op;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        b[28..34].copy_from_slice(&mac);
        b[236..240].copy_from_slice(&MAGIC);
        b
    }

    const MAC: Mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    #[test]
    fn parses_the_options_the_server_uses() {
        let mut b = header(1, MAC);
        b[10] = 0x80;
        b.extend_from_slice(&[53, 1, 3, 50, 4, 192, 168, 42, 23, 54, 4, 192, 168, 42, 1, 0, 0]);
        b.extend_from_slice(&[55, 3, 1, 3, 6, 57, 2, 5, 220, 12, 3, b'x', b'p', b's', 255]);
        let r = Request::parse(&b).unwrap();
        assert_eq!(r.kind, MessageType::Request);
        assert_eq!(r.xid, 0x1234_5678);
        assert!(r.broadcast);
        assert_eq!(r.chaddr, MAC);
        assert_eq!(r.requested_ip, Some(Ipv4Addr::new(192, 168, 42, 23)));
        assert_eq!(r.server_id, Some(Ipv4Addr::new(192, 168, 42, 1)));
        assert_eq!(r.parameter_list.as_deref(), Some(&[1u8, 3, 6][..]));
        assert_eq!(r.max_message_size, Some(1500));
        assert_eq!(r.hostname.as_deref(), Some(&b"xps"[..]));
    }

    #[test]
    fn concatenates_split_options_and_reads_overloaded_fields() {
        // RFC 3396: option 12 in two parts; RFC 2132 §9.3: option 50 in `file`.
        let mut b = header(1, MAC);
        b[108..115].copy_from_slice(&[50, 4, 10, 0, 0, 9, 255]);
        b.extend_from_slice(&[53, 1, 1, 12, 2, b'a', b'b', 52, 1, 1, 12, 1, b'c', 255]);
        let r = Request::parse(&b).unwrap();
        assert_eq!(r.hostname.as_deref(), Some(&b"abc"[..]));
        assert_eq!(r.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 9)));
    }

    #[test]
    fn reads_both_fqdn_encodings() {
        let mut wire = header(1, MAC);
        wire.extend_from_slice(&[53, 1, 1, 81, 13, 0x05, 0, 0, 4, b'M', b'i', b'n', b'a', 3, b'l', b'a', b'n', 0, 255]);
        assert_eq!(Request::parse(&wire).unwrap().fqdn_label.as_deref(), Some(&b"Mina"[..]));
        let mut ascii = header(1, MAC);
        ascii.extend_from_slice(&[53, 1, 1, 81, 10, 0, 0, 0, b'h', b'o', b's', b't', b'.', b'a', b'b', 255]);
        assert_eq!(Request::parse(&ascii).unwrap().fqdn_label.as_deref(), Some(&b"host"[..]));
    }

    #[test]
    fn rejects_malformed_messages_with_a_reason() {
        let ok = {
            let mut b = header(1, MAC);
            b.extend_from_slice(&[53, 1, 1, 255]);
            b
        };
        assert!(Request::parse(&ok).is_ok());
        assert_eq!(Request::parse(&ok[..239]), Err(DropReason::Short));
        assert_eq!(Request::parse(&[]), Err(DropReason::Short));
        let mut reply = ok.clone();
        reply[0] = 2;
        assert_eq!(Request::parse(&reply), Err(DropReason::WrongOp));
        for (at, v) in [(1, 6u8), (2, 16), (236, 0)] {
            let mut b = ok.clone();
            b[at] = v;
            assert_eq!(Request::parse(&b), Err(DropReason::BadHeader), "byte {at}");
        }
        assert_eq!(Request::parse(&header(1, [0; 6])), Err(DropReason::BadHeader));
        let bad_options: [&[u8]; 7] = [
            &[255],                      // no message type
            &[53, 1, 9, 255],            // unknown type
            &[53, 2, 1, 1, 255],         // wrong length
            &[53, 1, 1, 50, 3, 1, 2, 3], // short address
            &[53, 1, 1, 12, 9, b'x'],    // runs past the end
            &[53, 1, 1, 57, 1, 5],       // odd max size
            &[53, 1, 1, 52, 1, 7, 255],  // bad overload
        ];
        for opts in bad_options {
            let mut b = header(1, MAC);
            b.extend_from_slice(opts);
            assert_eq!(Request::parse(&b), Err(DropReason::BadOptions), "{opts:?}");
        }
        // A trailing length byte with nothing after it.
        let mut b = header(1, MAC);
        b.extend_from_slice(&[53, 1, 1, 12]);
        assert_eq!(Request::parse(&b), Err(DropReason::BadOptions));
    }

    #[test]
    fn fuzz_regression_option_94_of_length_1_is_just_skipped() {
        // ci/fuzz found this (artifacts/parse/crash-b98a5294…): dhcproto's
        // decoder asserts that option 94 has length 3; ours skips options it
        // does not use, whatever their length.
        let mut b = header(1, [0; 6]);
        b[28..34].copy_from_slice(&MAC);
        b.extend_from_slice(&[0x35, 0x01, 0x01, 0x5e, 0x01, 0x03, 0xff]);
        let r = Request::parse(&b).unwrap();
        assert_eq!(r.kind, MessageType::Discover);
    }

    #[test]
    fn a_hostname_no_dns_name_can_hold_is_huge() {
        let mut b = header(1, MAC);
        b.extend_from_slice(&[53, 1, 1]);
        for _ in 0..2 {
            b.extend_from_slice(&[12, 200]);
            b.extend_from_slice(&[b'a'; 200]);
        }
        assert_eq!(Request::parse(&b), Err(DropReason::HugeHostname));
        let mut fqdn = header(1, MAC);
        fqdn.extend_from_slice(&[53, 1, 1]);
        for _ in 0..2 {
            fqdn.extend_from_slice(&[81, 200]);
            fqdn.extend_from_slice(&[0; 200]);
        }
        assert_eq!(Request::parse(&fqdn), Err(DropReason::HugeHostname));
        // Exactly 255 bytes is still a (long) name.
        let mut max = header(1, MAC);
        max.extend_from_slice(&[53, 1, 1, 12, 255]);
        max.extend_from_slice(&[b'a'; 255]);
        assert_eq!(Request::parse(&max).unwrap().hostname.map(|h| h.len()), Some(255));
    }

    #[test]
    fn encodes_type_and_server_id_first_and_respects_the_size_limit() {
        let reply = Reply {
            kind: MessageType::Offer,
            xid: 7,
            broadcast: true,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::new(192, 168, 42, 23),
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: MAC,
            options: vec![(1, vec![255, 255, 255, 0]), (15, vec![b'x'; 250]), (3, vec![192, 168, 42, 1])],
            server_id: Ipv4Addr::new(192, 168, 42, 1),
            max_len: Reply::max_len_for(None),
            dest: Destination::Broadcast,
        };
        let b = reply.encode();
        assert_eq!(b[0], 2);
        assert_eq!(&b[16..20], &[192, 168, 42, 23]);
        assert_eq!(b[10], 0x80);
        assert_eq!(&b[240..249], &[53, 1, 2, 54, 4, 192, 168, 42, 1]);
        // 240 + 9 + 6 + 252 (domain) would leave no room for END within 548? It fits:
        assert!(b.len() <= 548, "{}", b.len());
        assert_eq!(b[249], 1);
        // With a tight limit the long option is left out, the short ones stay.
        let mut small = reply.clone();
        small.options[1].1 = vec![b'x'; 255];
        small.options.insert(2, (119, vec![b'y'; 255]));
        let b = small.encode();
        assert!(b.len() <= 548);
        assert!(b.windows(6).any(|w| w == [3, 4, 192, 168, 42, 1]), "router kept");
    }
}
