//! Conversations with the core on a fake clock: inputs, solicitations, and
//! the advertisements that come out, byte for byte where it matters.

use super::*;
use crate::prefixes::collect;
use crate::random::SplitMix64;
use crate::schedule::MIN_DELAY_BETWEEN_RAS;
use runtime::perm::{DelegatedPrefix, Dhcp6Lease, IpNet};

const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x73, 0x53ff, 0xfe00, 0xcafe);
const HOST: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x73, 0x53ff, 0xfe00, 0xbeef);
const RS_FROM_HOST: [u8; 16] = [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x02, 0x73, 0x53, 0x00, 0xbe, 0xef];

fn link() -> Link {
    Link { ifindex: 2, mac: Some([0x02, 0x73, 0x53, 0x00, 0xca, 0xfe]), mtu: Some(1500), link_local: Some(LL) }
}

fn net(s: &str) -> IpNet {
    let (ip, prefix_len) = runtime::perm::parse_cidr(s).unwrap();
    IpNet { ip, prefix_len }
}

fn wall(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A lease delegating `prefix` with the given lifetimes left at 2026-01-01T00:00:00Z.
fn lease(prefix: &str, preferred_left: u64, valid_left: u64) -> Dhcp6Lease {
    let t = wall("2026-01-01T00:00:00Z");
    Dhcp6Lease {
        valid_until: t,
        prefixes: vec![net(prefix)],
        dns: vec![],
        delegations: vec![DelegatedPrefix {
            prefix: prefix.into(),
            preferred_until: t.plus(Duration::from_secs(preferred_left)),
            valid_until: t.plus(Duration::from_secs(valid_left)),
        }],
        renew_after: None,
        rebind_after: None,
        server_duid: None,
        address: None,
    }
}

fn inputs(lease: Option<&Dhcp6Lease>, extras: &[&str]) -> Inputs {
    let extras: Vec<IpNet> = extras.iter().map(|s| net(s)).collect();
    Inputs { config: Config::default(), link: Some(link()), prefixes: collect(lease, &extras).0 }
}

struct Fixture {
    adv: Advertiser,
    metrics: Arc<RadvdMetrics>,
    t0: Instant,
    wall0: Timestamp,
}

impl Fixture {
    fn new() -> Self {
        let metrics = Arc::new(RadvdMetrics::default());
        let adv = Advertiser::new(Config::default(), Box::new(SplitMix64::new(42)), Arc::clone(&metrics));
        Self { adv, metrics, t0: runtime::clock::now(), wall0: wall("2026-01-01T00:00:00Z") }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn reload(&mut self, secs: f64, inputs: Inputs) {
        let now = self.at(secs);
        let wall = self.wall0.plus(Duration::from_secs_f64(secs));
        self.adv.reload(now, wall, inputs);
    }

    /// Runs the core from its next deadline up to `until`, as the shell's loop would.
    fn run_until(&mut self, until: f64) -> Vec<(f64, Transmit)> {
        let end = self.at(until);
        let mut out = Vec::new();
        while let Some(at) = self.adv.poll_at().filter(|at| *at <= end) {
            while let Some(t) = self.adv.poll(at) {
                out.push(((at - self.t0).as_secs_f64(), t));
            }
        }
        out
    }

    fn topics(&mut self) -> Vec<&'static str> {
        self.adv.take_events().into_iter().map(|e| e.topic).collect()
    }
}

fn ra(t: &Transmit) -> RouterAdvert {
    RouterAdvert::parse(&t.bytes).unwrap()
}

#[test]
fn advertises_router7s_contents_for_a_delegated_prefix_byte_for_byte() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]));
    let sent = f.run_until(0.0);
    assert_eq!(sent.len(), 1, "the first RA goes at once");
    let (_, t) = &sent[0];
    assert_eq!((t.dst, t.src, t.kind), (ALL_NODES, LL, Kind::Unsolicited));
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 1, 0x02, 0x73, 0x53, 0x00, 0xca, 0xfe,
        5, 1, 0, 0, 0, 0, 0x05, 0xdc,
        3, 4, 64, 0xc0, 0, 0, 0x1c, 0x20, 0, 0, 0x07, 0x08, 0, 0, 0, 0,
        0x2a, 0x02, 0x01, 0x68, 0x4a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        25, 3, 0, 0, 0, 0, 0x07, 0x08,
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x73, 0x53, 0xff, 0xfe, 0x00, 0xca, 0xfe,
        31, 2, 0, 0, 0, 0, 0x07, 0x08, 3, b'l', b'a', b'n', 0, 0, 0, 0,
    ];
    assert_eq!(t.bytes, expected);
    assert_eq!(f.topics(), ["radvd.prefix.advertised"]);
    assert!(f.adv.advertising_prefixes());
}

