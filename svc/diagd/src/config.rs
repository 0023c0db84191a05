//! `/perm/diagd/config.json`: optional, strict (unknown fields are rejected),
//! validated once into [`Config`]. Absence means the defaults below, which keep
//! router7's tree and add what it lacked (timeouts, a schedule, hysteresis).
//!
//! ```json
//! {
//!   "tcp4_target": "8.8.8.8:443",
//!   "tcp6_target": "[2001:4860:4860::8888]:443",
//!   "interval_seconds": 10,
//!   "retry_seconds": 2,
//!   "ping_timeout_ms": 2000,
//!   "tcp_timeout_ms": 3000,
//!   "ipv6": "auto",
//!   "unhealthy_after": 2,
//!   "healthy_after": 2
//! }
//! ```

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether the IPv6 checks count towards health (router7's `-ipv6` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ipv6Mode {
    /// They count once the ISP has given us IPv6: when dhcp6's lease file exists.
    /// A home without IPv6 is healthy on IPv4 alone; a home with IPv6 that loses
    /// it is not. The default.
    Auto,
    /// They always count (router7's default, `-ipv6=true`).
    Required,
    /// They never count; they still run and are shown (`-ipv6=false`).
    Ignored,
}

impl Ipv6Mode {
    /// The JSON and command-line spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Required => "required",
            Self::Ignored => "ignored",
        }
    }

    /// Parses the command-line spelling.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "required" | "true" => Some(Self::Required),
            "ignored" | "false" => Some(Self::Ignored),
            _ => None,
        }
    }
}

/// The file as written by a person. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `a.b.c.d:port`: what `tcp4` connects to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp4_target: Option<String>,
    /// `[v6]:port`: what both `tcp6` checks connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp6_target: Option<String>,
    /// Seconds between rounds while the verdict is steady.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// Seconds to the next round while pending or while a round disagreed with the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_seconds: Option<u64>,
    /// How long a ping check waits for an echo reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_timeout_ms: Option<u64>,
    /// How long a TCP check waits for the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_timeout_ms: Option<u64>,
    /// Whether IPv6 counts: `auto`, `required` or `ignored`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Mode>,
    /// Failing rounds in a row that turn Healthy into Unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_after: Option<u32>,
    /// Passing rounds in a row that turn Unhealthy into Healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_after: Option<u32>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What `tcp4` connects to.
    pub tcp4_target: SocketAddrV4,
    /// What the `tcp6` checks connect to.
    pub tcp6_target: SocketAddrV6,
    /// Time between rounds while the verdict is steady.
    pub interval: Duration,
    /// Time between rounds while pending or changing.
    pub retry: Duration,
    /// Ping timeout.
    pub ping_timeout: Duration,
    /// TCP connect timeout.
    pub tcp_timeout: Duration,
    /// Whether IPv6 counts.
    pub ipv6: Ipv6Mode,
    /// Failing rounds in a row before Unhealthy.
    pub unhealthy_after: u32,
    /// Passing rounds in a row before Healthy again.
    pub healthy_after: u32,
}

/// Google Public DNS also answers HTTPS on 443, on both families; an address
/// rather than router7's `www.google.ch:80`, so the check needs no DNS (which
/// dnsd's own health covers) and cannot be fooled by a captive portal's resolver.
pub const DEFAULT_TCP4_TARGET: &str = "8.8.8.8:443";
/// See [`DEFAULT_TCP4_TARGET`].
pub const DEFAULT_TCP6_TARGET: &str = "[2001:4860:4860::8888]:443";

impl Default for Config {
    fn default() -> Self {
        Self::try_from(ConfigFile::default()).expect("the defaults are valid (checked by a test)")
    }
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn bad(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, message: message.into() }
}

fn ranged(field: &'static str, value: Option<u64>, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    let v = value.unwrap_or(default);
    if (min..=max).contains(&v) { Ok(v) } else { Err(bad(field, format!("{v} is outside {min}..={max}"))) }
}

fn target(field: &'static str, text: Option<&str>, default: &str) -> Result<SocketAddr, ConfigError> {
    let text = text.unwrap_or(default);
    let addr: SocketAddr = text.parse().map_err(|_| {
        bad(field, format!("{text:?} is not an address:port (names are not resolved: give an IP literal)"))
    })?;
    if addr.port() == 0 {
        return Err(bad(field, "port 0"));
    }
    if addr.ip().is_unspecified() || addr.ip().is_multicast() {
        return Err(bad(field, format!("{} cannot be connected to", addr.ip())));
    }
    Ok(addr)
}

impl TryFrom<ConfigFile> for Config {
    type Error = ConfigError;

