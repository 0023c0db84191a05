//! Conversations with fake time: the client is driven with `now` values and
//! server replies built here (or replayed from the fiber7 capture), and what
//! it sends is decoded and checked field by field.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};

use super::*;

const MAC: [u8; 6] = [0x02, 0x73, 0x53, 0x00, 0xca, 0xfe];
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// Transaction IDs from a list (then counting up), and a fixed jitter.
struct Fixed {
    xids: VecDeque<u32>,
    next: u32,
    jitter: i32,
}

impl Random for Fixed {
    fn xid(&mut self) -> u32 {
        self.xids.pop_front().unwrap_or_else(|| {
            self.next += 1;
            self.next
        })
    }
    fn jitter_ms(&mut self) -> i32 {
        self.jitter
    }
}

fn rng(xids: &[u32], jitter: i32) -> Fixed {
    Fixed { xids: xids.iter().copied().collect(), next: 0x1000, jitter }
}

fn identity(mac: [u8; 6]) -> Identity {
    Identity::new(mac, Some("router7"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Everything the client has to say at `now`.
fn drain<R: Random>(c: &mut Client<R>, now: Instant) -> (Vec<Transmit>, Vec<Event>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        match c.poll(now) {
            Some(Action::Send(t)) => sent.push(t),
            Some(Action::Event(e)) => events.push(e),
            None => return (sent, events),
        }
    }
    panic!("poll never returned None at one instant");
}

fn decoded(t: &Transmit) -> Message {
    Message::decode(&mut Decoder::new(&t.payload)).unwrap()
}

fn message_type(m: &Message) -> Option<MessageType> {
    match m.opts().get(OptionCode::MessageType) {
        Some(DhcpOption::MessageType(t)) => Some(*t),
        _ => None,
    }
}

fn option_ip(m: &Message, code: OptionCode) -> Option<Ipv4Addr> {
    match m.opts().get(code) {
        Some(DhcpOption::RequestedIpAddress(ip) | DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    }
}

/// A server reply to `mac` with the usual options and a lease of `lease` s.
fn reply(kind: MessageType, xid: u32, yiaddr: Ipv4Addr, lease: u32, server: Ipv4Addr) -> Vec<u8> {
    reply_with(kind, xid, yiaddr, server, vec![DhcpOption::AddressLeaseTime(lease)])
}

fn reply_with(kind: MessageType, xid: u32, yiaddr: Ipv4Addr, server: Ipv4Addr, extra: Vec<DhcpOption>) -> Vec<u8> {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply).set_xid(xid).set_chaddr(&MAC).set_yiaddr(yiaddr);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ServerIdentifier(server));
    o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
    o.insert(DhcpOption::Router(vec![SERVER]));
    for x in extra {
        o.insert(x);
    }
    m.to_vec().unwrap()
}

/// A client taken through DISCOVER, OFFER, REQUEST and ACK at `t0` with a
/// lease of `lease` seconds.
fn bound(lease: u32, t0: Instant) -> Client<Fixed> {
    let mut c = Client::new(identity(MAC), rng(&[0xaa], 0), t0);
    let (sent, _) = drain(&mut c, t0);
    assert_eq!(sent.len(), 1);
    c.handle_packet(t0, &reply(MessageType::Offer, 0xaa, ADDR, lease, SERVER));
    let (sent, _) = drain(&mut c, t0);
    assert_eq!(message_type(&decoded(&sent[0])), Some(MessageType::Request));
    c.handle_packet(t0, &reply(MessageType::Ack, 0xaa, ADDR, lease, SERVER));
    let (sent, events) = drain(&mut c, t0);
    assert!(sent.is_empty());
    assert_eq!(events, vec![Event::Bound]);
    assert_eq!(c.state(), StateName::Bound);
    c
}

#[test]
fn fiber7_capture_gives_the_lease_and_renews_at_half_of_1608_s() {
    let Some(path) = runtime::testing::shared_capture(
        "fiber7/dhcp4-offer-ack-2018-05-18.pcap",
        "fiber7_capture_gives_the_lease_and_renews_at_half_of_1608_s",
    ) else {
        return;
    };
    let capture = runtime::pcap::parse(&std::fs::read(path).unwrap()).unwrap();
    let payloads: Vec<Vec<u8>> = capture
        .packets
        .iter()
        .map(|p| runtime::frame::parse_udp4_ethernet(&p.data).unwrap().payload.to_vec())
        .collect();
    assert_eq!(payloads.len(), 2, "OFFER and ACK");
    let mac = [0xd8, 0x58, 0xd7, 0x00, 0x4e, 0xdf];
    let t0 = runtime::clock::now();
    let mut c = Client::new(identity(mac), rng(&[0x7708_d724], 0), t0);

    let (sent, _) = drain(&mut c, t0);
    let discover = decoded(&sent[0]);
    assert_eq!((message_type(&discover), discover.xid()), (Some(MessageType::Discover), 0x7708_d724));
    assert_eq!(sent[0].destination, Destination::Broadcast { source: Ipv4Addr::UNSPECIFIED });

    let t1 = t0 + Duration::from_millis(300);
    c.handle_packet(t1, &payloads[0]);
    let (sent, _) = drain(&mut c, t1);
    let request = decoded(&sent[0]);
    assert_eq!((message_type(&request), request.xid()), (Some(MessageType::Request), 0x7708_d724));
    assert_eq!(option_ip(&request, OptionCode::RequestedIpAddress), Some(Ipv4Addr::new(85, 195, 207, 62)));
    assert_eq!(option_ip(&request, OptionCode::ServerIdentifier), Some(Ipv4Addr::new(77, 109, 140, 123)));

    // The ACK names another server (213.144.129.5) than the OFFER did.
    let t2 = t1 + Duration::from_millis(200);
    c.handle_packet(t2, &payloads[1]);
    let (sent, events) = drain(&mut c, t2);
    assert!(sent.is_empty());
    assert_eq!(events, vec![Event::Bound]);
    assert_eq!(c.metrics().accepted, 2);
    let held = c.held().unwrap();
    let l = &held.lease;
    assert_eq!(l.client_ip, Ipv4Addr::new(85, 195, 207, 62));
    assert_eq!(l.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 128)));
    assert_eq!(l.default_router(), Some(Ipv4Addr::new(85, 195, 207, 1)));
    assert_eq!(l.dns, vec![Ipv4Addr::new(77, 109, 128, 2), Ipv4Addr::new(213, 144, 129, 20)]);
    assert_eq!(l.server_id, Some(Ipv4Addr::new(213, 144, 129, 5)));
    assert_eq!(l.times.lease, secs(1608));
    assert_eq!(held.ack, payloads[1], "the ACK is kept as received");
    // RFC 2131 §4.4.1: times count from when the REQUEST was sent.
    assert_eq!(c.poll_at(), Some(t1 + secs(804)), "renewal at half of 1608 s");
    let perm = l.to_perm(std::time::SystemTime::UNIX_EPOCH);
    assert_eq!(perm.prefix_len(), 25);
    assert_eq!(perm.renew_after.unwrap().secs, 804);
    assert_eq!(perm.valid_until.secs, 1608);

    // At T1 the renewal goes by unicast to the ACK's server.
    let (sent, _) = drain(&mut c, t1 + secs(804));
    assert_eq!(sent[0].kind, Outgoing::RequestRenewing);
    assert_eq!(
        sent[0].destination,
        Destination::Unicast { source: Ipv4Addr::new(85, 195, 207, 62), server: Ipv4Addr::new(213, 144, 129, 5) }
    );
}

