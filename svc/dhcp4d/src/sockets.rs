//! The server's two sockets on the LAN interface: UDP port 67 to receive (and
//! to answer relay agents, which need the kernel's ARP), and a raw `AF_PACKET`
//! socket to answer clients that have no address yet (router7 §1.4, quirk 6:
//! unicast to chaddr/yiaddr before the client can answer ARP).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;

use runtime::bpf;
use runtime::frame;
use runtime::packet::{ETH_P_IP, Framing, PacketSocket};
use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};

use dhcp4d::wire::{CLIENT_PORT, Destination, Reply, SERVER_PORT};

/// IP TTL of our replies.
const TTL: u8 = 64;
/// Receive buffer asked for: a burst of a few thousand requests waits here
/// while the loop works (needs CAP_NET_ADMIN to exceed `rmem_max`).
const RECV_BUFFER: usize = 4 << 20;
/// Send buffer of the packet socket.
const SEND_BUFFER: usize = 1 << 20;

/// The sockets, bound to one interface.
#[derive(Debug)]
pub struct Sockets {
    /// UDP 0.0.0.0:67, bound to the interface, non-blocking.
    pub udp: mio::net::UdpSocket,
    raw: PacketSocket,
    mac: [u8; 6],
    /// The interface index they are bound to (an interface re-created under
    /// the same name gets a new one, and the sockets must follow).
    pub ifindex: u32,
}

impl Sockets {
    /// Opens both sockets on interface `lan`.
    pub fn open(lan: &str) -> io::Result<Self> {
        let ifindex = runtime::netif::index(lan)?;
        let mac = runtime::netif::mac(lan)?;
        let fd = rustix::net::socket_with(
            AddressFamily::INET,
            SocketType::DGRAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )?;
        sockopt::set_socket_reuseaddr(&fd, true)?;
        sockopt::set_socket_broadcast(&fd, true)?;
        if sockopt::set_socket_recv_buffer_size_force(&fd, RECV_BUFFER).is_err() {
            // Without CAP_NET_ADMIN the kernel caps it at rmem_max; still worth asking.
            let _ = sockopt::set_socket_recv_buffer_size(&fd, RECV_BUFFER);
        }
        runtime::sys::bind_to_device(fd.as_fd(), lan)
            .map_err(|e| io::Error::new(e.kind(), format!("SO_BINDTODEVICE {lan}: {e}")))?;
        rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, SERVER_PORT))
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("bind UDP port {SERVER_PORT}: {e}")))?;
        let udp = mio::net::UdpSocket::from_std(UdpSocket::from(fd));
        // We only send on the packet socket; a filter that drops everything
        // keeps its receive queue empty.
        let drop_all = bpf::Assembler::new().ret(0).finish().map_err(io::Error::other)?;
        let raw = PacketSocket::open(ifindex, ETH_P_IP, Framing::Raw, Some(&drop_all))?;
        let _ = sockopt::set_socket_send_buffer_size(&raw, SEND_BUFFER);
        Ok(Self { udp, raw, mac, ifindex })
    }

    /// Sends `reply` from `server` (RFC 2131 §4.1 destinations, chosen by the core).
    pub fn send(&self, reply: &Reply, server: Ipv4Addr) -> io::Result<()> {
        let payload = reply.encode();
        let src = SocketAddrV4::new(server, SERVER_PORT);
        let (dst_mac, dst) = match reply.dest {
            Destination::Relay { ip } => {
                self.udp.send_to(&payload, SocketAddrV4::new(ip, SERVER_PORT).into())?;
                return Ok(());
            }
            Destination::Unicast { mac, ip } => (mac, SocketAddrV4::new(ip, CLIENT_PORT)),
            Destination::Broadcast => (frame::BROADCAST_MAC, SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT)),
        };
        let bytes = frame::build_udp4_ethernet(self.mac, dst_mac, src, dst, TTL, &payload);
        self.raw.send_to(&bytes, dst_mac)?;
        Ok(())
    }
}
