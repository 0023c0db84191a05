//! Finding `/perm`: partition 4 of the disk the root file system is on, named
//! by the kernel command line's `root=`, and telling whether a partition holds
//! a file system (so init never formats one that does).
//!
//! `root=` comes in two forms on our images:
//! - a device path, `/dev/vda2` (QEMU), `/dev/sda2` (the apu2c4's mSATA),
//!   `/dev/nvme0n1p2`, `/dev/mmcblk0p2`: partition 4 is the same disk's fourth
//!   partition. sysfs knows the disk and its partitions for sure
//!   ([`perm_from_sysfs`]); the naming rule ([`perm_from_name`], "a disk name
//!   ending in a digit takes a `p` before the partition number") is the fallback.
//! - `PARTUUID=<8 hex digits>-<2 hex digits>` (MBR): the disk whose MBR carries
//!   that signature (bytes 440..444, little-endian), partition 04.

use std::fs;
use std::path::{Path, PathBuf};

/// The partition number of `/perm`.
pub const PERM_PARTITION: u32 = 4;

/// What `root=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSpec {
    /// A device node, `/dev/sda2`.
    Path(PathBuf),
    /// An MBR partition by disk signature and number (`PARTUUID=0a0b0c0d-02`).
    PartUuid {
        /// The disk signature.
        signature: u32,
        /// The partition number.
        partition: u32,
    },
}

/// Why `/perm` could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootError(pub String);

impl std::fmt::Display for RootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RootSpec {
    /// Parses a `root=` value.
    pub fn parse(value: &str) -> Result<Self, RootError> {
        if let Some(uuid) = value.strip_prefix("PARTUUID=") {
            let (sig, part) = uuid
                .split_once('-')
                .filter(|(s, p)| s.len() == 8 && p.len() == 2)
                .ok_or_else(|| RootError(format!("root={value}: only MBR PARTUUIDs (SSSSSSSS-PP) are supported")))?;
            let signature =
                u32::from_str_radix(sig, 16).map_err(|_| RootError(format!("root={value}: bad signature")))?;
            let partition =
                u32::from_str_radix(part, 16).map_err(|_| RootError(format!("root={value}: bad partition number")))?;
            return Ok(Self::PartUuid { signature, partition });
        }
        if value.starts_with("/dev/") && value.len() > 5 && !value.contains("..") {
            return Ok(Self::Path(PathBuf::from(value)));
        }
        Err(RootError(format!("root={value}: expected /dev/<partition> or PARTUUID=<signature>-<nn>")))
    }
}

/// Splits a partition's kernel name into disk name and partition number by the
/// kernel's naming rule: `sda2` → (`sda`, 2), `nvme0n1p2` → (`nvme0n1`, 2).
#[must_use]
pub fn split_partition_name(name: &str) -> Option<(&str, u32)> {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits == name.len() {
        return None;
    }
    let (head, num) = name.split_at(name.len() - digits);
    let number: u32 = num.parse().ok()?;
    if let Some(disk) = head.strip_suffix('p')
        && disk.ends_with(|c: char| c.is_ascii_digit())
    {
        return Some((disk, number));
    }
    if head.ends_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    // Disks whose names end in a digit name their partitions with a `p`:
    // `nvme0n1` and `mmcblk0` are whole disks, not partitions of `nvme0n`/`mmcblk`.
    let numbered_disk = ["mmcblk", "loop", "nbd", "md", "zram", "ram"].contains(&head)
        || (head.starts_with("nvme") && head.ends_with('n'));
    if number == 0 || numbered_disk {
        return None;
    }
    Some((head, number))
}

/// Partition `n`'s kernel name on disk `disk`.
#[must_use]
pub fn partition_name(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) { format!("{disk}p{n}") } else { format!("{disk}{n}") }
}

