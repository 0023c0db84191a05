//! The core as conversations with a fake clock. Requests are built and
//! replies decoded with `dhcproto`, an encoder and decoder independent of ours.
//! The first group reproduces router7's `internal/dhcp4d` tests (same
//! addresses: lan0 192.168.42.1/24, pool .2–.231).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dhcproto::v4::{self, DhcpOption, Flags, Message, Opcode, OptionCode, UnknownOption};
use dhcproto::{Decodable, Decoder, Encodable};
use runtime::perm::Dhcp4dLease;
use runtime::timefmt::Timestamp;

use super::*;
use crate::config::StaticLease;
use crate::leases::Expiry;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 42, 1);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 42, last)
}

fn hw(last: u8) -> Mac {
    [0x11, 0x22, 0x33, 0x44, 0x55, last]
}

struct H {
    s: Server,
    now: Instant,
    wall: SystemTime,
}

impl H {
    fn new() -> Self {
        Self::with(Config::defaults(SERVER, 24))
    }

    fn with(cfg: Config) -> Self {
        Self {
            s: Server::new(cfg.with_router_hostname("router7"), 42, Arc::new(Stats::default())),
            now: runtime::clock::now(),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    fn later(&mut self, d: Duration) {
        self.now += d;
        self.wall += d;
    }

    fn raw(&mut self, m: &Message) -> Option<Reply> {
        let bytes = m.to_vec().unwrap();
        let r = self.s.handle_datagram(self.now, self.wall, &bytes);
        self.s.check_invariants().unwrap();
        r
    }

    fn send(&mut self, m: &Message) -> Option<Message> {
        self.raw(m).map(|r| Message::decode(&mut Decoder::new(&r.encode())).unwrap())
    }

    fn file(&mut self) -> Vec<Dhcp4dLease> {
        let (now, wall) = (self.now, self.wall);
        self.s.records().iter().map(|r| r.to_file(SERVER, now, wall)).collect()
    }
}

/// krolaw/dhcp4's `RequestPacket`, which router7's tests use: `addr` goes in ciaddr.
fn packet(kind: v4::MessageType, addr: Ipv4Addr, mac: Mac, opts: Vec<DhcpOption>) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest).set_xid(0xaabb_ccdd).set_chaddr(&mac).set_ciaddr(addr);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    for o in opts {
        m.opts_mut().insert(o);
    }
    m
}

fn request(addr: Ipv4Addr, mac: Mac, opts: Vec<DhcpOption>) -> Message {
    packet(v4::MessageType::Request, addr, mac, opts)
}

fn discover(addr: Ipv4Addr, mac: Mac, opts: Vec<DhcpOption>) -> Message {
    packet(v4::MessageType::Discover, addr, mac, opts)
}

fn kind(m: &Message) -> v4::MessageType {
    match m.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(t)) => *t,
        other => panic!("no message type: {other:?}"),
    }
}

fn hostname(h: &str) -> DhcpOption {
    DhcpOption::Hostname(h.into())
}

fn unzero() -> Ipv4Addr {
    Ipv4Addr::UNSPECIFIED
}

fn static_lease(addr: Ipv4Addr, mac: Mac) -> Dhcp4dLease {
    Dhcp4dLease {
        num: i64::from(addr.octets()[3]) - 2,
        addr: Some(addr),
        hardware_addr: runtime::netif::format_mac(mac),
        hostname: String::new(),
        hostname_override: String::new(),
        expiry: Timestamp::GO_ZERO,
        last_ack: Timestamp::GO_ZERO,
    }
}

// ---- router7's cases ----

#[test]
fn lease_records_the_requested_address_and_hostname() {
    // TestLease
    let mut h = H::new();
    let ack = h.send(&request(ip(23), hw(0x66), vec![hostname("xps")])).unwrap();
    assert_eq!(kind(&ack), v4::MessageType::Ack);
    let changes = h.s.take_changes();
    assert_eq!(changes.len(), 1);
    let rec = changes[0].1.as_ref().unwrap();
    assert_eq!((rec.addr, rec.binding.mac, rec.binding.hostname.as_str()), (ip(23), hw(0x66), "xps"));
    let events = h.s.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].topic(), "dhcp4d.lease.granted");
    assert_eq!(events[0].attributes()["hostname"], "xps");
}

#[test]
fn offers_the_requested_address_when_free() {
    // TestPreferredAddress
    let mut h = H::new();
    let offer = h.send(&discover(unzero(), hw(0x66), vec![])).unwrap();
    assert_ne!(offer.yiaddr(), ip(23));
    let mut h = H::new();
    let offer = h.send(&discover(ip(23), hw(0x66), vec![])).unwrap();
    assert_eq!(offer.yiaddr(), ip(23), "requested via ciaddr");
    let mut h = H::new();
    let offer = h.send(&discover(unzero(), hw(0x66), vec![hostname("xps"), DhcpOption::RequestedIpAddress(ip(23))]));
    assert_eq!(offer.unwrap().yiaddr(), ip(23), "requested via option 50");
}

