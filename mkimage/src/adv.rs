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

use crate::error::{Error, Result};

/// Size of one ADV copy.
pub const ADV_SIZE: usize = 512;
const MAGIC1: u32 = 0x5a2d_2fa5;
const MAGIC2: u32 = 0xa304_1767;
const MAGIC3: u32 = 0xdd28_bf64;
/// Tag of the boot-once command.
pub const TAG_BOOT_ONCE: u8 = 1;
/// The file that holds the ADV.
pub const LOADER_FILE: &str = "ldlinux.sys";

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn checksum(copy: &[u8]) -> u32 {
    (8..ADV_SIZE - 4).step_by(4).fold(MAGIC2, |c, i| c.wrapping_sub(u32_at(copy, i)))
}

/// The records of a valid ADV copy, or `None` when its magic or checksum is wrong.
#[must_use]
pub fn records(copy: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
    if copy.len() < ADV_SIZE
        || u32_at(copy, 0) != MAGIC1
        || u32_at(copy, ADV_SIZE - 4) != MAGIC3
        || u32_at(copy, 4) != checksum(copy)
    {
        return None;
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at + 2 <= ADV_SIZE - 4 {
        let (tag, len) = (copy[at], usize::from(copy[at + 1]));
        if tag == 0 || at + 2 + len > ADV_SIZE - 4 {
            break;
        }
        out.push((tag, copy[at + 2..at + 2 + len].to_vec()));
        at += 2 + len;
    }
    Some(out)
}

/// Both ADV copies holding `records`.
///
/// # Errors
/// When the records do not fit.
pub fn encode(records: &[(u8, Vec<u8>)]) -> Result<[u8; 2 * ADV_SIZE]> {
    let mut copy = [0u8; ADV_SIZE];
    let mut at = 8;
    for (tag, data) in records {
        let len = u8::try_from(data.len()).map_err(|_| Error::Invalid("ADV record longer than 255 bytes".into()))?;
        if at + 2 + data.len() > ADV_SIZE - 4 {
            return Err(Error::Invalid("the ADV records do not fit in 500 bytes".into()));
        }
        copy[at] = *tag;
        copy[at + 1] = len;
        copy[at + 2..at + 2 + data.len()].copy_from_slice(data);
        at += 2 + data.len();
    }
    copy[..4].copy_from_slice(&MAGIC1.to_le_bytes());
    copy[ADV_SIZE - 4..].copy_from_slice(&MAGIC3.to_le_bytes());
    let sum = checksum(&copy);
    copy[4..8].copy_from_slice(&sum.to_le_bytes());
    let mut both = [0u8; 2 * ADV_SIZE];
    both[..ADV_SIZE].copy_from_slice(&copy);
    both[ADV_SIZE..].copy_from_slice(&copy);
    Ok(both)
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
            .checked_sub(2 * ADV_SIZE as u64)
            .ok_or_else(|| Error::Invalid(format!("{LOADER_FILE} is too short to hold an ADV")))?;
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut current = [0u8; 2 * ADV_SIZE];
        file.read_exact(&mut current).map_err(io)?;
        let mut recs = records(&current[..ADV_SIZE])
            .or_else(|| records(&current[ADV_SIZE..]))
            .ok_or_else(|| Error::Invalid(format!("{LOADER_FILE} holds no valid ADV (is syslinux installed?)")))?;
        recs.retain(|(tag, _)| *tag != TAG_BOOT_ONCE);
        if let Some(cmd) = command {
            recs.push((TAG_BOOT_ONCE, cmd.as_bytes().to_vec()));
        }
        let both = encode(&recs)?;
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
    file.seek(SeekFrom::Start(len.saturating_sub(2 * ADV_SIZE as u64))).map_err(io)?;
    let mut current = [0u8; 2 * ADV_SIZE];
    file.read_exact(&mut current).map_err(io)?;
    let recs =
        records(&current[..ADV_SIZE]).ok_or_else(|| Error::Invalid(format!("{LOADER_FILE} holds no valid ADV")))?;
    Ok(recs.into_iter().find(|(t, _)| *t == TAG_BOOT_ONCE).map(|(_, d)| String::from_utf8_lossy(&d).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_adv_matches_what_syslinux_installs() {
        // The ADV `syslinux --install` wrote into a fresh ldlinux.sys.
        let both = encode(&[]).unwrap();
        assert_eq!(u32_at(&both, 0), MAGIC1);
        assert_eq!(u32_at(&both, 4), MAGIC2, "the checksum of all-zero data is magic2");
        assert_eq!(u32_at(&both, ADV_SIZE - 4), MAGIC3);
        assert_eq!(both[..ADV_SIZE], both[ADV_SIZE..]);
    }

    #[test]
    fn records_round_trip_and_bad_checksums_are_refused() {
        let recs = vec![(2, b"a".to_vec()), (TAG_BOOT_ONCE, b"b router.trial=1".to_vec())];
        let both = encode(&recs).unwrap();
        assert_eq!(records(&both[..ADV_SIZE]).unwrap(), recs);
        let mut bad = both;
        bad[20] ^= 1;
        assert_eq!(records(&bad[..ADV_SIZE]), None);
        assert!(encode(&[(1, vec![b'x'; 256])]).is_err());
        assert!(encode(&[(1, vec![b'x'; 200]), (2, vec![b'y'; 200]), (3, vec![b'z'; 200])]).is_err());
    }
}
