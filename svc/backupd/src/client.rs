//! The host side of `mkimage backup` and `mkimage restore`.
//!
//! [`download`] streams `/backup.tar.gz` into `DEST.partial`, checks the
//! whole archive as a restore would (gzip CRC, tar checksums, complete) and
//! only then renames it to `DEST`: a cut connection never leaves something
//! that looks like a backup. [`restore`] checks the archive locally first,
//! then uploads it (`Expect: 100-continue`, so a wrong password is refused
//! before the upload) and returns the router's summary.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::restore::{Limits, Manifest, RestoreError, validate};
use runtime::http_client;

/// Connect, read and write timeout: the router streams as it reads `/perm`.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a download or an upload failed.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, sending, reading or a local file.
    Io(io::Error),
    /// The password was refused (401).
    Unauthorized,
    /// Another answer than expected, with its body.
    Status(u16, String),
    /// The archive (downloaded or to upload) is not a valid backup.
    Archive(RestoreError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Unauthorized => write!(f, "the router refused the password (401)"),
            Self::Status(code, body) => write!(f, "the router answered {code}: {}", body.trim()),
            Self::Archive(e) => write!(f, "not a valid backup: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Where it is.
    pub path: PathBuf,
    /// Its size (compressed).
    pub bytes: u64,
    /// What it holds.
    pub manifest: Manifest,
}

impl Downloaded {
    /// `N bytes; N entries, N bytes of files`, for a line about it.
    #[must_use]
    pub fn summary(&self) -> String {
        format!("{} bytes; {} entries, {} bytes of files", self.bytes, self.manifest.entries.len(), self.manifest.total)
    }
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".partial");
    dest.with_file_name(name)
}

/// Downloads a backup from `addr` (`host` or `host:port`, default 8077) to `dest`.
pub fn download(addr: &str, password: &str, dest: &Path) -> Result<Downloaded, ClientError> {
    let mut ex = http_client::request(addr, crate::PORT, password, "GET", "/backup.tar.gz", None, TIMEOUT)?;
    match ex.head.status {
        200 => {}
        401 => return Err(ClientError::Unauthorized),
        code => return Err(ClientError::Status(code, ex.body.text(4096).unwrap_or_default())),
    }
    let partial = partial_path(dest);
    let result = (|| {
        // 0600: a backup holds the router's password and the leases.
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial)?;
        let bytes = io::copy(&mut ex.body, &mut file)?;
        file.flush()?;
        file.sync_all()?;
        Ok::<u64, io::Error>(bytes)
    })();
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
    };
    let manifest = File::open(&partial)
        .map_err(ClientError::Io)
        .and_then(|f| validate(BufReader::new(f), &Limits::default()).map_err(ClientError::Archive));
    match manifest {
        Ok(manifest) => {
            std::fs::rename(&partial, dest)?;
            Ok(Downloaded { path: dest.to_owned(), bytes, manifest })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Uploads the archive at `archive` to `addr` for a restore; returns the
/// router's summary (JSON) once it has replaced `/perm`.
pub fn restore(addr: &str, password: &str, archive: &Path) -> Result<serde_json::Value, ClientError> {
    let manifest = validate(BufReader::new(File::open(archive)?), &Limits::default()).map_err(ClientError::Archive);
    manifest?;
    let mut file = File::open(archive)?;
    let len = file.metadata()?.len();
    let mut ex =
        http_client::request(addr, crate::PORT, password, "POST", "/restore", Some((&mut file, len)), TIMEOUT)?;
    let body = ex.body.text(1 << 20).unwrap_or_default();
    match ex.head.status {
        200 => serde_json::from_str(&body)
            .map_err(|e| ClientError::Status(200, format!("unreadable summary ({e}): {body}"))),
        401 => Err(ClientError::Unauthorized),
        code => Err(ClientError::Status(code, body)),
    }
}
