//! The service manifest on the root file system, `/etc/router/services.json`,
//! which mkimage writes: what init starts, with which arguments, environment,
//! user, groups and capabilities.
//!
//! Parsed strictly (unknown fields are errors, with file, line and column) and
//! validated once into [`Manifest`]; the shell never re-checks. Root is refused
//! unless a service says `"run_as_root": true` (meant for a named exception such
//! as backupd's restore), so a typo cannot quietly run a service as root.
//!
//! ```json
//! {"shared_gid":1000,"password_gid":1010,
//!  "services":[{"name":"dhcp4","path":"/svc/dhcp4","args":["--uplink","uplink0"],
//!   "env":{"KEY":"VALUE"},"uid":1001,"gid":1001,"groups":[1000],
//!   "capabilities":["NET_RAW","KILL"]}]}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// Lines kept in memory per service when the manifest does not say.
pub const DEFAULT_LOG_LINES: usize = 2000;
/// The group every service shares by default (`/run/router`; also the
/// password file's unless `password_gid` names another).
pub const DEFAULT_SHARED_GID: u32 = 1000;
/// Log lines a manifest may ask for, per service.
pub const LOG_LINES_RANGE: std::ops::RangeInclusive<usize> = 100..=100_000;
/// Names init uses for its own log rings; no service may take them.
pub const RESERVED_NAMES: &[&str] = &["init", "kernel"];

/// Linux capability names (without `CAP_`) and numbers, from `linux/capability.h`.
pub const CAPABILITIES: &[(&str, u32)] = &[
    ("CHOWN", 0),
    ("DAC_OVERRIDE", 1),
    ("DAC_READ_SEARCH", 2),
    ("FOWNER", 3),
    ("FSETID", 4),
    ("KILL", 5),
    ("SETGID", 6),
    ("SETUID", 7),
    ("SETPCAP", 8),
    ("LINUX_IMMUTABLE", 9),
    ("NET_BIND_SERVICE", 10),
    ("NET_BROADCAST", 11),
    ("NET_ADMIN", 12),
    ("NET_RAW", 13),
    ("IPC_LOCK", 14),
    ("IPC_OWNER", 15),
    ("SYS_MODULE", 16),
    ("SYS_RAWIO", 17),
    ("SYS_CHROOT", 18),
    ("SYS_PTRACE", 19),
    ("SYS_PACCT", 20),
    ("SYS_ADMIN", 21),
    ("SYS_BOOT", 22),
    ("SYS_NICE", 23),
    ("SYS_RESOURCE", 24),
    ("SYS_TIME", 25),
    ("SYS_TTY_CONFIG", 26),
    ("MKNOD", 27),
    ("LEASE", 28),
    ("AUDIT_WRITE", 29),
    ("AUDIT_CONTROL", 30),
    ("SETFCAP", 31),
    ("MAC_OVERRIDE", 32),
    ("MAC_ADMIN", 33),
    ("SYSLOG", 34),
    ("WAKE_ALARM", 35),
    ("BLOCK_SUSPEND", 36),
    ("AUDIT_READ", 37),
    ("PERFMON", 38),
    ("BPF", 39),
    ("CHECKPOINT_RESTORE", 40),
];

/// The number of capability `name` (`NET_RAW`, or `CAP_NET_RAW`).
#[must_use]
pub fn capability_number(name: &str) -> Option<u32> {
    let bare = name.strip_prefix("CAP_").unwrap_or(name);
    CAPABILITIES.iter().find(|(n, _)| *n == bare).map(|&(_, v)| v)
}

/// The file as written: every field named, nothing else accepted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    services: Vec<ServiceFile>,
    #[serde(default)]
    shared_gid: Option<u32>,
    #[serde(default)]
    password_gid: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    name: String,
    path: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    uid: u32,
    gid: u32,
    #[serde(default)]
    groups: Vec<u32>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    log_lines: Option<usize>,
    #[serde(default)]
    autostart: Option<bool>,
    #[serde(default)]
    run_as_root: bool,
}