    fn try_from(f: ConfigFile) -> Result<Self, ConfigError> {
        let tcp4_target = match target("tcp4_target", f.tcp4_target.as_deref(), DEFAULT_TCP4_TARGET)? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => return Err(bad("tcp4_target", "needs an IPv4 address")),
        };
        let tcp6_target = match target("tcp6_target", f.tcp6_target.as_deref(), DEFAULT_TCP6_TARGET)? {
            SocketAddr::V6(a) if a.scope_id() == 0 && !a.ip().is_unicast_link_local() => a,
            SocketAddr::V6(_) => return Err(bad("tcp6_target", "needs a global IPv6 address")),
            SocketAddr::V4(_) => return Err(bad("tcp6_target", "needs an IPv6 address in brackets")),
        };
        let interval = ranged("interval_seconds", f.interval_seconds, 10, 1, 3600)?;
        let retry = ranged("retry_seconds", f.retry_seconds, 2.min(interval), 1, interval)?;
        let ping_timeout = ranged("ping_timeout_ms", f.ping_timeout_ms, 2000, 100, 30_000)?;
        let tcp_timeout = ranged("tcp_timeout_ms", f.tcp_timeout_ms, 3000, 100, 30_000)?;
        let unhealthy_after = ranged("unhealthy_after", f.unhealthy_after.map(u64::from), 2, 1, 100)?;
        let healthy_after = ranged("healthy_after", f.healthy_after.map(u64::from), 2, 1, 100)?;
        Ok(Self {
            tcp4_target,
            tcp6_target,
            interval: Duration::from_secs(interval),
            retry: Duration::from_secs(retry),
            ping_timeout: Duration::from_millis(ping_timeout),
            tcp_timeout: Duration::from_millis(tcp_timeout),
            ipv6: f.ipv6.unwrap_or(Ipv6Mode::Auto),
            // Both came through `ranged` with max 100.
            unhealthy_after: u32::try_from(unhealthy_after).unwrap_or(100),
            healthy_after: u32::try_from(healthy_after).unwrap_or(100),
        })
    }
}

/// Parses and validates the file's bytes. Syntax errors carry line and column
/// (serde_json's message says them); the caller names the file.
pub fn parse(bytes: &[u8]) -> Result<Config, String> {
    let file: ConfigFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Config::try_from(file).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let c = Config::default();
        assert_eq!(c.tcp4_target.to_string(), "8.8.8.8:443");
        assert_eq!(c.tcp6_target.to_string(), "[2001:4860:4860::8888]:443");
        assert_eq!((c.interval, c.retry), (Duration::from_secs(10), Duration::from_secs(2)));
        assert_eq!((c.ping_timeout, c.tcp_timeout), (Duration::from_secs(2), Duration::from_secs(3)));
        assert_eq!((c.ipv6, c.unhealthy_after, c.healthy_after), (Ipv6Mode::Auto, 2, 2));
        assert_eq!(parse(b"{}").unwrap(), c);
    }

    #[test]
    fn parses_every_field() {
        let c = parse(
            br#"{"tcp4_target":"192.0.2.1:80","tcp6_target":"[2001:db8::1]:8080","interval_seconds":30,
                "retry_seconds":5,"ping_timeout_ms":500,"tcp_timeout_ms":1500,"ipv6":"required",
                "unhealthy_after":3,"healthy_after":1}"#,
        )
        .unwrap();
        assert_eq!(c.tcp4_target.to_string(), "192.0.2.1:80");
        assert_eq!(c.tcp6_target.to_string(), "[2001:db8::1]:8080");
        assert_eq!((c.interval, c.retry), (Duration::from_secs(30), Duration::from_secs(5)));
        assert_eq!((c.ping_timeout, c.tcp_timeout), (Duration::from_millis(500), Duration::from_millis(1500)));
        assert_eq!((c.ipv6, c.unhealthy_after, c.healthy_after), (Ipv6Mode::Required, 3, 1));
        assert_eq!(parse(br#"{"ipv6":"ignored"}"#).unwrap().ipv6, Ipv6Mode::Ignored);
    }

    #[test]
    fn rejects_unknown_fields() {
        let err = parse(br#"{"interval_seconds":10,"intervall_seconds":5}"#).unwrap_err();
        assert!(err.contains("unknown field `intervall_seconds`"), "{err}");
        assert!(err.contains("line 1 column"), "syntax and field errors say where: {err}");
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        for (text, field) in [
            (r#"{"tcp4_target":"www.google.ch:80"}"#, "tcp4_target"),
            (r#"{"tcp4_target":"[2001:db8::1]:80"}"#, "tcp4_target"),
            (r#"{"tcp4_target":"192.0.2.1:0"}"#, "tcp4_target"),
            (r#"{"tcp4_target":"0.0.0.0:80"}"#, "tcp4_target"),
            (r#"{"tcp6_target":"192.0.2.1:80"}"#, "tcp6_target"),
            (r#"{"tcp6_target":"[fe80::1]:80"}"#, "tcp6_target"),
            (r#"{"interval_seconds":0}"#, "interval_seconds"),
            (r#"{"interval_seconds":5,"retry_seconds":6}"#, "retry_seconds"),
            (r#"{"ping_timeout_ms":10}"#, "ping_timeout_ms"),
            (r#"{"tcp_timeout_ms":60000}"#, "tcp_timeout_ms"),
            (r#"{"unhealthy_after":0}"#, "unhealthy_after"),
            (r#"{"healthy_after":101}"#, "healthy_after"),
        ] {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(err.starts_with(field), "{text}: {err}");
        }
        assert!(parse(br#"{"ipv6":"sometimes"}"#).unwrap_err().contains("unknown variant"));
        assert!(parse(b"{").is_err());
    }

    #[test]
    fn a_short_interval_caps_the_default_retry() {
        let c = parse(br#"{"interval_seconds":1}"#).unwrap();
        assert_eq!(c.retry, Duration::from_secs(1));
    }

    #[test]
    fn ipv6_mode_spellings() {
        for m in [Ipv6Mode::Auto, Ipv6Mode::Required, Ipv6Mode::Ignored] {
            assert_eq!(Ipv6Mode::parse(m.as_str()), Some(m));
        }
        assert_eq!(Ipv6Mode::parse("true"), Some(Ipv6Mode::Required));
        assert_eq!(Ipv6Mode::parse("false"), Some(Ipv6Mode::Ignored));
        assert_eq!(Ipv6Mode::parse("yes"), None);
    }
}
