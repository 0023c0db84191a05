//! When Router Advertisements go out (RFC 4861 §6.2.4–§6.2.6), apart from what
//! they say: unsolicited multicast RAs at random intervals, the first few of them
//! faster, solicited RAs after a random delay, and every multicast RA at least
//! MIN_DELAY_BETWEEN_RAS after the previous one.
//!
//! Solicited RAs go by unicast to a soliciting host that has an address and
//! told us its link-layer address (RFC 7772 §5.1: battery-powered hosts are
//! not woken by every other host's solicitation), else by multicast. A flood of
//! solicitations is bounded: at most [`MAX_PENDING_UNICAST`] unicast replies wait
//! at once; beyond that they fold into one rate-limited multicast RA.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use crate::random::{self, Random};

/// MAX_INITIAL_RTR_ADVERT_INTERVAL (§10).
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL: Duration = Duration::from_secs(16);
/// MAX_INITIAL_RTR_ADVERTISEMENTS (§10).
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u32 = 3;
/// MIN_DELAY_BETWEEN_RAS (§10).
pub const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// MAX_RA_DELAY_TIME (§10).
pub const MAX_RA_DELAY_TIME: Duration = Duration::from_millis(500);
/// Unicast replies that may wait at once.
pub const MAX_PENDING_UNICAST: usize = 8;

/// MinRtrAdvInterval and MaxRtrAdvInterval (§6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    /// MinRtrAdvInterval.
    pub min: Duration,
    /// MaxRtrAdvInterval.
    pub max: Duration,
}

/// An advertisement that is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// To all nodes; `solicited` when it answers a solicitation or a reload
    /// rather than the periodic timer.
    Multicast {
        /// Whether a solicitation or a reload brought it forward.
        solicited: bool,
    },
    /// To one host that solicited.
    Unicast(Ipv6Addr),
}

/// What happened to a solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Nothing is advertised, so nothing answers it.
    Idle,
    /// A multicast RA already due by then answers it.
    Covered,
    /// A unicast RA is scheduled (or already was for this host).
    Unicast,
    /// A multicast RA is scheduled (or already was).
    Multicast,
}

/// The timers of one advertising interface.
#[derive(Debug, Clone)]
pub struct Schedule {
    intervals: Intervals,
    /// Whether there is anything to advertise.
    active: bool,
    /// The next periodic multicast RA.
    next_unsolicited: Option<Instant>,
    /// Multicast RAs since advertising (re)started, counted for the fast start.
    initial_sent: u32,
    last_multicast: Option<Instant>,
    /// A multicast RA brought forward by a solicitation or a reload.
    early_multicast: Option<Instant>,
    unicast: Vec<(Instant, Ipv6Addr)>,
}

impl Schedule {
    /// An idle schedule.
    #[must_use]
    pub fn new(intervals: Intervals) -> Self {
        Self {
            intervals,
            active: false,
            next_unsolicited: None,
            initial_sent: 0,
            last_multicast: None,
            early_multicast: None,
            unicast: Vec::new(),
        }
    }

    /// Changes the intervals; the next periodic RA is re-drawn when it would
    /// now come too late.
    pub fn set_intervals(&mut self, now: Instant, intervals: Intervals, rng: &mut dyn Random) {
        self.intervals = intervals;
        if self.next_unsolicited.is_some_and(|at| at > now + intervals.max) {
            self.next_unsolicited = Some(now + self.draw_interval(rng));
        }
    }

    /// Whether advertising.
    #[must_use]
    pub fn active(&self) -> bool {
        self.active
    }

    /// When the last multicast RA went out.
    #[must_use]
    pub fn last_multicast(&self) -> Option<Instant> {
        self.last_multicast
    }

    /// When the next periodic RA is due.
    #[must_use]
    pub fn next_unsolicited(&self) -> Option<Instant> {
        self.next_unsolicited
    }

    /// The earliest a multicast RA may go out (MIN_DELAY_BETWEEN_RAS, §6.2.6).
    fn earliest_multicast(&self, now: Instant) -> Instant {
        match self.last_multicast {
            Some(last) => now.max(last + MIN_DELAY_BETWEEN_RAS),
            None => now,
        }
    }

    /// Starts advertising, or restarts the fast start after what the RAs say
    /// changed (§6.2.4 allows up to MAX_INITIAL_RTR_ADVERTISEMENTS then; RFC 7772
    /// §5.1 allows frequent RAs for a short while after a change): one RA as soon
    /// as the rate limit allows, the next ones at most 16 s apart.
    pub fn start(&mut self, now: Instant) {
        self.active = true;
        self.initial_sent = 0;
        self.next_unsolicited = Some(self.earliest_multicast(now));
    }