/// One service, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Unique name: `[a-z0-9_-]{1,32}`; also its `/perm/<name>`, `/run/<name>.pid`.
    pub name: String,
    /// Absolute path of the binary.
    pub path: PathBuf,
    /// Arguments from the manifest (see [`ServiceSpec::command_args`]).
    pub args: Vec<String>,
    /// Extra environment; init also sets `HOME` and `PATH`.
    pub env: BTreeMap<String, String>,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Capability names as given, upper case without `CAP_`.
    pub capabilities: Vec<String>,
    /// The same as a bit mask (`1 << number`).
    pub capability_mask: u64,
    /// Lines kept in memory.
    pub log_lines: usize,
    /// Whether init starts it at boot (a stopped one can be started by hand).
    pub autostart: bool,
}

impl ServiceSpec {
    /// The arguments init passes: the manifest's, plus `--perm` and `--run`
    /// unless the manifest sets them.
    #[must_use]
    pub fn command_args(&self, perm: &Path, run: &Path) -> Vec<String> {
        let mut args = self.args.clone();
        let has = |flag: &str| self.args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
        if !has("--perm") {
            args.push("--perm".into());
            args.push(perm.display().to_string());
        }
        if !has("--run") {
            args.push("--run".into());
            args.push(run.display().to_string());
        }
        args
    }
}

