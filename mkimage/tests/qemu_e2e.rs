//! End to end under QEMU: builds the image from the real kernel
//! (kernel-config/build, cached) and the real static binaries
//! (ci/build-static), boots it in software emulation through SeaBIOS and
//! syslinux with uplink0 and lan0 as tap devices in an "ISP" and a "LAN"
//! namespace, and runs the checks of issue #10 (tests/lab) against it.
//!
//! What is not in the image yet is detected, not assumed: mkimage's report
//! says which services it left out (their binaries are still placeholders).
//! Checks that need one of them are skipped by name and the test says so;
//! they run by themselves once the service is real. Everything else must
//! pass, the real init included. Boot times are reported: QEMU start → the
//! kernel hands over to init, init start → the LAN client (asking from
//! power-on) holds a lease, init start → every service running and healthy.
//! The run ends with a power-off from the web interface and a look at
//! `/perm` as the services left it: who can read which state file.
//!
//! `ROUTER7_KERNEL` and `ROUTER7_BINS` point at prebuilt artifacts (ci/test
//! sets them); `ROUTER7_E2E_CONSOLE=1` shows the serial console live.
#![allow(clippy::unwrap_used)]

mod common;
mod lab;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::{Qemu, Serial, Tap, binaries, has_tap_open, is_kernel_line, kernel};
use lab::{Report, RouterUnderTest};
use mkimage::qemu::{Console, Machine, NetBackend, UPLINK_MAC};
use serde_json::Value;
use testbed::{Netns, TempDir, clock};

/// One QEMU at a time: two software-emulated machines on two cores would
/// make every timeout a coin toss.
static ONE_QEMU: Mutex<()> = Mutex::new(());

fn one_qemu() -> std::sync::MutexGuard<'static, ()> {
    ONE_QEMU.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a console line comes from service `name`: init mirrors every
/// service line as `<name>: <line>` (init/README.md, "Logs").
fn is_line_of(line: &str, name: &str) -> bool {
    line.strip_prefix(name).is_some_and(|rest| rest.starts_with(": "))
}

/// Init's own note that it started `name` (`init: <name>: started, pid …`).
fn is_started(line: &str, name: &str) -> bool {
    line.strip_prefix("init: ")
        .and_then(|l| l.strip_prefix(name))
        .is_some_and(|rest| rest.starts_with(": started, pid "))
}

/// Init's own note that `name` exited (`init: <name>: exited (…) after …`).
fn is_exit(line: &str, name: &str) -> bool {
    line.strip_prefix("init: ").and_then(|l| l.strip_prefix(name)).is_some_and(|rest| rest.starts_with(": exited"))
}

