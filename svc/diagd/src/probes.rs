//! The sockets behind the network checks, all non-blocking and driven by the
//! event loop: ICMP/ICMPv6 echo sockets and TCP connects with an optional
//! source address.
//!
//! Echo sockets: an unprivileged ping socket (`SOCK_DGRAM` with `IPPROTO_ICMP`
//! or `IPPROTO_ICMPV6`) when `net.ipv4.ping_group_range` includes our group,
//! else a raw socket, which needs `CAP_NET_RAW` (init gives diagd that on the
//! device), with a BPF filter so only echo replies reach us. Either way the
//! kernel computes ICMPv6 checksums; we compute ICMPv4's.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, ipproto};

/// IP version of an echo socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// ICMP over IPv4.
    V4,
    /// ICMPv6.
    V6,
}

/// An open echo socket.
#[derive(Debug)]
pub struct EchoSocket {
    fd: OwnedFd,
    /// A raw socket (received IPv4 packets carry their IP header).
    pub raw: bool,
}

impl EchoSocket {
    /// Opens a ping socket, or a raw one when ping sockets are not allowed for us.
    pub fn open(version: Version) -> io::Result<Self> {
        let (family, protocol) = match version {
            Version::V4 => (AddressFamily::INET, ipproto::ICMP),
            Version::V6 => (AddressFamily::INET6, ipproto::ICMPV6),
        };
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let (fd, raw) = match rustix::net::socket_with(family, SocketType::DGRAM, flags, Some(protocol)) {
            Ok(fd) => (fd, false),
            Err(dgram) => match rustix::net::socket_with(family, SocketType::RAW, flags, Some(protocol)) {
                Ok(fd) => (fd, true),
                Err(raw) => {
                    return Err(io::Error::other(format!(
                        "ping socket: {dgram}; raw socket: {raw} (allow our group in \
                         net.ipv4.ping_group_range or grant CAP_NET_RAW)"
                    )));
                }
            },
        };
        if raw {
            // A raw socket sees every ICMP packet of the host: let only echo replies through.
            let filter = match version {
                Version::V4 => diagd::echo::raw_filter_v4(),
                Version::V6 => diagd::echo::raw_filter_v6(),
            }
            .map_err(io::Error::other)?;
            runtime::sys::attach_filter(fd.as_fd(), &filter)?;
        }
        if version == Version::V6 {
            // Our own multicast echo must not loop back: ff02::2 is also us when
            // we forward (a router joins all-routers on every interface).
            rustix::net::sockopt::set_ipv6_multicast_loop(&fd, false)?;
        }
        Ok(Self { fd, raw })
    }

    /// Registers for readability.
    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut SourceFd(&self.fd.as_raw_fd()), token, Interest::READABLE)
    }

    /// Sends one ICMP message to `dst` (a link-local or multicast IPv6
    /// destination needs its scope id: the interface).
    pub fn send(&self, packet: &[u8], dst: SocketAddr) -> io::Result<()> {
        rustix::net::sendto(&self.fd, packet, SendFlags::empty(), &dst)?;
        Ok(())
    }

    /// Receives one packet: its length and source, or `WouldBlock`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Option<IpAddr>)> {
        let capacity = buf.len();
        let (len, _, from) = rustix::net::recvfrom(&self.fd, buf, RecvFlags::empty())?;
        let from = from.and_then(|a| SocketAddr::try_from(a).ok()).map(|a| a.ip());
        Ok((len.min(capacity), from))
    }
}

/// Starts a TCP connect to `target`, from `source` when given; the stream
/// becomes writable when the handshake is done or has failed.
pub fn connect(target: SocketAddr, source: Option<IpAddr>) -> io::Result<mio::net::TcpStream> {
    let family = if target.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        Some(ipproto::TCP),
    )?;
    if let Some(ip) = source {
        rustix::net::bind(&fd, &SocketAddr::new(ip, 0))?;
    }
    match rustix::net::connect(&fd, &target) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(mio::net::TcpStream::from_std(std::net::TcpStream::from(fd)))
}

/// How a connect that became writable ended: `Ok(())` when established.
pub fn connect_result(stream: &mio::net::TcpStream) -> io::Result<Option<()>> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(Some(())),
        // Not yet: a spurious wake-up; wait for the next one.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(None),
        Err(e) => Err(e),
    }
}

/// An OS error as people read it: `connection refused`, without `(os error 111)`.
#[must_use]
pub fn error_text(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_drops_the_errno_suffix() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(error_text(&e), "connection refused");
        assert_eq!(error_text(&io::Error::other("No route")), "no route");
    }

    #[test]
    fn a_refused_connect_reports_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let stream = connect(addr, Some("127.0.0.1".parse().unwrap())).unwrap();
        let deadline = runtime::clock::now() + std::time::Duration::from_secs(5);
        loop {
            match connect_result(&stream) {
                Err(e) => {
                    assert_eq!(error_text(&e), "connection refused");
                    break;
                }
                Ok(Some(())) => panic!("connected to a closed port"),
                Ok(None) => {
                    assert!(runtime::clock::now() < deadline);
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
}
