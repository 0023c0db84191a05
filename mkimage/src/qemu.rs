//! Running an image under QEMU as the apu2c4 stand-in: SeaBIOS boots the disk
//! through the MBR and syslinux exactly as the apu2c4's firmware does, with
//! software emulation (`-accel tcg`; KVM does not work on our build
//! machines), the serial console on the terminal (or a pipe), two virtio NICs
//! whose MACs the image's default `/perm/interfaces.json` maps to uplink0 and
//! lan0, the i6300esb watchdog (a hang resets the machine, as on the apu2c4),
//! and virtio-rng so `getrandom` does not wait for entropy at boot.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// MAC of the NIC that becomes uplink0.
pub const UPLINK_MAC: &str = "52:54:00:72:37:01";
/// MAC of the NIC that becomes lan0.
pub const LAN_MAC: &str = "52:54:00:72:37:02";

/// What a NIC is connected to on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetBackend {
    /// QEMU's user-mode network (NAT to the host, with its own DHCP server):
    /// an uplink that works anywhere without root.
    User,
    /// An existing tap device on the host.
    Tap(String),
    /// Nothing: the NIC exists but its cable is unplugged.
    Unplugged,
}

impl NetBackend {
    /// Parses `user`, `tap:NAME` or `none`.
    ///
    /// # Errors
    /// For anything else.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "user" => Ok(Self::User),
            "none" => Ok(Self::Unplugged),
            _ => match text.strip_prefix("tap:") {
                Some(name) if !name.is_empty() && name.len() <= 15 && !name.contains([',', '/']) => {
                    Ok(Self::Tap(name.to_owned()))
                }
                _ => Err(Error::Invalid(format!("network backend {text:?}: use user, tap:NAME or none"))),
            },
        }
    }

    fn netdev(&self, id: &str, hub: u32) -> String {
        match self {
            Self::User => format!("user,id={id}"),
            Self::Tap(name) => format!("tap,id={id},ifname={name},script=no,downscript=no"),
            // A hub port with nothing else on the hub: frames go nowhere.
            Self::Unplugged => format!("hubport,id={id},hubid={hub}"),
        }
    }
}

/// Where the serial console goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// The terminal, with QEMU's monitor multiplexed (Ctrl-A X quits).
    Terminal,
    /// Standard output only (no monitor), for a program reading the log.
    Stdout,
}

/// How to run an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The disk image (raw).
    pub image: PathBuf,
    /// Memory in MiB (the apu2c4 has 4096; 512 is plenty for the router).
    pub memory_mib: u32,
    /// CPUs.
    pub cpus: u32,
    /// The NIC that becomes uplink0.
    pub uplink: NetBackend,
    /// The NIC that becomes lan0.
    pub lan: NetBackend,
    /// Where the serial console goes.
    pub console: Console,
    /// Discard writes to the disk when QEMU exits (`-snapshot`).
    pub snapshot: bool,
    /// A Unix socket for QEMU's monitor (with [`Console::Stdout`]), e.g. for
    /// `system_reset` from a test.
    pub monitor_socket: Option<PathBuf>,
}

impl Machine {
    /// Defaults for `image`: 512 MiB, 2 CPUs, uplink on QEMU's user network,
    /// LAN unplugged, console on the terminal, writes kept.
    #[must_use]
    pub fn new(image: &Path) -> Self {
        Self {
            image: image.to_owned(),
            memory_mib: 512,
            cpus: 2,
            uplink: NetBackend::User,
            lan: NetBackend::Unplugged,
            console: Console::Terminal,
            snapshot: false,
            monitor_socket: None,
        }
    }

    /// The `qemu-system-x86_64` arguments.
    #[must_use]
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(|s| (*s).to_owned()));
        push(&["-accel", "tcg", "-machine", "pc", "-cpu", "max"]);
        push(&["-m", &self.memory_mib.to_string(), "-smp", &self.cpus.to_string()]);
        push(&["-display", "none", "-vga", "none", "-no-user-config", "-nodefaults"]);
        match self.console {
            Console::Terminal => push(&["-serial", "mon:stdio"]),
            Console::Stdout => match &self.monitor_socket {
                Some(p) => push(&["-serial", "stdio", "-monitor", &format!("unix:{},server=on,wait=off", p.display())]),
                None => push(&["-serial", "stdio", "-monitor", "none"]),
            },
        }
        push(&["-drive", &format!("file={},format=raw,if=virtio,cache=unsafe", self.image.display())]);
        if self.snapshot {
            push(&["-snapshot"]);
        }
        push(&["-boot", "order=c"]);
        push(&["-netdev", &self.uplink.netdev("uplink", 1)]);
        push(&["-device", &format!("virtio-net-pci,netdev=uplink,mac={UPLINK_MAC}")]);
        push(&["-netdev", &self.lan.netdev("lan", 2)]);
        push(&["-device", &format!("virtio-net-pci,netdev=lan,mac={LAN_MAC}")]);
        push(&["-device", "i6300esb", "-action", "watchdog=reset"]);
        push(&["-device", "virtio-rng-pci"]);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(m: &Machine) -> String {
        m.args().join(" ")
    }

    #[test]
    fn boots_the_disk_in_software_with_watchdog_and_two_nics() {
        let mut m = Machine::new(Path::new("/tmp/r.img"));
        m.uplink = NetBackend::Tap("r7u1".into());
        m.lan = NetBackend::Tap("r7l1".into());
        let a = joined(&m);
        assert!(a.contains("-accel tcg"), "{a}");
        assert!(a.contains("-m 512"));
        assert!(a.contains("-drive file=/tmp/r.img,format=raw,if=virtio"));
        assert!(a.contains("-netdev tap,id=uplink,ifname=r7u1,script=no,downscript=no"));
        assert!(a.contains(&format!("-device virtio-net-pci,netdev=uplink,mac={UPLINK_MAC}")));
        assert!(a.contains(&format!("-device virtio-net-pci,netdev=lan,mac={LAN_MAC}")));
        assert!(a.contains("-device i6300esb -action watchdog=reset"));
        assert!(a.contains("-serial mon:stdio"));
        assert!(!a.contains("-kernel"), "the firmware boots the disk, as on the apu2c4");
    }

    #[test]
    fn console_to_stdout_has_no_monitor() {
        let mut m = Machine::new(Path::new("x.img"));
        m.console = Console::Stdout;
        m.snapshot = true;
        let a = joined(&m);
        assert!(a.contains("-serial stdio -monitor none"));
        assert!(a.contains("-snapshot"));
        m.monitor_socket = Some(PathBuf::from("/tmp/m.sock"));
        assert!(joined(&m).contains("-serial stdio -monitor unix:/tmp/m.sock,server=on,wait=off"));
    }

    #[test]
    fn parses_backends() {
        assert_eq!(NetBackend::parse("user").unwrap(), NetBackend::User);
        assert_eq!(NetBackend::parse("none").unwrap(), NetBackend::Unplugged);
        assert_eq!(NetBackend::parse("tap:tap0").unwrap(), NetBackend::Tap("tap0".into()));
        for bad in ["tap:", "tap:a,b", "tap:waytoolongname01", "bridge"] {
            assert!(NetBackend::parse(bad).is_err(), "{bad}");
        }
    }
}
