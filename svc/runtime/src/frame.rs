//! Ethernet/IPv4/UDP frames for raw packet sockets, built and parsed with
//! `etherparse` in one place (DHCPv4 client and server talk before addresses exist).
//!
//! UDP checksums of received datagrams are not verified: on veth and virtio
//! links the kernel hands packet sockets locally generated datagrams whose
//! checksum is still to be filled in (CHECKSUM_PARTIAL), and Ethernet's FCS has
//! already caught corruption on the wire. Checksums of what we send are correct.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{LinkSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

/// The broadcast MAC address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// An IPv4 UDP datagram seen on a packet socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp4<'a> {
    /// Ethernet source (absent on a cooked socket).
    pub src_mac: Option<[u8; 6]>,
    /// Ethernet destination (absent on a cooked socket).
    pub dst_mac: Option<[u8; 6]>,
    /// IP source and UDP source port.
    pub src: SocketAddrV4,
    /// IP destination and UDP destination port.
    pub dst: SocketAddrV4,
    /// IP time to live.
    pub ttl: u8,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// Why a frame is not an IPv4 UDP datagram we can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Headers are cut short or inconsistent.
    Malformed(String),
    /// Not IPv4.
    NotIpv4,
    /// Not UDP.
    NotUdp,
    /// A fragment (DHCP never needs fragments; reassembly is not our job).
    Fragment,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed frame: {m}"),
            Self::NotIpv4 => f.write_str("not IPv4"),
            Self::NotUdp => f.write_str("not UDP"),
            Self::Fragment => f.write_str("IPv4 fragment"),
        }
    }
}

impl std::error::Error for FrameError {}

fn udp4_of<'a>(sliced: &SlicedPacket<'a>) -> Result<Udp4<'a>, FrameError> {
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        return Err(FrameError::NotIpv4);
    };
    if ip.is_payload_fragmented() {
        return Err(FrameError::Fragment);
    }
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return Err(FrameError::NotUdp);
    };
    let header = ip.header();
    let (src_mac, dst_mac) = match &sliced.link {
        Some(LinkSlice::Ethernet2(eth)) => (Some(eth.source()), Some(eth.destination())),
        _ => (None, None),
    };
    Ok(Udp4 {
        src_mac,
        dst_mac,
        src: SocketAddrV4::new(header.source_addr(), udp.source_port()),
        dst: SocketAddrV4::new(header.destination_addr(), udp.destination_port()),
        ttl: header.ttl(),
        payload: udp.payload(),
    })
}

/// Parses an Ethernet II frame carrying IPv4/UDP.
pub fn parse_udp4_ethernet(frame: &[u8]) -> Result<Udp4<'_>, FrameError> {
    let sliced = SlicedPacket::from_ethernet(frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
    udp4_of(&sliced)
}

/// Parses an IPv4/UDP packet (what a cooked packet socket delivers).
pub fn parse_udp4_ip(packet: &[u8]) -> Result<Udp4<'_>, FrameError> {
    let sliced = SlicedPacket::from_ip(packet).map_err(|e| FrameError::Malformed(e.to_string()))?;
    udp4_of(&sliced)
}

/// Builds an Ethernet II + IPv4 + UDP frame (checksums filled in).
#[must_use]
pub fn build_udp4_ethernet(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.ip().octets(), dst.ip().octets(), ttl)
        .udp(src.port(), dst.port());
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    write_or_empty(|o| builder.write(o, payload).map_err(|_| ()), &mut out);
    out
}

/// Builds an IPv4 + UDP packet for a cooked packet socket (checksums filled in).
#[must_use]
pub fn build_udp4_ip(src: SocketAddrV4, dst: SocketAddrV4, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), ttl).udp(src.port(), dst.port());
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    write_or_empty(|o| builder.write(o, payload).map_err(|_| ()), &mut out);
    out
}

/// etherparse only fails to build when the payload exceeds what the length
/// fields hold (64 KiB); an empty result makes the send fail visibly instead.
fn write_or_empty(write: impl FnOnce(&mut Vec<u8>) -> Result<(), ()>, out: &mut Vec<u8>) {
    if write(out).is_err() {
        out.clear();
    }
}

/// The all-zero address DHCP clients send from.
pub const UNSPECIFIED: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn builds_and_parses_ethernet_frames() {
        let frame = build_udp4_ethernet(
            [2, 0, 0, 0, 0, 1],
            BROADCAST_MAC,
            addr("0.0.0.0:68"),
            addr("255.255.255.255:67"),
            255,
            b"hello",
        );
        assert_eq!(frame.len(), 14 + 20 + 8 + 5);
        let udp = parse_udp4_ethernet(&frame).unwrap();
        assert_eq!(udp.src_mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(udp.dst_mac, Some(BROADCAST_MAC));
        assert_eq!(udp.src, addr("0.0.0.0:68"));
        assert_eq!(udp.dst, addr("255.255.255.255:67"));
        assert_eq!(udp.ttl, 255);
        assert_eq!(udp.payload, b"hello");
        // The IPv4 header checksum over the header must be zero when folded.
        let sum: u32 = frame[14..34].chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff);
    }

    #[test]
    fn builds_and_parses_cooked_packets() {
        let pkt = build_udp4_ip(addr("192.168.42.1:67"), addr("192.168.42.23:68"), 64, b"x");
        let udp = parse_udp4_ip(&pkt).unwrap();
        assert_eq!((udp.src_mac, udp.dst.port(), udp.payload), (None, 68, &b"x"[..]));
    }

    #[test]
    fn rejects_truncated_non_udp_and_fragments() {
        let frame =
            build_udp4_ethernet([2; 6], BROADCAST_MAC, addr("10.0.0.1:68"), addr("10.0.0.2:67"), 64, b"payload");
        for len in [0, 13, 14, 20, 33, 40] {
            assert!(parse_udp4_ethernet(&frame[..len]).is_err(), "len {len}");
        }
        let mut tcp = frame.clone();
        tcp[14 + 9] = 6;
        assert!(parse_udp4_ethernet(&tcp).is_err());
        let mut frag = frame.clone();
        frag[14 + 6] = 0x20; // more fragments
        assert_eq!(parse_udp4_ethernet(&frag), Err(FrameError::Fragment));
        let mut v6 = frame;
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(parse_udp4_ethernet(&v6).is_err());
    }
}