#[test]
fn naks_addresses_outside_the_pool() {
    // TestPoolBoundaries, plus the subnet's edges and the server itself.
    let mut h = H::new();
    for last in [1, 242, 232, 0, 255] {
        let r = h.send(&request(ip(last), hw(0x66), vec![])).unwrap();
        assert_eq!(kind(&r), v4::MessageType::Nak, ".{last}");
    }
    assert_eq!(h.s.stats().naks.get(), 5);
    for last in [2, 231] {
        let r = h.send(&request(ip(last), hw(last), vec![])).unwrap();
        assert_eq!(kind(&r), v4::MessageType::Ack, ".{last}");
    }
}

#[test]
fn a_client_keeps_its_address_and_gives_it_up_when_it_moves() {
    // TestPreviousLease
    let mut h = H::new();
    let (hw1, hw2) = (hw(0x66), hw(0x77));
    assert_eq!(h.send(&request(ip(23), hw1, vec![])).unwrap().yiaddr(), ip(23));
    assert_eq!(kind(&h.send(&request(ip(23), hw2, vec![])).unwrap()), v4::MessageType::Nak);
    assert_eq!(h.send(&discover(unzero(), hw1, vec![])).unwrap().yiaddr(), ip(23));
    assert_eq!(h.send(&request(ip(42), hw1, vec![])).unwrap().yiaddr(), ip(42));
    let r = h.send(&request(ip(23), hw2, vec![])).unwrap();
    assert_eq!((kind(&r), r.yiaddr()), (v4::MessageType::Ack, ip(23)));
}

#[test]
fn a_static_lease_from_leases_json_never_expires() {
    // TestPermanentLease
    let mut h = H::new();
    let stored = Dhcp4dLease { num: 2, ..static_lease(ip(23), hw(0x66)) };
    let warnings = h.s.load(&[stored], h.now, h.wall);
    assert_eq!(warnings.len(), 1, "num 2 (.4) and addr .23 disagree: {warnings:?}");
    assert_eq!(h.send(&request(ip(23), hw(0x66), vec![])).unwrap().yiaddr(), ip(23));
    assert_eq!(h.file()[0].expiry, Timestamp::GO_ZERO, "stays static after an ACK");
    h.later(Duration::from_secs(3 * 3600));
    assert_eq!(kind(&h.send(&request(ip(23), hw(0x77), vec![])).unwrap()), v4::MessageType::Nak);
    // And its owner cannot wander off to another address.
    assert_eq!(kind(&h.send(&request(ip(24), hw(0x66), vec![])).unwrap()), v4::MessageType::Nak);
}

#[test]
fn expired_leases_are_reusable_when_the_pool_is_full() {
    // TestExpiration
    let mut h = H::new();
    let all = || (1..=230u32).map(|i| ip(u8::try_from(1 + i % 254).unwrap()));
    for round in ["allocate", "re-allocate"] {
        for a in all() {
            let r = h.send(&request(a, hw(a.octets()[3]), vec![])).unwrap();
            assert_eq!(r.yiaddr(), a, "{round} {a}");
        }
    }
    for a in all() {
        let r = h.send(&request(a, hw(a.octets()[3] - 1), vec![])).unwrap();
        assert_eq!(kind(&r), v4::MessageType::Nak, "full: {a}");
    }
    assert!(h.send(&discover(ip(231), hw(0), vec![])).is_none(), "no offer when full");
    assert_eq!(h.s.stats().pool_exhausted.get(), 1);
    h.later(Duration::from_secs(3 * 3600));
    for a in all() {
        // One client asking for 230 addresses in a row: paced under the rate limit.
        h.later(Duration::from_millis(250));
        let r = h.send(&request(a, hw(0), vec![])).unwrap();
        assert_eq!(r.yiaddr(), a, "after expiry: {a}");
    }
}

#[test]
fn an_expired_lease_goes_to_whoever_asks() {
    // TestRequestExpired
    let mut h = H::new();
    let (xps, mbp) = ([0x11, 0x22, 0x33, 0x44, 0x55, 0x66], [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xfe]);
    assert_eq!(kind(&h.send(&request(ip(23), mbp, vec![])).unwrap()), v4::MessageType::Ack);
    h.later(Duration::from_secs(3 * 3600));
    assert_eq!(kind(&h.send(&request(ip(23), xps, vec![])).unwrap()), v4::MessageType::Ack);
    assert_eq!(kind(&h.send(&request(ip(23), mbp, vec![])).unwrap()), v4::MessageType::Nak);
    assert_ne!(h.send(&discover(ip(23), mbp, vec![])).unwrap().yiaddr(), ip(23), "in use");
}

