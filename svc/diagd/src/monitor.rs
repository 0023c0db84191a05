//! The sans-IO heart of diagd: when to run a round of checks, which checks to
//! start as their parents pass, when a check has taken too long, and what the
//! finished rounds mean for health.
//!
//! A round starts at the root; a check that passes starts its children, a check
//! that fails (or times out) gives each descendant "dependency <parent> failed"
//! without running it, exactly as router7 reported it. When every check has a
//! result the round is complete and replaces the previous one in reports.
//!
//! Health has hysteresis: the first complete round decides (Pending becomes
//! Healthy or Unhealthy at once), then a Healthy verdict turns Unhealthy only
//! after `unhealthy_after` failing rounds in a row, and back only after
//! `healthy_after` passing rounds in a row. Rounds come every `interval`, or
//! every `retry` while pending or while the latest round disagrees with the
//! verdict, so a change is confirmed (or dismissed) quickly.
//!
//! A change the kernel reports (an address, a route or a link of ours came or
//! went) brings the next round forward to [`SETTLE`] later, so a burst of
//! changes is seen by one round, and no earlier than `retry` after the last
//! round started, so a flapping link cannot make rounds back to back. An IPv6
//! router advertisement that arrives after a failed round is then seen within
//! a second or two instead of at the next `interval`.

use std::time::{Duration, Instant};

use runtime::timefmt::Timestamp;

use crate::config::{Config, Ipv6Mode};
use crate::tree::{CheckId, Family, Probe, Tree};

/// What the shell reports for a check it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Passed.
    pub ok: bool,
    /// What people read: `"1.23ms from 192.0.2.1"`, `"lease expired at …"`.
    pub status: String,
    /// How long the probe took on the wire (pings and connects).
    pub latency: Option<Duration>,
}

impl Outcome {
    /// A pass.
    #[must_use]
    pub fn pass(status: impl Into<String>) -> Self {
        Self { ok: true, status: status.into(), latency: None }
    }

    /// A failure.
    #[must_use]
    pub fn fail(status: impl Into<String>) -> Self {
        Self { ok: false, status: status.into(), latency: None }
    }

    /// The same with a latency.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }
}

/// A check's result within a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Passed.
    pub ok: bool,
    /// Status text.
    pub status: String,
    /// Probe latency.
    pub latency: Option<Duration>,
    /// Whether it ran (false: a dependency failed).
    pub ran: bool,
    /// When it finished (wall time, for people).
    pub finished: Timestamp,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run `probe` and report with [`Monitor::on_outcome`] (a report after
    /// `deadline` is ignored: the check has timed out by then).
    Start {
        /// Which check.
        check: CheckId,
        /// What to do.
        probe: Probe,
        /// When it times out.
        deadline: Instant,
    },
    /// Stop running `check` and free what it holds (it timed out or the round was dropped).
    Cancel {
        /// Which check.
        check: CheckId,
    },
}

/// The health verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No round has completed yet.
    Pending,
    /// Healthy.
    Healthy,
    /// Unhealthy.
    Unhealthy,
}

impl Verdict {
    /// As shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Healthy => "Healthy",
            Self::Unhealthy => "Unhealthy",
        }
    }
}

/// Something the shell should publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A round completed (reports changed).
    RoundComplete,
    /// The verdict changed.
    HealthChanged {
        /// Before.
        from: Verdict,
        /// After.
        to: Verdict,
        /// The first error now ("" when healthy).
        first_error: String,
    },
    /// A check passed in this round and failed in the previous one, or the other way round.
    CheckChanged {
        /// Which.
        check: CheckId,
        /// Passed now.
        ok: bool,
        /// Its status.
        status: String,
    },
}

/// What a call produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// For the shell to carry out, in order.
    pub actions: Vec<Action>,
    /// For the shell to publish.
    pub notices: Vec<Notice>,
}