    /// Stops advertising: nothing is left to say.
    pub fn stop(&mut self) {
        self.active = false;
        self.next_unsolicited = None;
        self.early_multicast = None;
        self.unicast.clear();
    }

    /// Sends one multicast RA as soon as the rate limit allows (a reload).
    pub fn send_soon(&mut self, now: Instant) {
        if !self.active {
            return;
        }
        let at = self.earliest_multicast(now);
        if self.next_unsolicited.is_some_and(|n| n <= at) {
            return;
        }
        self.early_multicast = Some(self.early_multicast.map_or(at, |e| e.min(at)));
    }

    /// Schedules the answer to a valid solicitation from `source` (`unicast`
    /// when the host may be answered directly), per §6.2.6.
    pub fn solicit(&mut self, now: Instant, source: Option<Ipv6Addr>, rng: &mut dyn Random) -> Answer {
        if !self.active {
            return Answer::Idle;
        }
        let delay = random::between(rng, Duration::ZERO, MAX_RA_DELAY_TIME);
        let at = now + delay;
        // "If the computed value corresponds to a time later than the time the
        // next multicast RA is scheduled to be sent, ignore the random delay."
        let next_multicast = [self.next_unsolicited, self.early_multicast].into_iter().flatten().min();
        if next_multicast.is_some_and(|m| m <= at) {
            return Answer::Covered;
        }
        if let Some(addr) = source {
            if self.unicast.iter().any(|&(_, a)| a == addr) {
                return Answer::Unicast;
            }
            if self.unicast.len() < MAX_PENDING_UNICAST {
                self.unicast.push((at, addr));
                return Answer::Unicast;
            }
        }
        if self.early_multicast.is_none() {
            // Rate limited: MIN_DELAY_BETWEEN_RAS plus the random value after the
            // previous multicast RA. One pending multicast RA answers every
            // solicitation until it goes; its delay counts from the first.
            let at = match self.last_multicast {
                Some(last) if last + MIN_DELAY_BETWEEN_RAS > now => last + MIN_DELAY_BETWEEN_RAS + delay,
                _ => at,
            };
            self.early_multicast = Some(at);
        }
        Answer::Multicast
    }

