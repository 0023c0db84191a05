//! The kernel command line (`/proc/cmdline`): the root device, and the boot
//! slot and trial flag that updates (issue 11) will set. Parsed the way the
//! kernel splits it: on spaces, with double quotes grouping (`a="b c"`).

use serde::{Deserialize, Serialize};

/// A root file system slot (partition 2 = `a`, partition 3 = `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Slot A.
    A,
    /// Slot B.
    B,
}

/// What init reads from the kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelCmdline {
    /// `root=`: the root partition (`/dev/vda2`, `PARTUUID=…-02`).
    pub root: Option<String>,
    /// `router.slot=a|b`.
    pub slot: Option<Slot>,
    /// `router.trial=1`: a trial boot of a new slot.
    pub trial: bool,
    /// Parameters of ours with a value we did not understand (shown, not fatal).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
}

/// Splits like the kernel's `next_arg`: spaces separate, quotes group.
#[must_use]
pub fn split(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

impl KernelCmdline {
    /// Parses `/proc/cmdline`'s text. Later parameters win, as in the kernel.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for param in split(text) {
            let (key, value) = param.split_once('=').unwrap_or((&param, ""));
            match key {
                "root" if !value.is_empty() => out.root = Some(value.to_owned()),
                "router.slot" => match value {
                    "a" | "A" => out.slot = Some(Slot::A),
                    "b" | "B" => out.slot = Some(Slot::B),
                    _ => out.ignored.push(param.clone()),
                },
                "router.trial" => match value {
                    "1" | "" => out.trial = true,
                    "0" => out.trial = false,
                    _ => out.ignored.push(param.clone()),
                },
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_root_slot_and_trial() {
        let c = KernelCmdline::parse(
            "BOOT_IMAGE=/vmlinuz-a console=ttyS0,115200 root=/dev/sda2 ro init=/init router.slot=b router.trial=1\n",
        );
        assert_eq!(c.root.as_deref(), Some("/dev/sda2"));
        assert_eq!((c.slot, c.trial), (Some(Slot::B), true));
        assert!(c.ignored.is_empty());
    }

    #[test]
    fn quotes_group_and_later_parameters_win() {
        assert_eq!(split(r#"a="b c" d  e="""#), ["a=b c", "d", "e="]);
        let c = KernelCmdline::parse("root=/dev/vda2 root=PARTUUID=0a0b0c0d-02 router.slot=x router.trial=yes");
        assert_eq!(c.root.as_deref(), Some("PARTUUID=0a0b0c0d-02"));
        assert_eq!((c.slot, c.trial), (None, false));
        assert_eq!(c.ignored, ["router.slot=x", "router.trial=yes"]);
        assert_eq!(KernelCmdline::parse(""), KernelCmdline::default());
    }
}