/// The validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// In file order, which is also start order.
    pub services: Vec<ServiceSpec>,
    /// The group of `/run/router`, where every service creates its socket.
    pub shared_gid: u32,
    /// The group that may read the password file (`password_gid`, default
    /// `shared_gid`): only the services that check the password themselves
    /// need to be in it.
    pub password_gid: u32,
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// Not JSON, or a field unknown or of the wrong type.
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde said.
        message: String,
    },
    /// Well-formed but not acceptable.
    Invalid {
        /// The file.
        path: PathBuf,
        /// The service concerned, when there is one.
        service: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse { path, line, column, message } => {
                write!(f, "{}:{line}:{column}: {message}", path.display())
            }
            Self::Invalid { path, service: Some(s), message } => {
                write!(f, "{}: service {s:?}: {message}", path.display())
            }
            Self::Invalid { path, service: None, message } => write!(f, "{}: {message}", path.display()),
            Self::Read { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

impl std::error::Error for ManifestError {}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with('-')
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let bytes =
            std::fs::read(path).map_err(|e| ManifestError::Read { path: path.to_owned(), message: e.to_string() })?;
        Self::parse(path, &bytes)
    }

    /// Parses and validates `bytes` read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ManifestError> {
        let file: ManifestFile = serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let invalid = |service: Option<&str>, message: String| ManifestError::Invalid {
            path: path.to_owned(),
            service: service.map(str::to_owned),
            message,
        };
        let shared_gid = file.shared_gid.unwrap_or(DEFAULT_SHARED_GID);
        let password_gid = file.password_gid.unwrap_or(shared_gid);
        for (what, gid) in [("shared_gid", shared_gid), ("password_gid", password_gid)] {
            if gid == 0 || gid == u32::MAX {
                return Err(invalid(None, format!("{what} {gid} is not allowed")));
            }
        }
        let mut names = BTreeSet::new();
        let mut services = Vec::with_capacity(file.services.len());
        for s in file.services {
            let name = s.name.clone();
            let bad = |message: String| invalid(Some(&name), message);
            if !valid_name(&s.name) {
                return Err(bad("names are 1-32 characters of a-z, 0-9, - and _".into()));
            }
            if RESERVED_NAMES.contains(&s.name.as_str()) {
                return Err(bad("this name is init's own".into()));
            }
            if !names.insert(s.name.clone()) {
                return Err(bad("listed twice".into()));
            }
            let path = PathBuf::from(&s.path);
            if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(bad(format!("path {:?} must be absolute, without ..", s.path)));
            }
            if s.path.contains('\0') || s.args.iter().any(|a| a.contains('\0')) {
                return Err(bad("NUL bytes in path or arguments".into()));
            }
            for (k, v) in &s.env {
                if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                    return Err(bad(format!("environment variable {k:?} is not valid")));
                }
                if k == "HOME" {
                    return Err(bad("HOME is set by init (/perm/<name>)".into()));
                }
            }
            for (what, id) in [("uid", s.uid), ("gid", s.gid)] {
                if id == u32::MAX || id == 65535 {
                    return Err(bad(format!("{what} {id} is not a usable id")));
                }
                if id == 0 && !s.run_as_root {
                    return Err(bad(format!("{what} 0 (root) needs \"run_as_root\": true")));
                }
            }
            if s.run_as_root && s.uid != 0 {
                return Err(bad("\"run_as_root\" is set but uid is not 0".into()));
            }
            let mut groups = Vec::new();
            for g in s.groups {
                if g == 0 && !s.run_as_root {
                    return Err(bad("group 0 (root) needs \"run_as_root\": true".into()));
                }
                if g == u32::MAX || groups.contains(&g) {
                    return Err(bad(format!("group {g} is listed twice or not usable")));
                }
                groups.push(g);
            }
            let mut capability_mask = 0u64;
            let mut capabilities = Vec::new();
            for c in s.capabilities {
                let Some(n) = capability_number(&c) else {
                    return Err(bad(format!("unknown capability {c:?}")));
                };
                let bare = c.strip_prefix("CAP_").unwrap_or(&c).to_owned();
                if capability_mask & (1 << n) != 0 {
                    return Err(bad(format!("capability {bare} is listed twice")));
                }
                capability_mask |= 1 << n;
                capabilities.push(bare);
            }
            let log_lines = s.log_lines.unwrap_or(DEFAULT_LOG_LINES);
            if !LOG_LINES_RANGE.contains(&log_lines) {
                return Err(bad(format!(
                    "log_lines {log_lines} is outside {}..={}",
                    LOG_LINES_RANGE.start(),
                    LOG_LINES_RANGE.end()
                )));
            }
            services.push(ServiceSpec {
                name: s.name,
                path,
                args: s.args,
                env: s.env,
                uid: s.uid,
                gid: s.gid,
                groups,
                capabilities,
                capability_mask,
                log_lines,
                autostart: s.autostart.unwrap_or(true),
            });
        }
        Ok(Self { services, shared_gid, password_gid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("/etc/router/services.json"), text.as_bytes())
    }

    const EXAMPLE: &str = r#"{"services":[
        {"name":"dhcp4","path":"/svc/dhcp4","args":["--uplink","uplink0"],"env":{"KEY":"VALUE"},
         "uid":1001,"gid":1001,"groups":[1000],"capabilities":["NET_RAW","KILL"]},
        {"name":"dnsd","path":"/svc/dnsd","uid":1004,"gid":1004,"groups":[1000],
         "capabilities":["CAP_NET_BIND_SERVICE"],"log_lines":5000,"autostart":false}
    ]}"#;

    #[test]
    fn parses_the_documented_example() {
        let m = parse(EXAMPLE).unwrap();
        assert_eq!((m.shared_gid, m.password_gid), (DEFAULT_SHARED_GID, DEFAULT_SHARED_GID));
        let d = &m.services[0];
        assert_eq!((d.name.as_str(), d.path.as_path(), d.uid, d.gid), ("dhcp4", Path::new("/svc/dhcp4"), 1001, 1001));
        assert_eq!(d.groups, [1000]);
        assert_eq!(d.capabilities, ["NET_RAW", "KILL"]);
        assert_eq!(d.capability_mask, (1 << 13) | (1 << 5));
        assert_eq!(d.env.get("KEY").map(String::as_str), Some("VALUE"));
        assert_eq!((d.log_lines, d.autostart), (DEFAULT_LOG_LINES, true));
        let n = &m.services[1];
        assert_eq!((n.capabilities.as_slice(), n.capability_mask), (&["NET_BIND_SERVICE".to_owned()][..], 1 << 10));
        assert_eq!((n.log_lines, n.autostart), (5000, false));
    }

    #[test]
    fn rejects_unknown_fields_with_line_and_column() {
        let text =
            "{\"services\":[\n {\"name\":\"dhcp4\",\"path\":\"/svc/dhcp4\",\"uid\":1,\"gid\":1,\"user\":\"x\"}]}";
        match parse(text) {
            Err(ManifestError::Parse { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("unknown field `user`"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let top = r#"{"services":[],"extra":1}"#;
        assert!(matches!(parse(top), Err(ManifestError::Parse { .. })));
        assert!(parse("{\"services\":[}").unwrap_err().to_string().contains("services.json:1:"));
    }

    #[test]
    fn refuses_what_is_unsafe_or_ambiguous() {
        let svc =
            |extra: &str| format!(r#"{{"services":[{{"name":"a","path":"/svc/a","uid":1001,"gid":1001{extra}}}]}}"#);
        let cases = [
            (svc(r#","capabilities":["NET_RAWR"]"#), "unknown capability"),
            (svc(r#","capabilities":["KILL","CAP_KILL"]"#), "twice"),
            (svc(r#","env":{"HOME":"/"}"#), "HOME"),
            (svc(r#","env":{"A=B":"x"}"#), "environment"),
            (svc(r#","log_lines":10"#), "log_lines"),
            (svc(r#","groups":[0]"#), "group 0"),
            (svc(r#","groups":[5,5]"#), "twice"),
            (svc(r#","run_as_root":true"#), "uid is not 0"),
            (r#"{"services":[{"name":"a","path":"/svc/a","uid":0,"gid":0}]}"#.into(), "run_as_root"),
            (r#"{"services":[{"name":"a","path":"svc/a","uid":1,"gid":1}]}"#.into(), "absolute"),
            (r#"{"services":[{"name":"a","path":"/svc/../bin/sh","uid":1,"gid":1}]}"#.into(), "absolute"),
            (r#"{"services":[{"name":"A","path":"/svc/a","uid":1,"gid":1}]}"#.into(), "names are"),
            (r#"{"services":[{"name":"init","path":"/svc/a","uid":1,"gid":1}]}"#.into(), "init's own"),
            (r#"{"services":[{"name":"a","path":"/svc/a","uid":65535,"gid":1}]}"#.into(), "usable"),
            (
                r#"{"services":[{"name":"a","path":"/svc/a","uid":1,"gid":1},{"name":"a","path":"/svc/b","uid":1,"gid":1}]}"#
                    .into(),
                "listed twice",
            ),
            (r#"{"services":[],"shared_gid":0}"#.into(), "shared_gid"),
            (r#"{"services":[],"password_gid":4294967295}"#.into(), "password_gid"),
        ];
        for (text, want) in cases {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    /// Every service needs the shared group (its socket in /run/router);
    /// only those that check the password need to read it.
    #[test]
    fn the_password_group_defaults_to_the_shared_group() {
        let m = parse(r#"{"services":[],"shared_gid":1000,"password_gid":1010}"#).unwrap();
        assert_eq!((m.shared_gid, m.password_gid), (1000, 1010));
        let m = parse(r#"{"services":[],"shared_gid":1200}"#).unwrap();
        assert_eq!((m.shared_gid, m.password_gid), (1200, 1200));
    }

    #[test]
    fn root_is_allowed_only_when_asked_for_by_name() {
        let m = parse(r#"{"services":[{"name":"backupd","path":"/svc/backupd","uid":0,"gid":0,"run_as_root":true}]}"#)
            .unwrap();
        assert_eq!(m.services[0].uid, 0);
    }

    #[test]
    fn adds_perm_and_run_unless_given() {
        let m = parse(EXAMPLE).unwrap();
        let args = m.services[0].command_args(Path::new("/perm"), Path::new("/run"));
        assert_eq!(args, ["--uplink", "uplink0", "--perm", "/perm", "--run", "/run"]);
        let mut own = m.services[0].clone();
        own.args = vec!["--perm=/x".into(), "--run".into(), "/y".into()];
        assert_eq!(own.command_args(Path::new("/perm"), Path::new("/run")), ["--perm=/x", "--run", "/y"]);
    }
}
