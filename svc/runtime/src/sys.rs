//! The syscalls rustix does not offer, in one place: signal masks and `signalfd`,
//! `AF_PACKET` sockets (`sockaddr_ll`, `SO_ATTACH_FILTER`), `SO_BINDTODEVICE`,
//! `SIOCGIFHWADDR`, `SIOCGIFMTU`, `SIOCSIFFLAGS`, `getifaddrs` (addresses, and links with
//! their flags and counters), `recvmmsg`, `sendmmsg` without allocating, IPv6 ancillary data (`IPV6_PKTINFO`,
//! `IPV6_HOPLIMIT`, `ICMP6_FILTER`) that rustix's `recvmsg`/`sendmsg` skip; `kexec_file_load`
//! (init's updates); and the one `unsafe` std call a supervisor needs, `CommandExt::pre_exec`
//! ([`set_child_setup`]).
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
/// parent may have changed, except SIGUSR1, which the child starts with
/// ignored. Meant for `CommandExt::pre_exec`: children inherit the blocked
/// mask, and std's `Command` does not reset it, so without this a service
/// would never see SIGTERM. Async-signal-safe.
///
/// Why SIGUSR1 is ignored: it means "your inputs changed" and peers send it
/// through the pid file, which init writes as soon as it has forked, so it
/// can arrive before the service has blocked it for its `signalfd`; its
/// default action would kill the service (seen on the image: backupd exited
/// on signal 10 a second after it started, at netconfigd's first apply).
/// Ignoring loses nothing: a runtime service blocks it before it reads its
/// inputs ([`crate::service::start`]), and a blocked signal is queued for
/// the `signalfd` whatever its disposition. The dispositions are set while
/// the parent's mask still blocks everything, so a SIGUSR1 already pending
/// is discarded rather than delivered.
pub fn reset_signals_for_child() -> io::Result<()> {
    for signal in [libc::SIGPIPE, libc::SIGHUP, libc::SIGUSR2] {
        // SAFETY: SIG_DFL is a valid disposition for these catchable signals.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    // SAFETY: SIG_IGN is a valid disposition for SIGUSR1.
    unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    let mut set: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    cvt(unsafe { libc::sigemptyset(&mut set) })?;
    // SAFETY: `set` is initialised; sigprocmask is async-signal-safe.
    cvt(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) })?;
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

/// One malloc arena for the whole process (glibc's `M_ARENA_MAX` = 1): by
/// default every thread that allocates gets an arena of its own, each a heap
/// with its own resident pages; our services allocate little and mostly on
/// one thread, so sharing one is cheaper than the memory. Call before any
/// thread exists. Other C libraries have one arena anyway.
pub fn single_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt(3) only sets a tunable; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
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

