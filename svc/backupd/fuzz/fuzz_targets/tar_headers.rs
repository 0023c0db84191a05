//! Any bytes as an uncompressed tar: the header reader never panics, and
//! every entry it accepts is written by our writer and read back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| backupd::fuzzing::tar_headers(data));
