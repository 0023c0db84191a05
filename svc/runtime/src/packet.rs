//! `AF_PACKET` sockets bound to one interface, with a classic BPF filter
//! attached before any packet can arrive, registrable with mio.
//!
//! The socket is created with protocol 0 (it receives nothing), the filter is
//! attached, and only then is it bound to the interface and ethertype, so no
//! unfiltered packet is ever queued.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::sys::{self, LinkMeta, SockFilter};

/// Ethertype of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Ethertype of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// Every ethertype.
pub const ETH_P_ALL: u16 = 0x0003;

/// `pkttype` of packets we sent ourselves (seen by capture sockets).
pub const PACKET_OUTGOING: u8 = 4;

/// What the socket delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `SOCK_DGRAM`: the network-layer packet; the kernel adds and strips Ethernet.
    Cooked,
    /// `SOCK_RAW`: whole Ethernet frames.
    Raw,
}

/// A packet socket on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    protocol: u16,
}

impl PacketSocket {
    /// Opens a socket on interface index `ifindex` for `protocol`, with `filter`
    /// (if any) in place before the first packet.
    pub fn open(ifindex: u32, protocol: u16, framing: Framing, filter: Option<&[SockFilter]>) -> io::Result<Self> {
        let fd = sys::packet_socket(framing == Framing::Cooked)?;
        if let Some(program) = filter {
            sys::attach_filter(fd.as_fd(), program)?;
        }
        sys::packet_bind(fd.as_fd(), ifindex, protocol)?;
        Ok(Self { fd, ifindex, protocol })
    }

    /// Opens a socket on the interface called `ifname`.
    pub fn open_named(
        ifname: &str,
        protocol: u16,
        framing: Framing,
        filter: Option<&[SockFilter]>,
    ) -> io::Result<Self> {
        Self::open(crate::netif::index(ifname)?, protocol, framing, filter)
    }

    /// The interface it is bound to.
    #[must_use]
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends `packet` to hardware address `dst` (a whole frame on a raw socket).
    pub fn send_to(&self, packet: &[u8], dst: [u8; 6]) -> io::Result<usize> {
        if packet.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty packet"));
        }
        sys::packet_send(self.fd.as_fd(), packet, self.ifindex, self.protocol, dst)
    }

    /// Receives one packet; `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, LinkMeta)> {
        sys::packet_recv(self.fd.as_fd(), buf)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Source for PacketSocket {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf;

    #[test]
    fn loopback_raw_socket_sees_only_filtered_frames() {
        if !crate::testing::root("loopback_raw_socket_sees_only_filtered_frames") {
            return;
        }
        let lo = crate::netif::index("lo").unwrap();
        let filter = bpf::ipv4_udp_to_port(bpf::Link::Ethernet, 40_067).unwrap();
        let sock = PacketSocket::open(lo, ETH_P_IP, Framing::Raw, Some(&filter)).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(b"not for us", "127.0.0.1:40066").unwrap();
        udp.send_to(b"for us", "127.0.0.1:40067").unwrap();
        let mut buf = [0u8; 2048];
        let mut got = Vec::new();
        for _ in 0..100 {
            match sock.recv(&mut buf) {
                Ok((n, meta)) => {
                    assert_eq!(meta.ifindex, lo);
                    let parsed = crate::frame::parse_udp4_ethernet(&buf[..n]).unwrap();
                    got.push(parsed.payload.to_vec());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !got.is_empty() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Loopback shows each packet twice (outgoing and incoming); both are ours.
        assert!(!got.is_empty());
        assert!(got.iter().all(|p| p == b"for us"), "{got:?}");
    }
}
