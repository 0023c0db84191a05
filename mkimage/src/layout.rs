//! The disk layout (DESIGN "Boot, disk image and updates"): an MBR partition
//! table with four primary partitions, each aligned to 1 MiB.
//!
//! | # | size | content |
//! |---|---|---|
//! | 1 | 64 MiB, FAT16, active | syslinux, `vmlinuz-a`, `vmlinuz-b`, `syslinux.cfg` |
//! | 2 | 256 MiB | root slot A (SquashFS) |
//! | 3 | 256 MiB | root slot B (SquashFS) |
//! | 4 | the rest | ext4 `/perm` |
//!
//! Partitions are named on the kernel command line by the MBR disk signature
//! (`root=PARTUUID=<signature>-02`), which the kernel resolves itself, so the
//! same image boots from `/dev/vda` under QEMU and `/dev/sda` on the apu2c4.
//! The signature is derived from the host name (FNV-1a, as gokrazy does), so a
//! rebuild gives the same bytes and updates keep naming the same partitions.

use std::fmt;

use crate::error::{Error, Result};

/// Bytes per sector (the MBR's unit).
pub const SECTOR: u64 = 512;
/// One MiB.
pub const MIB: u64 = 1 << 20;
/// Where partition 1 starts: 1 MiB, the usual alignment; sectors 1..2047 stay empty.
pub const FIRST_PARTITION: u64 = MIB;
/// Size of the boot partition: room for two kernels (each a few MiB) and the loader.
pub const BOOT_SIZE: u64 = 64 * MIB;
/// Size of each root slot.
pub const ROOT_SIZE: u64 = 256 * MIB;
/// The smallest `/perm` we accept (leases, logs, events, captures).
pub const MIN_PERM_SIZE: u64 = 64 * MIB;
/// The default size of an image file: 1 GiB, which leaves ~447 MiB for `/perm`.
pub const DEFAULT_DISK_SIZE: u64 = 1024 * MIB;
/// The largest disk an MBR can describe with 512-byte sectors.
pub const MAX_DISK_SIZE: u64 = (u32::MAX as u64) * SECTOR;

/// MBR partition type of the boot partition: FAT16 with LBA addressing.
pub const TYPE_FAT16_LBA: u8 = 0x0e;
/// MBR partition type of the root slots and `/perm`: Linux.
pub const TYPE_LINUX: u8 = 0x83;

/// One of the two root slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Partition 2, `vmlinuz-a`.
    A,
    /// Partition 3, `vmlinuz-b`.
    B,
}

impl Slot {
    /// Both slots, A first.
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// The partition number of the slot's root file system.
    #[must_use]
    pub fn partition(self) -> u8 {
        match self {
            Slot::A => 2,
            Slot::B => 3,
        }
    }

    /// `a` or `b`: the boot loader label and the `router.slot=` value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// The slot's kernel on the boot partition.
    #[must_use]
    pub fn kernel_file(self) -> &'static str {
        match self {
            Slot::A => "vmlinuz-a",
            Slot::B => "vmlinuz-b",
        }
    }

    /// The other slot.
    #[must_use]
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// Parses `a` or `b` (any case).
    #[must_use]
    pub fn parse(text: &str) -> Option<Slot> {
        match text.to_ascii_lowercase().as_str() {
            "a" => Some(Slot::A),
            "b" => Some(Slot::B),
            _ => None,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A byte range of the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Extent {
    /// One past the last byte.
    #[must_use]
    pub fn end(&self) -> u64 {
        self.start + self.size
    }

    /// First sector.
    #[must_use]
    pub fn start_lba(&self) -> u32 {
        // Layout::for_disk limits every offset to MAX_DISK_SIZE, so this fits.
        u32::try_from(self.start / SECTOR).unwrap_or(u32::MAX)
    }

    /// Length in sectors.
    #[must_use]
    pub fn sectors(&self) -> u32 {
        u32::try_from(self.size / SECTOR).unwrap_or(u32::MAX)
    }
}

/// One partition table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1..=4.
    pub number: u8,
    /// Where it is.
    pub extent: Extent,
    /// MBR type byte.
    pub kind: u8,
    /// The BIOS boot flag (only the boot partition).
    pub active: bool,
}

/// Where everything goes on a disk of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The whole disk, in bytes (a multiple of the sector size).
    pub disk_size: u64,
    /// Partition 1.
    pub boot: Extent,
    /// Partition 2.
    pub root_a: Extent,
    /// Partition 3.
    pub root_b: Extent,
    /// Partition 4, up to the end of the disk (aligned down to 1 MiB).
    pub perm: Extent,
}

