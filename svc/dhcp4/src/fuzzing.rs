//! The fuzz targets' bodies (`fuzz/fuzz_targets/*.rs` call these), here so a
//! unit test can run every input kept in `fuzz/corpus/`, crashes found by
//! fuzzing included, on each `cargo test`. Not part of the API.
#![allow(clippy::missing_panics_doc)]

use std::time::{Duration, Instant, SystemTime};

use dhcproto::v4::{Message, Opcode};
use dhcproto::{Decodable, Decoder};

use crate::{Action, Client, Identity, Lease, Random, wire};

const MAC: [u8; 6] = [0x02, 0x73, 0x53, 0x00, 0xca, 0xfe];

/// A cheap deterministic source seeded by the input.
struct Counter(u64);

impl Random for Counter {
    fn xid(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    fn jitter_ms(&mut self) -> i32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % 2001) as i32 - 1000
    }
}

fn drain(c: &mut Client<Counter>, now: Instant) {
    let mut actions = 0;
    while let Some(action) = c.poll(now) {
        actions += 1;
        assert!(actions < 64, "poll does not run dry");
        if let Action::Send(t) = action {
            let m = Message::decode(&mut Decoder::new(&t.payload)).expect("we send what we can decode");
            assert_eq!(m.opcode(), Opcode::BootRequest);
            assert_eq!(m.chaddr(), &c.identity().mac[..]);
            assert_eq!(m.xid(), t.xid);
        }
    }
    if let Some(at) = c.poll_at() {
        assert!(at > now, "wants to run again at the instant it drained");
    }
    assert!(!c.has_valid_lease() || c.held().is_some());
}

/// Makes `packet` look like a reply to our open transaction, so the fuzzer
/// spends its time in the options and the state machine.
fn patch(packet: &mut [u8], xid: Option<u32>) {
    if packet.len() < 240 {
        return;
    }
    packet[0] = 2;
    packet[1] = 1;
    packet[2] = 6;
    if let Some(xid) = xid {
        packet[4..8].copy_from_slice(&xid.to_be_bytes());
    }
    packet[28..34].copy_from_slice(&MAC);
    packet[236..240].copy_from_slice(&[99, 130, 83, 99]);
}

/// Drives a client with `data` as a session, starting at `t0`: packets (some
/// patched to carry the open transaction's xid and our chaddr, so they get
/// past the header checks and into the options), clock jumps, the renew
/// command, a new MAC, and a restore from arbitrary "stored ACK" bytes.
/// Panics when the client panics, when `poll` does not run dry, when the client
/// wants to run again at the instant it just drained (a busy loop), or when
/// what it sends is not a well-formed BOOTREQUEST of ours.
pub fn client_session(data: &[u8], t0: Instant) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let identity = Identity::new(MAC, Some("fuzz"));
    let rng = Counter(u64::from(mode));
    let (mut c, mut input) = if mode & 1 == 1 && rest.len() >= 2 {
        // Restore from a stored "ACK" taken from the input.
        let len = usize::from(rest[0]) * 4;
        let (ack, tail) = rest[1..].split_at(len.min(rest.len() - 1));
        let remaining = (mode & 2 == 2).then(|| Duration::from_secs(u64::from(mode) * 37));
        match Client::restore(identity.clone(), Counter(u64::from(mode)), t0, ack.to_vec(), remaining) {
            Ok(c) => (c, tail),
            Err(_) => (Client::new(identity, rng, t0), tail),
        }
    } else {
        (Client::new(identity, rng, t0), rest)
    };
    let mut now = t0;
    drain(&mut c, now);
    while let Some((&op, tail)) = input.split_first() {
        input = tail;
        match op {
            0..=199 => {
                let len = (usize::from(op) * 3).min(input.len());
                let (packet, tail) = input.split_at(len);
                input = tail;
                let mut packet = packet.to_vec();
                if op % 4 != 0 {
                    patch(&mut packet, c.xid());
                }
                c.handle_packet(now, &packet);
            }
            200..=239 => {
                // Jump to the next deadline, or a little past it.
                if let Some(at) = c.poll_at() {
                    now = now.max(at) + Duration::from_millis(u64::from(op - 200) * 250);
                }
            }
            240..=249 => now += Duration::from_secs(u64::from(op - 239) * 600),
            250..=252 => c.renew_now(now),
            253 => c.set_identity(now, Identity::new([2, 0, 0, 0, 0, op], None)),
            _ => {
                let _ = c.release();
                return;
            }
        }
        drain(&mut c, now);
    }
}

/// Arbitrary bytes through the reply path: header checks, decoding, reading a
/// lease and writing it as lease.json. Panics when any of it does, when the
/// lease's times are out of order, or when lease.json does not round-trip.
pub fn reply(data: &[u8]) {
    let mac = data.get(28..34).and_then(|m| <[u8; 6]>::try_from(m).ok()).unwrap_or_default();
    if wire::check_header(data, mac).is_err() {
        return;
    }
    let Ok(reply) = wire::decode(data) else { return };
    let Some(lease) = Lease::from_ack(&reply.message) else { return };
    assert!(lease.times.renew < lease.times.rebind && lease.times.rebind < lease.times.lease);
    let doc = lease.to_perm(SystemTime::UNIX_EPOCH);
    let text = serde_json::to_string(&doc).expect("a lease serialises");
    let back: runtime::perm::Dhcp4Lease = serde_json::from_str(&text).expect("and parses back");
    assert_eq!(back, doc);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        files
    }

    #[test]
    fn every_kept_client_input_runs_clean() {
        for (name, data) in corpus("client") {
            let t0 = runtime::clock::now();
            let r = std::panic::catch_unwind(|| client_session(&data, t0));
            assert!(r.is_ok(), "fuzz/corpus/client/{name}");
        }
    }

    #[test]
    fn every_kept_reply_input_runs_clean() {
        for (name, data) in corpus("reply") {
            assert!(std::panic::catch_unwind(|| reply(&data)).is_ok(), "fuzz/corpus/reply/{name}");
        }
    }
}
