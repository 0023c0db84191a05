//! ICMP and ICMPv6 echo (RFC 792, RFC 4443 §4) with smoltcp's wire views: the
//! requests the ping checks send and the parsing of what comes back, which may
//! be anything ICMP (a raw socket sees every ICMP packet of the host).
//!
//! Our requests carry a payload of [`TAG`] and a per-process nonce, so a reply
//! is ours when its payload matches; its sequence number says which request it
//! answers. The identifier is not checked: a ping socket replaces it with its
//! own port number.

use runtime::bpf::{ACCEPT_ALL, AssembleError, Assembler, Target};
use runtime::sys::SockFilter;
use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv4Packet};

/// The first bytes of our echo payloads.
pub const TAG: &[u8; 8] = b"r7-diagd";
/// Length of our echo payloads.
pub const PAYLOAD_LEN: usize = 16;
const HEADER_LEN: usize = 8;

/// Our payload for `nonce`.
#[must_use]
pub fn payload(nonce: u64) -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[..8].copy_from_slice(TAG);
    p[8..].copy_from_slice(&nonce.to_be_bytes());
    p
}

/// An echo request over IPv4, checksum included.
#[must_use]
pub fn request_v4(ident: u16, seq: u16, nonce: u64) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + PAYLOAD_LEN];
    let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Icmpv4Message::EchoRequest);
    p.set_msg_code(0);
    p.set_echo_ident(ident);
    p.set_echo_seq_no(seq);
    p.data_mut().copy_from_slice(&payload(nonce));
    p.fill_checksum();
    buf
}

/// An echo request over IPv6. The checksum covers a pseudo-header with the
/// source address, which the kernel picks, so the kernel fills it in (it always
/// does for ICMPv6 sockets, RFC 3542 §3.1).
#[must_use]
pub fn request_v6(ident: u16, seq: u16, nonce: u64) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + PAYLOAD_LEN];
    let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
    p.set_msg_type(Icmpv6Message::EchoRequest);
    p.set_msg_code(0);
    p.set_checksum(0);
    p.set_echo_ident(ident);
    p.set_echo_seq_no(seq);
    p.payload_mut().copy_from_slice(&payload(nonce));
    buf
}

/// Why a received packet was not one of our echo replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// Too short or a malformed IPv4 header.
    Malformed,
    /// Not an echo reply (our own requests, errors, neighbour discovery, …).
    NotEchoReply,
    /// A bad ICMPv4 checksum.
    BadChecksum,
    /// An echo reply to someone else's request.
    NotOurs,
}

impl Ignored {
    /// For metric labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::NotEchoReply => "not_echo_reply",
            Self::BadChecksum => "bad_checksum",
            Self::NotOurs => "not_ours",
        }
    }
}

/// An echo reply to one of our requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// Its sequence number.
    pub seq: u16,
}

fn ours(data: &[u8], nonce: u64) -> bool {
    data == payload(nonce)
}

/// Parses what an ICMPv4 socket read: with `ip_header` (raw sockets) the IPv4
/// header comes first; ping sockets give the ICMP message alone.
pub fn parse_v4(buf: &[u8], ip_header: bool, nonce: u64) -> Result<Reply, Ignored> {
    let icmp = if ip_header {
        let ip = Ipv4Packet::new_checked(buf).map_err(|_| Ignored::Malformed)?;
        if ip.next_header() != IpProtocol::Icmp {
            return Err(Ignored::Malformed);
        }
        let start = usize::from(ip.header_len());
        let end = usize::from(ip.total_len()).min(buf.len());
        buf.get(start..end).ok_or(Ignored::Malformed)?
    } else {
        buf
    };
    let p = Icmpv4Packet::new_checked(icmp).map_err(|_| Ignored::Malformed)?;
    if p.msg_type() != Icmpv4Message::EchoReply || p.msg_code() != 0 {
        return Err(Ignored::NotEchoReply);
    }
    if icmp.len() < HEADER_LEN {
        return Err(Ignored::Malformed);
    }
    if !p.verify_checksum() {
        return Err(Ignored::BadChecksum);
    }
    if !ours(&icmp[HEADER_LEN..], nonce) {
        return Err(Ignored::NotOurs);
    }
    Ok(Reply { seq: p.echo_seq_no() })
}

/// Parses what an ICMPv6 socket read (never with an IP header; the kernel has
/// verified the checksum).
pub fn parse_v6(buf: &[u8], nonce: u64) -> Result<Reply, Ignored> {
    let p = Icmpv6Packet::new_checked(buf).map_err(|_| Ignored::Malformed)?;
    if p.msg_type() != Icmpv6Message::EchoReply || p.msg_code() != 0 {
        return Err(Ignored::NotEchoReply);
    }
    if buf.len() < HEADER_LEN {
        return Err(Ignored::Malformed);
    }
    if !ours(&buf[HEADER_LEN..], nonce) {
        return Err(Ignored::NotOurs);
    }
    Ok(Reply { seq: p.echo_seq_no() })
}

