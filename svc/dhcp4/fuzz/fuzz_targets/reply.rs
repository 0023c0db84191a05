//! Arbitrary bytes through the reply path; see `dhcp4::fuzzing::reply`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dhcp4::fuzzing::reply(data));
