use super::*;
use crate::config::ConfigFile;

fn t0() -> Instant {
    // Any fixed instant works: the monitor only compares and adds.
    runtime::clock::now()
}

fn wall(secs: i64) -> Timestamp {
    Timestamp { secs: 1_800_000_000 + secs, nanos: 0 }
}

fn config(f: ConfigFile) -> Config {
    Config::try_from(f).unwrap()
}

fn monitor(f: ConfigFile, now: Instant) -> Monitor {
    Monitor::new(config(f), "uplink0", "lan0", now)
}

/// Runs one round at `now`, answering every started check at once with `f`.
/// Returns the checks started, in order, and the notices.
fn round(m: &mut Monitor, now: Instant, f: impl Fn(CheckId) -> Outcome) -> (Vec<CheckId>, Vec<Notice>) {
    let mut started = Vec::new();
    let mut notices = Vec::new();
    let out = m.poll(now, wall(0));
    let mut queue: Vec<Action> = out.actions;
    notices.extend(out.notices);
    while !queue.is_empty() {
        let action = queue.remove(0);
        if let Action::Start { check, .. } = action {
            started.push(check);
            let out = m.on_outcome(now, wall(0), check, f(check));
            queue.extend(out.actions);
            notices.extend(out.notices);
        }
    }
    (started, notices)
}

fn all_pass(_: CheckId) -> Outcome {
    Outcome::pass("fine")
}

fn failing(bad: &'static [CheckId]) -> impl Fn(CheckId) -> Outcome {
    move |c| if bad.contains(&c) { Outcome::fail(format!("{} broke", c.key())) } else { Outcome::pass("fine") }
}

fn health_changes(notices: &[Notice]) -> Vec<(Verdict, Verdict, String)> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::HealthChanged { from, to, first_error } => Some((*from, *to, first_error.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_passing_round_starts_each_checks_children_and_makes_it_healthy() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    assert_eq!(m.verdict(), Verdict::Pending);
    assert_eq!(m.first_error(), PENDING_ERROR);
    assert_eq!(m.poll_at(), Some(now));
    let (mut started, notices) = round(&mut m, now, all_pass);
    assert_eq!(
        started[..5],
        [CheckId::Link, CheckId::Dhcp4, CheckId::Dhcp6, CheckId::Slaac, CheckId::Ping6AllRouters],
        "a passing check starts all its children at once"
    );
    started.sort();
    assert_eq!(started, CheckId::ALL.to_vec(), "each check runs once");
    assert_eq!(health_changes(&notices), vec![(Verdict::Pending, Verdict::Healthy, String::new())]);
    assert!(notices.contains(&Notice::RoundComplete));
    assert_eq!(m.first_error(), "");
    let last = m.last_round().unwrap();
    assert!(last.results.iter().all(|r| r.ok && r.ran));
    assert_eq!(m.rounds(), 1);
}

#[test]
fn a_failed_link_fails_every_descendant_without_running_it() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let (started, notices) = round(&mut m, now, |_| Outcome::fail("link uplink0 is down"));
    assert_eq!(started, vec![CheckId::Link], "nothing below a failed check runs");
    assert_eq!(
        health_changes(&notices),
        vec![(Verdict::Pending, Verdict::Unhealthy, "link/uplink0: link uplink0 is down".to_owned())]
    );
    let r = &m.last_round().unwrap().results;
    for c in [CheckId::Dhcp4, CheckId::Dhcp6, CheckId::Slaac, CheckId::Ping6AllRouters] {
        assert_eq!(r[c.index()].status, "dependency link/uplink0 failed");
        assert!(!r[c.index()].ok && !r[c.index()].ran);
    }
    // router7 blames the direct parent, which failed as a dependency in turn.
    assert_eq!(r[CheckId::Ping4Gateway.index()].status, "dependency dhcp4 failed");
    assert_eq!(r[CheckId::Tcp4.index()].status, "dependency ping4: $default-gateway failed");
    assert_eq!(r[CheckId::Tcp6.index()].status, "dependency ping6gw: $default-gateway failed");
}

#[test]
fn first_error_is_the_first_failure_in_depth_first_pre_order() {
    let required = || ConfigFile { ipv6: Some(Ipv6Mode::Required), ..ConfigFile::default() };
    for (bad, expected) in [
        (&[CheckId::Slaac, CheckId::Dhcp4][..], "dhcp4: dhcp4 broke"),
        (&[CheckId::Dhcp6, CheckId::Tcp4], "tcp4/8.8.8.8:443: tcp4 broke"),
        (&[CheckId::Ping6AllRouters, CheckId::Tcp6], "tcp6/[2001:4860:4860::8888]:443: tcp6 broke"),
        (&[CheckId::Ping6AllRouters], "ping6: ff02::2%uplink0: ping6_all_routers broke"),
    ] {
        let now = t0();
        let mut m = monitor(required(), now);
        let bad: &'static [CheckId] = Vec::leak(bad.to_vec());
        round(&mut m, now, failing(bad));
        assert_eq!(m.first_error(), expected, "{bad:?}");
        assert_eq!(m.last_round().unwrap().first_error, expected);
    }
}

