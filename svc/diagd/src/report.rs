//! What diagd shows: `/health.json` (router7's `{"first_error"}` plus the whole
//! tree), the `/` HTML page, the control API's status field and conditions, and
//! the per-check metrics — all rendered from a [`Report`], a snapshot the loop
//! takes after each round, so serving never runs a probe.

use std::fmt::Write as _;
use std::time::Duration;

use runtime::metrics::Encoder;
use runtime::timefmt::Timestamp;
use serde_json::{Value, json};

use crate::config::Ipv6Mode;
use crate::monitor::{Monitor, Verdict};
use crate::tree::{CheckId, Family};

/// One check as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckView {
    /// Which.
    pub id: CheckId,
    /// Display name.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// Status text.
    pub status: String,
    /// Whether it ran (false: a dependency failed).
    pub ran: bool,
    /// Whether it counts towards health.
    pub counted: bool,
    /// Probe latency.
    pub latency: Option<Duration>,
    /// When its result came.
    pub finished: Timestamp,
}

/// A snapshot of everything diagd shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// router7's first_error under hysteresis ("" when healthy).
    pub first_error: String,
    /// The latest complete round's checks in pre-order (empty before the first).
    pub checks: Vec<CheckView>,
    /// The latest round's own first error, before hysteresis.
    pub round_error: String,
    /// When the latest round started and finished.
    pub round_time: Option<(Timestamp, Timestamp)>,
    /// Complete rounds so far.
    pub rounds: u64,
    /// The IPv6 mode.
    pub ipv6_mode: Ipv6Mode,
    /// Whether IPv6 counted in the latest round.
    pub ipv6_counted: bool,
    /// Rounds in a row towards a change of verdict, and how many it takes.
    pub streak: (u32, u32),
}

