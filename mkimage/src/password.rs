//! The router's one password (HTTP basic auth of every private endpoint,
//! user `router`). It is generated at the first image build for a host name
//! and kept on the build machine, so later images and updates carry the same
//! one: `$XDG_CONFIG_HOME/router7-rs/<hostname>/password` (default
//! `~/.config/...`), mode 0600.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Length of a generated password: 24 characters of 62 ≈ 143 bits.
pub const GENERATED_LEN: usize = 24;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The folder that keeps the build host's state for router `hostname`.
///
/// # Errors
/// When neither `XDG_CONFIG_HOME` nor `HOME` is set.
pub fn config_dir(hostname: &str) -> Result<PathBuf> {
    config_dir_from(std::env::var_os("XDG_CONFIG_HOME"), std::env::var_os("HOME"), hostname)
}

pub(crate) fn config_dir_from(
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
    hostname: &str,
) -> Result<PathBuf> {
    let base = match (xdg_config_home, home) {
        (Some(x), _) if !x.is_empty() => PathBuf::from(x),
        (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".config"),
        _ => return Err(Error::Invalid("neither XDG_CONFIG_HOME nor HOME is set; pass --password-file".into())),
    };
    Ok(base.join("router7-rs").join(hostname))
}

/// A new random password from `random` bytes (rejection sampling keeps every
/// character equally likely); `None` when `random` runs out.
#[must_use]
pub fn generate_from(random: &[u8]) -> Option<String> {
    let limit = 256 - 256 % ALPHABET.len(); // 248: a multiple of 62
    let out: String = random
        .iter()
        .filter(|&&b| usize::from(b) < limit)
        .map(|&b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .take(GENERATED_LEN)
        .collect();
    (out.len() == GENERATED_LEN).then_some(out)
}

fn generate() -> Result<String> {
    let path = Path::new("/dev/urandom");
    let mut random = [0u8; 256];
    fs::File::open(path).and_then(|mut f| f.read_exact(&mut random)).map_err(|e| Error::io(path, e))?;
    // 256 bytes with a 248/256 acceptance rate never run short in practice;
    // if they do, that is an error, not a short password.
    generate_from(&random).ok_or_else(|| Error::Invalid("not enough random bytes for a password".into()))
}

/// Checks a stored password: one line of printable ASCII, 12 to 128 characters.
///
/// # Errors
/// Says what is wrong.
pub fn validate(password: &str) -> Result<()> {
    let len = password.chars().count();
    if !(12..=128).contains(&len) {
        return Err(Error::Invalid(format!("the password must be 12 to 128 characters long, not {len}")));
    }
    if !password.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::Invalid("the password must be printable ASCII without spaces".into()));
    }
    Ok(())
}

/// Where the password came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Password {
    /// The password (no newline).
    pub value: String,
    /// The file it is kept in.
    pub file: PathBuf,
    /// Whether this build generated it.
    pub created: bool,
}

/// Reads the password from `file`, or generates one and stores it there (mode
/// 0600, folders created) when the file does not exist.
///
/// # Errors
/// When the file is unreadable or invalid, or cannot be created.
pub fn load_or_create(file: &Path) -> Result<Password> {
    match fs::read_to_string(file) {
        Ok(text) => {
            let value = text.trim_end_matches(['\n', '\r']).to_owned();
            validate(&value).map_err(|e| Error::Invalid(format!("{}: {e}", file.display())))?;
            Ok(Password { value, file: file.to_owned(), created: false })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = generate()?;
            if let Some(dir) = file.parent() {
                fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                // The folder holds secrets: owner only.
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))?;
            }
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file)
                .map_err(|e| Error::io(file, e))?;
            std::io::Write::write_all(&mut f, format!("{value}\n").as_bytes()).map_err(|e| Error::io(file, e))?;
            f.sync_all().map_err(|e| Error::io(file, e))?;
            Ok(Password { value, file: file.to_owned(), created: true })
        }
        Err(e) => Err(Error::io(file, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_use_the_alphabet_and_skip_biased_bytes() {
        let random: Vec<u8> = (0..=255).collect();
        let p = generate_from(&random).unwrap();
        assert_eq!(p.len(), GENERATED_LEN);
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
        // Bytes 248..=255 are rejected: only they, and too few, give None.
        assert_eq!(generate_from(&[250; 100]), None);
        assert_eq!(generate_from(&[0; 10]), None);
    }

    #[test]
    fn validate_rejects_short_spaced_or_binary_passwords() {
        validate("correct-horse-battery").unwrap();
        assert!(validate("short").is_err());
        assert!(validate("has a space in it").is_err());
        assert!(validate("tab\tinside-the-password").is_err());
    }

    #[test]
    fn creates_once_then_reads_the_same_password() {
        let dir = std::env::temp_dir().join(format!("mkimage-pw-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let file = dir.join("router7/password");
        let first = load_or_create(&file).unwrap();
        assert!(first.created);
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        let second = load_or_create(&file).unwrap();
        assert!(!second.created);
        assert_eq!(first.value, second.value);
        fs::write(&file, "x\n").unwrap();
        assert!(load_or_create(&file).unwrap_err().to_string().contains("12 to 128"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_dir_is_per_hostname_under_xdg_or_home() {
        let d = config_dir_from(None, Some("/root".into()), "router7").unwrap();
        assert_eq!(d, PathBuf::from("/root/.config/router7-rs/router7"));
        let d = config_dir_from(Some("/x".into()), Some("/root".into()), "r2").unwrap();
        assert_eq!(d, PathBuf::from("/x/router7-rs/r2"));
        assert!(config_dir_from(Some("".into()), None, "r").is_err());
    }
}
