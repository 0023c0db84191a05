//! Checks on what goes into the image: every binary must be a static x86-64
//! ELF (the image has no shared libraries; a dynamic binary would fail at
//! start on the device), the kernel must be an x86 bzImage, and binaries that
//! are still the placeholders of crates not implemented yet are recognised so
//! the image leaves them out (and the end-to-end test says so).

use std::path::Path;

use crate::error::{Error, Result};

/// What the placeholder `main` of a service not implemented yet prints before
/// it exits 125 (svc/<name>/src/main.rs until its issue lands).
pub const SERVICE_PLACEHOLDER: &[u8] = b"is not implemented yet; exiting 125";
/// What the placeholder init prints (init/src/main.rs until issue #9 lands).
pub const INIT_PLACEHOLDER: &[u8] = b"init: not implemented yet";

const PT_INTERP: u32 = 3;
const EM_X86_64: u16 = 62;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Checks that `data` is a 64-bit little-endian x86-64 ELF executable without
/// a program interpreter (`PT_INTERP`), i.e. static or static-pie.
///
/// # Errors
/// Says what is wrong, naming `what`.
pub fn check_static_elf(what: &str, data: &[u8]) -> Result<()> {
    let bad = |why: &str| Error::Invalid(format!("{what}: {why}"));
    if data.get(..4) != Some(b"\x7fELF") {
        return Err(bad("not an ELF file"));
    }
    if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Err(bad("not a 64-bit little-endian ELF file"));
    }
    if u16_at(data, 18) != Some(EM_X86_64) {
        return Err(bad("not an x86-64 binary"));
    }
    let phoff = u64_at(data, 32).ok_or_else(|| bad("truncated ELF header"))?;
    let phentsize = u16_at(data, 54).ok_or_else(|| bad("truncated ELF header"))?;
    let phnum = u16_at(data, 56).ok_or_else(|| bad("truncated ELF header"))?;
    for i in 0..u64::from(phnum) {
        let at = phoff
            .checked_add(i * u64::from(phentsize))
            .and_then(|a| usize::try_from(a).ok())
            .ok_or_else(|| bad("program header out of range"))?;
        let kind = u32_at(data, at).ok_or_else(|| bad("program header out of range"))?;
        if kind == PT_INTERP {
            return Err(bad("dynamically linked (it has a program interpreter); build it with ci/build-static"));
        }
    }
    Ok(())
}

/// Whether `data` contains `marker`.
#[must_use]
pub fn contains(data: &[u8], marker: &[u8]) -> bool {
    !marker.is_empty() && data.windows(marker.len()).any(|w| w == marker)
}

/// Checks that `data` is an x86 bzImage that can boot 64-bit and be loaded by
/// `kexec_file_load` (relocatable, boot protocol 2.12+ with XLF_KERNEL_64).
///
/// # Errors
/// Says what is wrong.
pub fn check_bzimage(data: &[u8]) -> Result<()> {
    let bad = |why: &str| Error::Invalid(format!("kernel: {why}"));
    // Boot protocol (Documentation/arch/x86/boot.rst): "HdrS" at 0x202,
    // version at 0x206, loadflags at 0x211, relocatable_kernel at 0x234,
    // xloadflags at 0x236.
    if data.get(0x202..0x206) != Some(b"HdrS") {
        return Err(bad("not a bzImage (no HdrS header)"));
    }
    let version = u16_at(data, 0x206).ok_or_else(|| bad("truncated header"))?;
    if version < 0x020c {
        return Err(bad(&format!("boot protocol {version:#x} is older than 2.12")));
    }
    if data.get(0x211).is_none_or(|f| f & 1 == 0) {
        return Err(bad("not loaded high (not a bzImage)"));
    }
    if data.get(0x234) != Some(&1) {
        return Err(bad("not relocatable (CONFIG_RELOCATABLE is off; kexec_file_load needs it)"));
    }
    if u16_at(data, 0x236).is_none_or(|x| x & 1 == 0) {
        return Err(bad("not a 64-bit kernel (XLF_KERNEL_64 unset)"));
    }
    Ok(())
}

