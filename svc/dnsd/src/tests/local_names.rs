//! router7's internal/dns tests (TestDHCP, TestHostname, TestHostnameDHCP,
//! TestLocalhost, TestDHCPReverse, TestUppercase), and what we add: local and
//! private reverse names are answered here and never reach an upstream.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use simple_dns::RCODE;
use simple_dns::rdata::RData;

use super::{Harness, a_records, at, parse, query, t0};
use crate::local::{LeaseName, LocalNames, LocalZone};
use crate::resolver::Handled;
use crate::wire::rtype;

fn lease(name: &str, addr: &str, expires_in_s: Option<u64>) -> LeaseName {
    LeaseName {
        name: name.into(),
        addr: addr.parse().unwrap(),
        expires: expires_in_s.map(|s| t0() + Duration::from_secs(s)),
    }
}

fn harness(names: LocalNames) -> Harness {
    let mut h = Harness::new(&[super::UP1]);
    let (zone, _warnings) = LocalZone::new(&names);
    h.r.set_local(zone);
    h
}

fn leases(list: Vec<LeaseName>) -> Harness {
    harness(LocalNames { leases: list, ..LocalNames::default() })
}

/// Asks at time `ms`, expects a local answer (no upstream query), returns it parsed.
fn ask_local(h: &mut Harness, ms: u64, name: &str, qtype: u16) -> (RCODE, Vec<RData<'static>>, usize) {
    let msg = query(0x4242, name, qtype, None);
    let answer = h.answer(at(ms), &msg);
    assert!(h.upstream_queries().is_empty(), "{name} must not be forwarded");
    let p = parse(&answer);
    assert_eq!(p.id(), 0x4242);
    assert!(p.has_flags(simple_dns::PacketFlag::AUTHORITATIVE_ANSWER), "{name}: local answers are authoritative");
    assert_eq!(p.questions.len(), 1);
    let rdata = p.answers.iter().map(|rr| rr.rdata.clone().into_owned()).collect();
    (p.rcode(), rdata, p.name_servers.len())
}

