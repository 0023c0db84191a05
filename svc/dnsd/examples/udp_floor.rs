//! The floor under any UDP DNS responder on this machine, for `bench/dnsd.sh`:
//! dnsd's receive and send path (one mio loop, `recvmmsg` and `sendmmsg` of 16)
//! with no DNS work at all. Every query is answered from its own bytes: the
//! header and question copied, QR and RA set, one fixed A record
//! (203.0.113.7, TTL 3600). No cache, no parsing beyond the question's end, no
//! metrics, no timers. What it costs per query is what the kernel costs (the
//! wake-ups, the syscalls, and the network stack on both sides of the veth,
//! which the sender pays for); what a forwarder costs above it is its own work.
//!
//! ```text
//! udp_floor 10.9.1.4:53           # woken by each datagram, as dnsd unmoderated
//! udp_floor 10.9.1.5:53 1000      # reads every 1000 µs, as dnsd moderated
//! ```
//!
//! Not a DNS server: it answers every name, type and class alike.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

use mio::{Events, Interest, Poll, Token};
use runtime::sys::{Datagram, recv_datagrams, send_datagrams};

const BATCH: usize = 16;
const SLOT: usize = 4096;
/// The answer: a pointer to the question's name, A, IN, TTL 3600, 203.0.113.7.
const ANSWER: [u8; 16] = [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 203, 0, 113, 7];

/// Where the question of `query` ends, if it has one.
fn question_end(query: &[u8]) -> Option<usize> {
    let mut pos = 12;
    loop {
        let len = usize::from(*query.get(pos)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        pos += len + 1;
    }
    let end = pos + 5;
    (end <= query.len()).then_some(end)
}

/// Writes the answer to `query` into `out`; false when it is not a query.
fn answer(query: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(end) = question_end(query) else { return false };
    if query[2] & 0x80 != 0 || query[4..6] != [0, 1] {
        return false;
    }
    out.clear();
    out.extend_from_slice(&query[..end]);
    out[2] |= 0x80;
    out[3] = 0x80;
    out[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&ANSWER);
    true
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().ok_or("usage: udp_floor ADDRESS:PORT [PERIOD_US]")?.parse()?;
    let period = args.next().map(|p| p.parse::<u64>()).transpose()?.map(std::time::Duration::from_micros);
    let mut socket = mio::net::UdpSocket::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut socket, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(8);
    let mut rx = vec![0u8; BATCH * SLOT];
    let mut meta = [Datagram::default(); BATCH];
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut peers: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    loop {
        if let Some(period) = period {
            std::thread::sleep(period);
        } else {
            match poll.poll(&mut events, None) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            }
        }
        loop {
            let got = match recv_datagrams(socket.as_fd(), &mut rx, SLOT, &mut meta) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            peers.clear();
            for (i, d) in meta.iter().take(got).enumerate() {
                let (Some(peer), false) = (d.from, d.truncated) else { continue };
                if answer(&rx[i * SLOT..i * SLOT + d.len], &mut answers[peers.len()]) {
                    peers.push(peer);
                }
            }
            let mut sent = 0;
            while sent < peers.len() {
                match send_datagrams(socket.as_fd(), &answers[sent..peers.len()], &peers[sent..]) {
                    Ok(n) if n > 0 => sent += n,
                    _ => break,
                }
            }
            if got < BATCH {
                break;
            }
        }
    }
}
