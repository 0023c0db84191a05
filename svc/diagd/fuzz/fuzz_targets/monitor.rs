//! Drives the monitor with arbitrary outcomes, delays, renewals and config
//! changes, and checks what must always hold: first_error is empty exactly
//! when Healthy; a check is only ever started while its parent passed in the
//! same round, never twice in a round; cancelled or finished checks are not
//! running; the monitor always has a next deadline.
#![no_main]

use std::collections::BTreeSet;
use std::time::Duration;

use diagd::config::{Config, ConfigFile, Ipv6Mode};
use diagd::monitor::{Action, Monitor, Outcome, Verdict};
use diagd::tree::CheckId;
use libfuzzer_sys::fuzz_target;
use runtime::timefmt::Timestamp;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    let thresholds = (next().unwrap_or(0) % 4 + 1, next().unwrap_or(0) % 4 + 1);
    let file = ConfigFile {
        unhealthy_after: Some(u32::from(thresholds.0)),
        healthy_after: Some(u32::from(thresholds.1)),
        ipv6: Some([Ipv6Mode::Auto, Ipv6Mode::Required, Ipv6Mode::Ignored][usize::from(next().unwrap_or(0) % 3)]),
        ..ConfigFile::default()
    };
    let config = Config::try_from(file).expect("valid");
    let mut now = runtime::clock::now();
    let wall = Timestamp { secs: 1_800_000_000, nanos: 0 };
    let mut m = Monitor::new(config, "uplink0", "lan0", now);
    let mut running: BTreeSet<CheckId> = BTreeSet::new();
    let mut passed: BTreeSet<CheckId> = BTreeSet::new();
    let mut started_this_round: BTreeSet<CheckId> = BTreeSet::new();
    let apply = |now: std::time::Instant,
                 actions: Vec<Action>,
                 running: &mut BTreeSet<CheckId>,
                 started: &mut BTreeSet<CheckId>,
                 passed: &BTreeSet<CheckId>| {
        for a in actions {
            match a {
                Action::Start { check, deadline, .. } => {
                    if check == CheckId::Link {
                        started.clear();
                    } else {
                        let parent = check.parent().expect("non-root");
                        assert!(passed.contains(&parent), "{check:?} started without its parent passing");
                    }
                    assert!(started.insert(check), "{check:?} started twice in one round");
                    assert!(deadline > now || deadline == now);
                    running.insert(check);
                }
                Action::Cancel { check } => {
                    running.remove(&check);
                }
            }
        }
    };
    for _ in 0..200 {
        let Some(op) = next() else { break };
        match op % 6 {
            0 | 1 => {
                now += Duration::from_millis(u64::from(next().unwrap_or(0)) * 50);
                let out = m.poll(now, wall);
                apply(now, out.actions, &mut running, &mut started_this_round, &passed);
            }
            2 | 3 => {
                let Some(&check) = running.iter().nth(usize::from(next().unwrap_or(0)) % running.len().max(1)) else {
                    continue;
                };
                let ok = op % 2 == 0;
                running.remove(&check);
                if ok {
                    passed.insert(check);
                } else {
                    passed.remove(&check);
                }
                let outcome = if ok { Outcome::pass("ok") } else { Outcome::fail("bad") };
                let out = m.on_outcome(now, wall, check, outcome);
                apply(now, out.actions, &mut running, &mut started_this_round, &passed);
            }
            4 if next().unwrap_or(0) % 2 == 0 => m.run_soon(now),
            4 => {
                let before = m.poll_at();
                m.kernel_changed(now);
                assert!(m.poll_at() <= before, "a kernel change never postpones the next round");
            }
            _ => {
                m.set_ipv6_present(next().unwrap_or(0) % 2 == 0);
                if next().unwrap_or(0) % 8 == 0 {
                    let out = m.set_config(Config::default(), "uplink0", "lan0", now);
                    apply(now, out.actions, &mut running, &mut started_this_round, &passed);
                    running.clear();
                }
            }
        }
        if m.poll_at().is_none() {
            panic!("no next deadline");
        }
        assert_eq!(m.first_error().is_empty(), m.verdict() == Verdict::Healthy);
        if let Some(last) = m.last_round() {
            assert_eq!(last.results.len(), CheckId::ALL.len());
        }
    }
});