#[test]
fn renews_by_unicast_at_t1() {
    let t0 = runtime::clock::now();
    let mut c = bound(3600, t0);
    assert_eq!(c.poll_at(), Some(t0 + secs(1800)));
    assert!(drain(&mut c, t0 + secs(1799)).0.is_empty(), "nothing before T1");
    let (sent, _) = drain(&mut c, t0 + secs(1800));
    assert_eq!(c.state(), StateName::Renewing);
    assert_eq!(sent.len(), 1);
    let t = &sent[0];
    assert_eq!(
        (t.kind, t.destination),
        (Outgoing::RequestRenewing, Destination::Unicast { source: ADDR, server: SERVER })
    );
    let m = decoded(t);
    assert_eq!(message_type(&m), Some(MessageType::Request));
    assert_eq!(m.ciaddr(), ADDR, "RENEWING: ciaddr set");
    assert_eq!(option_ip(&m, OptionCode::RequestedIpAddress), None, "RENEWING: no option 50");
    assert_eq!(option_ip(&m, OptionCode::ServerIdentifier), None, "RENEWING: no option 54");
    assert_ne!(m.xid(), 0xaa, "a new transaction");

    let renewed_at = t0 + secs(1801);
    c.handle_packet(renewed_at, &reply(MessageType::Ack, m.xid(), ADDR, 3600, SERVER));
    let (_, events) = drain(&mut c, renewed_at);
    assert_eq!(events, vec![Event::Renewed { via: StateName::Renewing }]);
    assert_eq!(c.state(), StateName::Bound);
    // The new lease counts from the renewal's REQUEST.
    assert_eq!(c.poll_at(), Some(t0 + secs(1800) + secs(1800)));
    assert_eq!(c.held().unwrap().expires_at, Some(t0 + secs(1800) + secs(3600)));
}

