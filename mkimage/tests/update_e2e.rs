//! Updates end to end under QEMU (issue 11): the real image boots with its
//! uplink in an "ISP" namespace and its LAN in a "LAN" namespace; from the LAN,
//! `mkimage update` (and the library, for the one image the command would not
//! send) pushes new images, and the router must update, or roll back on its
//! own with no manual step. One boot chain, in order:
//!
//! 1. **cut-off upload**: half a root, then the connection goes; nothing is
//!    activated, the inactive slot is marked invalid and an activation refused;
//! 2. **good update through kexec** (`e2e-2` into slot b): a backup of
//!    `/perm` is taken first (a complete tar.gz holding the client's lease),
//!    the version changes, slot b becomes the default, dhcp4d's leases in `/perm` survive,
//!    the LAN client keeps its address; the console shows no firmware between
//!    the two kernels;
//! 3. **a root whose services never become healthy** (dhcp4 is a binary that
//!    exits at once): the trial's deadline passes, the router reboots through
//!    the firmware into slot b, `mkimage update` says "rolled back";
//! 4. **a kernel that panics at boot** (its root cannot be mounted: the
//!    SquashFS names a compressor the kernel lacks): `panic=10` resets the
//!    machine, the firmware boots slot b, the router says why;
//! 5. **good update through the firmware** (`--no-kexec`, `e2e-4` into slot a).
//!
//! Downtime = from the activation to the LAN client's query answered again,
//! measured by a client in the LAN namespace probing every 250 ms: a DNS query
//! through dnsd when dnsd is in the image, else a TCP connection through the
//! router's NAT to a server on the ISP side. Both downtimes (kexec, firmware)
//! are printed as FIGURE lines; they are figures, not assertions.
//!
//! `ROUTER7_UPDATE_SCENARIOS=cut,good,broken,panic,firmware` picks some (in
//! that order; later ones expect the earlier ones' state); `ROUTER7_KERNEL`,
//! `ROUTER7_BINS` and `ROUTER7_E2E_CONSOLE=1` as in `qemu_e2e.rs`.
#![allow(clippy::unwrap_used)]

mod common;
mod lab;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bootslot::api::UpdateStatus;
use common::Router;
use lab::Report;
use serde_json::Value;
use testbed::{TempDir, clock};

const ROUTER: Ipv4Addr = lab::ROUTER_LAN;
/// Generous: a trial that is healthy commits at once; only the broken root waits it out.
const GOOD_TRIAL_SECONDS: &str = "300";
/// The broken root's trial: long enough for a healthy system under TCG, short for the test.
const BROKEN_TRIAL_SECONDS: &str = "100";

fn scenarios() -> Vec<String> {
    std::env::var("ROUTER7_UPDATE_SCENARIOS")
        .unwrap_or_else(|_| "cut,good,broken,panic,firmware".into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect()
}

/// Runs `f` on a thread inside network namespace `ns` (for long-running probes).
fn spawn_in(ns: &str, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .unwrap();
        f();
    })
}

/// What the LAN client's probe asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    /// A DNS query for the ISP's name through dnsd.
    Dns,
    /// A TCP connection through NAT to the ISP's server.
    Tcp,
    /// A ping to the router's LAN address (when neither works on the base image).
    Ping,
}

impl ProbeKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Dns => "a DNS query for www.isp.example through dnsd, every 250 ms",
            Self::Tcp => "a TCP connection through the router's NAT to the ISP's server, every 250 ms",
            Self::Ping => "a ping to the router's LAN address, every 250 ms (no DNS or NAT to measure through)",
        }
    }
}

fn probe_once(kind: ProbeKind) -> bool {
    match kind {
        ProbeKind::Tcp => {
            let to = SocketAddr::new(IpAddr::V4(lab::WWW_ADDR), lab::WWW_PORT);
            let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_millis(300)) else { return false };
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            if writeln!(s, "probe").is_err() {
                return false;
            }
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).is_ok() && line.starts_with("hello")
        }
        ProbeKind::Ping => Command::new("ping")
            .args(["-c", "1", "-W", "0.3", "-n", "-q", &ROUTER.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        ProbeKind::Dns => {
            let Ok(s) = UdpSocket::bind("0.0.0.0:0") else { return false };
            let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
            // "www.isp.example" A, id 0x7238.
            let q = b"\x72\x38\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x03isp\x07example\x00\x00\x01\x00\x01";
            if s.send_to(q, (ROUTER, 53)).is_err() {
                return false;
            }
            let mut buf = [0u8; 512];
            // An answer with our id and at least one answer record.
            s.recv(&mut buf).is_ok_and(|n| n > 12 && buf[..2] == q[..2] && (buf[6] != 0 || buf[7] != 0))
        }
    }
}

