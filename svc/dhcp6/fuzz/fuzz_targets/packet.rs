//! Any datagram through the reader: it never panics, and what it accepts is
//! consistent with the header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = dhcp6::wire::header(data);
    if let Ok(m) = dhcp6::wire::parse(data) {
        let (kind, xid) = header.expect("a parsed message has a header");
        assert_eq!((m.kind, m.xid), (kind, xid));
        assert!(m.client_id.as_ref().is_none_or(|d| !d.is_empty()));
        assert!(m.dns.len() * 16 <= data.len());
    }
});
