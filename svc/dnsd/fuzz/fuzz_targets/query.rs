//! Client queries: any bytes into the resolver, as UDP and as TCP. Nothing
//! panics; every answer is a response to that query; when simple-dns accepts
//! the query it accepts our answer too, and both parsers agree on the question.
#![no_main]

mod common;

use dnsd::resolver::{Handled, Transmit};
use dnsd::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = runtime::clock::now();
    let mut r = common::resolver(now);
    let oracle = simple_dns::Packet::parse(data);
    let mut out = Vec::new();
    for client in common::clients() {
        if r.on_query(now, client, data, &mut out) == Handled::Reply {
            common::check_answer(&out, wire::be16(data, 0).unwrap_or(0), client, oracle.is_ok());
        }
    }
    while let Some(t) = r.poll_transmit() {
        // simple-dns knows fewer types than exist: judge only what it could judge.
        if let (Transmit::UpstreamUdp { msg, .. }, Ok(_)) = (t, &oracle) {
            let q = simple_dns::Packet::parse(&msg).expect("simple-dns accepts our upstream query");
            assert_eq!(q.questions.len(), 1);
        }
    }
    if let (Ok(ours), Ok(theirs)) = (wire::parse_query(data), &oracle) {
        assert_eq!(theirs.questions.len(), 1, "we took a query with one question");
        let q = &theirs.questions[0];
        assert_eq!(u16::from(q.qtype), ours.question.qtype);
        assert_eq!(u16::from(q.qclass), ours.question.qclass);
        let labels: Vec<&[u8]> = wire::plain_labels(ours.question.name).collect();
        let theirs: Vec<&[u8]> = q.qname.as_bytes().collect();
        assert_eq!(labels, theirs, "the same name");
    }
});
