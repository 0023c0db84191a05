//! The DNS listeners: a UDP and a TCP socket on each wanted address, kept in
//! step with the addresses (router7's multilisten), and the UDP fast path —
//! client datagrams a batch at a time, one `recvmmsg` in, the answers that are
//! ready out with one `sendmmsg` (one `sendto` for one: no allocation).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Instant;

use dnsd::metrics::{Discard, DnsMetrics};
use dnsd::resolver::{ClientAddr, Handled, Resolver};
use mio::net::{TcpListener, UdpSocket};
use mio::{Interest, Registry, Token};
use runtime::log_info;

use crate::moderation::Moderation;
use crate::net;

/// Datagrams taken per `recvmmsg` from a listener, and their slot size: a DNS
/// query over UDP is far below 4 KiB; a longer one is cut, counted and dropped.
const RX_BATCH: usize = 16;
const RX_SLOT: usize = 4096;

/// A UDP listener.
#[derive(Debug)]
pub struct UdpListener {
    /// Its number (never reused), in tokens and [`ClientAddr::Udp`].
    pub id: u32,
    /// The address.
    pub addr: SocketAddr,
    /// The socket.
    pub socket: UdpSocket,
    /// Out of the poll set: read by the moderation timer ([`mute`]).
    pub muted: bool,
}

/// A TCP listener.
#[derive(Debug)]
pub struct TcpListenerEntry {
    /// Its number (never reused).
    pub id: u32,
    /// The address.
    pub addr: SocketAddr,
    /// The socket.
    pub listener: TcpListener,
}

/// Every listener.
#[derive(Debug, Default)]
pub struct Listeners {
    /// UDP, one per address.
    pub udp: Vec<UdpListener>,
    /// TCP, one per address.
    pub tcp: Vec<TcpListenerEntry>,
    next_id: u32,
}

