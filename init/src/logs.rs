//! Service output as lines: a splitter for what arrives on a pipe, a bounded
//! ring per service (gokrazy kept 100 lines; we keep 2,000 by default, set per
//! service in the manifest), and a store the loop fills and the web and control
//! threads read and wait on.
//!
//! Every line gets a sequence number, increasing per service and never reused,
//! so a reader asks for "lines after N" and learns how many it missed when the
//! ring moved on meanwhile.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use runtime::timefmt::Timestamp;

/// Longest line kept; longer output is split into pieces of this size.
pub const MAX_LINE: usize = 4096;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The service's stdout.
    Stdout,
    /// The service's stderr.
    Stderr,
    /// init, about the service (started, exited, restarting).
    Init,
    /// The kernel log.
    Kernel,
}

impl Stream {
    /// Its name in files and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Init => "init",
            Self::Kernel => "kernel",
        }
    }
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in the service's stream.
    pub seq: u64,
    /// Wall time it was read.
    pub time: Timestamp,
    /// Which stream.
    pub stream: Stream,
    /// The text, without the newline.
    pub text: String,
}

/// Splits bytes from a pipe into lines, carrying a partial line over.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

fn to_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

impl LineSplitter {
    /// Appends the complete lines in `data` to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<String>) {
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(nl);
            data = &rest[1..];
            if self.partial.is_empty() {
                Self::emit(line, out);
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                Self::emit(&whole, out);
            }
        }
        self.partial.extend_from_slice(data);
        // A line that never ends is cut, so memory stays bounded.
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            out.push(to_text(&self.partial));
            self.partial = rest;
        }
    }

    fn emit(mut line: &[u8], out: &mut Vec<String>) {
        loop {
            if line.len() <= MAX_LINE {
                out.push(to_text(line));
                return;
            }
            let (head, tail) = line.split_at(MAX_LINE);
            out.push(to_text(head));
            line = tail;
        }
    }

    /// The pipe closed: a last line without a newline is still a line.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            out.push(to_text(&rest));
        }
    }
}

/// The lines after a given sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<LogLine>,
    /// Ask for lines after this next time.
    pub next: u64,
    /// Lines the reader asked for that the ring no longer holds.
    pub missed: u64,
}

/// A bounded ring of lines.
#[derive(Debug, Clone)]
pub struct LogRing {
    lines: VecDeque<LogLine>,
    capacity: usize,
    next_seq: u64,
}

impl LogRing {
    /// A ring keeping the last `capacity` lines (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { lines: VecDeque::new(), capacity: capacity.max(1), next_seq: 1 }
    }

    /// Adds a line, dropping the oldest when full; returns it.
    pub fn push(&mut self, time: Timestamp, stream: Stream, text: String) -> &LogLine {
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.lines.push_back(LogLine { seq, time, stream, text });
        // Just pushed, so the ring is not empty.
        self.lines.back().expect("a line was just pushed")
    }

    /// How many lines it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Its capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sequence number of the newest line (0 before any).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Lines dropped because the ring was full.
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.last_seq() - self.lines.len() as u64
    }

    /// Up to `limit` lines after `since`, oldest first.
    #[must_use]
    pub fn after(&self, since: u64, limit: usize) -> LogPage {
        let first = self.lines.front().map_or(self.next_seq, |l| l.seq);
        let missed = first.saturating_sub(since.saturating_add(1)).min(self.evicted());
        let lines: Vec<LogLine> = self.lines.iter().filter(|l| l.seq > since).take(limit).cloned().collect();
        let next = lines.last().map_or(since.max(first.saturating_sub(1)).min(self.last_seq()), |l| l.seq);
        LogPage { lines, next, missed }
    }

    /// The last `n` lines.
    #[must_use]
    pub fn tail(&self, n: usize) -> LogPage {
        let since = self.last_seq().saturating_sub(n as u64);
        let mut page = self.after(since, n);
        page.missed = 0;
        page
    }
}

/// Every service's ring, shared between the loop (writer) and the web and
/// control threads (readers, who may wait for new lines).
#[derive(Debug, Default)]
pub struct LogStore {
    rings: Mutex<BTreeMap<String, LogRing>>,
    changed: Condvar,
}

