//! Where the capture loop and the streaming clients meet: the ring, and one
//! subscriber per client with its own bounded queue.
//!
//! The loop only ever appends: a packet goes into the ring and into the queue
//! of every subscriber that wants its interface. A full queue never blocks
//! anything: the packet is not queued for that client, and the count of what
//! it missed rides on the next packet it does get (and on its statistics), so
//! the client is told. A new subscriber first replays the ring from a cursor
//! (a batch at a time, so no client holds a copy of the ring), then gets what
//! its queue collected meanwhile.
//!
//! No locks or clocks in here: the shell keeps the hub behind a mutex and a
//! condition variable, and stamps packets itself.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::ring::{Captured, Iface, Limits, Ring};

/// Per-client queue bounds: what a client may fall behind by before packets
/// are dropped for it.
pub const CLIENT_QUEUE_PACKETS: usize = 4096;
/// 4 MiB of queued packets per client.
pub const CLIENT_QUEUE_BYTES: usize = 4 << 20;
/// The most packets handed to a client thread at once.
pub const BATCH: usize = 256;

/// Which interfaces a client wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection([bool; 2]);

impl Selection {
    /// Both interfaces.
    pub const ALL: Self = Self([true, true]);

    /// Exactly these.
    #[must_use]
    pub fn of(ifaces: &[Iface]) -> Self {
        let mut s = [false; 2];
        for i in ifaces {
            s[i.index()] = true;
        }
        Self(s)
    }

    /// Whether `iface` is wanted.
    #[must_use]
    pub fn contains(self, iface: Iface) -> bool {
        self.0[iface.index()]
    }

    /// The wanted interfaces, in pcapng order.
    #[must_use]
    pub fn ifaces(self) -> Vec<Iface> {
        Iface::ALL.into_iter().filter(|i| self.contains(*i)).collect()
    }
}

/// A subscriber's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriberId(u64);

/// A packet for a client, with how many it missed just before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The packet.
    pub packet: Arc<Captured>,
    /// Packets this client did not get between the previous one and this one
    /// (its queue was full, or they left the ring before its replay got there).
    pub dropped_before: u64,
}

#[derive(Debug)]
struct Subscriber {
    id: SubscriberId,
    selection: Selection,
    /// Replay position in the ring, until `live_from`.
    cursor: u64,
    live_from: u64,
    queue: VecDeque<Delivered>,
    queued_bytes: usize,
    /// Drops not yet attached to a delivered packet.
    pending_drops: u64,
    dropped: u64,
    delivered: u64,
}

/// What one client has got and missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientCounts {
    /// Packets handed to it.
    pub delivered: u64,
    /// Packets it missed.
    pub dropped: u64,
}

/// Counters and gauges of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubStats {
    /// Packets captured per interface ([`Iface::index`]).
    pub captured: [u64; 2],
    /// Bytes captured (on the wire) per interface.
    pub captured_bytes: [u64; 2],
    /// Packets dropped from the ring to keep its bounds.
    pub evicted: u64,
    /// Packets held by the ring.
    pub ring_packets: usize,
    /// Bytes held by the ring.
    pub ring_bytes: usize,
    /// Streaming clients.
    pub clients: usize,
    /// Packets dropped for slow clients, all clients together.
    pub client_drops: u64,
}

/// The ring and its subscribers.
#[derive(Debug)]
pub struct Hub {
    ring: Ring,
    subscribers: Vec<Subscriber>,
    next_seq: u64,
    next_id: u64,
    queue_packets: usize,
    queue_bytes: usize,
    stats: HubStats,
    closed: bool,
}