#[test]
fn ipv6_counts_as_configured() {
    let v6_broken: &[CheckId] = &[CheckId::Dhcp6, CheckId::Slaac];
    let run = |mode: Ipv6Mode, present: bool| {
        let now = t0();
        let mut m = monitor(ConfigFile { ipv6: Some(mode), ..ConfigFile::default() }, now);
        m.set_ipv6_present(present);
        round(&mut m, now, failing(v6_broken));
        (m.verdict(), m.first_error(), m.last_round().unwrap().ipv6_counted)
    };
    assert_eq!(run(Ipv6Mode::Auto, false), (Verdict::Healthy, String::new(), false), "no IPv6 from the ISP");
    assert_eq!(run(Ipv6Mode::Auto, true), (Verdict::Unhealthy, "dhcp6: dhcp6 broke".into(), true));
    assert_eq!(run(Ipv6Mode::Required, false).0, Verdict::Unhealthy);
    assert_eq!(run(Ipv6Mode::Ignored, true).0, Verdict::Healthy);
    // Not counting never hides an IPv4 failure.
    let now = t0();
    let mut m = monitor(ConfigFile { ipv6: Some(Ipv6Mode::Ignored), ..ConfigFile::default() }, now);
    round(&mut m, now, failing(&[CheckId::Tcp4, CheckId::Dhcp6]));
    assert_eq!(m.first_error(), "tcp4/8.8.8.8:443: tcp4 broke");
}

#[test]
fn turns_unhealthy_only_after_consecutive_failures_and_back_after_consecutive_passes() {
    let now = t0();
    let mut m = monitor(ConfigFile { unhealthy_after: Some(3), healthy_after: Some(2), ..ConfigFile::default() }, now);
    let mut t = now;
    let mut step = |m: &mut Monitor, f: &dyn Fn(CheckId) -> Outcome| {
        t = m.poll_at().unwrap();
        let (_, notices) = round(m, t, f);
        (m.verdict(), health_changes(&notices), m.poll_at().unwrap() - t)
    };
    let broken = failing(&[CheckId::Tcp4]);
    let (v, _, wait) = step(&mut m, &all_pass);
    assert_eq!((v, wait), (Verdict::Healthy, Duration::from_secs(10)), "steady: the full interval");
    for n in 1..3 {
        let (v, changes, wait) = step(&mut m, &broken);
        assert_eq!((v, changes.len()), (Verdict::Healthy, 0), "failure {n} of 3 is tolerated");
        assert_eq!(m.first_error(), "", "health.json stays healthy meanwhile");
        assert_eq!(m.streak(), (n, 3));
        assert_eq!(wait, Duration::from_secs(2), "a disagreeing round is re-checked soon");
        assert!(!m.last_round().unwrap().first_error.is_empty(), "the tree shows the failure");
    }
    let (v, changes, wait) = step(&mut m, &broken);
    assert_eq!(v, Verdict::Unhealthy);
    assert_eq!(changes, vec![(Verdict::Healthy, Verdict::Unhealthy, "tcp4/8.8.8.8:443: tcp4 broke".into())]);
    assert_eq!(wait, Duration::from_secs(10), "steadily unhealthy: the full interval");
    let (v, changes, wait) = step(&mut m, &all_pass);
    assert_eq!((v, changes.len(), wait), (Verdict::Unhealthy, 0, Duration::from_secs(2)));
    assert_eq!(m.first_error(), "tcp4/8.8.8.8:443: tcp4 broke", "still unhealthy: the last error stays");
    let (v, changes, _) = step(&mut m, &all_pass);
    assert_eq!(v, Verdict::Healthy);
    assert_eq!(changes, vec![(Verdict::Unhealthy, Verdict::Healthy, String::new())]);
}

