//! The QEMU harness shared by end-to-end tests that boot the real image:
//! the kernel and static binaries (built or from `ROUTER7_KERNEL` and
//! `ROUTER7_BINS`), `mkimage build`, taps moved into an "ISP" and a "LAN"
//! namespace ([`crate::lab`]), the serial console with timestamps, and QEMU
//! killed on drop (printing the console's tail when the test failed).
//!
//! `qemu_e2e.rs` and `update_e2e.rs` both use them.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mkimage::qemu::{Console, Machine, NetBackend};
use serde_json::Value;
use testbed::{Netns, clock};

use crate::lab;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The last line a script printed on stdout (the path it reports).
pub fn script_output(script: &str, marker: Option<&str>) -> String {
    eprintln!("e2e: running {script} (cached when nothing changed)");
    let out = Command::new(repo().join(script)).current_dir(repo()).stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "{script} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = match marker {
        Some(m) => {
            text.lines().rev().find_map(|l| l.strip_prefix(m)).unwrap_or_else(|| panic!("{script}: no {m:?} line"))
        }
        None => text.lines().last().unwrap_or_else(|| panic!("{script} printed nothing")),
    };
    line.trim().to_owned()
}

pub fn kernel() -> PathBuf {
    std::env::var_os("ROUTER7_KERNEL")
        .map_or_else(|| PathBuf::from(script_output("kernel-config/build", None)), PathBuf::from)
}

pub fn binaries() -> PathBuf {
    std::env::var_os("ROUTER7_BINS")
        .map_or_else(|| repo().join(script_output("ci/build-static", Some("binaries in "))), PathBuf::from)
}

pub fn echo_console() -> bool {
    std::env::var("ROUTER7_E2E_CONSOLE").is_ok_and(|v| v == "1")
}

/// `mkimage build` with `args` after the kernel, the binaries and `--out`; the build report.
pub fn build_image(kernel: &Path, bins: &Path, out: &Path, args: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .arg("build")
        .arg("--kernel")
        .arg(kernel)
        .arg("--bins")
        .arg(bins)
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "mkimage build failed:\n{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap()
}

/// A tap device in the root namespace (later moved into a lab namespace).
pub struct Tap(pub String);

impl Tap {
    pub fn new(name: String) -> Self {
        let _ = Command::new("ip").args(["link", "del", &name]).stderr(Stdio::null()).status();
        testbed::run("ip", &["tuntap", "add", "dev", &name, "mode", "tap"]);
        Self(name)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        // Gone already when its namespace was deleted; otherwise remove it here.
        let _ = Command::new("ip").args(["link", "del", &self.0]).stderr(Stdio::null()).status();
    }
}

/// The serial console: lines with the time since QEMU started.
#[derive(Clone)]
pub struct Serial {
    lines: Arc<Mutex<Vec<(Duration, String)>>>,
    pub started: Instant,
}

impl Serial {
    pub fn start(mut out: impl Read + Send + 'static, started: Instant, echo: bool) -> Self {
        let lines: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut partial = Vec::new();
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for &b in &buf[..n] {
                    if b == b'\n' {
                        let line = String::from_utf8_lossy(&partial).trim_end_matches('\r').to_owned();
                        let at = clock::now() - started;
                        if echo {
                            eprintln!("serial {:7.2}| {line}", at.as_secs_f64());
                        }
                        sink.lock().unwrap().push((at, line));
                        partial.clear();
                    } else {
                        partial.push(b);
                    }
                }
            }
        });
        Self { lines, started }
    }

    /// The first line from index `from` on that satisfies `pred`.
    pub fn wait(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, Duration, String)> {
        lab::wait_for(timeout, || {
            let lines = self.lines.lock().unwrap();
            lines.iter().enumerate().skip(from).find(|(_, (_, l))| pred(l)).map(|(i, (t, l))| (i, *t, l.clone()))
        })
    }

    /// How many lines so far (an index for [`Serial::wait`]).
    pub fn len(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().unwrap();
        lines.iter().rev().take(n).rev().map(|(t, l)| format!("{:7.2} {l}\n", t.as_secs_f64())).collect()
    }

    /// Lines from index `from` on, each with the instant it arrived.
    pub fn since_timed(&self, from: usize) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap().iter().skip(from).map(|(t, l)| (self.started + *t, l.clone())).collect()
    }

    /// Lines from index `from` on.
    pub fn since(&self, from: usize) -> Vec<String> {
        self.lines.lock().unwrap().iter().skip(from).map(|(_, l)| l.clone()).collect()
    }
}

