//! The upstream servers: where they came from, how fast they answer and
//! whether they answer at all.
//!
//! Order of preference: servers that are up before servers marked down; then
//! the configured or DHCP-learned servers before the fallback ([`Source`]);
//! then the lowest smoothed round-trip time. A server not measured yet counts
//! as fastest, so each is tried once; and every time a server is chosen, the
//! others' smoothed RTTs decay by 2% (as BIND does), so a slower server is
//! tried again now and then and its figure stays current. router7 re-sorted by
//! probing every 10 s instead; this needs no probes.
//!
//! Health: a try that times out, a send that fails or a malformed reply marks the
//! server down for a backoff of 5 s, doubling with each further failure up to
//! 60 s; any answer marks it up again. While every server is down, the one
//! whose backoff ends first is still tried (a query is a probe), but a query
//! fails after [`crate::resolver::Tunables::all_down_budget`] instead of the full budget.
//!
//! The per-try timeout is `3 × SRTT + 100 ms`, kept within 500 ms and 1 s
//! (1 s while the server is unmeasured); an answer that comes later still
//! completes the query (every try stays open until the query ends).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::UpstreamMetrics;

/// Where an upstream came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `/perm/dnsd/config.json`.
    Config,
    /// The DHCPv4 lease's DNS servers (option 6).
    Dhcp4,
    /// The DHCPv6 lease's DNS servers (option 23).
    Dhcp6,
    /// The built-in fallback, used when every other server is down.
    Fallback,
}

impl Source {
    /// Its name in status output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Dhcp4 => "dhcp4",
            Self::Dhcp6 => "dhcp6",
            Self::Fallback => "fallback",
        }
    }

    fn tier(self) -> u8 {
        u8::from(self == Self::Fallback)
    }
}

/// An upstream as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// Address and port.
    pub addr: SocketAddr,
    /// Where it came from.
    pub source: Source,
}

/// A change of an upstream's health, for the control API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// It stopped answering.
    Down {
        /// Which.
        addr: SocketAddr,
        /// Why (for people).
        reason: &'static str,
    },
    /// It answers again.
    Up {
        /// Which.
        addr: SocketAddr,
    },
}

/// Backoff after the first failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Smoothing of RTT samples: `srtt = 0.7 srtt + 0.3 sample` (as BIND).
const SRTT_WEIGHT: f64 = 0.3;
/// Decay of the servers not chosen.
const DECAY: f64 = 0.98;

#[derive(Debug)]
struct Upstream {
    spec: UpstreamSpec,
    srtt_ms: Option<f64>,
    failures: u32,
    down_until: Option<Instant>,
    metrics: Arc<UpstreamMetrics>,
}

impl Upstream {
    fn down(&self, now: Instant) -> bool {
        self.down_until.is_some_and(|t| now < t)
    }
}

/// What the control API shows per upstream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UpstreamStatus {
    /// Address and port.
    pub addr: String,
    /// Where it came from.
    pub source: &'static str,
    /// Whether it is considered up.
    pub up: bool,
    /// Smoothed RTT, if measured.
    pub srtt_ms: Option<f64>,
    /// Consecutive failures.
    pub failures: u32,
}

/// The upstreams; see the module docs.
#[derive(Debug, Default)]
pub struct UpstreamSet {
    list: Vec<Upstream>,
    events: Vec<HealthEvent>,
}

impl UpstreamSet {
    /// No upstreams.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the list, keeping what we know of servers that stay.
    pub fn set(&mut self, specs: &[UpstreamSpec], metrics_for: impl Fn(SocketAddr) -> Arc<UpstreamMetrics>) {
        let mut old = std::mem::take(&mut self.list);
        for spec in specs {
            if self.list.iter().any(|u| u.spec.addr == spec.addr) {
                continue;
            }
            let kept = old.iter().position(|u| u.spec.addr == spec.addr).map(|i| old.swap_remove(i));
            self.list.push(match kept {
                Some(mut u) => {
                    u.spec = *spec;
                    u
                }
                None => Upstream {
                    spec: *spec,
                    srtt_ms: None,
                    failures: 0,
                    down_until: None,
                    metrics: metrics_for(spec.addr),
                },
            });
        }
    }

    /// How many there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether some upstream is not in `tried`.
    #[must_use]
    pub fn has_untried(&self, tried: &[SocketAddr]) -> bool {
        self.list.iter().any(|u| !tried.contains(&u.spec.addr))
    }

