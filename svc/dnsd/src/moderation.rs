//! Interrupt moderation for busy UDP listeners, as network drivers do it
//! (NAPI): above [`ON_ABOVE`] client datagrams per second arriving in small
//! bursts (fewer than [`SMALL_BURST`] per wake-up), a listener that has been
//! drained leaves the poll set (`listeners::mute`); a periodic timer
//! ([`PERIOD`]) reads what arrived meanwhile, as one batch. A cache hit's cost
//! is nearly all the kernel's (see `examples/udp_floor.rs` and
//! `bench/RESULTS.md`), and its wake-ups (ours and the client's, whose answers
//! come in one `sendmmsg`) are the part a batch shares; batching trades at most
//! [`PERIOD`] of latency (on average half) for fewer of them. Below
//! [`OFF_BELOW`] per second (every home network, nearly always), or when the
//! timer finds more than [`BIG_BURST`] datagrams each time (a flood that
//! batches itself, which the timer would only slow down), each datagram wakes
//! the loop at once again. Reconsidered every [`WINDOW`] of reads (and once a
//! second by the housekeeping timer), so a change of load costs at most a
//! tenth of a second in the wrong mode, and an idle listener costs no timer.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

/// Turn moderation on above this many client datagrams per second.
pub const ON_ABOVE: u64 = 4000;
/// Turn it off below this many.
pub const OFF_BELOW: u64 = 2000;
/// Moderate only when wake-ups find fewer datagrams than this on average.
pub const SMALL_BURST: u64 = 8;
/// Stop when the timer finds more than this on average.
pub const BIG_BURST: u64 = 32;
/// How often a moderated listener is read.
pub const PERIOD: Duration = Duration::from_micros(1000);
/// How much time of reads one decision looks at.
pub const WINDOW: Duration = Duration::from_millis(100);
/// Changes are logged at most this often: a load that swings around the
/// thresholds would otherwise log ten lines a second.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The moderation state and its timer.
#[derive(Debug)]
pub struct Moderation {
    timer: OwnedFd,
    on: bool,
    counted: u64,
    reads: u64,
    /// When the current window began (the first read after start-up).
    since: Option<Instant>,
    /// When a change was last reported, and how many were not since.
    reported: Option<Instant>,
    unreported: u64,
}

fn spec(period: Duration) -> Itimerspec {
    let t = Timespec { tv_sec: 0, tv_nsec: i64::from(period.subsec_nanos()) };
    Itimerspec { it_interval: t, it_value: t }
}

impl Moderation {
    /// A disarmed timer.
    pub fn new() -> io::Result<Self> {
        let timer =
            rustix::time::timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        Ok(Self { timer, on: false, counted: 0, reads: 0, since: None, reported: None, unreported: 0 })
    }

    /// The timer, to register for readability.
    #[must_use]
    pub fn timer(&self) -> &OwnedFd {
        &self.timer
    }

    /// Whether drained listeners should stay quiet until the timer.
    #[must_use]
    pub fn active(&self) -> bool {
        self.on
    }

    /// Counts one read of a listener that found `n` client datagrams.
    pub fn count(&mut self, n: usize) {
        if n > 0 {
            self.counted += n as u64;
            self.reads += 1;
        }
    }

    /// Once a [`WINDOW`] has passed since the last decision: turns moderation
    /// on or off by the rate seen in it; returns the new state when it changed.
    pub fn decide(&mut self, now: Instant) -> Option<bool> {
        let since = *self.since.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed < WINDOW {
            return None;
        }
        self.since = Some(now);
        let counted = std::mem::take(&mut self.counted);
        let per_read = counted / std::mem::take(&mut self.reads).max(1);
        // Per second; a window can be much longer than WINDOW when nothing
        // read for a while, which spreads what it saw accordingly.
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let rate = counted.saturating_mul(1_000_000) / micros.max(1);
        let want = if self.on {
            rate >= OFF_BELOW && per_read <= BIG_BURST
        } else {
            rate > ON_ABOVE && per_read < SMALL_BURST
        };
        if want == self.on {
            return None;
        }
        let period = if want { PERIOD } else { Duration::ZERO };
        if rustix::time::timerfd_settime(&self.timer, TimerfdTimerFlags::empty(), &spec(period)).is_err() {
            return None;
        }
        self.on = want;
        self.unreported += 1;
        Some(want)
    }

