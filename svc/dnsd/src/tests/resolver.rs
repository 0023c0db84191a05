//! Forwarding, caching (positive and negative, RFC 2308), failover, TCP retry,
//! anti-spoofing and failure handling, each as a conversation under a fake clock.

use std::net::{Ipv4Addr, SocketAddr};

use simple_dns::{PacketFlag, RCODE};

use super::{CLIENT, Harness, UP1, UP2, a_records, at, nxdomain, parse, query, reply_to, udp_client, with_a, with_soa};
use crate::metrics::{AnswerSource, Discard};
use crate::resolver::{ClientAddr, Handled, Transmit, Tunables};
use crate::wire::{self, Header, flag, rcode, rtype};

const IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

fn up(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Asks `name` at `ms` and expects one upstream query; returns it.
fn forwarded(h: &mut Harness, ms: u64, client: ClientAddr, msg: &[u8]) -> (u8, SocketAddr, Vec<u8>) {
    let (handled, _) = h.ask(at(ms), client, msg);
    assert_eq!(handled, Handled::Pending);
    let mut sent = h.upstream_queries();
    assert_eq!(sent.len(), 1, "one upstream query");
    sent.remove(0)
}

fn only_answer(h: &mut Harness) -> (ClientAddr, Vec<u8>) {
    let mut answers = h.client_answers();
    assert_eq!(answers.len(), 1, "one answer");
    answers.remove(0)
}

#[test]
fn forwards_a_miss_then_answers_from_the_cache_with_decremented_ttls() {
    let mut h = Harness::new(&[UP1]);
    let client = udp_client(40000);
    let (slot, to, upq) = forwarded(&mut h, 0, client, &query(0x1111, "WWW.Example.com", rtype::A, None));
    assert_eq!(to, up(UP1));
    let p = parse(&upq);
    assert!(p.has_flags(PacketFlag::RECURSION_DESIRED) && !p.has_flags(PacketFlag::RESPONSE));
    assert_eq!(p.questions[0].qname.to_string(), "www.example.com");
    assert!(p.opt().is_some_and(|o| o.udp_packet_size == wire::EDNS_UDP_SIZE), "we ask with EDNS");

    h.r.on_upstream_udp(at(30), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 300)));
    let (to_client, answer) = only_answer(&mut h);
    assert_eq!(to_client, client);
    let p = parse(&answer);
    assert_eq!(p.id(), 0x1111);
    assert_eq!(p.questions[0].qname.to_string(), "WWW.Example.com", "the client's spelling");
    assert!(p.opt().is_none(), "no OPT for a client that sent none");
    assert_eq!(a_records(&p), [(IP, 300)]);

    // 100 s later: from the cache, TTL 200, nothing sent upstream.
    let answer = h.answer(at(100_030), &query(0x2222, "www.example.COM", rtype::A, Some((4096, false))));
    assert!(h.transmits().is_empty());
    let p = parse(&answer);
    assert_eq!((p.id(), a_records(&p)), (0x2222, vec![(IP, 200)]));
    assert_eq!(p.questions[0].qname.to_string(), "www.example.COM");
    assert_eq!(p.opt().map(|o| o.udp_packet_size), Some(wire::EDNS_UDP_SIZE), "OPT for an EDNS client");
    assert!(p.has_flags(PacketFlag::RECURSION_AVAILABLE | PacketFlag::RECURSION_DESIRED | PacketFlag::RESPONSE));
    assert!(!p.has_flags(PacketFlag::AUTHORITATIVE_ANSWER));
    assert_eq!(h.metrics.cache_hits.get(), 1);

    // A different type or the DO bit is another key.
    forwarded(&mut h, 100_030, client, &query(3, "www.example.com", rtype::AAAA, None));
    forwarded(&mut h, 100_030, client, &query(4, "www.example.com", rtype::A, Some((1232, true))));
    // At the end of the TTL the entry is gone: asked again.
    forwarded(&mut h, 300_030, client, &query(5, "www.example.com", rtype::A, None));
}

