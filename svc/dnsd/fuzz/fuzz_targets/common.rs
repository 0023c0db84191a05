//! What both targets share: a resolver with local names and one upstream,
//! and the checks every answer must pass.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use dnsd::entropy::SplitMix64;
use dnsd::local::{LeaseName, LocalNames, LocalZone};
use dnsd::metrics::DnsMetrics;
use dnsd::resolver::{ClientAddr, Resolver, Tunables};
use dnsd::upstream::{Source, UpstreamSpec};
use dnsd::wire::{Header, flag};

pub const UPSTREAM: &str = "192.0.2.1:53";

pub fn resolver(now: Instant) -> Resolver {
    let mut r = Resolver::new(Tunables::default(), Arc::new(DnsMetrics::default()), Box::new(SplitMix64(1)));
    r.set_upstreams(&[UpstreamSpec { addr: UPSTREAM.parse().unwrap(), source: Source::Config }]);
    let names = LocalNames {
        hostname: Some("router".into()),
        router_v4: Some("192.168.42.1".parse().unwrap()),
        router_v6: Some("2a02:168:4a00::1".parse().unwrap()),
        leases: vec![
            LeaseName { name: "xps".into(), addr: "192.168.42.23".parse().unwrap(), expires: None },
            LeaseName { name: "Pad".into(), addr: "10.0.0.7".parse().unwrap(), expires: Some(now) },
        ],
    };
    r.set_local(LocalZone::new(&names).0);
    r
}

pub fn clients() -> [ClientAddr; 2] {
    let peer: SocketAddr = "192.168.42.23:5353".parse().unwrap();
    [ClientAddr::Udp { listener: 1, peer }, ClientAddr::Tcp { conn: 1 }]
}

/// An answer to a query with ID `id`: a response with that ID, within the
/// transport's limit, and parseable by simple-dns whenever `oracle_ok` (the
/// input it answers parsed there too).
pub fn check_answer(answer: &[u8], id: u16, client: ClientAddr, oracle_ok: bool) {
    let h = Header::parse(answer).expect("an answer has a header");
    assert_eq!(h.id, id, "the client's ID");
    assert!(h.has(flag::QR), "a response");
    if let ClientAddr::Udp { .. } = client {
        assert!(answer.len() <= 1232, "UDP answers fit our EDNS size: {}", answer.len());
    }
    if oracle_ok {
        if let Err(e) = simple_dns::Packet::parse(answer) {
            panic!("simple-dns rejects our answer ({e}): {answer:?}");
        }
    }
}