impl Listeners {
    fn next(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Listens on exactly `wanted` (UDP and TCP each): closes the others,
    /// opens what is missing. Returns what could not be bound, with why.
    pub fn rebind(
        &mut self,
        registry: &Registry,
        wanted: &[SocketAddr],
        udp_token: impl Fn(u32) -> Token,
        tcp_token: impl Fn(u32) -> Token,
    ) -> Vec<String> {
        self.udp.retain_mut(|l| {
            let keep = wanted.contains(&l.addr);
            if !keep {
                let _ = registry.deregister(&mut l.socket);
                log_info!("no longer listening on udp {}", l.addr);
            }
            keep
        });
        self.tcp.retain_mut(|l| {
            let keep = wanted.contains(&l.addr);
            if !keep {
                let _ = registry.deregister(&mut l.listener);
                log_info!("no longer listening on tcp {}", l.addr);
            }
            keep
        });
        let mut errors = Vec::new();
        for &addr in wanted {
            if !self.udp.iter().any(|l| l.addr == addr) {
                let id = self.next();
                let bound = net::bind_udp(addr).and_then(|mut socket| {
                    registry.register(&mut socket, udp_token(id), Interest::READABLE)?;
                    Ok(socket)
                });
                match bound {
                    Ok(socket) => {
                        log_info!("listening on udp {addr}");
                        self.udp.push(UdpListener { id, addr, socket, muted: false });
                    }
                    Err(e) => errors.push(format!("udp {addr}: {e}")),
                }
            }
            if !self.tcp.iter().any(|l| l.addr == addr) {
                let id = self.next();
                let bound = net::bind_tcp(addr).and_then(|mut listener| {
                    registry.register(&mut listener, tcp_token(id), Interest::READABLE)?;
                    Ok(listener)
                });
                match bound {
                    Ok(listener) => {
                        log_info!("listening on tcp {addr}");
                        self.tcp.push(TcpListenerEntry { id, addr, listener });
                    }
                    Err(e) => errors.push(format!("tcp {addr}: {e}")),
                }
            }
        }
        errors
    }
}

/// Buffers for batches of client datagrams and their answers, reused.
#[derive(Debug)]
pub struct Batch {
    rx: Vec<u8>,
    meta: [runtime::sys::Datagram; RX_BATCH],
    answers: Vec<Vec<u8>>,
    peers: Vec<SocketAddr>,
}

impl Batch {
    /// Buffers for [`RX_BATCH`] datagrams.
    #[must_use]
    pub fn new() -> Self {
        Self {
            rx: vec![0; RX_BATCH * RX_SLOT],
            meta: [runtime::sys::Datagram::default(); RX_BATCH],
            answers: (0..RX_BATCH).map(|_| Vec::with_capacity(512)).collect(),
            peers: Vec::with_capacity(RX_BATCH),
        }
    }
}

/// Sends `answers[i]` to `peers[i]`: one `sendto` for one answer, one
/// `sendmmsg` for more (neither allocates); returns how many went.
fn send_batch(socket: &UdpSocket, answers: &[Vec<u8>], peers: &[SocketAddr]) -> usize {
    if let ([answer], [peer]) = (answers, peers) {
        return usize::from(socket.send_to(answer, *peer).is_ok());
    }
    let (mut next, mut sent) = (0, 0);
    while next < answers.len() {
        match runtime::sys::send_datagrams(socket.as_fd(), &answers[next..], &peers[next..]) {
            Ok(0) => break,
            Ok(n) => (next, sent) = (next + n, sent + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The socket's buffer is full: the rest are lost.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            // This one's destination cannot be reached: skip it.
            Err(_) => next += 1,
        }
    }
    sent
}

/// While moderating, a drained listener stops waking the loop: it leaves the
/// poll set altogether and the moderation timer reads it. (Registered for
/// writability instead, as before, it still woke the loop: a UDP socket is
/// writable again each time the kernel frees a datagram it sent, which on a
/// NIC is at every transmit completion, and over a veth right inside our own
/// `sendmmsg`, so each timer read cost a second turn of the loop.)
pub fn mute(registry: &Registry, l: &mut UdpListener, moderate: bool) {
    if moderate && !l.muted {
        l.muted = registry.deregister(&mut l.socket).is_ok();
    }
}

/// Puts a muted listener back in the poll set, readable: datagrams already
/// queued are reported at once. False when that failed (it stays muted).
pub fn unmute(registry: &Registry, l: &mut UdpListener, token: Token) -> bool {
    if l.muted {
        l.muted = registry.register(&mut l.socket, token, Interest::READABLE).is_err();
    }
    !l.muted
}

/// Answers what waits on `l`, up to `limit` datagrams; returns true when it
/// stopped at the limit (more may be waiting: come back next turn).
#[allow(clippy::too_many_arguments)]
pub fn serve_udp(
    l: &mut UdpListener,
    registry: &Registry,
    now: Instant,
    resolver: &mut Resolver,
    batch: &mut Batch,
    metrics: &DnsMetrics,
    mut moderation: Option<&mut Moderation>,
    limit: usize,
) -> bool {
    let moderate = moderation.as_ref().is_some_and(|m| m.active());
    let mut handled = 0;
    loop {
        let got = match runtime::sys::recv_datagrams(l.socket.as_fd(), &mut batch.rx, RX_SLOT, &mut batch.meta) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                mute(registry, l, moderate);
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                runtime::log_debug!("udp {}: {e}", l.addr);
                return false;
            }
        };
        batch.peers.clear();
        for (i, d) in batch.meta.iter().take(got).enumerate() {
            let Some(peer) = d.from else { continue };
            if d.truncated {
                metrics.discard(Discard::QueryTooLong);
                continue;
            }
            let query = &batch.rx[i * RX_SLOT..i * RX_SLOT + d.len];
            let k = batch.peers.len();
            let client = ClientAddr::Udp { listener: l.id, peer };
            if resolver.on_query(now, client, query, &mut batch.answers[k]) == Handled::Reply {
                batch.peers.push(peer);
            }
        }
        let k = batch.peers.len();
        let sent = send_batch(&l.socket, &batch.answers[..k], &batch.peers);
        for _ in sent..k {
            metrics.discard(Discard::SendFailed);
        }
        handled += got;
        if let Some(m) = moderation.as_deref_mut() {
            m.count(got);
        }
        // Fewer than asked: the queue is empty, no need to read again.
        if got < RX_BATCH {
            mute(registry, l, moderate);
            return false;
        }
        if handled >= limit {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_answers_goes_out_and_an_unreachable_peer_costs_only_its_own() {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // An IPv4 socket cannot send to an IPv6 address: that one fails alone.
        let nowhere: SocketAddr = "[2001:db8::1]:53".parse().unwrap();
        let answers = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
        let peers = [a.local_addr().unwrap(), nowhere, b.local_addr().unwrap()];
        assert_eq!(send_batch(&socket, &answers, &peers), 2);
        let mut buf = [0u8; 8];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"one");
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"three");
        assert_eq!(send_batch(&socket, &answers[..1], &peers[..1]), 1, "one answer: one sendto");
        assert_eq!(send_batch(&socket, &answers[1..2], &peers[1..2]), 0);
    }

    /// The tokens of the events `poll` has right now.
    fn events(poll: &mut mio::Poll) -> Vec<Token> {
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(std::time::Duration::ZERO)).unwrap();
        events.iter().map(mio::event::Event::token).collect()
    }

    #[test]
    fn a_muted_listener_wakes_nobody_until_it_is_unmuted() {
        let mut poll = mio::Poll::new().unwrap();
        let registry = poll.registry().try_clone().unwrap();
        let t = crate::shell::udp_token(1);
        let mut socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        registry.register(&mut socket, t, Interest::READABLE).unwrap();
        let addr = socket.local_addr().unwrap();
        let mut l = UdpListener { id: 1, addr, socket, muted: false };
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();

        mute(&registry, &mut l, false);
        assert!(!l.muted, "not while moderation is off");
        mute(&registry, &mut l, true);
        assert!(l.muted);
        // What woke the loop before: answers sent (the socket becomes writable
        // again as the kernel frees them) and queries arriving.
        for _ in 0..4 {
            l.socket.send_to(b"answer", client.local_addr().unwrap()).unwrap();
            client.send_to(b"query", addr).unwrap();
        }
        assert_eq!(events(&mut poll), [], "muted: no event of any kind");

        assert!(unmute(&registry, &mut l, t));
        assert!(!l.muted);
        assert_eq!(events(&mut poll), [t], "the queued queries are reported at once");
        assert!(unmute(&registry, &mut l, t), "unmuting an unmuted listener changes nothing");
    }
}
