//! `/perm/dhcp6/config.json`: our optional settings. Absent means router7's
//! behaviour (ask for an address and a prefix, no length hint). Parsed
//! strictly: an unknown field is an error, so a typo is reported instead of
//! silently ignored.
//!
//! ```json
//! {"request_address": true, "prefix_length_hint": 56}
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Ask for an address (IA_NA) as well as the prefix; default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_address: Option<bool>,
    /// Ask for a prefix of this length (`::/len` in the IA_PD), e.g. 48 or 56.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length_hint: Option<u8>,
}

/// The validated settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Ask for an address too.
    pub request_address: bool,
    /// A prefix length to ask for.
    pub prefix_length_hint: Option<u8>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { request_address: true, prefix_length_hint: None }
    }
}

pub use runtime::statefile::ConfigError;

/// `<perm>/dhcp6/config.json`.
#[must_use]
pub fn path(perm: &Path) -> PathBuf {
    perm.join("dhcp6/config.json")
}

impl Settings {
    /// Validates a parsed file.
    pub fn from_file(file: &ConfigFile, path: &Path) -> Result<Self, ConfigError> {
        if let Some(len) = file.prefix_length_hint
            && !(1..=128).contains(&len)
        {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!("prefix_length_hint {len} is not a prefix length (1..=128)"),
            });
        }
        Ok(Self { request_address: file.request_address.unwrap_or(true), prefix_length_hint: file.prefix_length_hint })
    }

    /// Parses and validates the file's bytes.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ConfigError> {
        let file: ConfigFile = runtime::statefile::parse_json(path, bytes).map_err(ConfigError::File)?;
        Self::from_file(&file, path)
    }

    /// Reads `<perm>/dhcp6/config.json`; defaults when it does not exist.
    pub fn load(perm: &Path) -> Result<Self, ConfigError> {
        let p = path(perm);
        match runtime::statefile::read(&p).map_err(ConfigError::File)? {
            None => Ok(Self::default()),
            Some(bytes) => Self::parse(&p, &bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_router7s() {
        let s = Settings::parse(Path::new("c.json"), b"{}").unwrap();
        assert_eq!(s, Settings { request_address: true, prefix_length_hint: None });
        let s = Settings::parse(Path::new("c.json"), br#"{"request_address":false,"prefix_length_hint":56}"#).unwrap();
        assert_eq!(s, Settings { request_address: false, prefix_length_hint: Some(56) });
    }

    #[test]
    fn rejects_unknown_fields_with_line_and_column() {
        let e = Settings::parse(Path::new("/perm/dhcp6/config.json"), b"{\n  \"prefix_lenght_hint\": 56\n}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json:2:") && e.contains("unknown field"), "{e}");
    }

    #[test]
    fn rejects_impossible_lengths() {
        for bad in [br#"{"prefix_length_hint":0}"#.as_slice(), br#"{"prefix_length_hint":129}"#] {
            assert!(matches!(Settings::parse(Path::new("c.json"), bad), Err(ConfigError::Invalid { .. })));
        }
        assert!(matches!(
            Settings::parse(Path::new("c.json"), br#"{"prefix_length_hint":300}"#),
            Err(ConfigError::File(_))
        ));
    }
}
