//! Retransmission (RFC 8415 §15) with the parameters of §7.6, and the
//! randomness the client needs (transaction IDs, RAND), injected so tests and
//! the fuzz target are deterministic.

use std::time::{Duration, Instant};

/// The source of transaction IDs and of RAND (RFC 8415 §15).
pub trait Random {
    /// A fresh transaction ID (RFC 8415 §16.1).
    fn transaction_id(&mut self) -> [u8; 3];
    /// RAND in thousandths: uniform in `-100..=100`, i.e. −0.1..+0.1.
    fn jitter_permille(&mut self) -> i32;
}

/// How a message is retransmitted (RFC 8415 §15); zero means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Initial retransmission time.
    pub irt: Duration,
    /// Maximum retransmission time.
    pub mrt: Duration,
    /// Maximum retransmission count.
    pub mrc: u32,
    /// Maximum retransmission duration (for Renew and Rebind it is set per
    /// exchange from T2 and the lifetimes; see [`Retransmit::new`]).
    pub mrd: Duration,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// SOL_MAX_DELAY: the first Solicit waits up to this long (§18.2.1).
pub const SOL_MAX_DELAY: Duration = secs(1);
/// CNF_MAX_DELAY: the Rebind after a restart waits up to this long (§18.2.12 → §18.2.3).
pub const CNF_MAX_DELAY: Duration = secs(1);
/// Solicit: SOL_TIMEOUT, SOL_MAX_RT (§7.6; a server may change MRT, §21.24).
pub const SOLICIT: Params = Params { irt: secs(1), mrt: secs(3600), mrc: 0, mrd: Duration::ZERO };
/// Request: REQ_TIMEOUT, REQ_MAX_RT, REQ_MAX_RC.
pub const REQUEST: Params = Params { irt: secs(1), mrt: secs(30), mrc: 10, mrd: Duration::ZERO };
/// Renew: REN_TIMEOUT, REN_MAX_RT; MRD = until T2 (§18.2.4).
pub const RENEW: Params = Params { irt: secs(10), mrt: secs(600), mrc: 0, mrd: Duration::ZERO };
/// Rebind: REB_TIMEOUT, REB_MAX_RT; MRD = until the leases expire (§18.2.5).
pub const REBIND: Params = Params { irt: secs(10), mrt: secs(600), mrc: 0, mrd: Duration::ZERO };
/// The Rebind a client with delegated prefixes sends after a restart uses the
/// Confirm parameters CNF_TIMEOUT, CNF_MAX_RT, CNF_MAX_RD (§18.2.12).
pub const REBIND_AFTER_RESTART: Params = Params { irt: secs(1), mrt: secs(4), mrc: 0, mrd: secs(10) };
/// Release: REL_TIMEOUT, REL_MAX_RC.
pub const RELEASE: Params = Params { irt: secs(1), mrt: Duration::ZERO, mrc: 4, mrd: Duration::ZERO };
/// SOL_MAX_RT values a server may set (§21.24): others are ignored.
pub const SOL_MAX_RT_RANGE: std::ops::RangeInclusive<u32> = 60..=86400;

/// `base + RAND × base`, RAND in thousandths.
fn jittered(base: Duration, permille: i32) -> Duration {
    let ns = base.as_nanos();
    let delta = ns * u128::from(permille.unsigned_abs().min(100)) / 1000;
    let out = if permille < 0 { ns - delta } else { ns + delta };
    Duration::from_nanos(u64::try_from(out).unwrap_or(u64::MAX))
}

/// A random delay in `0..=max` (SOL_MAX_DELAY, CNF_MAX_DELAY).
pub fn initial_delay(max: Duration, rng: &mut dyn Random) -> Duration {
    // Map −100..=100 onto 0..=1.
    let p = u32::try_from(rng.jitter_permille().clamp(-100, 100) + 100).unwrap_or(0);
    max * p / 200
}