/// A classic BPF filter for a raw ICMP socket (packets start with the IPv4
/// header): only echo replies wake us, not every ICMP packet the router sees.
pub fn raw_filter_v4() -> Result<Vec<SockFilter>, AssembleError> {
    Assembler::new()
        .ldx_ipv4_header_len(0)
        .ld_b_ind(0)
        .jeq(0, Target::Next, Target::Label("drop"))
        .ret(ACCEPT_ALL)
        .label("drop")
        .ret(0)
        .finish()
}

/// The same for a raw ICMPv6 socket (packets start with the ICMPv6 header).
pub fn raw_filter_v6() -> Result<Vec<SockFilter>, AssembleError> {
    Assembler::new().ld_b(0).jeq(129, Target::Next, Target::Label("drop")).ret(ACCEPT_ALL).label("drop").ret(0).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_socket_filters_pass_only_echo_replies() {
        let v4 = raw_filter_v4().unwrap();
        let reply = with_ipv4_header(&as_reply_v4(request_v4(1, 2, 3)));
        let request = with_ipv4_header(&request_v4(1, 2, 3));
        assert_eq!(runtime::bpf::run(&v4, &reply), ACCEPT_ALL);
        assert_eq!(runtime::bpf::run(&v4, &request), 0);
        let mut options = reply.clone();
        options[0] = 0x46; // a 24-byte header: the type byte moves
        options.splice(20..20, [1, 1, 1, 1]);
        assert_eq!(runtime::bpf::run(&v4, &options), ACCEPT_ALL);
        let v6 = raw_filter_v6().unwrap();
        let mut reply6 = request_v6(1, 2, 3);
        assert_eq!(runtime::bpf::run(&v6, &reply6), 0);
        reply6[0] = 129;
        assert_eq!(runtime::bpf::run(&v6, &reply6), ACCEPT_ALL);
    }

    fn as_reply_v4(mut req: Vec<u8>) -> Vec<u8> {
        let mut p = Icmpv4Packet::new_unchecked(&mut req[..]);
        p.set_msg_type(Icmpv4Message::EchoReply);
        p.fill_checksum();
        req
    }

    fn with_ipv4_header(icmp: &[u8]) -> Vec<u8> {
        let mut v = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
        let total = u16::try_from(v.len() + icmp.len()).unwrap();
        v[2..4].copy_from_slice(&total.to_be_bytes());
        v.extend_from_slice(icmp);
        v
    }

    #[test]
    fn a_reply_to_our_request_matches_by_payload_and_sequence() {
        let req = request_v4(7, 42, 0xfeed);
        assert!(Icmpv4Packet::new_checked(&req[..]).unwrap().verify_checksum());
        let reply = as_reply_v4(req);
        assert_eq!(parse_v4(&reply, false, 0xfeed), Ok(Reply { seq: 42 }));
        assert_eq!(parse_v4(&with_ipv4_header(&reply), true, 0xfeed), Ok(Reply { seq: 42 }));
        assert_eq!(parse_v4(&reply, false, 0xbeef), Err(Ignored::NotOurs));
    }

    #[test]
    fn our_own_request_and_broken_packets_are_ignored() {
        let req = request_v4(7, 42, 1);
        assert_eq!(parse_v4(&req, false, 1), Err(Ignored::NotEchoReply));
        let mut bad = as_reply_v4(request_v4(7, 42, 1));
        bad[10] ^= 0xff;
        assert_eq!(parse_v4(&bad, false, 1), Err(Ignored::BadChecksum));
        assert_eq!(parse_v4(&[0, 0, 0], false, 1), Err(Ignored::Malformed));
        assert_eq!(parse_v4(&[0x45, 0, 0], true, 1), Err(Ignored::Malformed));
        let mut udp = with_ipv4_header(&as_reply_v4(request_v4(7, 42, 1)));
        udp[9] = 17;
        assert_eq!(parse_v4(&udp, true, 1), Err(Ignored::Malformed));
    }

    #[test]
    fn icmpv6_echo_replies_match_and_others_do_not() {
        let mut reply = request_v6(1, 9, 5);
        assert_eq!(parse_v6(&reply, 5), Err(Ignored::NotEchoReply), "a request is not a reply");
        reply[0] = 129;
        assert_eq!(parse_v6(&reply, 5), Ok(Reply { seq: 9 }));
        assert_eq!(parse_v6(&reply, 6), Err(Ignored::NotOurs));
        let router_advert = [134u8, 0, 0, 0, 64, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_v6(&router_advert, 5), Err(Ignored::NotEchoReply));
        assert_eq!(parse_v6(&[129], 5), Err(Ignored::Malformed));
    }
}