#[test]
fn lifetimes_never_exceed_what_is_left_of_the_delegation() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 600, 3000)), &[]));
    let first = ra(&f.run_until(0.0)[0].1);
    assert_eq!((first.prefixes[0].valid, first.prefixes[0].preferred), (3000, 600));
    // 1000 s later: preferred ran out (addresses deprecated), valid counts down.
    f.run_until(999.0);
    f.adv.handle_rs(f.at(1000.0), Ipv6Addr::UNSPECIFIED, Some(255), &RS_FROM_HOST[..8]).unwrap();
    let later = f.run_until(1001.0);
    assert_eq!(later.len(), 1);
    let r = ra(&later[0].1);
    assert!((1999..=2000).contains(&r.prefixes[0].valid), "{:?}", r.prefixes[0]);
    assert_eq!(r.prefixes[0].preferred, 0);
    assert_eq!(r.router_lifetime, 1800, "still the default router");
    // At the end of the valid lifetime the prefix is left out and the router
    // stops being the default router with final RAs (RFC 4861 §6.2.5).
    let end = f.run_until(3100.0);
    let finals: Vec<RouterAdvert> = end.iter().filter(|(t, _)| *t >= 3000.0).map(|(_, t)| ra(t)).collect();
    assert_eq!(finals.len(), MAX_FINAL_RTR_ADVERTISEMENTS as usize, "{end:?}");
    assert!(finals.iter().all(|r| r.router_lifetime == 0 && r.prefixes.is_empty()));
    assert!(f.run_until(100_000.0).is_empty(), "then silence");
    assert!(f.topics().contains(&"radvd.prefix.expired"));
    assert!(!f.adv.advertising());
}

#[test]
fn lifetimes_are_capped_by_the_configuration_when_the_delegation_is_long() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &["2001:db8:1::/64"]));
    let r = ra(&f.run_until(0.0)[0].1);
    let lifetimes: Vec<(String, u32, u32)> =
        r.prefixes.iter().map(|p| (format!("{}/{}", p.prefix, p.len), p.valid, p.preferred)).collect();
    assert_eq!(lifetimes, [("2001:db8:1::/64".to_owned(), 7200, 1800), ("2a02:168:4a00::/64".to_owned(), 7200, 1800)]);
}

#[test]
fn a_removed_prefix_is_deprecated_with_zero_lifetimes_then_withdrawn() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]));
    f.run_until(100.0);
    f.topics();
    // The ISP hands out a new prefix.
    f.reload(100.0, inputs(Some(&lease("2a02:168:4b00::/48", 86_400, 172_800)), &[]));
    assert_eq!(f.topics(), ["radvd.prefix.deprecated", "radvd.prefix.advertised"]);
    let sent = f.run_until(100.0);
    let r = ra(&sent[0].1);
    let pios: Vec<(String, u32, u32, bool, bool)> =
        r.prefixes.iter().map(|p| (p.prefix.to_string(), p.valid, p.preferred, p.on_link, p.autonomous)).collect();
    assert_eq!(
        pios,
        [("2a02:168:4b00::".to_owned(), 7200, 1800, true, true), ("2a02:168:4a00::".to_owned(), 0, 0, true, true)]
    );
    assert_eq!(r.router_lifetime, 1800);
    // A change restarts the fast start: three RAs within 32 s carry the news.
    let burst: Vec<f64> = f.run_until(140.0).into_iter().map(|(t, _)| t).collect();
    assert_eq!(burst.len(), 2, "{burst:?}");
    assert!(burst[1] - 100.0 <= 32.0);
    let status = f.adv.status(f.at(140.0));
    assert_eq!(status["deprecated_prefixes"][0]["prefix"], "2a02:168:4a00::/64");
    assert_eq!(status["deprecated_prefixes"][0]["reason"], "removed");
    // Hosts heard valid 7200 at most 2 h ago: deprecated until then, then gone.
    let later = f.run_until(7300.0);
    assert!(ra(&later.last().unwrap().1).prefixes.len() == 1, "gone after the last advertised valid lifetime");
    assert_eq!(f.topics(), ["radvd.prefix.withdrawn"]);
}

