//! Our DHCP Unique Identifier (RFC 8415 §11).
//!
//! `/perm/dhcp6/duid` holds it as raw bytes and is sent byte for byte: fiber7
//! binds the static /48 to it, and router7 users' files start with an odd
//! `00 0a` (a stray length that became the DUID type) which must be kept. When
//! the file is absent we make a DUID-LL (§11.4) from the uplink's MAC once and
//! store it, so the prefix survives restarts (router7 made a new DUID-LLT on
//! every start). Reading and writing the file is the shell's job.

use std::fmt;
use std::path::{Path, PathBuf};

/// The longest DUID: a 2-byte type and up to 128 bytes (§11.1).
pub const MAX_LEN: usize = 130;

/// `<perm>/dhcp6/duid`.
#[must_use]
pub fn path(perm: &Path) -> PathBuf {
    perm.join("dhcp6/duid")
}

/// DUID-LL (type 3) for an Ethernet MAC (hardware type 1, §11.4).
#[must_use]
pub fn link_layer(mac: [u8; 6]) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(&mac);
    d
}

/// Why the DUID file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDuid {
    /// Its length.
    pub len: usize,
}

impl fmt::Display for InvalidDuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a DUID is 3 to {MAX_LEN} bytes, this one has {}", self.len)
    }
}

impl std::error::Error for InvalidDuid {}

/// Checks the file's bytes: anything from 3 to [`MAX_LEN`] bytes is sent as
/// it is (its type is not checked: fiber7's starts with `00 0a`).
pub fn check(bytes: &[u8]) -> Result<(), InvalidDuid> {
    if (3..=MAX_LEN).contains(&bytes.len()) { Ok(()) } else { Err(InvalidDuid { len: bytes.len() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_duid_ll_from_the_mac() {
        assert_eq!(link_layer([2, 0x73, 0x53, 0, 0xca, 0xfe]), [0, 3, 0, 1, 2, 0x73, 0x53, 0, 0xca, 0xfe]);
    }

    #[test]
    fn accepts_fiber7s_odd_duid_and_rejects_empty_or_huge_ones() {
        assert!(check(&[0, 0x0a, 0, 3, 0, 1, 0x4c, 0x5e, 0x0c, 0x41, 0xbf, 0x39]).is_ok());
        assert_eq!(check(&[]), Err(InvalidDuid { len: 0 }));
        assert!(check(&[0; 131]).is_err());
    }
}
