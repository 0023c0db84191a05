//! Sockets: the listeners on private addresses, the pool of upstream sockets on
//! random ports, and the kernel's CSPRNG.

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use dnsd::entropy::Entropy;
use mio::net::{TcpListener, UdpSocket};
use rustix::net::{AddressFamily, SocketType, ipproto, sockopt};

/// The range random source ports come from: Linux's default ephemeral range,
/// where no service of ours listens.
const PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

/// Random numbers from getrandom(2), fetched 4 KiB at a time.
#[derive(Debug)]
pub struct OsEntropy {
    buf: Box<[u8; 4096]>,
    pos: usize,
}

impl OsEntropy {
    /// A source that fills itself on first use.
    #[must_use]
    pub fn new() -> Self {
        Self { buf: Box::new([0; 4096]), pos: 4096 }
    }

    fn refill(&mut self) {
        let mut filled = 0;
        while filled < self.buf.len() {
            match rustix::rand::getrandom(&mut self.buf[filled..], rustix::rand::GetRandomFlags::empty()) {
                Ok(n) => filled += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    // Only a kernel without getrandom (before 3.17) gets here.
                    runtime::log_error!("getrandom: {e}; reading /dev/urandom");
                    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
                        use std::io::Read;
                        if f.read_exact(&mut self.buf[filled..]).is_ok() {
                            break;
                        }
                    }
                    runtime::log_error!("no randomness available; query IDs are guessable");
                    break;
                }
            }
        }
        self.pos = 0;
    }
}

impl Entropy for OsEntropy {
    fn next_u64(&mut self) -> u64 {
        if self.pos + 8 > self.buf.len() {
            self.refill();
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[self.pos..self.pos + 8]);
        self.pos += 8;
        u64::from_ne_bytes(b)
    }
}

/// An upstream socket bound to a random port: dual-stack (IPv6 with IPv4
/// mapped) where the kernel has IPv6, else IPv4 only.
#[derive(Debug)]
pub struct PoolSocket {
    /// The socket.
    pub socket: UdpSocket,
    /// Whether it is an IPv6 socket (IPv4 destinations go as `::ffff:a.b.c.d`).
    pub v6: bool,
    /// Its port.
    pub port: u16,
}

impl PoolSocket {
    /// Binds a new socket on a random port.
    pub fn open(rng: &mut dyn Entropy) -> io::Result<Self> {
        let mut last = io::Error::other("no port tried");
        for _ in 0..16 {
            let span = u64::from(PORTS.end() - PORTS.start()) + 1;
            let port = PORTS.start() + u16::try_from(rng.below(span)).unwrap_or(0);
            match Self::bind(port) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn bind(port: u16) -> io::Result<Self> {
        let flags = SocketType::DGRAM;
        let v6 = rustix::net::socket_with(
            AddressFamily::INET6,
            flags,
            rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
            Some(ipproto::UDP),
        );
        let (fd, v6, addr) = match v6 {
            Ok(fd) => {
                sockopt::set_ipv6_v6only(&fd, false)?;
                (fd, true, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))
            }
            Err(_) => {
                let fd = rustix::net::socket_with(
                    AddressFamily::INET,
                    flags,
                    rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
                    Some(ipproto::UDP),
                )?;
                (fd, false, SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port))
            }
        };
        rustix::net::bind(&fd, &addr)?;
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(fd));
        Ok(Self { socket, v6, port })
    }

    /// Where to send for `to` on this socket.
    #[must_use]
    pub fn destination(&self, to: SocketAddr) -> SocketAddr {
        match (self.v6, to) {
            (true, SocketAddr::V4(v4)) => SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0)),
            _ => to,
        }
    }
}

/// A sender's address as the core knows it (`::ffff:a.b.c.d` becomes IPv4).
#[must_use]
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The socket address for listening on `ip` (link-local IPv6 needs its interface).
#[must_use]
pub fn listen_addr(ip: IpAddr, scope: u32, port: u16) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
        _ => SocketAddr::new(ip, port),
    }
}

/// A non-blocking socket of `kind` bound to exactly `addr` with
/// `IP(V6)_FREEBIND`: a LAN address that netconfigd has just added is still
/// tentative for about a second (IPv6 duplicate address detection), and the
/// SIGUSR1 that announces it comes at once; without it the bind failed with
/// EADDRNOTAVAIL and the address (lan0's link-local one is what radvd
/// announces as the DNS server) was served only at the next 10 s retry.
/// Only addresses found on non-uplink interfaces are ever bound.
fn bind_freely(addr: SocketAddr, kind: SocketType) -> io::Result<rustix::fd::OwnedFd> {
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let flags = rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK;
    let fd = rustix::net::socket_with(family, kind, flags, None)?;
    if kind == SocketType::STREAM {
        sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    if addr.is_ipv4() {
        sockopt::set_ip_freebind(&fd, true)?;
    } else {
        sockopt::set_ipv6_freebind(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    Ok(fd)
}

/// A UDP listener on exactly `addr` (see [`bind_freely`]).
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    Ok(UdpSocket::from_std(std::net::UdpSocket::from(bind_freely(addr, SocketType::DGRAM)?)))
}

/// A TCP listener on exactly `addr` (see [`bind_freely`]).
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let fd = bind_freely(addr, SocketType::STREAM)?;
    rustix::net::listen(&fd, 1024)?;
    Ok(TcpListener::from_std(std::net::TcpListener::from(fd)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses not (yet) usable, as a tentative one is: documentation
    /// addresses on no interface of this machine. The binds succeed and the
    /// sockets are the non-blocking ones mio expects.
    #[test]
    fn listeners_bind_addresses_that_are_not_usable_yet() {
        for ip in ["192.0.2.53", "2001:db8:7237::53"] {
            let addr = SocketAddr::new(ip.parse().unwrap(), 0);
            let udp = bind_udp(addr).unwrap_or_else(|e| panic!("udp {addr}: {e}"));
            assert_eq!(udp.local_addr().unwrap().ip(), addr.ip());
            let tcp = bind_tcp(addr).unwrap_or_else(|e| panic!("tcp {addr}: {e}"));
            assert_eq!(tcp.local_addr().unwrap().ip(), addr.ip());
            let mut buf = [0u8; 16];
            let err = udp.recv_from(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "non-blocking");
            assert_eq!(tcp.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock, "non-blocking, listening");
        }
    }
}
