//! Writes and reads the MBR: syslinux's boot code, the disk signature and the
//! four partition entries of [`Layout`], through the `mbrman` crate.
//!
//! The boot code is Debian's `/usr/lib/syslinux/mbr/mbr.bin` (440 bytes): it
//! loads the volume boot record of the active partition (the FAT boot
//! partition, where `syslinux --install` put its loader), using LBA reads
//! (SeaBIOS on the apu2c4 and under QEMU supports them).

use std::io::{Read, Seek, Write};

use crate::error::{Error, Result};
use crate::layout::{DiskId, Layout, Partition, SECTOR};

/// Size of the boot code area of an MBR.
pub const BOOT_CODE_SIZE: usize = 440;
/// Where Debian's syslinux package puts its MBR boot code.
pub const SYSLINUX_MBR: &str = "/usr/lib/syslinux/mbr/mbr.bin";

/// Conventional geometry for CHS fields: 255 heads, 63 sectors per track.
const HEADS: u32 = 255;
const SECTORS_PER_TRACK: u32 = 63;

/// The CHS address of `lba`, or the "beyond CHS" marker (1023/254/63) that
/// tells firmware to use the LBA fields.
fn chs(lba: u32) -> mbrman::CHS {
    let cylinder = lba / (HEADS * SECTORS_PER_TRACK);
    if cylinder > 1023 {
        return mbrman::CHS::new(1023, 254, 63);
    }
    let rest = lba % (HEADS * SECTORS_PER_TRACK);
    let head = rest / SECTORS_PER_TRACK;
    let sector = rest % SECTORS_PER_TRACK + 1;
    // Bounds: cylinder <= 1023, head < 255, sector <= 63.
    mbrman::CHS::new(
        u16::try_from(cylinder).unwrap_or(1023),
        u8::try_from(head).unwrap_or(254),
        u8::try_from(sector).unwrap_or(63),
    )
}

fn entry(p: &Partition) -> mbrman::MBRPartitionEntry {
    let first = p.extent.start_lba();
    let last = first + p.extent.sectors() - 1;
    mbrman::MBRPartitionEntry {
        boot: if p.active { mbrman::BOOT_ACTIVE } else { mbrman::BOOT_INACTIVE },
        first_chs: chs(first),
        sys: p.kind,
        last_chs: chs(last),
        starting_lba: first,
        sectors: p.extent.sectors(),
    }
}

fn mbr_error(e: mbrman::Error) -> Error {
    Error::Invalid(format!("partition table: {e}"))
}

/// Writes the MBR of `layout` into the first sector of `disk` (whose length
/// must already be `layout.disk_size`).
///
/// # Errors
/// When `boot_code` is not 440 bytes or the table cannot be written.
pub fn write<D: Read + Write + Seek>(disk: &mut D, layout: &Layout, id: DiskId, boot_code: &[u8]) -> Result<()> {
    let code: [u8; BOOT_CODE_SIZE] = boot_code.try_into().map_err(|_| {
        Error::Invalid(format!("MBR boot code must be {BOOT_CODE_SIZE} bytes, got {}", boot_code.len()))
    })?;
    let sector_size = u32::try_from(SECTOR).unwrap_or(512);
    let mut mbr = mbrman::MBR::new_from(disk, sector_size, id.bytes()).map_err(mbr_error)?;
    mbr.header.bootstrap_code = code;
    for p in layout.partitions() {
        mbr[usize::from(p.number)] = entry(&p);
    }
    mbr.write_into(disk).map_err(mbr_error)?;
    Ok(())
}

/// What [`read`] found in an MBR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The disk signature.
    pub id: DiskId,
    /// The boot code.
    pub boot_code: Vec<u8>,
    /// The used entries: (number, first LBA, sectors, type, active).
    pub entries: Vec<(u8, u32, u32, u8, bool)>,
}

/// Reads the MBR back (tests, `mkimage inspect`).
///
/// # Errors
/// When the first sector is not an MBR.
pub fn read<D: Read + Seek>(disk: &mut D) -> Result<Table> {
    let sector_size = u32::try_from(SECTOR).unwrap_or(512);
    let mbr = mbrman::MBR::read_from(disk, sector_size).map_err(mbr_error)?;
    let entries = mbr
        .iter()
        .filter(|(_, e)| e.is_used())
        .map(|(i, e)| (u8::try_from(i).unwrap_or(0), e.starting_lba, e.sectors, e.sys, e.is_active()))
        .collect();
    Ok(Table {
        id: DiskId(u32::from_le_bytes(mbr.header.disk_signature)),
        boot_code: mbr.header.bootstrap_code.to_vec(),
        entries,
    })
}

/// A window onto one partition of a disk image or device, so file-system
/// code (fatfs) can work on it in place.
#[derive(Debug)]
pub struct Region<D> {
    disk: D,
    start: u64,
    len: u64,
    pos: u64,
}

