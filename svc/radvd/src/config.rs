//! `/perm/radvd/config.json`: optional, every field optional, absence = the
//! defaults below. Parsed strictly (an unknown field is an error, so a typo is
//! not silently ignored) and validated once into [`Config`].
//!
//! | field | default | from |
//! |---|---|---|
//! | `min_interval_seconds` | 200 | RFC 4861 §6.2.1 MinRtrAdvInterval (0.33 × max) |
//! | `max_interval_seconds` | 600 | RFC 4861 §6.2.1 MaxRtrAdvInterval |
//! | `router_lifetime_seconds` | 1800 | router7 (= 3 × 600, §6.2.1's default) |
//! | `valid_lifetime_seconds` | 7200 | router7 |
//! | `preferred_lifetime_seconds` | 1800 | router7 |
//! | `rdnss_lifetime_seconds` | 1800 | router7 (RFC 8106 §5.1: ≥ 3 × max interval) |
//! | `dnssl_lifetime_seconds` | 1800 | router7 sent 1200 at a 60 s cadence; RFC 8106 §5.2 asks ≥ 3 × 600 |
//! | `search_domains` | `["lan"]` | router7 (dnsd serves `lan`) |
//!
//! router7 sent an RA every 60 s. We keep RFC 4861's 200–600 s: RFC 7772 §4
//! counts ~7 RAs an hour as what a phone can afford, 60 an hour wakes it for
//! nothing, and the solicited and fast-start RAs cover hosts that just arrived.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::dns_options::is_valid_domain;
use crate::schedule::Intervals;

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// MinRtrAdvInterval.
    pub min_interval_seconds: Option<u32>,
    /// MaxRtrAdvInterval.
    pub max_interval_seconds: Option<u32>,
    /// AdvDefaultLifetime (0 = do not act as a default router).
    pub router_lifetime_seconds: Option<u32>,
    /// AdvValidLifetime of every prefix (DHCPv6 lifetimes cap it).
    pub valid_lifetime_seconds: Option<u32>,
    /// AdvPreferredLifetime of every prefix (DHCPv6 lifetimes cap it).
    pub preferred_lifetime_seconds: Option<u32>,
    /// Lifetime of the RDNSS option.
    pub rdnss_lifetime_seconds: Option<u32>,
    /// Lifetime of the DNSSL option.
    pub dnssl_lifetime_seconds: Option<u32>,
    /// DNSSL domains; empty = no DNSSL option.
    pub search_domains: Option<Vec<String>>,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Periodic RA intervals.
    pub intervals: Intervals,
    /// Router Lifetime, seconds.
    pub router_lifetime: u16,
    /// Prefix valid lifetime, seconds.
    pub valid_lifetime: u32,
    /// Prefix preferred lifetime, seconds.
    pub preferred_lifetime: u32,
    /// RDNSS lifetime, seconds.
    pub rdnss_lifetime: u32,
    /// DNSSL lifetime, seconds.
    pub dnssl_lifetime: u32,
    /// DNSSL domains.
    pub search_domains: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        // The defaults pass validation (tested), so this cannot fail.
        Self::try_from(ConfigFile::default()).unwrap_or(Self {
            intervals: Intervals { min: Duration::from_secs(200), max: Duration::from_secs(600) },
            router_lifetime: 1800,
            valid_lifetime: 7200,
            preferred_lifetime: 1800,
            rdnss_lifetime: 1800,
            dnssl_lifetime: 1800,
            search_domains: vec!["lan".into()],
        })
    }
}