#[derive(Debug, Clone)]
struct Round {
    results: [Option<CheckResult>; CheckId::ALL.len()],
    running: Vec<(CheckId, Instant)>,
    started: Timestamp,
}

/// A complete round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// Every check's result, indexed by [`CheckId::index`].
    pub results: Vec<CheckResult>,
    /// When the round started and ended (wall time).
    pub started: Timestamp,
    /// When it ended.
    pub finished: Timestamp,
    /// Whether the IPv6 checks counted in it.
    pub ipv6_counted: bool,
    /// Its own first error ("" when it passed), before hysteresis.
    pub first_error: String,
}

/// The health monitor; see the module docs.
#[derive(Debug)]
pub struct Monitor {
    config: Config,
    tree: Tree,
    ipv6_present: bool,
    round: Option<Round>,
    last: Option<Completed>,
    next_round: Instant,
    again: bool,
    /// When the latest round started.
    last_start: Option<Instant>,
    /// The kernel reported a change while a round was running.
    changed: bool,
    verdict: Verdict,
    passes: u32,
    fails: u32,
    last_error: String,
    rounds: u64,
}

/// How long after a change the kernel reported its round starts: the
/// changes of one event (an address, its route, the end of its duplicate
/// address detection) come within this time of each other.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The first error of a verdict that has not been decided yet.
pub const PENDING_ERROR: &str = "diagd: no round of checks has completed yet";

impl Monitor {
    /// A monitor whose first round is due at `now`.
    #[must_use]
    pub fn new(config: Config, uplink: &str, lan: &str, now: Instant) -> Self {
        let tree = Tree::new(&config, uplink, lan);
        Self {
            config,
            tree,
            ipv6_present: false,
            round: None,
            last: None,
            next_round: now,
            again: false,
            last_start: None,
            changed: false,
            verdict: Verdict::Pending,
            passes: 0,
            fails: 0,
            last_error: String::new(),
            rounds: 0,
        }
    }

