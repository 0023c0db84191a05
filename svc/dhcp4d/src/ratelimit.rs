//! A token bucket per client hardware address, so a flood from one MAC costs
//! that MAC its answers and nobody else theirs.
//!
//! A real client needs two messages per lease (DISCOVER and REQUEST) and
//! retransmits after seconds (RFC 2131 §4.1); [`BURST`] and [`RATE`] leave it
//! a wide margin. The table is bounded: idle buckets (full again) are dropped
//! when it grows past [`SWEEP_AT`], at most once a second; if a flood of fresh MACs keeps it there,
//! new MACs pass untracked rather than evict a flooding MAC's empty bucket.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::wire::Mac;

/// Messages a MAC may send at once.
pub const BURST: f64 = 20.0;
/// Messages per second a MAC may keep sending.
pub const RATE: f64 = 5.0;
/// Table size at which idle buckets are swept.
pub const SWEEP_AT: usize = 4096;
/// Hard limit on tracked MACs.
pub const MAX_TRACKED: usize = 2 * SWEEP_AT;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * RATE).min(BURST);
        self.at = self.at.max(now);
    }

    fn full_at(&self) -> Instant {
        self.at + Duration::from_secs_f64((BURST - self.tokens).max(0.0) / RATE)
    }
}

/// How often a full table may be swept (each sweep visits every bucket).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The buckets.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<Mac, Bucket>,
    next_sweep: Option<Instant>,
}

impl RateLimiter {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a message from `mac` at `now` may be handled (and takes a token if so).
    pub fn allow(&mut self, mac: Mac, now: Instant) -> bool {
        if let Some(b) = self.buckets.get_mut(&mac) {
            b.refill(now);
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return true;
            }
            return false;
        }
        if self.buckets.len() >= SWEEP_AT && self.next_sweep.is_none_or(|t| now >= t) {
            self.buckets.retain(|_, b| b.full_at() > now);
            self.next_sweep = Some(now + SWEEP_EVERY);
        }
        if self.buckets.len() < MAX_TRACKED {
            self.buckets.insert(mac, Bucket { tokens: BURST - 1.0, at: now });
        }
        true
    }

    /// How many MACs are tracked.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let t0 = runtime::clock::now();
        let mut rl = RateLimiter::new();
        let mac = [2, 0, 0, 0, 0, 1];
        let passed = (0..100).filter(|_| rl.allow(mac, t0)).count();
        assert_eq!(passed, BURST as usize);
        // One second later, RATE more.
        let t1 = t0 + Duration::from_secs(1);
        let passed = (0..100).filter(|_| rl.allow(mac, t1)).count();
        assert_eq!(passed, RATE as usize);
        // Another MAC is not affected.
        assert!(rl.allow([2, 0, 0, 0, 0, 2], t1));
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_flooders() {
        let t0 = runtime::clock::now();
        let mut rl = RateLimiter::new();
        let flooder = [2, 0xff, 0, 0, 0, 0];
        while rl.allow(flooder, t0) {}
        for i in 0..(3 * MAX_TRACKED as u32) {
            let b = i.to_be_bytes();
            assert!(rl.allow([2, 0, b[0], b[1], b[2], b[3]], t0), "fresh MACs pass");
        }
        assert!(rl.tracked() <= MAX_TRACKED);
        assert!(!rl.allow(flooder, t0), "the flooder's empty bucket was not evicted");
        // Much later every bucket is idle and a sweep empties the table.
        let later = t0 + Duration::from_secs(60);
        rl.allow([2, 1, 1, 1, 1, 1], later);
        assert!(rl.tracked() < 10, "{}", rl.tracked());
    }
}