/// QEMU, killed on drop (printing the console's tail when the test failed).
pub struct Qemu {
    pub child: Child,
    pub serial: Serial,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- last serial console lines ----\n{}----", self.serial.tail(120));
        }
    }
}

/// Whether QEMU (`pid`) has the tap `name` open (tun fdinfo shows `iff:`).
pub fn has_tap_open(pid: u32, name: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return false };
    fds.flatten().any(|fd| {
        std::fs::read_to_string(fd.path())
            .is_ok_and(|t| t.lines().any(|l| l.strip_prefix("iff:").is_some_and(|v| v.trim() == name)))
    })
}

/// A kernel log line (`[    1.234567] …`).
pub fn is_kernel_line(line: &str) -> bool {
    line.strip_prefix('[').and_then(|r| r.split_once(']')).is_some_and(|(ts, _)| {
        let ts = ts.trim();
        !ts.is_empty() && ts.chars().all(|c| c.is_ascii_digit() || c == '.')
    })
}

/// The image running under QEMU, its uplink in an ISP namespace and its LAN
/// in a LAN namespace (interface `eth0`). Dropped in order: QEMU, then the
/// lab (namespaces), then the taps.
pub struct Router {
    pub qemu: Qemu,
    pub isp: lab::Isp,
    pub lan: Netns,
    pub taps: (Tap, Tap),
}

impl Router {
    /// Boots `image`; `monitor` is a socket for QEMU's monitor.
    pub fn boot(image: &Path, qemu_log: &Path, monitor: Option<PathBuf>) -> Self {
        let id = std::process::id() % 100_000;
        let tap_up = Tap::new(format!("r7uu{id}"));
        let tap_lan = Tap::new(format!("r7ul{id}"));
        let isp_ns = Netns::new("isp");
        let lan = Netns::new("lan");
        let mut machine = Machine::new(image);
        machine.console = Console::Stdout;
        machine.uplink = NetBackend::Tap(tap_up.0.clone());
        machine.lan = NetBackend::Tap(tap_lan.0.clone());
        machine.monitor_socket = monitor;
        let started = clock::now();
        let mut child = Command::new("qemu-system-x86_64")
            .args(machine.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(qemu_log).unwrap())
            .spawn()
            .unwrap();
        let serial = Serial::start(child.stdout.take().unwrap(), started, echo_console());
        let qemu = Qemu { child, serial };
        let pid = qemu.child.id();
        lab::wait_for(Duration::from_secs(30), || {
            (has_tap_open(pid, &tap_up.0) && has_tap_open(pid, &tap_lan.0)).then_some(())
        })
        .unwrap_or_else(|| {
            panic!("QEMU did not open its taps: {}", std::fs::read_to_string(qemu_log).unwrap_or_default())
        });
        testbed::run("ip", &["link", "set", &tap_up.0, "netns", isp_ns.name()]);
        testbed::run("ip", &["link", "set", &tap_lan.0, "netns", lan.name()]);
        isp_ns.ip(&["link", "set", &tap_up.0, "name", "isp0"]);
        lan.ip(&["link", "set", &tap_lan.0, "name", "eth0"]);
        lan.ip(&["link", "set", "eth0", "up"]);
        let isp = lab::Isp::start(isp_ns, "isp0");
        Self { qemu, isp, lan, taps: (tap_up, tap_lan) }
    }

    pub fn serial(&self) -> &Serial {
        &self.qemu.serial
    }
}
