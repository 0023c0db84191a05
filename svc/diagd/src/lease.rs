//! The two lease checks: dhcp4's and dhcp6's `lease.json` (runtime::perm's
//! types), valid while `valid_until` is in the future. Ours is the real expiry
//! (router7 wrote the renewal time there, so its diagd called a lease past T1
//! "expired"); a router7 file still reads the same way.

use runtime::timefmt::Timestamp;

use crate::monitor::Outcome;

/// What the shell found when it read a lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseFile {
    /// The file does not exist (no lease yet, or none ever).
    Missing,
    /// It exists but cannot be read or parsed; the text names file, line and column.
    Unreadable(String),
    /// Its `valid_until`.
    ValidUntil(Timestamp),
}

/// The check's outcome at wall time `now`.
#[must_use]
pub fn outcome(file: &LeaseFile, path: &str, now: Timestamp) -> Outcome {
    match file {
        LeaseFile::Missing => Outcome::fail(format!("no lease: {path} does not exist")),
        LeaseFile::Unreadable(why) => Outcome::fail(why.clone()),
        LeaseFile::ValidUntil(until) if *until > now => Outcome::pass(format!("lease valid until {until}")),
        LeaseFile::ValidUntil(until) => Outcome::fail(format!("lease expired at {until}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_until_in_the_future_passes_and_in_the_past_fails() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let later = LeaseFile::ValidUntil("2026-11-25T12:20:00Z".parse().unwrap());
        let earlier = LeaseFile::ValidUntil("2026-11-25T11:59:59Z".parse().unwrap());
        let path = "/perm/dhcp4/wire/lease.json";
        assert_eq!(outcome(&later, path, now), Outcome::pass("lease valid until 2026-11-25T12:20:00Z"));
        assert_eq!(outcome(&earlier, path, now), Outcome::fail("lease expired at 2026-11-25T11:59:59Z"));
        assert!(!outcome(&LeaseFile::ValidUntil(now), path, now).ok, "expiry itself is expired");
        assert_eq!(
            outcome(&LeaseFile::Missing, path, now),
            Outcome::fail("no lease: /perm/dhcp4/wire/lease.json does not exist")
        );
        let bad = LeaseFile::Unreadable("/perm/dhcp4/wire/lease.json:1:5: expected value".into());
        assert_eq!(outcome(&bad, path, now).status, "/perm/dhcp4/wire/lease.json:1:5: expected value");
    }
}