#[test]
fn rebinds_by_broadcast_at_t2_after_unanswered_renewals() {
    let t0 = runtime::clock::now();
    let mut c = bound(3600, t0);
    let t1 = t0 + secs(1800);
    let t2 = t0 + secs(3150);
    let (sent, _) = drain(&mut c, t1);
    assert_eq!(sent[0].kind, Outgoing::RequestRenewing);
    // RFC 2131 §4.4.5: next try after half the time left until T2 (675 s).
    assert_eq!(c.poll_at(), Some(t1 + secs(675)));
    let mut now = t1;
    let mut renewals = 1;
    while let Some(at) = c.poll_at().filter(|at| *at < t2) {
        now = at;
        let (sent, _) = drain(&mut c, now);
        assert!(sent.iter().all(|t| t.kind == Outgoing::RequestRenewing));
        renewals += sent.len();
        if let Some(next) = c.poll_at().filter(|n| *n < t2) {
            assert!(next - now >= MIN_RENEW_RETRANSMIT, "at least 60 s apart");
        }
    }
    assert!(renewals >= 3, "{renewals} renewals before T2");
    assert!(now < t2);
    assert_eq!(c.poll_at(), Some(t2));
    let (sent, _) = drain(&mut c, t2);
    assert_eq!(c.state(), StateName::Rebinding);
    let t = &sent[0];
    assert_eq!((t.kind, t.destination), (Outgoing::RequestRebinding, Destination::Broadcast { source: ADDR }));
    let m = decoded(t);
    assert_eq!(m.ciaddr(), ADDR);
    assert_eq!(option_ip(&m, OptionCode::ServerIdentifier), None, "REBINDING: no option 54");
    assert_eq!(option_ip(&m, OptionCode::RequestedIpAddress), None, "REBINDING: no option 50");
    // Half of the 450 s left on the lease.
    assert_eq!(c.poll_at(), Some(t2 + secs(225)));

    // Any server may answer a rebind, under its own identifier.
    let other = Ipv4Addr::new(192, 0, 2, 2);
    c.handle_packet(t2 + secs(1), &reply(MessageType::Ack, m.xid(), ADDR, 3600, other));
    let (_, events) = drain(&mut c, t2 + secs(1));
    assert_eq!(events, vec![Event::Renewed { via: StateName::Rebinding }]);
    assert_eq!(c.held().unwrap().lease.server_id, Some(other));
}

