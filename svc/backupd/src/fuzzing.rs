//! The fuzz targets' bodies (`fuzz/fuzz_targets/*.rs` call these), kept in
//! the crate so they build with it and stay in step with its API.

use crate::restore::{Limits, validate};
use crate::tar::{self, BLOCK, Entry, Kind, Reader, Step};

/// Restore's archive parsing on arbitrary bytes: gzip, then tar. Never panics;
/// whatever it accepts holds only normalised relative paths.
pub fn archive(data: &[u8]) {
    let limits = Limits { max_upload: 1 << 20, max_total: 1 << 20, max_file: 1 << 20, max_entries: 1000 };
    if let Ok(m) = validate(data, &limits) {
        for e in &m.entries {
            assert!(!e.path.starts_with('/') && !e.path.split('/').any(|c| c.is_empty() || c == "." || c == ".."));
        }
    }
}

/// The tar reader on raw (uncompressed) bytes, and every header it accepts
/// written back and read again to the same entry.
pub fn tar_headers(data: &[u8]) {
    let mut reader = Reader::new();
    let mut at = 0;
    while at + BLOCK <= data.len() {
        let block: &[u8; BLOCK] = data[at..at + BLOCK].try_into().expect("a slice of BLOCK bytes");
        at += BLOCK;
        match reader.header(block) {
            Ok(Step::Entry(e)) => {
                if let Kind::File(size) = e.kind {
                    let skip = size.saturating_add(tar::padding(size) as u64);
                    at = at.saturating_add(usize::try_from(skip).unwrap_or(usize::MAX));
                    reader.skip(skip);
                }
                if !e.path.is_empty() {
                    round_trip(&e);
                }
            }
            Ok(Step::Metadata(len)) => {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let end = at.saturating_add(len).min(data.len());
                if reader.metadata(&data[at..end]).is_err() {
                    return;
                }
                at = at.saturating_add(len.next_multiple_of(BLOCK));
            }
            Ok(Step::Zero) => {}
            Ok(Step::End) | Err(_) => return,
        }
    }
}

fn round_trip(e: &Entry) {
    let bytes = tar::header(e);
    let mut r = Reader::new();
    let mut at = 0;
    loop {
        let block: &[u8; BLOCK] = bytes[at..at + BLOCK].try_into().expect("whole blocks");
        at += BLOCK;
        match r.header(block).expect("our own header reads back") {
            Step::Entry(back) => {
                let mut want = e.clone();
                want.mode &= 0o7777;
                assert_eq!(back, want);
                return;
            }
            Step::Metadata(len) => {
                let len = usize::try_from(len).expect("small");
                r.metadata(&bytes[at..at + len]).expect("our own pax reads back");
                at += len.next_multiple_of(BLOCK);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
