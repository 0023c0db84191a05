//! `syslinux.cfg`, the boot loader configuration at the root of the boot
//! partition (mkimage writes it; see mkimage/README.md):
//!
//! ```text
//! DEFAULT a
//! LABEL a
//!   LINUX /vmlinuz-a
//!   APPEND console=ttyS0,115200 root=PARTUUID=0a0b0c0d-02 ro … panic=10 router.slot=a
//! LABEL b
//!   …
//! ```
//!
//! `DEFAULT` names the committed slot: a reset boots it. Committing an update
//! rewrites that one line and nothing else. A trial never touches this file:
//! it runs through kexec with [`trial_cmdline`] or through syslinux's one-shot
//! command ([`boot_once_command`], see [`crate::adv`]). syslinux's keywords are
//! case-insensitive and `#` starts a comment line.

use crate::Slot;

/// The file's name at the root of the boot partition.
pub const CONFIG_FILE: &str = "syslinux.cfg";
/// The kernel parameter that marks a trial boot.
pub const TRIAL_PARAM: &str = "router.trial=1";
/// The kernel parameter naming the slot.
pub const SLOT_PARAM: &str = "router.slot";

/// What is wrong with a loader configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderError {
    /// No `DEFAULT` line, or more than one.
    DefaultLines(usize),
    /// No `LABEL` for the slot.
    NoLabel(Slot),
    /// The slot's label has no `APPEND` line.
    NoAppend(Slot),
    /// The slot's `APPEND` line has no `root=`.
    NoRoot(Slot),
    /// The slot's kernel is not a plain file name at the partition's root.
    BadKernel(Slot, String),
    /// The slot's `APPEND` line names another slot.
    WrongSlot {
        /// The label.
        label: Slot,
        /// What its `router.slot=` says.
        says: String,
    },
}

impl std::fmt::Display for LoaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DefaultLines(n) => write!(f, "{CONFIG_FILE} has {n} DEFAULT lines, not one"),
            Self::NoLabel(s) => write!(f, "{CONFIG_FILE} has no LABEL {s}"),
            Self::NoAppend(s) => write!(f, "{CONFIG_FILE}: LABEL {s} has no APPEND line"),
            Self::NoRoot(s) => write!(f, "{CONFIG_FILE}: LABEL {s}'s APPEND line has no root="),
            Self::BadKernel(s, k) => write!(f, "{CONFIG_FILE}: LABEL {s}'s kernel {k:?} is not a file at the root"),
            Self::WrongSlot { label, says } => {
                write!(f, "{CONFIG_FILE}: LABEL {label}'s APPEND line says {SLOT_PARAM}={says}")
            }
        }
    }
}

impl std::error::Error for LoaderError {}

/// A line's keyword (upper-cased) and the rest, or `None` for blank and comment lines.
fn keyword(line: &str) -> Option<(String, &str)> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let (k, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    Some((k.to_ascii_uppercase(), rest.trim()))
}

/// The slot `DEFAULT` names.
#[must_use]
pub fn default_slot(config: &str) -> Option<Slot> {
    config.lines().filter_map(keyword).find(|(k, _)| k == "DEFAULT").and_then(|(_, v)| Slot::parse(v))
}

/// `config` with its `DEFAULT` line naming `slot`; every other byte is kept.
///
/// # Errors
/// When there is not exactly one `DEFAULT` line or `slot` has no label.
pub fn set_default(config: &str, slot: Slot) -> Result<String, LoaderError> {
    let defaults = config.lines().filter_map(keyword).filter(|(k, _)| k == "DEFAULT").count();
    if defaults != 1 {
        return Err(LoaderError::DefaultLines(defaults));
    }
    label_lines(config, slot)?;
    let mut out = String::with_capacity(config.len());
    for line in config.split_inclusive('\n') {
        if keyword(line).is_some_and(|(k, _)| k == "DEFAULT") {
            out.push_str("DEFAULT ");
            out.push_str(slot.label());
            out.push_str(if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            });
        } else {
            out.push_str(line);
        }
    }
    Ok(out)
}

/// The keyword lines of `slot`'s `LABEL` block.
fn label_lines(config: &str, slot: Slot) -> Result<Vec<(String, &str)>, LoaderError> {
    let mut lines = config.lines().filter_map(keyword);
    lines.by_ref().find(|(k, v)| k == "LABEL" && Slot::parse(v) == Some(slot)).ok_or(LoaderError::NoLabel(slot))?;
    Ok(lines.take_while(|(k, _)| k != "LABEL").collect())
}