#[test]
fn keeps_config_after_expiry_and_discovers_again() {
    let t0 = runtime::clock::now();
    let mut c = bound(600, t0);
    let expiry = t0 + secs(600);
    let mut kinds = Vec::new();
    while let Some(at) = c.poll_at().filter(|at| *at < expiry) {
        kinds.extend(drain(&mut c, at).0.into_iter().map(|t| t.kind));
    }
    assert!(kinds.contains(&Outgoing::RequestRenewing) && kinds.contains(&Outgoing::RequestRebinding), "{kinds:?}");
    assert_eq!(c.poll_at(), Some(expiry));
    let (sent, events) = drain(&mut c, expiry);
    assert_eq!(events, vec![Event::Expired]);
    // Still holding the lease: its configuration stays in place.
    let held = c.held().unwrap();
    assert!(held.expired && !c.has_valid_lease());
    assert_eq!(held.lease.client_ip, ADDR);
    // Discovering again, asking for the same address.
    assert_eq!(c.state(), StateName::Selecting);
    let m = decoded(&sent[0]);
    assert_eq!(message_type(&m), Some(MessageType::Discover));
    assert_eq!(option_ip(&m, OptionCode::RequestedIpAddress), Some(ADDR));
    // Nobody answers: DISCOVERs back off and the lease is never dropped.
    let mut last = expiry;
    for _ in 0..10 {
        let at = c.poll_at().unwrap();
        assert!(at - last <= MAX_RETRANSMIT + secs(1));
        let (sent, events) = drain(&mut c, at);
        assert!(events.is_empty() && sent.len() == 1 && sent[0].kind == Outgoing::Discover);
        last = at;
    }
    assert_eq!(c.held().unwrap().lease.client_ip, ADDR);
}

#[test]
fn nak_restarts_from_init_and_repeated_naks_back_off() {
    let t0 = runtime::clock::now();
    let mut c = bound(3600, t0);
    let (sent, _) = drain(&mut c, t0 + secs(1800));
    let xid = decoded(&sent[0]).xid();
    let now = t0 + secs(1801);
    let mut nak = reply_with(MessageType::Nak, xid, Ipv4Addr::UNSPECIFIED, SERVER, vec![]);
    // Option 56 with a control character, which must not reach our logs.
    nak.pop();
    nak.extend_from_slice(&[56, 6, b'g', b'o', 0x1b, b'n', b'e', b'!', 255]);
    c.handle_packet(now, &nak);
    let (sent, events) = drain(&mut c, now);
    assert_eq!(events, vec![Event::Lost { address: ADDR, server: Some(SERVER), message: Some("gone!".into()) }]);
    assert!(c.held().is_none(), "a refused address is not asked for again");
    assert_eq!(sent.len(), 1, "straight back to discovering");
    let discover = decoded(&sent[0]);
    assert_eq!(message_type(&discover), Some(MessageType::Discover));
    assert_eq!(option_ip(&discover, OptionCode::RequestedIpAddress), None);

    // OFFER, REQUEST, NAK again: now INIT waits before discovering.
    let xid = discover.xid();
    c.handle_packet(now, &reply(MessageType::Offer, xid, ADDR, 3600, SERVER));
    drain(&mut c, now);
    c.handle_packet(now, &reply_with(MessageType::Nak, xid, Ipv4Addr::UNSPECIFIED, SERVER, vec![]));
    let (sent, events) = drain(&mut c, now);
    assert!(sent.is_empty() && events.is_empty(), "no lease was held, so none is lost");
    assert_eq!(c.state(), StateName::Init);
    assert_eq!(c.poll_at(), Some(now + FIRST_RETRANSMIT));
}

#[test]
fn retransmits_discover_with_exponential_backoff_within_the_jitter_bounds() {
    for (jitter, expected) in
        [(1000, [5, 9, 17, 33, 65, 65]), (-1000, [3, 7, 15, 31, 63, 63]), (0, [4, 8, 16, 32, 64, 64])]
    {
        let t0 = runtime::clock::now();
        let mut c = Client::new(identity(MAC), rng(&[], jitter), t0);
        let mut now = t0;
        let mut delays = Vec::new();
        let mut secs_field = Vec::new();
        let mut xids = Vec::new();
        for _ in 0..=expected.len() {
            let (sent, _) = drain(&mut c, now);
            assert_eq!(sent.len(), 1);
            let m = decoded(&sent[0]);
            secs_field.push(m.secs());
            xids.push(m.xid());
            let next = c.poll_at().unwrap();
            delays.push((next - now).as_secs());
            now = next;
        }
        assert_eq!(delays[..expected.len()], expected, "jitter {jitter}");
        assert!(xids.iter().all(|x| *x == xids[0]), "retransmissions keep the xid");
        assert_eq!(secs_field[1], u16::try_from(expected[0]).unwrap(), "secs counts from the first DISCOVER");
    }
    // Whatever the source says, the jitter stays within ±1 s.
    let mut wild = rng(&[], 50_000);
    assert_eq!(retransmit_delay(0, &mut wild), secs(5));
    let mut wild = rng(&[], -50_000);
    assert_eq!(retransmit_delay(9, &mut wild), secs(63));
}