/// The LAN client asking every 250 ms, every answer timestamped.
struct Prober {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(Instant, bool)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    fn start(ns: &str, kind: ProbeKind) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
        let (s, l) = (Arc::clone(&stop), Arc::clone(&log));
        let thread = spawn_in(ns, move || {
            while !s.load(Ordering::Relaxed) {
                let at = clock::now();
                let ok = probe_once(kind);
                l.lock().unwrap().push((at, ok));
                let spent = clock::now() - at;
                std::thread::sleep(Duration::from_millis(250).saturating_sub(spent));
            }
        });
        Self { stop, log, thread: Some(thread) }
    }

    /// From `t0` to the first answer after the first miss after `t0`.
    fn downtime(&self, t0: Instant) -> Option<Duration> {
        self.outage(t0).map(|(_, _, back)| back.saturating_duration_since(t0))
    }

    /// The outage after `t0`: the last answer before it (after `t0` when the
    /// old system still answered then), its first miss and the first answer after it.
    fn outage(&self, t0: Instant) -> Option<(Option<Instant>, Instant, Instant)> {
        let log = self.log.lock().unwrap();
        let miss = log.iter().position(|(t, ok)| *t >= t0 && !ok)?;
        let back = log[miss..].iter().find(|(_, ok)| *ok).map(|(t, _)| *t)?;
        let last = log[..miss].iter().rev().find(|(_, ok)| *ok).map(|(t, _)| *t);
        Some((last, log[miss].0, back))
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A run of `mkimage update`/`rollback` from the LAN namespace.
struct ToolRun {
    code: Option<i32>,
    stdout: String,
    lines: Vec<(Instant, String)>,
}

impl ToolRun {
    fn activated_at(&self) -> Option<Instant> {
        self.lines.iter().find(|(_, l)| l.contains("mkimage: activated slot")).map(|(t, _)| *t)
    }

    fn transcript(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("  | {l}\n")).collect::<String>() + &format!("  stdout: {}", self.stdout)
    }
}

fn mkimage_in(ns: &str, args: &[&str]) -> ToolRun {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_mkimage")])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            eprintln!("tool| {line}");
            sink.lock().unwrap().push((clock::now(), line));
        }
    });
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let lines = std::mem::take(&mut *lines.lock().unwrap());
    ToolRun { code: status.code(), stdout, lines }
}

/// The router's update status, asked from the LAN.
fn status(router: &Router, password: &str) -> Result<UpdateStatus, String> {
    let pw = password.to_owned();
    router.lan.enter(move || {
        mkimage::update::Client::new(&ROUTER.to_string(), &pw)
            .get::<UpdateStatus>("/update/status", Duration::from_secs(10))
            .map_err(|e| e.to_string())
    })
}

/// init's overview (JSON) from the LAN.
fn overview(router: &Router, password: &str) -> Result<Value, String> {
    let pw = password.to_owned();
    router.lan.enter(move || {
        let c = mkimage::update::Client::new(&ROUTER.to_string(), &pw);
        c.get::<Value>("/", Duration::from_secs(10)).map_err(|e| e.to_string())
    })
}