#[test]
fn requests_for_another_server_are_ignored() {
    // TestServerID
    let mut h = H::new();
    let offer = h.send(&discover(unzero(), hw(0x66), vec![])).unwrap();
    let m = request(ip(23), hw(0x66), vec![DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 1, 1))]);
    assert!(h.send(&m).is_none());
    assert_eq!(h.s.stats().drops(DropReason::NotForUs), 1);
    assert_eq!(h.s.table().offer_of(hw(0x66), h.now), None, "our offer is void: {}", offer.yiaddr());
}

#[test]
fn a_stored_lease_is_offered_again() {
    // TestPersistentStorage
    let mut h = H::new();
    let stored = Dhcp4dLease { num: 2, ..static_lease(ip(4), hw(0x66)) };
    assert!(h.s.load(&[stored], h.now, h.wall).is_empty());
    assert_eq!(h.send(&discover(unzero(), hw(0x66), vec![])).unwrap().yiaddr(), ip(4));
}

#[test]
fn nintendo_devices_get_an_hour() {
    // TestMinimumLeaseTime
    let mut h = H::new();
    let lease = |m: &Message| m.opts().get(OptionCode::AddressLeaseTime).cloned();
    let normal = h.send(&request(ip(23), hw(0x66), vec![])).unwrap();
    assert_eq!(lease(&normal), Some(DhcpOption::AddressLeaseTime(1200)));
    let switch = [0x7c, 0xbb, 0x8a, 0x11, 0x22, 0x33];
    let offer = h.send(&discover(unzero(), switch, vec![])).unwrap();
    assert_eq!(lease(&offer), Some(DhcpOption::AddressLeaseTime(3600)));
    assert_eq!(offer.opts().get(OptionCode::Renewal), Some(&DhcpOption::Renewal(1800)));
    let ack = h.send(&request(offer.yiaddr(), switch, vec![])).unwrap();
    assert_eq!(lease(&ack), Some(DhcpOption::AddressLeaseTime(3600)));
    assert_eq!(
        h.file().iter().find(|l| l.hardware_addr == "7c:bb:8a:11:22:33").unwrap().expiry,
        Timestamp::from_system(h.wall + Duration::from_secs(3600))
    );
}

#[test]
fn a_declined_address_is_not_offered_again_until_quarantine_ends() {
    // TestClientDecline, plus the quarantine's end.
    let mut h = H::new();
    let offer = h.send(&discover(unzero(), hw(0x66), vec![])).unwrap();
    let a = offer.yiaddr();
    let sid = DhcpOption::ServerIdentifier(SERVER);
    h.send(&request(unzero(), hw(0x66), vec![DhcpOption::RequestedIpAddress(a), sid.clone()])).unwrap();
    let decline = packet(v4::MessageType::Decline, unzero(), hw(0x66), vec![DhcpOption::RequestedIpAddress(a), sid]);
    assert!(h.send(&decline).is_none(), "no reply to a DECLINE");
    assert_eq!(h.s.take_events().last().map(LeaseEvent::topic), Some("dhcp4d.lease.declined"));
    for i in 0..50 {
        let o = h.send(&discover(unzero(), hw(i), vec![DhcpOption::RequestedIpAddress(a)])).unwrap();
        assert_ne!(o.yiaddr(), a, "declined address offered to {i}");
    }
    assert_eq!(kind(&h.send(&request(a, hw(0x99), vec![])).unwrap()), v4::MessageType::Nak);
    assert!(h.file().iter().all(|l| l.addr != Some(a)), "the lease is gone from the file");
    h.later(crate::config::DEFAULT_QUARANTINE + Duration::from_secs(1));
    assert_eq!(h.send(&discover(unzero(), hw(0xee), vec![DhcpOption::RequestedIpAddress(a)])).unwrap().yiaddr(), a);
    // A DECLINE for an address the client does not hold changes nothing.
    let stray = packet(v4::MessageType::Decline, unzero(), hw(0x55), vec![DhcpOption::RequestedIpAddress(ip(200))]);
    assert!(h.send(&stray).is_none());
    assert_eq!(h.s.stats().drops(DropReason::NoBinding), 1);
}

// ---- beyond router7 ----