#[test]
fn requesting_gives_up_after_five_requests_and_discovers_again() {
    let t0 = runtime::clock::now();
    let mut c = Client::new(identity(MAC), rng(&[0xaa, 0xbb], 0), t0);
    let (first, _) = drain(&mut c, t0);
    let discover_secs = decoded(&first[0]).secs();
    c.handle_packet(t0, &reply(MessageType::Offer, 0xaa, ADDR, 600, SERVER));
    let mut now = t0;
    let mut requests = 0;
    loop {
        let (sent, _) = drain(&mut c, now);
        match sent.first().map(|t| t.kind) {
            Some(Outgoing::RequestSelecting) => {
                let m = decoded(&sent[0]);
                assert_eq!((m.xid(), m.secs()), (0xaa, discover_secs), "the OFFER's xid, the DISCOVER's secs");
                requests += 1;
            }
            Some(Outgoing::Discover) => break,
            other => panic!("{other:?}"),
        }
        now = c.poll_at().unwrap();
    }
    assert_eq!(requests, MAX_SELECTING_REQUESTS);
    assert_eq!(now - t0, secs(4 + 8 + 16 + 32 + 64));
    assert_eq!(c.xid(), Some(0xbb), "a new transaction");
}

#[test]
fn init_reboot_verifies_the_stored_ack_with_50_and_without_54() {
    let t0 = runtime::clock::now();
    let ack = reply(MessageType::Ack, 0x77, ADDR, 3600, SERVER);
    let mut c = Client::restore(identity(MAC), rng(&[0xcc], 0), t0, ack.clone(), Some(secs(1000))).unwrap();
    assert_eq!(c.state(), StateName::InitReboot);
    assert!(c.has_valid_lease());
    let (sent, events) = drain(&mut c, t0);
    assert!(events.is_empty(), "restoring announces nothing: the configuration is in place already");
    let t = &sent[0];
    assert_eq!(
        (t.kind, t.destination),
        (Outgoing::RequestInitReboot, Destination::Broadcast { source: Ipv4Addr::UNSPECIFIED })
    );
    let m = decoded(t);
    assert_eq!((m.xid(), m.ciaddr()), (0xcc, Ipv4Addr::UNSPECIFIED));
    assert_eq!(option_ip(&m, OptionCode::RequestedIpAddress), Some(ADDR));
    assert_eq!(option_ip(&m, OptionCode::ServerIdentifier), None);
    c.handle_packet(t0 + secs(1), &reply(MessageType::Ack, 0xcc, ADDR, 3600, SERVER));
    let (_, events) = drain(&mut c, t0 + secs(1));
    assert_eq!(events, vec![Event::Renewed { via: StateName::InitReboot }]);
    assert_eq!(c.poll_at(), Some(t0 + secs(1800)));
}

#[test]
fn unanswered_init_reboot_falls_back_to_discover_keeping_the_config() {
    let t0 = runtime::clock::now();
    let ack = reply(MessageType::Ack, 0x77, ADDR, 3600, SERVER);
    // Expired by the wall clock: INIT-REBOOT is still tried first.
    let mut c = Client::restore(identity(MAC), rng(&[], 0), t0, ack, None).unwrap();
    assert!(!c.has_valid_lease());
    let mut now = t0;
    let mut reboots = 0;
    loop {
        let (sent, events) = drain(&mut c, now);
        assert!(events.is_empty(), "{events:?}");
        match sent[0].kind {
            Outgoing::RequestInitReboot => reboots += 1,
            Outgoing::Discover => {
                assert_eq!(option_ip(&decoded(&sent[0]), OptionCode::RequestedIpAddress), Some(ADDR));
                break;
            }
            other => panic!("{other:?}"),
        }
        now = c.poll_at().unwrap();
    }
    assert_eq!(reboots, MAX_INIT_REBOOT_REQUESTS);
    assert_eq!(now - t0, secs(4 + 8 + 16));
    assert_eq!(c.held().unwrap().lease.client_ip, ADDR, "the configuration stays");
}

