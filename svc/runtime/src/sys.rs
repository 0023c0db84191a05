//! The syscalls rustix does not offer, in one place: signal masks and `signalfd`,
//! `AF_PACKET` sockets (`sockaddr_ll`, `SO_ATTACH_FILTER`), `SO_BINDTODEVICE`,
//! `SIOCGIFHWADDR`, `getifaddrs` and `recvmmsg`.
//!
//! rustix lists `sigprocmask`, `sigaction` and `signalfd` as not implemented
//! (`rustix/src/not_implemented.rs`) and has no `sockaddr_ll`, so these go through `libc`.
//! Every `unsafe` block in the workspace lives in this module and carries a
//! `// SAFETY:` comment; raw descriptors become [`OwnedFd`] immediately.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Turns a `-1` return into the thread's `errno` as an [`io::Error`].
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

fn sigset(signals: &[i32]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it fully before use.
    let mut set: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    cvt(unsafe { libc::sigemptyset(&mut set) })?;
    for &signal in signals {
        // SAFETY: `set` was initialised by sigemptyset above.
        cvt(unsafe { libc::sigaddset(&mut set, signal) })?;
    }
    Ok(set)
}

/// Blocks `signals` for the calling thread (`pthread_sigmask(SIG_BLOCK)`); threads
/// spawned afterwards inherit the mask, so call this before spawning any.
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals)?;
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// Clears the signal mask and restores default dispositions of the signals a
/// parent may have changed. Meant for `CommandExt::pre_exec`: children inherit
/// the blocked mask, and std's `Command` does not reset it, so without this a
/// service would never see SIGTERM. Async-signal-safe.
pub fn reset_signals_for_child() -> io::Result<()> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    let mut set: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    cvt(unsafe { libc::sigemptyset(&mut set) })?;
    // SAFETY: `set` is initialised; sigprocmask is async-signal-safe.
    cvt(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) })?;
    for signal in [libc::SIGPIPE, libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: SIG_DFL is a valid disposition for these catchable signals.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    Ok(())
}

/// Sends `signal` to the calling thread only (`tgkill`), for tests of signal handling.
pub fn signal_thread(signal: i32) -> io::Result<()> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    // SAFETY: tgkill(2) with our own pid and tid; the kernel validates the signal.
    let ret = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// One signal read from a `signalfd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal number.
    pub signo: i32,
    /// The sender's pid (or the child's, for SIGCHLD).
    pub pid: u32,
}

/// Creates a non-blocking, close-on-exec `signalfd` for `signals`. The signals
/// must already be blocked (see [`block_signals`]).
pub fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    let set = sigset(signals)?;
    // SAFETY: `set` is initialised; -1 asks for a new descriptor.
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
    // SAFETY: signalfd(2) returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal; `Ok(None)` when none is pending.
pub fn read_signal(fd: BorrowedFd<'_>) -> io::Result<Option<SignalInfo>> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let len = size_of::<libc::signalfd_siginfo>();
    // SAFETY: the buffer is exactly one signalfd_siginfo long and writable.
    let ret = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), len) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        return match err.kind() {
            io::ErrorKind::WouldBlock => Ok(None),
            _ => Err(err),
        };
    }
    if usize::try_from(ret).ok() != Some(len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "short signalfd read"));
    }
    // SAFETY: the kernel filled all `len` bytes.
    let info = unsafe { info.assume_init() };
    Ok(Some(SignalInfo { signo: i32::try_from(info.ssi_signo).unwrap_or(0), pid: info.ssi_pid }))
}

/// Link-level metadata of a received packet (`sockaddr_ll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkMeta {
    /// Interface the packet arrived on.
    pub ifindex: u32,
    /// Ethertype in host order.
    pub protocol: u16,
    /// `PACKET_HOST`, `PACKET_BROADCAST`, `PACKET_OUTGOING`, ….
    pub pkttype: u8,
    /// Source hardware address.
    pub src_mac: [u8; 6],
}

fn sockaddr_ll(ifindex: u32, protocol: u16, dst: Option<[u8; 6]>) -> io::Result<libc::sockaddr_ll> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range"))?;
    if let Some(mac) = dst {
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&mac);
    }
    Ok(addr)
}

