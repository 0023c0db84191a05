//! Any bytes as an uploaded restore archive (gzip, then tar): validation
//! never panics, and what it accepts holds only normalised relative paths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| backupd::fuzzing::archive(data));