#[test]
fn negative_answers_are_cached_for_the_soa_minimum() {
    let mut h = Harness::new(&[UP1]);
    let c = udp_client(1);
    // NXDOMAIN: SOA TTL 3600, MINIMUM 60 → cached 60 s (RFC 2308 §5).
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(1, "nx.example", rtype::A, None));
    h.r.on_upstream_udp(
        at(10),
        slot,
        to,
        &reply_to(&upq, |p, _| {
            nxdomain(p);
            with_soa(p, "example", 3600, 60);
        }),
    );
    let (_, answer) = only_answer(&mut h);
    let p = parse(&answer);
    assert_eq!((p.rcode(), p.name_servers.len()), (RCODE::NameError, 1));
    assert_eq!(p.name_servers[0].ttl, 60, "the SOA's TTL is the negative TTL");
    let answer = h.answer(at(59_010), &query(2, "nx.example", rtype::A, None));
    let p = parse(&answer);
    assert_eq!((p.rcode(), p.name_servers[0].ttl), (RCODE::NameError, 1));
    forwarded(&mut h, 60_010, c, &query(3, "nx.example", rtype::A, None));

    // NODATA: NOERROR, no answer, SOA with TTL 30 < MINIMUM 300 → 30 s.
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(4, "nodata.example", rtype::AAAA, None));
    h.r.on_upstream_udp(at(5), slot, to, &reply_to(&upq, |p, _| with_soa(p, "example", 30, 300)));
    only_answer(&mut h);
    let answer = h.answer(at(29_000), &query(5, "nodata.example", rtype::AAAA, None));
    let p = parse(&answer);
    assert_eq!((p.rcode(), p.answers.len()), (RCODE::NoError, 0));
    forwarded(&mut h, 30_005, c, &query(6, "nodata.example", rtype::AAAA, None));

    // Without a SOA a negative answer is not cached (RFC 2308 §5).
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(7, "bare.example", rtype::A, None));
    h.r.on_upstream_udp(at(5), slot, to, &reply_to(&upq, |p, _| nxdomain(p)));
    only_answer(&mut h);
    forwarded(&mut h, 10, c, &query(8, "bare.example", rtype::A, None));
}

#[test]
fn ttls_are_capped_and_rrsets_served_with_their_minimum() {
    let mut h = Harness::new(&[UP1]);
    let c = udp_client(1);
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(1, "multi.example", rtype::A, None));
    h.r.on_upstream_udp(
        at(0),
        slot,
        to,
        &reply_to(&upq, |p, n| {
            with_a(p, n.clone(), Ipv4Addr::new(192, 0, 2, 1), 100);
            with_a(p, n, Ipv4Addr::new(192, 0, 2, 2), 50);
        }),
    );
    let (_, answer) = only_answer(&mut h);
    let ttls: Vec<u32> = a_records(&parse(&answer)).into_iter().map(|(_, t)| t).collect();
    assert_eq!(ttls, [50, 50], "RFC 2181 §5.2");

    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(2, "long.example", rtype::A, None));
    h.r.on_upstream_udp(at(0), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 7 * 86_400)));
    let (_, answer) = only_answer(&mut h);
    assert_eq!(a_records(&parse(&answer)), [(IP, 86_400)], "at most a day");
    // A TTL with the top bit set means zero (RFC 2181 §8): served, not cached.
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(3, "neg.example", rtype::A, None));
    h.r.on_upstream_udp(at(0), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 0x8000_0001)));
    let (_, answer) = only_answer(&mut h);
    assert_eq!(a_records(&parse(&answer)), [(IP, 0)]);
    forwarded(&mut h, 1, c, &query(4, "neg.example", rtype::A, None));
}