/// The retransmission state of one message exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retransmit {
    params: Params,
    /// When the next transmission is due.
    next: Instant,
    /// The current RT (zero before the first transmission).
    rt: Duration,
    /// Transmissions so far.
    sent: u32,
    /// The first transmission, for Elapsed Time and MRD.
    first: Option<Instant>,
    /// When the exchange fails however things go (MRD, or a fixed end).
    give_up_at: Option<Instant>,
    /// Solicit: the first RT is strictly greater than IRT (§18.2.1).
    first_rand_positive: bool,
}

impl Retransmit {
    /// An exchange whose first transmission is due at `start`. `give_up_at`
    /// ends it early (Renew at T2, Rebind at the end of the valid lifetimes);
    /// a non-zero `params.mrd` ends it MRD after the first transmission.
    #[must_use]
    pub fn new(params: Params, start: Instant, give_up_at: Option<Instant>) -> Self {
        Self { params, next: start, rt: Duration::ZERO, sent: 0, first: None, give_up_at, first_rand_positive: false }
    }

    /// A Solicit exchange: as [`Retransmit::new`], with RAND > 0 for the first RT.
    #[must_use]
    pub fn solicit(params: Params, start: Instant) -> Self {
        Self { first_rand_positive: true, ..Self::new(params, start, None) }
    }

    /// Whether a transmission is due.
    #[must_use]
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// When the exchange fails if nothing arrives: MRD, the fixed end, or the
    /// end of the last RT once MRC transmissions were made (§15).
    #[must_use]
    pub fn fails_at(&self) -> Option<Instant> {
        let by_count = (self.params.mrc != 0 && self.sent >= self.params.mrc).then_some(self.next);
        let by_duration = match (self.first, self.params.mrd.is_zero()) {
            (Some(first), false) => Some(first + self.params.mrd),
            _ => None,
        };
        [by_count, by_duration, self.give_up_at].into_iter().flatten().min()
    }

    /// Whether the exchange has failed at `now`.
    #[must_use]
    pub fn failed(&self, now: Instant) -> bool {
        self.fails_at().is_some_and(|at| now >= at)
    }