/// Reads an interface's MTU with `SIOCGIFMTU` through `fd` (see [`interface_mac`]).
pub fn interface_mtu(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<u32> {
    let mut req = ifreq_for(ifname)?;
    // SAFETY: `req` is a valid ifreq naming the interface; SIOCGIFMTU fills ifru_mtu.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFMTU, &mut req) })?;
    // SAFETY: after a successful SIOCGIFMTU the union holds ifru_mtu.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{ifname}: MTU {mtu}")))
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

/// One network interface (link) with its flags and packet counters, from the
/// `AF_PACKET` entries of `getifaddrs(3)` (which glibc fills from `RTM_GETLINK`,
/// so the answer is the caller's network namespace, unlike sysfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface name.
    pub ifname: String,
    /// Interface index (0 when unknown).
    pub ifindex: u32,
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING`: operationally up (carrier, RFC 2863 operstate "up").
    pub running: bool,
    /// Packets received (the kernel's 32-bit `rtnl_link_stats` counter).
    pub rx_packets: u64,
    /// Packets sent (32-bit, as above).
    pub tx_packets: u64,
}

/// Lists every link of the caller's network namespace, with or without addresses.
pub fn interface_links() -> io::Result<Vec<LinkInfo>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head that we free with freeifaddrs below.
    cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_addr points at a sockaddr; sa_family tells its type.
        if i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_PACKET {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        // SAFETY: `ifa_name` is a valid C string for if_nametoindex.
        let ifindex = unsafe { libc::if_nametoindex(ifa.ifa_name) };
        let (rx_packets, tx_packets) = if ifa.ifa_data.is_null() {
            (0, 0)
        } else {
            // SAFETY: for AF_PACKET entries glibc points ifa_data at a `struct
            // rtnl_link_stats` owned by the list, whose first two fields are the
            // __u32 rx_packets and tx_packets; read_unaligned makes no alignment claim.
            unsafe {
                let stats = ifa.ifa_data.cast::<u32>();
                (u64::from(stats.read_unaligned()), u64::from(stats.add(1).read_unaligned()))
            }
        };
        let flags = ifa.ifa_flags;
        out.push(LinkInfo {
            ifname,
            ifindex,
            up: flags & (libc::IFF_UP as libc::c_uint) != 0,
            running: flags & (libc::IFF_RUNNING as libc::c_uint) != 0,
            rx_packets,
            tx_packets,
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// `ICMP6_FILTER` (RFC 3542 §3.2; Linux calls it `ICMPV6_FILTER` in `linux/icmpv6.h`), absent from libc.
const ICMP6_FILTER: libc::c_int = 1;

fn set_int_option(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, alive for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Asks for each received IPv6 packet's hop limit as ancillary data
/// (`IPV6_RECVHOPLIMIT`, RFC 3542 §6.3); [`recv_ipv6`] reports it.
pub fn set_ipv6_recv_hop_limit(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, libc::c_int::from(on))
}

/// Asks for each received IPv6 packet's arrival interface and destination
/// (`IPV6_RECVPKTINFO`, RFC 3542 §6.1); [`recv_ipv6`] reports them.
pub fn set_ipv6_recv_pktinfo(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, libc::c_int::from(on))
}

/// Lets only ICMPv6 messages of the types in `pass` reach a raw ICMPv6 socket
/// (`ICMP6_FILTER`, RFC 3542 §3.2); the kernel drops the rest before queueing.
pub fn set_icmpv6_filter(fd: BorrowedFd<'_>, pass: &[u8]) -> io::Result<()> {
    // Linux's struct icmp6_filter: 256 bits, a set bit blocks that type.
    let mut filter = [u32::MAX; 8];
    for &t in pass {
        filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    // SAFETY: the pointer and length describe `filter` (32 bytes, the size of
    // struct icmp6_filter), alive for the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            size_of::<[u32; 8]>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// What `recvmsg` told about one received IPv6 datagram besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6RecvMeta {
    /// The sender (with its scope for link-local addresses).
    pub src: std::net::SocketAddrV6,
    /// The IPv6 hop limit it arrived with (after [`set_ipv6_recv_hop_limit`]).
    pub hop_limit: Option<u8>,
    /// The interface it arrived on (after [`set_ipv6_recv_pktinfo`]).
    pub ifindex: Option<u32>,
    /// Its destination address (after [`set_ipv6_recv_pktinfo`]).
    pub dst: Option<Ipv6Addr>,
    /// It was longer than the buffer and was cut.
    pub truncated: bool,
}

fn sockaddr_in6(addr: std::net::SocketAddrV6) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_port = addr.port().to_be();
    sa.sin6_flowinfo = addr.flowinfo();
    sa.sin6_addr.s6_addr = addr.ip().octets();
    sa.sin6_scope_id = addr.scope_id();
    sa
}

/// Receives one IPv6 datagram (`recvmsg`) with its sender, hop limit, arrival
/// interface and destination; `WouldBlock` when none is queued.
pub fn recv_ipv6(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Ipv6RecvMeta)> {
    // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
    let mut src: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // u64s keep the control buffer aligned for cmsghdr; 128 bytes hold
    // IPV6_PKTINFO and IPV6_HOPLIMIT with room to spare.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut src).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` refers to a live, writable buffer of the
    // stated length (`src`, `iov` → `buf`, `control`).
    let len = cvt_size(unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, 0) })?;
    let mut meta = Ipv6RecvMeta {
        src: std::net::SocketAddrV6::new(
            Ipv6Addr::from(src.sin6_addr.s6_addr),
            u16::from_be(src.sin6_port),
            src.sin6_flowinfo,
            src.sin6_scope_id,
        ),
        hop_limit: None,
        ifindex: None,
        dst: None,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
    };
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR stay
    // within msg_controllen and return null at the end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/NXTHDR lies inside `control`.
        let header = unsafe { &*cmsg };
        let data_len = (header.cmsg_len as usize).saturating_sub(
            // SAFETY: CMSG_LEN is pure arithmetic.
            unsafe { libc::CMSG_LEN(0) } as usize,
        );
        if header.cmsg_level == libc::IPPROTO_IPV6 {
            // SAFETY: CMSG_DATA points just after the header, inside `control`.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            match header.cmsg_type {
                libc::IPV6_HOPLIMIT if data_len >= size_of::<libc::c_int>() => {
                    // SAFETY: the kernel wrote an int here (checked length); it may be unaligned.
                    let v = unsafe { std::ptr::read_unaligned(data.cast::<libc::c_int>()) };
                    meta.hop_limit = u8::try_from(v).ok();
                }
                libc::IPV6_PKTINFO if data_len >= size_of::<libc::in6_pktinfo>() => {
                    // SAFETY: the kernel wrote an in6_pktinfo here (checked length).
                    let info = unsafe { std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>()) };
                    meta.ifindex = Some(info.ipi6_ifindex);
                    meta.dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
                _ => {}
            }
        }
        // SAFETY: as above; returns null after the last header.
        cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
    }
    Ok((len, meta))
}