impl Layout {
    /// The layout for a disk of `disk_size` bytes.
    ///
    /// # Errors
    /// When the disk is too small for the fixed partitions plus a minimal
    /// `/perm`, or too large for an MBR.
    pub fn for_disk(disk_size: u64) -> Result<Self> {
        let fixed = FIRST_PARTITION + BOOT_SIZE + 2 * ROOT_SIZE;
        let min = fixed + MIN_PERM_SIZE;
        if disk_size < min {
            return Err(Error::Invalid(format!(
                "a disk of {disk_size} bytes is too small: the image needs at least {min} bytes ({} MiB)",
                min / MIB
            )));
        }
        if disk_size > MAX_DISK_SIZE {
            return Err(Error::Invalid(format!(
                "a disk of {disk_size} bytes is larger than an MBR can address ({MAX_DISK_SIZE} bytes)"
            )));
        }
        let disk_size = disk_size / SECTOR * SECTOR;
        let boot = Extent { start: FIRST_PARTITION, size: BOOT_SIZE };
        let root_a = Extent { start: boot.end(), size: ROOT_SIZE };
        let root_b = Extent { start: root_a.end(), size: ROOT_SIZE };
        let perm_end = disk_size / MIB * MIB;
        let perm = Extent { start: root_b.end(), size: perm_end - root_b.end() };
        Ok(Self { disk_size, boot, root_a, root_b, perm })
    }

    /// The root partition of `slot`.
    #[must_use]
    pub fn root(&self, slot: Slot) -> Extent {
        match slot {
            Slot::A => self.root_a,
            Slot::B => self.root_b,
        }
    }

    /// The four partition table entries, in order.
    #[must_use]
    pub fn partitions(&self) -> [Partition; 4] {
        [
            Partition { number: 1, extent: self.boot, kind: TYPE_FAT16_LBA, active: true },
            Partition { number: 2, extent: self.root_a, kind: TYPE_LINUX, active: false },
            Partition { number: 3, extent: self.root_b, kind: TYPE_LINUX, active: false },
            Partition { number: 4, extent: self.perm, kind: TYPE_LINUX, active: false },
        ]
    }
}

/// The MBR disk signature (bytes 440..444), which names the partitions as
/// `PARTUUID=<signature>-<nn>` on the kernel command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskId(pub u32);

impl DiskId {
    /// The signature derived from the router's host name (32-bit FNV-1a, as
    /// gokrazy does): stable across rebuilds, different between routers.
    /// Zero is avoided, since some tools treat it as "no signature".
    #[must_use]
    pub fn from_hostname(hostname: &str) -> Self {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in hostname.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        Self(if hash == 0 { 1 } else { hash })
    }

    /// The kernel's name for partition `number` of this disk: `PARTUUID=` value
    /// `%08x-%02x` (block/partitions/msdos.c).
    #[must_use]
    pub fn partuuid(self, number: u8) -> String {
        format!("{:08x}-{number:02x}", self.0)
    }

    /// The signature as stored in the MBR (little endian).
    #[must_use]
    pub fn bytes(self) -> [u8; 4] {
        self.0.to_le_bytes()
    }
}

