//! Changes of the kernel's links, addresses and routes, as rtnetlink's
//! multicast groups announce them. diagd only needs to know that something
//! changed — a round of checks then looks at the result — so the messages are
//! read and dropped, not parsed.
//!
//! This is what catches what nobody signals diagd about: the address and the
//! default route the kernel takes from an IPv6 router advertisement, the end
//! of duplicate address detection, a carrier coming back.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType};

/// `RTMGRP_*` from `<linux/rtnetlink.h>`: links, IPv4 and IPv6 addresses and routes.
const GROUPS: u32 = 0x1 | 0x10 | 0x40 | 0x100 | 0x400;

/// A socket subscribed to the groups above.
pub struct KernelChanges {
    fd: OwnedFd,
}

impl KernelChanges {
    /// Opens and subscribes (no privilege needed for these groups).
    pub fn open() -> io::Result<Self> {
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        // Protocol `None` is NETLINK_ROUTE.
        let fd = rustix::net::socket_with(AddressFamily::NETLINK, SocketType::RAW, flags, None)?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, GROUPS))?;
        Ok(Self { fd })
    }

    /// Registers for readability.
    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut SourceFd(&self.fd.as_raw_fd()), token, Interest::READABLE)
    }

    /// Stops readiness events (before the socket is dropped).
    pub fn deregister(&self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut SourceFd(&self.fd.as_raw_fd()))
    }

    /// Reads everything queued: how many messages there were. An overrun
    /// (ENOBUFS: the kernel dropped some) counts as one, since it means changes.
    pub fn drain(&self) -> io::Result<usize> {
        let mut buf = [0u8; 8192];
        let mut n = 0;
        loop {
            match rustix::net::recv(&self.fd, &mut buf[..], RecvFlags::empty()) {
                Ok(_) | Err(Errno::NOBUFS) => n += 1,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return Ok(n),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