fn ptr_target(rdata: &[RData<'_>]) -> String {
    match rdata {
        [RData::PTR(ptr)] => ptr.0.to_string(),
        other => panic!("expected one PTR, got {other:?}"),
    }
}

fn a_of(h: &mut Harness, ms: u64, name: &str) -> Vec<Ipv4Addr> {
    let answer = h.answer(at(ms), &query(1, name, rtype::A, None));
    assert!(h.upstream_queries().is_empty());
    a_records(&parse(&answer))
        .into_iter()
        .map(|(ip, ttl)| {
            assert_eq!(ttl, crate::local::TTL);
            ip
        })
        .collect()
}

#[test]
fn test_dhcp_a_lease_name_resolves_with_and_without_the_domain() {
    let mut h = leases(vec![lease("xps", "192.168.42.23", Some(3600))]);
    assert_eq!(a_of(&mut h, 0, "xps.lan."), [Ipv4Addr::new(192, 168, 42, 23)]);
    assert_eq!(a_of(&mut h, 0, "xps."), [Ipv4Addr::new(192, 168, 42, 23)]);
}

#[test]
fn test_dhcp_the_newest_unexpired_lease_wins() {
    let mut h = leases(vec![
        lease("xps", "192.168.42.23", Some(600)),
        lease("xps", "192.168.42.24", Some(1200)),
        lease("xps", "192.168.42.25", Some(60)),
    ]);
    assert_eq!(a_of(&mut h, 0, "xps.lan."), [Ipv4Addr::new(192, 168, 42, 24)]);
}

#[test]
fn test_dhcp_unknown_and_expired_names_are_nxdomain() {
    let mut h = leases(vec![lease("xps", "192.168.42.23", Some(60)), lease("old", "192.168.42.9", Some(0))]);
    let (rc, answers, authority) = ask_local(&mut h, 0, "nosuchhost.lan.", rtype::A);
    assert_eq!((rc, answers.len(), authority), (RCODE::NameError, 0, 1), "NXDOMAIN with the lan SOA");
    let (rc, _, _) = ask_local(&mut h, 0, "old.lan.", rtype::A);
    assert_eq!(rc, RCODE::NameError, "an expired-only name");
    // xps expires after 60 s: then NXDOMAIN, also without the domain (not forwarded).
    assert_eq!(a_of(&mut h, 59_000, "xps.lan."), [Ipv4Addr::new(192, 168, 42, 23)]);
    assert_eq!(ask_local(&mut h, 60_000, "xps.lan.", rtype::A).0, RCODE::NameError);
    assert_eq!(ask_local(&mut h, 60_000, "xps.", rtype::A).0, RCODE::NameError);
    // A static lease (no expiry) never expires.
    let mut h = leases(vec![lease("printer", "192.168.42.4", None)]);
    assert_eq!(a_of(&mut h, 10_000_000_000, "printer.lan."), [Ipv4Addr::new(192, 168, 42, 4)]);
}

fn router(leases: Vec<LeaseName>, v6: Option<Ipv6Addr>) -> Harness {
    harness(LocalNames {
        hostname: Some("testtarget".into()),
        router_v4: Some(Ipv4Addr::new(127, 0, 0, 2)),
        router_v6: v6,
        leases,
    })
}

#[test]
fn test_hostname_a_client_cannot_take_the_routers_name() {
    let mut h = router(vec![lease("TESTTARGET", "192.168.42.23", Some(3600))], None);
    assert_eq!(a_of(&mut h, 0, "testtarget.lan."), [Ipv4Addr::new(127, 0, 0, 2)]);
    assert_eq!(a_of(&mut h, 0, "testtarget."), [Ipv4Addr::new(127, 0, 0, 2)]);
    let (rc, answers, _) = ask_local(&mut h, 0, "2.0.0.127.in-addr.arpa.", rtype::PTR);
    assert_eq!((rc, ptr_target(&answers)), (RCODE::NoError, "testtarget.lan".into()));
    // The client's address gets no reverse name: it would point at the router.
    let (rc, answers, _) = ask_local(&mut h, 0, "23.42.168.192.in-addr.arpa.", rtype::PTR);
    assert_eq!((rc, answers.len()), (RCODE::NameError, 0));
}

#[test]
fn test_hostname_more_recent_lease_wins_in_any_order() {
    for order in [[0, 1], [1, 0]] {
        let both = [lease("xps", "192.168.42.23", Some(600)), lease("xps", "192.168.42.42", Some(1800))];
        let mut h = router(order.iter().map(|&i| both[i].clone()).collect(), None);
        assert_eq!(a_of(&mut h, 0, "xps.lan."), [Ipv4Addr::new(192, 168, 42, 42)], "order {order:?}");
    }
}

#[test]
fn test_hostname_dhcp_the_routers_own_name() {
    let mut h = router(vec![], None);
    assert_eq!(a_of(&mut h, 0, "testtarget.lan."), [Ipv4Addr::new(127, 0, 0, 2)]);
    let (_, answers, _) = ask_local(&mut h, 0, "2.0.0.127.in-addr.arpa.", rtype::PTR);
    assert_eq!(ptr_target(&answers), "testtarget.lan");
    // No delegated prefix: AAAA is NOERROR with no answer (NODATA, with the lan SOA).
    let (rc, answers, authority) = ask_local(&mut h, 0, "testtarget.lan.", rtype::AAAA);
    assert_eq!((rc, answers.len(), authority), (RCODE::NoError, 0, 1));
    // With a prefix the router has <prefix>::1, forward and reverse.
    let v6: Ipv6Addr = "2a02:168:4a00::1".parse().unwrap();
    let mut h = router(vec![], Some(v6));
    let (rc, answers, _) = ask_local(&mut h, 0, "testtarget.lan.", rtype::AAAA);
    assert_eq!(rc, RCODE::NoError);
    assert!(matches!(answers.as_slice(), [RData::AAAA(a)] if Ipv6Addr::from(a.address) == v6), "{answers:?}");
    let rev = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.a.4.8.6.1.0.2.0.a.2.ip6.arpa.";
    let (_, answers, _) = ask_local(&mut h, 0, rev, rtype::PTR);
    assert_eq!(ptr_target(&answers), "testtarget.lan");
    // A lease's host has no known IPv6 address: AAAA is NODATA, as in router7.
    let mut h = router(vec![lease("xps", "192.168.42.23", Some(60))], Some(v6));
    let (rc, answers, _) = ask_local(&mut h, 0, "xps.lan.", rtype::AAAA);
    assert_eq!((rc, answers.len()), (RCODE::NoError, 0));
    let (rc, answers, _) = ask_local(&mut h, 0, "xps.lan.", rtype::MX);
    assert_eq!((rc, answers.len()), (RCODE::NoError, 0));
}

#[test]
fn test_localhost() {
    let mut h = leases(vec![lease("localhost", "192.168.42.66", Some(60))]);
    assert_eq!(a_of(&mut h, 0, "localhost."), [Ipv4Addr::LOCALHOST], "a lease cannot take localhost");
    let (_, answers, _) = ask_local(&mut h, 0, "localhost.", rtype::AAAA);
    assert!(matches!(answers.as_slice(), [RData::AAAA(a)] if Ipv6Addr::from(a.address) == Ipv6Addr::LOCALHOST));
    let (_, answers, _) = ask_local(&mut h, 0, "1.0.0.127.in-addr.arpa.", rtype::PTR);
    assert_eq!(ptr_target(&answers), "localhost");
    let (_, answers, _) = ask_local(&mut h, 0, "9.8.7.127.in-addr.arpa.", rtype::PTR);
    assert_eq!(ptr_target(&answers), "localhost", "all of 127/8");
    let v6_loopback = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.";
    let (_, answers, _) = ask_local(&mut h, 0, v6_loopback, rtype::PTR);
    assert_eq!(ptr_target(&answers), "localhost");
    // RFC 6761 §6.3: names under localhost are loopback too.
    assert_eq!(a_of(&mut h, 0, "foo.localhost."), [Ipv4Addr::LOCALHOST]);
}

#[test]
fn test_dhcp_reverse_in_every_private_range() {
    for (ip, question) in [
        ("192.168.42.23", "23.42.168.192.in-addr.arpa."),
        ("10.0.0.2", "2.0.0.10.in-addr.arpa."),
        ("172.16.0.1", "1.0.16.172.in-addr.arpa."),
        ("172.31.255.254", "254.255.31.172.in-addr.arpa."),
    ] {
        let mut h = leases(vec![lease("testtarget", ip, Some(60))]);
        let (rc, answers, _) = ask_local(&mut h, 0, question, rtype::PTR);
        assert_eq!((rc, ptr_target(&answers)), (RCODE::NoError, "testtarget.lan".into()), "{question}");
        // Without leases: NXDOMAIN, still not forwarded.
        let mut h = leases(vec![]);
        let (rc, answers, authority) = ask_local(&mut h, 0, question, rtype::PTR);
        assert_eq!((rc, answers.len(), authority), (RCODE::NameError, 0, 1), "{question}");
    }
}

#[test]
fn test_uppercase_names_match_without_regard_to_case() {
    let mut h = leases(vec![lease("UPPERCASE", "192.168.42.23", Some(60)), lease("lower", "192.168.42.24", Some(60))]);
    assert_eq!(a_of(&mut h, 0, "uppercase.lan."), [Ipv4Addr::new(192, 168, 42, 23)]);
    assert_eq!(a_of(&mut h, 0, "UpperCase.LAN."), [Ipv4Addr::new(192, 168, 42, 23)]);
    assert_eq!(a_of(&mut h, 0, "LOWER."), [Ipv4Addr::new(192, 168, 42, 24)]);
    // The question comes back in the client's spelling.
    let answer = h.answer(at(0), &query(1, "UpperCase.LAN.", rtype::A, None));
    assert_eq!(parse(&answer).questions[0].qname.to_string(), "UpperCase.LAN");
}

#[test]
fn private_reverse_zones_are_never_forwarded() {
    let mut h = leases(vec![lease("xps", "192.168.42.23", Some(60))]);
    for name in [
        "1.0.0.10.in-addr.arpa.",
        "10.in-addr.arpa.",
        "5.5.20.172.in-addr.arpa.",
        "1.1.168.192.in-addr.arpa.",
        "168.192.in-addr.arpa.",
        "junk.42.168.192.in-addr.arpa.",
        "1.2.254.169.in-addr.arpa.",
        "7.113.0.203.in-addr.arpa.",
        "1.1.64.100.in-addr.arpa.",
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
        "d.f.ip6.arpa.",
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.",
        "b.e.f.ip6.arpa.",
        "nothing.lan.",
        "deep.xps.lan.",
        "anything.invalid.",
    ] {
        for qtype in [rtype::PTR, rtype::A, rtype::SOA] {
            let msg = query(9, name, qtype, None);
            let (handled, answer) = h.ask(at(0), super::udp_client(1000), &msg);
            assert_eq!(handled, Handled::Reply, "{name}");
            assert!(h.upstream_queries().is_empty(), "{name} leaked upstream");
            let p = parse(&answer);
            assert!(matches!(p.rcode(), RCODE::NameError | RCODE::NoError), "{name}: {:?}", p.rcode());
        }
    }
    // Zone apexes exist: SOA answers; names with known addresses below are empty non-terminals.
    let (rc, answers, _) = ask_local(&mut h, 0, "168.192.in-addr.arpa.", rtype::SOA);
    assert_eq!(rc, RCODE::NoError);
    assert!(matches!(answers.as_slice(), [RData::SOA(_)]), "{answers:?}");
    let (rc, answers, _) = ask_local(&mut h, 0, "42.168.192.in-addr.arpa.", rtype::PTR);
    assert_eq!((rc, answers.len()), (RCODE::NoError, 0), "empty non-terminal above a lease");
    let (rc, _, _) = ask_local(&mut h, 0, "43.168.192.in-addr.arpa.", rtype::PTR);
    assert_eq!(rc, RCODE::NameError);

    // Public reverse names and ordinary names do go upstream.
    for name in ["8.8.8.8.in-addr.arpa.", "172.in-addr.arpa.", "example.com.", "xps.example."] {
        let (handled, _) = h.ask(at(0), super::udp_client(1001), &query(10, name, rtype::PTR, None));
        assert_eq!(handled, Handled::Pending, "{name}");
        assert_eq!(h.upstream_queries().len(), 1, "{name}");
    }
}

#[test]
fn skips_lease_names_that_are_not_labels() {
    let names = LocalNames {
        leases: vec![
            lease("has.dot", "192.168.42.2", None),
            lease("sp ace", "192.168.42.3", None),
            lease("", "192.168.42.4", None),
        ],
        ..LocalNames::default()
    };
    let (zone, warnings) = LocalZone::new(&names);
    assert_eq!(zone.len(), 0);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let _ = IpAddr::V4(Ipv4Addr::LOCALHOST);
}
