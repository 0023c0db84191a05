//! Drives the core with arbitrary ICMPv6 input (as if received on the raw
//! socket, with any hop limit and source), time steps, reloads and prefix
//! changes, and checks what comes out: every RA parses, goes to all nodes or to
//! a host that sent a valid solicitation with a link-layer address, carries
//! hop limit 64 for hosts, fits the IPv6 minimum MTU, and multicast RAs are
//! never closer than MIN_DELAY_BETWEEN_RAS.
#![no_main]

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use radvd::advert::RouterAdvert;
use radvd::advertiser::ALL_NODES;
use radvd::config::Config;
use radvd::metrics::RadvdMetrics;
use radvd::prefixes::{Prefix, PrefixInput, Source};
use radvd::random::SplitMix64;
use radvd::schedule::MIN_DELAY_BETWEEN_RAS;
use radvd::{Advertiser, Inputs, Link};
use runtime::timefmt::Timestamp;

const SOURCES: [Ipv6Addr; 4] = [
    Ipv6Addr::UNSPECIFIED,
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0x73, 0x53ff, 0xfe00, 0xbeef),
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2a02, 0x168, 0x4a00, 0, 0, 0, 0, 7),
];

fn inputs(prefix_bits: u8) -> Inputs {
    let prefixes = (0..4u16)
        .filter(|i| prefix_bits & (1 << i) != 0)
        .map(|i| PrefixInput {
            prefix: Prefix::new(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0), 64).unwrap(),
            source: Source::Extra,
            lifetimes: None,
        })
        .collect();
    Inputs {
        config: Config::default(),
        link: Some(Link {
            ifindex: 2,
            mac: Some([2, 0x73, 0x53, 0, 0xca, 0xfe]),
            mtu: Some(1500),
            link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0x73, 0x53ff, 0xfe00, 0xcafe)),
        }),
        prefixes,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let seed = u64::from(next().unwrap_or(0));
    let metrics = Arc::new(RadvdMetrics::default());
    let mut core = Advertiser::new(Config::default(), Box::new(SplitMix64::new(seed)), metrics);
    let t0 = runtime::clock::now();
    let wall = Timestamp { secs: 1_800_000_000, nanos: 0 };
    let mut now = t0;
    core.reload(now, wall, inputs(1));
    let mut solicited_by: Vec<Ipv6Addr> = Vec::new();
    let mut last_multicast = None;
    while let Some(op) = next() {
        match op % 5 {
            0 => {
                let step = u64::from(next().unwrap_or(0)) << 8 | u64::from(next().unwrap_or(0));
                now += Duration::from_millis(step * 10);
            }
            1 => {
                let hop_limit = match next().unwrap_or(0) {
                    0 => None,
                    h => Some(h),
                };
                let source = SOURCES[usize::from(next().unwrap_or(0)) % SOURCES.len()];
                let len = usize::from(next().unwrap_or(0) % 64);
                let packet: Vec<u8> = (0..len).map(|_| next().unwrap_or(0)).collect();
                if core.handle_rs(now, source, hop_limit, &packet).is_ok() {
                    solicited_by.push(source);
                }
            }
            2 => {
                let bits = next().unwrap_or(0);
                core.reload(now, wall.plus(now - t0), inputs(bits));
            }
            3 => {
                if let Some(at) = core.poll_at() {
                    now = now.max(at);
                }
            }
            _ => {}
        }
        while let Some(t) = core.poll(now) {
            let ra = RouterAdvert::parse(&t.bytes).expect("our RA parses");
            assert_eq!(ra.hop_limit, 64);
            assert!(t.bytes.len() <= 1280 - 40, "{} bytes", t.bytes.len());
            if t.dst == ALL_NODES {
                if let Some(last) = last_multicast {
                    assert!(now - last >= MIN_DELAY_BETWEEN_RAS, "multicast RAs {:?} apart", now - last);
                }
                last_multicast = Some(now);
            } else {
                assert!(solicited_by.contains(&t.dst), "unicast to {} who did not ask", t.dst);
            }
        }
        let _ = core.take_events();
        let _ = core.take_record(now);
    }
});