/// Sends one IPv6 datagram to `dst` (`sendmsg`) out of interface `ifindex`, from
/// source address `src` when given (`IPV6_PKTINFO`, RFC 3542 §6.1: the kernel
/// refuses an address that is not usable, e.g. still tentative), and with hop
/// limit `hop_limit` when given (`IPV6_HOPLIMIT`, §6.3), whatever the socket's defaults.
pub fn send_ipv6(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    dst: std::net::SocketAddrV6,
    src: Option<Ipv6Addr>,
    ifindex: u32,
    hop_limit: Option<u8>,
) -> io::Result<usize> {
    let mut addr = sockaddr_in6(dst);
    let mut iov = libc::iovec { iov_base: buf.as_ptr().cast_mut().cast(), iov_len: buf.len() };
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut addr).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `in6_pktinfo` is plain data; all-zero (any source, any interface) is valid.
    let mut info: libc::in6_pktinfo = unsafe { zeroed() };
    info.ipi6_addr.s6_addr = src.unwrap_or(Ipv6Addr::UNSPECIFIED).octets();
    info.ipi6_ifindex = ifindex;
    // SAFETY: CMSG_SPACE is pure arithmetic.
    let mut used = unsafe { libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) } as usize;
    // SAFETY: `control` (128 bytes, aligned) has room for both headers and their
    // data; CMSG_FIRSTHDR/NXTHDR return headers inside it, checked non-null.
    unsafe {
        let first = libc::CMSG_FIRSTHDR(&raw const msg);
        if first.is_null() {
            return Err(io::Error::other("no room for ancillary data"));
        }
        (*first).cmsg_level = libc::IPPROTO_IPV6;
        (*first).cmsg_type = libc::IPV6_PKTINFO;
        (*first).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(first).cast::<libc::in6_pktinfo>(), info);
        if let Some(hops) = hop_limit {
            let second = libc::CMSG_NXTHDR(&raw const msg, first);
            if second.is_null() {
                return Err(io::Error::other("no room for ancillary data"));
            }
            (*second).cmsg_level = libc::IPPROTO_IPV6;
            (*second).cmsg_type = libc::IPV6_HOPLIMIT;
            (*second).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(second).cast::<libc::c_int>(), libc::c_int::from(hops));
            used += libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) as usize;
        }
    }
    msg.msg_controllen = used as _;
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length;
    // sendmsg only reads them.
    cvt_size(unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, 0) })
}

/// `kexec_file_load(2)` flag: no initramfs (`KEXEC_FILE_NO_INITRAMFS`).
const KEXEC_FILE_NO_INITRAMFS: libc::c_ulong = 0x4;
/// `kexec_file_load(2)` flag: unload what is loaded (`KEXEC_FILE_UNLOAD`).
const KEXEC_FILE_UNLOAD: libc::c_ulong = 0x1;