/// Opens an `AF_PACKET` socket (`SOCK_DGRAM` when `cooked`, else `SOCK_RAW`),
/// non-blocking and close-on-exec, not yet bound: it receives nothing until
/// [`packet_bind`] names a protocol, which leaves room to attach a filter first.
pub fn packet_socket(cooked: bool) -> io::Result<OwnedFd> {
    let kind = if cooked { libc::SOCK_DGRAM } else { libc::SOCK_RAW };
    // SAFETY: plain socket(2) call; protocol 0 means "receive nothing yet".
    let fd = cvt(unsafe { libc::socket(libc::AF_PACKET, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket(2) returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a packet socket to `ifindex` (0 = every interface) and `protocol`.
pub fn packet_bind(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    let addr = sockaddr_ll(ifindex, protocol, None)?;
    // SAFETY: `addr` is a valid sockaddr_ll and the length matches its type.
    cvt(unsafe {
        libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), size_of::<libc::sockaddr_ll>() as libc::socklen_t)
    })?;
    Ok(())
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Generic field.
    pub k: u32,
}

/// Attaches a classic BPF program (`SO_ATTACH_FILTER`).
pub fn attach_filter(fd: BorrowedFd<'_>, program: &[SockFilter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads the program; the cast drops const for the C type.
        filter: program.as_ptr().cast_mut().cast(),
    };
    // SAFETY: SockFilter is #[repr(C)] with the layout of struct sock_filter and
    // `prog` points at `len` of them, alive for the duration of the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const prog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Sends one packet to `dst` on `ifindex` with ethertype `protocol`.
pub fn packet_send(fd: BorrowedFd<'_>, buf: &[u8], ifindex: u32, protocol: u16, dst: [u8; 6]) -> io::Result<usize> {
    let addr = sockaddr_ll(ifindex, protocol, Some(dst))?;
    // SAFETY: `buf` is valid for reads of its length; `addr` is a valid sockaddr_ll.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
}

/// Receives one packet; returns its length (truncated to `buf`) and link metadata.
pub fn packet_recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, LinkMeta)> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    let mut addr_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf` is valid for writes of its length; `addr`/`addr_len` describe a
    // writable sockaddr_ll.
    let len = cvt_size(unsafe {
        libc::recvfrom(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0, (&raw mut addr).cast(), &mut addr_len)
    })?;
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(&addr.sll_addr[..6]);
    Ok((
        len,
        LinkMeta {
            ifindex: u32::try_from(addr.sll_ifindex).unwrap_or(0),
            protocol: u16::from_be(addr.sll_protocol),
            pkttype: addr.sll_pkttype,
            src_mac,
        },
    ))
}

/// Binds a socket to one interface (`SO_BINDTODEVICE`).
pub fn bind_to_device(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `ifname`'s bytes, alive for the call;
    // the kernel copies at most IFNAMSIZ bytes and does not need a terminator.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            libc::socklen_t::try_from(ifname.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"))?,
        )
    })?;
    Ok(())
}

fn ifreq_for(ifname: &str) -> io::Result<libc::ifreq> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid interface name {ifname:?}")));
    }
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// Reads an interface's hardware address with `SIOCGIFHWADDR` through `fd`
/// (any socket of the network namespace to ask; sysfs would show the namespace
/// that mounted it, not the caller's).
pub fn interface_mac(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq_for(ifname)?;
    // SAFETY: `req` is a valid ifreq naming the interface; SIOCGIFHWADDR fills ifru_hwaddr.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) })?;
    // SAFETY: after a successful SIOCGIFHWADDR the union holds ifru_hwaddr.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(data.iter()) {
        *dst = *src as u8;
    }
    Ok(mac)
}

/// One address of one interface, from `getifaddrs(3)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// Interface name.
    pub ifname: String,
    /// Interface index (0 when unknown).
    pub ifindex: u32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length from the netmask.
    pub prefix_len: u8,
    /// Whether the interface is administratively up.
    pub up: bool,
    /// Whether it is a loopback interface.
    pub loopback: bool,
}

fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: getifaddrs returns valid sockaddr pointers; the family tells the real type.
    let family = i32::from(unsafe { (*sa).sa_family });
    match family {
        libc::AF_INET => {
            // SAFETY: family AF_INET means the pointee is a sockaddr_in.
            let sin = unsafe { &*sa.cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: family AF_INET6 means the pointee is a sockaddr_in6.
            let sin6 = unsafe { &*sa.cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn mask_len(mask: Option<IpAddr>) -> u8 {
    let ones = match mask {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones(),
        Some(IpAddr::V6(m)) => u128::from(m).count_ones(),
        None => 0,
    };
    u8::try_from(ones).unwrap_or(0)
}

/// Lists every IPv4 and IPv6 address of every interface of the caller's network namespace.
pub fn interface_addrs() -> io::Result<Vec<InterfaceAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head that we free with freeifaddrs below.
    cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let Some(addr) = sockaddr_ip(ifa.ifa_addr) else {
            continue;
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        // SAFETY: `ifa_name` is a valid C string for if_nametoindex.
        let ifindex = unsafe { libc::if_nametoindex(ifa.ifa_name) };
        let flags = ifa.ifa_flags;
        out.push(InterfaceAddr {
            ifname,
            ifindex,
            addr,
            prefix_len: mask_len(sockaddr_ip(ifa.ifa_netmask)),
            up: flags & (libc::IFF_UP as libc::c_uint) != 0,
            loopback: flags & (libc::IFF_LOOPBACK as libc::c_uint) != 0,
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// Most datagrams [`recv_datagrams`] takes in one call.
pub const MAX_DATAGRAMS: usize = 64;

/// One datagram received by [`recv_datagrams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Datagram {
    /// Bytes received (at most the slot's size).
    pub len: usize,
    /// The sender (`None` for an address family other than IPv4/IPv6).
    pub from: Option<std::net::SocketAddr>,
    /// The datagram was longer than its slot and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}

fn sockaddr_storage_to_std(sa: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    match i32::from(sa.ss_family) {
        libc::AF_INET => {
            // SAFETY: family AF_INET means the storage holds a sockaddr_in; the
            // storage is larger and suitably aligned for it.
            let sin = unsafe { &*std::ptr::from_ref(sa).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: family AF_INET6 means the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*std::ptr::from_ref(sa).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Receives up to `out.len()` datagrams (at most [`MAX_DATAGRAMS`]) from a UDP
/// socket in one call, without blocking: `recvmmsg(2)` with `MSG_DONTWAIT`,
/// which rustix does not offer. Datagram `i` lands in
/// `buf[i * slot..(i + 1) * slot]`. Returns how many arrived; fewer than asked
/// means the queue is empty now, so an edge-triggered reader need not call
/// again. `WouldBlock` when none was waiting.
pub fn recv_datagrams(fd: BorrowedFd<'_>, buf: &mut [u8], slot: usize, out: &mut [Datagram]) -> io::Result<usize> {
    let n = out.len().min(MAX_DATAGRAMS).min(buf.len().checked_div(slot).unwrap_or(0));
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: iovec, sockaddr_storage and mmsghdr are plain data for which all
    // zeroes is a valid value; every field used is set below.
    let mut iovs: [libc::iovec; MAX_DATAGRAMS] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut addrs: [libc::sockaddr_storage; MAX_DATAGRAMS] = unsafe { zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; MAX_DATAGRAMS] = unsafe { zeroed() };
    for (i, chunk) in buf.chunks_exact_mut(slot).take(n).enumerate() {
        iovs[i] = libc::iovec { iov_base: chunk.as_mut_ptr().cast(), iov_len: slot };
        msgs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = (&raw mut addrs[i]).cast();
        msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    }
    // SAFETY: `msgs[..n]` point at `iovs[..n]` and `addrs[..n]`, which live
    // until the call returns; each iovec covers a distinct `slot`-byte part of
    // `buf`, which we borrow mutably for the call; `fd` is a valid descriptor.
    let got = unsafe {
        libc::recvmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
    };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    for (i, d) in out.iter_mut().take(got).enumerate() {
        let m = &msgs[i];
        *d = Datagram {
            len: (m.msg_len as usize).min(slot),
            from: sockaddr_storage_to_std(&addrs[i]),
            truncated: m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        };
    }
    Ok(got)
}

#[cfg(test)]
mod datagram_tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn receives_a_batch_and_reports_senders_and_cut_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = vec![0u8; 4 * 16];
        let mut out = [Datagram::default(); 4];
        let err = recv_datagrams(rx.as_fd(), &mut buf, 16, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        for msg in [&b"one"[..], b"two", &[7u8; 40]] {
            tx.send_to(msg, rx.local_addr().unwrap()).unwrap();
        }
        let n = recv_datagrams(rx.as_fd(), &mut buf, 16, &mut out).unwrap();
        assert_eq!(n, 3, "fewer than asked: the queue is empty");
        assert_eq!(&buf[..3], b"one");
        assert_eq!(&buf[16..19], b"two");
        assert_eq!((out[2].len, out[2].truncated), (16, true));
        assert!(out.iter().take(3).all(|d| d.from == Some(tx.local_addr().unwrap())));
    }
}
