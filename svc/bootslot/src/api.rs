//! The JSON of init's update endpoints (private:80, `/update/…`) and of the
//! records init keeps under `/perm/init`, shared with the host tool
//! (`mkimage update`, `mkimage rollback`) so both sides agree on every field.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `GET /update/features` | | [`Features`] |
//! | `GET /update/status` | | [`UpdateStatus`] |
//! | `PUT /update/root` | the root SquashFS | [`Written`] (its SHA-256), into the inactive slot's partition |
//! | `PUT /update/kernel` | the bzImage | [`Written`], as the inactive slot's kernel file |
//! | `POST /update/activate?slot=&kexec=&trial_seconds=` | | [`Activated`] (202), then the router reboots into a trial |
//!
//! Changes (`PUT`, `POST`) need basic auth, the header [`HEADER_UPDATE`]`: 1`
//! and no `Origin` header (see init/README.md). Errors are `{"error": …}`.

use serde::{Deserialize, Serialize};

use crate::Slot;

/// The protocol version [`Features::protocol`] announces; a client refuses others.
pub const PROTOCOL: u32 = 1;
/// Every change must carry this header with the value `1`: a browser cannot
/// send it across sites without a CORS preflight, which init never grants.
pub const HEADER_UPDATE: &str = "X-Router-Update";
/// The version the uploaded root carries (its `/etc/router/version`'s `version`).
pub const HEADER_VERSION: &str = "X-Router-Image-Version";
/// The build time the uploaded root carries.
pub const HEADER_BUILD_TIME: &str = "X-Router-Image-Build-Time";
/// Largest kernel accepted.
pub const MAX_KERNEL_BYTES: u64 = 32 << 20;
/// Trial deadline when the activation does not say.
pub const DEFAULT_TRIAL_SECONDS: u64 = 120;
/// Shortest and longest trial deadline accepted.
pub const TRIAL_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 20..=3600;

/// A version as `/etc/router/version` states it (`{"version","build_time"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageVersion {
    /// e.g. `0.1.0+g1234abcd`.
    pub version: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_time: Option<String>,
}

impl ImageVersion {
    /// Parses the version file: its JSON, or (older images) its first line as the version.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        serde_json::from_str::<Self>(text.trim())
            .unwrap_or_else(|_| Self { version: text.lines().next().unwrap_or("").trim().to_owned(), build_time: None })
    }
}

impl std::fmt::Display for ImageVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.build_time {
            Some(t) => write!(f, "{} (built {t})", self.version),
            None => f.write_str(&self.version),
        }
    }
}

/// `GET /update/features`: what this router's update endpoint speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// The digest every upload answers with: `sha256`.
    pub hash: String,
    /// `root`, `kernel`, `activate`, `kexec`, `trial`, `rollback`.
    pub features: Vec<String>,
    /// Largest root image (the inactive slot's partition size).
    pub max_root_bytes: u64,
    /// Largest kernel.
    pub max_kernel_bytes: u64,
    /// What runs now.
    pub running: ImageVersion,
    /// The slot running now.
    pub active: Option<Slot>,
    /// The router's host name.
    pub hostname: String,
}

/// One part of a slot (its root or its kernel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Part {
    /// Put there by the image build; init never saw its bytes.
    Installed,
    /// Written by an update, completely.
    Written {
        /// Hex SHA-256 of the bytes written.
        sha256: String,
        /// How many.
        bytes: u64,
        /// When (RFC 3339).
        at: String,
    },
    /// Not usable: an upload began and did not finish, or failed a check.
    Missing {
        /// Why.
        reason: String,
    },
}

impl Part {
    /// Whether the part can be booted.
    #[must_use]
    pub fn usable(&self) -> bool {
        !matches!(self, Self::Missing { .. })
    }
}

/// How a slot is booted for its trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// kexec: the new kernel straight from the running one (no firmware, no loader).
    Kexec,
    /// A reset through the firmware with syslinux's one-shot command.
    Firmware,
}

impl Method {
    /// `kexec` or `firmware`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Kexec => "kexec",
            Self::Firmware => "firmware",
        }
    }
}

/// One slot in [`UpdateStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotStatus {
    /// `a` or `b`.
    pub slot: Slot,
    /// Running now.
    pub active: bool,
    /// The loader's default (what a reset boots).
    pub default: bool,
    /// Whether an activation may boot it.
    pub activatable: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its version, as uploaded (confirmed once it ran).
    pub version: Option<String>,
    /// Its build time.
    pub build_time: Option<String>,
    /// The root partition's content.
    pub root: Part,
    /// The kernel file's content.
    pub kernel: Part,
    /// Why its last trial failed (cleared by the next upload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// One health check of a trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The service.
    pub service: String,
    /// The phase its `/v1/status` must report (e.g. `Bound`); `None`: it must only be running.
    pub phase: Option<String>,
    /// Top-level fields of its `/v1/status` that must have these values (e.g. dhcp4's `state` `BOUND`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.phase {
            Some(p) => write!(f, "{} {p}", self.service)?,
            None => write!(f, "{} running", self.service)?,
        }
        for (k, v) in &self.fields {
            write!(f, " ({k} {v})")?;
        }
        Ok(())
    }
}

/// A check's result now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check.
    #[serde(flatten)]
    pub check: Check,
    /// Whether it passes.
    pub ok: bool,
    /// What was seen.
    pub seen: String,
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    /// Activated; the new slot has not proven itself yet.
    Pending,
    /// Healthy in time: the new slot is the loader's default.
    Committed,
    /// Not healthy in time: the trial system reboots into the old default.
    Failed,
    /// The old slot runs again (after a failed trial, a panic or a hang).
    RolledBack,
}