#[test]
fn a_restored_lease_expires_on_time_while_no_server_answers() {
    let t0 = runtime::clock::now();
    let ack = reply(MessageType::Ack, 0x77, ADDR, 3600, SERVER);
    // The wall clock claims more than the lease could hold: capped at its length.
    let c = Client::restore(identity(MAC), rng(&[], 0), t0, ack.clone(), Some(secs(99_999))).unwrap();
    assert_eq!(c.held().unwrap().expires_at, Some(t0 + secs(3600)));
    let mut c = Client::restore(identity(MAC), rng(&[], 0), t0, ack, Some(secs(40))).unwrap();
    let mut seen = Vec::new();
    let mut now = t0;
    while now < t0 + secs(60) {
        let (_, events) = drain(&mut c, now);
        seen.extend(events.into_iter().map(|e| (now - t0, e)));
        now = c.poll_at().unwrap();
    }
    assert_eq!(seen, vec![(secs(40), Event::Expired)]);
    assert_eq!(c.state(), StateName::Selecting);
}

#[test]
fn restore_rejects_what_is_not_a_stored_ack() {
    let t0 = runtime::clock::now();
    let offer = reply(MessageType::Offer, 1, ADDR, 60, SERVER);
    let restore = |b: Vec<u8>| Client::restore(identity(MAC), rng(&[], 0), t0, b, None).map(|_| ());
    assert_eq!(restore(offer), Err(RestoreError::NotAnAck));
    assert!(matches!(restore(vec![2; 10]), Err(RestoreError::Malformed(_))));
    assert_eq!(restore(reply(MessageType::Ack, 1, Ipv4Addr::UNSPECIFIED, 60, SERVER)), Err(RestoreError::NoAddress));
    let mut request = reply(MessageType::Ack, 1, ADDR, 60, SERVER);
    request[0] = 1;
    assert!(matches!(restore(request), Err(RestoreError::Malformed(_))));
}

#[test]
fn malformed_and_foreign_packets_are_dropped_and_counted() {
    let t0 = runtime::clock::now();
    let mut c = Client::new(identity(MAC), rng(&[0xaa], 0), t0);
    drain(&mut c, t0);
    let good_offer = reply(MessageType::Offer, 0xaa, ADDR, 600, SERVER);

    let mut foreign = good_offer.clone();
    foreign[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    let mut truncated_options = good_offer.clone();
    truncated_options.truncate(good_offer.len() - 3);
    truncated_options.extend_from_slice(&[6, 8, 1, 2]);
    let mut bootrequest = good_offer.clone();
    bootrequest[0] = 1;
    let mut no_server_id = Message::decode(&mut Decoder::new(&good_offer)).unwrap();
    no_server_id.opts_mut().remove(OptionCode::ServerIdentifier);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (reply(MessageType::Offer, 0xab, ADDR, 600, SERVER), DropReason::WrongXid),
        (foreign, DropReason::ForeignChaddr),
        (truncated_options, DropReason::MalformedOptions),
        (good_offer[..100].to_vec(), DropReason::Truncated),
        (Vec::new(), DropReason::Truncated),
        (bootrequest, DropReason::NotBootReply),
        (reply(MessageType::Ack, 0xaa, ADDR, 600, SERVER), DropReason::UnexpectedType),
        (no_server_id.to_vec().unwrap(), DropReason::InvalidOffer),
        (reply(MessageType::Offer, 0xaa, Ipv4Addr::BROADCAST, 600, SERVER), DropReason::InvalidOffer),
    ];
    for (bytes, reason) in &cases {
        let before = c.metrics().dropped(*reason);
        c.handle_packet(t0, bytes);
        assert_eq!(c.metrics().dropped(*reason), before + 1, "{reason:?}");
        assert_eq!(c.state(), StateName::Selecting, "{reason:?} changed the state");
    }
    assert_eq!(c.metrics().dropped_total(), cases.len() as u64);
    assert_eq!(c.metrics().accepted, 0);

    // An ACK with no usable address while requesting.
    c.handle_packet(t0, &good_offer);
    drain(&mut c, t0);
    c.handle_packet(t0, &reply(MessageType::Ack, 0xaa, Ipv4Addr::UNSPECIFIED, 600, SERVER));
    assert_eq!((c.metrics().dropped(DropReason::InvalidAck), c.state()), (1, StateName::Requesting));

    // Bound: no transaction is open, so even a perfect ACK is not waited for.
    let mut b = bound(600, t0);
    b.handle_packet(t0, &reply(MessageType::Ack, 0xaa, ADDR, 600, SERVER));
    assert_eq!((b.metrics().dropped(DropReason::NotWaiting), b.state()), (1, StateName::Bound));
}