    /// The tree (names).
    #[must_use]
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tells whether the ISP has given us IPv6 (dhcp6's lease file exists), for
    /// [`Ipv6Mode::Auto`]. Takes effect from the next completed round.
    pub fn set_ipv6_present(&mut self, present: bool) {
        self.ipv6_present = present;
    }

    /// Whether the IPv6 checks count now.
    #[must_use]
    pub fn ipv6_counts(&self) -> bool {
        match self.config.ipv6 {
            Ipv6Mode::Required => true,
            Ipv6Mode::Ignored => false,
            Ipv6Mode::Auto => self.ipv6_present,
        }
    }

    /// Whether `check` counts towards health now.
    #[must_use]
    pub fn counts(&self, check: CheckId) -> bool {
        check.family() != Family::V6 || self.ipv6_counts()
    }

    /// The next time [`Monitor::poll`] has work.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        match &self.round {
            Some(r) => r.running.iter().map(|&(_, d)| d).min(),
            None => Some(self.next_round),
        }
    }

    /// Starts a due round and times out overdue checks.
    pub fn poll(&mut self, now: Instant, wall: Timestamp) -> Output {
        let mut out = Output::default();
        if self.round.is_none() && now >= self.next_round {
            self.start_round(now, wall, &mut out);
        }
        let overdue: Vec<CheckId> = match &self.round {
            Some(r) => r.running.iter().filter(|&&(_, d)| d <= now).map(|&(c, _)| c).collect(),
            None => Vec::new(),
        };
        for check in overdue {
            out.actions.push(Action::Cancel { check });
            let status = timeout_status(self.tree.probe(check), self.tree.timeout(check));
            self.record(now, wall, check, Outcome::fail(status), &mut out);
        }
        out
    }

    /// Takes the result of a check the shell ran.
    pub fn on_outcome(&mut self, now: Instant, wall: Timestamp, check: CheckId, outcome: Outcome) -> Output {
        let mut out = Output::default();
        let running = self.round.as_ref().is_some_and(|r| r.running.iter().any(|&(c, _)| c == check));
        if running {
            self.record(now, wall, check, outcome, &mut out);
        }
        out
    }

    /// Runs a round as soon as possible (SIGUSR1, `renew`): now if none is
    /// running, else right after the running one.
    pub fn run_soon(&mut self, now: Instant) {
        if self.round.is_some() {
            self.again = true;
        } else {
            self.next_round = now;
        }
    }

    /// The kernel reported a change of addresses, routes or links: the next
    /// round comes [`SETTLE`] from now, but no earlier than `retry` after the
    /// latest round started (and after the running one, if any).
    pub fn kernel_changed(&mut self, now: Instant) {
        if self.round.is_some() {
            self.changed = true;
        } else {
            self.next_round = self.next_round.min(self.change_round_at(now));
        }
    }

    fn change_round_at(&self, now: Instant) -> Instant {
        let soon = now + SETTLE;
        self.last_start.map_or(soon, |s| soon.max(s + self.config.retry))
    }

    /// Replaces the configuration: a running round is dropped (its checks are
    /// cancelled) and a new one is due at once.
    pub fn set_config(&mut self, config: Config, uplink: &str, lan: &str, now: Instant) -> Output {
        let mut out = Output::default();
        if let Some(r) = self.round.take() {
            out.actions.extend(r.running.iter().map(|&(check, _)| Action::Cancel { check }));
        }
        self.tree = Tree::new(&config, uplink, lan);
        self.config = config;
        self.next_round = now;
        self.again = false;
        self.changed = false;
        out
    }

    /// The verdict.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// router7's `first_error` under hysteresis: empty when Healthy; else the
    /// first error of the latest failing round, `"<name>: <status>"`.
    #[must_use]
    pub fn first_error(&self) -> String {
        match self.verdict {
            Verdict::Pending => PENDING_ERROR.to_owned(),
            Verdict::Healthy => String::new(),
            Verdict::Unhealthy => self.last_error.clone(),
        }
    }

    /// The latest complete round.
    #[must_use]
    pub fn last_round(&self) -> Option<&Completed> {
        self.last.as_ref()
    }

    /// Complete rounds so far.
    #[must_use]
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Rounds in a row that agree with a change of verdict, and how many it takes:
    /// `(passes, healthy_after)` while Unhealthy, `(fails, unhealthy_after)` while Healthy.
    #[must_use]
    pub fn streak(&self) -> (u32, u32) {
        match self.verdict {
            Verdict::Unhealthy => (self.passes, self.config.healthy_after),
            _ => (self.fails, self.config.unhealthy_after),
        }
    }

    fn start_round(&mut self, now: Instant, wall: Timestamp, out: &mut Output) {
        self.round = Some(Round { results: Default::default(), running: Vec::new(), started: wall });
        self.last_start = Some(now);
        self.start(now, CheckId::Link, out);
    }

    fn start(&mut self, now: Instant, check: CheckId, out: &mut Output) {
        let deadline = now + self.tree.timeout(check);
        if let Some(r) = self.round.as_mut() {
            r.running.push((check, deadline));
        }
        out.actions.push(Action::Start { check, probe: self.tree.probe(check).clone(), deadline });
    }

    fn record(&mut self, now: Instant, wall: Timestamp, check: CheckId, outcome: Outcome, out: &mut Output) {
        let Some(r) = self.round.as_mut() else { return };
        r.running.retain(|&(c, _)| c != check);
        let ok = outcome.ok;
        r.results[check.index()] =
            Some(CheckResult { ok, status: outcome.status, latency: outcome.latency, ran: true, finished: wall });
        if ok {
            for child in check.children() {
                self.start(now, child, out);
            }
        } else {
            self.skip_descendants(check, wall);
        }
        let complete = self.round.as_ref().is_some_and(|r| r.results.iter().all(Option::is_some));
        if complete {
            self.complete(now, wall, out);
        }
    }

    fn skip_descendants(&mut self, failed: CheckId, wall: Timestamp) {
        let Some(r) = self.round.as_mut() else { return };
        let mut stack: Vec<CheckId> = failed.children().collect();
        while let Some(c) = stack.pop() {
            // router7 names the direct parent: grandchildren blame the child.
            let parent = c.parent().map_or("", |p| self.tree.name(p));
            r.results[c.index()] = Some(CheckResult {
                ok: false,
                status: format!("dependency {parent} failed"),
                latency: None,
                ran: false,
                finished: wall,
            });
            stack.extend(c.children());
        }
    }

    fn complete(&mut self, now: Instant, wall: Timestamp, out: &mut Output) {
        let Some(round) = self.round.take() else { return };
        let results: Vec<CheckResult> = round.results.into_iter().flatten().collect();
        let ipv6_counted = self.ipv6_counts();
        let first_error = CheckId::ALL
            .iter()
            .filter(|&&c| self.counts(c))
            .find(|&&c| !results[c.index()].ok)
            .map(|&c| format!("{}: {}", self.tree.name(c), results[c.index()].status))
            .unwrap_or_default();
        if let Some(prev) = &self.last {
            for c in CheckId::ALL {
                let (before, now_r) = (&prev.results[c.index()], &results[c.index()]);
                if before.ok != now_r.ok {
                    out.notices.push(Notice::CheckChanged { check: c, ok: now_r.ok, status: now_r.status.clone() });
                }
            }
        }
        let passed = first_error.is_empty();
        if !passed {
            self.last_error.clone_from(&first_error);
        }
        let before = self.verdict;
        self.verdict = match (self.verdict, passed) {
            (Verdict::Pending, true) => Verdict::Healthy,
            (Verdict::Pending, false) => Verdict::Unhealthy,
            (Verdict::Healthy, true) => {
                self.fails = 0;
                Verdict::Healthy
            }
            (Verdict::Healthy, false) => {
                self.fails += 1;
                if self.fails >= self.config.unhealthy_after { Verdict::Unhealthy } else { Verdict::Healthy }
            }
            (Verdict::Unhealthy, false) => {
                self.passes = 0;
                Verdict::Unhealthy
            }
            (Verdict::Unhealthy, true) => {
                self.passes += 1;
                if self.passes >= self.config.healthy_after { Verdict::Healthy } else { Verdict::Unhealthy }
            }
        };
        if self.verdict != before {
            self.passes = 0;
            self.fails = 0;
            out.notices.push(Notice::HealthChanged { from: before, to: self.verdict, first_error: self.first_error() });
        }
        let steady = passed == (self.verdict == Verdict::Healthy);
        let wait = if steady { self.config.interval } else { self.config.retry };
        self.next_round = if std::mem::take(&mut self.again) { now } else { now + wait };
        if std::mem::take(&mut self.changed) {
            self.next_round = self.next_round.min(self.change_round_at(now));
        }
        self.rounds += 1;
        self.last = Some(Completed { results, started: round.started, finished: wall, ipv6_counted, first_error });
        out.notices.push(Notice::RoundComplete);
    }
}

/// What a check that ran out of time says.
#[must_use]
pub fn timeout_status(probe: &Probe, timeout: Duration) -> String {
    let t = format_duration(timeout);
    match probe {
        Probe::Ping4Gateway { .. } | Probe::Ping6Gateway { .. } | Probe::Ping6AllRouters { .. } => {
            format!("no echo reply within {t}")
        }
        Probe::Tcp4 { .. } | Probe::Tcp6 { .. } => format!("connection not established within {t}"),
        _ => format!("no answer within {t}"),
    }
}

/// `2s`, `1.5s`, `300ms`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() > 0 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// router7's round-trip format: `1.23ms`.
#[must_use]
pub fn format_rtt(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests;
