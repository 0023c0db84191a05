//! Parses arbitrary bytes as a Router Advertisement (the parser the tests and
//! the other target rely on) and checks that whatever parses survives
//! emit → parse unchanged, except a search list that is not made of DNS names,
//! which emit leaves out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radvd::advert::RouterAdvert;

fuzz_target!(|data: &[u8]| {
    let Ok(ra) = RouterAdvert::parse(data) else { return };
    let again = RouterAdvert::parse(&ra.emit()).expect("what we emit parses");
    let mut expected = ra.clone();
    // A search list that is not made of DNS names is not sent on.
    if expected.dnssl.as_ref().is_some_and(|d| !d.is_encodable()) {
        expected.dnssl = None;
    }
    assert_eq!(again, expected);
});
