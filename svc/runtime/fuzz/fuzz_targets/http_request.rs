//! HTTP/1.1 requests as the server reads them (runtime::httpd::parse): any
//! bytes into the head parser and the body framing, and what follows the head
//! into the chunked decoder in pieces whose size the first byte picks.
//! Nothing panics; a parsed head is within its limit and parses the same
//! when encoded again; the decoder never claims more than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime::httpd::parse::{Dechunker, Framing, parse_head, framing};
use runtime::httpd::{Peer, Request};

const MAX_HEAD: usize = 16 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else { return };
    let piece = usize::from(piece).max(1);
    let Ok(Some((head, n))) = parse_head(data, MAX_HEAD) else {
        // What the server refuses, Request::parse refuses too.
        assert!(Request::parse(data, Peer::Unix).is_err());
        return;
    };
    assert!(n <= data.len() && n <= MAX_HEAD);
    // The same head, encoded again with CRLFs, parses to the same thing.
    let mut again = format!("{} {} HTTP/1.{}\r\n", head.method, head.target, head.minor).into_bytes();
    for (k, v) in &head.headers {
        again.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    again.extend_from_slice(b"\r\n");
    // (Bytes that are not UTF-8 were replaced by U+FFFD, which parses as itself.)
    if again.len() <= MAX_HEAD {
        let (head2, n2) = parse_head(&again, MAX_HEAD).expect("our encoding parses").expect("complete");
        assert_eq!(head2, head);
        assert_eq!(n2, again.len());
    }
    let request = Request::parse(data, Peer::Unix);
    match framing(&head) {
        Err(_) => assert!(request.is_err()),
        Ok(f) => {
            let request = request.expect("a head with framing makes a request");
            let _ = (request.path(), request.query(), request.wants_json());
            assert!(request.path().starts_with('/') || request.path() == "*");
            if f == Framing::Chunked {
                let mut d = Dechunker::new();
                let mut rest = &data[n..];
                let mut out = vec![0u8; piece];
                let mut total = 0usize;
                while !rest.is_empty() && !d.is_done() {
                    let take = rest.len().min(piece);
                    let Ok((used, made)) = d.decode(&rest[..take], &mut out) else { break };
                    assert!(used <= take && made <= out.len());
                    total += made;
                    assert!(total <= data.len());
                    if used == 0 && made == 0 {
                        break;
                    }
                    rest = &rest[used..];
                }
            }
        }
    }
});