#[test]
fn a_released_address_waits_for_its_client() {
    let mut h = H::new();
    let a = h.send(&request(ip(50), hw(1), vec![hostname("tv")])).unwrap().yiaddr();
    h.s.take_events();
    let release = packet(v4::MessageType::Release, a, hw(1), vec![DhcpOption::ServerIdentifier(SERVER)]);
    assert!(h.send(&release).is_none());
    let events = h.s.take_events();
    assert_eq!(events.iter().map(LeaseEvent::topic).collect::<Vec<_>>(), vec!["dhcp4d.lease.released"]);
    assert_eq!(events[0].attributes()["hostname"], "tv");
    let file = h.file();
    assert_eq!(file[0].expiry, Timestamp::from_system(h.wall), "the file shows it ended now");
    assert_eq!(h.s.stats().releases.get(), 1);
    // Others get fresh addresses while there are any; the client comes back to its own.
    for i in 10..60 {
        assert_ne!(h.send(&discover(unzero(), hw(i), vec![])).unwrap().yiaddr(), a);
    }
    assert_eq!(h.send(&discover(unzero(), hw(1), vec![])).unwrap().yiaddr(), a);
    // Releasing someone else's address is refused.
    let theirs = packet(v4::MessageType::Release, a, hw(2), vec![]);
    assert!(h.send(&theirs).is_none());
    assert_eq!(h.s.stats().drops(DropReason::NoBinding), 1);
}

#[test]
fn inform_is_answered_with_configuration_only() {
    let mut h = H::new();
    let mut m = packet(v4::MessageType::Inform, ip(250), hw(1), vec![]);
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::DomainNameServer,
        OptionCode::AddressLeaseTime,
        OptionCode::Renewal,
        OptionCode::DomainName,
    ]));
    let r = h.raw(&m).unwrap();
    assert_eq!(r.dest, Destination::Unicast { mac: hw(1), ip: ip(250) });
    assert!(h.s.take_changes().is_empty(), "INFORM changes no binding");
    let ack = Message::decode(&mut Decoder::new(&r.encode())).unwrap();
    assert_eq!(kind(&ack), v4::MessageType::Ack);
    assert_eq!((ack.yiaddr(), ack.ciaddr()), (unzero(), ip(250)));
    assert_eq!(ack.opts().get(OptionCode::AddressLeaseTime), None, "RFC 2131 §4.3.5: no lease time");
    assert_eq!(ack.opts().get(OptionCode::Renewal), None);
    assert_eq!(ack.opts().get(OptionCode::DomainNameServer), Some(&DhcpOption::DomainNameServer(vec![SERVER])));
    assert_eq!(ack.opts().get(OptionCode::DomainName), Some(&DhcpOption::DomainName("lan".into())));
    assert!(h.s.records().is_empty(), "no binding");
    assert_eq!(h.s.stats().informs.get(), 1);
    // Without ciaddr, or from another subnet, it is dropped.
    assert!(h.send(&packet(v4::MessageType::Inform, unzero(), hw(1), vec![])).is_none());
    assert!(h.send(&packet(v4::MessageType::Inform, Ipv4Addr::new(10, 0, 0, 5), hw(1), vec![])).is_none());
    assert_eq!(h.s.stats().drops(DropReason::Invalid), 1);
    assert_eq!(h.s.stats().drops(DropReason::NotForUs), 1);
}

fn selecting(h: &mut H, mac: Mac) -> Ipv4Addr {
    let offer = h.send(&discover(unzero(), mac, vec![])).unwrap();
    let opts = vec![DhcpOption::RequestedIpAddress(offer.yiaddr()), DhcpOption::ServerIdentifier(SERVER)];
    let ack = h.send(&request(unzero(), mac, opts)).unwrap();
    assert_eq!((kind(&ack), ack.yiaddr()), (v4::MessageType::Ack, offer.yiaddr()));
    offer.yiaddr()
}

#[test]
fn selecting_init_reboot_renewing_and_rebinding_are_told_apart() {
    let mut h = H::new();
    let a = selecting(&mut h, hw(1));
    let first_expiry = h.file()[0].expiry;

    // RENEWING / REBINDING: ciaddr, no options 50 and 54; answered to ciaddr.
    h.later(Duration::from_secs(600));
    let r = h.raw(&request(a, hw(1), vec![])).unwrap();
    assert_eq!(r.kind, MessageType::Ack);
    assert_eq!(r.dest, Destination::Unicast { mac: hw(1), ip: a });
    assert_eq!(r.ciaddr, a);
    assert_eq!(h.s.take_changes().len(), 1, "the extended lease is a change to write");
    assert_eq!(h.file()[0].expiry, first_expiry.plus(Duration::from_secs(600)), "extended");
    assert!(
        h.s.take_events()
            .iter()
            .all(|e| e.topic() != "dhcp4d.lease.granted" || e.attributes()["addr"] == a.to_string())
    );

    // INIT-REBOOT: option 50, no 54. Its own address: ACK.
    let reboot = |addr| request(unzero(), hw(1), vec![DhcpOption::RequestedIpAddress(addr)]);
    assert_eq!(kind(&h.send(&reboot(a)).unwrap()), v4::MessageType::Ack);
    assert!(h.s.take_events().is_empty(), "a renewal of a running lease is no new grant");
    // On the wrong network (an address from elsewhere): NAK, broadcast.
    let r = h.raw(&reboot(Ipv4Addr::new(10, 9, 8, 7))).unwrap();
    assert_eq!((r.kind, r.dest), (MessageType::Nak, Destination::Broadcast));
    // Someone else's running lease: NAK.
    let b = selecting(&mut h, hw(2));
    assert_eq!(kind(&h.send(&reboot(b)).unwrap()), v4::MessageType::Nak);
    // A REQUEST with neither option 50, 54 nor ciaddr says nothing: dropped.
    assert!(h.send(&request(unzero(), hw(1), vec![])).is_none());
    assert_eq!(h.s.stats().drops(DropReason::Invalid), 1);
}

