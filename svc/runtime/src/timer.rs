//! A deadline-ordered timer queue for shell housekeeping (batched writes,
//! periodic probes). Protocol deadlines come from the cores' `poll_at` instead.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::time::Instant;

/// Identifies one armed timer, for cancelling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

/// Timers ordered by deadline; equal deadlines fire in the order they were added.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerId, u64)>>,
    live: HashSet<TimerId>,
    next_id: u64,
}

impl TimerQueue {
    /// An empty queue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a timer that fires at `at` carrying `tag`.
    pub fn add(&mut self, at: Instant, tag: u64) -> TimerId {
        let id = TimerId(self.next_id);
        self.next_id += 1;
        self.heap.push(Reverse((at, id, tag)));
        self.live.insert(id);
        id
    }

    /// Disarms a timer; returns whether it was still armed.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        self.live.remove(&id)
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.discard_cancelled();
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, u64)> {
        self.discard_cancelled();
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, id, tag)) = self.heap.pop()?;
                self.live.remove(&id);
                Some((id, tag))
            }
            _ => None,
        }
    }

    /// Number of armed timers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no timer is armed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn discard_cancelled(&mut self) {
        while let Some(Reverse((_, id, _))) = self.heap.peek() {
            if self.live.contains(id) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_then_insertion_order() {
        let t0 = crate::clock::now();
        let mut q = TimerQueue::new();
        q.add(t0 + Duration::from_secs(3), 3);
        q.add(t0 + Duration::from_secs(1), 1);
        q.add(t0 + Duration::from_secs(2), 20);
        q.add(t0 + Duration::from_secs(2), 21);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None, "nothing is due before its deadline");
        let fired: Vec<u64> =
            std::iter::from_fn(|| q.pop_due(t0 + Duration::from_secs(2)).map(|(_, tag)| tag)).collect();
        assert_eq!(fired, vec![1, 20, 21]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop_due(t0 + Duration::from_secs(10)).map(|(_, t)| t), Some(3));
        assert!(q.is_empty());
    }

    #[test]
    fn cancelled_timers_never_fire_and_do_not_hold_the_deadline() {
        let t0 = crate::clock::now();
        let mut q = TimerQueue::new();
        let early = q.add(t0 + Duration::from_secs(1), 1);
        q.add(t0 + Duration::from_secs(5), 5);
        assert!(q.cancel(early));
        assert!(!q.cancel(early), "a second cancel reports nothing armed");
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(q.pop_due(t0 + Duration::from_secs(4)), None);
        assert_eq!(q.pop_due(t0 + Duration::from_secs(5)).map(|(_, t)| t), Some(5));
    }
}