/// `slot`'s `APPEND` line (the kernel command line syslinux passes).
///
/// # Errors
/// When the label or its `APPEND` is missing.
pub fn append(config: &str, slot: Slot) -> Result<String, LoaderError> {
    label_lines(config, slot)?
        .into_iter()
        .find(|(k, _)| k == "APPEND")
        .map(|(_, v)| v.to_owned())
        .ok_or(LoaderError::NoAppend(slot))
}

/// `slot`'s kernel file on the boot partition (`LINUX`/`KERNEL`'s first
/// word), without the leading `/`: always a plain name at the partition's root.
///
/// # Errors
/// When the label is missing, or its kernel is not a plain name (a folder, `..`);
/// a label without a kernel line gives the slot's usual file.
pub fn kernel(config: &str, slot: Slot) -> Result<String, LoaderError> {
    let Some((_, value)) = label_lines(config, slot)?.into_iter().find(|(k, _)| k == "LINUX" || k == "KERNEL") else {
        return Ok(slot.kernel_file().to_owned());
    };
    let name = value.split_whitespace().next().unwrap_or("").trim_start_matches('/');
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) || name.contains(char::is_control) {
        return Err(LoaderError::BadKernel(slot, value.to_owned()));
    }
    Ok(name.to_owned())
}

/// The command line a trial of `slot` boots with through kexec: what syslinux
/// would pass (`BOOT_IMAGE=/<kernel>` and the slot's `APPEND` line) plus
/// [`TRIAL_PARAM`]; any `router.trial=` already there is dropped first.
///
/// # Errors
/// When the slot's label, `APPEND` or `root=` is missing, or its `APPEND`
/// names another slot (a mix-up that would boot the wrong root as a trial).
pub fn trial_cmdline(config: &str, slot: Slot) -> Result<String, LoaderError> {
    let append = append(config, slot)?;
    let kernel = kernel(config, slot)?;
    let all: Vec<&str> = append.split_whitespace().collect();
    if !all.iter().any(|w| w.starts_with("root=")) {
        return Err(LoaderError::NoRoot(slot));
    }
    let slot_prefix = format!("{SLOT_PARAM}=");
    if let Some(v) = all.iter().filter_map(|w| w.strip_prefix(&slot_prefix)).find(|v| Slot::parse(v) != Some(slot)) {
        return Err(LoaderError::WrongSlot { label: slot, says: (*v).to_owned() });
    }
    // Our own parameters once each, in their canonical form, at the end.
    let slot_word = format!("{slot_prefix}{}", slot.label());
    let words = all.into_iter().filter(|w| !w.starts_with("router.trial=") && !w.starts_with(&slot_prefix));
    let boot_image = format!("BOOT_IMAGE=/{kernel}");
    Ok(std::iter::once(boot_image.as_str())
        .chain(words)
        .chain([slot_word.as_str(), TRIAL_PARAM])
        .collect::<Vec<_>>()
        .join(" "))
}