/// `/perm/init/trial.json`: the activation in progress, written before the
/// reboot and finished by whichever system boots next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// The slot that ran (and stays the loader's default until the commit).
    pub from_slot: Slot,
    /// The slot on trial.
    pub to_slot: Slot,
    /// What ran.
    pub from_version: ImageVersion,
    /// What the new slot claims to be.
    pub to_version: ImageVersion,
    /// kexec or firmware.
    pub method: Method,
    /// When the activation was accepted (RFC 3339).
    pub activated_at: String,
    /// How long the trial may take to become healthy.
    pub deadline_seconds: u64,
    /// What "healthy" means for this trial (what passed before the update).
    pub checks: Vec<Check>,
    /// Where it stands.
    pub state: TrialState,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `update`, `rollback` (a switch to the other slot on request) or
    /// `manual` (a trial boot nobody activated through init, e.g. `mkimage boot-once`).
    pub kind: String,
    /// When init of the slot on trial started its trial (RFC 3339); absent
    /// when the new system never got that far (a kernel panic, a hang).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_started_at: Option<String>,
}

/// The trial of the running system, in [`UpdateStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialStatus {
    /// The activation.
    #[serde(flatten)]
    pub record: TrialRecord,
    /// Seconds left before the rollback.
    pub remaining_seconds: f64,
    /// The checks as last seen.
    pub results: Vec<CheckResult>,
}

/// How the last update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateOutcome {
    /// The new slot became the default.
    Updated,
    /// The old slot runs again.
    RolledBack,
}

/// `/perm/init/last-update.json`: the last finished update, for people and
/// the host tool ("rolled back to X because Y").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastUpdate {
    /// Updated or rolled back.
    pub outcome: UpdateOutcome,
    /// The activation it finished.
    #[serde(flatten)]
    pub trial: TrialRecord,
    /// When it was decided (RFC 3339).
    pub finished_at: String,
    /// Seconds from the trial system's start to healthy (updated only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_after_seconds: Option<f64>,
}

/// `GET /update/status`, and `update` in init's overview and `/v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// What runs now.
    pub running: ImageVersion,
    /// The slot running now.
    pub active: Option<Slot>,
    /// The slot an upload writes.
    pub inactive: Option<Slot>,
    /// The loader's default.
    pub default: Option<Slot>,
    /// Both slots.
    pub slots: Vec<SlotStatus>,
    /// The trial of the running system, until committed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<TrialStatus>,
    /// The last finished update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<LastUpdate>,
    /// What the endpoint is busy with (an upload, an activation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<String>,
    /// Why updates are refused altogether (no boot partition found, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// The answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The slot written.
    pub slot: Slot,
    /// `root` or `kernel`.
    pub part: String,
    /// Hex SHA-256 of the bytes written.
    pub sha256: String,
    /// How many.
    pub bytes: u64,
}

/// The answer to an activation (202: the reboot follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activated {
    /// The slot on trial.
    pub slot: Slot,
    /// How it boots.
    pub method: Method,
    /// Its deadline.
    pub trial_seconds: u64,
    /// The activation's time, as [`TrialRecord::activated_at`] and later
    /// [`LastUpdate`] say it: how a client finds the outcome of its own activation.
    pub activated_at: String,
    /// Why the method differs from the one asked for (kexec unavailable, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_files_parse_as_json_or_as_a_line() {
        let v = ImageVersion::parse("{\"version\":\"1.2\",\"build_time\":\"2025-11-24T16:00:00Z\"}\n");
        assert_eq!(v.version, "1.2");
        assert_eq!(v.build_time.as_deref(), Some("2025-11-24T16:00:00Z"));
        assert_eq!(v.to_string(), "1.2 (built 2025-11-24T16:00:00Z)");
        assert_eq!(ImageVersion::parse("0.9 old\nmore"), ImageVersion { version: "0.9 old".into(), build_time: None });
    }

    #[test]
    fn parts_and_records_have_stable_json() {
        let p = Part::Written { sha256: "ab".into(), bytes: 3, at: "t".into() };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"state":"written","sha256":"ab","bytes":3,"at":"t"})
        );
        assert_eq!(serde_json::to_value(Part::Installed).unwrap(), serde_json::json!({"state":"installed"}));
        assert!(!Part::Missing { reason: "x".into() }.usable());
        let rec = TrialRecord {
            from_slot: Slot::A,
            to_slot: Slot::B,
            from_version: ImageVersion { version: "1".into(), build_time: None },
            to_version: ImageVersion { version: "2".into(), build_time: None },
            method: Method::Kexec,
            activated_at: "t".into(),
            deadline_seconds: 120,
            checks: vec![Check { service: "dhcp4".into(), phase: Some("Bound".into()), fields: Default::default() }],
            state: TrialState::Pending,
            reason: None,
            kind: "update".into(),
            trial_started_at: None,
        };
        let last = LastUpdate {
            outcome: UpdateOutcome::RolledBack,
            trial: rec,
            finished_at: "u".into(),
            healthy_after_seconds: None,
        };
        let v = serde_json::to_value(&last).unwrap();
        assert_eq!(v["outcome"], "rolled_back");
        assert_eq!(v["to_slot"], "b");
        assert_eq!(v["method"], "kexec");
        assert_eq!(serde_json::from_value::<LastUpdate>(v).unwrap(), last);
    }
}