#[test]
fn alternating_results_do_not_flap() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let mut t = now;
    round(&mut m, t, all_pass);
    let broken = failing(&[CheckId::Ping4Gateway]);
    let mut changes = 0;
    for i in 0..20 {
        t = m.poll_at().unwrap();
        let (_, notices) = if i % 2 == 0 { round(&mut m, t, &broken) } else { round(&mut m, t, all_pass) };
        changes += health_changes(&notices).len();
    }
    assert_eq!((m.verdict(), changes), (Verdict::Healthy, 0));

    // With thresholds of 1 the same pattern flips every round: the knob works.
    let mut m = monitor(ConfigFile { unhealthy_after: Some(1), healthy_after: Some(1), ..ConfigFile::default() }, now);
    round(&mut m, now, all_pass);
    let mut changes = 0;
    for i in 0..20 {
        t = m.poll_at().unwrap();
        let (_, notices) = if i % 2 == 0 { round(&mut m, t, &broken) } else { round(&mut m, t, all_pass) };
        changes += health_changes(&notices).len();
    }
    assert_eq!(changes, 20);
}

#[test]
fn a_check_that_takes_too_long_times_out_at_its_deadline() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let out = m.poll(now, wall(0));
    assert!(matches!(out.actions[..], [Action::Start { check: CheckId::Link, .. }]));
    let out = m.on_outcome(now, wall(0), CheckId::Link, Outcome::pass("1 rx, 2 tx"));
    let out2 = m.on_outcome(now, wall(0), CheckId::Dhcp4, Outcome::pass("lease valid"));
    let ping_deadline = out2
        .actions
        .iter()
        .find_map(|a| match a {
            Action::Start { check: CheckId::Ping4Gateway, deadline, .. } => Some(*deadline),
            _ => None,
        })
        .unwrap();
    assert_eq!(ping_deadline, now + Duration::from_secs(2));
    // Answer the rest except the ping.
    for a in out.actions {
        if let Action::Start { check, .. } = a
            && check != CheckId::Dhcp4
        {
            let _ = m.on_outcome(now, wall(0), check, Outcome::pass("ok"));
        }
    }
    // Children of the v6 checks were started by those passes; answer them too.
    for c in [CheckId::Tcp6Lan, CheckId::Ping6Gateway, CheckId::Tcp6] {
        let _ = m.on_outcome(now, wall(0), c, Outcome::pass("ok"));
    }
    assert_eq!(m.poll_at(), Some(ping_deadline), "the only thing left is the ping's deadline");
    assert_eq!(m.poll(ping_deadline - Duration::from_millis(1), wall(1)), Output::default());
    let out = m.poll(ping_deadline, wall(2));
    assert_eq!(out.actions, vec![Action::Cancel { check: CheckId::Ping4Gateway }]);
    let r = &m.last_round().unwrap().results;
    assert_eq!(r[CheckId::Ping4Gateway.index()].status, "no echo reply within 2s");
    assert_eq!(r[CheckId::Tcp4.index()].status, "dependency ping4: $default-gateway failed");
    // A reply arriving after the deadline changes nothing.
    let late = m.on_outcome(ping_deadline, wall(3), CheckId::Ping4Gateway, Outcome::pass("late"));
    assert_eq!(late, Output::default());
    assert_eq!(m.last_round().unwrap().results[CheckId::Ping4Gateway.index()].status, "no echo reply within 2s");
}

#[test]
fn tcp_timeouts_use_their_own_text_and_duration() {
    let now = t0();
    let mut m = monitor(ConfigFile { tcp_timeout_ms: Some(1500), ..ConfigFile::default() }, now);
    let mut pending_tcp = None;
    let out = m.poll(now, wall(0));
    let mut queue = out.actions;
    while !queue.is_empty() {
        if let Action::Start { check, deadline, .. } = queue.remove(0) {
            if check == CheckId::Tcp4 {
                pending_tcp = Some(deadline);
                continue;
            }
            queue.extend(m.on_outcome(now, wall(0), check, Outcome::pass("ok")).actions);
        }
    }
    let deadline = pending_tcp.unwrap();
    assert_eq!(deadline, now + Duration::from_millis(1500));
    m.poll(deadline, wall(1));
    assert_eq!(m.first_error(), "tcp4/8.8.8.8:443: connection not established within 1.5s");
}

#[test]
fn renew_during_a_round_runs_another_right_after() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let _ = m.poll(now, wall(0));
    m.run_soon(now);
    let later = now + Duration::from_millis(50);
    let _ = m.on_outcome(later, wall(0), CheckId::Link, Outcome::fail("down"));
    assert_eq!(m.poll_at(), Some(later), "the next round is due at once, not after the retry interval");
    // Without a round running, renew moves the next round to now.
    let (_, _) = round(&mut m, later, all_pass);
    assert!(m.poll_at().unwrap() > later);
    m.run_soon(later);
    assert_eq!(m.poll_at(), Some(later));
}

