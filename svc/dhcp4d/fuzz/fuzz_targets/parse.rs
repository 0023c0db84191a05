//! The request parser on arbitrary bytes: it never panics, and what it accepts
//! dhcproto reads with the same fixed header. dhcproto sees only the header
//! and option 53: its decoder asserts on some option lengths (e.g. option 94
//! of length 1), which our parser must — and does — take in its stride.
#![no_main]

use dhcp4d::Request;
use dhcproto::{Decodable, Decoder, v4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = Request::parse(data) else { return };
    let mut header = data[..240].to_vec();
    header.extend_from_slice(&[53, 1, req.kind.value(), 255]);
    let m = v4::Message::decode(&mut Decoder::new(&header)).expect("dhcproto reads what we accept");
    assert_eq!(m.xid(), req.xid);
    assert_eq!(m.ciaddr(), req.ciaddr);
    assert_eq!(m.giaddr(), req.giaddr);
    assert_eq!(&m.chaddr()[..6], &req.chaddr[..]);
    assert_eq!(m.flags().broadcast(), req.broadcast);
    assert_eq!(m.opts().msg_type().map(|t| u8::from(t)), Some(req.kind.value()));
    assert!(req.hostname.as_ref().is_none_or(|h| h.len() <= 255));
    assert!(req.fqdn_label.as_ref().is_none_or(|l| l.len() <= 255));
    assert!(req.parameter_list.as_ref().is_none_or(|p| p.len() <= 2 * 255 + 2));
});