/// `/perm`'s device from the root device's name alone.
pub fn perm_from_name(root: &Path) -> Result<PathBuf, RootError> {
    let name =
        root.file_name().and_then(|n| n.to_str()).ok_or_else(|| RootError(format!("{}: no name", root.display())))?;
    let (disk, _) =
        split_partition_name(name).ok_or_else(|| RootError(format!("{}: not a partition name", root.display())))?;
    Ok(root.with_file_name(partition_name(disk, PERM_PARTITION)))
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// The partition numbered `n` on the disk at sysfs folder `disk_dir`.
fn child_partition(disk_dir: &Path, n: u32) -> Option<String> {
    let entries = fs::read_dir(disk_dir).ok()?;
    entries.flatten().find_map(|e| {
        let number = read_trimmed(&e.path().join("partition"))?;
        (number.parse::<u32>().ok()? == n).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

/// `/perm`'s device name from sysfs (`sys` is usually `/sys`): the root
/// partition's disk, then that disk's partition 4.
pub fn perm_from_sysfs(sys: &Path, root: &Path) -> Result<String, RootError> {
    let name =
        root.file_name().and_then(|n| n.to_str()).ok_or_else(|| RootError(format!("{}: no name", root.display())))?;
    let entry = sys.join("class/block").join(name);
    let real = fs::canonicalize(&entry).map_err(|e| RootError(format!("{}: {e}", entry.display())))?;
    if !real.join("partition").exists() {
        return Err(RootError(format!("root={}: a whole disk, not a partition", root.display())));
    }
    let disk_dir = real.parent().ok_or_else(|| RootError(format!("{}: no parent disk", real.display())))?;
    child_partition(disk_dir, PERM_PARTITION)
        .ok_or_else(|| RootError(format!("{}: no partition {PERM_PARTITION} on the root disk", disk_dir.display())))
}

/// The MBR disk signature (bytes 440..444, little-endian) of a disk image's first sector.
#[must_use]
pub fn mbr_signature(sector: &[u8]) -> Option<u32> {
    if sector.len() < 512 || sector[510..512] != [0x55, 0xaa] {
        return None;
    }
    Some(u32::from_le_bytes([sector[440], sector[441], sector[442], sector[443]]))
}

/// Resolves `PARTUUID=<signature>-<nn>` to a device name: scans the whole disks
/// in `<sys>/class/block`, reads each one's MBR from `<dev>/<disk>`, and returns
/// partition `partition` of the one with `signature`.
pub fn find_by_partuuid(sys: &Path, dev: &Path, signature: u32, partition: u32) -> Result<String, RootError> {
    let class = sys.join("class/block");
    let entries = fs::read_dir(&class).map_err(|e| RootError(format!("{}: {e}", class.display())))?;
    let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let Ok(real) = fs::canonicalize(class.join(&name)) else { continue };
        if real.join("partition").exists() {
            continue;
        }
        let mut sector = vec![0u8; 512];
        let read = fs::File::open(dev.join(&name)).and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut sector)
        });
        if read.is_err() || mbr_signature(&sector) != Some(signature) {
            continue;
        }
        return child_partition(&real, partition)
            .ok_or_else(|| RootError(format!("disk {name} (signature {signature:08x}) has no partition {partition}")));
    }
    Err(RootError(format!("no disk with MBR signature {signature:08x}")))
}

/// `/perm`'s device for `root=` `value`, using sysfs at `sys` and device nodes
/// at `dev` (`/sys`, `/dev`; test folders in tests).
pub fn perm_device(value: &str, sys: &Path, dev: &Path) -> Result<PathBuf, RootError> {
    match RootSpec::parse(value)? {
        RootSpec::PartUuid { signature, .. } => {
            find_by_partuuid(sys, dev, signature, PERM_PARTITION).map(|name| dev.join(name))
        }
        RootSpec::Path(path) => match perm_from_sysfs(sys, &path) {
            Ok(name) => Ok(dev.join(name)),
            // Without sysfs (or before the disk appears there), the naming rule.
            Err(_) => perm_from_name(&path).map(|p| dev.join(p.file_name().map(PathBuf::from).unwrap_or_default())),
        },
    }
}

/// The file system whose signature `head` (the first 68 KiB of a partition, or
/// fewer) carries, if any. A partition with any of these is never formatted.
#[must_use]
pub fn fs_signature(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    // ext2/3/4: s_magic 0xEF53 at byte 56 of the superblock at 1024.
    if at(1080, &[0x53, 0xef]) {
        return Some("ext4");
    }
    let checks: &[(usize, &[u8], &str)] = &[
        (0, b"hsqs", "squashfs"),
        (0, b"XFSB", "xfs"),
        (0, b"LUKS\xba\xbe", "crypto_LUKS"),
        (3, b"NTFS    ", "ntfs"),
        (1024, &[0x10, 0x20, 0xf5, 0xf2], "f2fs"),
        (4086, b"SWAPSPACE2", "swap"),
        (4086, b"SWAP-SPACE", "swap"),
        (32769, b"CD001", "iso9660"),
        (65600, b"_BHRfS_M", "btrfs"),
    ];
    if let Some((_, _, name)) = checks.iter().find(|(o, m, _)| at(*o, m)) {
        return Some(name);
    }
    if at(510, &[0x55, 0xaa]) && (at(54, b"FAT") || at(82, b"FAT32")) {
        return Some("vfat");
    }
    None
}

/// How many leading bytes [`fs_signature`] looks at.
pub const SIGNATURE_BYTES: usize = 68 * 1024;