#[test]
fn renew_command_renews_now_and_restarts_backoff() {
    let t0 = runtime::clock::now();
    let mut c = bound(3600, t0);
    let now = t0 + secs(10);
    c.renew_now(now);
    let (sent, _) = drain(&mut c, now);
    assert_eq!(sent[0].kind, Outgoing::RequestRenewing);
    // T2 is unchanged by an early renewal.
    let mut d = Client::new(identity(MAC), rng(&[], 0), t0);
    drain(&mut d, t0);
    let later = t0 + secs(1);
    d.renew_now(later);
    let (sent, _) = drain(&mut d, later);
    assert_eq!(sent[0].kind, Outgoing::Discover);
    assert_eq!(d.poll_at(), Some(later + FIRST_RETRANSMIT));
}

#[test]
fn release_is_unicast_with_ciaddr_and_the_server_id() {
    let t0 = runtime::clock::now();
    let c = bound(3600, t0);
    let t = c.release().unwrap();
    assert_eq!((t.kind, t.destination), (Outgoing::Release, Destination::Unicast { source: ADDR, server: SERVER }));
    let m = decoded(&t);
    assert_eq!((message_type(&m), m.ciaddr()), (Some(MessageType::Release), ADDR));
    assert_eq!(option_ip(&m, OptionCode::ServerIdentifier), Some(SERVER));
    assert!(Client::new(identity(MAC), rng(&[], 0), t0).release().is_none(), "nothing to release");
}

#[test]
fn a_renewal_with_another_address_is_a_new_binding() {
    let t0 = runtime::clock::now();
    let mut c = bound(3600, t0);
    let (sent, _) = drain(&mut c, t0 + secs(1800));
    let other = Ipv4Addr::new(192, 0, 2, 77);
    c.handle_packet(t0 + secs(1800), &reply(MessageType::Ack, decoded(&sent[0]).xid(), other, 3600, SERVER));
    let (_, events) = drain(&mut c, t0 + secs(1800));
    assert_eq!(events, vec![Event::Bound]);
    assert_eq!(c.held().unwrap().lease.client_ip, other);
}

#[test]
fn a_zero_lease_does_not_make_the_client_spin() {
    let t0 = runtime::clock::now();
    let mut c = bound(0, t0);
    let mut now = t0;
    let mut sends = 0;
    // Over ten minutes of a server granting 0 s leases and answering at once.
    while now < t0 + secs(600) {
        now = c.poll_at().unwrap();
        let (sent, _) = drain(&mut c, now);
        for t in sent {
            sends += 1;
            c.handle_packet(now, &reply(MessageType::Ack, t.xid, ADDR, 0, SERVER));
            drain(&mut c, now);
        }
    }
    assert!(sends <= 600 / 5 + 1, "{sends} renewals in 10 min");
}

#[test]
fn a_new_mac_verifies_the_lease_under_the_new_identity() {
    let t0 = runtime::clock::now();
    let mut c = bound(3600, t0);
    let mac = [2, 0, 0, 0, 0, 0x42];
    c.set_identity(t0 + secs(5), identity(mac));
    let (sent, _) = drain(&mut c, t0 + secs(5));
    let m = decoded(&sent[0]);
    assert_eq!((sent[0].kind, m.chaddr()), (Outgoing::RequestInitReboot, &mac[..]));
    assert_eq!(option_ip(&m, OptionCode::RequestedIpAddress), Some(ADDR));
}

