//! State files: written atomically, read telling "missing" from "corrupt".
//!
//! A write goes to `.<name>.tmp` in the same folder, is `fsync`ed, renamed over
//! the target, and then the folder is `fsync`ed so the rename itself is durable.
//! A crash at any point leaves either the old file or the new one, never a mix.
//! A leftover temp file from such a crash is simply overwritten by the next write.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong with a state file, with the file named.
#[derive(Debug)]
pub enum StateError {
    /// Reading or writing failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What we were doing.
        op: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// The file exists but is not valid for its format.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem (0 when not known).
        line: usize,
        /// 1-based column of the problem (0 when not known).
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, op, source } => write!(f, "{}: {op}: {source}", path.display()),
            Self::Corrupt { path, line, column, message } => {
                write!(f, "{}:{line}:{column}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Corrupt { .. } => None,
        }
    }
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io { path: path.to_owned(), op, source }
}

/// The temp file a write of `path` goes through.
#[must_use]
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// A fully written and synced temp file, not yet in place.
#[derive(Debug)]
#[must_use = "a prepared write does nothing until committed"]
pub struct PreparedWrite {
    tmp: PathBuf,
    target: PathBuf,
}

impl PreparedWrite {
    /// Renames the temp file over the target and syncs the folder.
    pub fn commit(self) -> Result<(), StateError> {
        fs::rename(&self.tmp, &self.target).map_err(io_err(&self.target, "rename"))?;
        let dir = parent_dir(&self.target);
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "fsync folder"))
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes and syncs the temp file for `path` with `mode` permissions (creating
/// the folder if needed); [`PreparedWrite::commit`] puts it in place.
pub fn prepare(path: &Path, bytes: &[u8], mode: u32) -> Result<PreparedWrite, StateError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(io_err(dir, "create folder"))?;
    let tmp = temp_path(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp, "create"))?;
    f.write_all(bytes).map_err(io_err(&tmp, "write"))?;
    f.sync_all().map_err(io_err(&tmp, "fsync"))?;
    Ok(PreparedWrite { tmp, target: path.to_owned() })
}

/// Atomically replaces `path` with `bytes` (mode 0644).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    prepare(path, bytes, 0o644)?.commit()
}

/// Atomically replaces `path` with `bytes`, readable by the owner only.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    prepare(path, bytes, 0o600)?.commit()
}

/// Atomically writes `value` as JSON indented with tabs (router7's format), plus a newline.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser).map_err(|e| StateError::Io {
        path: path.to_owned(),
        op: "encode JSON",
        source: io::Error::other(e),
    })?;
    out.push(b'\n');
    write_atomic(path, &out)
}

/// Reads a file; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, "read")(e)),
    }
}

/// Reads JSON; `Ok(None)` when the file does not exist, [`StateError::Corrupt`]
/// with line and column when it does not parse.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    let Some(bytes) = read(path)? else {
        return Ok(None);
    };
    parse_json(path, &bytes).map(Some)
}

/// Parses JSON read from `path`, naming the file, line and column on error.
pub fn parse_json<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Why a service's optional settings file (`<perm>/<name>/config.json`) was
/// not accepted: it does not parse, or a value is out of range.
#[derive(Debug)]
pub enum ConfigError {
    /// It does not parse (file, line, column inside).
    File(StateError),
    /// A value is out of range.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(e) => write!(f, "{e}"),
            Self::Invalid { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Lease {
        client_ip: String,
        dns: Vec<String>,
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("rt-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn round_trips_json_with_tabs_and_creates_folders() {
        let dir = tmpdir("rt");
        let path = dir.join("dhcp4/wire/lease.json");
        let lease = Lease { client_ip: "85.195.207.62".into(), dns: vec!["77.109.128.2".into()] };
        write_json(&path, &lease).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\n\t\"client_ip\""), "{text}");
        assert_eq!(read_json::<Lease>(&path).unwrap(), Some(lease));
        assert!(!temp_path(&path).exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_is_none_and_corrupt_names_line_and_column() {
        let dir = tmpdir("corrupt");
        let path = dir.join("lease.json");
        assert!(read_json::<Lease>(&path).unwrap().is_none());
        fs::write(&path, "{\n\t\"client_ip\": \"1.2.3.4\",\n\t\"dns\": [1,\n}").unwrap();
        match read_json::<Lease>(&path) {
            Err(StateError::Corrupt { line, column, path: p, .. }) => {
                assert_eq!((line, column), (3, 10));
                assert_eq!(p, path);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let shown = read_json::<Lease>(&path).unwrap_err().to_string();
        assert!(shown.contains("lease.json:3:10"), "{shown}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmpdir("mode");
        let path = dir.join("password");
        write_atomic_private(&path, b"secret").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(dir).unwrap();
    }

    /// Runs in a child process: prepares a new version, then dies before the
    /// rename, as a power cut or a kill -9 would.
    #[test]
    fn crash_helper_dies_between_write_and_rename() {
        let Ok(path) = std::env::var("RT_STATEFILE_CRASH_PATH") else {
            return;
        };
        let prepared = prepare(Path::new(&path), b"{\"client_ip\":\"10.9.9.9\",\"dns\":[]}", 0o644).unwrap();
        std::mem::forget(prepared);
        std::process::abort();
    }

    #[test]
    fn a_crash_between_write_and_rename_leaves_the_old_file_intact() {
        let dir = tmpdir("crash");
        let path = dir.join("lease.json");
        let old = Lease { client_ip: "192.0.2.1".into(), dns: vec![] };
        write_json(&path, &old).unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "statefile::tests::crash_helper_dies_between_write_and_rename", "--nocapture"])
            .env("RT_STATEFILE_CRASH_PATH", &path)
            .status()
            .unwrap();
        assert!(!status.success(), "the helper must have died");
        assert!(temp_path(&path).exists(), "the helper got as far as the temp file");
        assert_eq!(read_json::<Lease>(&path).unwrap(), Some(old), "the old file is intact");
        let new = Lease { client_ip: "192.0.2.2".into(), dns: vec![] };
        write_json(&path, &new).unwrap();
        assert_eq!(read_json::<Lease>(&path).unwrap(), Some(new), "the next write replaces the leftover temp file");
        assert!(!temp_path(&path).exists());
        fs::remove_dir_all(dir).unwrap();
    }
}