#[test]
fn the_pool_runs_out_and_comes_back_oldest_first() {
    let text = r#"{"pool": {"start": "192.168.42.10", "end": "192.168.42.12"}}"#;
    let cfg = Config::from_file(SERVER, 24, std::path::Path::new("config.json"), text).unwrap();
    let mut h = H::with(cfg);
    let mut got = Vec::new();
    for i in 0..3 {
        got.push(selecting(&mut h, hw(i)));
        h.later(Duration::from_secs(10));
    }
    got.sort();
    assert_eq!(got, vec![ip(10), ip(11), ip(12)]);
    assert!(h.send(&discover(unzero(), hw(9), vec![])).is_none());
    assert_eq!(h.s.stats().pool_exhausted.get(), 1);
    // Leases end in the order they were granted; the new client gets the one
    // that ended first, so the others keep theirs for their owners.
    let first = h.s.table().address_of(hw(0)).unwrap();
    h.s.take_events();
    // Granted at +0, +10 and +20 s; now is +30 s. At +1205 s only the first has run out.
    h.later(Duration::from_secs(1175));
    assert!(h.s.poll_at().is_some_and(|t| t <= h.now), "a deadline passed");
    h.s.advance(h.now);
    let events = h.s.take_events();
    assert_eq!(events.iter().map(LeaseEvent::topic).collect::<Vec<_>>(), vec!["dhcp4d.lease.expired"]);
    assert_eq!(events[0].attributes()["addr"], first.to_string());
    assert_eq!(h.s.stats().expirations.get(), 1);
    assert_eq!(h.send(&discover(unzero(), hw(9), vec![])).unwrap().yiaddr(), first);
}

#[test]
fn two_discovers_do_not_get_the_same_address() {
    let text = r#"{"pool": {"start": "192.168.42.10", "end": "192.168.42.11"}}"#;
    let cfg = Config::from_file(SERVER, 24, std::path::Path::new("config.json"), text).unwrap();
    let mut h = H::with(cfg);
    let a = h.send(&discover(unzero(), hw(1), vec![])).unwrap().yiaddr();
    let b = h.send(&discover(unzero(), hw(2), vec![])).unwrap().yiaddr();
    assert_ne!(a, b);
    // A repeated DISCOVER gets the same offer (and renews its hold).
    h.later(Duration::from_secs(1));
    assert_eq!(h.send(&discover(unzero(), hw(1), vec![])).unwrap().yiaddr(), a);
    // Client 2 cannot take client 1's offered address by asking for it.
    let steal = request(unzero(), hw(2), vec![DhcpOption::RequestedIpAddress(a), DhcpOption::ServerIdentifier(SERVER)]);
    assert_eq!(kind(&h.send(&steal).unwrap()), v4::MessageType::Nak);
    // With every address on offer, a third client takes back the oldest offer:
    // a flood of DISCOVERs cannot hold the pool.
    let c = h.send(&discover(unzero(), hw(3), vec![])).unwrap().yiaddr();
    assert_eq!(c, b, "client 1 re-offered later, so 2's offer is the oldest");
    // Offers lapse on their own.
    h.later(crate::config::OFFER_HOLD + Duration::from_secs(1));
    h.s.advance(h.now);
    assert_eq!(h.s.table().free_count(), 2);
    h.s.check_invariants().unwrap();
}