impl Hub {
    /// An empty hub with ring `limits` and the default per-client queue bounds.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self::with_queue_bounds(limits, CLIENT_QUEUE_PACKETS, CLIENT_QUEUE_BYTES)
    }

    /// An empty hub with explicit per-client queue bounds.
    #[must_use]
    pub fn with_queue_bounds(limits: Limits, queue_packets: usize, queue_bytes: usize) -> Self {
        Self {
            ring: Ring::new(limits),
            subscribers: Vec::new(),
            next_seq: 0,
            next_id: 0,
            queue_packets,
            queue_bytes,
            stats: HubStats::default(),
            closed: false,
        }
    }

    /// Adds a packet seen on `iface` at `timestamp_ns`; returns its record.
    pub fn push(
        &mut self,
        iface: Iface,
        timestamp_ns: u64,
        orig_len: u32,
        outgoing: bool,
        data: &[u8],
    ) -> Arc<Captured> {
        let packet =
            Arc::new(Captured { seq: self.next_seq, iface, timestamp_ns, orig_len, outgoing, data: data.into() });
        self.next_seq += 1;
        self.stats.captured[iface.index()] += 1;
        self.stats.captured_bytes[iface.index()] += u64::from(orig_len);
        self.ring.push(Arc::clone(&packet));
        for s in &mut self.subscribers {
            if !s.selection.contains(iface) {
                continue;
            }
            let cost = packet.cost();
            if s.queue.len() >= self.queue_packets || s.queued_bytes + cost > self.queue_bytes {
                s.pending_drops += 1;
                s.dropped += 1;
                self.stats.client_drops += 1;
                continue;
            }
            s.queued_bytes += cost;
            s.queue.push_back(Delivered { packet: Arc::clone(&packet), dropped_before: s.pending_drops });
            s.pending_drops = 0;
        }
        packet
    }

    /// A new client for `selection`, replaying at most the last `replay`
    /// buffered packets of those interfaces before the live ones.
    pub fn subscribe(&mut self, selection: Selection, replay: usize) -> SubscriberId {
        let id = SubscriberId(self.next_id);
        self.next_id += 1;
        let live_from = self.next_seq;
        let cursor = self.ring.start_of_last(replay, |p| selection.contains(p.iface)).unwrap_or(live_from);
        self.subscribers.push(Subscriber {
            id,
            selection,
            cursor,
            live_from,
            queue: VecDeque::new(),
            queued_bytes: 0,
            pending_drops: 0,
            dropped: 0,
            delivered: 0,
        });
        id
    }

    /// The client is gone.
    pub fn unsubscribe(&mut self, id: SubscriberId) {
        self.subscribers.retain(|s| s.id != id);
    }

    /// The next packets for `id` (at most `max`): its replay first, then its
    /// queue. Empty when there is nothing yet; `None` when the subscriber is
    /// unknown or the hub is closed (the service is stopping).
    pub fn next(&mut self, id: SubscriberId, max: usize) -> Option<Vec<Delivered>> {
        if self.closed {
            return None;
        }
        let s = self.subscribers.iter_mut().find(|s| s.id == id)?;
        let mut out = Vec::new();
        if s.cursor < s.live_from {
            let selection = s.selection;
            let (packets, cursor, evicted) =
                self.ring.read_from(s.cursor, s.live_from, max, |p| selection.contains(p.iface));
            s.cursor = cursor;
            s.pending_drops += evicted;
            s.dropped += evicted;
            self.stats.client_drops += evicted;
            for packet in packets {
                out.push(Delivered { packet, dropped_before: std::mem::take(&mut s.pending_drops) });
            }
            if s.cursor < s.live_from || out.len() == max {
                s.delivered += out.len() as u64;
                return Some(out);
            }
            // Replay done: what was dropped at its end belongs to the first live packet.
            if let Some(first) = s.queue.front_mut() {
                first.dropped_before += std::mem::take(&mut s.pending_drops);
            }
        }
        while out.len() < max {
            let Some(d) = s.queue.pop_front() else { break };
            s.queued_bytes -= d.packet.cost();
            out.push(d);
        }
        s.delivered += out.len() as u64;
        Some(out)
    }

    /// What `id` got and missed so far.
    #[must_use]
    pub fn counts(&self, id: SubscriberId) -> Option<ClientCounts> {
        self.subscribers
            .iter()
            .find(|s| s.id == id)
            .map(|s| ClientCounts { delivered: s.delivered, dropped: s.dropped })
    }

    /// New ring bounds.
    pub fn set_limits(&mut self, limits: Limits) {
        self.ring.set_limits(limits);
    }

    /// Ends every subscription (the service is stopping).
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Whether [`Hub::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Counters and gauges.
    #[must_use]
    pub fn stats(&self) -> HubStats {
        HubStats {
            evicted: self.ring.evicted(),
            ring_packets: self.ring.len(),
            ring_bytes: self.ring.bytes(),
            clients: self.subscribers.len(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(h: &mut Hub, iface: Iface, n: u64) {
        for i in 0..n {
            h.push(iface, i, 60, false, &[0u8; 60]);
        }
    }

    fn seqs(d: &[Delivered]) -> Vec<u64> {
        d.iter().map(|d| d.packet.seq).collect()
    }

    #[test]
    fn replays_the_ring_then_delivers_live_packets_in_order() {
        let mut h = Hub::new(Limits::default());
        push(&mut h, Iface::Uplink, 3);
        let id = h.subscribe(Selection::ALL, usize::MAX);
        push(&mut h, Iface::Lan, 2);
        assert_eq!(seqs(&h.next(id, 2).unwrap()), [0, 1]);
        assert_eq!(seqs(&h.next(id, 10).unwrap()), [2, 3, 4]);
        assert!(h.next(id, 10).unwrap().is_empty());
        assert_eq!(h.counts(id), Some(ClientCounts { delivered: 5, dropped: 0 }));
    }

    #[test]
    fn replay_is_capped_and_filtered_by_interface() {
        let mut h = Hub::new(Limits::default());
        for i in 0..10 {
            h.push(if i % 2 == 0 { Iface::Uplink } else { Iface::Lan }, i, 60, false, &[0; 60]);
        }
        let id = h.subscribe(Selection::of(&[Iface::Lan]), 2);
        assert_eq!(seqs(&h.next(id, 100).unwrap()), [7, 9]);
        h.push(Iface::Uplink, 11, 60, false, &[0; 60]);
        h.push(Iface::Lan, 12, 60, false, &[0; 60]);
        assert_eq!(seqs(&h.next(id, 100).unwrap()), [11]);
        let live_only = h.subscribe(Selection::ALL, 0);
        assert!(h.next(live_only, 100).unwrap().is_empty());
    }

    #[test]
    fn a_full_queue_drops_for_that_client_only_and_says_how_many() {
        let mut h = Hub::with_queue_bounds(Limits::default(), 3, 1 << 20);
        let slow = h.subscribe(Selection::ALL, 0);
        let fast = h.subscribe(Selection::ALL, 0);
        push(&mut h, Iface::Lan, 2);
        assert_eq!(h.next(fast, 100).unwrap().len(), 2);
        for _ in 0..6 {
            // fast keeps up, slow's queue fills at 3
            push(&mut h, Iface::Lan, 1);
            assert_eq!(h.next(fast, 100).unwrap().len(), 1);
        }
        let got = h.next(slow, 100).unwrap();
        assert_eq!(seqs(&got), [0, 1, 2]);
        assert!(got.iter().all(|d| d.dropped_before == 0));
        push(&mut h, Iface::Lan, 1);
        let got = h.next(slow, 100).unwrap();
        assert_eq!(seqs(&got), [8]);
        assert_eq!(got[0].dropped_before, 5, "packets 3..=7 were dropped for the slow client");
        assert_eq!(h.counts(slow), Some(ClientCounts { delivered: 4, dropped: 5 }));
        assert_eq!(h.counts(fast), Some(ClientCounts { delivered: 8, dropped: 0 }));
        assert_eq!(h.stats().client_drops, 5);
        assert_eq!(h.stats().captured, [0, 9]);
    }

    #[test]
    fn the_byte_bound_of_a_queue_counts_too() {
        let cost = 60 + crate::ring::PER_PACKET_OVERHEAD;
        let mut h = Hub::with_queue_bounds(Limits::default(), 1000, 2 * cost);
        let id = h.subscribe(Selection::ALL, 0);
        push(&mut h, Iface::Uplink, 3);
        let got = h.next(id, 100).unwrap();
        assert_eq!(got.len(), 2);
        push(&mut h, Iface::Uplink, 1);
        assert_eq!(h.next(id, 100).unwrap()[0].dropped_before, 1);
    }

    #[test]
    fn packets_evicted_before_the_replay_reached_them_are_reported() {
        let mut h = Hub::new(Limits { max_packets: 4, max_bytes: 1 << 20 });
        push(&mut h, Iface::Lan, 4);
        let id = h.subscribe(Selection::ALL, usize::MAX);
        assert_eq!(seqs(&h.next(id, 1).unwrap()), [0]);
        push(&mut h, Iface::Lan, 2); // evicts 0 and 1; 1 was still to be replayed
        let got = h.next(id, 100).unwrap();
        assert_eq!(seqs(&got), [2, 3, 4, 5], "the rest of the replay, then the live packets");
        assert_eq!(got.iter().map(|d| d.dropped_before).collect::<Vec<_>>(), [1, 0, 0, 0]);
    }

    #[test]
    fn close_and_unsubscribe_end_the_stream() {
        let mut h = Hub::new(Limits::default());
        let a = h.subscribe(Selection::ALL, 0);
        let b = h.subscribe(Selection::ALL, 0);
        h.unsubscribe(a);
        assert!(h.next(a, 1).is_none());
        assert_eq!(h.stats().clients, 1);
        h.close();
        assert!(h.next(b, 1).is_none());
    }
}
