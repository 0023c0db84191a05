//! What a system does at boot about the last activation, on the `update`
//! worker thread (init's loop never waits for the boot partition):
//!
//! - **A trial boot** (`router.trial=1`, the slot `trial.json` names): it
//!   evaluates the activation's health checks about once a second
//!   ([`super::health::Trial`]); healthy in time → **commit**: `DEFAULT` in
//!   `syslinux.cfg` names this slot, `trial.json` says committed,
//!   `last-update.json` says updated, event `init.update.committed`. Not in
//!   time → `trial.json` says failed with the reason, event
//!   `init.update.trial_failed`, and a reboot through the firmware, which
//!   boots the loader's default: the old slot.
//! - **The old slot again** while `trial.json` is pending or failed: the
//!   trial did not make it (its reason, or a kernel panic, hang or watchdog
//!   reset when it never decided). `last-update.json` says rolled back and
//!   why, the failed slot cannot be activated until it is uploaded again,
//!   event `init.update.rolled_back`.
//! - A trial boot nobody activated through init (`mkimage boot-once`) gets a
//!   record of its own with the default checks and deadline.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use bootslot::api::{DEFAULT_TRIAL_SECONDS, ImageVersion, LastUpdate, Method, TrialRecord, TrialState, UpdateOutcome};
use bootslot::loader;

use super::health::{self, Decision};
use super::{TRIAL_FILE, TrialView, Updater, bootpart, lock, now_text};
use crate::status::Request;

/// How often a trial evaluates its checks.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The worker: settles what the last activation left, then runs the trial if this is one.
pub fn run(u: &Arc<Updater>) {
    let Some(active) = u.active else { return };
    if let Ok(boot) = u.boot() {
        match boot.with(bootpart::read_config) {
            Ok(cfg) => lock(&u.state).default = loader::default_slot(&cfg),
            Err(e) => u.note(format!("cannot read the boot loader's configuration: {e}")),
        }
    }
    let record = match runtime::statefile::read_json::<TrialRecord>(&u.file(TRIAL_FILE)) {
        Ok(r) => r,
        Err(e) => {
            u.note(format!("{e}; ignoring it"));
            None
        }
    };
    let default = lock(&u.state).default;
    match record {
        Some(r) if u.trial_flag && r.to_slot == active && r.state == TrialState::Pending => trial(u, r),
        Some(r) if u.trial_flag && r.to_slot == active && r.state == TrialState::Failed => {
            let why = r.reason.clone().unwrap_or_default();
            u.note(format!("slot {active} failed its trial before ({why}); rebooting into the default slot"));
            reboot_to_default(u);
        }
        _ if u.trial_flag => trial(u, manual_record(u, active)),
        Some(r) if matches!(r.state, TrialState::Pending | TrialState::Failed) && r.from_slot == active => {
            rolled_back(u, r);
        }
        Some(mut r) if r.state == TrialState::Pending && r.to_slot == active => {
            if default == Some(active) {
                // Committed, and the machine went down before the record said so.
                r.state = TrialState::Committed;
                finish_commit(u, r, None);
            } else {
                r.state = TrialState::RolledBack;
                r.reason = Some(format!("slot {active} was booted without the trial flag; the trial was abandoned"));
                if let Err(e) = u.save_trial(&r) {
                    u.note(e);
                }
            }
        }
        _ => {}
    }
}

/// The record of a trial boot nobody activated through init.
fn manual_record(u: &Updater, active: bootslot::Slot) -> TrialRecord {
    let names = u.manifest_services();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let from = active.other();
    let from_version = lock(&u.state).table.get(from).version.clone().unwrap_or_else(|| "unknown".into());
    TrialRecord {
        from_slot: from,
        to_slot: active,
        from_version: ImageVersion { version: from_version, build_time: None },
        to_version: u.running.clone(),
        method: Method::Firmware,
        activated_at: now_text(),
        deadline_seconds: DEFAULT_TRIAL_SECONDS,
        checks: health::default_checks(&names),
        state: TrialState::Pending,
        reason: None,
        kind: "manual".into(),
        trial_started_at: None,
    }
}

fn trial(u: &Arc<Updater>, mut record: TrialRecord) {
    record.trial_started_at = Some(now_text());
    if let Err(e) = u.save_trial(&record) {
        u.note(e);
    }
    let mut judge = health::Trial::new(u.started, Duration::from_secs(record.deadline_seconds));
    lock(&u.state).trial =
        Some(TrialView { record: record.clone(), deadline: judge.deadline(), results: Vec::new(), decided: false });
    u.note(format!(
        "slot {} on trial ({}), {} s to become healthy: {}",
        record.to_slot,
        record.kind,
        record.deadline_seconds,
        record.checks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    ));
    loop {
        let results = health::evaluate(&record.checks, &u.observe());
        let now = runtime::clock::now();
        if let Some(t) = lock(&u.state).trial.as_mut() {
            t.results.clone_from(&results);
        }
        match judge.on_results(now, &results) {
            Decision::Wait => {}
            Decision::Commit { healthy_after } => match commit(u, &mut record) {
                Ok(()) => {
                    finish_commit(u, record, Some(healthy_after));
                    return;
                }
                Err(e) if now >= judge.deadline() => {
                    fail(u, record, format!("healthy, but the commit failed: {e}"));
                    return;
                }
                Err(e) => u.note(format!("commit failed, retrying: {e}")),
            },
            Decision::RollBack(reason) => {
                fail(u, record, reason);
                return;
            }
        }
        std::thread::sleep(CHECK_INTERVAL);
    }
}