    /// Whether at least one is up.
    #[must_use]
    pub fn any_up(&self, now: Instant) -> bool {
        self.list.iter().any(|u| !u.down(now))
    }

    fn rank(u: &Upstream, now: Instant) -> (bool, u8, u64, u64) {
        let down = u.down(now);
        // Down ones: whose backoff ends first. Up ones: tier, then SRTT (in µs).
        let until = u.down_until.map_or(0, |t| t.saturating_duration_since(now).as_micros() as u64);
        let srtt = u.srtt_ms.map_or(0, |ms| (ms * 1000.0) as u64);
        if down { (true, 0, until, 0) } else { (false, u.spec.source.tier(), srtt, 0) }
    }

    /// The server to try next: the best one not in `tried`, or when all were
    /// tried, the best one overall (a retransmission).
    pub fn choose(&mut self, now: Instant, tried: &[SocketAddr]) -> Option<SocketAddr> {
        let pick = |only_untried: bool| {
            self.list
                .iter()
                .enumerate()
                .filter(|(_, u)| !only_untried || !tried.contains(&u.spec.addr))
                .min_by_key(|(i, u)| (Self::rank(u, now), *i))
                .map(|(i, _)| i)
        };
        let i = pick(true).or_else(|| pick(false))?;
        let chosen_tier = self.list[i].spec.source.tier();
        for (j, u) in self.list.iter_mut().enumerate() {
            if j != i && u.spec.source.tier() == chosen_tier {
                u.srtt_ms = u.srtt_ms.map(|s| s * DECAY);
            }
        }
        Some(self.list[i].spec.addr)
    }

    /// The per-try timeout for `addr`.
    #[must_use]
    pub fn timeout(&self, addr: SocketAddr) -> Duration {
        let srtt = self.list.iter().find(|u| u.spec.addr == addr).and_then(|u| u.srtt_ms);
        match srtt {
            None => Duration::from_millis(1000),
            Some(ms) => Duration::from_micros(((3.0 * ms + 100.0) * 1000.0) as u64)
                .clamp(Duration::from_millis(500), Duration::from_millis(1000)),
        }
    }

    /// `addr` answered after `rtt`.
    pub fn success(&mut self, addr: SocketAddr, rtt: Duration) {
        let Some(u) = self.list.iter_mut().find(|u| u.spec.addr == addr) else { return };
        let sample = rtt.as_secs_f64() * 1000.0;
        u.srtt_ms = Some(match u.srtt_ms {
            None => sample,
            Some(s) => (1.0 - SRTT_WEIGHT) * s + SRTT_WEIGHT * sample,
        });
        u.metrics.latency.observe(rtt.as_secs_f64());
        u.metrics.answers.inc();
        if u.failures > 0 || u.down_until.is_some() {
            u.failures = 0;
            if u.down_until.take().is_some() {
                u.metrics.up.set(1.0);
                self.events.push(HealthEvent::Up { addr });
            }
        }
    }

    /// `addr` failed (`reason` for people).
    pub fn failure(&mut self, now: Instant, addr: SocketAddr, reason: &'static str) {
        let Some(u) = self.list.iter_mut().find(|u| u.spec.addr == addr) else { return };
        u.failures = u.failures.saturating_add(1);
        let backoff = FIRST_BACKOFF.saturating_mul(1 << (u.failures - 1).min(4)).min(MAX_BACKOFF);
        let was_down = u.down(now);
        u.down_until = Some(now + backoff);
        u.metrics.failures.inc();
        if !was_down {
            u.metrics.up.set(0.0);
            self.events.push(HealthEvent::Down { addr, reason });
        }
    }

    /// A query was sent to `addr`.
    pub fn sent(&self, addr: SocketAddr) {
        if let Some(u) = self.list.iter().find(|u| u.spec.addr == addr) {
            u.metrics.queries.inc();
        }
    }

    /// Health changes since the last call.
    pub fn take_events(&mut self) -> Vec<HealthEvent> {
        std::mem::take(&mut self.events)
    }

    /// The status of each upstream.
    #[must_use]
    pub fn status(&self, now: Instant) -> Vec<UpstreamStatus> {
        self.list
            .iter()
            .map(|u| UpstreamStatus {
                addr: u.spec.addr.to_string(),
                source: u.spec.source.name(),
                up: !u.down(now),
                srtt_ms: u.srtt_ms.map(|s| (s * 100.0).round() / 100.0),
                failures: u.failures,
            })
            .collect()
    }
}