/// The UDP payloads of one of our own captures (`captures/`), with their
/// times relative to the first packet.
fn our_capture(name: &str) -> Vec<(Duration, Vec<u8>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../captures").join(name);
    let capture = runtime::pcap::parse(&std::fs::read(&path).unwrap()).unwrap();
    let t0 = capture.packets[0].timestamp_ns;
    capture
        .packets
        .iter()
        .map(|p| {
            let udp = runtime::frame::parse_udp4_ethernet(&p.data).unwrap();
            (Duration::from_nanos(p.timestamp_ns - t0), udp.payload.to_vec())
        })
        .collect()
}

/// Replays a capture of this client against a real server: given the same
/// xids, hostname and times, the core sends exactly the bytes it sent then,
/// and takes the server's answers the same way.
fn replay(name: &str, t1: u64, lease: u32) {
    let packets = our_capture(name);
    let kinds: Vec<MessageType> =
        packets.iter().map(|(_, p)| message_type(&Message::decode(&mut Decoder::new(p)).unwrap()).unwrap()).collect();
    use MessageType::{Ack, Discover, Offer, Release, Request};
    assert_eq!(kinds, [Discover, Offer, Request, Ack, Request, Ack, Release], "{name}");
    let xid = |i: usize| Message::decode(&mut Decoder::new(&packets[i].1)).unwrap().xid();
    let t0 = runtime::clock::now();
    // The machine that recorded them is called "vm".
    let mut c = Client::new(Identity::new(MAC, Some("vm")), rng(&[xid(0), xid(4), xid(6)], 0), t0);
    let (sent, _) = drain(&mut c, t0);
    assert_eq!(sent[0].payload, packets[0].1, "{name}: DISCOVER");
    let at = |i: usize| t0 + packets[i].0;
    c.handle_packet(at(1), &packets[1].1);
    let (sent, _) = drain(&mut c, at(1));
    assert_eq!(sent[0].payload, packets[2].1, "{name}: REQUEST");
    c.handle_packet(at(3), &packets[3].1);
    assert_eq!(drain(&mut c, at(3)).1, vec![Event::Bound], "{name}");
    let lease_of = |c: &Client<Fixed>| c.held().unwrap().lease.clone();
    assert_eq!(lease_of(&c).times.lease, secs(u64::from(lease)));
    // T1 counts from the REQUEST; the recording's renewal came then too.
    let renew_at = at(1) + secs(t1);
    assert_eq!(c.poll_at(), Some(renew_at));
    assert!(packets[4].0 >= packets[1].0 + secs(t1), "{name}: the recorded renewal came at T1");
    let (sent, _) = drain(&mut c, renew_at);
    assert_eq!(sent[0].payload, packets[4].1, "{name}: unicast REQUEST");
    assert_eq!(sent[0].kind, Outgoing::RequestRenewing);
    c.handle_packet(at(5), &packets[5].1);
    assert_eq!(drain(&mut c, at(5)).1, vec![Event::Renewed { via: StateName::Renewing }], "{name}");
    assert_eq!(c.metrics().accepted, 3);
    assert_eq!(c.release().unwrap().payload, packets[6].1, "{name}: RELEASE");
}

#[test]
fn replays_our_dnsmasq_capture_byte_for_byte() {
    replay("dhcp4-client-dnsmasq.pcapng", 6, 120);
    let packets = our_capture("dhcp4-client-dnsmasq.pcapng");
    let lease = Lease::from_ack(&Message::decode(&mut Decoder::new(&packets[3].1)).unwrap()).unwrap();
    // dnsmasq sent option 121 with a default route, and option 3: 121 wins.
    assert_eq!(lease.classless_routes.len(), 2);
    assert_eq!(lease.default_router(), Some(Ipv4Addr::new(192, 168, 77, 1)));
    assert_eq!((lease.mtu, lease.domain_name.as_deref()), (Some(1492), Some("isp.example")));
}

#[test]
fn replays_our_kea_capture_byte_for_byte() {
    replay("dhcp4-client-kea.pcapng", 5, 20);
}
