//! A client session driven by arbitrary input; see `dhcp4::fuzzing::client_session`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dhcp4::fuzzing::client_session(data, std::time::Instant::now()));