    /// The next time [`Schedule::poll`] has something.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        if !self.active {
            return None;
        }
        [self.next_unsolicited, self.early_multicast]
            .into_iter()
            .chain(self.unicast.iter().map(|&(at, _)| Some(at)))
            .flatten()
            .min()
    }

    fn draw_interval(&self, rng: &mut dyn Random) -> Duration {
        random::between(rng, self.intervals.min, self.intervals.max)
    }

    /// The advertisement due at `now`, if any; call until `None`. A multicast RA
    /// resets the periodic timer (§6.2.4, and for solicited ones §6.2.6) and
    /// makes pending unicast replies unnecessary.
    pub fn poll(&mut self, now: Instant, rng: &mut dyn Random) -> Option<Due> {
        if !self.active {
            return None;
        }
        let periodic_due = self.next_unsolicited.is_some_and(|at| at <= now);
        let early_due = self.early_multicast.is_some_and(|at| at <= now);
        if periodic_due || early_due {
            self.last_multicast = Some(now);
            self.early_multicast = None;
            self.unicast.clear();
            self.initial_sent = self.initial_sent.saturating_add(1);
            let mut interval = self.draw_interval(rng);
            if self.initial_sent < MAX_INITIAL_RTR_ADVERTISEMENTS {
                interval = interval.min(MAX_INITIAL_RTR_ADVERT_INTERVAL);
            }
            self.next_unsolicited = Some(now + interval);
            return Some(Due::Multicast { solicited: early_due && !periodic_due });
        }
        let i = self.unicast.iter().enumerate().filter(|(_, (at, _))| *at <= now).min_by_key(|(_, (at, _))| *at)?.0;
        let (_, addr) = self.unicast.swap_remove(i);
        Some(Due::Unicast(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;

    /// Always returns the same number: 0 gives the lowest value of every
    /// range, `u64::MAX` the highest.
    struct Fixed(u64);
    impl Random for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    const HOST: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x42);
    const DEFAULT: Intervals = Intervals { min: Duration::from_secs(200), max: Duration::from_secs(600) };

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Runs the schedule until `end`, jumping to each `poll_at`; returns what went out when.
    fn run(s: &mut Schedule, t0: Instant, end: Duration, rng: &mut dyn Random) -> Vec<(Duration, Due)> {
        let mut out = Vec::new();
        while let Some(at) = s.poll_at() {
            if at > t0 + end {
                break;
            }
            while let Some(d) = s.poll(at, rng) {
                out.push((at - t0, d));
            }
        }
        out
    }

    #[test]
    fn first_three_advertisements_come_at_most_sixteen_seconds_apart() {
        let t0 = runtime::clock::now();
        let mut rng = Fixed(u64::MAX);
        let mut s = Schedule::new(DEFAULT);
        assert_eq!(s.poll_at(), None, "idle until started");
        s.start(t0);
        let sent = run(&mut s, t0, secs(2000.0), &mut rng);
        let times: Vec<Duration> = sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(times[..3], [secs(0.0), secs(16.0), secs(32.0)]);
        assert!(times[3] - times[2] >= DEFAULT.min, "then the normal interval: {times:?}");
        assert!(sent.iter().all(|(_, d)| *d == Due::Multicast { solicited: false }));
    }

    #[test]
    fn unsolicited_intervals_stay_within_min_and_max() {
        let t0 = runtime::clock::now();
        for seed in 0..50 {
            let mut rng = SplitMix64::new(seed);
            let mut s = Schedule::new(DEFAULT);
            s.start(t0);
            let times: Vec<Duration> = run(&mut s, t0, secs(20_000.0), &mut rng).into_iter().map(|(t, _)| t).collect();
            assert!(times.len() > 30);
            for w in times.windows(2).skip(2) {
                let gap = w[1] - w[0];
                assert!(gap >= DEFAULT.min && gap <= DEFAULT.max, "seed {seed}: {gap:?}");
            }
        }
        // With the lowest draw the fast start still obeys MinRtrAdvInterval when it is below 16 s.
        let short = Intervals { min: Duration::from_secs(4), max: Duration::from_secs(10) };
        let mut s = Schedule::new(short);
        s.start(t0);
        let times: Vec<Duration> = run(&mut s, t0, secs(30.0), &mut Fixed(0)).into_iter().map(|(t, _)| t).collect();
        assert_eq!(times[..4], [secs(0.0), secs(4.0), secs(8.0), secs(12.0)]);
    }

    #[test]
    fn solicited_unicast_comes_within_half_a_second() {
        let t0 = runtime::clock::now();
        let mut s = Schedule::new(DEFAULT);
        s.start(t0);
        let mut rng = Fixed(u64::MAX);
        assert_eq!(run(&mut s, t0, secs(99.0), &mut rng).len(), 3, "the fast start");
        let t = t0 + secs(100.0);
        assert_eq!(s.solicit(t, Some(HOST), &mut rng), Answer::Unicast);
        assert_eq!(s.poll_at(), Some(t + MAX_RA_DELAY_TIME), "the highest draw is MAX_RA_DELAY_TIME");
        assert_eq!(s.poll(t + secs(0.4), &mut rng), None);
        assert_eq!(s.poll(t + secs(0.5), &mut rng), Some(Due::Unicast(HOST)));
        assert_eq!(s.poll(t + secs(0.5), &mut rng), None);
        // The same host asking twice while its answer waits gets one answer.
        assert_eq!(s.solicit(t + secs(1.0), Some(HOST), &mut Fixed(0)), Answer::Unicast);
        assert_eq!(s.solicit(t + secs(1.0), Some(HOST), &mut Fixed(0)), Answer::Unicast);
        assert_eq!(run(&mut s, t0, secs(102.0), &mut rng), [(secs(101.0), Due::Unicast(HOST))]);
        assert_eq!(s.last_multicast(), Some(t0 + secs(32.0)), "unicast replies leave the multicast timers alone");
    }

    #[test]
    fn solicitations_within_the_rate_limit_share_one_multicast_advertisement() {
        let t0 = runtime::clock::now();
        let mut s = Schedule::new(DEFAULT);
        s.start(t0);
        let mut rng = Fixed(0);
        assert_eq!(s.poll(t0, &mut rng), Some(Due::Multicast { solicited: false }));
        // Hosts without an address (or without a link-layer option) get multicast.
        for ms in [1000, 1200, 2500] {
            assert_eq!(s.solicit(t0 + Duration::from_millis(ms), None, &mut rng), Answer::Multicast);
        }
        let sent = run(&mut s, t0, secs(10.0), &mut rng);
        assert_eq!(sent, [(secs(3.0), Due::Multicast { solicited: true })], "one RA, at MIN_DELAY_BETWEEN_RAS");
        // That RA reset the periodic timer as if it had been unsolicited (§6.2.6),
        // and counts as the second of the fast start.
        assert_eq!(s.next_unsolicited(), Some(t0 + secs(3.0) + secs(16.0).min(DEFAULT.min)));
    }

    #[test]
    fn a_solicited_multicast_is_delayed_up_to_half_a_second_when_not_rate_limited() {
        let t0 = runtime::clock::now();
        let mut s = Schedule::new(DEFAULT);
        s.start(t0);
        let mut top = Fixed(u64::MAX);
        s.poll(t0, &mut top);
        let t = t0 + secs(10.0);
        assert_eq!(s.solicit(t, None, &mut top), Answer::Multicast);
        assert_eq!(s.poll_at(), Some(t + MAX_RA_DELAY_TIME));
    }

    #[test]
    fn a_solicitation_shortly_before_the_periodic_advertisement_is_covered_by_it() {
        let t0 = runtime::clock::now();
        let mut s = Schedule::new(DEFAULT);
        s.start(t0);
        let mut rng = Fixed(u64::MAX);
        s.poll(t0, &mut rng);
        let next = s.next_unsolicited().unwrap();
        assert_eq!(s.solicit(next - secs(0.1), Some(HOST), &mut rng), Answer::Covered);
        assert_eq!(s.solicit(next - secs(0.1), None, &mut rng), Answer::Covered);
        assert_eq!(s.poll_at(), Some(next));
    }

    #[test]
    fn a_flood_of_solicitations_is_bounded() {
        let t0 = runtime::clock::now();
        let mut s = Schedule::new(DEFAULT);
        s.start(t0);
        let mut rng = SplitMix64::new(3);
        run(&mut s, t0, secs(99.0), &mut rng);
        let t = t0 + secs(100.0);
        let answers: Vec<Answer> =
            (1..=100u16).map(|i| s.solicit(t, Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i)), &mut rng)).collect();
        assert_eq!(answers.iter().filter(|a| **a == Answer::Unicast).count(), MAX_PENDING_UNICAST);
        let sent = run(&mut s, t0, secs(101.0), &mut rng);
        let multicast = sent.iter().filter(|(_, d)| matches!(d, Due::Multicast { .. })).count();
        assert_eq!(multicast, 1, "{sent:?}");
        assert!(sent.len() <= MAX_PENDING_UNICAST + 1);
    }

    #[test]
    fn a_reload_sends_at_once_but_never_faster_than_the_rate_limit() {
        let t0 = runtime::clock::now();
        let mut s = Schedule::new(DEFAULT);
        s.send_soon(t0);
        assert_eq!(s.poll_at(), None, "nothing while not advertising");
        s.start(t0);
        let mut rng = Fixed(u64::MAX);
        s.poll(t0, &mut rng);
        s.send_soon(t0 + secs(1.0));
        assert_eq!(s.poll_at(), Some(t0 + secs(3.0)));
        s.send_soon(t0 + secs(2.0));
        assert_eq!(s.poll(t0 + secs(3.0), &mut rng), Some(Due::Multicast { solicited: true }));
        s.send_soon(t0 + secs(20.0));
        assert_eq!(s.poll_at(), Some(t0 + secs(19.0)), "the fast start's periodic RA, due already, answers it");
    }

    #[test]
    fn multicast_advertisements_are_never_closer_than_three_seconds() {
        // A randomised conversation: solicitations, reloads and restarts at random times.
        let t0 = runtime::clock::now();
        for seed in 0..200 {
            let mut rng = SplitMix64::new(seed);
            let mut s = Schedule::new(Intervals { min: Duration::from_secs(3), max: Duration::from_secs(4) });
            let mut now = t0;
            let mut last: Option<Instant> = None;
            for _ in 0..300 {
                now += Duration::from_millis(rng.next_u64() % 2000);
                match rng.next_u64() % 6 {
                    0 => s.start(now),
                    1 => s.send_soon(now),
                    2 => {
                        s.solicit(now, None, &mut rng);
                    }
                    3 => {
                        s.solicit(now, Some(HOST), &mut rng);
                    }
                    4 if rng.next_u64().is_multiple_of(10) => s.stop(),
                    _ => {}
                }
                while let Some(at) = s.poll_at().filter(|at| *at <= now) {
                    while let Some(d) = s.poll(at, &mut rng) {
                        if let Due::Multicast { .. } = d {
                            if let Some(l) = last {
                                assert!(at - l >= MIN_DELAY_BETWEEN_RAS, "seed {seed}: {:?}", at - l);
                            }
                            last = Some(at);
                        }
                    }
                }
            }
        }
    }
}