#[test]
fn losing_the_only_prefix_ends_the_default_route_and_keeps_deprecating() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]));
    f.run_until(50.0);
    f.reload(50.0, inputs(None, &[]));
    assert!(!f.adv.advertising_prefixes());
    let sent = f.run_until(50.0);
    let r = ra(&sent[0].1);
    assert_eq!(r.router_lifetime, 0, "no uplink prefix, no default router (RFC 7084 G-5)");
    assert_eq!((r.prefixes[0].valid, r.prefixes[0].preferred), (0, 0));
    // Hosts that heard valid 7200 at t = 0..50 hold it until 7250 at most.
    let tail = f.run_until(20_000.0);
    let last = tail.last().unwrap();
    assert!(last.0 <= 7250.0, "{}", last.0);
    assert!(tail.iter().all(|(_, t)| ra(t).router_lifetime == 0));
    assert!(!f.adv.advertising(), "no final RAs needed: the router lifetime was 0 already");
}

#[test]
fn nothing_is_sent_without_a_prefix_or_a_link_local_address() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(None, &[]));
    assert_eq!(f.adv.poll_at(), None);
    assert_eq!(f.adv.handle_rs(f.at(1.0), HOST, Some(255), &RS_FROM_HOST), Ok(Answer::Idle));
    assert_eq!(f.metrics.solicitations_unanswered.get(), 1);
    let mut no_ll = inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]);
    no_ll.link = Some(Link { link_local: None, ..link() });
    f.reload(2.0, no_ll);
    assert!(f.run_until(2.5).is_empty(), "an RA must come from a link-local address (RFC 4861 §4.2)");
    let mut no_link = inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]);
    no_link.link = None;
    f.reload(3.0, no_link);
    assert!(f.run_until(3.5).is_empty());
    assert_eq!(f.adv.status(f.at(3.0))["prefixes"][0]["prefix"], "2a02:168:4a00::/64");
    // The address appears: advertising starts.
    f.reload(4.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]));
    assert_eq!(f.run_until(4.0).len(), 1);
}

#[test]
fn a_reload_sends_a_fresh_advertisement_at_once_and_a_change_restarts_the_fast_start() {
    let mut f = Fixture::new();
    let same = || inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]);
    f.reload(0.0, same());
    let start: Vec<f64> = f.run_until(231.0).into_iter().map(|(t, _)| t).collect();
    assert_eq!(start.len(), 3, "three fast: {start:?}");
    assert!(start[1] <= 16.0 && start[2] - start[1] <= 16.0);
    f.run_until(999.0);
    // Nothing changed: one RA now, the periodic timer keeps its pace afterwards.
    f.reload(1000.0, same());
    let fresh = f.run_until(1000.0);
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].1.kind, Kind::SolicitedMulticast);
    let next = f.run_until(1100.0);
    assert!(next.is_empty(), "{next:?}");
    // A reload right after is held back by MIN_DELAY_BETWEEN_RAS.
    f.reload(1001.0, same());
    assert_eq!(f.adv.poll_at(), Some(f.at(1000.0) + MIN_DELAY_BETWEEN_RAS));
    f.run_until(1200.0);
    // The MTU changed: a new fast start.
    let mut changed = same();
    changed.link = Some(Link { mtu: Some(1492), ..link() });
    f.reload(1200.0, changed);
    let burst = f.run_until(1240.0);
    assert_eq!(burst.len(), 3, "{burst:?}");
    assert_eq!(ra(&burst[0].1).mtu, Some(1492));
}