    /// After a change: how many changes to report now (this one included),
    /// or `None` while the last report is younger than [`REPORT_EVERY`].
    pub fn report(&mut self, now: Instant) -> Option<u64> {
        if self.reported.is_some_and(|at| now.saturating_duration_since(at) < REPORT_EVERY) {
            return None;
        }
        self.reported = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }

    /// Clears the timer's expirations after a wake-up.
    pub fn clear(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(self.timer.as_fd(), &mut buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed(m: &Moderation) -> bool {
        let spec = rustix::time::timerfd_gettime(&m.timer).unwrap();
        spec.it_interval.tv_nsec != 0 || spec.it_value.tv_nsec != 0
    }

    /// `total` datagrams in reads of `burst` each.
    fn feed(m: &mut Moderation, total: u64, burst: u64) {
        for _ in 0..total / burst {
            m.count(usize::try_from(burst).unwrap());
        }
    }

    /// A moderation whose first window began at the returned instant.
    fn started() -> (Moderation, Instant) {
        let mut m = Moderation::new().unwrap();
        let t = runtime::clock::now();
        assert_eq!(m.decide(t), None, "the first read only starts a window");
        (m, t)
    }

    #[test]
    fn turns_on_for_many_small_bursts_and_off_below_the_rate() {
        let (mut m, mut t) = started();
        let second = Duration::from_secs(1);
        feed(&mut m, ON_ABOVE, 1);
        t += second;
        assert_eq!(m.decide(t), None, "at the threshold: still off");
        feed(&mut m, 2 * ON_ABOVE, SMALL_BURST);
        t += second;
        assert_eq!(m.decide(t), None, "big bursts batch themselves");
        feed(&mut m, ON_ABOVE + 2, 2);
        t += second;
        assert_eq!(m.decide(t), Some(true));
        assert!(m.active() && armed(&m));
        feed(&mut m, OFF_BELOW, 5);
        t += second;
        assert_eq!(m.decide(t), None, "between the thresholds: stays on");
        feed(&mut m, OFF_BELOW - 1, 1);
        t += second;
        assert_eq!(m.decide(t), Some(false));
        assert!(!m.active() && !armed(&m), "an idle listener costs no timer");
    }

    #[test]
    fn turns_off_when_the_timer_only_slows_a_flood() {
        let (mut m, t) = started();
        feed(&mut m, 10_000, 2);
        assert_eq!(m.decide(t + Duration::from_secs(1)), Some(true));
        feed(&mut m, 100_000, BIG_BURST + 1);
        assert_eq!(m.decide(t + Duration::from_secs(2)), Some(false));
    }

    #[test]
    fn decides_within_a_tenth_of_a_second_by_the_rate_not_the_count() {
        let (mut m, t) = started();
        // 500 datagrams in 50 ms is 10,000 a second, but not a window yet.
        feed(&mut m, 500, 1);
        assert_eq!(m.decide(t + WINDOW / 2), None);
        assert!(!m.active());
        assert_eq!(m.decide(t + WINDOW), Some(true), "10,000/s over one window");
        // The same 1,000 datagrams spread over a quiet minute: 16 a second.
        feed(&mut m, 1000, 1);
        assert_eq!(m.decide(t + WINDOW + Duration::from_secs(60)), Some(false));
        // A clock that went backwards (it cannot; saturating) decides nothing.
        assert_eq!(m.decide(t), None);
    }

    #[test]
    fn a_swinging_load_is_reported_once_per_period_with_its_count() {
        let (mut m, mut t) = started();
        let mut reports = Vec::new();
        // On and off every window for two periods' time.
        for i in 0..2 * REPORT_EVERY.as_millis() / WINDOW.as_millis() {
            feed(&mut m, if i % 2 == 0 { 1000 } else { 10 }, 1);
            t += WINDOW;
            assert!(m.decide(t).is_some(), "window {i} changes the state");
            if let Some(n) = m.report(t) {
                reports.push(n);
            }
        }
        assert_eq!(reports, [1, 100], "the first at once, then one with every change since");
    }
}