/// Reads a file, naming it on error.
///
/// # Errors
/// When it cannot be read.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 x86-64 executable image with the given program header
    /// types, followed by `tail` (for marker tests).
    pub(crate) fn elf(program_headers: &[u32], tail: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // 64-bit
        b[5] = 1; // little endian
        b[6] = 1;
        b[16] = 2; // ET_EXEC
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        b[56..58].copy_from_slice(&u16::try_from(program_headers.len()).unwrap().to_le_bytes());
        for kind in program_headers {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&kind.to_le_bytes());
            b.extend_from_slice(&ph);
        }
        b.extend_from_slice(tail);
        b
    }

    pub(crate) fn bzimage() -> Vec<u8> {
        let mut k = vec![0u8; 0x1000];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        k[0x211] = 1;
        k[0x234] = 1;
        k[0x236..0x238].copy_from_slice(&0x7fu16.to_le_bytes());
        k
    }

    #[test]
    fn static_and_static_pie_pass() {
        // PT_LOAD (1), PT_DYNAMIC (2, static-pie has it), PT_GNU_STACK.
        check_static_elf("x", &elf(&[1, 2, 0x6474_e551], b"")).unwrap();
    }

    #[test]
    fn dynamic_binaries_are_refused() {
        let err = check_static_elf("dnsd", &elf(&[6, 3, 1], b"")).unwrap_err().to_string();
        assert!(err.contains("dnsd") && err.contains("dynamically linked"), "{err}");
    }

    #[test]
    fn non_elf_and_foreign_elf_are_refused() {
        assert!(check_static_elf("x", b"#!/bin/sh\n").is_err());
        let mut arm = elf(&[1], b"");
        arm[18] = 183; // aarch64
        assert!(check_static_elf("x", &arm).is_err());
        let mut short = elf(&[1], b"");
        short[56] = 9; // more program headers than there are bytes
        assert!(check_static_elf("x", &short).is_err());
    }

    #[test]
    fn placeholders_are_recognised_by_their_message() {
        let placeholder = elf(&[1], b"...dhcp4 is not implemented yet; exiting 125 so it is not restarted");
        assert!(contains(&placeholder, SERVICE_PLACEHOLDER));
        assert!(!contains(&elf(&[1], b"dhcp4: lease bound"), SERVICE_PLACEHOLDER));
        assert!(contains(b"xx init: not implemented yet (issue #9)", INIT_PLACEHOLDER));
    }

    #[test]
    fn bzimage_header_is_checked() {
        check_bzimage(&bzimage()).unwrap();
        let mut k = bzimage();
        k[0x234] = 0;
        assert!(check_bzimage(&k).unwrap_err().to_string().contains("relocatable"));
        assert!(check_bzimage(&elf(&[1], b"")).is_err());
    }

    /// The real thing: the placeholder messages must match the crates' sources,
    /// or a landed service would be mistaken for a placeholder (or the reverse).
    #[test]
    fn placeholder_markers_match_the_placeholder_sources() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let sources: Vec<(String, String)> = ["svc/dhcp4", "svc/dnsd", "init"]
            .iter()
            .filter_map(|c| Some((c.to_string(), std::fs::read_to_string(root.join(c).join("src/main.rs")).ok()?)))
            .collect();
        for (crate_dir, src) in sources {
            let says_placeholder = src.contains("not implemented yet");
            if crate_dir == "init" {
                if says_placeholder {
                    assert!(contains(src.as_bytes(), INIT_PLACEHOLDER), "init placeholder text changed");
                }
            } else if src.contains("exiting 125") && says_placeholder {
                assert!(contains(src.as_bytes(), SERVICE_PLACEHOLDER), "{crate_dir}: placeholder text changed");
            }
        }
    }
}