/// Makes the slot on trial the loader's default.
fn commit(u: &Updater, record: &mut TrialRecord) -> Result<(), String> {
    let slot = record.to_slot;
    let boot = u.boot()?;
    boot.with(|dir| {
        let cfg = bootpart::read_config(dir)?;
        let new = loader::set_default(&cfg, slot)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        if new != cfg {
            bootpart::write_config(dir, &new)?;
        }
        // A one-shot boot left behind would start another trial at the next reset.
        if let Err(e) = bootpart::set_boot_once(dir, None) {
            u.note(format!("cannot clear the one-shot boot: {e}"));
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    record.state = TrialState::Committed;
    Ok(())
}

/// Records a commit (made now, or found made at boot).
fn finish_commit(u: &Updater, record: TrialRecord, healthy_after: Option<Duration>) {
    let slot = record.to_slot;
    if let Err(e) = u.save_trial(&record) {
        u.note(e);
    }
    let last = LastUpdate {
        outcome: UpdateOutcome::Updated,
        trial: record.clone(),
        finished_at: now_text(),
        healthy_after_seconds: healthy_after.map(|d| d.as_secs_f64()),
    };
    if let Err(e) = u.save_last(&last) {
        u.note(e);
    }
    let mut st = lock(&u.state);
    st.default = Some(slot);
    st.table.clear_failed(slot);
    if let Err(e) = u.save_table(&st.table) {
        u.note(e);
    }
    if let Some(t) = st.trial.as_mut() {
        t.record = record.clone();
        t.decided = true;
    }
    st.last = Some(last);
    drop(st);
    u.emit(
        "init.update.committed",
        json!({"slot": slot, "version": record.to_version.version, "from_slot": record.from_slot,
               "from_version": record.from_version.version,
               "healthy_after_seconds": healthy_after.map(|d| d.as_secs_f64())}),
    );
    u.note(match healthy_after {
        Some(d) => format!(
            "slot {slot} ({}) is healthy after {:.1} s: committed, it is the loader's default now",
            record.to_version,
            d.as_secs_f64()
        ),
        None => format!("slot {slot} ({}) was committed before the last shutdown", record.to_version),
    });
}

/// The trial failed: record why and reboot through the firmware into the old default.
fn fail(u: &Updater, mut record: TrialRecord, reason: String) {
    record.state = TrialState::Failed;
    record.reason = Some(reason.clone());
    if let Err(e) = u.save_trial(&record) {
        u.note(e);
    }
    if let Some(t) = lock(&u.state).trial.as_mut() {
        t.record = record.clone();
        t.decided = true;
    }
    u.emit("init.update.trial_failed", json!({"slot": record.to_slot, "reason": reason}));
    u.note(format!(
        "slot {} FAILED its trial: {reason}; rebooting through the firmware into slot {}",
        record.to_slot, record.from_slot
    ));
    reboot_to_default(u);
}

fn reboot_to_default(u: &Updater) {
    if let Ok(boot) = u.boot() {
        // A firmware reboot must land in the default, not in another trial.
        if let Err(e) = boot.with(|dir| bootpart::set_boot_once(dir, None)) {
            u.note(format!("cannot clear the one-shot boot: {e}"));
        }
    }
    if let Err(e) = u.shared.request(Request::Reboot) {
        u.note(format!("reboot refused: {e}"));
    }
}

/// The old slot runs again after an activation that did not commit.
fn rolled_back(u: &Updater, mut record: TrialRecord) {
    let failed = record.to_slot;
    let reason = record.reason.clone().unwrap_or_else(|| match &record.trial_started_at {
        None => format!(
            "slot {failed} never started its trial: its kernel did not boot to init \
             (a kernel panic, a hang or a watchdog reset), or the power went"
        ),
        Some(t) => format!(
            "slot {failed} started its trial at {t} but went down before it proved healthy \
             (a crash, a hang or a watchdog reset)"
        ),
    });
    record.state = TrialState::RolledBack;
    record.reason = Some(reason.clone());
    if let Err(e) = u.save_trial(&record) {
        u.note(e);
    }
    let last = LastUpdate {
        outcome: UpdateOutcome::RolledBack,
        trial: record.clone(),
        finished_at: now_text(),
        healthy_after_seconds: None,
    };
    if let Err(e) = u.save_last(&last) {
        u.note(e);
    }
    let mut st = lock(&u.state);
    st.table.mark_failed(failed, &reason);
    if let Err(e) = u.save_table(&st.table) {
        u.note(e);
    }
    st.last = Some(last);
    drop(st);
    u.emit(
        "init.update.rolled_back",
        json!({"slot": failed, "version": record.to_version.version, "running_slot": record.from_slot,
               "running_version": record.from_version.version, "reason": reason}),
    );
    u.note(format!(
        "ROLLED BACK: slot {failed} ({}) did not prove itself; slot {} ({}) runs again. Why: {reason}",
        record.to_version, record.from_slot, record.from_version
    ));
}
