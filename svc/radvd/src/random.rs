//! Injected randomness for the advertisement timers (RFC 4861 §6.2.4 and
//! §6.2.6 ask for random intervals and delays). The core never reads a random
//! source itself: the shell seeds a [`SplitMix64`], tests pass their own.

use std::time::Duration;

/// A source of random 64-bit numbers.
pub trait Random: Send {
    /// The next number.
    fn next_u64(&mut self) -> u64;
}

/// A uniformly distributed duration in `[lo, hi]` (millisecond resolution).
pub fn between(rng: &mut dyn Random, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = u128::from(u64::try_from((hi - lo).as_millis()).unwrap_or(u64::MAX - 1)) + 1;
    // Scales the 64-bit draw onto [0, span): 0 gives `lo`, u64::MAX gives `hi`.
    let offset = (u128::from(rng.next_u64()) * span) >> 64;
    lo + Duration::from_millis(u64::try_from(offset).unwrap_or(0))
}

/// Steele, Lea and Flood's SplitMix64: small, fast and well mixed; plenty for
/// timer jitter, which needs no secrecy.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl Random for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_stay_within_bounds_and_cover_them() {
        let mut rng = SplitMix64::new(7);
        let (lo, hi) = (Duration::from_secs(200), Duration::from_secs(600));
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..10_000 {
            let d = between(&mut rng, lo, hi);
            assert!(d >= lo && d <= hi, "{d:?}");
            seen_low |= d < Duration::from_secs(210);
            seen_high |= d > Duration::from_secs(590);
        }
        assert!(seen_low && seen_high);
        assert_eq!(between(&mut rng, hi, lo), hi, "an empty range gives its lower end");
        struct Fixed(u64);
        impl Random for Fixed {
            fn next_u64(&mut self) -> u64 {
                self.0
            }
        }
        assert_eq!(between(&mut Fixed(0), lo, hi), lo);
        assert_eq!(between(&mut Fixed(u64::MAX), lo, hi), hi);
        assert_eq!(between(&mut Fixed(1 << 63), lo, hi), Duration::from_millis(400_000));
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let a: Vec<u64> = (0..4).scan(SplitMix64::new(1), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).scan(SplitMix64::new(1), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
    }
}
