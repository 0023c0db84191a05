//! syslinux's Auxiliary Data Vector (ADV): where a trial boot through the
//! firmware leaves its one-shot boot command.
//!
//! The ADV is the last 1024 bytes of `ldlinux.sys` on the boot partition: two
//! identical 512-byte copies of `magic1, checksum, 500 bytes of
//! tag/length/value records, magic3` (syslinux's `libinstaller/setadv.c`,
//! `core/adv.inc`). Tag 1 is the boot-once command: a label plus arguments
//! appended to its `APPEND` line, e.g. `b router.trial=1`. The loader runs it
//! once and clears it on the disk, so the next reset boots `DEFAULT` again.
//!
//! Writers rewrite the 1024 bytes in place (same length, same place), so the
//! file's sectors, which the loader recorded at install time, never move.

/// Size of one ADV copy.
pub const ADV_SIZE: usize = 512;
/// Size of both copies, at the end of [`LOADER_FILE`].
pub const ADV_BYTES: usize = 2 * ADV_SIZE;
const MAGIC1: u32 = 0x5a2d_2fa5;
const MAGIC2: u32 = 0xa304_1767;
const MAGIC3: u32 = 0xdd28_bf64;
/// Tag of the boot-once command.
pub const TAG_BOOT_ONCE: u8 = 1;
/// The file that holds the ADV, at the root of the boot partition.
pub const LOADER_FILE: &str = "ldlinux.sys";
/// Longest record (its length is one byte).
pub const MAX_RECORD: usize = 255;

/// Why an ADV could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdvError {
    /// Neither copy has the right magic numbers and checksum (syslinux not installed?).
    NoValidCopy,
    /// A record is longer than 255 bytes.
    RecordTooLong(usize),
    /// The records do not fit in 500 bytes.
    TooMuchData(usize),
}

impl std::fmt::Display for AdvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoValidCopy => write!(f, "{LOADER_FILE} holds no valid ADV (is syslinux installed?)"),
            Self::RecordTooLong(n) => write!(f, "an ADV record of {n} bytes is longer than {MAX_RECORD}"),
            Self::TooMuchData(n) => write!(f, "ADV records of {n} bytes do not fit in {} bytes", ADV_SIZE - 12),
        }
    }
}

impl std::error::Error for AdvError {}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn checksum(copy: &[u8]) -> u32 {
    (8..ADV_SIZE - 4).step_by(4).fold(MAGIC2, |c, i| c.wrapping_sub(u32_at(copy, i)))
}

/// The records of one ADV copy, or `None` when its magic or checksum is wrong.
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
/// When a record or all of them do not fit.
pub fn encode(records: &[(u8, Vec<u8>)]) -> Result<[u8; ADV_BYTES], AdvError> {
    let mut copy = [0u8; ADV_SIZE];
    let mut at = 8;
    for (tag, data) in records {
        let len = u8::try_from(data.len()).map_err(|_| AdvError::RecordTooLong(data.len()))?;
        if at + 2 + data.len() > ADV_SIZE - 4 {
            return Err(AdvError::TooMuchData(records.iter().map(|(_, d)| d.len() + 2).sum()));
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
    let mut both = [0u8; ADV_BYTES];
    both[..ADV_SIZE].copy_from_slice(&copy);
    both[ADV_SIZE..].copy_from_slice(&copy);
    Ok(both)
}

/// The records of the current ADV bytes (the last 1024 bytes of the loader
/// file): the first copy, or the second when the first is damaged (as
/// syslinux reads them).
///
/// # Errors
/// When neither copy is valid.
pub fn current(adv: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, AdvError> {
    if adv.len() < ADV_BYTES {
        return Err(AdvError::NoValidCopy);
    }
    records(&adv[..ADV_SIZE]).or_else(|| records(&adv[ADV_SIZE..ADV_BYTES])).ok_or(AdvError::NoValidCopy)
}

/// The boot-once command in the ADV bytes `adv`, if any.
///
/// # Errors
/// When neither copy is valid.
pub fn boot_once(adv: &[u8]) -> Result<Option<String>, AdvError> {
    Ok(current(adv)?
        .into_iter()
        .find(|(t, _)| *t == TAG_BOOT_ONCE)
        .map(|(_, d)| String::from_utf8_lossy(&d).into_owned()))
}

/// New ADV bytes from `adv` with the boot-once command set to `command`
/// (`None` clears it); every other record is kept.
///
/// # Errors
/// When `adv` holds no valid copy or the command does not fit.
pub fn with_boot_once(adv: &[u8], command: Option<&str>) -> Result<[u8; ADV_BYTES], AdvError> {
    let mut recs = current(adv)?;
    recs.retain(|(tag, _)| *tag != TAG_BOOT_ONCE);
    if let Some(cmd) = command {
        recs.push((TAG_BOOT_ONCE, cmd.as_bytes().to_vec()));
    }
    encode(&recs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_adv_matches_what_syslinux_installs() {
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
        assert_eq!(encode(&[(1, vec![b'x'; 256])]), Err(AdvError::RecordTooLong(256)));
        assert!(matches!(
            encode(&[(1, vec![b'x'; 200]), (2, vec![b'y'; 200]), (3, vec![b'z'; 200])]),
            Err(AdvError::TooMuchData(_))
        ));
    }

    #[test]
    fn boot_once_is_set_replaced_and_cleared_keeping_other_records() {
        let start = encode(&[(2, b"keep".to_vec())]).unwrap();
        assert_eq!(boot_once(&start).unwrap(), None);
        let set = with_boot_once(&start, Some("b router.trial=1")).unwrap();
        assert_eq!(boot_once(&set).unwrap().as_deref(), Some("b router.trial=1"));
        let replaced = with_boot_once(&set, Some("a router.trial=1")).unwrap();
        assert_eq!(boot_once(&replaced).unwrap().as_deref(), Some("a router.trial=1"));
        let cleared = with_boot_once(&replaced, None).unwrap();
        assert_eq!(cleared, start, "clearing restores the bytes");
        assert_eq!(current(&cleared).unwrap(), vec![(2, b"keep".to_vec())]);
    }

    #[test]
    fn a_damaged_first_copy_falls_back_to_the_second() {
        let mut adv = encode(&[(TAG_BOOT_ONCE, b"b".to_vec())]).unwrap();
        adv[0] = 0;
        assert_eq!(boot_once(&adv).unwrap().as_deref(), Some("b"));
        adv[ADV_SIZE] = 0;
        assert_eq!(boot_once(&adv), Err(AdvError::NoValidCopy));
        assert_eq!(with_boot_once(&[0u8; 100], None), Err(AdvError::NoValidCopy));
    }
}
