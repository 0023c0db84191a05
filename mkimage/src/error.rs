//! The one error type of mkimage's library: what went wrong, with the file,
//! program or value a person needs to fix it.

use std::fmt;
use std::path::PathBuf;

/// Everything that can fail while building or running an image.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file or device.
    Io {
        /// The file or device.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// An external program (syslinux, mkfs.ext4, debugfs, qemu) failed.
    Tool {
        /// The program and its arguments.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on stderr (trimmed).
        stderr: String,
    },
    /// An input is not what the image needs (a dynamic binary, a bad size, …).
    Invalid(String),
    /// Something does not fit where it has to go.
    TooLarge {
        /// What.
        what: String,
        /// Its size in bytes.
        size: u64,
        /// The room there is.
        limit: u64,
    },
    /// The SquashFS writer failed.
    SquashFs(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Tool { command, status, stderr } => {
                write!(f, "`{command}` failed ({status})")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            Self::Invalid(why) => f.write_str(why),
            Self::TooLarge { what, size, limit } => {
                write!(f, "{what} is {size} bytes, but only {limit} bytes fit")
            }
            Self::SquashFs(why) => write!(f, "SquashFS: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
