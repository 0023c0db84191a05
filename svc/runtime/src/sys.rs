//! The syscalls rustix does not offer, in one place: signal masks and `signalfd`,
//! `AF_PACKET` sockets (`sockaddr_ll`, `SO_ATTACH_FILTER`), `SO_BINDTODEVICE`,
//! `SIOCGIFHWADDR`, `SIOCSIFFLAGS` and `getifaddrs`; and the one `unsafe` std
//! call a supervisor needs, `CommandExt::pre_exec` ([`set_child_setup`]).
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
use std::os::unix::process::CommandExt;
use std::process::Command;

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

/// Who a child runs as, set between `fork` and `exec` by [`set_child_setup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User id (0 keeps root, with only `capabilities` left in its bounding set).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (replacing the parent's).
    pub groups: Vec<u32>,
    /// Capabilities as a bit mask (`1 << CAP_NET_RAW` …): the child's permitted,
    /// effective, inheritable and ambient sets, so they survive `exec` of an
    /// ordinary binary; every other capability leaves the bounding set.
    pub capabilities: u64,
    /// The highest capability number the kernel knows (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u32,
}

/// What a supervisor sets up in a child between `fork` and `exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildSetup {
    /// Start a new session, so the child leads its own process group.
    pub new_session: bool,
    /// Make fd 0, a terminal, the new session's controlling terminal (needs `new_session`).
    pub controlling_tty: bool,
    /// Drop to these credentials (needs root); `None` keeps ours.
    pub credentials: Option<Credentials>,
}

/// Arranges for `cmd`'s child to reset its signal mask and dispositions
/// ([`reset_signals_for_child`]), then apply `setup`, just before `exec`:
/// `setsid`, `TIOCSCTTY`, and for credentials: keep capabilities across the
/// uid change, shrink the bounding set, `setgroups`, `setresgid`, `setresuid`,
/// `capset` and `PR_CAP_AMBIENT_RAISE` for each wanted capability, then
/// `PR_SET_NO_NEW_PRIVS`. Any failure aborts the spawn with that errno.
pub fn set_child_setup(cmd: &mut Command, setup: ChildSetup) {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    // Everything the child needs is computed here, before fork: after it only
    // async-signal-safe work is allowed (raw syscalls, no allocation).
    let groups: Vec<rustix::fs::Gid> =
        setup.credentials.iter().flat_map(|c| c.groups.iter().map(|&g| rustix::fs::Gid::from_raw(g))).collect();
    let errno = |e: rustix::io::Errno| io::Error::from_raw_os_error(e.raw_os_error());
    let child = move || -> io::Result<()> {
        reset_signals_for_child()?;
        if setup.new_session {
            rustix::process::setsid().map_err(errno)?;
        }
        if setup.controlling_tty {
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin()).map_err(errno)?;
        }
        let Some(creds) = &setup.credentials else {
            return Ok(());
        };
        let wanted = CapabilitySet::from_bits_retain(creds.capabilities);
        rustix::thread::set_keep_capabilities(true).map_err(errno)?;
        for cap in 0..=creds.last_cap.min(63) {
            let bit = CapabilitySet::from_bits_retain(1 << cap);
            if !wanted.contains(bit) {
                match rustix::thread::remove_capability_from_bounding_set(bit) {
                    // A capability this kernel does not know is not in the set either.
                    Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                    Err(e) => return Err(errno(e)),
                }
            }
        }
        rustix::thread::set_thread_groups(&groups).map_err(errno)?;
        let gid = rustix::fs::Gid::from_raw(creds.gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(errno)?;
        let uid = rustix::fs::Uid::from_raw(creds.uid);
        rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(errno)?;
        let sets = CapabilitySets { effective: wanted, permitted: wanted, inheritable: wanted };
        rustix::thread::set_capabilities(None, sets).map_err(errno)?;
        if creds.uid != 0 {
            for cap in 0..64 {
                let bit = CapabilitySet::from_bits_retain(1 << cap);
                if wanted.contains(bit) {
                    rustix::thread::configure_capability_in_ambient_set(bit, true).map_err(errno)?;
                }
            }
        }
        rustix::thread::set_no_new_privs(true).map_err(errno)?;
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec. It only makes
    // raw syscalls through rustix (and `reset_signals_for_child`, which is
    // async-signal-safe), reads data captured before the fork, and builds
    // errors with `from_raw_os_error`, which does not allocate.
    unsafe {
        cmd.pre_exec(child);
    }
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

/// Sets `IFF_UP` on an interface (`SIOCGIFFLAGS`, then `SIOCSIFFLAGS`) through
/// `fd`, any socket of the network namespace to change. Bringing `lo` up also
/// gives it 127.0.0.1/8 and ::1: the kernel adds those itself.
pub fn set_interface_up(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<()> {
    let mut req = ifreq_for(ifname)?;
    // SAFETY: `req` is a valid ifreq naming the interface; SIOCGIFFLAGS fills ifru_flags.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: after a successful SIOCGIFFLAGS the union holds ifru_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: `req` names the interface and carries the flags to set.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &req) })?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn status_field(status: &str, field: &str) -> String {
        status.lines().find_map(|l| l.strip_prefix(field)).unwrap_or_default().trim().to_owned()
    }

    #[test]
    fn child_setup_drops_to_the_user_with_only_the_wanted_capabilities() {
        if !crate::testing::root("child_setup_drops_to_the_user_with_only_the_wanted_capabilities") {
            return;
        }
        let net_raw = 1u64 << 13;
        let kill = 1u64 << 5;
        let mut cmd = Command::new("/bin/cat");
        cmd.arg("/proc/self/status");
        set_child_setup(
            &mut cmd,
            ChildSetup {
                new_session: true,
                controlling_tty: false,
                credentials: Some(Credentials {
                    uid: 65534,
                    gid: 65533,
                    groups: vec![65532],
                    capabilities: net_raw | kill,
                    last_cap: 40,
                }),
            },
        );
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let status = String::from_utf8(out.stdout).unwrap();
        assert_eq!(status_field(&status, "Uid:"), "65534\t65534\t65534\t65534");
        assert_eq!(status_field(&status, "Gid:"), "65533\t65533\t65533\t65533");
        assert_eq!(status_field(&status, "Groups:"), "65532");
        for set in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:", "CapBnd:"] {
            assert_eq!(status_field(&status, set), format!("{:016x}", net_raw | kill), "{set}\n{status}");
        }
        assert_eq!(status_field(&status, "NoNewPrivs:"), "1");
        assert_eq!(status_field(&status, "SigBlk:"), "0000000000000000");
    }

    #[test]
    fn bringing_loopback_up_in_a_fresh_namespace_gives_it_its_addresses() {
        if !crate::testing::root("bringing_loopback_up_in_a_fresh_namespace_gives_it_its_addresses") {
            return;
        }
        // unshare(CLONE_NEWNET) moves only this thread, so the test runs on its own.
        let addrs = std::thread::spawn(|| {
            // SAFETY: NEWNET leaves the file descriptor table shared and intact.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }.unwrap();
            let before = interface_addrs().unwrap();
            let sock =
                rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None).unwrap();
            set_interface_up(sock.as_fd(), "lo").unwrap();
            (before, interface_addrs().unwrap())
        })
        .join()
        .unwrap();
        assert!(addrs.0.iter().all(|a| !a.up), "lo starts down: {:?}", addrs.0);
        let lo: Vec<IpAddr> = addrs.1.iter().filter(|a| a.ifname == "lo" && a.up).map(|a| a.addr).collect();
        assert!(lo.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{lo:?}");
    }
}