#[test]
fn solicitations_are_answered_by_unicast_or_multicast_and_invalid_ones_counted() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]));
    f.run_until(100.0);
    // A host with an address and a link-layer option: answered directly within 0.5 s.
    assert_eq!(f.adv.handle_rs(f.at(100.0), HOST, Some(255), &RS_FROM_HOST), Ok(Answer::Unicast));
    let sent = f.run_until(101.0);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].0 <= 100.5);
    assert_eq!((sent[0].1.dst, sent[0].1.kind), (HOST, Kind::SolicitedUnicast));
    let answer = ra(&sent[0].1);
    assert_eq!((answer.router_lifetime, answer.prefixes.len()), (1800, 1));
    assert_eq!(answer.rdnss.unwrap().servers, [LL]);
    // A host without an address: answered by multicast.
    let t = f.adv.poll_at().unwrap() - Duration::from_secs(100);
    assert_eq!(f.adv.handle_rs(t, Ipv6Addr::UNSPECIFIED, Some(255), &RS_FROM_HOST[..8]), Ok(Answer::Multicast));
    // Invalid ones are dropped and counted by reason.
    assert_eq!(f.adv.handle_rs(t, HOST, Some(254), &RS_FROM_HOST), Err(DropReason::HopLimit));
    assert_eq!(f.adv.handle_rs(t, HOST, None, &RS_FROM_HOST), Err(DropReason::HopLimit));
    assert_eq!(f.adv.handle_rs(t, HOST, Some(255), &RS_FROM_HOST[..5]), Err(DropReason::TooShort));
    let mut bad_option = RS_FROM_HOST;
    bad_option[9] = 0;
    assert_eq!(f.adv.handle_rs(t, HOST, Some(255), &bad_option), Err(DropReason::BadOption));
    assert_eq!(f.metrics.dropped(DropReason::HopLimit), 2);
    assert_eq!(f.metrics.dropped(DropReason::TooShort), 1);
    assert_eq!(f.metrics.dropped(DropReason::BadOption), 1);
    assert_eq!(f.metrics.solicitations.get(), 2);
}

#[test]
fn a_restart_deprecates_what_the_record_says_hosts_still_hold() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &["2001:db8:1::/64"]));
    let record = f.adv.take_record(f.at(0.0)).unwrap();
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        json!({"prefixes": [{"prefix": "2001:db8:1::/64", "valid_seconds": 7200}, {"prefix": "2a02:168:4a00::/64", "valid_seconds": 7200}]})
    );
    assert!(f.adv.take_record(f.at(0.0)).is_none(), "written once per change");
    // The router reboots with a new delegation; the extra prefix is still configured.
    let mut g = Fixture::new();
    g.adv.restore(g.at(0.0), &record);
    g.reload(0.0, inputs(Some(&lease("2a02:168:4b00::/48", 86_400, 172_800)), &["2001:db8:1::/64"]));
    let events = g.adv.take_events();
    let deprecated: Vec<&Value> =
        events.iter().filter(|e| e.topic == "radvd.prefix.deprecated").map(|e| &e.attributes).collect();
    assert_eq!(deprecated, [&json!({"prefix": "2a02:168:4a00::/64", "reason": "restart", "seconds": 7200})]);
    let r = ra(&g.run_until(0.0)[0].1);
    let pios: Vec<(String, u32)> = r.prefixes.iter().map(|p| (p.prefix.to_string(), p.valid)).collect();
    assert_eq!(pios, [("2001:db8:1::".into(), 7200), ("2a02:168:4b00::".into(), 7200), ("2a02:168:4a00::".into(), 0)]);
    assert_eq!(g.adv.status(g.at(0.0))["deprecated_prefixes"][0]["reason"], "restart");
    let after = g.adv.take_record(g.at(10.0)).unwrap();
    assert_eq!(
        after.prefixes.last().unwrap(),
        &RecordEntry { prefix: "2a02:168:4a00::/64".into(), valid_seconds: 7190 }
    );
}

