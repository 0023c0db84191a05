//! The serial console mirror: every service line, prefixed with the service's
//! name, queued for a console that is slow (115,200 baud is ~11 KB/s) and must
//! never block init. The queue is bounded; what does not fit is dropped and
//! counted, and a note says so once there is room again.
//!
//! Control characters are shown as `^X` so a service cannot move the cursor,
//! change the console's mode or clear the screen.

use std::collections::VecDeque;

/// Bytes queued for the console at most.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// The pending console output.
#[derive(Debug)]
pub struct ConsoleQueue {
    pending: VecDeque<u8>,
    limit: usize,
    dropped: u64,
    unreported: u64,
}

/// `text` with control characters made visible.
#[must_use]
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            c if ('\u{80}'..'\u{a0}').contains(&c) => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

impl ConsoleQueue {
    /// A queue holding at most `limit` bytes.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self { pending: VecDeque::new(), limit, dropped: 0, unreported: 0 }
    }

    /// Lines dropped so far.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn fits(&self, n: usize) -> bool {
        // An empty queue takes anything, so a limit smaller than one line cannot
        // silence the console for good.
        self.pending.is_empty() || self.pending.len() + n <= self.limit
    }

    /// Queues `<prefix>: <text>\n`; false when it was dropped.
    pub fn push(&mut self, prefix: &str, text: &str) -> bool {
        let line = format!("{prefix}: {}\n", sanitize(text));
        let note = (self.unreported > 0).then(|| {
            format!("init: console too slow, {} lines not shown here (all are in the logs)\n", self.unreported)
        });
        let need = note.as_ref().map_or(0, String::len) + line.len();
        if !self.fits(need) {
            self.dropped += 1;
            self.unreported += 1;
            return false;
        }
        if let Some(note) = note {
            self.pending.extend(note.as_bytes());
            self.unreported = 0;
        }
        self.pending.extend(line.as_bytes());
        true
    }

    /// The bytes waiting to be written (the first contiguous part).
    #[must_use]
    pub fn pending(&self) -> &[u8] {
        self.pending.as_slices().0
    }

    /// Whether anything waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// `n` bytes were written.
    pub fn consumed(&mut self, n: usize) {
        self.pending.drain(..n.min(self.pending.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut ConsoleQueue) -> String {
        let mut out = Vec::new();
        while !q.is_empty() {
            let chunk = q.pending().to_vec();
            q.consumed(chunk.len());
            out.extend(chunk);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prefixes_lines_and_neutralises_control_characters() {
        let mut q = ConsoleQueue::new(1024);
        assert!(q.push("dhcp4", "bound\t85.195.207.62"));
        assert!(q.push("evil", "\x1b[2Jcleared\x07\r"));
        assert_eq!(drain(&mut q), "dhcp4: bound\t85.195.207.62\nevil: ^[[2Jcleared^G^M\n");
    }

    #[test]
    fn drops_and_counts_when_the_console_is_slow_then_says_so() {
        let mut q = ConsoleQueue::new(64);
        assert!(q.push("a", "0123456789012345678901234567890123456789")); // 44 bytes
        assert!(!q.push("a", "0123456789012345678901234567890123456789"));
        assert!(!q.push("a", "short"), "once dropping, keep order: no line jumps the note");
        assert_eq!(q.dropped(), 2);
        let shown = drain(&mut q);
        assert_eq!(shown.lines().count(), 1);
        assert!(q.push("a", "after the drain, the note and this line go out"));
        let shown = drain(&mut q);
        assert!(shown.starts_with("init: console too slow, 2 lines"), "{shown}");
        let mut big = ConsoleQueue::new(256);
        big.unreported = 3;
        assert!(big.push("a", "back"));
        let text = drain(&mut big);
        assert!(text.starts_with("init: console too slow, 3 lines not shown"), "{text}");
        assert!(text.ends_with("a: back\n"));
    }
}