#[test]
fn replies_must_match_socket_address_id_and_question() {
    let mut h = Harness::new(&[UP1]);
    let c = udp_client(1);
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(1, "bank.example", rtype::A, None));
    let good = reply_to(&upq, |p, n| with_a(p, n, IP, 60));
    let other_slot = (slot + 1) % h.r.udp_slots();

    // Wrong source address, wrong port, wrong socket, wrong ID: not ours.
    h.r.on_upstream_udp(at(1), slot, up("192.0.2.66:53"), &good);
    h.r.on_upstream_udp(at(1), slot, up("192.0.2.1:5353"), &good);
    h.r.on_upstream_udp(at(1), other_slot, to, &good);
    let mut wrong_id = good.clone();
    wrong_id[0] ^= 0xff;
    h.r.on_upstream_udp(at(1), slot, to, &wrong_id);
    assert_eq!(h.metrics.dropped(Discard::UpstreamUnexpected), 4);
    // Right ID, another question (a spoofer who guessed the ID): dropped.
    let spoof_q = {
        let mut q = query(0, "evil.example", rtype::A, None);
        q[..2].copy_from_slice(&upq[..2]);
        q
    };
    h.r.on_upstream_udp(at(1), slot, to, &reply_to(&spoof_q, |p, n| with_a(p, n, Ipv4Addr::new(6, 6, 6, 6), 60)));
    // Same name, other type.
    let mut other_type = good.clone();
    let qt = 12 + "bank.example".len() + 2;
    other_type[qt..qt + 2].copy_from_slice(&rtype::AAAA.to_be_bytes());
    h.r.on_upstream_udp(at(1), slot, to, &other_type);
    // A query (QR clear) with the right ID.
    let mut not_reply = upq.clone();
    not_reply[2] &= 0x7f;
    h.r.on_upstream_udp(at(1), slot, to, &not_reply);
    assert_eq!(h.metrics.dropped(Discard::UpstreamMismatch), 2);
    assert!(h.client_answers().is_empty(), "nothing reached the client");

    // The real answer still gets through, once.
    h.r.on_upstream_udp(at(2), slot, to, &good);
    let (_, answer) = only_answer(&mut h);
    assert_eq!(a_records(&parse(&answer)), [(IP, 60)]);
    h.r.on_upstream_udp(at(3), slot, to, &good);
    assert!(h.client_answers().is_empty());
    assert_eq!(h.metrics.dropped(Discard::UpstreamUnexpected), 6);
}

#[test]
fn query_ids_and_sockets_are_random() {
    let mut h = Harness::new(&[UP1]);
    let mut ids = std::collections::HashSet::new();
    let mut slots = std::collections::HashSet::new();
    for i in 0..64u16 {
        let (slot, _, upq) = forwarded(&mut h, 0, udp_client(1), &query(i, &format!("n{i}.example"), rtype::A, None));
        ids.insert(Header::parse(&upq).unwrap().id);
        slots.insert(slot);
    }
    assert!(ids.len() >= 62, "IDs repeat too often: {}", ids.len());
    assert!(!ids.iter().copied().eq(0..64), "not sequential");
    assert_eq!(slots.len(), usize::from(h.r.udp_slots()), "every socket is used");
}

#[test]
fn fails_over_when_the_first_upstream_times_out_and_remembers_it() {
    let mut h = Harness::new(&[UP1, UP2]);
    let c = udp_client(1);
    let (_, to, _) = forwarded(&mut h, 0, c, &query(1, "a.example", rtype::A, None));
    assert_eq!(to, up(UP1));
    h.tick(at(999));
    assert!(h.upstream_queries().is_empty());
    h.tick(at(1000));
    let sent = h.upstream_queries();
    assert_eq!(sent.len(), 1);
    let (slot, to, upq) = sent[0].clone();
    assert_eq!(to, up(UP2), "after the 1 s try timeout");
    h.r.on_upstream_udp(at(1020), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 60)));
    let (_, answer) = only_answer(&mut h);
    assert_eq!(a_records(&parse(&answer)), [(IP, 60)]);
    let status = h.r.upstream_status(at(1020));
    assert!(!status[0].up && status[1].up, "{status:?}");
    // The next query goes to the live upstream first.
    let (_, to, _) = forwarded(&mut h, 1100, c, &query(2, "b.example", rtype::A, None));
    assert_eq!(to, up(UP2));
}

#[test]
fn a_late_answer_from_an_earlier_try_still_counts() {
    let mut h = Harness::new(&[UP1, UP2]);
    let (slot, to, upq) = forwarded(&mut h, 0, udp_client(1), &query(1, "slow.example", rtype::A, None));
    h.tick(at(1000));
    assert_eq!(h.upstream_queries().len(), 1, "UP2 asked");
    h.r.on_upstream_udp(at(1200), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 60)));
    only_answer(&mut h);
    assert!(h.r.upstream_status(at(1200))[0].up, "an answer brings it back up");
    assert_eq!(h.r.pending(), 0);
}