impl<D: Read + Write + Seek> Region<D> {
    /// Partition `number` (1..=4) of `disk`, found through its MBR.
    ///
    /// # Errors
    /// When there is no MBR or no such partition.
    pub fn partition(mut disk: D, number: u8) -> Result<Self> {
        disk.seek(std::io::SeekFrom::Start(0)).map_err(|e| Error::Invalid(format!("disk: {e}")))?;
        let table = read(&mut disk)?;
        let (_, lba, sectors, _, _) = table
            .entries
            .iter()
            .find(|e| e.0 == number)
            .copied()
            .ok_or_else(|| Error::Invalid(format!("the disk has no partition {number}")))?;
        Ok(Self { disk, start: u64::from(lba) * SECTOR, len: u64::from(sectors) * SECTOR, pos: 0 })
    }
}

impl<D: Read + Seek> Read for Region<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.disk.seek(std::io::SeekFrom::Start(self.start + self.pos))?;
        let got = self.disk.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<D: Write + Seek> Write for Region<D> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "past the end of the partition"));
        }
        self.disk.seek(std::io::SeekFrom::Start(self.start + self.pos))?;
        let put = self.disk.write(&buf[..n])?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.disk.flush()
    }
}

impl<D> Seek for Region<D> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(p) => i128::from(p),
            std::io::SeekFrom::End(d) => i128::from(self.len) + i128::from(d),
            std::io::SeekFrom::Current(d) => i128::from(self.pos) + i128::from(d),
        };
        if target < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the partition"));
        }
        self.pos = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::layout::{DEFAULT_DISK_SIZE, TYPE_FAT16_LBA, TYPE_LINUX};

    fn disk() -> (Cursor<Vec<u8>>, Layout) {
        let layout = Layout::for_disk(DEFAULT_DISK_SIZE).unwrap();
        // Only the first MiB matters; mbrman seeks to the end to learn the size.
        let mut disk = Cursor::new(vec![0u8; 4096]);
        disk.get_mut().resize(usize::try_from(layout.disk_size).unwrap(), 0);
        (disk, layout)
    }

    #[test]
    fn writes_four_partitions_that_read_back() {
        let (mut d, layout) = disk();
        let code: Vec<u8> = (0..440u32).map(|i| u8::try_from(i % 251).unwrap()).collect();
        write(&mut d, &layout, DiskId(0xcafe_f00d), &code).unwrap();
        let bytes = d.get_ref();
        assert_eq!(&bytes[510..512], &[0x55, 0xaa], "boot signature");
        assert_eq!(&bytes[440..444], &[0x0d, 0xf0, 0xfe, 0xca], "disk signature at 440");
        assert_eq!(&bytes[..440], code.as_slice());
        d.set_position(0);
        let t = read(&mut d).unwrap();
        assert_eq!(t.id, DiskId(0xcafe_f00d));
        assert_eq!(t.boot_code, code);
        assert_eq!(
            t.entries,
            vec![
                (1, 2048, 64 * 2048, TYPE_FAT16_LBA, true),
                (2, 2048 + 64 * 2048, 256 * 2048, TYPE_LINUX, false),
                (3, 2048 + 320 * 2048, 256 * 2048, TYPE_LINUX, false),
                (4, 2048 + 576 * 2048, u32::try_from(layout.perm.size / 512).unwrap(), TYPE_LINUX, false),
            ]
        );
    }

    #[test]
    fn boot_flag_is_the_0x80_byte_of_entry_one_only() {
        let (mut d, layout) = disk();
        write(&mut d, &layout, DiskId(7), &[0; 440]).unwrap();
        let bytes = d.get_ref();
        let flags: Vec<u8> = (0..4).map(|i| bytes[446 + 16 * i]).collect();
        assert_eq!(flags, vec![0x80, 0, 0, 0]);
    }

    #[test]
    fn rejects_boot_code_of_the_wrong_size() {
        let (mut d, layout) = disk();
        assert!(write(&mut d, &layout, DiskId(7), &[0; 446]).is_err());
    }

    #[test]
    fn region_reads_and_writes_inside_its_partition_only() {
        let (mut d, layout) = disk();
        write(&mut d, &layout, DiskId(7), &[0; 440]).unwrap();
        let mut r = Region::partition(&mut d, 1).unwrap();
        assert_eq!(r.seek(std::io::SeekFrom::End(0)).unwrap(), layout.boot.size);
        r.seek(std::io::SeekFrom::End(-2)).unwrap();
        assert!(r.write_all(b"abc").is_err(), "the third byte would be past the end");
        r.seek(std::io::SeekFrom::Start(0)).unwrap();
        r.write_all(b"hello").unwrap();
        let at = usize::try_from(layout.boot.start).unwrap();
        assert_eq!(&d.get_ref()[at..at + 5], b"hello");
        assert!(Region::partition(&mut d, 5).is_err());
    }

    #[test]
    fn chs_is_exact_below_8_gib_and_saturates_above() {
        let c = chs(2048);
        assert_eq!((c.cylinder, c.head, c.sector), (0, 32, 33));
        let c = chs(u32::MAX);
        assert_eq!((c.cylinder, c.head, c.sector), (1023, 254, 63));
    }
}
