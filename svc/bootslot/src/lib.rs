//! The A/B boot slot contract of router7-rs, shared by init (on the router)
//! and mkimage (on the build host), so both sides read and write the same
//! bytes:
//!
//! | module | owns |
//! |---|---|
//! | [`Slot`] | the two slots: label, partition number, kernel file |
//! | [`loader`] | `syslinux.cfg`: the `DEFAULT` line (the committed slot), each slot's `APPEND` line, the kexec command line of a trial |
//! | [`adv`] | syslinux's Auxiliary Data Vector: the one-shot boot command of a trial through the firmware |
//! | [`api`] | the JSON of init's `/update/…` endpoints and the records init keeps under `/perm/init` |
//!
//! No I/O here: callers bring the bytes (init from the mounted boot
//! partition, mkimage through the `fatfs` crate).
#![forbid(unsafe_code)]

pub mod adv;
pub mod api;
pub mod loader;

use serde::{Deserialize, Serialize};

/// A root file system slot: `a` is partition 2, `b` is partition 3; each has
/// its kernel on the boot partition (`vmlinuz-a`, `vmlinuz-b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Slot A.
    A,
    /// Slot B.
    B,
}

impl Slot {
    /// Both slots.
    pub const ALL: [Self; 2] = [Self::A, Self::B];

    /// The loader label and the name used everywhere: `a` or `b`.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
        }
    }

    /// The other slot.
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// Its root partition's number on the disk.
    #[must_use]
    pub fn partition(self) -> u32 {
        match self {
            Self::A => 2,
            Self::B => 3,
        }
    }

    /// The slot whose root is partition `n`.
    #[must_use]
    pub fn from_partition(n: u32) -> Option<Self> {
        match n {
            2 => Some(Self::A),
            3 => Some(Self::B),
            _ => None,
        }
    }

    /// Its kernel's file name on the boot partition.
    #[must_use]
    pub fn kernel_file(self) -> &'static str {
        match self {
            Self::A => "vmlinuz-a",
            Self::B => "vmlinuz-b",
        }
    }

    /// Parses `a`/`b` (either case).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "a" | "A" => Some(Self::A),
            "b" | "B" => Some(Self::B),
            _ => None,
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_know_their_partition_kernel_and_other() {
        assert_eq!((Slot::A.partition(), Slot::B.partition()), (2, 3));
        assert_eq!(Slot::from_partition(3), Some(Slot::B));
        assert_eq!(Slot::from_partition(4), None);
        assert_eq!(Slot::A.other(), Slot::B);
        assert_eq!(Slot::B.kernel_file(), "vmlinuz-b");
        assert_eq!(Slot::parse("B"), Some(Slot::B));
        assert_eq!(Slot::parse("c"), None);
        assert_eq!(serde_json::to_string(&Slot::A).unwrap(), "\"a\"");
    }
}
