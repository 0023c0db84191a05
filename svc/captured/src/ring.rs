//! The packet ring: the last packets captured, bounded both in packets and in
//! bytes; the oldest are dropped first. router7 kept 50,000 packets with no
//! byte bound (`container/ring`); a byte bound keeps a flood of large frames
//! from taking the router's memory.

use std::collections::VecDeque;
use std::sync::Arc;

/// router7's ring size.
pub const DEFAULT_MAX_PACKETS: usize = 50_000;
/// 32 MiB: 50,000 full-size frames would be ~75 MiB; configuration traffic is small.
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;
/// What one packet costs besides its bytes (its record and the ring's slot),
/// counted against the byte bound so many tiny packets are bounded too.
pub const PER_PACKET_OVERHEAD: usize = 64;

/// Which of the two capture interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Iface {
    /// The uplink (`uplink0`).
    Uplink,
    /// The LAN (`lan0`).
    Lan,
}

impl Iface {
    /// Both, in the order of the pcapng interface blocks.
    pub const ALL: [Self; 2] = [Self::Uplink, Self::Lan];

    /// Index into [`Iface::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            Self::Uplink => 0,
            Self::Lan => 1,
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Position in the capture, from 0, never reused.
    pub seq: u64,
    /// Where it was seen.
    pub iface: Iface,
    /// Wall-clock nanoseconds since the Unix epoch when captured read it.
    pub timestamp_ns: u64,
    /// Its length on the wire.
    pub orig_len: u32,
    /// We sent it (`PACKET_OUTGOING`) rather than received it.
    pub outgoing: bool,
    /// The frame from the Ethernet header on (at most the snap length).
    pub data: Box<[u8]>,
}

impl Captured {
    /// What it costs against the ring's byte bound.
    #[must_use]
    pub fn cost(&self) -> usize {
        self.data.len() + PER_PACKET_OVERHEAD
    }
}

/// The ring's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many packets.
    pub max_packets: usize,
    /// At most this many bytes (see [`Captured::cost`]).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_packets: DEFAULT_MAX_PACKETS, max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// The ring.
#[derive(Debug)]
pub struct Ring {
    packets: VecDeque<Arc<Captured>>,
    bytes: usize,
    limits: Limits,
    evicted: u64,
}