/// Fetches init's overview as JSON from the LAN.
fn init_status(lan: &Netns, password: &str) -> Result<Value, String> {
    let out = lan.exec(
        "curl",
        &[
            "-s",
            "--max-time",
            "10",
            "-u",
            &format!("router:{password}"),
            "-H",
            "Accept: application/json",
            "http://192.168.42.1/",
        ],
    );
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("init's / is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Asks init to power off through its web interface (JSON, with the CSRF
/// token of the overview); the HTTP status.
fn web_poweroff(lan: &Netns, password: &str) -> Result<u16, String> {
    let token = init_status(lan, password)?["csrf_token"].as_str().ok_or("no csrf_token in the overview")?.to_owned();
    let out = lan.exec(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
            "-u",
            &format!("router:{password}"),
            "-H",
            "Accept: application/json",
            "-H",
            &format!("X-CSRF-Token: {token}"),
            "-H",
            "Origin: http://192.168.42.1",
            "-X",
            "POST",
            "http://192.168.42.1/poweroff",
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("curl: {e} ({})", out.status))
}

/// Mode, owner and group of `path` on the ext4 `/perm` at `offset` of `image`.
fn perm_stat(image: &Path, offset: u64, path: &str) -> Result<(u32, u32, u32), String> {
    let out = Command::new("debugfs")
        .args(["-R", &format!("stat {path}"), &format!("{}?offset={offset}", image.display())])
        .output()
        .map_err(|e| format!("debugfs: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| -> Option<&str> { text.split(key).nth(1)?.split_whitespace().next() };
    let mode = field("Mode:").and_then(|m| u32::from_str_radix(m, 8).ok());
    let (uid, gid) = (field("User:").and_then(|u| u.parse().ok()), field("Group:").and_then(|g| g.parse().ok()));
    match (mode, uid, gid) {
        (Some(m), Some(u), Some(g)) => Ok((m, u, g)),
        _ => Err(format!("/perm{path}: not found ({})", String::from_utf8_lossy(&out.stderr).trim())),
    }
}

/// Whether a process of `uid` in `groups` may read `path` on `/perm`:
/// search permission on every folder above it, read permission on it.
fn perm_readable(image: &Path, offset: u64, path: &str, uid: u32, groups: &[u32]) -> Result<bool, String> {
    let mut parts: Vec<String> = vec!["/".into()];
    let mut at = String::new();
    for c in path.trim_start_matches('/').split('/') {
        at = format!("{at}/{c}");
        parts.push(at.clone());
    }
    for (i, p) in parts.iter().enumerate() {
        let (mode, owner, group) = perm_stat(image, offset, p)?;
        let bits = if owner == uid {
            mode >> 6
        } else if groups.contains(&group) {
            mode >> 3
        } else {
            mode
        } & 7;
        let need = if i + 1 == parts.len() { 4 } else { 1 };
        if bits & need == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The phase a service's own `/v1/status` shows once the router is online
/// (README "Control API"); a service not listed (a new one) must answer
/// and not be in `Error` or `Unhealthy`.
fn healthy_phase(name: &str) -> Option<&'static str> {
    match name {
        "netconfigd" => Some("Applied"),
        "dhcp4" | "dhcp6" => Some("Bound"),
        "dhcp4d" | "radvd" | "dnsd" | "captured" | "backupd" => Some("Up"),
        // Every check of its tree passes against the simulated ISP, which
        // also serves its TCP targets (lab::INTERNET4, INTERNET6).
        "diagd" => Some("Healthy"),
        _ => None,
    }
}

/// Whether init's overview (`status::Overview`: `services[]` with `name`,
/// `state`, `restarts`, `crash_loop` and the service's own `status`) shows
/// `name` running since its first start, with its own status healthy.
fn service_health(overview: &Value, name: &str) -> Result<String, String> {
    let services = overview["services"].as_array().ok_or("no services[] in init's overview")?;
    let s = services.iter().find(|s| s["name"] == name).ok_or_else(|| format!("{name}: not in init's overview"))?;
    let state = s["state"].as_str().unwrap_or("?");
    if state != "Running" {
        return Err(format!("{name}: state {state}, last exit {}", s["last_exit"]));
    }
    if s["restarts"] != 0 || s["crash_loop"] != false {
        return Err(format!("{name}: restarted {} times (crash loop {})", s["restarts"], s["crash_loop"]));
    }
    let phase = s["status"]["phase"].as_str().ok_or_else(|| {
        format!("{name}: no own status ({})", s["status_error"].as_str().unwrap_or("no status_error either"))
    })?;
    match healthy_phase(name) {
        Some(want) if phase != want => return Err(format!("{name}: phase {phase}, want {want}")),
        None if phase == "Error" || phase == "Unhealthy" => return Err(format!("{name}: phase {phase}")),
        _ => {}
    }
    Ok(format!("{name} {phase}"))
}

#[test]
fn router_image_boots_under_qemu_and_routes_between_isp_and_lan() {
    let test = "router_image_boots_under_qemu_and_routes_between_isp_and_lan";
    if !testbed::require(
        test,
        &[
            "qemu-system-x86_64",
            "dnsmasq",
            "kea-dhcp6",
            "dhclient",
            "dig",
            "curl",
            "ping",
            "radvd",
            "e2fsck",
            "timeout",
            "syslinux",
            "mkfs.ext4",
            "debugfs",
        ],
    ) {
        return;
    }
    let _one = one_qemu();
    let echo = std::env::var("ROUTER7_E2E_CONSOLE").is_ok_and(|v| v == "1");
    let kernel = kernel();
    let bins = binaries();
    let dir = TempDir::new("e2e");
    let image = dir.path().join("router.img");
    let password_file = dir.path().join("password");
    let out = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .arg("build")
        .arg("--kernel")
        .arg(&kernel)
        .arg("--bins")
        .arg(&bins)
        .arg("--out")
        .arg(&image)
        .arg("--password-file")
        .arg(&password_file)
        .args(["--hostname", "router7-e2e"])
        .output()
        .unwrap();
    assert!(out.status.success(), "mkimage build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let build: Value = serde_json::from_slice(&std::fs::read(image.with_extension("json")).unwrap()).unwrap();
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_owned();
    let in_image: Vec<String> =
        build["services"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    let left_out: Vec<(String, String)> = build["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_owned(), l["reason"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(build["init_placeholder"], false, "the image's /init is the placeholder: build init (issue #9)");
    for (name, reason) in &left_out {
        eprintln!("e2e: {name} is not in the image: {reason}; its checks are skipped");
    }

    // Taps in the root namespace; QEMU opens them, then they move into the lab.
    let id = std::process::id() % 100_000;
    let tap_up = Tap::new(format!("r7tu{id}"));
    let tap_lan = Tap::new(format!("r7tl{id}"));
    let isp_ns = Netns::new("isp");
    let lan = Netns::new("lan");

    let mut machine = Machine::new(&image);
    machine.console = Console::Stdout;
    machine.uplink = NetBackend::Tap(tap_up.0.clone());
    machine.lan = NetBackend::Tap(tap_lan.0.clone());
    let qemu_log = dir.path().join("qemu.stderr");
    let started = clock::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(machine.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&qemu_log).unwrap())
        .spawn()
        .unwrap();
    let serial = Serial::start(child.stdout.take().unwrap(), started, echo);
    let qemu = Qemu { child, serial: serial.clone() };
    let pid = qemu.child.id();
    lab::wait_for(Duration::from_secs(30), || {
        (has_tap_open(pid, &tap_up.0) && has_tap_open(pid, &tap_lan.0)).then_some(())
    })
    .unwrap_or_else(|| {
        panic!("QEMU did not open its taps: {}", std::fs::read_to_string(&qemu_log).unwrap_or_default())
    });
    testbed::run("ip", &["link", "set", &tap_up.0, "netns", isp_ns.name()]);
    testbed::run("ip", &["link", "set", &tap_lan.0, "netns", lan.name()]);
    isp_ns.ip(&["link", "set", &tap_up.0, "name", "isp0"]);
    lan.ip(&["link", "set", &tap_lan.0, "name", "eth0"]);
    lan.ip(&["link", "set", "eth0", "up"]);
    // A LAN device plugged in while the router boots: it asks from now on.
    let client = lab::LanClient::start(&lan, "eth0", dir.path());
    let isp = lab::Isp::start(isp_ns, "isp0");

    let mut report = Report::default();
    let boot = Duration::from_secs(240);
    let mut handover_at = None;
    report.check("kernel boots from the disk and hands over to init", None, || {
        let (_, t, _) = serial
            .wait(0, boot, |l| l.contains("Run /init as init process"))
            .ok_or("no \"Run /init as init process\" on the serial console")?;
        let all = serial.since(0);
        for want in
            ["SYSLINUX", "Loading /vmlinuz-a", "router.slot=a", "VFS: Mounted root (squashfs filesystem) readonly"]
        {
            if !all.iter().any(|l| l.contains(want)) {
                return Err(format!("{want:?} not on the console"));
            }
        }
        handover_at = Some(t);
        Ok(format!("SeaBIOS → syslinux → vmlinuz-a → squashfs root → /init after {:.1} s", t.as_secs_f64()))
    });
    let mut init_at = None;
    report.check(
        "init starts (its first line on the serial console)",
        handover_at.is_none().then(|| "no handover".into()),
        || {
            let from = serial.wait(0, boot, |l| l.contains("Run /init as init process")).map_or(0, |(i, _, _)| i + 1);
            let (_, t, line) = serial
                .wait(from, Duration::from_secs(60), |l| !l.trim().is_empty() && !is_kernel_line(l))
                .ok_or("init printed nothing")?;
            if !line.starts_with("init: ") {
                return Err(format!("the first line after the kernel's is not init's: {line:?}"));
            }
            init_at = Some(t);
            Ok(format!("{line:?} at {:.1} s", t.as_secs_f64()))
        },
    );
    if let Some(t) = handover_at {
        report.figure("QEMU start → kernel hands over to init", format!("{:.2} s", t.as_secs_f64()));
    }
    if let Some(t) = init_at {
        report.figure("QEMU start → init's first line", format!("{:.2} s", t.as_secs_f64()));
    }

    let missing = |service: &str| -> Option<String> {
        if service == "init" {
            return None;
        }
        if in_image.iter().any(|s| s == service) {
            return None;
        }
        let reason = left_out.iter().find(|(n, _)| n == service).map_or("not in the image", |(_, r)| r.as_str());
        Some(format!("{service} is not in the image: {reason}"))
    };

    for service in &in_image {
        report.check(&format!("init starts {service} and it logs on the serial console"), missing(service), || {
            let (i, t, _) = serial
                .wait(0, Duration::from_secs(60), |l| is_started(l, service))
                .ok_or_else(|| format!("no \"init: {service}: started\" on the console"))?;
            let (_, t2, line) = serial
                .wait(i, Duration::from_secs(60), |l| is_line_of(l, service) || is_exit(l, service))
                .ok_or_else(|| format!("no line prefixed \"{service}: \" on the console"))?;
            if is_exit(&line, service) {
                return Err(format!("{line:?} at {:.1} s", t2.as_secs_f64()));
            }
            Ok(format!("started at {:.1} s; {line:?} at {:.1} s", t.as_secs_f64(), t2.as_secs_f64()))
        });
    }

    let router = RouterUnderTest { uplink_mac: UPLINK_MAC, password: &password, missing: &missing };
    let needs_web = missing("netconfigd").or_else(|| missing("init"));
    // All services healthy, checked from the LAN as soon as the LAN client
    // is configured, so the figure is the router's, not the checks'.
    let healthy = |wait: Duration| -> Result<Vec<String>, String> {
        let mut last = Err("no answer yet".to_owned());
        lab::wait_for(wait, || {
            last = init_status(&lan, &password)
                .and_then(|v| in_image.iter().map(|s| service_health(&v, s)).collect::<Result<Vec<_>, _>>());
            last.as_ref().ok().cloned()
        })
        .ok_or_else(|| format!("not every service is running and healthy: {}", last.unwrap_err()))
    };
    let mut all_healthy_at = None;
    let mut after_lease = |report: &mut Report| {
        report.check(
            "init shows every service running, never restarted, healthy by its own status",
            needs_web.clone(),
            || {
                let v = healthy(Duration::from_secs(120))?;
                all_healthy_at = Some(clock::now());
                Ok(v.join(", "))
            },
        );
    };
    let lease_at =
        lab::run_checks(&mut report, &router, &isp, &lan, "eth0", &client, Duration::from_secs(120), &mut after_lease);
    if let (Some(lease), Some(init)) = (lease_at, init_at) {
        report.figure(
            "init start → LAN client holds a lease (it asks every 1–2 s from power-on)",
            format!("{:.2} s", (lease - started - init).as_secs_f64()),
        );
    }
    if let (Some(all), Some(init)) = (all_healthy_at, init_at) {
        report.figure(
            "init start → every service running and healthy (polled from the LAN)",
            format!("{:.2} s", (all - started - init).as_secs_f64()),
        );
    }

    report.check("no service exited or restarted while the checks ran", needs_web.clone(), || {
        let v = healthy(Duration::from_secs(10))?;
        let exits: Vec<String> =
            serial.since(0).into_iter().filter(|l| in_image.iter().any(|s| is_exit(l, s))).collect();
        if !exits.is_empty() {
            return Err(format!("init saw services exit: {}", exits.join(" | ")));
        }
        Ok(format!("still {}", v.join(", ")))
    });
    // Last: a clean power-off from the web interface, then /perm as the
    // services left it, read from the image. Readers that have not landed
    // yet (dnsd, diagd) are checked too: their files must be ready for them.
    let mut qemu = qemu;
    let mut powered_off = false;
    report.check("a power-off from the web interface stops the machine cleanly", needs_web, || {
        let code = web_poweroff(&lan, &password)?;
        if code != 202 {
            return Err(format!("POST /poweroff answered {code}, want 202"));
        }
        let asked = clock::now();
        let status = lab::wait_for(Duration::from_secs(90), || qemu.child.try_wait().ok().flatten())
            .ok_or("QEMU still runs 90 s after the power-off")?;
        powered_off = true;
        let all = serial.since(0);
        for want in ["every service stopped; poweroff", "reboot: Power down"] {
            if !all.iter().any(|l| l.contains(want)) {
                return Err(format!("{want:?} not on the console"));
            }
        }
        Ok(format!("QEMU exited ({status}) {:.1} s after the request", (clock::now() - asked).as_secs_f64()))
    });
    let perm_at = build["partitions"][3]["start"].as_u64().unwrap();
    let no_poweroff = (!powered_off).then(|| "the machine was not powered off cleanly".to_owned());
    report.check("/perm is clean after the power-off (e2fsck)", no_poweroff.clone(), || {
        let out = Command::new("e2fsck")
            .args(["-fn", &format!("{}?offset={perm_at}", image.display())])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "e2fsck: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok("no errors, no journal to replay".into())
    });
    let groups_of = |name: &str| -> (u32, Vec<u32>) {
        let m = mkimage::services::Manifest::for_services(&[name]);
        let s = &m.services[0];
        (s.uid, std::iter::once(s.gid).chain(s.groups.iter().copied()).collect())
    };
    // (file, its writer, who must read it, who must not)
    let files: &[(&str, &str, &[&str], &[&str])] = &[
        ("/interfaces.json", "init", &["netconfigd", "dhcp4", "dhcp4d", "dnsd", "radvd"], &[]),
        ("/dhcp4/wire/lease.json", "dhcp4", &["netconfigd", "dnsd", "diagd"], &[]),
        ("/dhcp6/wire/lease.json", "dhcp6", &["netconfigd", "radvd", "dnsd", "diagd"], &[]),
        ("/dhcp4d/leases.json", "dhcp4d", &["dnsd"], &[]),
        ("/router/password", "init", &["captured", "backupd"], &["dhcp4d", "dnsd", "netconfigd", "radvd"]),
        ("/init/logs/dhcp4d.log", "init", &[], &["dhcp4d", "dnsd", "netconfigd"]),
    ];
    for (file, writer, readers, not_readers) in files {
        let skip = no_poweroff.clone().or_else(|| missing(writer));
        report.check(&format!("/perm{file} is readable by {readers:?} and not by {not_readers:?}"), skip, || {
            let mut wrong = Vec::new();
            for (who, want) in readers.iter().map(|r| (r, true)).chain(not_readers.iter().map(|r| (r, false))) {
                let (uid, groups) = groups_of(who);
                if perm_readable(&image, perm_at, file, uid, &groups)? != want {
                    wrong.push(format!("{who} {}", if want { "cannot read it" } else { "can read it" }));
                }
            }
            let (mode, uid, gid) = perm_stat(&image, perm_at, file)?;
            if !wrong.is_empty() {
                return Err(format!("mode {mode:o} {uid}:{gid}: {}", wrong.join(", ")));
            }
            Ok(format!("mode {:o} {uid}:{gid}", mode & 0o7777))
        });
    }
    let client_mac = lan.ip_json(&["link", "show", "eth0"])[0]["address"].as_str().unwrap_or("").to_owned();
    report.check(
        "dhcp4d kept the LAN client's lease in /perm/dhcp4d/leases.json",
        no_poweroff.or_else(|| missing("dhcp4d")),
        || {
            let out = Command::new("debugfs")
                .args(["-R", "cat /dhcp4d/leases.json", &format!("{}?offset={perm_at}", image.display())])
                .output()
                .map_err(|e| e.to_string())?;
            let leases: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("leases.json: {e}"))?;
            let found = leases
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["hardware_addr"].as_str().is_some_and(|m| m.eq_ignore_ascii_case(&client_mac)));
            found.map(|l| l.to_string()).ok_or_else(|| format!("no lease for {client_mac}: {leases}"))
        },
    );
    drop(qemu);
    report.finish("router image under QEMU");
}

#[test]
fn console_lines_are_told_apart() {
    assert!(is_kernel_line("[    2.087756] Run /init as init process"));
    assert!(!is_kernel_line("init: not implemented yet (issue #9)"));
    assert!(!is_kernel_line("dnsd: listening"));
    assert!(is_line_of("dnsd: listening on 192.168.42.1:53", "dnsd"));
    assert!(!is_line_of("dhcp4d: serving", "dhcp4"));
    assert!(!is_line_of("init: dhcp4: started, pid 58, attempt 1 (boot)", "dhcp4"));
    assert!(is_started("init: dhcp4: started, pid 58, attempt 1 (boot)", "dhcp4"));
    assert!(!is_started("init: dhcp4d: started, pid 60, attempt 1 (boot)", "dhcp4"));
    assert!(is_exit("init: radvd: exited (exit code 1) after 0.5 s; restarting in 1s", "radvd"));
    assert!(!is_exit("radvd: exited the loop", "radvd"));
}

#[test]
fn service_health_reads_inits_overview() {
    let v: Value = serde_json::json!({"services":[
        {"name":"dhcp4","state":"Running","restarts":0,"crash_loop":false,"status":{"phase":"Bound"}},
        {"name":"radvd","state":"Running","restarts":0,"crash_loop":false,"status":{"phase":"Pending"}},
        {"name":"dhcp6","state":"Running","restarts":2,"crash_loop":false,"status":{"phase":"Bound"}},
        {"name":"dhcp4d","state":"Backoff","restarts":1,"crash_loop":false,"last_exit":{"code":1}},
        {"name":"dnsd","state":"Running","restarts":0,"crash_loop":false,"status_error":"not answering: x"},
        {"name":"diagd","state":"Running","restarts":0,"crash_loop":false,"status":{"phase":"Healthy"}}
    ]});
    assert_eq!(service_health(&v, "dhcp4").unwrap(), "dhcp4 Bound");
    assert!(service_health(&v, "diagd").is_ok());
    for (name, why) in [
        ("radvd", "want Up"),
        ("dhcp6", "restarted 2"),
        ("dhcp4d", "state Backoff"),
        ("dnsd", "not answering"),
        ("netconfigd", "not in"),
    ] {
        let err = service_health(&v, name).unwrap_err();
        assert!(err.contains(why), "{name}: {err}");
    }
}

/// The firmware path of a trial boot (issue #11) on the real image: with
/// syslinux's one-shot command set to `b router.trial=1`, the machine boots
/// slot B once with the trial flag; after a reset (as the watchdog, a panic or
/// a failed trial would cause) it boots the default slot A, and the loader
/// has cleared the command on the disk.
#[test]
fn one_shot_boot_runs_slot_b_once_then_the_default_slot() {
    let test = "one_shot_boot_runs_slot_b_once_then_the_default_slot";
    if !testbed::require(test, &["qemu-system-x86_64", "syslinux", "mkfs.ext4", "debugfs"]) {
        return;
    }
    let _one = one_qemu();
    let kernel = kernel();
    let bins = binaries();
    let dir = TempDir::new("once");
    let image = dir.path().join("router.img");
    let mkimage = |args: &[&std::ffi::OsStr]| Command::new(env!("CARGO_BIN_EXE_mkimage")).args(args).output().unwrap();
    let out = mkimage(&[
        "build".as_ref(),
        "--kernel".as_ref(),
        kernel.as_os_str(),
        "--bins".as_ref(),
        bins.as_os_str(),
        "--out".as_ref(),
        image.as_os_str(),
        "--password-file".as_ref(),
        dir.path().join("password").as_os_str(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = mkimage(&["boot-once".as_ref(), image.as_os_str(), "b router.trial=1".as_ref()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut machine = Machine::new(&image);
    machine.console = Console::Stdout;
    machine.lan = NetBackend::Unplugged;
    machine.uplink = NetBackend::Unplugged;
    let monitor = dir.path().join("monitor.sock");
    machine.monitor_socket = Some(monitor.clone());
    let started = clock::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(machine.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let echo = std::env::var("ROUTER7_E2E_CONSOLE").is_ok_and(|v| v == "1");
    let serial = Serial::start(child.stdout.take().unwrap(), started, echo);
    let qemu = Qemu { child, serial: serial.clone() };

    let boot = Duration::from_secs(240);
    let (i, _, line) =
        serial.wait(0, boot, |l| l.contains("Command line:")).expect("no kernel command line on the console");
    assert!(
        line.contains("router.slot=b router.trial=1") && line.contains("BOOT_IMAGE=/vmlinuz-b"),
        "first boot: {line}"
    );
    let (i, t, _) =
        serial.wait(i, boot, |l| l.contains("Run /init as init process")).expect("slot b did not reach init");
    eprintln!("e2e: slot b (trial) reached init at {:.1} s; resetting the machine", t.as_secs_f64());
    let mut m = lab::wait_for(Duration::from_secs(10), || std::os::unix::net::UnixStream::connect(&monitor).ok())
        .expect("no monitor socket");
    std::io::Write::write_all(&mut m, b"system_reset\n").unwrap();
    let (_, _, line) = serial.wait(i, boot, |l| l.contains("Command line:")).expect("no second boot after the reset");
    assert!(
        line.contains("router.slot=a") && !line.contains("router.trial") && line.contains("BOOT_IMAGE=/vmlinuz-a"),
        "second boot: {line}"
    );
    serial.wait(i, boot, |l| l.contains("Run /init as init process")).expect("slot a did not reach init");
    drop(m);
    drop(qemu);
    let out = mkimage(&["boot-once".as_ref(), image.as_os_str()]);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "the loader cleared the one-shot command: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}