impl LogStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn rings(&self) -> MutexGuard<'_, BTreeMap<String, LogRing>> {
        // A panic while holding the lock aborts (panic = "abort"); the data stays usable.
        self.rings.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates the ring of `name` with `capacity` lines (keeps an existing one).
    pub fn add(&self, name: &str, capacity: usize) {
        self.rings().entry(name.to_owned()).or_insert_with(|| LogRing::new(capacity));
    }

    /// Appends lines to `name`'s ring and wakes waiting readers; returns them with their numbers.
    pub fn push(&self, name: &str, time: Timestamp, stream: Stream, texts: Vec<String>) -> Vec<LogLine> {
        let mut out = Vec::with_capacity(texts.len());
        {
            let mut rings = self.rings();
            let Some(ring) = rings.get_mut(name) else { return out };
            for text in texts {
                out.push(ring.push(time, stream, text).clone());
            }
        }
        self.changed.notify_all();
        out
    }

    /// Up to `limit` lines of `name` after `since`; `None` for an unknown name.
    #[must_use]
    pub fn after(&self, name: &str, since: u64, limit: usize) -> Option<LogPage> {
        self.rings().get(name).map(|r| r.after(since, limit))
    }

    /// The last `n` lines of `name`.
    #[must_use]
    pub fn tail(&self, name: &str, n: usize) -> Option<LogPage> {
        self.rings().get(name).map(|r| r.tail(n))
    }

    /// `(lines held, capacity, last sequence number)` of `name`.
    #[must_use]
    pub fn stats(&self, name: &str) -> Option<(usize, usize, u64)> {
        self.rings().get(name).map(|r| (r.len(), r.capacity(), r.last_seq()))
    }

    /// Like [`LogStore::after`], but waits up to `wait` for a line to arrive.
    #[must_use]
    pub fn wait_after(&self, name: &str, since: u64, limit: usize, wait: Duration) -> Option<LogPage> {
        let rings = self.rings();
        if !rings.contains_key(name) {
            return None;
        }
        let (rings, _) = self
            .changed
            .wait_timeout_while(rings, wait, |r| r.get(name).is_some_and(|ring| ring.last_seq() <= since))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rings.get(name).map(|r| r.after(since, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn splits_lines_across_reads_and_keeps_the_last_partial_one() {
        assert_eq!(split(&[b"a\nb", b"c\r\n\nd"]), ["a", "bc", "", "d"]);
        assert_eq!(split(&[b"\xff ok\n"]), ["\u{fffd} ok"]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn cuts_endless_lines_to_bound_memory() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let got = split(&[&long, b"\n"]);
        assert_eq!(got.iter().map(String::len).collect::<Vec<_>>(), [MAX_LINE, MAX_LINE, 10]);
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for _ in 0..(MAX_LINE * 3) {
            s.push(b"y", &mut out);
        }
        assert_eq!(out.len(), 3, "cut while still arriving, without a newline");
    }

    fn t() -> Timestamp {
        Timestamp { secs: 1_700_000_000, nanos: 0 }
    }

    #[test]
    fn ring_keeps_the_newest_lines_and_counts_what_fell_out() {
        let mut r = LogRing::new(3);
        for i in 1..=5 {
            r.push(t(), Stream::Stdout, format!("line {i}"));
        }
        assert_eq!((r.len(), r.last_seq(), r.evicted()), (3, 5, 2));
        let page = r.after(0, 100);
        assert_eq!(page.lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!((page.next, page.missed), (5, 2));
        let page = r.after(3, 1);
        assert_eq!((page.lines[0].text.as_str(), page.next, page.missed), ("line 4", 4, 0));
        let page = r.after(5, 10);
        assert!(page.lines.is_empty());
        assert_eq!((page.next, page.missed), (5, 0));
        assert_eq!(r.tail(2).lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn an_empty_ring_answers_sensibly() {
        let r = LogRing::new(10);
        let p = r.after(0, 10);
        assert_eq!((p.lines.len(), p.next, p.missed), (0, 0, 0));
        let p = r.after(42, 10);
        assert_eq!(p.next, 0, "a reader ahead of a restarted ring starts over");
    }

    #[test]
    fn a_waiting_reader_wakes_on_new_lines() {
        let store = std::sync::Arc::new(LogStore::new());
        store.add("svc", 10);
        let reader = {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || store.wait_after("svc", 0, 10, Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(50));
        store.push("svc", t(), Stream::Stderr, vec!["hello".into()]);
        let page = reader.join().unwrap().unwrap();
        assert_eq!(page.lines[0].text, "hello");
        assert_eq!(page.lines[0].stream, Stream::Stderr);
        assert!(store.wait_after("nope", 0, 1, Duration::ZERO).is_none());
        // Nothing new: returns empty after the timeout.
        assert!(store.wait_after("svc", 1, 10, Duration::from_millis(10)).unwrap().lines.is_empty());
    }
}
