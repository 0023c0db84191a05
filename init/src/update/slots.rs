//! The slot table: what each slot holds (its root and its kernel, each
//! installed by the image build, written completely by an update, or missing
//! after an upload that did not finish), its version, and whether its last
//! trial failed. Kept in `/perm/init/slots.json`.
//!
//! The rule that protects the router: a slot can be activated only when both
//! parts are usable and it did not just fail a trial. An upload marks its part
//! missing *before* the first byte is written (and the file is synced), so a
//! cut-off upload, a crash or a power loss mid-write all leave a slot that
//! cannot be booted by an activation; the running slot is never written.

use serde::{Deserialize, Serialize};

use bootslot::Slot;
use bootslot::api::{ImageVersion, Part, SlotStatus};

/// Which part of a slot an upload writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// The root SquashFS, on the slot's partition.
    Root,
    /// The kernel, as the slot's file on the boot partition.
    Kernel,
}

impl PartKind {
    /// `root` or `kernel`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Kernel => "kernel",
        }
    }
}

/// One slot as the table keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRecord {
    /// `a` or `b`.
    pub slot: Slot,
    /// Its version (claimed at upload, confirmed once it ran).
    pub version: Option<String>,
    /// Its build time.
    pub build_time: Option<String>,
    /// The root partition's content.
    pub root: Part,
    /// The kernel file's content.
    pub kernel: Part,
    /// Why its last trial failed; cleared by the next upload into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl SlotRecord {
    fn installed(slot: Slot) -> Self {
        Self { slot, version: None, build_time: None, root: Part::Installed, kernel: Part::Installed, failed: None }
    }

    fn part_mut(&mut self, part: PartKind) -> &mut Part {
        match part {
            PartKind::Root => &mut self.root,
            PartKind::Kernel => &mut self.kernel,
        }
    }
}

/// `/perm/init/slots.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotTable {
    /// Slot a, then slot b.
    pub slots: Vec<SlotRecord>,
}

/// Why a slot cannot be activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotActivatable {
    /// It is the slot running now.
    Running,
    /// A part is missing.
    Missing(PartKind, String),
    /// Its last trial failed.
    Failed(String),
}

impl std::fmt::Display for NotActivatable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Running => f.write_str("it is the slot running now"),
            Self::Missing(part, why) => write!(f, "its {} is not usable: {why}", part.name()),
            Self::Failed(why) => write!(f, "its last trial failed ({why}); upload it again"),
        }
    }
}

impl Default for SlotTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotTable {
    /// Both slots as the image build left them (the same image in both).
    #[must_use]
    pub fn new() -> Self {
        Self { slots: Slot::ALL.iter().map(|&s| SlotRecord::installed(s)).collect() }
    }

    /// A table read from disk, repaired when a slot is missing or doubled
    /// (a hand-edited file must not make init refuse every update).
    #[must_use]
    pub fn normalised(mut self) -> Self {
        let mut slots = Vec::new();
        for s in Slot::ALL {
            let found = self.slots.iter().position(|r| r.slot == s);
            slots.push(found.map_or_else(|| SlotRecord::installed(s), |i| self.slots.swap_remove(i)));
        }
        Self { slots }
    }

    /// One slot.
    #[must_use]
    pub fn get(&self, slot: Slot) -> &SlotRecord {
        // `new` and `normalised` always hold both slots, in order.
        &self.slots[usize::from(slot == Slot::B)]
    }

    fn get_mut(&mut self, slot: Slot) -> &mut SlotRecord {
        &mut self.slots[usize::from(slot == Slot::B)]
    }

    /// The running slot is what runs: its version is the running version.
    pub fn confirm_running(&mut self, slot: Slot, running: &ImageVersion) {
        let r = self.get_mut(slot);
        r.version = Some(running.version.clone());
        r.build_time.clone_from(&running.build_time);
    }

    /// An upload of `part` into `slot` begins: the part is missing until it
    /// finishes, and a failed trial is forgotten (new content). A new root
    /// starts a new image: it carries the version it claims, and the slot's
    /// old kernel no longer counts (an update sends the root, then the kernel,
    /// so both parts of a slot always come from the same image).
    pub fn begin(&mut self, slot: Slot, part: PartKind, claimed: Option<&ImageVersion>, now: &str) {
        let r = self.get_mut(slot);
        *r.part_mut(part) =
            Part::Missing { reason: format!("{} upload began at {now} and did not finish", part.name()) };
        r.failed = None;
        if part == PartKind::Root {
            r.version = claimed.map(|v| v.version.clone());
            r.build_time = claimed.and_then(|v| v.build_time.clone());
            r.kernel = Part::Missing { reason: "no kernel uploaded since the new root".into() };
        }
    }

    /// The upload finished: every byte written and synced.
    pub fn finish(&mut self, slot: Slot, part: PartKind, sha256: &str, bytes: u64, now: &str) {
        *self.get_mut(slot).part_mut(part) = Part::Written { sha256: sha256.to_owned(), bytes, at: now.to_owned() };
    }

    /// The upload failed (cut off, refused, an I/O error).
    pub fn fail(&mut self, slot: Slot, part: PartKind, reason: &str) {
        *self.get_mut(slot).part_mut(part) = Part::Missing { reason: reason.to_owned() };
    }

    /// The slot's trial failed.
    pub fn mark_failed(&mut self, slot: Slot, reason: &str) {
        self.get_mut(slot).failed = Some(reason.to_owned());
    }

