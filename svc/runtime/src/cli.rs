//! The command line every service shares (`--perm`, `--run`, `--uplink`, `--lan`,
//! `--debug`, `--help`) plus each service's own options, so every binary also
//! runs outside the appliance for tests and for people trying it on a Linux box.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// One service-specific option.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Name without dashes (`listen`).
    pub name: &'static str,
    /// Value placeholder (`ADDR`); `None` for a flag.
    pub value: Option<&'static str>,
    /// One line of help, including the default.
    pub help: &'static str,
}

/// What a binary accepts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Binary name.
    pub name: &'static str,
    /// One line saying what it does.
    pub about: &'static str,
    /// Whether `--uplink` applies.
    pub uplink: bool,
    /// Whether `--lan` applies.
    pub lan: bool,
    /// Its own options.
    pub options: &'static [Opt],
}

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// Persistent state folder (default `/perm`).
    pub perm: PathBuf,
    /// Runtime folder for pid files and sockets (default `/run`).
    pub run: PathBuf,
    /// Uplink interface (default `uplink0`).
    pub uplink: String,
    /// LAN interface (default `lan0`).
    pub lan: String,
    /// Debug logging.
    pub debug: bool,
    values: HashMap<&'static str, String>,
    flags: Vec<&'static str>,
}

impl Args {
    /// The value of option `name`, if given.
    #[must_use]
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether flag `name` was given.
    #[must_use]
    pub fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }
}

/// Why there is nothing to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// `--help` was asked for; print this and exit 0.
    Help(String),
    /// Bad usage; print this and exit 2.
    Usage(String),
}

impl Spec {
    /// The `--help` text.
    #[must_use]
    pub fn help(&self) -> String {
        let mut h = format!("{} — {}\n\nUsage: {} [OPTIONS]\n\nOptions:\n", self.name, self.about, self.name);
        let mut line = |flag: &str, help: &str| {
            let _ = writeln!(h, "  {flag:<24} {help}");
        };
        line("--perm DIR", "persistent state folder [default: /perm]");
        line("--run DIR", "runtime folder for pid files and the control socket [default: /run]");
        if self.uplink {
            line("--uplink IFACE", "uplink interface [default: uplink0]");
        }
        if self.lan {
            line("--lan IFACE", "LAN interface [default: lan0]");
        }
        for o in self.options {
            let flag = match o.value {
                Some(v) => format!("--{} {v}", o.name),
                None => format!("--{}", o.name),
            };
            line(&flag, o.help);
        }
        line("--debug", "log debug lines");
        line("--help", "print this help");
        h
    }

    /// Parses `args` (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(&self, args: I) -> Result<Args, CliError> {
        let mut out = Args {
            perm: PathBuf::from("/perm"),
            run: PathBuf::from("/run"),
            uplink: "uplink0".into(),
            lan: "lan0".into(),
            debug: false,
            values: HashMap::new(),
            flags: Vec::new(),
        };
        let usage = |m: String| CliError::Usage(format!("{}: {m}\nTry --help.", self.name));
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let Some(body) = arg.strip_prefix("--") else {
                return Err(usage(format!("unexpected argument {arg:?}")));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (body, None),
            };
            let mut value = |what: &str| -> Result<String, CliError> {
                match inline.clone().or_else(|| it.next()) {
                    Some(v) if !v.is_empty() => Ok(v),
                    _ => Err(usage(format!("--{name} needs {what}"))),
                }
            };
            match name {
                "help" => return Err(CliError::Help(self.help())),
                "debug" => out.debug = true,
                "perm" => out.perm = PathBuf::from(value("a folder")?),
                "run" => out.run = PathBuf::from(value("a folder")?),
                "uplink" if self.uplink => out.uplink = value("an interface")?,
                "lan" if self.lan => out.lan = value("an interface")?,
                _ => {
                    let Some(opt) = self.options.iter().find(|o| o.name == name) else {
                        return Err(usage(format!("unknown option --{name}")));
                    };
                    match opt.value {
                        Some(v) => {
                            let v = value(v)?;
                            out.values.insert(opt.name, v);
                        }
                        None if inline.is_some() => {
                            return Err(usage(format!("--{name} takes no value")));
                        }
                        None => out.flags.push(opt.name),
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        name: "dnsd",
        about: "DNS forwarder",
        uplink: false,
        lan: true,
        options: &[
            Opt { name: "listen", value: Some("ADDR"), help: "listen address" },
            Opt { name: "once", value: None, help: "run once" },
        ],
    };

    fn parse(args: &[&str]) -> Result<Args, CliError> {
        SPEC.parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_match_the_appliance() {
        let a = parse(&[]).unwrap();
        assert_eq!(
            (a.perm.to_str(), a.run.to_str(), a.uplink.as_str(), a.lan.as_str()),
            (Some("/perm"), Some("/run"), "uplink0", "lan0")
        );
        assert!(!a.debug);
    }

    #[test]
    fn parses_both_value_forms_and_flags() {
        let a = parse(&[
            "--perm",
            "/tmp/p",
            "--run=/tmp/r",
            "--lan",
            "veth1",
            "--listen=127.0.0.1:53",
            "--once",
            "--debug",
        ])
        .unwrap();
        assert_eq!(a.perm, PathBuf::from("/tmp/p"));
        assert_eq!(a.run, PathBuf::from("/tmp/r"));
        assert_eq!(a.lan, "veth1");
        assert_eq!(a.value("listen"), Some("127.0.0.1:53"));
        assert!(a.flag("once") && a.debug);
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        for bad in [&["--uplink", "eth0"][..], &["--nope"], &["stray"], &["--perm"], &["--once=1"], &["--listen="]] {
            assert!(matches!(parse(bad), Err(CliError::Usage(_))), "{bad:?}");
        }
        match parse(&["--help"]) {
            Err(CliError::Help(h)) => {
                assert!(h.contains("--listen ADDR") && h.contains("--lan IFACE") && !h.contains("--uplink"))
            }
            other => panic!("{other:?}"),
        }
    }
}
