//! The wire format: checked views of queries and records, and the messages we write.

use crate::wire::*;

/// `www.example.com. A IN` with ID 0x1234, RD.
fn query_bytes(name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    Header { id: 0x1234, flags: flag::RD, qdcount: 1, ancount: 0, nscount: 0, arcount: 0 }.emit(&mut out);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

#[test]
fn parses_a_plain_query() {
    let msg = query_bytes("www.Example.com", rtype::AAAA);
    let q = parse_query(&msg).unwrap();
    assert_eq!(q.header.id, 0x1234);
    assert_eq!(q.question.name, b"\x03www\x07Example\x03com\x00");
    assert_eq!((q.question.qtype, q.question.qclass), (rtype::AAAA, CLASS_IN));
    assert_eq!(q.edns, None);
    let labels: Vec<&[u8]> = plain_labels(q.question.name).collect();
    assert_eq!(labels, [&b"www"[..], b"Example", b"com"]);
}

#[test]
fn reads_edns_from_the_additional_section() {
    let mut msg = query_bytes("example.com", rtype::A);
    msg[11] = 1;
    emit_opt(&mut msg, 0, true);
    let at = msg.len() - 8;
    put16(&mut msg, at, 4096);
    let q = parse_query(&msg).unwrap();
    assert_eq!(q.edns, Some(Edns { udp_size: 4096, ext_rcode: 0, version: 0, dnssec_ok: true }));
    assert_eq!(q.edns.unwrap().reply_limit(), usize::from(EDNS_UDP_SIZE));
}

fn rejected(msg: &[u8]) -> (u16, RejectReason, bool) {
    match parse_query(msg) {
        Err(QueryError::Reply { rcode, reason, question, .. }) => (rcode, reason, question.is_some()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rejects_what_is_not_a_single_internet_query() {
    assert_eq!(parse_query(&[0; 11]), Err(QueryError::Drop(DropReason::TooShort)));
    let mut response = query_bytes("a", rtype::A);
    response[2] |= 0x80;
    assert_eq!(parse_query(&response), Err(QueryError::Drop(DropReason::Response)));

    let mut notify = query_bytes("a", rtype::SOA);
    notify[2] |= 4 << 3;
    assert_eq!(rejected(&notify), (rcode::NOTIMP, RejectReason::Opcode, false));
    let mut two = query_bytes("a", rtype::A);
    two[5] = 2;
    assert_eq!(rejected(&two), (rcode::FORMERR, RejectReason::QuestionCount, false));
    let mut none = query_bytes("a", rtype::A);
    none[5] = 0;
    assert_eq!(rejected(&none), (rcode::FORMERR, RejectReason::QuestionCount, false));
    let mut chaos = query_bytes("version.bind", rtype::TXT);
    let n = chaos.len();
    chaos[n - 1] = 3;
    assert_eq!(rejected(&chaos), (rcode::NOTIMP, RejectReason::Class, true));
    assert_eq!(rejected(&query_bytes("example.com", rtype::AXFR)), (rcode::NOTIMP, RejectReason::Type, true));
    assert_eq!(rejected(&query_bytes("example.com", rtype::OPT)), (rcode::FORMERR, RejectReason::Type, true));
}

#[test]
fn rejects_malformed_questions_and_records() {
    let good = query_bytes("example.com", rtype::A);
    // Cut anywhere inside the question: FORMERR without a question.
    for cut in HEADER_LEN..good.len() {
        assert_eq!(rejected(&good[..cut]), (rcode::FORMERR, RejectReason::Malformed, false), "cut at {cut}");
    }
    // A compression pointer in the question.
    let mut ptr = good[..HEADER_LEN].to_vec();
    ptr.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    assert_eq!(rejected(&ptr), (rcode::FORMERR, RejectReason::Malformed, false));
    // A label over 63 bytes.
    let mut long = good[..HEADER_LEN].to_vec();
    long.push(64);
    long.extend_from_slice(&[b'a'; 64]);
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(rejected(&long), (rcode::FORMERR, RejectReason::Malformed, false));
    // A name over 255 bytes.
    let mut huge = good[..HEADER_LEN].to_vec();
    for _ in 0..5 {
        huge.push(63);
        huge.extend_from_slice(&[b'a'; 63]);
    }
    huge.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(rejected(&huge), (rcode::FORMERR, RejectReason::Malformed, false));
    // An announced additional record that is not there.
    let mut missing = good.clone();
    missing[11] = 1;
    assert_eq!(rejected(&missing), (rcode::FORMERR, RejectReason::Malformed, true));
    // Two OPT records.
    let mut two_opt = good.clone();
    two_opt[11] = 2;
    emit_opt(&mut two_opt, 0, false);
    emit_opt(&mut two_opt, 0, false);
    assert_eq!(rejected(&two_opt), (rcode::FORMERR, RejectReason::BadOpt, true));
    // OPT in the answer section.
    let mut answer_opt = good.clone();
    answer_opt[7] = 1;
    emit_opt(&mut answer_opt, 0, false);
    assert_eq!(rejected(&answer_opt), (rcode::FORMERR, RejectReason::BadOpt, true));
    // EDNS version 1.
    let mut v1 = good;
    v1[11] = 1;
    emit_opt(&mut v1, 0, false);
    let n = v1.len();
    v1[n - 5] = 1;
    assert_eq!(rejected(&v1), (rcode::BADVERS, RejectReason::BadVersion, true));
}

#[test]
fn follows_backward_pointers_and_refuses_loops_and_forward_ones() {
    // Header, then "a.b." at 12, then a pointer to it at 17, a pointer to the pointer at 19.
    let mut msg = vec![0u8; HEADER_LEN];
    msg.extend_from_slice(b"\x01a\x01b\x00");
    msg.extend_from_slice(&[0xc0, 12, 0xc0, 17]);
    assert_eq!(skip_name(&msg, 12), Ok((17, 5)));
    assert_eq!(skip_name(&msg, 17), Ok((19, 5)));
    assert_eq!(skip_name(&msg, 19), Ok((21, 5)));
    assert_eq!(names_equal(&msg, 12, 19), Ok(true));
    // Forward pointer.
    let mut fwd = vec![0u8; HEADER_LEN];
    fwd.extend_from_slice(&[0xc0, 14, 0]);
    assert_eq!(skip_name(&fwd, 12), Err(WireError::BadPointer));
    // Pointing at itself.
    let mut me = vec![0u8; HEADER_LEN];
    me.extend_from_slice(&[0xc0, 12]);
    assert_eq!(skip_name(&me, 12), Err(WireError::BadPointer));
    // A loop through a label: 12: "x" then at 14 a pointer back to 12.
    let mut lp = vec![0u8; HEADER_LEN];
    lp.extend_from_slice(&[1, b'x', 0xc0, 12]);
    assert_eq!(skip_name(&lp, 14), Err(WireError::NameTooLong));
    // Into the header.
    let mut hdr = vec![0u8; HEADER_LEN];
    hdr.extend_from_slice(&[0xc0, 2]);
    assert_eq!(skip_name(&hdr, 12), Err(WireError::BadPointer));
    // Reserved label types.
    for b in [0x40, 0x80] {
        let mut bad = vec![0u8; HEADER_LEN];
        bad.extend_from_slice(&[b, 0]);
        assert_eq!(skip_name(&bad, 12), Err(WireError::BadLabel));
    }
}

#[test]
fn checks_names_inside_record_data() {
    let mut msg = vec![0u8; HEADER_LEN];
    msg.extend_from_slice(b"\x01a\x00");
    // CNAME whose data is a pointer to "a." and exactly that long.
    msg.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
    let r = read_record(&msg, 15).unwrap();
    assert_eq!((r.rtype, r.ttl, r.rdata.clone()), (rtype::CNAME, 60, 27..29));
    // Data longer than the name: rejected.
    let mut long = msg.clone();
    long[26] = 3;
    long.push(0);
    assert_eq!(read_record(&long, 15), Err(WireError::BadRdata));
    // A record with 3 bytes of address.
    let mut a = vec![0u8; HEADER_LEN];
    a.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]);
    assert_eq!(read_record(&a, 12), Err(WireError::BadRdata));
    // SOA: two names and 20 bytes; MINIMUM is the last field.
    let mut soa = vec![0u8; HEADER_LEN];
    soa.extend_from_slice(&[0, 0, 6, 0, 1, 0, 0, 0, 9, 0, 22, 0, 0]);
    for v in [1u32, 2, 3, 4, 300] {
        soa.extend_from_slice(&v.to_be_bytes());
    }
    let r = read_record(&soa, 12).unwrap();
    assert_eq!(soa_minimum(&soa, &r), Some(300));
    soa[22] = 21;
    assert_eq!(read_record(&soa[..soa.len() - 1], 12), Err(WireError::BadRdata));
}

#[test]
fn writes_error_replies_and_upstream_queries() {
    let msg = query_bytes("Example.com", rtype::A);
    let q = parse_query(&msg).unwrap();
    let mut out = Vec::new();
    write_error(&mut out, &q.header, Some(&q.question), None, rcode::SERVFAIL);
    let h = Header::parse(&out).unwrap();
    assert_eq!((h.id, h.rcode(), h.qdcount, h.arcount), (0x1234, rcode::SERVFAIL, 1, 0));
    assert!(h.has(flag::QR | flag::RD | flag::RA));
    assert_eq!(&out[HEADER_LEN..], &msg[HEADER_LEN..]);
    let edns = Edns { udp_size: 4096, ext_rcode: 0, version: 1, dnssec_ok: false };
    write_error(&mut out, &q.header, Some(&q.question), Some(edns), rcode::BADVERS);
    let h = Header::parse(&out).unwrap();
    assert_eq!((h.rcode(), h.arcount), (0, 1));
    let opt = read_record(&out, msg.len()).unwrap();
    assert_eq!(Edns::from_record(&opt).ext_rcode, 1, "BADVERS = 16 = 1 << 4");

    write_upstream_query(&mut out, 0xbeef, b"\x01a\x00", rtype::MX, true, Some(true));
    let h = Header::parse(&out).unwrap();
    assert_eq!((h.id, h.qdcount, h.arcount), (0xbeef, 1, 1));
    assert!(h.has(flag::RD | flag::AD | flag::CD) && !h.has(flag::QR));
    let opt = read_record(&out, 12 + 3 + 4).unwrap();
    let e = Edns::from_record(&opt);
    assert!(e.dnssec_ok && e.udp_size == EDNS_UDP_SIZE && e.version == 0);
}