    /// The earliest time something happens: a transmission or the failure.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.fails_at().map_or(self.next, |f| f.min(self.next))
    }

    /// Records a transmission at `now` and computes the next RT (§15).
    pub fn on_transmit(&mut self, now: Instant, rng: &mut dyn Random) {
        let mut rand = rng.jitter_permille().clamp(-100, 100);
        self.rt = if self.sent == 0 {
            if self.first_rand_positive {
                rand = rand.abs().max(1);
            }
            jittered(self.params.irt, rand)
        } else {
            // RT = 2·RTprev + RAND·RTprev
            let prev = self.rt;
            let spread = jittered(prev, rand).abs_diff(prev);
            if rand < 0 { prev * 2 - spread } else { prev * 2 + spread }
        };
        if !self.params.mrt.is_zero() && self.rt > self.params.mrt {
            self.rt = jittered(self.params.mrt, rand);
        }
        if self.sent == 0 {
            self.first = Some(now);
        }
        self.sent = self.sent.saturating_add(1);
        self.next = now + self.rt;
    }

    /// Transmissions so far.
    #[must_use]
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// The current RT.
    #[must_use]
    pub fn rt(&self) -> Duration {
        self.rt
    }

    /// When the first transmission was made.
    #[must_use]
    pub fn first_sent(&self) -> Option<Instant> {
        self.first
    }

    /// Replaces MRT (a server's SOL_MAX_RT, §21.24).
    pub fn set_mrt(&mut self, mrt: Duration) {
        self.params.mrt = mrt;
    }

    /// Elapsed Time for a transmission at `now` (§21.9): hundredths of a
    /// second since the first transmission, 0 for the first, capped at 0xffff.
    #[must_use]
    pub fn elapsed_cs(&self, now: Instant) -> u16 {
        self.first
            .map_or(0, |first| u16::try_from(now.saturating_duration_since(first).as_millis() / 10).unwrap_or(0xffff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(i32);
    impl Random for Fixed {
        fn transaction_id(&mut self) -> [u8; 3] {
            [0, 0, 1]
        }
        fn jitter_permille(&mut self) -> i32 {
            self.0
        }
    }

    fn rts(params: Params, rand: i32, n: usize) -> Vec<u64> {
        let t0 = runtime::clock::now();
        let mut r = Retransmit::new(params, t0, None);
        let mut rng = Fixed(rand);
        let mut now = t0;
        (0..n)
            .map(|_| {
                r.on_transmit(now, &mut rng);
                now = r.next;
                u64::try_from(r.rt().as_millis()).unwrap()
            })
            .collect()
    }

    #[test]
    fn rt_doubles_from_irt_up_to_mrt_within_the_jitter() {
        assert_eq!(rts(REQUEST, 0, 7), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        // RAND = +0.1 every time: IRT·1.1, then 2·RT + 0.1·RT, capped at MRT·1.1.
        assert_eq!(rts(REQUEST, 100, 6), [1100, 2310, 4851, 10187, 21392, 33000]);
        assert_eq!(rts(REQUEST, -100, 6), [900, 1710, 3249, 6173, 11728, 22284]);
        assert_eq!(rts(RENEW, 0, 8), [10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000]);
        assert_eq!(rts(RELEASE, 0, 5), [1000, 2000, 4000, 8000, 16000], "no MRT for Release");
    }

    #[test]
    fn the_first_solicit_rt_is_strictly_longer_than_irt() {
        for rand in [-100, -1, 0] {
            let t0 = runtime::clock::now();
            let mut r = Retransmit::solicit(SOLICIT, t0);
            r.on_transmit(t0, &mut Fixed(rand));
            assert!(r.rt() > SOLICIT.irt, "RAND {rand}: {:?}", r.rt());
        }
    }

    #[test]
    fn mrc_fails_the_exchange_after_the_last_rt_and_mrd_after_the_duration() {
        let t0 = runtime::clock::now();
        let mut rng = Fixed(0);
        let mut r = Retransmit::new(RELEASE, t0, None);
        let mut now = t0;
        for _ in 0..4 {
            assert!(r.due(now) && !r.failed(now));
            r.on_transmit(now, &mut rng);
            now = r.deadline();
        }
        assert_eq!(now, t0 + secs(1 + 2 + 4 + 8));
        assert!(r.failed(now), "four Releases and the last RT: done");

        let mut c = Retransmit::new(REBIND_AFTER_RESTART, t0, None);
        let mut now = t0;
        let mut sent = 0;
        while !c.failed(now) {
            if c.due(now) {
                c.on_transmit(now, &mut rng);
                sent += 1;
            }
            now = c.deadline();
        }
        assert_eq!(now, t0 + secs(10), "CNF_MAX_RD");
        assert_eq!(sent, 4, "at 0, 1, 3 and 7 s (RT 1, 2, 4, 4)");

        let t2 = t0 + secs(25);
        let mut renew = Retransmit::new(RENEW, t0, Some(t2));
        renew.on_transmit(t0, &mut rng);
        renew.on_transmit(t0 + secs(10), &mut rng);
        assert_eq!(renew.deadline(), t2, "the next Renew (at 30 s) would be past T2");
    }

    #[test]
    fn elapsed_time_counts_hundredths_from_the_first_transmission() {
        let t0 = runtime::clock::now();
        let mut r = Retransmit::new(REQUEST, t0, None);
        assert_eq!(r.elapsed_cs(t0), 0);
        r.on_transmit(t0, &mut Fixed(0));
        assert_eq!(r.elapsed_cs(t0 + Duration::from_millis(1234)), 123);
        assert_eq!(r.elapsed_cs(t0 + secs(3600)), 0xffff);
    }
}
