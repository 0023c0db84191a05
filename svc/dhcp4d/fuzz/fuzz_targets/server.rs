//! Drives the server core with a sequence of datagrams and clock jumps, on a
//! small pool so exhaustion, reuse of ended leases, offer stealing, static
//! leases and quarantine are all reached. After every step the lease table's
//! invariants must hold, and every reply must be a DHCP message an
//! independent decoder (dhcproto) reads, answering the request's xid with an
//! address of our subnet.
//!
//! Input: a config selector byte, then records of
//! `[clock step][length (2 bytes)][datagram]`.
#![no_main]

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dhcp4d::stats::Stats;
use dhcp4d::{Config, Server};
use dhcproto::{Decodable, Decoder, v4};
use libfuzzer_sys::fuzz_target;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 42, 1);

fn config(variant: u8) -> Config {
    let text = match variant % 3 {
        0 => "{}",
        1 => {
            r#"{"pool": {"start": "192.168.42.10", "end": "192.168.42.13"}, "decline_quarantine_seconds": 60,
                "static_leases": [{"hardware_addr": "02:00:00:00:00:01", "addr": "192.168.42.50", "hostname": "nas"},
                                  {"hardware_addr": "02:00:00:00:00:02", "addr": "192.168.42.11"}]}"#
        }
        _ => r#"{"pool": {"start": "192.168.42.10", "end": "192.168.42.11"}, "lease_seconds": 10}"#,
    };
    Config::from_file(SERVER, 24, Path::new("config.json"), text)
        .expect("the fuzz configs are valid")
        .with_router_hostname("router7")
}

fuzz_target!(|data: &[u8]| {
    let Some((&variant, mut rest)) = data.split_first() else { return };
    let cfg = config(variant);
    let subnet = cfg.subnet;
    let mut server = Server::new(cfg, u64::from(variant), Arc::new(Stats::default()));
    let mut now = runtime::clock::now();
    let mut wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    while let [step, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        // Mostly small steps; 0xff jumps past any lease.
        let d =
            if *step == 0xff { Duration::from_secs(3 * 3600) } else { Duration::from_millis(u64::from(*step) * 100) };
        now += d;
        wall += d;
        if let Some(reply) = server.handle_datagram(now, wall, datagram) {
            let bytes = reply.encode();
            let m = v4::Message::decode(&mut Decoder::new(&bytes)).expect("dhcproto reads our reply");
            assert_eq!(m.opcode(), v4::Opcode::BootReply);
            assert_eq!(&m.xid().to_be_bytes()[..], &datagram[4..8], "the reply answers the request");
            let y = m.yiaddr();
            assert!(y.is_unspecified() || subnet.is_host(y), "yiaddr {y} outside {subnet}");
            assert!(bytes.len() <= reply.max_len.max(548) || bytes.len() == 300);
        }
        if step & 1 == 1 {
            server.advance(now);
        }
        if let Err(e) = server.check_invariants() {
            panic!("invariant broken: {e}");
        }
        let _ = server.take_changes();
        let _ = server.take_events();
        assert!(server.poll_at().is_none_or(|t| t > now - Duration::from_secs(24 * 3600)));
    }
});