#[test]
fn servfail_quickly_when_every_upstream_is_dead() {
    let mut h = Harness::new(&[UP1, UP2]);
    let c = udp_client(1);
    forwarded(&mut h, 0, c, &query(7, "dead.example", rtype::A, Some((1232, false))));
    let mut ms = 0;
    let mut tries = 1;
    let answer = loop {
        ms += 10;
        h.tick(at(ms));
        let mut answer = None;
        for t in h.transmits() {
            match t {
                Transmit::UpstreamUdp { .. } => tries += 1,
                Transmit::Client { msg, .. } => answer = Some(msg),
                _ => {}
            }
        }
        if let Some(a) = answer {
            break a;
        }
        assert!(ms < 3000, "no answer within 3 s");
    };
    assert_eq!(ms, 2500, "the query budget");
    assert!(tries >= 2, "both upstreams were tried");
    let p = parse(&answer);
    assert_eq!((p.id(), p.rcode()), (7, RCODE::ServerFailure));
    assert_eq!(p.questions.len(), 1);
    assert!(p.opt().is_some());
    // Everything is down now: the next query fails within a second.
    forwarded(&mut h, 3000, c, &query(8, "dead2.example", rtype::A, None));
    h.tick(at(3999));
    h.upstream_queries();
    assert!(h.client_answers().is_empty());
    h.tick(at(4000));
    let (_, answer) = only_answer(&mut h);
    assert_eq!(parse(&answer).rcode(), RCODE::ServerFailure);
    assert_eq!(h.r.pending(), 0);
}

#[test]
fn servfail_at_once_without_upstreams() {
    let mut h = Harness::new(&[]);
    let answer = h.answer(at(0), &query(3, "x.example", rtype::A, None));
    assert_eq!(parse(&answer).rcode(), RCODE::ServerFailure);
}

#[test]
fn serves_stale_when_the_upstreams_fail() {
    let mut h = Harness::new(&[UP1]);
    let c = udp_client(1);
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(1, "stale.example", rtype::A, None));
    h.r.on_upstream_udp(at(1), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 10)));
    only_answer(&mut h);
    forwarded(&mut h, 20_000, c, &query(2, "stale.example", rtype::A, None));
    h.tick(at(21_000));
    assert_eq!(h.upstream_queries().len(), 1, "asked again after the try timeout");
    h.tick(at(22_500));
    let (_, answer) = only_answer(&mut h);
    let p = parse(&answer);
    assert_eq!((p.rcode(), a_records(&p)), (RCODE::NoError, vec![(IP, 30)]), "RFC 8767: TTL 30");
    assert_eq!(h.metrics.answers_from(AnswerSource::Stale), 1);
}

#[test]
fn refused_and_servfail_move_on_to_the_next_upstream() {
    let mut h = Harness::new(&[UP1, UP2]);
    let c = udp_client(1);
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(1, "r.example", rtype::A, None));
    h.r.on_upstream_udp(at(5), slot, to, &reply_to(&upq, |p, _| *p.rcode_mut() = RCODE::Refused));
    let sent = h.upstream_queries();
    assert_eq!((sent.len(), sent[0].1), (1, up(UP2)), "REFUSED: next upstream at once");
    assert!(h.r.upstream_status(at(5))[0].up, "REFUSED is an answer: the upstream is not down");
    let (slot, to, upq) = sent[0].clone();
    h.r.on_upstream_udp(at(9), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 60)));
    only_answer(&mut h);

    // SERVFAIL from both: the client gets SERVFAIL, remembered for 5 s.
    let mut h = Harness::new(&[UP1, UP2]);
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(2, "sf.example", rtype::A, None));
    h.r.on_upstream_udp(at(5), slot, to, &reply_to(&upq, |p, _| *p.rcode_mut() = RCODE::ServerFailure));
    let (slot, to, upq) = h.upstream_queries()[0].clone();
    h.r.on_upstream_udp(at(8), slot, to, &reply_to(&upq, |p, _| *p.rcode_mut() = RCODE::ServerFailure));
    let (_, answer) = only_answer(&mut h);
    assert_eq!(parse(&answer).rcode(), RCODE::ServerFailure);
    let answer = h.answer(at(4000), &query(3, "sf.example", rtype::A, None));
    assert_eq!(parse(&answer).rcode(), RCODE::ServerFailure);
    forwarded(&mut h, 5008, c, &query(4, "sf.example", rtype::A, None));
}