    /// Clears a failed trial (the slot proved itself).
    pub fn clear_failed(&mut self, slot: Slot) {
        self.get_mut(slot).failed = None;
    }

    /// Whether `slot` may be activated while `active` runs.
    ///
    /// # Errors
    /// Why not.
    pub fn activatable(&self, slot: Slot, active: Slot) -> Result<(), NotActivatable> {
        if slot == active {
            return Err(NotActivatable::Running);
        }
        let r = self.get(slot);
        for (kind, part) in [(PartKind::Root, &r.root), (PartKind::Kernel, &r.kernel)] {
            if let Part::Missing { reason } = part {
                return Err(NotActivatable::Missing(kind, reason.clone()));
            }
        }
        match &r.failed {
            Some(why) => Err(NotActivatable::Failed(why.clone())),
            None => Ok(()),
        }
    }

    /// Both slots for status documents.
    #[must_use]
    pub fn status(&self, active: Option<Slot>, default: Option<Slot>) -> Vec<SlotStatus> {
        self.slots
            .iter()
            .map(|r| {
                let check = match active {
                    Some(a) => self.activatable(r.slot, a),
                    None => Err(NotActivatable::Missing(PartKind::Root, "the running slot is not known".into())),
                };
                SlotStatus {
                    slot: r.slot,
                    active: active == Some(r.slot),
                    default: default == Some(r.slot),
                    activatable: check.is_ok(),
                    reason: check.err().map(|e| e.to_string()),
                    version: r.version.clone(),
                    build_time: r.build_time.clone(),
                    root: r.root.clone(),
                    kernel: r.kernel.clone(),
                    failed: r.failed.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ImageVersion {
        ImageVersion { version: s.into(), build_time: Some("2025-01-01T00:00:00Z".into()) }
    }

    #[test]
    fn a_fresh_image_can_switch_to_the_other_slot_but_not_to_itself() {
        let t = SlotTable::new();
        assert_eq!(t.activatable(Slot::B, Slot::A), Ok(()));
        assert_eq!(t.activatable(Slot::A, Slot::A), Err(NotActivatable::Running));
        let st = t.status(Some(Slot::A), Some(Slot::A));
        assert!(st[0].active && st[0].default && !st[0].activatable);
        assert!(!st[1].active && st[1].activatable);
    }

    #[test]
    fn an_upload_in_progress_or_cut_off_makes_the_slot_unbootable() {
        let mut t = SlotTable::new();
        t.begin(Slot::B, PartKind::Root, Some(&v("2")), "t0");
        assert!(matches!(t.activatable(Slot::B, Slot::A), Err(NotActivatable::Missing(PartKind::Root, _))));
        assert_eq!(t.get(Slot::B).version.as_deref(), Some("2"));
        t.fail(Slot::B, PartKind::Root, "cut off after 10 of 20 bytes");
        let err = t.activatable(Slot::B, Slot::A).unwrap_err().to_string();
        assert!(err.contains("root is not usable: cut off after 10 of 20 bytes"), "{err}");
        assert_eq!(t.get(Slot::A), &SlotRecord::installed(Slot::A), "the running slot is untouched");
    }

    #[test]
    fn root_and_kernel_written_make_the_slot_activatable_until_its_trial_fails() {
        let mut t = SlotTable::new();
        t.begin(Slot::B, PartKind::Root, Some(&v("2")), "t0");
        t.finish(Slot::B, PartKind::Root, "aa", 100, "t1");
        let err = t.activatable(Slot::B, Slot::A).unwrap_err().to_string();
        assert!(err.contains("kernel is not usable: no kernel uploaded since the new root"), "{err}");
        t.begin(Slot::B, PartKind::Kernel, None, "t2");
        assert!(t.activatable(Slot::B, Slot::A).is_err(), "kernel in progress");
        t.finish(Slot::B, PartKind::Kernel, "bb", 50, "t3");
        assert_eq!(t.activatable(Slot::B, Slot::A), Ok(()));
        assert_eq!(t.get(Slot::B).version.as_deref(), Some("2"), "a kernel upload keeps the root's version");
        t.mark_failed(Slot::B, "dhcp4 not Bound within 120 s");
        assert!(matches!(t.activatable(Slot::B, Slot::A), Err(NotActivatable::Failed(_))));
        t.begin(Slot::B, PartKind::Kernel, None, "t4");
        t.finish(Slot::B, PartKind::Kernel, "cc", 50, "t5");
        assert_eq!(t.activatable(Slot::B, Slot::A), Ok(()), "new content forgets the failed trial");
    }

    #[test]
    fn the_file_round_trips_and_is_repaired_and_strict() {
        let mut t = SlotTable::new();
        t.confirm_running(Slot::A, &v("1"));
        t.finish(Slot::B, PartKind::Root, "aa", 1, "t");
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<SlotTable>(&text).unwrap(), t);
        let only_b: SlotTable = serde_json::from_str(
            r#"{"slots":[{"slot":"b","version":null,"build_time":null,"root":{"state":"installed"},"kernel":{"state":"installed"}}]}"#,
        )
        .unwrap();
        let fixed = only_b.normalised();
        assert_eq!(fixed.slots.iter().map(|r| r.slot).collect::<Vec<_>>(), Slot::ALL);
        assert!(serde_json::from_str::<SlotTable>(r#"{"slots":[],"extra":1}"#).is_err(), "unknown fields");
    }
}
