//! The real [`Kernel`]: rtnetlink (links, addresses, routes) through
//! `netlink-packet-route` on a synchronous `netlink-sys` socket, nftables
//! through our own nfnetlink encoder ([`crate::nft`]), sysctls through
//! `/proc/sys` (per network namespace: a process inside one sees that
//! namespace's `net.*`).
//!
//! Requests are synchronous: an apply is a few dozen short requests and runs on
//! the event loop's thread. Every socket has a receive timeout
//! ([`REPLY_TIMEOUT`]), so a kernel that never answers stalls the loop at most
//! that long per request instead of for ever.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressProtocol};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols};

use crate::config::{Cidr, Mac};
use crate::kernel::{ADDR_PROTO, Address, KResult, Kernel, KernelError, Link, LinkChange, NftState, Route};
use crate::nft::{self, CounterValues, DumpEntry, Family, MsgType, Table};

/// How long a request waits for the kernel's answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

fn open(protocol: isize) -> io::Result<Socket> {
    let mut s = Socket::new(protocol)?;
    s.bind_auto()?;
    s.connect(&SocketAddr::new(0, 0))?;
    rustix::net::sockopt::set_socket_timeout(&s, rustix::net::sockopt::Timeout::Recv, Some(REPLY_TIMEOUT))?;
    // Dumps of a busy router can be large; a bigger buffer avoids ENOBUFS.
    let _ = s.set_rx_buf_sz(1 << 20);
    Ok(s)
}

fn recv(s: &Socket) -> io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    match s.recv(&mut buf, 0) {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(io::Error::new(io::ErrorKind::TimedOut, "the kernel did not answer in time"))
        }
        Err(e) => Err(e),
    }
}

/// One netlink message of a datagram: type, flags, sequence number, payload.
type Raw<'a> = (u16, u16, u32, &'a [u8]);

/// Splits a datagram into its messages.
fn split(buf: &[u8]) -> io::Result<Vec<Raw<'_>>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 16 || len > rest.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message"));
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        out.push((kind, flags, seq, &rest[16..len]));
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    Ok(out)
}

/// The error code of an NLMSG_ERROR payload (0 for an ACK).
fn error_code(payload: &[u8]) -> i32 {
    payload.get(..4).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn mac_of(v: &[u8]) -> Option<Mac> {
    let m: Mac = v.try_into().ok()?;
    (m != [0; 6]).then_some(m)
}

/// The kernel, through netlink.
#[derive(Debug)]
pub struct Netlink {
    route: Socket,
    netfilter: Socket,
    seq: u32,
    proc_sys: PathBuf,
    resolv_conf: PathBuf,
}

impl Netlink {
    /// Opens the sockets; sysctls live under `proc_sys` (normally `/proc/sys`),
    /// resolv.conf at `resolv_conf` (normally `/tmp/resolv.conf`).
    pub fn open(proc_sys: &Path, resolv_conf: &Path) -> io::Result<Self> {
        Ok(Self {
            route: open(protocols::NETLINK_ROUTE)?,
            netfilter: open(protocols::NETLINK_NETFILTER)?,
            seq: 1,
            proc_sys: proc_sys.to_owned(),
            resolv_conf: resolv_conf.to_owned(),
        })
    }

    fn next_seq(&mut self, n: u32) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(n.max(1));
        s
    }

    /// Sends one rtnetlink request; returns the messages of a dump, or nothing
    /// once the ACK came.
    fn rt_request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.next_seq(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.route.send(&buf, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        loop {
            let data = recv(&self.route)?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "zero-length netlink message"));
                }
                offset += len.next_multiple_of(4);
                if reply.header.sequence_number != seq {
                    continue; // a late answer to an earlier, timed-out request
                }
                match reply.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None if !dump => return Ok(out),
                        None => {}
                        Some(_) => return Err(e.to_io()),
                    },
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    fn link_message(index: u32) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m
    }

    /// Sends one nfnetlink dump request (all families) and parses every entry.
    fn nft_dump(&mut self, kind: MsgType) -> io::Result<Vec<DumpEntry>> {
        let seq = self.next_seq(1);
        self.netfilter.send(&nft::encode_dump(kind, 0, seq), 0)?;
        let mut out = Vec::new();
        loop {
            let data = recv(&self.netfilter)?;
            for (t, _, s, payload) in split(&data)? {
                if s != seq {
                    continue;
                }
                match t {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = error_code(payload);
                        if code == 0 {
                            return Ok(out);
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    _ => {
                        if let Some(e) =
                            nft::parse_entry(t, payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                        {
                            out.push(e);
                        }
                    }
                }
            }
        }
    }
}

fn kerr(what: impl Into<String>) -> impl FnOnce(io::Error) -> KernelError {
    let what = what.into();
    move |e| KernelError::new(what, e)
}

fn family(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_message(r: &Route) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(&r.dst.addr);
    m.header.destination_prefix_length = r.dst.len;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = r.proto.into();
    m.header.scope = r.scope.into();
    m.header.kind = r.kind.into();
    if r.dst.len > 0 {
        m.attributes.push(RouteAttribute::Destination(r.dst.addr.into()));
    }
    if let Some(g) = r.gateway {
        m.attributes.push(RouteAttribute::Gateway(g.into()));
    }
    if let Some(o) = r.oif {
        m.attributes.push(RouteAttribute::Oif(o));
    }
    if let Some(s) = r.src {
        m.attributes.push(RouteAttribute::PrefSource(s.into()));
    }
    m.attributes.push(RouteAttribute::Priority(r.priority));
    m.attributes.push(RouteAttribute::Table(u32::from(RouteHeader::RT_TABLE_MAIN)));
    m
}

fn address_message(index: u32, addr: Cidr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family(&addr.addr);
    m.header.prefix_len = addr.len;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(addr.addr));
    m.attributes.push(AddressAttribute::Address(addr.addr));
    if let IpAddr::V4(a) = addr.addr
        && addr.len < 31
    {
        // As `ip addr add` does, so `ip addr` shows the same "brd" router7's test expects.
        let host = if addr.len == 0 { u32::MAX } else { u32::MAX >> addr.len };
        m.attributes.push(AddressAttribute::Broadcast((u32::from(a) | host).into()));
    }
    m
}