#[test]
fn a_truncated_reply_is_asked_again_over_tcp() {
    let mut h = Harness::new(&[UP1, UP2]);
    let c = udp_client(1);
    let (slot, to, upq) = forwarded(&mut h, 0, c, &query(1, "big.example", rtype::A, None));
    let mut tc = reply_to(&upq, |_, _| {});
    tc[2] |= (flag::TC >> 8) as u8;
    h.r.on_upstream_udp(at(3), slot, to, &tc);
    let t = h.transmits();
    let (handle, tcp_to, tcp_msg) = match t.as_slice() {
        [Transmit::UpstreamTcp { handle, to, msg }] => (*handle, *to, msg.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(tcp_to, up(UP1), "the same upstream");
    let full = reply_to(&tcp_msg, |p, n| {
        for i in 0..40 {
            with_a(p, n.clone(), Ipv4Addr::new(10, 0, 0, i), 120);
        }
    });
    h.r.on_upstream_tcp(at(10), handle, &full);
    let t = h.transmits();
    assert!(t.contains(&Transmit::CloseTcp { handle }));
    let answer = t.iter().find_map(|t| match t {
        Transmit::Client { msg, .. } => Some(msg.clone()),
        _ => None,
    });
    // 40 A records do not fit 512 bytes: the UDP client gets TC and the question.
    let p = parse(answer.as_ref().unwrap());
    assert!(p.has_flags(PacketFlag::TRUNCATION) && p.answers.is_empty());
    // Over TCP it gets them all, from the cache.
    let (handled, answer) = h.ask(at(20), ClientAddr::Tcp { conn: 9 }, &query(2, "big.example", rtype::A, None));
    assert_eq!(handled, Handled::Reply);
    assert_eq!(a_records(&parse(&answer)).len(), 40);
    // An EDNS client with room gets them over UDP.
    let answer = h.answer(at(20), &query(3, "big.example", rtype::A, Some((4096, false))));
    assert!(!parse(&answer).has_flags(PacketFlag::TRUNCATION));

    // TCP that fails moves on to the next upstream.
    let (slot, to, upq) = forwarded(&mut h, 100, c, &query(4, "big2.example", rtype::A, None));
    let mut tc = reply_to(&upq, |_, _| {});
    tc[2] |= (flag::TC >> 8) as u8;
    h.r.on_upstream_udp(at(101), slot, to, &tc);
    let handle = match h.transmits().as_slice() {
        [Transmit::UpstreamTcp { handle, .. }] => *handle,
        other => panic!("{other:?}"),
    };
    h.r.on_upstream_tcp_failed(at(102), handle);
    let sent = h.upstream_queries();
    let other = if to == up(UP1) { up(UP2) } else { up(UP1) };
    assert_eq!(sent.iter().map(|s| s.1).collect::<Vec<_>>(), [other], "the other upstream");
    assert!(!h.r.upstream_status(at(102)).iter().find(|s| s.addr == to.to_string()).unwrap().up);
}

#[test]
fn an_upstream_rejecting_edns_is_asked_without_it() {
    let mut h = Harness::new(&[UP1]);
    let (slot, to, upq) = forwarded(&mut h, 0, udp_client(1), &query(1, "old.example", rtype::A, None));
    h.r.on_upstream_udp(at(3), slot, to, &reply_to(&upq, |p, _| *p.rcode_mut() = RCODE::FormatError));
    let sent = h.upstream_queries();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, up(UP1));
    assert_eq!(Header::parse(&sent[0].2).unwrap().arcount, 0, "no OPT this time");
    let (slot, to, upq) = sent[0].clone();
    h.r.on_upstream_udp(at(6), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 60)));
    assert_eq!(a_records(&parse(&only_answer(&mut h).1)), [(IP, 60)]);
}

#[test]
fn clients_asking_the_same_question_share_one_upstream_query() {
    let mut h = Harness::new(&[UP1]);
    let a = udp_client(1);
    let b = ClientAddr::Tcp { conn: 5 };
    let (slot, to, upq) = forwarded(&mut h, 0, a, &query(10, "shared.example", rtype::A, None));
    let (handled, _) = h.ask(at(1), b, &query(20, "SHARED.example", rtype::A, Some((1232, false))));
    assert_eq!(handled, Handled::Pending);
    assert!(h.upstream_queries().is_empty(), "joined the waiting query");
    // A retransmission from the same client is not a second waiter.
    assert_eq!(h.ask(at(2), a, &query(10, "shared.example", rtype::A, None)).0, Handled::Dropped);
    h.r.on_upstream_udp(at(5), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 60)));
    let answers = h.client_answers();
    assert_eq!(answers.len(), 2);
    let pa = parse(&answers[0].1);
    let pb = parse(&answers[1].1);
    assert_eq!((answers[0].0, pa.id(), pa.questions[0].qname.to_string()), (a, 10, "shared.example".into()));
    assert_eq!((answers[1].0, pb.id(), pb.questions[0].qname.to_string()), (b, 20, "SHARED.example".into()));
    assert!(pa.opt().is_none() && pb.opt().is_some());
}

