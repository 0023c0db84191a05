//! Whatever an ICMP socket reads: parsing never panics, only our own replies
//! match, and a request turned into a reply parses back to its sequence number.
#![no_main]

use diagd::echo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let nonce = 0x0123_4567_89ab_cdef;
    for ip_header in [false, true] {
        if let Ok(r) = echo::parse_v4(data, ip_header, nonce) {
            // A match means our payload is in there, behind an 8-byte header.
            assert!(data.len() >= 8 + echo::PAYLOAD_LEN);
            let _ = r.seq;
        }
    }
    if echo::parse_v6(data, nonce).is_ok() {
        assert_eq!(data.len(), 8 + echo::PAYLOAD_LEN);
        assert_eq!(data[0], 129);
    }
    if data.len() >= 12 {
        let ident = u16::from_be_bytes([data[0], data[1]]);
        let seq = u16::from_be_bytes([data[2], data[3]]);
        let n = u64::from_be_bytes(data[4..12].try_into().expect("8 bytes"));
        let mut v4 = echo::request_v4(ident, seq, n);
        assert_eq!(echo::parse_v4(&v4, false, n), Err(echo::Ignored::NotEchoReply));
        // Echo reply: type 0, checksum adjusted by the type change (RFC 1624).
        v4[0] = 0;
        let sum = u16::from_be_bytes([v4[2], v4[3]]);
        let fixed = (u32::from(sum) + 0x0800) % 0xffff;
        v4[2..4].copy_from_slice(&(u16::try_from(fixed).expect("folded")).to_be_bytes());
        assert_eq!(echo::parse_v4(&v4, false, n).map(|r| r.seq), Ok(seq));
        let mut v6 = echo::request_v6(ident, seq, n);
        v6[0] = 129;
        assert_eq!(echo::parse_v6(&v6, n).map(|r| r.seq), Ok(seq));
        assert_eq!(echo::parse_v6(&v6, n ^ 1), Err(echo::Ignored::NotOurs));
    }
});
