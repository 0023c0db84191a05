//! syslinux's Auxiliary Data Vector (ADV): the one-shot boot command that a
//! firmware-path trial boot of the other slot uses (issue #11).
//!
//! The ADV is the last 1024 bytes of `ldlinux.sys` on the boot partition: two
//! identical 512-byte copies of `magic1, checksum, 500 bytes of
//! tag/length/value records, magic3` (syslinux's libinstaller/setadv.c).
//! Tag 1 is the boot-once command line (a label plus extra arguments, e.g.
//! `b router.trial=1`); the loader runs it once and clears it, so the next
//! reset boots the default slot. Debian's mtools-based `syslinux` cannot set
//! it (`--once` is "not implemented for this installer"), so we write it: in
//! place, through the file system, never moving the file's sectors (which the
//! loader recorded at install time).

use std::io::{Read, Seek, SeekFrom, Write};

pub use bootslot::adv::{ADV_BYTES, ADV_SIZE, LOADER_FILE, TAG_BOOT_ONCE, records};

use crate::error::{Error, Result};

/// Both ADV copies holding `records` (the format lives in `bootslot::adv`,
/// shared with init, which writes the same bytes on the router).
///
/// # Errors
/// When the records do not fit.
pub fn encode(records: &[(u8, Vec<u8>)]) -> Result<[u8; ADV_BYTES]> {
    bootslot::adv::encode(records).map_err(|e| Error::Invalid(e.to_string()))
}

/// Sets (or with `None` clears) the boot-once command in the ADV of the FAT
/// file system `fat` (the boot partition), keeping other records.
///
/// # Errors
/// When `ldlinux.sys` is missing or holds no valid ADV (syslinux not installed).
pub fn set_boot_once<T: Read + Write + Seek>(fat: T, command: Option<&str>) -> Result<()> {
    let io = |e: std::io::Error| Error::Invalid(format!("boot partition: {e}"));
    let mut fat = fat;
    // fatfs stamps a written file with "now"; keep the file's own time so
    // that only the ADV bytes change, as when the loader writes them.
    let stamp = {
        let fs = fatfs::FileSystem::new(&mut fat, fatfs::FsOptions::new()).map_err(io)?;
        let found = fs
            .root_dir()
            .iter()
            .filter_map(std::result::Result::ok)
            .find(|e| e.file_name().eq_ignore_ascii_case(LOADER_FILE))
            .map(|e| e.modified());
        fs.unmount().map_err(io)?;
        found
            .ok_or_else(|| Error::Invalid(format!("no {LOADER_FILE} on the boot partition (is syslinux installed?)")))?
    };
    fat.seek(SeekFrom::Start(0)).map_err(io)?;
    let options = fatfs::FsOptions::new().time_provider(crate::bootfs::fixed_time(stamp));
    let fs = fatfs::FileSystem::new(fat, options).map_err(io)?;
    {
        let mut file = fs.root_dir().open_file(LOADER_FILE).map_err(io)?;
        let len = file.seek(SeekFrom::End(0)).map_err(io)?;
        let start = len
            .checked_sub(ADV_BYTES as u64)
            .ok_or_else(|| Error::Invalid(format!("{LOADER_FILE} is too short to hold an ADV")))?;
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut current = [0u8; ADV_BYTES];
        file.read_exact(&mut current).map_err(io)?;
        let both = bootslot::adv::with_boot_once(&current, command).map_err(|e| Error::Invalid(e.to_string()))?;
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        // Same length, same place: the file's clusters do not move.
        file.write_all(&both).map_err(io)?;
        file.flush().map_err(io)?;
    }
    fs.unmount().map_err(io)?;
    Ok(())
}

/// The boot-once command in the ADV of `fat`, if any.
///
/// # Errors
/// As [`set_boot_once`].
pub fn boot_once<T: Read + Write + Seek>(fat: T) -> Result<Option<String>> {
    let io = |e: std::io::Error| Error::Invalid(format!("boot partition: {e}"));
    let fs = fatfs::FileSystem::new(fat, fatfs::FsOptions::new()).map_err(io)?;
    let mut file = fs.root_dir().open_file(LOADER_FILE).map_err(io)?;
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    file.seek(SeekFrom::Start(len.saturating_sub(ADV_BYTES as u64))).map_err(io)?;
    let mut current = [0u8; ADV_BYTES];
    file.read_exact(&mut current).map_err(io)?;
    bootslot::adv::boot_once(&current).map_err(|e| Error::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_errors_become_mkimage_errors() {
        // The format itself is tested in bootslot::adv.
        let both = encode(&[(TAG_BOOT_ONCE, b"b router.trial=1".to_vec())]).unwrap();
        assert_eq!(records(&both[..ADV_SIZE]).unwrap(), vec![(TAG_BOOT_ONCE, b"b router.trial=1".to_vec())]);
        assert!(matches!(encode(&[(1, vec![b'x'; 256])]), Err(Error::Invalid(_))));
    }
}