/// The kernel command line that boots `slot` of the disk `disk`.
///
/// `init=/init` is our PID 1; `panic=10` reboots ten seconds after a panic and
/// `oops=panic` turns an oops into one, so a broken kernel ends in the boot
/// loader's default slot (issue #11); `router.slot=` tells init which slot
/// runs (init finds `/perm` as partition 4 of the disk that `root=` names).
#[must_use]
pub fn kernel_cmdline(disk: DiskId, slot: Slot) -> String {
    format!(
        "console=ttyS0,115200 root=PARTUUID={} ro rootfstype=squashfs init=/init panic=10 oops=panic router.slot={}",
        disk.partuuid(slot.partition()),
        slot.label()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_disk_has_aligned_partitions_in_order() {
        let l = Layout::for_disk(DEFAULT_DISK_SIZE).unwrap();
        let parts = l.partitions();
        let mut end = FIRST_PARTITION;
        for p in parts {
            assert_eq!(p.extent.start, end, "partition {} follows the previous one", p.number);
            assert_eq!(p.extent.start % MIB, 0);
            assert_eq!(p.extent.size % MIB, 0);
            end = p.extent.end();
        }
        assert!(end <= l.disk_size);
        assert_eq!(l.boot.size, 64 * MIB);
        assert_eq!(l.root_a.size, 256 * MIB);
        assert_eq!(l.root_b.size, 256 * MIB);
        assert_eq!(l.perm.size, DEFAULT_DISK_SIZE - MIB - 64 * MIB - 512 * MIB);
        assert!(parts[0].active && parts.iter().skip(1).all(|p| !p.active));
        assert_eq!(l.root(Slot::A).start_lba(), 2048 + 64 * 2048);
    }

    #[test]
    fn perm_takes_the_rest_of_a_large_disk_aligned_down() {
        let size = 16_013_942_784; // a 16 GB mSATA, not a multiple of 1 MiB
        let l = Layout::for_disk(size).unwrap();
        assert_eq!(l.perm.end() % MIB, 0);
        assert!(l.disk_size - l.perm.end() < MIB);
    }

    #[test]
    fn rejects_disks_too_small_or_too_large() {
        assert!(Layout::for_disk(512 * MIB).is_err());
        assert!(Layout::for_disk(MAX_DISK_SIZE + MIB).is_err());
        assert!(Layout::for_disk(FIRST_PARTITION + BOOT_SIZE + 2 * ROOT_SIZE + MIN_PERM_SIZE).is_ok());
    }

    #[test]
    fn disk_id_is_stable_and_names_partitions_like_the_kernel() {
        let id = DiskId::from_hostname("router7");
        assert_eq!(id, DiskId::from_hostname("router7"));
        assert_ne!(id, DiskId::from_hostname("router8"));
        assert_eq!(DiskId(0x00ab_cdef).partuuid(2), "00abcdef-02");
        assert_eq!(DiskId(0x1234_5678).bytes(), [0x78, 0x56, 0x34, 0x12]);
        // FNV-1a of the empty string is the offset basis.
        assert_eq!(DiskId::from_hostname("").0, 0x811c_9dc5);
    }

    #[test]
    fn cmdline_names_the_slot_root_and_init() {
        let line = kernel_cmdline(DiskId(0xdead_beef), Slot::B);
        assert_eq!(
            line,
            "console=ttyS0,115200 root=PARTUUID=deadbeef-03 ro rootfstype=squashfs init=/init panic=10 oops=panic router.slot=b"
        );
        assert!(kernel_cmdline(DiskId(1), Slot::A).contains("root=PARTUUID=00000001-02 "));
    }

    #[test]
    fn slots_pair_up() {
        assert_eq!(Slot::A.other(), Slot::B);
        assert_eq!(Slot::parse("B"), Some(Slot::B));
        assert_eq!(Slot::parse("c"), None);
        assert_eq!(Slot::B.kernel_file(), "vmlinuz-b");
    }
}
