//! backupd: backups of `/perm` as a gzip'd tar streamed over HTTP, and
//! restores that check the whole archive before changing anything.
//!
//! The library holds the parts without sockets: the tar format ([`tar`]),
//! the backup stream ([`archive`]), validation and application of restores
//! ([`restore`]), and the host tool's client ([`client`]). The binary serves
//! them on private:8077 with the router password.
//!
//! router7's backupd had no authentication, read each file whole into memory
//! and had no restore endpoint (its recovery initramfs restored).
#![forbid(unsafe_code)]

pub mod archive;
pub mod client;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod restore;
pub mod tar;

/// backupd's port.
pub const PORT: u16 = 8077;