#[test]
fn hostnames_are_sanitised_and_fqdn_wins() {
    let mut h = H::new();
    h.send(&request(ip(30), hw(1), vec![hostname("John's iPhone")])).unwrap();
    assert_eq!(h.file()[0].hostname, "johns-iphone");
    // Option 81 (wire format, "Mina.lan") is preferred over option 12.
    let fqdn = UnknownOption::new(OptionCode::ClientFQDN, b"\x05\x00\x00\x04Mina\x03lan\x00".to_vec());
    h.send(&request(ip(31), hw(2), vec![hostname("other"), DhcpOption::Unknown(fqdn)])).unwrap();
    assert_eq!(h.s.table().binding(ip(31)).unwrap().hostname, "mina");
    // A renewal without a name keeps the name; one with an unusable name clears it.
    h.send(&request(ip(30), hw(1), vec![])).unwrap();
    assert_eq!(h.s.table().binding(ip(30)).unwrap().hostname, "johns-iphone");
    h.send(&request(ip(30), hw(1), vec![hostname("!!!")])).unwrap();
    assert_eq!(h.s.table().binding(ip(30)).unwrap().hostname, "");
}

#[test]
fn a_client_cannot_take_the_routers_name() {
    let mut h = H::new();
    let ack = h.send(&request(ip(30), hw(1), vec![hostname("Router7")])).unwrap();
    assert_eq!(kind(&ack), v4::MessageType::Ack, "it still gets its address");
    assert_eq!(h.s.table().binding(ip(30)).unwrap().hostname, "");
    h.send(&request(ip(31), hw(2), vec![hostname("localhost")])).unwrap();
    assert_eq!(h.s.table().binding(ip(31)).unwrap().hostname, "");
}

#[test]
fn a_hostname_override_sticks() {
    let mut h = H::new();
    let mut stored = static_lease(ip(40), hw(1));
    stored.expiry = Timestamp::from_system(h.wall + Duration::from_secs(60));
    stored.hostname = "client-name".into();
    stored.hostname_override = "printer".into();
    h.s.load(&[stored], h.now, h.wall);
    h.send(&request(ip(40), hw(1), vec![hostname("new-name")])).unwrap();
    let b = h.s.table().binding(ip(40)).unwrap();
    assert_eq!((b.hostname.as_str(), b.name()), ("new-name", "printer"));
    // It follows the client to another address.
    h.send(&request(ip(41), hw(1), vec![])).unwrap();
    assert_eq!(h.s.table().binding(ip(41)).unwrap().name(), "printer");
}

fn with_statics() -> H {
    let text = r#"{"static_leases": [
        {"hardware_addr": "02:00:00:00:00:01", "addr": "192.168.42.250", "hostname": "nas"},
        {"hardware_addr": "02:00:00:00:00:02", "addr": "192.168.42.20"}
    ]}"#;
    H::with(Config::from_file(SERVER, 24, std::path::Path::new("config.json"), text).unwrap())
}

#[test]
fn a_static_lease_from_the_config_gets_its_address_and_name() {
    let mut h = with_statics();
    let nas = [2, 0, 0, 0, 0, 1];
    let offer = h.send(&discover(unzero(), nas, vec![DhcpOption::RequestedIpAddress(ip(30))])).unwrap();
    assert_eq!(offer.yiaddr(), ip(250), "outside the pool, and ahead of the requested address");
    h.send(&request(ip(250), nas, vec![hostname("whatever")])).unwrap();
    let rec = &h.file()[0];
    assert_eq!((rec.hostname.as_str(), rec.expiry.is_go_zero()), ("nas", false));
    // It may not take another address, and nobody may take its.
    assert_eq!(kind(&h.send(&request(ip(30), nas, vec![])).unwrap()), v4::MessageType::Nak);
    assert_eq!(kind(&h.send(&request(ip(250), hw(9), vec![])).unwrap()), v4::MessageType::Nak);
    // A pool address reserved by a static lease is never offered to others.
    for i in 0..100 {
        assert_ne!(h.send(&discover(unzero(), hw(i), vec![])).unwrap().yiaddr(), ip(20));
    }
}

#[test]
fn a_static_lease_takes_its_address_back() {
    let mut h = H::new();
    h.send(&request(ip(20), hw(7), vec![])).unwrap();
    // The configuration gains a static lease for .20 for another MAC.
    let with = with_statics();
    let warnings = h.s.reconfigure(with.s.config().clone(), h.now);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let changes = h.s.take_changes();
    assert_eq!(changes, vec![(ip(20), None)], "the file forgets the old holder");
    assert_eq!(kind(&h.send(&request(ip(20), hw(7), vec![])).unwrap()), v4::MessageType::Nak);
    assert_eq!(h.send(&discover(unzero(), [2, 0, 0, 0, 0, 2], vec![])).unwrap().yiaddr(), ip(20));
}

