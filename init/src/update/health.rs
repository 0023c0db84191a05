//! What "healthy" means for a trial boot, and the trial's decision — sans IO.
//!
//! **The criterion** is a list of [`Check`]s on the services' own control API
//! (`/v1/status`), fixed when the update is activated:
//!
//! | service | wants | why |
//! |---|---|---|
//! | diagd | phase `Healthy` | its health tree (link, leases, gateways, TCP out) is router7's definition of healthy |
//! | dhcp4 | phase `Bound` and `state` `BOUND` | the uplink holds a lease the ISP confirmed in this boot (not one loaded from `/perm`) |
//! | dhcp4d | phase `Up` | the LAN gets addresses |
//! | netconfigd | phase `Applied` | addresses, routes, NAT and the firewall are in place |
//!
//! Each row counts when the manifest has the service. diagd does not replace
//! the others: when diagd is unhealthy before the update (the ISP is down, or
//! its TCP target is unreachable), its row weakens to "running" and the
//! services' own rows still catch a new version that breaks DHCP.
//! At activation the old system evaluates them: a check that passes then is
//! required of the new system as it is; one that fails then (the ISP is down,
//! say) only requires the service to run for [`RUNNING_FOR`] — the new version
//! must do what the old one did, not more (balenaOS's "health = what worked
//! before still works").
//!
//! **The decision** ([`Trial`]): commit once every check has passed on every
//! evaluation for [`STABLE`]; roll back when the deadline passes first.
//! Evaluations come about once a second from the shell.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use bootslot::api::{Check, CheckResult};

/// Every check must pass this long without a break before the commit.
pub const STABLE: Duration = Duration::from_secs(5);
/// A "running" check wants the service up at least this long (a service
/// that exits at once and is restarted with backoff never gets there).
pub const RUNNING_FOR: f64 = 10.0;

/// What init sees of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Its name.
    pub service: String,
    /// How long it has been running, when it is.
    pub running_seconds: Option<f64>,
    /// Its own `/v1/status`, when it answered.
    pub status: Option<Value>,
}

fn check(service: &str, phase: &str, fields: &[(&str, &str)]) -> Check {
    Check {
        service: service.to_owned(),
        phase: Some(phase.to_owned()),
        fields: fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    }
}

/// The checks for a system whose manifest lists `services` (see the module docs).
#[must_use]
pub fn default_checks(services: &[&str]) -> Vec<Check> {
    [
        check("diagd", "Healthy", &[]),
        check("dhcp4", "Bound", &[("state", "BOUND")]),
        check("dhcp4d", "Up", &[]),
        check("netconfigd", "Applied", &[]),
    ]
    .into_iter()
    .filter(|c| services.contains(&c.service.as_str()))
    .collect()
}

fn field_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Evaluates one check against what was observed.
#[must_use]
pub fn evaluate_one(c: &Check, observed: &[Observed]) -> CheckResult {
    let result = |ok: bool, seen: String| CheckResult { check: c.clone(), ok, seen };
    let Some(o) = observed.iter().find(|o| o.service == c.service) else {
        return result(false, "not in the manifest".into());
    };
    let Some(up) = o.running_seconds else {
        return result(false, "not running".into());
    };
    let Some(phase) = &c.phase else {
        return result(up >= RUNNING_FOR, format!("running for {up:.0} s"));
    };
    let Some(status) = &o.status else {
        return result(false, "running, its control API does not answer".into());
    };
    let seen_phase = status.get("phase").map_or_else(|| "no phase".into(), field_text);
    let mut ok = &seen_phase == phase;
    let mut seen = format!("phase {seen_phase}");
    for (k, want) in &c.fields {
        let got = status.get(k).map_or_else(|| "absent".into(), field_text);
        ok &= &got == want;
        seen.push_str(&format!(", {k} {got}"));
    }
    result(ok, seen)
}

/// Evaluates every check.
#[must_use]
pub fn evaluate(checks: &[Check], observed: &[Observed]) -> Vec<CheckResult> {
    checks.iter().map(|c| evaluate_one(c, observed)).collect()
}