#[test]
fn malformed_queries_get_formerr_or_are_dropped_and_never_forwarded() {
    let mut h = Harness::new(&[UP1]);
    let good = query(0x77, "x.example", rtype::A, None);
    assert_eq!(h.ask(at(0), udp_client(1), &good[..5]).0, Handled::Dropped);
    let mut response = good.clone();
    response[2] |= 0x80;
    assert_eq!(h.ask(at(0), udp_client(1), &response).0, Handled::Dropped);
    let p = parse_header_only(&h.answer(at(0), &good[..good.len() - 3]));
    assert_eq!((p.id, p.rcode()), (0x77, rcode::FORMERR));
    let mut chaos = good.clone();
    let n = chaos.len();
    chaos[n - 1] = 3;
    assert_eq!(parse(&h.answer(at(0), &chaos)).rcode(), RCODE::NotImplemented);
    assert!(h.transmits().is_empty());
    assert_eq!(h.metrics.dropped(Discard::QueryTooShort), 1);
    assert_eq!(h.metrics.dropped(Discard::QueryIsResponse), 1);
    assert_eq!(h.metrics.dropped(Discard::QueryMalformed), 1);
    assert_eq!(h.metrics.dropped(Discard::QueryNotImplemented), 1);
}

fn parse_header_only(msg: &[u8]) -> Header {
    Header::parse(msg).unwrap()
}

#[test]
fn pool_sockets_are_replaced_after_their_uses() {
    let tun = Tunables { udp_slots: 2, slot_max_uses: 3, ..Tunables::default() };
    let mut h = Harness::with(tun, &[UP1]);
    let mut reopened = Vec::new();
    for i in 0..20u16 {
        let (slot, to, upq) =
            forwarded(&mut h, u64::from(i), udp_client(1), &query(i, &format!("r{i}.example"), rtype::A, None));
        h.r.on_upstream_udp(at(u64::from(i)), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 60)));
        for t in h.transmits() {
            if let Transmit::ReopenSlot { slot } = t {
                reopened.push(slot);
            }
        }
    }
    assert!(reopened.len() >= 5, "{reopened:?}");
    assert!(reopened.contains(&0) && reopened.contains(&1));
}

#[test]
fn bounded_pending_queries_drop_the_excess() {
    let tun = Tunables { max_pending: 4, ..Tunables::default() };
    let mut h = Harness::with(tun, &[UP1]);
    for i in 0..4u16 {
        forwarded(&mut h, 0, udp_client(1), &query(i, &format!("p{i}.example"), rtype::A, None));
    }
    assert_eq!(h.ask(at(0), udp_client(1), &query(9, "p9.example", rtype::A, None)).0, Handled::Dropped);
    assert_eq!(h.metrics.dropped(Discard::PendingFull), 1);
    let _ = CLIENT;
}

#[test]
fn forwards_types_it_does_not_know() {
    // From the fuzzer: a query of type 16652 (which simple-dns cannot even
    // parse) goes upstream with its type intact, and its answer comes back.
    let mut h = Harness::new(&[UP1]);
    let (slot, to, upq) = forwarded(&mut h, 0, udp_client(1), &query(1, "odd.example", 16652, None));
    let qt = 12 + "odd.example".len() + 2;
    assert_eq!(wire::be16(&upq, qt), Some(16652));
    let mut reply = upq.clone();
    reply.truncate(qt + 4);
    reply[2] |= 0x80;
    reply[11] = 0;
    h.r.on_upstream_udp(at(1), slot, to, &reply);
    let (_, answer) = only_answer(&mut h);
    let head = Header::parse(&answer).unwrap();
    assert_eq!((head.id, head.rcode(), head.qdcount), (1, rcode::NOERROR, 1));
    assert_eq!(wire::be16(&answer, qt), Some(16652));
}

#[test]
fn finished_queries_leave_no_deadlines_behind() {
    let mut h = Harness::new(&[UP1]);
    for i in 0..5_000u16 {
        let (slot, to, upq) =
            forwarded(&mut h, u64::from(i), udp_client(1), &query(i, &format!("d{i}.example"), rtype::A, None));
        h.r.on_upstream_udp(at(u64::from(i)), slot, to, &reply_to(&upq, |p, n| with_a(p, n, IP, 60)));
        h.transmits();
        assert!(h.r.deadlines() <= 64 + 4 * h.r.pending(), "{} deadlines", h.r.deadlines());
    }
    assert_eq!(h.r.pending(), 0);
}