#[test]
fn replies_carry_what_the_client_asked_for_in_its_order() {
    let mut h = H::new();
    let mut m = discover(unzero(), hw(1), vec![]);
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::DomainName,
        OptionCode::Router,
        OptionCode::SubnetMask,
        OptionCode::NtpServers,
    ]));
    let r = h.raw(&m).unwrap();
    let codes: Vec<u8> = r.options.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, vec![51, 15, 3, 1], "lease time, then the list's order; no NTP server to give");
    let offer = Message::decode(&mut Decoder::new(&r.encode())).unwrap();
    assert_eq!(offer.opts().get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
    assert_eq!(offer.opts().get(OptionCode::AddressLeaseTime), Some(&DhcpOption::AddressLeaseTime(1200)));
    // Without a list, everything we have.
    let r = h.raw(&discover(unzero(), hw(2), vec![])).unwrap();
    let codes: Vec<u8> = r.options.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, vec![51, 1, 3, 6, 15, 119, 28, 58, 59]);
    let offer = Message::decode(&mut Decoder::new(&r.encode())).unwrap();
    assert_eq!(offer.opts().get(OptionCode::Renewal), Some(&DhcpOption::Renewal(600)));
    assert_eq!(offer.opts().get(OptionCode::Rebinding), Some(&DhcpOption::Rebinding(1050)));
}

#[test]
fn replies_go_where_rfc_2131_says() {
    let mut h = H::new();
    let r = h.raw(&discover(unzero(), hw(1), vec![])).unwrap();
    assert_eq!(r.dest, Destination::Unicast { mac: hw(1), ip: r.yiaddr }, "to yiaddr at chaddr");
    let mut b = discover(unzero(), hw(2), vec![]);
    b.set_flags(Flags::default().set_broadcast());
    let r = h.raw(&b).unwrap();
    assert_eq!(r.dest, Destination::Broadcast);
    assert!(Message::decode(&mut Decoder::new(&r.encode())).unwrap().flags().broadcast());
    // Through a relay on our subnet (perfdhcp is one): to giaddr, option 82 echoed.
    let mut relayed = discover(unzero(), hw(3), vec![]);
    relayed.set_giaddr(ip(254));
    // (Added by hand: dhcproto writes an unknown option 82 twice.)
    let mut bytes = relayed.to_vec().unwrap();
    let end = bytes.iter().rposition(|b| *b == 255).unwrap();
    bytes.splice(end..end, [82, 4, 1, 2, 9, 9]);
    let r = h.s.handle_datagram(h.now, h.wall, &bytes).unwrap();
    assert_eq!(r.dest, Destination::Relay { ip: ip(254) });
    assert_eq!(r.options.last(), Some(&(82, vec![1, 2, 9, 9])));
    // A relayed NAK asks the relay to broadcast it.
    let mut nak = request(unzero(), hw(3), vec![DhcpOption::RequestedIpAddress(ip(1))]);
    nak.set_giaddr(ip(254));
    let r = h.raw(&nak).unwrap();
    assert_eq!((r.kind, r.broadcast, r.dest), (MessageType::Nak, true, Destination::Relay { ip: ip(254) }));
    // A relay on another subnet is not ours to serve.
    let mut far = discover(unzero(), hw(4), vec![]);
    far.set_giaddr(Ipv4Addr::new(10, 1, 1, 1));
    assert!(h.raw(&far).is_none());
    assert_eq!(h.s.stats().drops(DropReason::NotForUs), 1);
}

#[test]
fn garbage_is_dropped_and_counted_by_reason() {
    let mut h = H::new();
    let good = discover(unzero(), hw(1), vec![]).to_vec().unwrap();
    let mut cases: Vec<(Vec<u8>, DropReason)> = vec![(good[..100].to_vec(), DropReason::Short)];
    let mut op = good.clone();
    op[0] = 2;
    cases.push((op, DropReason::WrongOp));
    let mut htype = good.clone();
    htype[1] = 6;
    cases.push((htype, DropReason::BadHeader));
    let mut overrun = good[..243].to_vec();
    overrun.extend_from_slice(&[12, 200, b'x']);
    cases.push((overrun, DropReason::BadOptions));
    let mut huge = good[..240].to_vec();
    huge.extend_from_slice(&[53, 1, 1]);
    for _ in 0..3 {
        huge.extend_from_slice(&[12, 100]);
        huge.extend_from_slice(&[b'h'; 100]);
    }
    cases.push((huge, DropReason::HugeHostname));
    let offer = packet(v4::MessageType::Offer, unzero(), hw(1), vec![]).to_vec().unwrap();
    cases.push((offer, DropReason::UnexpectedType));
    for (bytes, reason) in &cases {
        assert!(h.s.handle_datagram(h.now, h.wall, bytes).is_none(), "{reason}");
        assert_eq!(h.s.stats().drops(*reason), 1, "{reason}");
    }
    h.s.check_invariants().unwrap();
}

