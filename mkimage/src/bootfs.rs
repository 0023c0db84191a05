//! The boot partition: a FAT16 file system holding syslinux (legacy BIOS boot
//! for the apu2c4's SeaBIOS, and QEMU's), one kernel per slot and the loader
//! configuration that names the default slot.
//!
//! The file system is formatted and filled with the `fatfs` crate (no mount,
//! fixed volume id and timestamps); `syslinux --install` from Debian then adds
//! its boot sector code, `ldlinux.sys` and `ldlinux.c32` (it writes through
//! mtools, which honours `SOURCE_DATE_EPOCH`). The MBR boot code
//! ([`crate::mbr`]) chain-loads that boot sector from the active partition.
//!
//! For updates (issue #11) everything is found by name, never by sector:
//! syslinux reads `syslinux.cfg`, `vmlinuz-a` and `vmlinuz-b` through its FAT
//! driver, so init may rewrite any of them on the mounted partition.
//! - The default slot is the one line `DEFAULT a` (or `b`): committing an
//!   update rewrites it (same length).
//! - A trial boot through the firmware uses syslinux's one-shot command in the
//!   ADV (`syslinux --once="b router.trial=1"`; the ADV is the last two
//!   sectors of `ldlinux.sys`, rewritten in place): the loader runs it once,
//!   clears it, and the next boot is the default again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};
use crate::layout::{DiskId, Slot, kernel_cmdline};

/// The loader configuration file, at the root of the boot partition.
pub const LOADER_CONFIG: &str = "syslinux.cfg";
/// Volume label of the boot partition.
pub const VOLUME_LABEL: &[u8; 11] = b"ROUTER7BOOT";

/// `syslinux.cfg` for `disk`, booting `default` unless told otherwise.
#[must_use]
pub fn loader_config(disk: DiskId, default: Slot) -> String {
    let mut out = String::from(
        "SERIAL 0 115200\n\
         # router7-rs boot loader configuration, written by mkimage.\n\
         # DEFAULT names the committed slot; init rewrites that line when it\n\
         # commits an update. A trial boot of the other slot is a one-shot\n\
         # command in syslinux's ADV (e.g. \"b router.trial=1\"), never this file.\n\
         PROMPT 0\n",
    );
    out.push_str(&format!("DEFAULT {}\n", default.label()));
    for slot in Slot::ALL {
        out.push_str(&format!(
            "LABEL {}\n  LINUX /{}\n  APPEND {}\n",
            slot.label(),
            slot.kernel_file(),
            kernel_cmdline(disk, slot)
        ));
    }
    out
}

/// The default slot named by a loader configuration.
#[must_use]
pub fn default_slot(config: &str) -> Option<Slot> {
    config.lines().find_map(|l| l.trim().strip_prefix("DEFAULT ").and_then(|s| Slot::parse(s.trim())))
}

/// A DOS date and time from seconds since the Unix epoch (UTC), clamped to
/// FAT's range (1980..2107).
#[must_use]
pub fn dos_time(epoch: u64) -> fatfs::DateTime {
    let days = i64::try_from(epoch / 86_400).unwrap_or(i64::MAX);
    let secs = epoch % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let min = fatfs::DateTime {
        date: fatfs::Date { year: 1980, month: 1, day: 1 },
        time: fatfs::Time { hour: 0, min: 0, sec: 0, millis: 0 },
    };
    if year < 1980 {
        return min;
    }
    if year > 2107 {
        return fatfs::DateTime {
            date: fatfs::Date { year: 2107, month: 12, day: 31 },
            time: fatfs::Time { hour: 23, min: 59, sec: 58, millis: 0 },
        };
    }
    let narrow = |v: i64| u16::try_from(v).unwrap_or(0);
    let narrow_u = |v: u64| u16::try_from(v).unwrap_or(0);
    fatfs::DateTime {
        date: fatfs::Date { year: narrow(year), month: narrow(month), day: narrow(day) },
        time: fatfs::Time {
            hour: narrow_u(secs / 3600),
            min: narrow_u(secs / 60 % 60),
            sec: narrow_u(secs % 60),
            millis: 0,
        },
    }
}

/// fatfs asks this for "now": always the build's time.
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// A time provider that always says `t` (fatfs wants a `'static` one: one
/// small allocation per use).
#[must_use]
pub fn fixed_time(t: fatfs::DateTime) -> &'static dyn fatfs::TimeProvider {
    Box::leak(Box::new(FixedTime(t)))
}

fn fat_options(epoch: u64) -> fatfs::FsOptions {
    fatfs::FsOptions::new().time_provider(fixed_time(dos_time(epoch)))
}

/// Offset of the BPB's "hidden sectors" field: the partition's first sector,
/// which syslinux's boot sector adds to every sector it reads.
const BPB_HIDDEN_SECTORS: u64 = 0x1c;

