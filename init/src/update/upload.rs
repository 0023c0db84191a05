//! An upload's checks and its copy: the length must be declared and fit, the
//! first bytes must look like what the part is (a SquashFS root, a bzImage
//! kernel), and every byte is hashed (SHA-256) on its way to the disk. A body
//! that ends before its declared length is an error, never a short write that
//! looks complete.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::slots::PartKind;

/// Bytes copied per read.
pub const CHUNK: usize = 1 << 20;

/// Why an upload was refused or failed.
#[derive(Debug)]
pub enum UploadError {
    /// No `Content-Length` (chunked bodies are refused: the size must be known first).
    LengthRequired,
    /// Zero bytes.
    Empty,
    /// More than the part can hold.
    TooLarge {
        /// Declared.
        declared: u64,
        /// Allowed.
        max: u64,
    },
    /// The first bytes are not what the part must be.
    Invalid(String),
    /// The body ended early: the client went away or was cut off.
    Short {
        /// Received.
        got: u64,
        /// Declared.
        want: u64,
        /// What reading said, if it failed rather than ended.
        error: Option<String>,
    },
    /// Writing failed.
    Write(io::Error),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LengthRequired => f.write_str("Content-Length is required (the size must be known before writing)"),
            Self::Empty => f.write_str("the body is empty"),
            Self::TooLarge { declared, max } => write!(f, "{declared} bytes do not fit: at most {max}"),
            Self::Invalid(why) => f.write_str(why),
            Self::Short { got, want, error } => {
                write!(f, "upload cut off after {got} of {want} bytes")?;
                if let Some(e) = error {
                    write!(f, " ({e})")?;
                }
                Ok(())
            }
            Self::Write(e) => write!(f, "writing failed: {e}"),
        }
    }
}

impl UploadError {
    /// The HTTP status for this refusal.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::LengthRequired => 411,
            Self::Empty | Self::Short { .. } => 400,
            Self::TooLarge { .. } => 413,
            Self::Invalid(_) => 422,
            Self::Write(_) => 500,
        }
    }
}

/// Checks the declared length against the part's room.
///
/// # Errors
/// When there is none, it is zero, or it does not fit.
pub fn check_length(declared: Option<u64>, max: u64) -> Result<u64, UploadError> {
    match declared {
        None => Err(UploadError::LengthRequired),
        Some(0) => Err(UploadError::Empty),
        Some(n) if n > max => Err(UploadError::TooLarge { declared: n, max }),
        Some(n) => Ok(n),
    }
}

fn u64_le(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        u64::from_le_bytes(w)
    })
}

/// Whether the first bytes of an upload of `length` bytes can be `part`:
/// - root: a SquashFS superblock (magic `hsqs`) whose `bytes_used` fits in the
///   upload (a truncated image is refused);
/// - kernel: an x86 bzImage (boot flag `0xAA55` at 510, `HdrS` at 514), the
///   only format the loader and kexec take.
///
/// # Errors
/// Why not.
pub fn check_head(part: PartKind, head: &[u8], length: u64) -> Result<(), String> {
    match part {
        PartKind::Root => {
            if head.get(..4) != Some(b"hsqs") {
                return Err("the root image is not a SquashFS (no hsqs magic)".into());
            }
            let used = u64_le(head, 40).ok_or("the root image is shorter than a SquashFS superblock")?;
            if used > length {
                return Err(format!("the SquashFS says it has {used} bytes but the upload has {length}: truncated"));
            }
            Ok(())
        }
        PartKind::Kernel => {
            if head.len() < 518 || head[510..512] != [0x55, 0xaa] || &head[514..518] != b"HdrS" {
                return Err("the kernel is not an x86 bzImage (no boot flag and HdrS header)".into());
            }
            // The real-mode setup (setup_sects sectors, 0 meaning 4, plus the
            // boot sector) and the protected-mode part (syssize paragraphs).
            let setup = match head[0x1f1] {
                0 => 4,
                n => u64::from(n),
            };
            let syssize = u64::from(u32::from_le_bytes([head[0x1f4], head[0x1f5], head[0x1f6], head[0x1f7]]));
            let needed = (setup + 1) * 512 + syssize * 16;
            if needed > length {
                return Err(format!("the bzImage says it has {needed} bytes but the upload has {length}: truncated"));
            }
            Ok(())
        }
    }
}