#[test]
fn a_flood_from_one_mac_does_not_starve_another() {
    let mut h = H::new();
    let flood = discover(unzero(), hw(1), vec![]).to_vec().unwrap();
    let answered = (0..1000).filter(|_| h.s.handle_datagram(h.now, h.wall, &flood).is_some()).count();
    assert_eq!(answered, crate::ratelimit::BURST as usize);
    assert_eq!(h.s.stats().drops(DropReason::RateLimited), 1000 - answered as u64);
    assert!(h.send(&discover(unzero(), hw(2), vec![])).is_some(), "another client is served");
}

#[test]
fn loads_router7s_file_and_writes_it_back_alike() {
    let mut h = H::new();
    let wall = h.wall;
    let at = |secs: i64| {
        Timestamp::from_system(wall).plus(Duration::from_secs(0)).plus(Duration::from_secs(secs.unsigned_abs()))
    };
    let mut running = static_lease(ip(10), hw(1));
    running.num = 8;
    running.hostname = "Laptop".into();
    running.expiry = at(600);
    running.last_ack = Timestamp::from_system(wall - Duration::from_secs(600));
    let mut expired = static_lease(ip(11), hw(2));
    expired.num = 9;
    expired.expiry = Timestamp::from_system(wall - Duration::from_secs(60));
    let forever = Dhcp4dLease { num: 2, addr: None, ..static_lease(ip(4), hw(3)) };
    let bad_mac = Dhcp4dLease { hardware_addr: "nope".into(), ..static_lease(ip(5), hw(4)) };
    let elsewhere = Dhcp4dLease { addr: Some(Ipv4Addr::new(10, 0, 0, 5)), ..static_lease(ip(5), hw(5)) };
    let warnings = h.s.load(&[running, expired, forever, bad_mac, elsewhere], h.now, h.wall);
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(h.s.take_changes().is_empty(), "loading writes nothing");
    let file = h.file();
    assert_eq!(file.len(), 3);
    assert_eq!((file[0].addr, file[0].num, file[0].expiry), (Some(ip(4)), 2, Timestamp::GO_ZERO), "num → addr");
    assert_eq!((file[1].num, file[1].hostname.as_str()), (8, "laptop"));
    assert_eq!(file[1].expiry, at(600));
    // The expired lease still keeps its address for its client.
    assert_eq!(h.send(&discover(unzero(), hw(2), vec![])).unwrap().yiaddr(), ip(11));
    assert_eq!(h.s.table().in_use(), 2);
    // Its expiry event is not replayed; the running one expires in 600 s.
    h.later(Duration::from_secs(601));
    h.s.advance(h.now);
    let topics: Vec<&str> = h.s.take_events().iter().map(LeaseEvent::topic).collect();
    assert_eq!(topics, vec!["dhcp4d.lease.expired"]);
}

#[test]
fn a_lease_file_from_the_future_does_not_outlive_its_lease_time() {
    // A router with no clock boots in 1970; leases.json says 2027.
    let mut h = H::new();
    h.wall = SystemTime::UNIX_EPOCH + Duration::from_secs(30);
    let mut l = static_lease(ip(10), hw(1));
    l.expiry = Timestamp::from_system(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    l.last_ack = Timestamp::from_system(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 - 1200));
    h.s.load(&[l], h.now, h.wall);
    match h.s.table().binding(ip(10)).unwrap().expiry {
        Expiry::At(t) => assert_eq!(t - h.now, Duration::from_secs(1200)),
        Expiry::Never => panic!("not static"),
    }
}

#[test]
fn duplicate_entries_keep_the_longer_lease() {
    let mut h = H::new();
    let mut short = static_lease(ip(10), hw(1));
    short.expiry = Timestamp::from_system(h.wall + Duration::from_secs(10));
    let mut long = static_lease(ip(10), hw(2));
    long.expiry = Timestamp::from_system(h.wall + Duration::from_secs(100));
    let mut moved = static_lease(ip(11), hw(2));
    moved.expiry = Timestamp::from_system(h.wall + Duration::from_secs(50));
    let warnings = h.s.load(&[short, long, moved], h.now, h.wall);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(h.s.table().binding(ip(10)).unwrap().mac, hw(2));
    assert!(h.s.table().binding(ip(11)).is_none());
}

#[test]
fn static_config_leases_survive_reconfiguration_and_others_follow_the_subnet() {
    let mut h = H::new();
    h.send(&request(ip(30), hw(1), vec![])).unwrap();
    h.s.take_changes();
    let moved = Config::defaults(Ipv4Addr::new(10, 0, 0, 1), 24);
    let warnings = h.s.reconfigure(moved, h.now);
    assert_eq!(warnings.len(), 1);
    assert_eq!(h.s.take_changes(), vec![(ip(30), None)]);
    h.s.check_invariants().unwrap();
    assert_eq!(StaticLease { mac: hw(1), addr: ip(1), hostname: None }.mac, hw(1));
}