/// Formats `path` (already `size` bytes) as FAT16 and writes `files` (name,
/// bytes) into its root folder, every timestamp set to `epoch`.
/// `first_sector` is the partition's first sector on the disk.
///
/// # Errors
/// On I/O errors or when the files do not fit.
pub fn build_fat(path: &Path, first_sector: u32, volume_id: u32, epoch: u64, files: &[(&str, &[u8])]) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path, e);
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    fatfs::format_volume(
        &mut file,
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat16)
            .volume_id(volume_id)
            .volume_label(*VOLUME_LABEL),
    )
    .map_err(io)?;
    file.seek(SeekFrom::Start(BPB_HIDDEN_SECTORS)).map_err(io)?;
    file.write_all(&first_sector.to_le_bytes()).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    {
        // Every timestamp comes from the fixed time provider.
        let fs = fatfs::FileSystem::new(&mut file, fat_options(epoch)).map_err(io)?;
        {
            let root = fs.root_dir();
            for (name, data) in files {
                let mut f = root.create_file(name).map_err(io)?;
                f.truncate().map_err(io)?;
                f.write_all(data).map_err(|e| {
                    Error::Invalid(format!("boot partition: cannot write {name} ({} bytes): {e}", data.len()))
                })?;
                f.flush().map_err(io)?;
            }
        }
        fs.unmount().map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    Ok(())
}

/// Installs syslinux's boot sector and `ldlinux.sys`/`ldlinux.c32` on the FAT
/// image `path` (Debian's mtools-based `syslinux`; nothing is mounted).
///
/// # Errors
/// When syslinux is missing or fails.
pub fn install_syslinux(path: &Path, epoch: u64) -> Result<()> {
    crate::tools::run(Command::new("syslinux").arg("--install").arg(path).env("SOURCE_DATE_EPOCH", epoch.to_string()))?;
    Ok(())
}

/// One file of a FAT image, as [`list_fat`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatFile {
    /// Long file name.
    pub name: String,
    /// Contents.
    pub data: Vec<u8>,
}

/// Reads every file of the FAT root folder in `image` (tests, `inspect`).
///
/// # Errors
/// When the image is not a FAT file system.
pub fn list_fat<T: Read + Write + Seek>(image: T) -> Result<Vec<FatFile>> {
    let io = |e: std::io::Error| Error::Invalid(format!("boot partition: {e}"));
    let fs = fatfs::FileSystem::new(image, fatfs::FsOptions::new()).map_err(io)?;
    let mut out = Vec::new();
    for entry in fs.root_dir().iter() {
        let entry = entry.map_err(io)?;
        if entry.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        entry.to_file().read_to_end(&mut data).map_err(io)?;
        out.push(FatFile { name: entry.file_name(), data });
    }
    Ok(out)
}

/// Opens a FAT image for [`list_fat`].
///
/// # Errors
/// When it cannot be opened.
pub fn open(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).open(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn loader_config_defaults_to_the_slot_and_names_both_kernels() {
        let cfg = loader_config(DiskId(0x0102_0304), Slot::A);
        assert!(cfg.starts_with("SERIAL 0 115200\n"), "SERIAL must come first");
        assert_eq!(default_slot(&cfg), Some(Slot::A));
        assert!(cfg.contains("LABEL a\n  LINUX /vmlinuz-a\n  APPEND console=ttyS0,115200 root=PARTUUID=01020304-02 "));
        assert!(cfg.contains("LABEL b\n  LINUX /vmlinuz-b\n  APPEND console=ttyS0,115200 root=PARTUUID=01020304-03 "));
        assert!(cfg.contains("router.slot=b\n"));
        assert_eq!(default_slot(&loader_config(DiskId(1), Slot::B)), Some(Slot::B));
        // Committing rewrites one line in place: both defaults have the same length.
        assert_eq!(loader_config(DiskId(1), Slot::A).len(), loader_config(DiskId(1), Slot::B).len());
    }

    #[test]
    fn dos_time_converts_utc_dates() {
        let t = dos_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        let t = dos_time(951_782_400); // 2000-02-29
        assert_eq!((t.date.year, t.date.month, t.date.day), (2000, 2, 29));
        assert_eq!(dos_time(0).date.year, 1980, "clamped to FAT's epoch");
    }

    #[test]
    fn fat_holds_the_files_and_the_partition_offset() {
        let dir = std::env::temp_dir().join(format!("mkimage-fat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("boot.img");
        File::create(&path).unwrap().set_len(64 << 20).unwrap();
        let kernel = vec![0xabu8; 3 << 20];
        let cfg = loader_config(DiskId(9), Slot::A);
        build_fat(
            &path,
            2048,
            0x1234_5678,
            1_700_000_000,
            &[("vmlinuz-a", &kernel), ("vmlinuz-b", &kernel), (LOADER_CONFIG, cfg.as_bytes())],
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[0x1c..0x20], &2048u32.to_le_bytes(), "hidden sectors = partition start");
        assert_eq!(&bytes[0x27..0x2b], &0x1234_5678u32.to_le_bytes(), "volume id");
        assert_eq!(&bytes[0x36..0x3b], b"FAT16");
        let files = list_fat(Cursor::new(bytes.clone())).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["vmlinuz-a", "vmlinuz-b", "syslinux.cfg"]);
        assert_eq!(files[0].data, kernel);
        assert_eq!(files[2].data, cfg.as_bytes());
        // Same inputs, same bytes.
        build_fat(
            &path,
            2048,
            0x1234_5678,
            1_700_000_000,
            &[("vmlinuz-a", &kernel), ("vmlinuz-b", &kernel), (LOADER_CONFIG, cfg.as_bytes())],
        )
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
