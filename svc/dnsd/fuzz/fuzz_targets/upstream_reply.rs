//! Upstream replies: a client asks, the fuzzer answers in the upstream's
//! place (with the right ID, and by choice the right question, so the reply
//! gets past matching), then the answer is served again from the cache, to
//! clients with other limits and later. Nothing panics; every answer is a
//! response to its client; when simple-dns accepts the upstream's reply it
//! accepts every answer we make of it.
#![no_main]

mod common;

use std::time::Duration;

use dnsd::resolver::{ClientAddr, Handled, Transmit};
use dnsd::wire::{self, flag, rtype};
use libfuzzer_sys::fuzz_target;

fn query(id: u16, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut q = Vec::new();
    wire::Header { id, flags: flag::RD, qdcount: 1, ancount: 0, nscount: 0, arcount: u16::from(edns.is_some()) }
        .emit(&mut q);
    q.extend_from_slice(b"\x04Fuzz\x07example\x00");
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
    if let Some(size) = edns {
        wire::emit_opt(&mut q, 0, false);
        let at = q.len() - 8;
        wire::put16(&mut q, at, size);
    }
    q
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let t0 = runtime::clock::now();
    let mut r = common::resolver(t0);
    let qtype = [rtype::A, rtype::AAAA, rtype::TXT, rtype::ANY][usize::from(mode >> 6)];
    let [udp, tcp] = common::clients();
    let mut out = Vec::new();
    assert_eq!(r.on_query(t0, udp, &query(0x1111, qtype, None), &mut out), Handled::Pending);
    let Some(Transmit::UpstreamUdp { slot, to, msg }) = r.poll_transmit() else { panic!("no upstream query") };

    let mut reply = body.to_vec();
    if reply.len() >= 2 {
        reply[..2].copy_from_slice(&msg[..2]);
    }
    let question_end = msg.len() - wire::OPT_LEN;
    if mode & 1 != 0 && reply.len() >= question_end {
        reply[4..6].copy_from_slice(&1u16.to_be_bytes());
        reply[12..question_end].copy_from_slice(&msg[12..question_end]);
    }
    if mode & 2 != 0 && reply.len() >= 3 {
        reply[2] |= 0x80;
    }
    let oracle_ok = simple_dns::Packet::parse(&reply).is_ok();
    if mode & 4 != 0 {
        // Truncated over UDP, then the same bytes over TCP.
        let mut tc = reply.clone();
        if tc.len() >= 3 {
            tc[2] |= (flag::TC >> 8) as u8;
        }
        r.on_upstream_udp(t0, slot, to, &tc);
        while let Some(t) = r.poll_transmit() {
            if let Transmit::UpstreamTcp { handle, .. } = t {
                r.on_upstream_tcp(t0, handle, &reply);
            }
        }
    } else {
        r.on_upstream_udp(t0, slot, to, &reply);
    }
    let drain = |r: &mut dnsd::resolver::Resolver| {
        while let Some(t) = r.poll_transmit() {
            if let Transmit::Client { to, msg } = t {
                let id = if to == udp { 0x1111 } else { 0x2222 };
                common::check_answer(&msg, id, to, oracle_ok);
            }
        }
    };
    drain(&mut r);
    // Again from the cache (or forwarded again), by other clients, later.
    for (ms, client, edns) in [(1_000, tcp, Some(4096)), (2_000, udp, Some(512)), (3_000, udp, None)] {
        let now = t0 + Duration::from_millis(ms);
        let id = if client == udp { 0x1111 } else { 0x2222 };
        if r.on_query(now, client, &query(id, qtype, edns), &mut out) == Handled::Reply {
            common::check_answer(&out, id, client, oracle_ok);
        }
        drain(&mut r);
    }
    // Let every deadline pass: whatever waits is answered.
    let end = t0 + Duration::from_secs(10);
    while r.poll_at().is_some_and(|at| at <= end) {
        r.on_deadline(end);
        drain(&mut r);
    }
    let _ = ClientAddr::Tcp { conn: 0 };
});