/// `kexec_file_load(2)`: loads the kernel image open at `kernel` (a bzImage)
/// with `cmdline` and no initramfs, for a later
/// `reboot(LINUX_REBOOT_CMD_KEXEC)`. The kernel parses and checks the image
/// itself: `ENOEXEC`/`EINVAL` mean a bad image, `ENOSYS` a kernel without
/// `CONFIG_KEXEC_FILE`, `EPERM` a missing `CAP_SYS_BOOT` (or lockdown).
/// rustix has no wrapper for it.
pub fn kexec_file_load(kernel: BorrowedFd<'_>, cmdline: &str) -> io::Result<()> {
    let line = std::ffi::CString::new(cmdline)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "kernel command line contains a NUL byte"))?;
    // The length counts the terminating NUL (the kernel checks it is there).
    let len = line.as_bytes_with_nul().len();
    // SAFETY: raw syscall with: a borrowed, open descriptor; initrd_fd -1, which
    // KEXEC_FILE_NO_INITRAMFS tells the kernel to ignore; a pointer to `len`
    // bytes of a NUL-terminated string that outlives the call; plain flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            -1 as libc::c_int,
            len as libc::c_ulong,
            line.as_ptr(),
            KEXEC_FILE_NO_INITRAMFS,
        )
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Unloads a kernel loaded with [`kexec_file_load`] (`KEXEC_FILE_UNLOAD`).
pub fn kexec_file_unload() -> io::Result<()> {
    // SAFETY: raw syscall with KEXEC_FILE_UNLOAD, which ignores the descriptors
    // (-1) and the command line (length 0, null pointer).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            -1 as libc::c_int,
            -1 as libc::c_int,
            0 as libc::c_ulong,
            std::ptr::null::<libc::c_char>(),
            KEXEC_FILE_UNLOAD,
        )
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddrV6, UdpSocket};
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
        // Only SIGUSR1 (10, bit 9) is ignored: a reload request before the
        // child has set up its signalfd must not kill it.
        let ignored = u64::from_str_radix(&status_field(&status, "SigIgn:"), 16).unwrap();
        assert_ne!(ignored & (1 << 9), 0, "SIGUSR1 ignored: {ignored:016x}");
        let reset = [libc::SIGPIPE, libc::SIGHUP, libc::SIGUSR2].iter().map(|&s| 1u64 << (s - 1)).sum::<u64>();
        assert_eq!(ignored & reset, 0, "SIGPIPE, SIGHUP, SIGUSR2 at their defaults: {ignored:016x}");
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

    #[test]
    fn ipv6_ancillary_data_carries_hop_limit_interface_and_destination() {
        let lo = crate::netif::index("lo").unwrap();
        let rx = UdpSocket::bind("[::1]:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        set_ipv6_recv_hop_limit(rx.as_fd(), true).unwrap();
        set_ipv6_recv_pktinfo(rx.as_fd(), true).unwrap();
        let std::net::SocketAddr::V6(to) = rx.local_addr().unwrap() else { panic!("not IPv6") };
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        let sent = send_ipv6(tx.as_fd(), b"hops", to, Some(Ipv6Addr::LOCALHOST), lo, Some(7)).unwrap();
        assert_eq!(sent, 4);
        // The socket defaults (64) do not apply when the hop limit is given.
        send_ipv6(tx.as_fd(), b"default", to, None, 0, None).unwrap();
        let mut buf = [0u8; 16];
        let (n, meta) = recv_ipv6(rx.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hops");
        assert_eq!(meta.hop_limit, Some(7));
        assert_eq!(meta.ifindex, Some(lo));
        assert_eq!(meta.dst, Some(Ipv6Addr::LOCALHOST));
        let std::net::SocketAddr::V6(from) = tx.local_addr().unwrap() else { panic!("not IPv6") };
        assert_eq!(meta.src, SocketAddrV6::new(Ipv6Addr::LOCALHOST, from.port(), 0, 0));
        assert!(!meta.truncated);
        let (n, meta) = recv_ipv6(rx.as_fd(), &mut buf[..3]).unwrap();
        assert_eq!((n, meta.truncated), (3, true), "a datagram longer than the buffer is reported cut");
        assert_ne!(meta.hop_limit, Some(7));
    }

    #[test]
    fn a_source_address_we_do_not_have_is_refused() {
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        let to = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 9, 0, 0);
        let err = send_ipv6(tx.as_fd(), b"x", to, Some("2001:db8::99".parse().unwrap()), 0, Some(1)).unwrap_err();
        assert!(matches!(err.raw_os_error(), Some(libc::EINVAL | libc::EADDRNOTAVAIL)), "{err}");
    }

    #[test]
    fn loopback_has_an_mtu() {
        let sock = rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None).unwrap();
        assert!(interface_mtu(sock.as_fd(), "lo").unwrap() >= 1280);
        assert!(interface_mtu(sock.as_fd(), "does-not-exist0").is_err());
    }

    #[test]
    fn kexec_file_load_refuses_what_is_not_a_kernel() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("runtime-kexec-{}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(&[0x5a; 4096]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let err = kexec_file_load(file.as_fd(), "console=ttyS0").unwrap_err();
        std::fs::remove_file(&path).unwrap();
        // Root on a kernel with KEXEC_FILE: ENOEXEC (no loader takes it); without
        // the capability or under a seccomp filter: EPERM; a kernel without it: ENOSYS.
        let errno = err.raw_os_error().unwrap();
        assert!([libc::ENOEXEC, libc::EPERM, libc::ENOSYS].contains(&errno), "unexpected {err}");
        assert_eq!(kexec_file_load(file.as_fd(), "a\0b").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
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
    // Only the `n` entries used are written: zeroing all MAX_DATAGRAMS of each
    // array (13 KiB) on every call cost more than the call's bookkeeping.
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; MAX_DATAGRAMS];
    let mut addrs = [const { MaybeUninit::<libc::sockaddr_storage>::uninit() }; MAX_DATAGRAMS];
    let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; MAX_DATAGRAMS];
    for (i, chunk) in buf.chunks_exact_mut(slot).take(n).enumerate() {
        let iov = iovs[i].write(libc::iovec { iov_base: chunk.as_mut_ptr().cast(), iov_len: slot });
        // SAFETY: sockaddr_storage and mmsghdr are plain data for which all
        // zeroes is a valid value.
        let addr = addrs[i].write(unsafe { zeroed() });
        // SAFETY: as above.
        let msg = msgs[i].write(unsafe { zeroed() });
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
        msg.msg_hdr.msg_name = std::ptr::from_mut(addr).cast();
        msg.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    }
    // SAFETY: `msgs[..n]` are initialised above and point at `iovs[..n]` and
    // `addrs[..n]`, which live until the call returns; each iovec covers a
    // distinct `slot`-byte part of `buf`, which we borrow mutably for the call;
    // `fd` is a valid descriptor.
    let got = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr().cast::<libc::mmsghdr>(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?.min(n);
    for (i, d) in out.iter_mut().take(got).enumerate() {
        // SAFETY: entries below `n` were initialised above (the kernel wrote
        // into them, keeping them valid values).
        let (m, addr) = unsafe { (msgs[i].assume_init_ref(), addrs[i].assume_init_ref()) };
        *d = Datagram {
            len: (m.msg_len as usize).min(slot),
            from: sockaddr_storage_to_std(addr),
            truncated: m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        };
    }
    Ok(got)
}

