//! The one place that reads the clocks.
//!
//! Cores never read time: shells call [`now`] once per loop turn and pass the
//! value in. Deadlines use monotonic [`Instant`]s; wall time ([`wall_now`]) is
//! only for what is persisted or shown to people, because a router without an
//! RTC boots in 1970 and jumps forward when NTP syncs.

use std::time::{Instant, SystemTime};

/// The monotonic clock.
#[must_use]
#[allow(clippy::disallowed_methods)] // the single sanctioned call
pub fn now() -> Instant {
    Instant::now()
}

/// The wall clock.
#[must_use]
#[allow(clippy::disallowed_methods)] // the single sanctioned call
pub fn wall_now() -> SystemTime {
    SystemTime::now()
}