/// The criterion recorded at activation: the checks that pass now as they
/// are, the others reduced to "running".
#[must_use]
pub fn criterion(checks: &[Check], observed: &[Observed]) -> Vec<Check> {
    checks
        .iter()
        .map(|c| {
            if evaluate_one(c, observed).ok {
                c.clone()
            } else {
                Check { service: c.service.clone(), phase: None, fields: BTreeMap::new() }
            }
        })
        .collect()
}

/// What the trial does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Keep evaluating.
    Wait,
    /// Make the slot the default.
    Commit {
        /// From the trial's start to the first of the stable evaluations.
        healthy_after: Duration,
    },
    /// Reboot into the old default, for this reason.
    RollBack(String),
}

/// A trial in progress.
#[derive(Debug, Clone)]
pub struct Trial {
    started: Instant,
    deadline: Instant,
    healthy_since: Option<Instant>,
}

impl Trial {
    /// A trial that started at `started` (init's start) with `deadline` to prove itself.
    #[must_use]
    pub fn new(started: Instant, deadline: Duration) -> Self {
        Self { started, deadline: started + deadline, healthy_since: None }
    }

    /// When the trial rolls back at the latest.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Takes one evaluation made at `now`.
    pub fn on_results(&mut self, now: Instant, results: &[CheckResult]) -> Decision {
        if results.iter().all(|r| r.ok) {
            let since = *self.healthy_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= STABLE {
                return Decision::Commit { healthy_after: since.saturating_duration_since(self.started) };
            }
        } else {
            self.healthy_since = None;
        }
        if now >= self.deadline {
            let secs = self.deadline.saturating_duration_since(self.started).as_secs();
            let failing: Vec<String> =
                results.iter().filter(|r| !r.ok).map(|r| format!("{} (saw {})", r.check, r.seen)).collect();
            let why = if failing.is_empty() {
                format!("healthy for less than {} s when the {secs} s deadline passed", STABLE.as_secs())
            } else {
                format!("not healthy within {secs} s: {}", failing.join("; "))
            };
            return Decision::RollBack(why);
        }
        Decision::Wait
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obs(service: &str, up: Option<f64>, status: Option<Value>) -> Observed {
        Observed { service: service.into(), running_seconds: up, status }
    }

    fn healthy_world() -> Vec<Observed> {
        vec![
            obs("dhcp4", Some(30.0), Some(json!({"phase":"Bound","state":"BOUND"}))),
            obs("dhcp4d", Some(30.0), Some(json!({"phase":"Up"}))),
            obs("netconfigd", Some(30.0), Some(json!({"phase":"Applied"}))),
            obs("radvd", Some(30.0), Some(json!({"phase":"Up"}))),
        ]
    }

    #[test]
    fn diagd_and_the_services_own_phases_decide() {
        let with = default_checks(&["dhcp4", "diagd", "dhcp4d"]);
        assert_eq!(
            with.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["diagd Healthy", "dhcp4 Bound (state BOUND)", "dhcp4d Up"]
        );
        let without = default_checks(&["dhcp4", "dhcp4d", "netconfigd", "radvd"]);
        assert_eq!(
            without.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["dhcp4 Bound (state BOUND)", "dhcp4d Up", "netconfigd Applied"]
        );
        assert_eq!(default_checks(&["dhcp4d"]).len(), 1, "only services the manifest has");
    }

    #[test]
    fn a_lease_loaded_from_perm_is_not_yet_bound() {
        let c = &default_checks(&["dhcp4"])[0];
        let rebooting = [obs("dhcp4", Some(3.0), Some(json!({"phase":"Bound","state":"INIT-REBOOT"})))];
        let r = evaluate_one(c, &rebooting);
        assert!(!r.ok);
        assert_eq!(r.seen, "phase Bound, state INIT-REBOOT");
        assert!(evaluate_one(c, &healthy_world()).ok);
        assert_eq!(evaluate_one(c, &[obs("dhcp4", None, None)]).seen, "not running");
        assert_eq!(evaluate_one(c, &[]).seen, "not in the manifest");
        assert!(!evaluate_one(c, &[obs("dhcp4", Some(9.0), None)]).ok, "no answer from its socket");
    }

    #[test]
    fn an_unhealthy_diagd_before_the_update_still_leaves_the_dhcp_checks() {
        let checks = default_checks(&["diagd", "dhcp4", "dhcp4d", "netconfigd"]);
        let mut before = healthy_world();
        before.push(obs("diagd", Some(60.0), Some(json!({"phase":"Unhealthy","first_error":"tcp4/8.8.8.8: refused"}))));
        let crit = criterion(&checks, &before);
        assert_eq!(
            crit.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["diagd running", "dhcp4 Bound (state BOUND)", "dhcp4d Up", "netconfigd Applied"]
        );
        let mut broken = before.clone();
        broken[0].running_seconds = None; // dhcp4 exits at once in the new version
        assert!(!evaluate(&crit, &broken).iter().all(|r| r.ok));
    }

    #[test]
    fn what_failed_before_the_update_only_has_to_run_afterwards() {
        let checks = default_checks(&["dhcp4", "dhcp4d", "netconfigd"]);
        let mut before = healthy_world();
        before[0].status = Some(json!({"phase":"Pending","state":"SELECTING"}));
        let crit = criterion(&checks, &before);
        assert_eq!(
            crit.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["dhcp4 running", "dhcp4d Up", "netconfigd Applied"]
        );
        let flapping = [obs("dhcp4", Some(0.5), None)];
        assert!(!evaluate_one(&crit[0], &flapping).ok, "a service restarted every few seconds never runs long");
        assert!(evaluate_one(&crit[0], &[obs("dhcp4", Some(10.0), None)]).ok);
    }

    #[test]
    fn commits_after_a_stable_healthy_stretch_and_not_before() {
        let t0 = runtime::clock::now();
        let checks = default_checks(&["dhcp4", "dhcp4d", "netconfigd"]);
        let mut trial = Trial::new(t0, Duration::from_secs(120));
        let good = evaluate(&checks, &healthy_world());
        let mut bad_world = healthy_world();
        bad_world[1].running_seconds = None;
        let bad = evaluate(&checks, &bad_world);
        assert_eq!(trial.on_results(t0 + Duration::from_secs(10), &good), Decision::Wait);
        assert_eq!(trial.on_results(t0 + Duration::from_secs(12), &bad), Decision::Wait, "a break resets");
        assert_eq!(trial.on_results(t0 + Duration::from_secs(13), &good), Decision::Wait);
        assert_eq!(trial.on_results(t0 + Duration::from_secs(17), &good), Decision::Wait);
        assert_eq!(
            trial.on_results(t0 + Duration::from_secs(18), &good),
            Decision::Commit { healthy_after: Duration::from_secs(13) }
        );
    }

    #[test]
    fn rolls_back_at_the_deadline_naming_what_failed() {
        let t0 = runtime::clock::now();
        let checks = default_checks(&["dhcp4", "dhcp4d"]);
        let mut world = healthy_world();
        world[0].status = Some(json!({"phase":"Pending","state":"SELECTING"}));
        let results = evaluate(&checks, &world);
        let mut trial = Trial::new(t0, Duration::from_secs(120));
        assert_eq!(trial.on_results(t0 + Duration::from_secs(119), &results), Decision::Wait);
        assert_eq!(
            trial.on_results(t0 + Duration::from_secs(120), &results),
            Decision::RollBack(
                "not healthy within 120 s: dhcp4 Bound (state BOUND) (saw phase Pending, state SELECTING)".into()
            )
        );
        let mut late = Trial::new(t0, Duration::from_secs(60));
        let good = evaluate(&checks, &healthy_world());
        assert_eq!(late.on_results(t0 + Duration::from_secs(58), &good), Decision::Wait);
        assert!(
            matches!(late.on_results(t0 + Duration::from_secs(61), &good), Decision::RollBack(w) if w.contains("less than 5 s"))
        );
    }
}