/// The phase (and dhcp4's state) of each service in init's overview.
fn phases(o: &Value) -> Vec<(String, String, String)> {
    o["services"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or("").to_owned(),
                        s["status"]["phase"].as_str().unwrap_or("-").to_owned(),
                        s["status"]["state"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the uplink lease is confirmed and the LAN is served, then
/// (up to a minute) for netconfigd to have applied everything: the trial's
/// checks are what passes now, so the more that passes, the stricter the test.
fn wait_healthy(router: &Router, password: &str, timeout: Duration) -> Result<String, String> {
    let last = std::cell::RefCell::new(Vec::new());
    let check = |need_netconfigd: bool| {
        let o = overview(router, password).ok()?;
        let seen = phases(&o);
        let has = |n: &str, p: &str| seen.iter().any(|(name, phase, _)| name == n && phase == p);
        let bound = seen.iter().any(|(n, p, s)| n == "dhcp4" && p == "Bound" && s == "BOUND");
        // backupd too: every update through the tool starts with a backup.
        let ok =
            bound && has("dhcp4d", "Up") && has("backupd", "Up") && (!need_netconfigd || has("netconfigd", "Applied"));
        *last.borrow_mut() = seen;
        ok.then_some(())
    };
    lab::wait_for(timeout, || check(false))
        .ok_or_else(|| format!("not healthy within {timeout:?}: {:?}", last.borrow()))?;
    let applied = lab::wait_for(Duration::from_secs(60), || check(true)).is_some();
    Ok(format!("{}{:?}", if applied { "" } else { "netconfigd never reached Applied; " }, last.borrow()))
}

/// dhcp4d's lease table, from its page on private:8067.
fn leases(router: &Router) -> Result<Value, String> {
    router.lan.enter(|| {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(ROUTER), 8067), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        write!(s, "GET /leases.json HTTP/1.1\r\nHost: {ROUTER}\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let r = runtime::unix_http::parse_response(&raw).map_err(|e| e.to_string())?;
        serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))
    })
}

fn lease_of(table: &Value, addr: Ipv4Addr) -> Option<Value> {
    let list = table.as_array().or_else(|| table["leases"].as_array())?;
    list.iter().find(|l| l["addr"].as_str() == Some(&addr.to_string())).cloned()
}

/// dhclient once more on the LAN client with a fresh lease file (a DISCOVER,
/// no address asked for): what dhcp4d offers this MAC now. The address stays
/// configured as it was.
fn discover(router: &Router, dir: &Path) -> Result<lab::Lease4, String> {
    let leases = dir.join("dhclient-again.leases");
    let pid = dir.join("dhclient-again.pid");
    let _ = std::fs::remove_file(&leases);
    let out = router.lan.exec(
        "timeout",
        &[
            "60",
            "dhclient",
            "-1",
            "-v",
            "-lf",
            leases.to_str().unwrap(),
            "-pf",
            pid.to_str().unwrap(),
            "-sf",
            "/bin/true",
            "eth0",
        ],
    );
    lab::parse_dhclient_lease(&std::fs::read_to_string(&leases).unwrap_or_default())
        .ok_or_else(|| format!("dhclient got no lease: {}", String::from_utf8_lossy(&out.stderr)))
}

/// A copy of the static binaries with `name` replaced by `with` (a binary that exits at once).
fn bins_with(bins: &Path, dir: &Path, name: &str, with: &str) -> PathBuf {
    let out = dir.join("bins-broken");
    std::fs::create_dir_all(&out).unwrap();
    for e in std::fs::read_dir(bins).unwrap().flatten() {
        let p = e.path();
        if p.is_file() {
            let file = p.file_name().unwrap().to_owned();
            let src = if file == name { bins.join(with) } else { p.clone() };
            std::fs::copy(&src, out.join(&file)).unwrap();
        }
    }
    out
}

/// From the activation `t0` to the new kernel's first line on the console.
fn handoff(serial: &common::Serial, from: usize, t0: Instant) -> Option<Duration> {
    let (_, at, _) = serial.wait(from, Duration::from_secs(1), |l| l.contains("Linux version"))?;
    Some((serial.started + at).saturating_duration_since(t0))
}

/// Whether the console lines show a boot through the firmware (SeaBIOS, syslinux).
fn firmware_boot(lines: &[String]) -> bool {
    lines.iter().any(|l| l.contains("SeaBIOS") || l.contains("SYSLINUX"))
}

/// Where one update's downtime goes: console milestones (the first line
/// matching each, from `from` on) and the LAN probe, in seconds after the
/// activation `t0`. Console times are when a line reached the host: userland
/// lines written while init is busy starting services may lag behind.
fn breakdown(serial: &common::Serial, from: usize, t0: Instant, prober: &Prober) -> String {
    // (needle, what, whether it is the new system's: searched from its kernel's first line on).
    const MILESTONES: &[(&str, &str, bool)] = &[
        ("activating slot", "activation logged", false),
        ("shutting down for", "stopping services", false),
        ("every service stopped", "services stopped", false),
        ("init: rebooting", "sync+unmount done, reboot(2)", false),
        ("kexec_core: Starting new kernel", "kexec jump", false),
        ("SeaBIOS", "firmware (SeaBIOS)", false),
        ("SYSLINUX", "boot loader (syslinux)", false),
        ("Linux version", "new kernel's first line", false),
        ("Run /init as init process", "kernel runs /init", true),
        ("init: router7 PID 1 starting", "init starting", true),
        ("router7 init,", "init's loop (services started)", true),
        ("added address 192.168.42.1/24 to lan0", "netconfigd: lan0 address", true),
        ("netconfigd: info: applied in", "netconfigd applied", true),
        ("dnsd: info: listening on udp 192.168.42.1:53", "dnsd listening on lan0", true),
        ("dhcp4: info: renewed", "dhcp4 bound (renewed)", true),
        ("dhcp4: info: bound", "dhcp4 bound", true),
        ("dhcp4d: info: listening on lan0", "dhcp4d serving lan0", true),
    ];
    let lines = serial.since_timed(from);
    let secs = |t: Instant| {
        if t >= t0 { (t - t0).as_secs_f64() } else { -(t0 - t).as_secs_f64() }
    };
    let booted = lines.iter().position(|(_, l)| l.contains("Linux version"));
    let mut marks: Vec<(f64, String)> = MILESTONES
        .iter()
        .filter_map(|(needle, what, new_system)| {
            let skip = if *new_system { booted? } else { 0 };
            lines.iter().skip(skip).find(|(_, l)| l.contains(needle)).map(|(t, _)| (secs(*t), (*what).to_owned()))
        })
        .collect();
    if let Some((last, miss, back)) = prober.outage(t0) {
        if let Some(last) = last {
            marks.push((secs(last), "probe: last answer of the old system".into()));
        }
        marks.push((secs(miss), "probe: first miss".into()));
        marks.push((secs(back), "probe: answered again".into()));
    }
    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
    marks.iter().map(|(t, what)| format!("{t:6.2} s  {what}")).collect::<Vec<_>>().join("\n")
}

fn command_lines(lines: &[String]) -> Vec<String> {
    lines.iter().filter(|l| l.contains("Command line:")).cloned().collect()
}

#[test]
fn updates_commit_when_healthy_and_roll_back_on_their_own() {
    let test = "updates_commit_when_healthy_and_roll_back_on_their_own";
    if !testbed::require(
        test,
        &[
            "qemu-system-x86_64",
            "dnsmasq",
            "kea-dhcp6",
            "dhclient",
            "timeout",
            "syslinux",
            "mkfs.ext4",
            "debugfs",
            "ip",
            "tar",
        ],
    ) {
        return;
    }
    let want = scenarios();
    let kernel = common::kernel();
    let bins = common::binaries();
    let dir = TempDir::new("upd");
    let password_file = dir.path().join("password");
    let pw_arg = password_file.display().to_string();
    let img = |name: &str| dir.path().join(format!("{name}.img"));
    let build = |name: &str, version: &str, bins: &Path| {
        let t = clock::now();
        let report = common::build_image(
            &kernel,
            bins,
            &img(name),
            &["--hostname", "router7-upd", "--password-file", &pw_arg, "--version", version],
        );
        eprintln!("e2e: built {name} ({version}) in {:.1} s", (clock::now() - t).as_secs_f64());
        report
    };
    let base = build("base", "e2e-1", &bins);
    let services: Vec<String> =
        base["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    // backupd: every `mkimage update` and `rollback` takes a backup of /perm first.
    for need in ["dhcp4", "dhcp4d", "netconfigd", "backupd"] {
        assert!(services.iter().any(|s| s == need), "{need} is not in the image: {base}");
    }
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_owned();
    let mut report = Report::default();

    let router = Router::boot(&img("base"), &dir.path().join("qemu.log"), None);
    let serial = router.serial().clone();
    let lan_ns = router.lan.name().to_owned();
    let boot_wait = Duration::from_secs(180);
    let lease = lab::dhcp4(&router.lan, "eth0", dir.path(), boot_wait).unwrap_or_else(|e| panic!("{e}"));
    let seen = wait_healthy(&router, &password, boot_wait).unwrap_or_else(|e| {
        panic!("the base image never got healthy, so nothing can be updated (do its services run?): {e}")
    });
    eprintln!("e2e: base image healthy; client {}; {seen}", lease.addr);
    // As an ISP's router does once it has delegated a prefix (kea only hands
    // it out): without this route diagd's tcp6 check from lan0 fails after a
    // reboot, and a trial that demands diagd Healthy (when it was so at the
    // activation) could never commit.
    match lab::wait_for(Duration::from_secs(60), || router.isp.delegated_prefix()) {
        Some(p) => router.isp.route_delegated(&p, lab::eui64_link_local(mkimage::qemu::UPLINK_MAC)),
        None => eprintln!("e2e: kea delegated no prefix within 60 s; no route for it"),
    }
    // The probe: DNS through dnsd when it is in the image, else TCP through
    // NAT, else a ping: the strongest one that works on the base image.
    let mut kinds = vec![ProbeKind::Tcp, ProbeKind::Ping];
    if services.iter().any(|s| s == "dnsd") {
        kinds.insert(0, ProbeKind::Dns);
    }
    let kind = kinds
        .into_iter()
        .find(|k| lab::wait_for(Duration::from_secs(30), || probe_once_in(&router, *k).then_some(())).is_some())
        .unwrap_or_else(|| panic!("no probe from the LAN client answers (not even a ping to the router)"));
    report.figure("downtime probe", kind.describe().into());
    let st = status(&router, &password).unwrap();
    assert_eq!((st.active, st.running.version.as_str()), (Some(bootslot::Slot::A), "e2e-1"), "{st:?}");
    let prober = Prober::start(&lan_ns, kind);
    // The backups every update and rollback takes first go here (never into
    // /root/.config), two kept.
    let backups = dir.path().join("backups");
    let backup_args = ["--backup-dir".to_owned(), backups.display().to_string(), "--keep-backups".into(), "2".into()];
    let update_args = |image: &Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["update", "--host", "192.168.42.1", "--password-file", &pw_arg, "--image"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        a.push(image.display().to_string());
        a.extend(backup_args.iter().cloned());
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        mkimage_in(&lan_ns, &refs)
    };

    let v2 = build("v2", "e2e-2", &bins);
    drop(v2);

    if want.iter().any(|s| s == "cut") {
        report.check("an upload cut off halfway activates nothing and marks slot b invalid", None, || {
            let image = mkimage::update::read_image(&img("v2")).map_err(|e| e.to_string())?;
            let boots_before = command_lines(&serial.since(0)).len();
            let pw = password.clone();
            router.lan.enter(move || {
                let mut s = TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(ROUTER), 80), Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                let auth = runtime::base64::encode(format!("router:{pw}").as_bytes());
                write!(
                    s,
                    "PUT /update/root HTTP/1.1\r\nHost: {ROUTER}\r\nAuthorization: Basic {auth}\r\nX-Router-Update: 1\r\n\
                     Content-Length: {}\r\n\r\n",
                    image.root.len()
                )
                .map_err(|e| e.to_string())?;
                s.write_all(&image.root[..image.root.len() / 2]).map_err(|e| e.to_string())?;
                s.shutdown(std::net::Shutdown::Both).map_err(|e| e.to_string())
            })?;
            let st = lab::wait_for(Duration::from_secs(60), || {
                let st = status(&router, &password).ok()?;
                let b = st.slots.iter().find(|s| s.slot == bootslot::Slot::B)?.clone();
                (st.busy.is_none() && matches!(b.root, bootslot::api::Part::Missing { .. })).then_some((st, b))
            });
            let (st, b) = st.ok_or("slot b's root was not marked missing")?;
            let reason = match &b.root {
                bootslot::api::Part::Missing { reason } => reason.clone(),
                _ => String::new(),
            };
            if !reason.contains("cut off after") || b.activatable {
                return Err(format!("slot b: {b:?}"));
            }
            let r = router.lan.enter({
                let pw = password.clone();
                move || mkimage::update::Client::new(&ROUTER.to_string(), &pw).post("/update/activate")
            });
            let r = r.map_err(|e| e.to_string())?;
            if r.status != 409 {
                return Err(format!("activation answered {} {}", r.status, String::from_utf8_lossy(&r.body)));
            }
            let mut args: Vec<String> =
                vec!["rollback".into(), "--host".into(), "192.168.42.1".into(), "--password-file".into(), pw_arg.clone()];
            args.extend(backup_args.iter().cloned());
            let rollback = run(args);
            if rollback.code != Some(1) || !rollback.transcript().contains("cannot be activated") {
                return Err(format!("mkimage rollback onto the invalid slot: {:?}\n{}", rollback.code, rollback.transcript()));
            }
            if st.active != Some(bootslot::Slot::A) || command_lines(&serial.since(0)).len() != boots_before {
                return Err("the router rebooted".into());
            }
            Ok(format!("slot b: {reason}; activation 409; mkimage rollback refused; still e2e-1 on slot a, no reboot"))
        });
    }

    let mut kexec_down = None;
    let mut kexec_handoff = None;
    let mut kexec_gap = None;
    let mut kexec_steps = String::new();
    if want.iter().any(|s| s == "good") {
        let before = leases(&router);
        report.check(
            "a good update through kexec commits: version, default slot, leases, client address",
            None,
            || {
                let before = before.clone()?;
                let held =
                    lease_of(&before, lease.addr).ok_or_else(|| format!("no lease for {} in {before}", lease.addr))?;
                let from = serial.len();
                let tool = run(update_args(&img("v2"), &["--trial-seconds", GOOD_TRIAL_SECONDS]));
                if tool.code != Some(0) || !tool.stdout.starts_with("updated to e2e-2") {
                    return Err(format!("mkimage update: {:?}\n{}", tool.code, tool.transcript()));
                }
                let backup = newest_backup(&backups, &tool)?;
                let in_backup = backup_leases(&backup)?;
                if !in_backup.contains(&format!("\"{}\"", lease.addr)) {
                    return Err(format!("{}: dhcp4d/leases.json has no lease of {}: {in_backup}", backup.display(), lease.addr));
                }
                let t0 = tool.activated_at().ok_or("no activation line")?;
                kexec_down = prober.downtime(t0);
                kexec_handoff = handoff(&serial, from, t0);
                kexec_gap =
                    prober.outage(t0).map(|(last, miss, back)| back.saturating_duration_since(last.unwrap_or(miss)));
                kexec_steps = breakdown(&serial, from, t0, &prober);
                eprintln!("e2e: kexec update, seconds after the activation:\n{kexec_steps}");
                let lines = serial.since(from);
                let boots = command_lines(&lines);
                if boots.len() != 1 || !boots[0].contains("router.slot=b router.trial=1") {
                    return Err(format!("expected one boot of slot b on trial: {boots:?}"));
                }
                if firmware_boot(&lines) {
                    return Err("the console shows the firmware: not a kexec".into());
                }
                let st = status(&router, &password)?;
                if (st.active, st.default, st.running.version.as_str())
                    != (Some(bootslot::Slot::B), Some(bootslot::Slot::B), "e2e-2")
                {
                    return Err(format!("status after the update: {st:?}"));
                }
                let after = leases(&router)?;
                let kept = lease_of(&after, lease.addr)
                    .ok_or_else(|| format!("the lease of {} is gone: {after}", lease.addr))?;
                // The same lease, read back from /perm: same client, same last ACK
                // (a new grant would have a new one). Its expiry is recomputed
                // from the wall clock at load, to within a second.
                let expiry =
                    |l: &Value| l["expiry"].as_str().and_then(|t| t.parse::<runtime::timefmt::Timestamp>().ok());
                let drift = match (expiry(&held), expiry(&kept)) {
                    (Some(a), Some(b)) => (a.secs - b.secs).abs(),
                    _ => i64::MAX,
                };
                if kept["hardware_addr"] != held["hardware_addr"] || kept["last_ack"] != held["last_ack"] || drift > 2 {
                    return Err(format!("the lease changed: before {held}, after {kept}"));
                }
                // The client asks again from scratch (DISCOVER) and gets the same address.
                let again = discover(&router, dir.path())?;
                if again.addr != lease.addr {
                    return Err(format!("the client got {} instead of {}", again.addr, lease.addr));
                }
                Ok(format!(
                    "{}; backup {} taken first (holds the lease); lease of {} kept (expiry {}), address renewed; downtime {}",
                    tool.stdout.trim(),
                    backup.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
                    lease.addr,
                    kept["expiry"],
                    kexec_down.map_or("not measured".into(), |d| format!("{:.1} s", d.as_secs_f64()))
                ))
            },
        );
    }

    if want.iter().any(|s| s == "broken") {
        let broken_bins = bins_with(&bins, dir.path(), "dhcp4", "routerctl");
        build("broken", "e2e-3-broken", &broken_bins);
        report.check("a root whose services never become healthy rolls back on its own", None, || {
            let from = serial.len();
            let tool = run(update_args(&img("broken"), &["--trial-seconds", BROKEN_TRIAL_SECONDS]));
            if tool.code != Some(3)
                || !tool.stdout.starts_with("rolled back to e2e-2")
                || !tool.stdout.contains("dhcp4")
            {
                return Err(format!("mkimage update: {:?}\n{}", tool.code, tool.transcript()));
            }
            let lines = serial.since(from);
            let boots = command_lines(&lines);
            if boots.len() != 2
                || !boots[0].contains("router.slot=a router.trial=1")
                || !boots[1].contains("router.slot=b")
                || boots[1].contains("router.trial")
            {
                return Err(format!("expected the trial of slot a, then slot b through the firmware: {boots:?}"));
            }
            let st = status(&router, &password)?;
            let a = st.slots.iter().find(|s| s.slot == bootslot::Slot::A).ok_or("no slot a")?;
            if st.running.version != "e2e-2" || st.default != Some(bootslot::Slot::B) || a.failed.is_none() {
                return Err(format!("status after the rollback: {st:?}"));
            }
            Ok(tool.stdout.trim().to_owned())
        });
    }

    if want.iter().any(|s| s == "panic") {
        build("v4", "e2e-4", &bins);
        report.check("a kernel that panics at boot rolls back on its own", None, || {
            // The root names xz, which the kernel lacks: it cannot mount it and panics.
            let mut image = mkimage::update::read_image(&img("v4")).map_err(|e| e.to_string())?;
            image.root[20..22].copy_from_slice(&4u16.to_le_bytes());
            let from = serial.len();
            let pw = password.clone();
            let opts = mkimage::update::Options {
                kexec: true,
                trial_seconds: 300,
                wait: Duration::from_secs(900),
                progress: mkimage::progress::Progress::quiet(),
            };
            let outcome = router
                .lan
                .enter(move || {
                    mkimage::update::update(&mkimage::update::Client::new(&ROUTER.to_string(), &pw), &image, &opts)
                })
                .map_err(|e| e.to_string())?;
            let mkimage::update::Outcome::RolledBack { version, failed, reason } = &outcome else {
                return Err(format!("not rolled back: {outcome}"));
            };
            if version.version != "e2e-2" || failed.version != "e2e-4" || !reason.contains("never started its trial") {
                return Err(format!("{outcome}"));
            }
            let lines = serial.since(from);
            if !lines.iter().any(|l| l.contains("Kernel panic")) {
                return Err("no kernel panic on the console".into());
            }
            let boots = command_lines(&lines);
            if boots.len() != 2 || !boots[1].contains("router.slot=b") || boots[1].contains("router.trial") {
                return Err(format!("expected the trial of slot a, then slot b: {boots:?}"));
            }
            Ok(outcome.to_string())
        });
    }

    let mut firmware_down = None;
    let mut firmware_handoff = None;
    let mut firmware_gap = None;
    let mut firmware_steps = String::new();
    if want.iter().any(|s| s == "firmware") {
        if !img("v4").exists() {
            build("v4", "e2e-4", &bins);
        }
        report.check("a good update through the firmware (one-shot boot) commits", None, || {
            // After a rollback the old slot reports it from init before its
            // services are all up; the tool's backup needs backupd.
            wait_healthy(&router, &password, boot_wait)?;
            let from = serial.len();
            let tool = run(update_args(&img("v4"), &["--no-kexec", "--trial-seconds", GOOD_TRIAL_SECONDS]));
            if tool.code != Some(0) || !tool.stdout.starts_with("updated to e2e-4") {
                return Err(format!("mkimage update: {:?}\n{}", tool.code, tool.transcript()));
            }
            let t0 = tool.activated_at().ok_or("no activation line")?;
            firmware_down = prober.downtime(t0);
            firmware_handoff = handoff(&serial, from, t0);
            firmware_gap =
                prober.outage(t0).map(|(last, miss, back)| back.saturating_duration_since(last.unwrap_or(miss)));
            firmware_steps = breakdown(&serial, from, t0, &prober);
            eprintln!("e2e: firmware update, seconds after the activation:\n{firmware_steps}");
            let lines = serial.since(from);
            let boots = command_lines(&lines);
            if boots.len() != 1 || !boots[0].contains("router.slot=a router.trial=1") || !firmware_boot(&lines) {
                return Err(format!("expected one firmware boot of slot a on trial: {boots:?}"));
            }
            let st = status(&router, &password)?;
            if (st.active, st.default, st.running.version.as_str())
                != (Some(bootslot::Slot::A), Some(bootslot::Slot::A), "e2e-4")
            {
                return Err(format!("status after the update: {st:?}"));
            }
            Ok(format!(
                "{}; downtime {}",
                tool.stdout.trim(),
                firmware_down.map_or("not measured".into(), |d| format!("{:.1} s", d.as_secs_f64()))
            ))
        });
    }

    let fmt = |d: Option<Duration>| d.map_or("not measured".into(), |d| format!("{:.1} s", d.as_secs_f64()));
    report.figure("activation → the new kernel's first line, kexec (services stopped, kexec)", fmt(kexec_handoff));
    report.figure(
        "activation → the new kernel's first line, firmware (services stopped, reset, SeaBIOS, syslinux)",
        fmt(firmware_handoff),
    );
    report.figure("update downtime through kexec (activation → LAN client answered)", fmt(kexec_down));
    report.figure("update downtime through the firmware (activation → LAN client answered)", fmt(firmware_down));
    report.figure("LAN outage through kexec (last answer of the old system → first of the new)", fmt(kexec_gap));
    report.figure(
        "LAN outage through the firmware (last answer of the old system → first of the new)",
        fmt(firmware_gap),
    );
    for (what, steps) in [("kexec", &kexec_steps), ("firmware", &firmware_steps)] {
        if !steps.is_empty() {
            report.figure(&format!("{what} update, seconds after the activation"), format!("\n{steps}"));
        }
    }
    if let (Some(k), Some(f)) = (kexec_down, firmware_down) {
        report.figure(
            "kexec / firmware downtime",
            format!(
                "{:.2} (target ≤ 0.5; router7 measured about 13 s per update on real hardware)",
                k.as_secs_f64() / f.as_secs_f64()
            ),
        );
    }
    // Every run of the tool took one; --keep-backups 2 kept the two newest.
    let ours = backup_names(&backups);
    let ran = want.iter().filter(|s| ["cut", "good", "broken", "firmware"].contains(&s.as_str())).count();
    report.check("old backups beyond --keep-backups are removed", None, || {
        if ours.len() == ran.min(2) {
            Ok(format!("{} runs, {} kept: {ours:?}", ran, ours.len()))
        } else {
            Err(format!("{} runs, {ours:?} in {}", ran, backups.display()))
        }
    });
    drop(prober);
    drop(router);
    report.finish("updates under QEMU");
}

/// The backups of ours in `dir`, oldest first.
fn backup_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| r.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.retain(|n| mkimage::backups::order_key(n).is_some());
    names.sort_by_key(|n| mkimage::backups::order_key(n));
    names
}