/// Reads until `buf` is full or the body ends; how many bytes came.
fn fill(src: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Copies exactly `length` bytes of `part` from `src` to `dst`, checking the
/// first bytes before writing anything; the hex SHA-256 of what was written.
///
/// # Errors
/// When the head is wrong, the body ends early, or writing fails. Some bytes
/// may have been written by then: the caller marks the part missing.
pub fn copy(part: PartKind, src: &mut dyn Read, dst: &mut dyn Write, length: u64) -> Result<String, UploadError> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done: u64 = 0;
    let mut first = true;
    while done < length {
        let want = usize::try_from((length - done).min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = fill(src, &mut buf[..want]).map_err(|e| UploadError::Short {
            got: done,
            want: length,
            error: Some(e.to_string()),
        })?;
        if first {
            check_head(part, &buf[..n], length).map_err(UploadError::Invalid)?;
            first = false;
        }
        if n == 0 {
            return Err(UploadError::Short { got: done, want: length, error: None });
        }
        dst.write_all(&buf[..n]).map_err(UploadError::Write)?;
        hash.update(&buf[..n]);
        done += n as u64;
        if n < want {
            return Err(UploadError::Short { got: done, want: length, error: None });
        }
    }
    Ok(hex(&hash.finalize()))
}

/// Lower-case hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SquashFS head claiming `used` bytes, padded to `len`.
    pub(crate) fn squashfs(len: usize, used: u64) -> Vec<u8> {
        let mut v = vec![0x11u8; len];
        v[..4].copy_from_slice(b"hsqs");
        v[40..48].copy_from_slice(&used.to_le_bytes());
        v
    }

    /// A bzImage head whose setup and payload fill `len` bytes exactly.
    pub(crate) fn bzimage(len: usize) -> Vec<u8> {
        let mut v = vec![0x22u8; len];
        v[0x1f1] = 3;
        let syssize = u32::try_from((len - 4 * 512) / 16).unwrap();
        v[0x1f4..0x1f8].copy_from_slice(&syssize.to_le_bytes());
        v[510] = 0x55;
        v[511] = 0xaa;
        v[514..518].copy_from_slice(b"HdrS");
        v
    }

    #[test]
    fn lengths_must_be_declared_nonzero_and_fit() {
        assert!(matches!(check_length(None, 10), Err(UploadError::LengthRequired)));
        assert!(matches!(check_length(Some(0), 10), Err(UploadError::Empty)));
        let e = check_length(Some(11), 10).unwrap_err();
        assert_eq!((e.status(), e.to_string()), (413, "11 bytes do not fit: at most 10".into()));
        assert_eq!(check_length(Some(10), 10).unwrap(), 10);
    }

    #[test]
    fn only_squashfs_roots_and_bzimage_kernels_pass() {
        assert!(check_head(PartKind::Root, &squashfs(100, 100), 100).is_ok());
        assert!(check_head(PartKind::Root, &squashfs(100, 101), 100).unwrap_err().contains("truncated"));
        assert!(check_head(PartKind::Root, b"\x7fELF....", 100).unwrap_err().contains("not a SquashFS"));
        assert!(check_head(PartKind::Root, b"hsqs", 100).is_err());
        assert!(check_head(PartKind::Kernel, &bzimage(4096), 4096).is_ok());
        assert!(check_head(PartKind::Kernel, &bzimage(4096), 4095).unwrap_err().contains("truncated"));
        let mut no_setup_count = bzimage(4096);
        no_setup_count[0x1f1] = 0; // 0 means 4 sectors: one more than said
        assert!(check_head(PartKind::Kernel, &no_setup_count, 4096).unwrap_err().contains("4608 bytes"));
        assert!(check_head(PartKind::Kernel, &squashfs(1024, 1), 1024).unwrap_err().contains("bzImage"));
    }

    #[test]
    fn copies_and_hashes_every_byte() {
        let data = squashfs(3 * CHUNK + 17, 10);
        let mut out = Vec::new();
        let sha = copy(PartKind::Root, &mut data.as_slice(), &mut out, data.len() as u64).unwrap();
        assert_eq!(out, data);
        assert_eq!(sha, hex(&Sha256::digest(&data)));
        // The well-known digest of "abc" proves the hex and the hash.
        assert_eq!(hex(&Sha256::digest(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn a_body_that_ends_early_is_an_error_not_a_short_success() {
        let data = squashfs(CHUNK + 100, 10);
        let mut out = Vec::new();
        let err = copy(PartKind::Root, &mut &data[..CHUNK / 2], &mut out, data.len() as u64).unwrap_err();
        assert_eq!(err.to_string(), format!("upload cut off after {} of {} bytes", CHUNK / 2, data.len()));
        assert_eq!(err.status(), 400);
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        let err = copy(PartKind::Kernel, &mut Broken, &mut out, 10).unwrap_err();
        assert!(err.to_string().contains("after 0 of 10 bytes (reset)"), "{err}");
    }

    #[test]
    fn a_wrong_head_writes_nothing() {
        let data = bzimage(10_000);
        let mut out = Vec::new();
        let err = copy(PartKind::Root, &mut data.as_slice(), &mut out, data.len() as u64).unwrap_err();
        assert_eq!(err.status(), 422);
        assert!(out.is_empty());
    }
}