impl Kernel for Netlink {
    fn links(&mut self) -> KResult<Vec<Link>> {
        let replies = self
            .rt_request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)
            .map_err(kerr("list links"))?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewLink(m) = r else { continue };
            let mut link = Link {
                index: m.header.index,
                name: String::new(),
                mac: None,
                perm_mac: None,
                mtu: 0,
                up: m.header.flags.contains(LinkFlags::Up),
                master: None,
            };
            for a in &m.attributes {
                match a {
                    LinkAttribute::IfName(n) => link.name.clone_from(n),
                    LinkAttribute::Address(v) => link.mac = mac_of(v),
                    LinkAttribute::PermAddress(v) => link.perm_mac = mac_of(v),
                    LinkAttribute::Mtu(v) => link.mtu = *v,
                    LinkAttribute::Controller(v) => link.master = Some(*v),
                    _ => {}
                }
            }
            out.push(link);
        }
        Ok(out)
    }

    fn create_bridge(&mut self, name: &str, mac: Option<Mac>) -> KResult<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        if let Some(mac) = mac {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.rt_request(RouteNetlinkMessage::NewLink(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .map_err(kerr(format!("create bridge {name}")))
    }

    fn set_link(&mut self, index: u32, c: &LinkChange) -> KResult<()> {
        let mut m = Self::link_message(index);
        if let Some(n) = &c.name {
            m.attributes.push(LinkAttribute::IfName(n.clone()));
        }
        if let Some(mtu) = c.mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = c.mac {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(master) = c.master {
            m.attributes.push(LinkAttribute::Controller(master));
        }
        if let Some(up) = c.up {
            m.header.change_mask = LinkFlags::Up;
            m.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        }
        self.rt_request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(drop)
            .map_err(kerr(format!("change link {index} ({c:?})")))
    }

    fn addresses(&mut self) -> KResult<Vec<Address>> {
        let replies = self
            .rt_request(RouteNetlinkMessage::GetAddress(AddressMessage::default()), NLM_F_DUMP)
            .map_err(kerr("list addresses"))?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(m) = r else { continue };
            let mut local = None;
            let mut address = None;
            let mut proto = 0;
            for a in &m.attributes {
                match a {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    AddressAttribute::Protocol(p) => proto = u8::from(*p),
                    _ => {}
                }
            }
            // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
            if let Some(ip) = local.or(address) {
                out.push(Address { index: m.header.index, addr: Cidr { addr: ip, len: m.header.prefix_len }, proto });
            }
        }
        Ok(out)
    }

    fn add_address(&mut self, index: u32, addr: Cidr) -> KResult<()> {
        let mut m = address_message(index, addr);
        m.attributes.push(AddressAttribute::Protocol(AddressProtocol::from(ADDR_PROTO)));
        self.rt_request(RouteNetlinkMessage::NewAddress(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
            .map(drop)
            .map_err(kerr(format!("add address {addr} to link {index}")))
    }

    fn del_address(&mut self, index: u32, addr: Cidr) -> KResult<()> {
        self.rt_request(RouteNetlinkMessage::DelAddress(address_message(index, addr)), NLM_F_ACK)
            .map(drop)
            .map_err(kerr(format!("remove address {addr} from link {index}")))
    }

    fn routes(&mut self) -> KResult<Vec<Route>> {
        let mut out = Vec::new();
        for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut q = RouteMessage::default();
            q.header.address_family = fam;
            let replies = self.rt_request(RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP).map_err(kerr("list routes"))?;
            for r in replies {
                let RouteNetlinkMessage::NewRoute(m) = r else { continue };
                let mut table = u32::from(m.header.table);
                let mut route = Route {
                    dst: Cidr {
                        addr: if fam == AddressFamily::Inet {
                            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                        } else {
                            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                        },
                        len: m.header.destination_prefix_length,
                    },
                    gateway: None,
                    oif: None,
                    src: None,
                    scope: m.header.scope.into(),
                    proto: m.header.protocol.into(),
                    kind: m.header.kind.into(),
                    priority: 0,
                };
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Destination(d) => {
                            if let Some(ip) = route_addr(d) {
                                route.dst.addr = ip;
                            }
                        }
                        RouteAttribute::Gateway(g) => route.gateway = route_addr(g),
                        RouteAttribute::PrefSource(s) => route.src = route_addr(s),
                        RouteAttribute::Oif(o) => route.oif = Some(*o),
                        RouteAttribute::Priority(p) => route.priority = *p,
                        RouteAttribute::Table(t) => table = *t,
                        _ => {}
                    }
                }
                if table == u32::from(RouteHeader::RT_TABLE_MAIN) {
                    out.push(route);
                }
            }
        }
        Ok(out)
    }

    fn add_route(&mut self, r: &Route) -> KResult<()> {
        self.rt_request(RouteNetlinkMessage::NewRoute(route_message(r)), NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
            .map(drop)
            .map_err(kerr(format!("add route to {}", r.dst)))
    }

    fn del_route(&mut self, r: &Route) -> KResult<()> {
        self.rt_request(RouteNetlinkMessage::DelRoute(route_message(r)), NLM_F_ACK)
            .map(drop)
            .map_err(kerr(format!("remove route to {}", r.dst)))
    }

    fn read_sysctl(&mut self, key: &[String]) -> KResult<Option<String>> {
        let path = key.iter().fold(self.proc_sys.clone(), |p, k| p.join(k));
        match fs::read_to_string(&path) {
            Ok(v) => Ok(Some(v.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KernelError::new(format!("read {}", path.display()), e)),
        }
    }

    fn write_sysctl(&mut self, key: &[String], value: &str) -> KResult<()> {
        let path = key.iter().fold(self.proc_sys.clone(), |p, k| p.join(k));
        fs::write(&path, value).map_err(kerr(format!("write {}", path.display())))
    }

    fn nft_state(&mut self) -> KResult<NftState> {
        let mut state = NftState::default();
        for e in self.nft_dump(MsgType::GetTable).map_err(kerr("list nftables tables"))? {
            if let DumpEntry::Table { family, name, comment } = e {
                state.tables.insert((family, name), comment);
            }
        }
        for e in self.nft_dump(MsgType::GetRule).map_err(kerr("list nftables rules"))? {
            if let DumpEntry::Rule { family, table } = e {
                *state.rule_counts.entry((family, table)).or_default() += 1;
            }
        }
        state.counters = read_counters(self).map_err(kerr("list nftables counters"))?;
        Ok(state)
    }

    fn nft_replace(&mut self, tables: &[&Table], values: &CounterValues) -> KResult<()> {
        let msgs = nft::replace_tables(tables, values);
        let count = u32::try_from(msgs.len()).unwrap_or(u32::MAX);
        let seq = self.next_seq(count + 2);
        let batch = nft::encode_batch(&msgs, seq);
        self.netfilter.send(&batch, 0).map_err(kerr("send the nftables batch"))?;
        // One ACK or error per message; the kernel answers all of them.
        let mut answered = 0u32;
        let mut first_error: Option<KernelError> = None;
        while answered < count {
            let data = recv(&self.netfilter).map_err(kerr("wait for the nftables batch"))?;
            for (t, _, s, payload) in split(&data).map_err(kerr("read the nftables answer"))? {
                let index = s.wrapping_sub(seq).wrapping_sub(1);
                if t != NLMSG_ERROR || index >= count {
                    continue;
                }
                answered += 1;
                let code = error_code(payload);
                if code != 0 && first_error.is_none() {
                    let m = &msgs[index as usize];
                    first_error = Some(KernelError::new(
                        format!("nftables batch message {index} ({:?} {})", m.kind, m.family.name()),
                        io::Error::from_raw_os_error(-code),
                    ));
                }
            }
            if first_error.is_some() {
                // The batch was aborted as a whole; later ACKs add nothing.
                break;
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn ensure_resolv_conf(&mut self, contents: &str) -> KResult<bool> {
        let path = self.resolv_conf.clone();
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::remove_file(&path).map_err(kerr(format!("remove symlink {}", path.display())))?;
            }
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(KernelError::new(format!("stat {}", path.display()), e)),
        }
        // O_EXCL: a regular file somebody else wrote meanwhile is never overwritten.
        let mut f = match fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(KernelError::new(format!("create {}", path.display()), e)),
        };
        io::Write::write_all(&mut f, contents.as_bytes()).map_err(kerr(format!("write {}", path.display())))?;
        Ok(true)
    }
}

/// Reads every nftables counter object (for metrics: from any thread, on its own socket).
pub fn read_counters(nl: &mut Netlink) -> io::Result<CounterValues> {
    let mut out = BTreeMap::new();
    for e in nl.nft_dump(MsgType::GetObj)? {
        if let DumpEntry::Counter { family, table, name, value } = e {
            out.insert((family, table, name), value);
        }
    }
    Ok(out)
}

/// A netfilter-only handle for reading counters from the metrics thread.
#[derive(Debug)]
pub struct CounterReader(Netlink);

impl CounterReader {
    /// Opens its own sockets.
    pub fn open() -> io::Result<Self> {
        Netlink::open(Path::new("/proc/sys"), Path::new("/nonexistent")).map(Self)
    }

    /// The counters of `table` in both families.
    pub fn read(&mut self, table: &str) -> io::Result<BTreeMap<(Family, String), nft::CounterValue>> {
        Ok(read_counters(&mut self.0)?
            .into_iter()
            .filter(|((_, t, _), _)| t == table)
            .map(|((f, _, n), v)| ((f, n), v))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_replaces_a_symlink_but_never_a_regular_file() {
        let dir = std::env::temp_dir().join(format!("netconfigd-resolv-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("resolv.conf");
        let mut k = Netlink::open(Path::new("/proc/sys"), &path).unwrap();
        // Missing: created.
        assert!(k.ensure_resolv_conf("nameserver 192.168.42.1\n").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "nameserver 192.168.42.1\n");
        // A regular file (ours or anybody's) stays.
        fs::write(&path, "nameserver 9.9.9.9\n").unwrap();
        assert!(!k.ensure_resolv_conf("nameserver 192.168.42.1\n").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "nameserver 9.9.9.9\n");
        // A symlink (gokrazy points it at /proc/net/pnp at boot) is replaced by a file.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/proc/net/pnp", &path).unwrap();
        assert!(k.ensure_resolv_conf("nameserver 192.168.42.1\n").unwrap());
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&path).unwrap(), "nameserver 192.168.42.1\n");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn splits_datagrams_and_rejects_truncated_messages() {
        let mut buf = Vec::new();
        for (kind, payload) in [(3u16, vec![0u8; 4]), (2, vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3])] {
            let len = 16 + payload.len();
            buf.extend_from_slice(&u32::try_from(len).unwrap().to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(&0u16.to_ne_bytes());
            buf.extend_from_slice(&7u32.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(&payload);
            while buf.len() % 4 != 0 {
                buf.push(0);
            }
        }
        let msgs = split(&buf).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[1].0, msgs[1].2, error_code(msgs[1].3)), (2, 7, -1));
        buf[0] = 200;
        assert!(split(&buf).is_err(), "a length past the end is an error, not a panic");
    }
}