/// The backup `tool` says it took, which must be the newest in `dir`.
fn newest_backup(dir: &Path, tool: &ToolRun) -> Result<PathBuf, String> {
    let newest = backup_names(dir).pop().ok_or_else(|| format!("no backup in {}", dir.display()))?;
    let path = dir.join(newest);
    if !tool.transcript().contains(&format!("backed up /perm to {} (", path.display())) {
        return Err(format!("mkimage did not say it took {}:\n{}", path.display(), tool.transcript()));
    }
    Ok(path)
}

/// `dhcp4d/leases.json` out of a backup, read by Debian's tar (which checks
/// the gzip stream to its end).
fn backup_leases(backup: &Path) -> Result<String, String> {
    let list = Command::new("tar").arg("-tzf").arg(backup).output().map_err(|e| e.to_string())?;
    let names = String::from_utf8_lossy(&list.stdout).into_owned();
    if !list.status.success() || !names.lines().any(|l| l.trim_start_matches("./") == "interfaces.json") {
        return Err(format!(
            "{}: not a complete tar.gz of /perm ({}): {names}",
            backup.display(),
            String::from_utf8_lossy(&list.stderr)
        ));
    }
    let out =
        Command::new("tar").arg("-xzOf").arg(backup).arg("dhcp4d/leases.json").output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{}: no dhcp4d/leases.json: {}", backup.display(), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One probe from the LAN namespace.
fn probe_once_in(router: &Router, kind: ProbeKind) -> bool {
    router.lan.enter(move || probe_once(kind))
}
