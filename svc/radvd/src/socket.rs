//! The raw ICMPv6 socket on the LAN interface: bound to it (SO_BINDTODEVICE),
//! member of ff02::2 there, passing only Router Solicitations (ICMP6_FILTER),
//! reporting each packet's hop limit and arrival interface, and sending every
//! RA from the link-local address with hop limit 255 (RFC 4861 §4.2, §6.1.2).
//!
//! Why a raw ICMPv6 socket rather than AF_PACKET: the kernel checks the ICMPv6
//! checksum and fills ours in, handles extension headers, programs the NIC's
//! multicast filter for ff02::2, resolves the soliciting host's link-layer
//! address for unicast replies, and keeps our RAs visible to netfilter. What
//! rustix's `recvmsg` lacks (the hop limit) comes from `runtime::sys`.

use std::io;
use std::net::SocketAddrV6;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use radvd::Transmit;
use radvd::advertiser::ALL_ROUTERS;
use runtime::sys::{self, Ipv6RecvMeta};
use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto, sockopt};

/// ICMPv6 type of a Router Solicitation.
const ROUTER_SOLICITATION: u8 = 133;
/// Hop limit of everything Neighbor Discovery sends (RFC 4861 §6.1.2: receivers drop anything else).
const ND_HOP_LIMIT: u8 = 255;

/// The socket; see the module docs.
#[derive(Debug)]
pub struct Icmpv6Socket {
    fd: OwnedFd,
    ifindex: u32,
}

impl Icmpv6Socket {
    /// Opens the socket on interface `ifname` (index `ifindex`).
    pub fn open(ifname: &str, ifindex: u32) -> io::Result<Self> {
        let fd = rustix::net::socket_with(
            AddressFamily::INET6,
            SocketType::RAW,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            Some(ipproto::ICMPV6),
        )?;
        let step = |what: &str, r: io::Result<()>| r.map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")));
        step("ICMP6_FILTER", sys::set_icmpv6_filter(fd.as_fd(), &[ROUTER_SOLICITATION]))?;
        step("SO_BINDTODEVICE", sys::bind_to_device(fd.as_fd(), ifname))?;
        step("IPV6_RECVHOPLIMIT", sys::set_ipv6_recv_hop_limit(fd.as_fd(), true))?;
        step("IPV6_RECVPKTINFO", sys::set_ipv6_recv_pktinfo(fd.as_fd(), true))?;
        // Defaults for anything sent without ancillary data; send() also sets it per packet.
        step("IPV6_MULTICAST_HOPS", sockopt::set_ipv6_multicast_hops(&fd, ND_HOP_LIMIT.into()).map_err(Into::into))?;
        step("IPV6_UNICAST_HOPS", sockopt::set_ipv6_unicast_hops(&fd, Some(ND_HOP_LIMIT)).map_err(Into::into))?;
        step("IPV6_MULTICAST_LOOP", sockopt::set_ipv6_multicast_loop(&fd, false).map_err(Into::into))?;
        step("IPV6_MULTICAST_IF", sockopt::set_ipv6_multicast_if(&fd, ifindex).map_err(Into::into))?;
        step("join ff02::2", sockopt::set_ipv6_add_membership(&fd, &ALL_ROUTERS, ifindex).map_err(Into::into))?;
        Ok(Self { fd, ifindex })
    }

    /// The interface it is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Receives one ICMPv6 message; `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Ipv6RecvMeta)> {
        sys::recv_ipv6(self.fd.as_fd(), buf)
    }

    /// Sends an RA from its link-local source with hop limit 255.
    pub fn send(&self, t: &Transmit) -> io::Result<()> {
        // Link-local and link-scope multicast destinations need the interface as scope.
        let link_scoped = t.dst.is_unicast_link_local() || (t.dst.is_multicast() && t.dst.segments()[0] & 0x000f <= 2);
        let scope = if link_scoped { self.ifindex } else { 0 };
        let dst = SocketAddrV6::new(t.dst, 0, 0, scope);
        let n = sys::send_ipv6(self.fd.as_fd(), &t.bytes, dst, Some(t.src), self.ifindex, Some(ND_HOP_LIMIT))?;
        if n != t.bytes.len() {
            return Err(io::Error::other(format!("sent {n} of {} bytes", t.bytes.len())));
        }
        Ok(())
    }
}

impl Source for Icmpv6Socket {
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