impl Ring {
    /// An empty ring.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { packets: VecDeque::new(), bytes: 0, limits, evicted: 0 }
    }

    /// Adds a packet, dropping the oldest until both bounds hold. A packet
    /// larger than the whole byte bound is not kept (but still counted by the caller).
    pub fn push(&mut self, packet: Arc<Captured>) {
        if packet.cost() > self.limits.max_bytes || self.limits.max_packets == 0 {
            self.evicted += 1;
            return;
        }
        self.bytes += packet.cost();
        self.packets.push_back(packet);
        self.trim();
    }

    fn trim(&mut self) {
        while self.packets.len() > self.limits.max_packets || self.bytes > self.limits.max_bytes {
            let Some(old) = self.packets.pop_front() else { break };
            self.bytes -= old.cost();
            self.evicted += 1;
        }
    }

    /// New bounds (from a reloaded config); trims at once.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.trim();
    }

    /// Its bounds.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Packets held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether it holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Bytes held (see [`Captured::cost`]).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Packets dropped to keep the bounds, since the start.
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The last `max` packets that `keep` accepts, oldest first.
    #[must_use]
    pub fn last(&self, max: usize, keep: impl Fn(&Captured) -> bool) -> Vec<Arc<Captured>> {
        let mut out: Vec<Arc<Captured>> = self.packets.iter().rev().filter(|p| keep(p)).take(max).cloned().collect();
        out.reverse();
        out
    }

    /// The sequence number of the oldest of the last `max` packets that
    /// `keep` accepts (`None` when there is none).
    #[must_use]
    pub fn start_of_last(&self, max: usize, keep: impl Fn(&Captured) -> bool) -> Option<u64> {
        self.packets.iter().rev().filter(|p| keep(p)).take(max).last().map(|p| p.seq)
    }

    /// Up to `max` packets that `keep` accepts with `from <= seq < until`,
    /// oldest first, for a replay that reads the ring a batch at a time instead
    /// of holding a copy of it. Returns them, the cursor to continue from, and
    /// how many packets from `from` on were evicted before they could be read.
    #[must_use]
    pub fn read_from(
        &self,
        from: u64,
        until: u64,
        max: usize,
        keep: impl Fn(&Captured) -> bool,
    ) -> (Vec<Arc<Captured>>, u64, u64) {
        let start = self.packets.partition_point(|p| p.seq < from);
        let evicted = match self.packets.get(start) {
            Some(p) if start == 0 => p.seq.min(until).saturating_sub(from),
            None => until.saturating_sub(from),
            Some(_) => 0,
        };
        let mut out = Vec::new();
        let mut cursor = from + evicted;
        for p in self.packets.range(start..).take_while(|p| p.seq < until) {
            cursor = p.seq + 1;
            if keep(p) {
                out.push(Arc::clone(p));
                if out.len() == max {
                    return (out, cursor, evicted);
                }
            }
        }
        (out, until.max(cursor), evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u64, iface: Iface, len: usize) -> Arc<Captured> {
        Arc::new(Captured {
            seq,
            iface,
            timestamp_ns: 1_000 + seq,
            orig_len: u32::try_from(len).unwrap(),
            outgoing: false,
            data: vec![u8::try_from(seq % 256).unwrap(); len].into_boxed_slice(),
        })
    }

    #[test]
    fn drops_the_oldest_beyond_the_packet_bound() {
        let mut r = Ring::new(Limits { max_packets: 3, max_bytes: 1 << 20 });
        for seq in 0..5 {
            r.push(packet(seq, Iface::Lan, 10));
        }
        let seqs: Vec<u64> = r.last(10, |_| true).iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert_eq!((r.len(), r.evicted(), r.bytes()), (3, 2, 3 * (10 + PER_PACKET_OVERHEAD)));
    }

    #[test]
    fn drops_the_oldest_beyond_the_byte_bound() {
        let cost = 100 + PER_PACKET_OVERHEAD;
        let mut r = Ring::new(Limits { max_packets: 1000, max_bytes: 2 * cost + cost / 2 });
        for seq in 0..4 {
            r.push(packet(seq, Iface::Uplink, 100));
        }
        assert_eq!(r.last(10, |_| true).iter().map(|p| p.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(r.bytes(), 2 * cost);
        // A packet bigger than the whole bound is not kept and evicts nothing.
        r.push(packet(9, Iface::Uplink, 10_000));
        assert_eq!(r.len(), 2);
        assert_eq!(r.evicted(), 3);
    }

    #[test]
    fn last_filters_then_caps_keeping_order() {
        let mut r = Ring::new(Limits::default());
        for seq in 0..10 {
            r.push(packet(seq, if seq % 2 == 0 { Iface::Uplink } else { Iface::Lan }, 1));
        }
        let lan: Vec<u64> = r.last(3, |p| p.iface == Iface::Lan).iter().map(|p| p.seq).collect();
        assert_eq!(lan, [5, 7, 9]);
        assert!(r.last(0, |_| true).is_empty());
    }

    #[test]
    fn read_from_pages_through_and_reports_what_was_evicted_meanwhile() {
        let mut r = Ring::new(Limits { max_packets: 5, max_bytes: DEFAULT_MAX_BYTES });
        for seq in 0..5 {
            r.push(packet(seq, Iface::Lan, 1));
        }
        let until = 5;
        let (batch, cursor, evicted) = r.read_from(0, until, 2, |_| true);
        assert_eq!((batch.iter().map(|p| p.seq).collect::<Vec<_>>(), cursor, evicted), (vec![0, 1], 2, 0));
        // Three newer packets push 0..=2 out before the reader comes back.
        for seq in 5..8 {
            r.push(packet(seq, Iface::Lan, 1));
        }
        let (batch, cursor, evicted) = r.read_from(cursor, until, 10, |_| true);
        assert_eq!((batch.iter().map(|p| p.seq).collect::<Vec<_>>(), cursor, evicted), (vec![3, 4], 5, 1));
        let (batch, cursor, evicted) = r.read_from(cursor, until, 10, |_| true);
        assert!(batch.is_empty());
        assert_eq!((cursor, evicted), (5, 0));
        assert_eq!(r.start_of_last(2, |p| p.seq % 2 == 1), Some(5));
        assert_eq!(r.start_of_last(0, |_| true), None);
    }

    #[test]
    fn shrinking_the_limits_trims_at_once() {
        let mut r = Ring::new(Limits::default());
        for seq in 0..10 {
            r.push(packet(seq, Iface::Lan, 1));
        }
        r.set_limits(Limits { max_packets: 4, max_bytes: DEFAULT_MAX_BYTES });
        assert_eq!(r.len(), 4);
        assert_eq!(r.last(1, |_| true)[0].seq, 9);
    }
}