/// Partition `n` of the disk `root=` `value` is on (updates use 1, 2 and 3:
/// the boot partition and both root slots), found like [`perm_device`].
pub fn partition_device(value: &str, sys: &Path, dev: &Path, n: u32) -> Result<PathBuf, RootError> {
    match RootSpec::parse(value)? {
        RootSpec::PartUuid { signature, .. } => find_by_partuuid(sys, dev, signature, n).map(|name| dev.join(name)),
        RootSpec::Path(path) => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| RootError(format!("{}: no name", path.display())))?;
            let from_sysfs = fs::canonicalize(sys.join("class/block").join(name))
                .ok()
                .and_then(|real| child_partition(real.parent()?, n));
            match from_sysfs {
                Some(part) => Ok(dev.join(part)),
                None => {
                    let (disk, _) = split_partition_name(name)
                        .ok_or_else(|| RootError(format!("{}: not a partition name", path.display())))?;
                    Ok(dev.join(partition_name(disk, n)))
                }
            }
        }
    }
}

/// The size in bytes of block device `name` (`/sys/class/block/<name>/size`, in 512-byte sectors).
pub fn block_size(sys: &Path, name: &str) -> Result<u64, RootError> {
    let file = sys.join("class/block").join(name).join("size");
    read_trimmed(&file)
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(|sectors| sectors.checked_mul(512))
        .ok_or_else(|| RootError(format!("{}: no size", file.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn derives_partition_four_from_every_naming_scheme() {
        for (root, perm) in [
            ("/dev/sda2", "/dev/sda4"),
            ("/dev/vda2", "/dev/vda4"),
            ("/dev/vdb3", "/dev/vdb4"),
            ("/dev/nvme0n1p2", "/dev/nvme0n1p4"),
            ("/dev/mmcblk0p2", "/dev/mmcblk0p4"),
            ("/dev/loop7p2", "/dev/loop7p4"),
            ("/dev/sdaa12", "/dev/sdaa4"),
        ] {
            assert_eq!(perm_from_name(Path::new(root)).unwrap(), PathBuf::from(perm), "{root}");
        }
        for whole in ["/dev/sda", "/dev/nvme0n1", "/dev/mmcblk0", "/dev/2"] {
            assert!(perm_from_name(Path::new(whole)).is_err(), "{whole}");
        }
    }

    #[test]
    fn finds_the_boot_and_slot_partitions_by_the_naming_rule_without_sysfs() {
        let none = Path::new("/nonexistent-sys");
        let dev = Path::new("/dev");
        assert_eq!(partition_device("/dev/vda2", none, dev, 1).unwrap(), PathBuf::from("/dev/vda1"));
        assert_eq!(partition_device("/dev/nvme0n1p2", none, dev, 3).unwrap(), PathBuf::from("/dev/nvme0n1p3"));
        assert!(partition_device("/dev/sda", none, dev, 1).is_err());
        assert!(partition_device("PARTUUID=0a0b0c0d-02", none, dev, 1).is_err(), "no disks to scan");
    }

    #[test]
    fn parses_root_values() {
        assert_eq!(RootSpec::parse("/dev/vda2").unwrap(), RootSpec::Path("/dev/vda2".into()));
        assert_eq!(
            RootSpec::parse("PARTUUID=2e2e0a0b-02").unwrap(),
            RootSpec::PartUuid { signature: 0x2e2e_0a0b, partition: 2 }
        );
        for bad in ["PARTUUID=1234-02", "PARTUUID=0123abcd-0x", "sda2", "/dev/", "/dev/../etc", "UUID=x"] {
            assert!(RootSpec::parse(bad).is_err(), "{bad}");
        }
    }

    struct Tree(PathBuf);
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A fake /sys and /dev: disks with partitions, linked from class/block as
    /// the kernel does, and MBR sectors in dev/<disk>.
    fn tree(tag: &str, disks: &[(&str, &[u32], u32)]) -> Tree {
        let root = std::env::temp_dir().join(format!("init-rootdev-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let class = root.join("sys/class/block");
        fs::create_dir_all(&class).unwrap();
        fs::create_dir_all(root.join("dev")).unwrap();
        for (disk, parts, signature) in disks {
            let disk_dir = root.join("sys/devices/pci0000:00/block").join(disk);
            fs::create_dir_all(&disk_dir).unwrap();
            symlink(&disk_dir, class.join(disk)).unwrap();
            for &n in *parts {
                let name = partition_name(disk, n);
                let part_dir = disk_dir.join(&name);
                fs::create_dir_all(&part_dir).unwrap();
                fs::write(part_dir.join("partition"), format!("{n}\n")).unwrap();
                symlink(&part_dir, class.join(&name)).unwrap();
            }
            let mut sector = vec![0u8; 512];
            sector[440..444].copy_from_slice(&signature.to_le_bytes());
            sector[510] = 0x55;
            sector[511] = 0xaa;
            fs::write(root.join("dev").join(disk), sector).unwrap();
        }
        Tree(root)
    }

    #[test]
    fn finds_partition_four_through_sysfs() {
        let t = tree("sysfs", &[("sda", &[1, 2, 3, 4], 1), ("nvme0n1", &[1, 2, 3, 4], 2)]);
        let (sys, dev) = (t.0.join("sys"), t.0.join("dev"));
        assert_eq!(perm_device("/dev/sda2", &sys, &dev).unwrap(), dev.join("sda4"));
        assert_eq!(perm_device("/dev/nvme0n1p3", &sys, &dev).unwrap(), dev.join("nvme0n1p4"));
        let err = perm_from_sysfs(&sys, Path::new("/dev/sda")).unwrap_err();
        assert!(err.0.contains("whole disk"), "{err}");
        // Not in sysfs: the naming rule answers.
        assert_eq!(perm_device("/dev/vda2", &sys, &dev).unwrap(), dev.join("vda4"));
    }

    #[test]
    fn a_disk_without_partition_four_is_an_error() {
        let t = tree("nofour", &[("sdb", &[1, 2, 3], 7)]);
        let err = perm_from_sysfs(&t.0.join("sys"), Path::new("/dev/sdb2")).unwrap_err();
        assert!(err.0.contains("no partition 4"), "{err}");
    }

    #[test]
    fn finds_the_boot_and_slot_partitions_through_sysfs_and_partuuid() {
        let t = tree("slots", &[("sda", &[1, 2, 3, 4], 0x1111_1111), ("vdb", &[1, 2, 3, 4], 0x2e2e_0a0b)]);
        let (sys, dev) = (t.0.join("sys"), t.0.join("dev"));
        assert_eq!(partition_device("/dev/sda2", &sys, &dev, 1).unwrap(), dev.join("sda1"));
        assert_eq!(partition_device("/dev/sda2", &sys, &dev, 3).unwrap(), dev.join("sda3"));
        assert_eq!(partition_device("PARTUUID=2e2e0a0b-02", &sys, &dev, 3).unwrap(), dev.join("vdb3"));
        fs::write(sys.join("class/block/sda3/size"), "524288\n").unwrap();
        assert_eq!(block_size(&sys, "sda3").unwrap(), 256 << 20);
        assert!(block_size(&sys, "sda2").is_err());
    }

    #[test]
    fn resolves_partuuid_by_the_mbr_signature() {
        let t = tree("partuuid", &[("sda", &[1, 2, 3, 4], 0x1111_1111), ("sdb", &[1, 2, 3, 4], 0x2e2e_0a0b)]);
        let (sys, dev) = (t.0.join("sys"), t.0.join("dev"));
        assert_eq!(perm_device("PARTUUID=2e2e0a0b-02", &sys, &dev).unwrap(), dev.join("sdb4"));
        let err = perm_device("PARTUUID=deadbeef-02", &sys, &dev).unwrap_err();
        assert!(err.0.contains("deadbeef"), "{err}");
    }

    #[test]
    fn recognises_file_systems_and_blank_space() {
        let mut head = vec![0u8; SIGNATURE_BYTES];
        assert_eq!(fs_signature(&head), None, "zeros");
        head[1080] = 0x53;
        head[1081] = 0xef;
        assert_eq!(fs_signature(&head), Some("ext4"));
        let mut fat = vec![0u8; 1024];
        fat[82..87].copy_from_slice(b"FAT32");
        fat[510] = 0x55;
        fat[511] = 0xaa;
        assert_eq!(fs_signature(&fat), Some("vfat"));
        let mut btrfs = vec![0xffu8; SIGNATURE_BYTES];
        btrfs[65600..65608].copy_from_slice(b"_BHRfS_M");
        assert_eq!(fs_signature(&btrfs), Some("btrfs"));
        assert_eq!(fs_signature(b"hsqs...."), Some("squashfs"));
        assert_eq!(fs_signature(&[]), None);
    }

    #[test]
    fn a_real_mke2fs_image_is_recognised_as_ext4() {
        let Some(mke2fs) = runtime::testing::tool("mke2fs", "a_real_mke2fs_image_is_recognised_as_ext4") else {
            return;
        };
        let img = std::env::temp_dir().join(format!("init-rootdev-ext4-{}.img", std::process::id()));
        fs::write(&img, vec![0u8; 4 << 20]).unwrap();
        let out = std::process::Command::new(mke2fs).args(["-q", "-F", "-t", "ext4"]).arg(&img).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let head = fs::read(&img).unwrap();
        fs::remove_file(&img).unwrap();
        assert_eq!(fs_signature(&head[..SIGNATURE_BYTES]), Some("ext4"));
    }
}