/// Sends `bufs[i]` to `to[i]` for each `i` (at most [`MAX_DATAGRAMS`], and no
/// more than the shorter slice holds) in one `sendmmsg(2)` call with
/// `MSG_DONTWAIT`. rustix has `sendmmsg`, but its message headers borrow
/// per-message address, iovec and control wrappers that have to be collected
/// into vectors on every call; this takes the caller's slices and allocates
/// nothing. Returns how many the kernel took (always a prefix; fewer than
/// asked when the socket's buffer filled up or sending the next one failed);
/// an error only when the first could not be sent.
pub fn send_datagrams<B: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    bufs: &[B],
    to: &[std::net::SocketAddr],
) -> io::Result<usize> {
    let n = bufs.len().min(to.len()).min(MAX_DATAGRAMS);
    if n == 0 {
        return Ok(0);
    }
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; MAX_DATAGRAMS];
    // A sockaddr_in6 slot holds either family: sockaddr_in is smaller and
    // needs no stricter alignment.
    let mut addrs = [const { MaybeUninit::<libc::sockaddr_in6>::uninit() }; MAX_DATAGRAMS];
    let mut msgs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; MAX_DATAGRAMS];
    for (i, (buf, addr)) in bufs.iter().zip(to).take(n).enumerate() {
        let buf = buf.as_ref();
        // The kernel only reads through iov_base for a send.
        let iov = iovs[i].write(libc::iovec { iov_base: buf.as_ptr().cast_mut().cast(), iov_len: buf.len() });
        let slot = addrs[i].as_mut_ptr();
        let len = match addr {
            std::net::SocketAddr::V4(v4) => {
                // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
                let mut sin: libc::sockaddr_in = unsafe { zeroed() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = v4.port().to_be();
                sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
                // SAFETY: the slot is large enough and aligned for a
                // sockaddr_in (see above); it is written, not read.
                unsafe { slot.cast::<libc::sockaddr_in>().write(sin) };
                size_of::<libc::sockaddr_in>()
            }
            std::net::SocketAddr::V6(v6) => {
                // SAFETY: the slot is a sockaddr_in6; it is written, not read.
                unsafe { slot.write(sockaddr_in6(*v6)) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        // SAFETY: mmsghdr is plain data; all-zero is a valid value.
        let msg = msgs[i].write(unsafe { zeroed() });
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
        msg.msg_hdr.msg_name = slot.cast();
        msg.msg_hdr.msg_namelen = len as libc::socklen_t;
    }
    // SAFETY: `msgs[..n]` are initialised above and point at `iovs[..n]`
    // (each covering a live buffer of `bufs`, which the kernel only reads) and
    // at `addrs[..n]`, all of which outlive the call; `fd` is a valid descriptor.
    let sent = unsafe {
        libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr().cast::<libc::mmsghdr>(), n as libc::c_uint, libc::MSG_DONTWAIT)
    };
    usize::try_from(sent).map(|s| s.min(n)).map_err(|_| io::Error::last_os_error())
}

/// `madvise(2)` on a range of our own address space that a caller read from
/// `/proc/self/smaps`. `MADV_RANDOM` and `MADV_PAGEOUT` are advice only;
/// `MADV_DONTNEED` unmaps the range's pages, so the caller gives it only
/// file-backed ranges without a private (copied-on-write) page, whose
/// contents the file still holds.
///
/// # Errors
/// From the kernel, e.g. `ENOSYS` without `CONFIG_ADVISE_SYSCALLS`.
pub fn advise(start: usize, len: usize, advice: Advice) -> io::Result<()> {
    let advice = match advice {
        Advice::Random => libc::MADV_RANDOM,
        Advice::PageOut => libc::MADV_PAGEOUT,
        Advice::DontNeed => libc::MADV_DONTNEED,
    };
    // SAFETY: a mapped range of ours; no advice here discards data the file
    // does not hold (see above), and no Rust reference changes meaning.
    if unsafe { libc::madvise(start as *mut libc::c_void, len, advice) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The advice [`advise`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Access will be random: no read-ahead for this range.
    Random,
    /// Reclaim these pages now (they come back on the next touch).
    PageOut,
    /// Unmap these pages (a file mapping refaults them from the file).
    DontNeed,
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

    #[test]
    fn sends_a_batch_each_to_its_own_address() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("[::1]:0").ok();
        let v6tx = UdpSocket::bind("[::1]:0").ok();
        let to = [a.local_addr().unwrap(), a.local_addr().unwrap()];
        let msgs = [b"first".to_vec(), b"second".to_vec()];
        assert_eq!(send_datagrams(tx.as_fd(), &msgs, &to).unwrap(), 2);
        assert_eq!(send_datagrams(tx.as_fd(), &msgs[..0], &to).unwrap(), 0, "nothing to send");
        let mut buf = [0u8; 16];
        for want in [&b"first"[..], b"second"] {
            let (n, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (want, tx.local_addr().unwrap()));
        }
        // IPv6 destinations, where the machine has IPv6 loopback.
        if let (Some(b), Some(v6tx)) = (b, v6tx) {
            let to = [b.local_addr().unwrap()];
            assert_eq!(send_datagrams(v6tx.as_fd(), &[&b"six"[..]], &to).unwrap(), 1);
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"six"[..], v6tx.local_addr().unwrap()));
        }
        // The first one failing is an error: an IPv4 socket cannot reach IPv6.
        let v6dst: std::net::SocketAddr = "[::1]:9".parse().unwrap();
        assert!(send_datagrams(tx.as_fd(), &[&b"x"[..]], &[v6dst]).is_err());
    }
}