#[test]
fn a_wall_clock_jump_does_not_move_lifetimes_already_read() {
    let mut f = Fixture::new();
    let l = lease("2a02:168:4a00::/48", 600, 3000);
    f.reload(0.0, inputs(Some(&l), &[]));
    f.run_until(0.0);
    // NTP moves the clock a year forward; the same lease is read again.
    f.wall0 = f.wall0.plus(Duration::from_secs(365 * 86_400));
    f.reload(10.0, inputs(Some(&l), &[]));
    let r = ra(&f.run_until(10.0)[0].1);
    assert_eq!((r.prefixes[0].valid, r.prefixes[0].preferred), (2990, 590));
    // A renewed lease (new lifetimes) is read against the clock of its reading.
    f.reload(20.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]));
    let r = ra(&f.run_until(25.0).last().unwrap().1);
    assert_eq!(r.prefixes[0].valid, 0, "dhcp6 wrote it with the old clock: a year in the past now");
}

#[test]
fn a_renewed_lease_brings_an_expired_prefix_back() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 10, 20)), &[]));
    f.run_until(30.0);
    assert_eq!(f.adv.status(f.at(30.0))["expired_prefixes"][0]["prefix"], "2a02:168:4a00::/64");
    // The same (stale) lease read again changes nothing.
    f.reload(40.0, inputs(Some(&lease("2a02:168:4a00::/48", 10, 20)), &[]));
    assert!(!f.adv.advertising_prefixes());
    f.wall0 = f.wall0.plus(Duration::ZERO);
    let mut renewed = lease("2a02:168:4a00::/48", 1000, 2000);
    renewed.delegations[0].preferred_until = wall("2026-01-01T00:17:30Z");
    renewed.delegations[0].valid_until = wall("2026-01-01T00:34:10Z");
    f.reload(50.0, inputs(Some(&renewed), &[]));
    assert!(f.adv.advertising_prefixes());
    let r = ra(&f.run_until(50.0)[0].1);
    assert_eq!((r.prefixes[0].valid, r.router_lifetime), (2000, 1800));
}

#[test]
fn a_shortened_lease_keeps_deprecating_what_hosts_heard_before() {
    let mut f = Fixture::new();
    f.reload(0.0, inputs(Some(&lease("2a02:168:4a00::/48", 86_400, 172_800)), &[]));
    f.run_until(0.0);
    // The ISP cuts the lease to 100 s: hosts heard 7200 s and keep it past then.
    f.reload(10.0, inputs(Some(&lease("2a02:168:4a00::/48", 50, 100)), &[]));
    f.run_until(200.0);
    let status = f.adv.status(f.at(200.0));
    assert_eq!(status["expired_prefixes"][0]["prefix"], "2a02:168:4a00::/64");
    assert_eq!(status["deprecated_prefixes"][0]["reason"], "expired");
    let r = f.adv.advert(f.at(200.0)).unwrap().0;
    assert_eq!((r.prefixes[0].valid, r.router_lifetime), (0, 0));
}

#[test]
fn deprecated_prefixes_are_bounded() {
    let mut f = Fixture::new();
    for i in 0..12u16 {
        f.reload(f64::from(i) * 10.0, inputs(None, &[&format!("2001:db8:{i:x}::/64")]));
        f.run_until(f64::from(i) * 10.0 + 5.0);
    }
    let status = f.adv.status(f.at(200.0));
    assert_eq!(status["deprecated_prefixes"].as_array().unwrap().len(), MAX_DEPRECATED);
    assert!(f.adv.advert(f.at(200.0)).unwrap().0.emit().len() < 1280 - 40);
}