/// A setting out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl TryFrom<ConfigFile> for Config {
    type Error = ConfigError;

    fn try_from(f: ConfigFile) -> Result<Self, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        let max = f.max_interval_seconds.unwrap_or(600);
        // §6.2.1: MaxRtrAdvInterval in 4..=1800.
        if !(4..=1800).contains(&max) {
            return err(format!("max_interval_seconds {max}: must be 4 to 1800 (RFC 4861 §6.2.1)"));
        }
        // §6.2.1: MinRtrAdvInterval in 3..=0.75 × max, default 0.33 × max.
        let min = f.min_interval_seconds.unwrap_or_else(|| (max / 3).max(3));
        if min < 3 || u64::from(min) * 4 > u64::from(max) * 3 {
            return err(format!("min_interval_seconds {min}: must be 3 to 0.75 × max_interval_seconds ({max})"));
        }
        let router_lifetime = f.router_lifetime_seconds.unwrap_or(1800);
        // §6.2.1: 0, or MaxRtrAdvInterval to 9000.
        if router_lifetime != 0 && !(max..=9000).contains(&router_lifetime) {
            return err(format!(
                "router_lifetime_seconds {router_lifetime}: must be 0 or {max} (max_interval_seconds) to 9000"
            ));
        }
        let valid = f.valid_lifetime_seconds.unwrap_or(7200);
        let preferred = f.preferred_lifetime_seconds.unwrap_or(1800);
        // §6.2.1: AdvPreferredLifetime must not exceed AdvValidLifetime.
        if preferred > valid {
            return err(format!("preferred_lifetime_seconds {preferred} exceeds valid_lifetime_seconds {valid}"));
        }
        let rdnss = f.rdnss_lifetime_seconds.unwrap_or(1800);
        let dnssl = f.dnssl_lifetime_seconds.unwrap_or(1800);
        // RFC 8106 §5.1/§5.2 ask for at least 3 × max by default; below one
        // interval hosts would lose their DNS configuration between RAs.
        for (name, v) in [("rdnss_lifetime_seconds", rdnss), ("dnssl_lifetime_seconds", dnssl)] {
            if v < max {
                return err(format!("{name} {v}: must be at least max_interval_seconds ({max}), RFC 8106 §5"));
            }
        }
        let search_domains = f.search_domains.unwrap_or_else(|| vec!["lan".into()]);
        if let Some(bad) = search_domains.iter().find(|d| !is_valid_domain(d)) {
            return err(format!("search_domains: {bad:?} is not a valid domain name"));
        }
        if search_domains.len() > 16 {
            return err("search_domains: at most 16".into());
        }
        Ok(Self {
            intervals: Intervals { min: Duration::from_secs(min.into()), max: Duration::from_secs(max.into()) },
            router_lifetime: u16::try_from(router_lifetime).unwrap_or(9000),
            valid_lifetime: valid,
            preferred_lifetime: preferred,
            rdnss_lifetime: rdnss,
            dnssl_lifetime: dnssl,
            search_domains,
        })
    }
}

/// Parses and validates the file's text.
pub fn parse(text: &[u8]) -> Result<Config, String> {
    let file: ConfigFile = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    Config::try_from(file).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_router7s_contents_at_rfc4861s_intervals() {
        let c = Config::try_from(ConfigFile::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.intervals, Intervals { min: Duration::from_secs(200), max: Duration::from_secs(600) });
        assert_eq!((c.router_lifetime, c.valid_lifetime, c.preferred_lifetime), (1800, 7200, 1800));
        assert_eq!((c.rdnss_lifetime, c.dnssl_lifetime), (1800, 1800));
        assert_eq!(c.search_domains, ["lan"]);
        assert_eq!(parse(b"{}").unwrap(), c);
    }

    #[test]
    fn rejects_unknown_fields() {
        let e = parse(br#"{"max_interval_secs": 60}"#).unwrap_err();
        assert!(e.contains("unknown field `max_interval_secs`"), "{e}");
    }

    #[test]
    fn accepts_a_full_file() {
        let c = parse(
            br#"{"min_interval_seconds": 30, "max_interval_seconds": 60, "router_lifetime_seconds": 2700,
                 "valid_lifetime_seconds": 5400, "preferred_lifetime_seconds": 2700,
                 "rdnss_lifetime_seconds": 180, "dnssl_lifetime_seconds": 180, "search_domains": ["lan", "example.org"]}"#,
        )
        .unwrap();
        assert_eq!(c.intervals.min, Duration::from_secs(30));
        assert_eq!(c.router_lifetime, 2700);
        assert_eq!(c.search_domains, ["lan", "example.org"]);
        let only_max =
            parse(br#"{"max_interval_seconds": 60, "rdnss_lifetime_seconds": 60, "dnssl_lifetime_seconds": 60}"#)
                .unwrap();
        assert_eq!(only_max.intervals.min, Duration::from_secs(20), "0.33 × max by default");
        assert!(parse(br#"{"search_domains": []}"#).unwrap().search_domains.is_empty());
    }

    #[test]
    fn rejects_values_rfc_4861_and_8106_forbid() {
        for bad in [
            r#"{"max_interval_seconds": 3}"#,
            r#"{"max_interval_seconds": 1801}"#,
            r#"{"min_interval_seconds": 2}"#,
            r#"{"min_interval_seconds": 451}"#,
            r#"{"router_lifetime_seconds": 599}"#,
            r#"{"router_lifetime_seconds": 9001}"#,
            r#"{"preferred_lifetime_seconds": 7201}"#,
            r#"{"rdnss_lifetime_seconds": 599}"#,
            r#"{"dnssl_lifetime_seconds": 10}"#,
            r#"{"search_domains": ["not a name"]}"#,
            r#"{"valid_lifetime_seconds": -1}"#,
            r#"{"max_interval_seconds": "600"}"#,
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(parse(br#"{"router_lifetime_seconds": 0}"#).unwrap().router_lifetime, 0);
        assert!(parse(br#"{"min_interval_seconds": 450}"#).is_ok());
    }
}