#[test]
fn a_kernel_change_brings_the_next_round_forward_at_most_once_per_retry() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let ms = Duration::from_millis;
    // Steadily unhealthy: the next round would be a full interval away.
    let (_, _) = round(&mut m, now, failing(&[CheckId::Tcp4]));
    assert_eq!(m.verdict(), Verdict::Unhealthy);
    assert_eq!(m.poll_at(), Some(now + Duration::from_secs(10)));
    // A change within `retry` of that round's start waits for the retry.
    m.kernel_changed(now + ms(100));
    assert_eq!(m.poll_at(), Some(now + Duration::from_secs(2)), "no rounds back to back");
    // Later changes never postpone it.
    m.kernel_changed(now + ms(1900));
    assert_eq!(m.poll_at(), Some(now + Duration::from_secs(2)));
    let t = now + Duration::from_secs(2);
    let (_, notices) = round(&mut m, t, all_pass);
    assert!(health_changes(&notices).is_empty(), "healthy_after 2: one pass is not enough");
    assert_eq!(m.poll_at(), Some(t + Duration::from_secs(2)), "a disagreeing round: retry");
    let t = t + Duration::from_secs(2);
    let (_, notices) = round(&mut m, t, all_pass);
    assert_eq!(health_changes(&notices).len(), 1);
    assert_eq!(m.poll_at(), Some(t + Duration::from_secs(10)), "steadily healthy: the interval");
    // Long after the latest round: SETTLE from the change, so a burst is one round.
    let change = t + Duration::from_secs(5);
    m.kernel_changed(change);
    m.kernel_changed(change + ms(100));
    assert_eq!(m.poll_at(), Some(change + SETTLE));
    let (started, _) = round(&mut m, change + SETTLE, all_pass);
    assert!(!started.is_empty());
    assert_eq!(m.poll_at(), Some(change + SETTLE + Duration::from_secs(10)), "nothing more came");
}

#[test]
fn a_kernel_change_during_a_round_is_seen_by_the_next_one() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let _ = m.poll(now, wall(0));
    let ms = Duration::from_millis;
    m.kernel_changed(now + ms(300));
    // The round ends (unhealthy, steady: normally the full interval).
    let _ = m.on_outcome(now + ms(500), wall(0), CheckId::Link, Outcome::fail("down"));
    assert_eq!(m.verdict(), Verdict::Unhealthy);
    assert_eq!(m.poll_at(), Some(now + Duration::from_secs(2)), "retry after the round's start");
    // A round that ran long: SETTLE after its end.
    let t = now + Duration::from_secs(2);
    let _ = m.poll(t, wall(2));
    m.kernel_changed(t + ms(10));
    let end = t + Duration::from_secs(3);
    let _ = m.on_outcome(end, wall(5), CheckId::Link, Outcome::fail("down"));
    assert_eq!(m.poll_at(), Some(end + SETTLE));
    // Without a change, the interval as before.
    let _ = m.poll(end + SETTLE, wall(5));
    let _ = m.on_outcome(end + SETTLE, wall(5), CheckId::Link, Outcome::fail("down"));
    assert_eq!(m.poll_at(), Some(end + SETTLE + Duration::from_secs(10)));
}

#[test]
fn a_new_config_cancels_the_running_round_and_renames_checks() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let out = m.poll(now, wall(0));
    assert_eq!(out.actions.len(), 1);
    let c = config(ConfigFile { tcp4_target: Some("192.0.2.80:80".into()), ..ConfigFile::default() });
    let out = m.set_config(c, "uplink0", "lan0", now);
    assert_eq!(out.actions, vec![Action::Cancel { check: CheckId::Link }]);
    assert_eq!(m.poll_at(), Some(now));
    assert_eq!(m.tree().name(CheckId::Tcp4), "tcp4/192.0.2.80:80");
    let (started, _) = round(&mut m, now, all_pass);
    assert_eq!(started.len(), CheckId::ALL.len());
}

#[test]
fn reports_checks_that_changed_between_rounds() {
    let now = t0();
    let mut m = monitor(ConfigFile::default(), now);
    let (_, first) = round(&mut m, now, all_pass);
    assert!(!first.iter().any(|n| matches!(n, Notice::CheckChanged { .. })), "nothing to compare with yet");
    let at = m.poll_at().unwrap();
    let (_, notices) = round(&mut m, at, failing(&[CheckId::Ping4Gateway]));
    let changed: Vec<(CheckId, bool)> = notices
        .iter()
        .filter_map(|n| match n {
            Notice::CheckChanged { check, ok, .. } => Some((*check, *ok)),
            _ => None,
        })
        .collect();
    assert_eq!(changed, vec![(CheckId::Ping4Gateway, false), (CheckId::Tcp4, false)]);
}

#[test]
fn formats_durations_like_people_write_them() {
    assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
    assert_eq!(format_rtt(Duration::from_micros(1234)), "1.23ms");
}
