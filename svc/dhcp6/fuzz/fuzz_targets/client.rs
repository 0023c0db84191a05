//! The client driven by the input: time steps, jumps to its deadline,
//! messages (raw, or wrapped in a header with the current transaction ID and
//! matching client and server IDs so they get past validation), renew and
//! release. It never panics, never sends a burst at one instant, and its next
//! deadline always lies ahead once it has sent what was due.
#![no_main]

use std::time::{Duration, Instant};

use dhcp6::client::{Client, Config};
use dhcp6::timing::Random;
use libfuzzer_sys::fuzz_target;

const DUID: [u8; 10] = [0, 3, 0, 1, 2, 0x73, 0x53, 0, 0xca, 0xfe];
const SERVER: [u8; 10] = [0, 3, 0, 1, 2, 0x73, 0x53, 0, 0, 1];

struct Counting(u32);

impl Random for Counting {
    fn transaction_id(&mut self) -> [u8; 3] {
        self.0 = self.0.wrapping_add(1);
        let b = self.0.to_be_bytes();
        [b[1], b[2], b[3]]
    }
    fn jitter_permille(&mut self) -> i32 {
        self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12345);
        i32::try_from(self.0 % 201).unwrap_or(0) - 100
    }
}

fn option(code: u16, body: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn drain(c: &mut Client<Counting>, now: Instant) {
    let mut sent = 0;
    while c.poll(now).is_some() {
        sent += 1;
        assert!(sent < 16, "a burst of sends at one instant");
    }
    assert!(c.poll_at().is_none_or(|at| at > now), "deadline not ahead after polling");
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let config = Config {
        duid: DUID.to_vec(),
        request_address: data.first().is_some_and(|b| b & 1 == 1),
        prefix_length_hint: None,
    };
    let mut c = Client::new(config, Counting(7), t0, None);
    let mut now = t0;
    let mut rest = data.get(1..).unwrap_or_default();
    while let [op, tail @ ..] = rest {
        rest = tail;
        match op % 5 {
            0 => {
                let [a, b, tail @ ..] = rest else { break };
                rest = tail;
                now += Duration::from_millis(u64::from(u16::from_be_bytes([*a, *b])) * 10);
            }
            1 => {
                if let Some(at) = c.poll_at() {
                    now = now.max(at);
                }
            }
            2 | 3 => {
                let [len, tail @ ..] = rest else { break };
                let n = usize::from(*len).min(tail.len());
                let (body, tail) = tail.split_at(n);
                rest = tail;
                let msg = if op % 5 == 2 {
                    let xid = c.current_xid().unwrap_or([0, 0, 0]);
                    let kind = if body.first().is_some_and(|b| b & 1 == 1) { 7 } else { 2 };
                    let mut m = vec![kind, xid[0], xid[1], xid[2]];
                    m.extend(option(1, &DUID));
                    m.extend(option(2, &SERVER));
                    m.extend_from_slice(body.get(1..).unwrap_or_default());
                    m
                } else {
                    body.to_vec()
                };
                let _ = c.handle(now, &msg);
            }
            _ => {
                let [sub, tail @ ..] = rest else { break };
                rest = tail;
                if sub & 1 == 0 { c.renew(now) } else { c.release(now) }
            }
        }
        drain(&mut c, now);
        if let Some(l) = c.lease() {
            assert!(l.rebind_at >= l.renew_at, "T2 before T1");
            assert!(!l.prefixes.is_empty() || !l.addresses.is_empty(), "an empty lease is no lease");
        }
    }
});