impl Report {
    /// Takes the snapshot.
    #[must_use]
    pub fn of(m: &Monitor) -> Self {
        let last = m.last_round();
        let ipv6_counted = last.map_or(m.ipv6_counts(), |l| l.ipv6_counted);
        let checks = last
            .map(|l| {
                CheckId::ALL
                    .iter()
                    .map(|&id| {
                        let r = &l.results[id.index()];
                        CheckView {
                            id,
                            name: m.tree().name(id).to_owned(),
                            ok: r.ok,
                            status: r.status.clone(),
                            ran: r.ran,
                            counted: id.family() != Family::V6 || ipv6_counted,
                            latency: r.latency,
                            finished: r.finished,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            verdict: m.verdict(),
            first_error: m.first_error(),
            checks,
            round_error: last.map(|l| l.first_error.clone()).unwrap_or_default(),
            round_time: last.map(|l| (l.started, l.finished)),
            rounds: m.rounds(),
            ipv6_mode: m.config().ipv6,
            ipv6_counted,
            streak: m.streak(),
        }
    }

    fn view(&self, id: CheckId) -> Option<&CheckView> {
        self.checks.get(id.index())
    }

    fn node_json(&self, id: CheckId) -> Value {
        let Some(c) = self.view(id) else { return Value::Null };
        let children: Vec<Value> = id.children().map(|ch| self.node_json(ch)).collect();
        json!({
            "id": id.key(),
            "name": c.name,
            "ok": c.ok,
            "status": c.status,
            "ran": c.ran,
            "counted": c.counted,
            "latency_seconds": c.latency.map(|d| d.as_secs_f64()),
            "last_run": c.finished,
            "children": children,
        })
    }

    /// The tree as JSON: a list holding the root (empty before the first round).
    #[must_use]
    pub fn tree_json(&self) -> Value {
        if self.checks.is_empty() { json!([]) } else { json!([self.node_json(CheckId::Link)]) }
    }

    /// `/health.json`. `first_error` is router7's field: empty means healthy.
    #[must_use]
    pub fn health_json(&self) -> Value {
        json!({
            "first_error": self.first_error,
            "phase": self.verdict.as_str(),
            "healthy": self.verdict == Verdict::Healthy,
            "round": self.round_json(),
            "ipv6": {"mode": self.ipv6_mode.as_str(), "counted": self.ipv6_counted},
            "checks": self.tree_json(),
        })
    }

    fn round_json(&self) -> Value {
        json!({
            "count": self.rounds,
            "started": self.round_time.map(|t| t.0),
            "finished": self.round_time.map(|t| t.1),
            "first_error": self.round_error,
            "streak": self.streak.0,
            "streak_needed": self.streak.1,
        })
    }

    /// The control API's `diagd` status field.
    #[must_use]
    pub fn status_json(&self) -> Value {
        json!({
            "first_error": self.first_error,
            "round": self.round_json(),
            "ipv6": {"mode": self.ipv6_mode.as_str(), "counted": self.ipv6_counted},
            "checks": self.tree_json(),
        })
    }

    /// One condition per family (`Link`, `IPv4`, `IPv6`): True when every
    /// check of it passed in the latest round; the message is its first error.
    #[must_use]
    pub fn conditions(&self) -> Vec<(&'static str, Option<bool>, &'static str, String)> {
        Family::ALL
            .iter()
            .map(|&family| {
                let kind = family.condition();
                let mine: Vec<&CheckView> = self.checks.iter().filter(|c| c.id.family() == family).collect();
                if mine.is_empty() {
                    return (kind, None, "NotRunYet", "no round of checks has completed yet".to_owned());
                }
                let counted = mine.iter().all(|c| c.counted);
                match mine.iter().find(|c| !c.ok) {
                    None => (kind, Some(true), if counted { "Passed" } else { "PassedNotCounted" }, String::new()),
                    Some(c) => {
                        let reason = match (c.ran, counted) {
                            (_, false) => "FailedNotCounted",
                            (true, true) => "CheckFailed",
                            (false, true) => "DependencyFailed",
                        };
                        (kind, Some(false), reason, format!("{}: {}", c.name, c.status))
                    }
                }
            })
            .collect()
    }

    /// The `/` page: router7's nested list, with a headline.
    #[must_use]
    pub fn html(&self) -> String {
        let mut h = String::from(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>diagd</title>\
             <style>ul{list-style-type:none}.ok{color:#080}.fail{color:#b00}.uncounted{opacity:.6}</style></head><body>",
        );
        let _ = write!(h, "<p>{}", escape(self.verdict.as_str()));
        if !self.first_error.is_empty() {
            let _ = write!(h, ": {}", escape(&self.first_error));
        }
        if let Some((_, finished)) = self.round_time {
            let _ = write!(h, " (round {} finished {})", self.rounds, escape(&finished.to_string()));
        }
        h.push_str("</p><ul>");
        if !self.checks.is_empty() {
            self.html_node(CheckId::Link, &mut h);
        }
        h.push_str("</ul></body></html>\n");
        h
    }

    fn html_node(&self, id: CheckId, h: &mut String) {
        let Some(c) = self.view(id) else { return };
        let (symbol, class) = if c.ok { ("✔", "ok") } else { ("✘", "fail") };
        let extra = if c.counted { "" } else { " uncounted" };
        let note = if c.counted { "" } else { " (not counted)" };
        let _ = write!(
            h,
            "<li><span class=\"{class}{extra}\">{symbol} {}: {}{note}</span><ul>",
            escape(&c.name),
            escape(&c.status)
        );
        for ch in id.children() {
            self.html_node(ch, h);
        }
        h.push_str("</ul></li>");
    }

    /// `diagd_healthy` and the per-check gauges.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.gauge(
            "diagd_healthy",
            "1 when the health checks pass (with hysteresis), else 0.",
            &[],
            if self.verdict == Verdict::Healthy { 1.0 } else { 0.0 },
        );
        enc.gauge(
            "diagd_ipv6_counted",
            "1 when the IPv6 checks count towards health.",
            &[],
            f64::from(u8::from(self.ipv6_counted)),
        );
        for c in &self.checks {
            let labels = [("check", c.id.key()), ("name", c.name.as_str())];
            enc.gauge(
                "diagd_check_ok",
                "1 when the check passed in the latest round.",
                &labels,
                f64::from(u8::from(c.ok)),
            );
            if let Some(l) = c.latency {
                enc.gauge(
                    "diagd_check_latency_seconds",
                    "Probe round-trip or connect time in the latest round.",
                    &labels,
                    l.as_secs_f64(),
                );
            }
        }
    }
}

pub use runtime::http::html_escape as escape;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigFile};
    use crate::monitor::{Action, Outcome};

    fn run_round(m: &mut Monitor, f: impl Fn(CheckId) -> Outcome) {
        let now = runtime::clock::now();
        let wall = Timestamp { secs: 1_800_000_000, nanos: 0 };
        let mut queue = m.poll(now, wall).actions;
        while !queue.is_empty() {
            if let Action::Start { check, .. } = queue.remove(0) {
                queue.extend(m.on_outcome(now, wall, check, f(check)).actions);
            }
        }
    }

    fn monitor() -> Monitor {
        Monitor::new(Config::default(), "uplink0", "lan0", runtime::clock::now())
    }

    #[test]
    fn pending_report_is_not_healthy_and_has_no_tree() {
        let r = Report::of(&monitor());
        let j = r.health_json();
        assert_eq!(j["phase"], "Pending");
        assert_ne!(j["first_error"], "", "router7 clients must not read Pending as healthy");
        assert_eq!(j["checks"], json!([]));
        assert!(r.conditions().iter().all(|c| c.1.is_none()));
    }

    #[test]
    fn health_json_nests_the_tree_with_router7s_first_error() {
        let mut m = monitor();
        m.set_ipv6_present(true);
        run_round(&mut m, |c| match c {
            CheckId::Tcp4 => Outcome::fail("connection refused"),
            CheckId::Ping4Gateway => Outcome::pass("0.05ms from 10.0.0.1").with_latency(Duration::from_micros(50)),
            _ => Outcome::pass("ok"),
        });
        let j = Report::of(&m).health_json();
        assert_eq!(j["first_error"], "tcp4/8.8.8.8:443: connection refused");
        assert_eq!(j["healthy"], false);
        let root = &j["checks"][0];
        assert_eq!(root["name"], "link/uplink0");
        assert_eq!(root["children"].as_array().unwrap().len(), 4);
        let ping = &root["children"][0]["children"][0];
        assert_eq!(ping["name"], "ping4: $default-gateway");
        assert_eq!(ping["latency_seconds"], 0.00005);
        assert_eq!(ping["children"][0]["ok"], false);
        assert_eq!(ping["children"][0]["status"], "connection refused");
        assert_eq!(ping["children"][0]["last_run"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn conditions_summarise_each_family() {
        let mut m = monitor();
        run_round(
            &mut m,
            |c| if c == CheckId::Dhcp4 { Outcome::fail("lease expired at x") } else { Outcome::pass("ok") },
        );
        let conds = Report::of(&m).conditions();
        assert_eq!(conds[0], ("Link", Some(true), "Passed", String::new()));
        assert_eq!(conds[1], ("IPv4", Some(false), "CheckFailed", "dhcp4: lease expired at x".to_owned()));
        assert_eq!(conds[2], ("IPv6", Some(true), "PassedNotCounted", String::new()), "auto without a dhcp6 lease");

        let mut m = monitor();
        run_round(&mut m, |_| Outcome::fail("down"));
        let conds = Report::of(&m).conditions();
        assert_eq!(conds[1].2, "DependencyFailed");
        assert_eq!(conds[1].3, "dhcp4: dependency link/uplink0 failed");
        assert_eq!(conds[2].2, "FailedNotCounted");
    }

    #[test]
    fn html_escapes_names_and_statuses() {
        let mut m =
            Monitor::new(Config::try_from(ConfigFile::default()).unwrap(), "up<script>", "lan0", runtime::clock::now());
        run_round(&mut m, |_| Outcome::fail("bad & \"worse\" <b>"));
        let html = Report::of(&m).html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("✘ link/up&lt;script&gt;: bad &amp; &quot;worse&quot; &lt;b&gt;</span><ul>"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(html.contains("(not counted)"), "IPv6 checks are shown but marked");
    }

    #[test]
    fn metrics_have_the_healthy_gauge_and_per_check_series() {
        let mut m = monitor();
        run_round(&mut m, |c| {
            if c == CheckId::Tcp4 {
                Outcome::pass("ok").with_latency(Duration::from_millis(12))
            } else {
                Outcome::pass("ok")
            }
        });
        let mut enc = Encoder::new();
        Report::of(&m).encode(&mut enc);
        let text = enc.finish();
        assert!(text.contains("diagd_healthy 1\n"), "{text}");
        assert!(text.contains("diagd_check_ok{check=\"tcp4\",name=\"tcp4/8.8.8.8:443\"} 1\n"), "{text}");
        assert!(
            text.contains("diagd_check_latency_seconds{check=\"tcp4\",name=\"tcp4/8.8.8.8:443\"} 0.012\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE diagd_check_ok gauge").count(), 1);
    }
}