/// syslinux's one-shot command for a trial of `slot` through the firmware: the
/// label plus [`TRIAL_PARAM`] (appended to its `APPEND` line by the loader).
#[must_use]
pub fn boot_once_command(slot: Slot) -> String {
    format!("{} {TRIAL_PARAM}", slot.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "SERIAL 0 115200\n\
        # DEFAULT names the committed slot (a comment, not a DEFAULT line)\n\
        PROMPT 0\n\
        DEFAULT a\n\
        LABEL a\n  LINUX /vmlinuz-a\n  APPEND console=ttyS0,115200 root=PARTUUID=0a0b0c0d-02 ro init=/init panic=10 router.slot=a\n\
        LABEL b\n  LINUX /vmlinuz-b\n  APPEND console=ttyS0,115200 root=PARTUUID=0a0b0c0d-03 ro init=/init panic=10 router.slot=b\n";

    #[test]
    fn reads_the_default_and_each_slots_lines() {
        assert_eq!(default_slot(CFG), Some(Slot::A));
        assert!(append(CFG, Slot::B).unwrap().contains("root=PARTUUID=0a0b0c0d-03"));
        assert_eq!(kernel(CFG, Slot::B).unwrap(), "vmlinuz-b");
        assert_eq!(kernel("LABEL a\n  KERNEL /k-a extra words\n", Slot::A).unwrap(), "k-a");
        assert_eq!(kernel("LABEL a\n  APPEND x\n", Slot::A).unwrap(), "vmlinuz-a");
        for bad in ["/../etc/passwd", "/boot/vmlinuz", "/", ".."] {
            let cfg = format!("LABEL a\n  LINUX {bad}\n");
            assert!(matches!(kernel(&cfg, Slot::A), Err(LoaderError::BadKernel(..))), "{bad}");
        }
        assert_eq!(default_slot("default B\n"), Some(Slot::B), "keywords are case-insensitive");
        assert_eq!(default_slot("# DEFAULT b\n"), None);
    }

    #[test]
    fn committing_rewrites_only_the_default_line() {
        let b = set_default(CFG, Slot::B).unwrap();
        assert_eq!(default_slot(&b), Some(Slot::B));
        assert_eq!(b.len(), CFG.len());
        assert_eq!(b.replace("DEFAULT b\n", "DEFAULT a\n"), CFG, "nothing else changed");
        assert_eq!(set_default(&b, Slot::A).unwrap(), CFG);
        assert_eq!(set_default("LABEL a\n", Slot::A), Err(LoaderError::DefaultLines(0)));
        assert_eq!(set_default("DEFAULT a\nDEFAULT b\nLABEL a\n", Slot::A), Err(LoaderError::DefaultLines(2)));
        assert_eq!(set_default("DEFAULT a\nLABEL a\n", Slot::B), Err(LoaderError::NoLabel(Slot::B)));
        assert_eq!(set_default("DEFAULT a\r\nLABEL b\r\n", Slot::B).unwrap(), "DEFAULT b\r\nLABEL b\r\n");
    }

    #[test]
    fn the_trial_command_line_is_the_slots_append_plus_the_trial_flag() {
        assert_eq!(
            trial_cmdline(CFG, Slot::B).unwrap(),
            "BOOT_IMAGE=/vmlinuz-b console=ttyS0,115200 root=PARTUUID=0a0b0c0d-03 ro init=/init panic=10 \
             router.slot=b router.trial=1"
        );
        // Only whole words are kernel parameters (found by fuzzing: a word that merely contains one).
        let lookalike = CFG.replace("router.slot=b", "router.slot=b xrouter.trial=0");
        assert!(
            trial_cmdline(&lookalike, Slot::B)
                .unwrap()
                .ends_with("panic=10 xrouter.trial=0 router.slot=b router.trial=1")
        );
        let old_flag = CFG.replace("router.slot=b", "router.slot=b router.trial=0");
        assert!(trial_cmdline(&old_flag, Slot::B).unwrap().ends_with("router.slot=b router.trial=1"));
        let no_slot = CFG.replace(" router.slot=b", "");
        assert!(trial_cmdline(&no_slot, Slot::B).unwrap().ends_with("panic=10 router.slot=b router.trial=1"));
        let upper = CFG.replace("router.slot=b", "router.slot=B router.slot=b");
        assert!(trial_cmdline(&upper, Slot::B).unwrap().ends_with("panic=10 router.slot=b router.trial=1"));
        let mixed = CFG.replace("router.slot=b", "router.slot=b router.slot=a");
        assert!(matches!(trial_cmdline(&mixed, Slot::B), Err(LoaderError::WrongSlot { .. })));
        let mixed = CFG.replace("router.slot=b", "router.slot=a");
        assert_eq!(trial_cmdline(&mixed, Slot::B), Err(LoaderError::WrongSlot { label: Slot::B, says: "a".into() }));
        let rootless = CFG.replace("root=PARTUUID=0a0b0c0d-03 ", "");
        assert_eq!(trial_cmdline(&rootless, Slot::B), Err(LoaderError::NoRoot(Slot::B)));
        assert_eq!(trial_cmdline("DEFAULT a\nLABEL b\n  LINUX /x\n", Slot::B), Err(LoaderError::NoAppend(Slot::B)));
    }

    #[test]
    fn the_one_shot_command_names_the_label_and_the_trial_flag() {
        assert_eq!(boot_once_command(Slot::B), "b router.trial=1");
    }
}
