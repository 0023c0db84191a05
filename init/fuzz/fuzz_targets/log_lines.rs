//! Service output of any shape through the line splitter into a ring: lines are
//! bounded, the ring never holds more than its capacity, sequence numbers are
//! contiguous, and readers see consistent pages.
#![no_main]

use init::logs::{LineSplitter, LogRing, MAX_LINE, Stream};
use libfuzzer_sys::fuzz_target;
use runtime::timefmt::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&cap, rest)) = data.split_first() else { return };
    let capacity = usize::from(cap % 16) + 1;
    let mut ring = LogRing::new(capacity);
    let mut splitter = LineSplitter::default();
    let mut lines = Vec::new();
    // The first bytes of each chunk say how long it is: reads of any size.
    let mut rest = rest;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        splitter.push(&tail[..n], &mut lines);
        rest = &tail[n..];
    }
    splitter.finish(&mut lines);
    let total = lines.len() as u64;
    for l in lines {
        assert!(l.chars().count() <= MAX_LINE, "a line longer than MAX_LINE");
        ring.push(Timestamp { secs: 0, nanos: 0 }, Stream::Stdout, l);
    }
    assert!(ring.len() <= capacity);
    assert_eq!(ring.last_seq(), total);
    let page = ring.after(0, usize::MAX);
    assert!(page.lines.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(page.missed, total.saturating_sub(capacity as u64));
    if let Some(last) = page.lines.last() {
        assert_eq!(page.next, last.seq);
    }
});
