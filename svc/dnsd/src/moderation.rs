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
//! the loop at once again. Decided once a second, so an idle listener costs no
//! timer.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

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
pub const PERIOD: Duration = Duration::from_micros(500);

/// The moderation state and its timer.
#[derive(Debug)]
pub struct Moderation {
    timer: OwnedFd,
    on: bool,
    counted: u64,
    reads: u64,
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
        Ok(Self { timer, on: false, counted: 0, reads: 0 })
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

    /// Once a second: turns moderation on or off by the rate seen; returns the
    /// new state when it changed.
    pub fn tick(&mut self) -> Option<bool> {
        let rate = std::mem::take(&mut self.counted);
        let per_read = rate / std::mem::take(&mut self.reads).max(1);
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
        Some(want)
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

    #[test]
    fn turns_on_for_many_small_bursts_and_off_below_the_rate() {
        let mut m = Moderation::new().unwrap();
        feed(&mut m, ON_ABOVE, 1);
        assert_eq!(m.tick(), None, "at the threshold: still off");
        feed(&mut m, 2 * ON_ABOVE, SMALL_BURST);
        assert_eq!(m.tick(), None, "big bursts batch themselves");
        feed(&mut m, ON_ABOVE + 2, 2);
        assert_eq!(m.tick(), Some(true));
        assert!(m.active() && armed(&m));
        feed(&mut m, OFF_BELOW, 5);
        assert_eq!(m.tick(), None, "between the thresholds: stays on");
        feed(&mut m, OFF_BELOW - 1, 1);
        assert_eq!(m.tick(), Some(false));
        assert!(!m.active() && !armed(&m), "an idle listener costs no timer");
    }

    #[test]
    fn turns_off_when_the_timer_only_slows_a_flood() {
        let mut m = Moderation::new().unwrap();
        feed(&mut m, 10_000, 2);
        assert_eq!(m.tick(), Some(true));
        feed(&mut m, 100_000, BIG_BURST + 1);
        assert_eq!(m.tick(), Some(false));
    }
}
