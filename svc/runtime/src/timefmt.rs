//! RFC 3339 timestamps as Go's `time.Time` writes them in JSON, so state files
//! stay compatible with router7's (`"2018-05-18T12:34:56.123456789+02:00"`,
//! zero value `"0001-01-01T00:00:00Z"`).
//!
//! [`Timestamp`] is seconds and nanoseconds since the Unix epoch, signed, so
//! Go's zero time (year 1) is representable; it converts to and from [`SystemTime`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in wall time, as whole seconds since 1970-01-01T00:00:00Z plus nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the epoch (negative before 1970).
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch (Go's zero time).
const GO_ZERO_SECS: i64 = -62_135_596_800;

impl Timestamp {
    /// Go's zero `time.Time`, which router7 uses for "never expires".
    pub const GO_ZERO: Self = Self { secs: GO_ZERO_SECS, nanos: 0 };

    /// Whether this is Go's zero time.
    #[must_use]
    pub fn is_go_zero(self) -> bool {
        self == Self::GO_ZERO
    }

    /// Converts from a [`SystemTime`].
    #[must_use]
    pub fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self { secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), nanos: d.subsec_nanos() },
            Err(e) => {
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if d.subsec_nanos() == 0 {
                    Self { secs: -secs, nanos: 0 }
                } else {
                    Self { secs: -secs - 1, nanos: 1_000_000_000 - d.subsec_nanos() }
                }
            }
        }
    }

    /// Converts to a [`SystemTime`] (saturating at what the platform can hold).
    #[must_use]
    pub fn to_system(self) -> SystemTime {
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::new(self.secs.unsigned_abs(), self.nanos)
        } else {
            let back = Duration::new(self.secs.unsigned_abs(), 0) - Duration::new(0, self.nanos);
            UNIX_EPOCH.checked_sub(back).unwrap_or(UNIX_EPOCH)
        }
    }

    /// This time plus `d`.
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        let nanos = u64::from(self.nanos) + u64::from(d.subsec_nanos());
        let secs = self
            .secs
            .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .saturating_add(i64::try_from(nanos / 1_000_000_000).unwrap_or(0));
        Self { secs, nanos: u32::try_from(nanos % 1_000_000_000).unwrap_or(0) }
    }

    /// How long from `self` until `later`, or zero if `later` is not later.
    #[must_use]
    pub fn until(self, later: Self) -> Duration {
        if later <= self {
            return Duration::ZERO;
        }
        let mut secs = later.secs - self.secs;
        let nanos = if later.nanos >= self.nanos {
            later.nanos - self.nanos
        } else {
            secs -= 1;
            later.nanos + 1_000_000_000 - self.nanos
        };
        Duration::new(secs.unsigned_abs(), nanos)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `t` as an HTTP date (RFC 9110 §5.6.7, IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
#[must_use]
pub fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = Timestamp::from_system(t).secs;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[(month as usize).saturating_sub(1).min(11)];
    format!("{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT", rem / 3600, rem % 3600 / 60, rem % 60)
}

impl fmt::Display for Timestamp {
    /// Formats as RFC 3339 in UTC, fraction trimmed like Go's `RFC3339Nano`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(f, "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTimestampError(String);

impl fmt::Display for ParseTimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid RFC 3339 timestamp: {}", self.0)
    }
}

impl std::error::Error for ParseTimestampError {}

fn digits(s: &str, what: &str) -> Result<u32, ParseTimestampError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseTimestampError(format!("bad {what} {s:?}")));
    }
    s.parse().map_err(|_| ParseTimestampError(format!("bad {what} {s:?}")))
}

impl std::str::FromStr for Timestamp {
    type Err = ParseTimestampError;

    /// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |m: &str| ParseTimestampError(format!("{m} in {s:?}"));
        if !s.is_ascii() || s.len() < 20 {
            return Err(err("too short"));
        }
        let b = s.as_bytes();
        if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') || b[13] != b':' || b[16] != b':' {
            return Err(err("bad separators"));
        }
        let year = i64::from(digits(&s[0..4], "year")?);
        let month = digits(&s[5..7], "month")?;
        let day = digits(&s[8..10], "day")?;
        let hour = digits(&s[11..13], "hour")?;
        let minute = digits(&s[14..16], "minute")?;
        let second = digits(&s[17..19], "second")?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return Err(err("field out of range"));
        }
        let mut rest = &s[19..];
        let mut nanos = 0u32;
        if let Some(frac_and_zone) = rest.strip_prefix('.') {
            let end = frac_and_zone.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac_and_zone.len());
            let frac = &frac_and_zone[..end];
            if frac.is_empty() || frac.len() > 9 {
                return Err(err("bad fraction"));
            }
            nanos = digits(frac, "fraction")? * 10u32.pow(u32::try_from(9 - frac.len()).unwrap_or(0));
            rest = &frac_and_zone[end..];
        }
        let offset_secs: i64 = match rest {
            "Z" | "z" => 0,
            _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
                let h = i64::from(digits(&rest[1..3], "offset hour")?);
                let m = i64::from(digits(&rest[4..6], "offset minute")?);
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                sign * (h * 3600 + m * 60)
            }
            _ => return Err(err("bad zone")),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second) - offset_secs;
        Ok(Self { secs, nanos })
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_http_dates() {
        // RFC 9110's own example.
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn formats_go_zero_time() {
        assert_eq!(Timestamp::GO_ZERO.to_string(), "0001-01-01T00:00:00Z");
        assert_eq!("0001-01-01T00:00:00Z".parse::<Timestamp>(), Ok(Timestamp::GO_ZERO));
    }

    #[test]
    fn parses_go_rfc3339nano_with_offset() {
        let t: Timestamp = "2018-05-18T12:34:56.5+02:00".parse().unwrap();
        assert_eq!(t.to_string(), "2018-05-18T10:34:56.5Z");
        assert_eq!(t.secs, 1_526_639_696);
        assert_eq!(t.nanos, 500_000_000);
    }

    #[test]
    fn round_trips_epoch_and_leap_days() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59.000000001Z",
            "2100-03-01T00:00:00Z",
            "1969-12-31T23:59:59.25Z",
        ] {
            let t: Timestamp = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
            assert_eq!(Timestamp::from_system(t.to_system()), t);
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2018-13-01T00:00:00Z",
            "2018-05-18 12:34:56Z",
            "2018-05-18T12:34:56",
            "2018-05-18T12:34:56.Z",
            "2018-05-18T12:34:56+2:00",
            "２０１８-05-18T12:34:56Z",
        ] {
            assert!(s.parse::<Timestamp>().is_err(), "{s}");
        }
    }

    #[test]
    fn adds_and_measures_durations() {
        let t = Timestamp { secs: 10, nanos: 900_000_000 };
        let u = t.plus(Duration::from_millis(200));
        assert_eq!(u, Timestamp { secs: 11, nanos: 100_000_000 });
        assert_eq!(t.until(u), Duration::from_millis(200));
        assert_eq!(u.until(t), Duration::ZERO);
    }
}
