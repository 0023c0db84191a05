//! init in PID 1 mode (no `--supervise-only`), as far as it goes without a
//! kernel of its own: in a chroot holding an image-like root (`/init`,
//! `/etc/router/…`, `/svc/…`), as PID 1 of new PID, mount, UTS and network
//! namespaces. It mounts the virtual file systems, sets the hostname, brings
//! `lo` up, falls back to a temporary `/perm` (this machine's kernel command
//! line has no `root=`, so no disk is touched), pings the watchdog, supervises,
//! and on SIGTERM / SIGUSR2 stops everything and calls reboot(2), which the
//! kernel turns into SIGHUP / SIGINT for a namespace's init. The disk paths
//! (finding and formatting partition 4) are covered by the boot-sequence unit
//! tests and the image's QEMU test.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wait_for;
use serde_json::json;

/// Copies `binary` and the shared libraries `ldd` lists into `root`.
fn install(root: &Path, binary: &Path, dest: &str) {
    let target = root.join(dest.trim_start_matches('/'));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    testbed::install_executable(binary, &target);
    let out = Command::new("ldd").arg(binary).output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let lib = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(lib) = lib {
            let dst = root.join(lib.trim_start_matches('/'));
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            if !dst.exists() {
                // The loader is exec'd as the interpreter: the same ETXTBSY care.
                testbed::install_executable(Path::new(lib), &dst);
            }
        }
    }
}

struct Booted {
    _dir: testbed::TempDir,
    root: PathBuf,
    child: Option<Child>,
    pid: i32,
}

impl Booted {
    fn boot(tag: &str) -> Self {
        let dir = testbed::TempDir::new(tag);
        let root = dir.path().join("root");
        for d in ["proc", "sys", "dev", "run", "tmp", "perm", "etc/router", "svc", "bin"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        install(&root, Path::new(env!("CARGO_BIN_EXE_init")), "/init");
        install(&root, Path::new(env!("CARGO_BIN_EXE_routerctl")), "/bin/routerctl");
        install(&root, Path::new("/bin/sh"), "/bin/sh");
        install(&root, Path::new("/bin/sleep"), "/bin/sleep");
        testbed::write_executable(&root.join("svc/hello"), "#!/bin/sh\necho \"hello from $HOME\"\nexec sleep 1000\n");
        let manifest = json!({"services": [
            {"name": "hello", "path": "/svc/hello", "uid": 1001, "gid": 1001, "groups": [1000], "capabilities": ["NET_BIND_SERVICE"]}
        ]});
        fs::write(root.join("etc/router/services.json"), manifest.to_string()).unwrap();
        fs::write(root.join("etc/router/password"), "pid1-password\n").unwrap();
        // As mkimage writes it (pretty JSON).
        fs::write(
            root.join("etc/router/version"),
            "{\n  \"version\": \"pid1-test\",\n  \"build_time\": \"2025-01-01T00:00:00Z\"\n}\n",
        )
        .unwrap();
        fs::write(root.join("etc/hostname"), "testrouter\n").unwrap();
        // The console: a file here (init only appends to it, as to /dev/console).
        fs::write(root.join("console.log"), b"").unwrap();
        // A stand-in for /dev/watchdog: init writes its pings and the magic 'V' here.
        fs::write(root.join("watchdog"), b"").unwrap();
        let child = Command::new("unshare")
            .args(["--pid", "--fork", "--mount", "--uts", "--net", "--kill-child", "chroot"])
            .arg(&root)
            .args(["/init", "--console", "/console.log", "--watchdog", "/watchdog"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let unshare = child.id();
        let pid = wait_for(Duration::from_secs(10), "PID 1 in its namespace", || {
            fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        let booted = Self { _dir: dir, root, child: Some(child), pid };
        wait_for(Duration::from_secs(20), "init's control socket", || booted.get("/v1/healthz").ok());
        booted
    }

    /// init's view of its files (its mounts are in its own namespace).
    fn inside(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.pid))
    }

    fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let r = runtime::unix_http::request(
            &self.inside("/run/router/init.sock"),
            "GET",
            path,
            b"",
            Duration::from_secs(10),
        )
        .map_err(|e| e.to_string())?;
        r.json().map_err(|e| e.to_string())
    }

    fn console(&self) -> String {
        fs::read_to_string(self.root.join("console.log")).unwrap_or_default()
    }

    /// Signals init and returns the signal the kernel ended it with.
    fn signal_and_wait(&mut self, signal: rustix::process::Signal) -> Option<i32> {
        rustix::process::kill_process(rustix::process::Pid::from_raw(self.pid).unwrap(), signal).unwrap();
        let mut child = self.child.take().unwrap();
        let status = wait_for(Duration::from_secs(30), "init to go down", || child.try_wait().unwrap());
        // unshare reports its child's death by a signal as 128 + signal.
        status.code().map(|c| c - 128).or(status.signal())
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(self.pid).unwrap(),
                rustix::process::Signal::KILL,
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn require(test: &str) -> bool {
    testbed::require(test, &["unshare", "chroot", "ldd", "nsenter"])
}

#[test]
fn as_pid_1_it_mounts_supervises_and_reboots_on_sigterm() {
    if !require("as_pid_1_it_mounts_supervises_and_reboots_on_sigterm") {
        return;
    }
    let mut b = Booted::boot("pid1-reboot");
    let status = wait_for(Duration::from_secs(15), "hello to run", || {
        let s = b.get("/v1/status").ok()?;
        (s["services"][0]["state"] == "Running").then_some(s)
    });
    assert_eq!(status["mode"], "pid1");
    assert_eq!(status["hostname"], "testrouter");
    assert_eq!(status["version"], "pid1-test (built 2025-01-01T00:00:00Z)");
    assert_eq!(status["perm"]["state"], "temporary", "{}", status["perm"]);
    assert!(status["perm"]["detail"].as_str().unwrap().contains("no root="));
    assert_eq!(status["boot"]["root"], serde_json::Value::Null);
    let cond = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PermPersistent").unwrap().clone();
    assert_eq!(cond["status"], "False");
    // lo is up (the kernel gave it 127.0.0.1 when it came up) in a fresh network namespace.
    assert!(
        status["addresses"].as_array().unwrap().iter().any(|a| a["address"] == "127.0.0.1" && a["interface"] == "lo")
    );
    assert!(status["listeners"].as_array().unwrap().iter().any(|l| l == "127.0.0.1:80"), "{}", status["listeners"]);
    let uts = Command::new("nsenter")
        .args(["-t", &b.pid.to_string(), "-u", "cat", "/proc/sys/kernel/hostname"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&uts.stdout).trim(), "testrouter", "sethostname in its UTS namespace");
    let mounts = fs::read_to_string(format!("/proc/{}/mounts", b.pid)).unwrap();
    for (fstype, target) in [
        ("proc", "/proc"),
        ("sysfs", "/sys"),
        ("devtmpfs", "/dev"),
        ("devpts", "/dev/pts"),
        ("tmpfs", "/dev/shm"),
        ("tmpfs", "/run"),
        ("tmpfs", "/tmp"),
        ("tmpfs", "/perm"),
    ] {
        let root = b.root.display().to_string();
        assert!(
            mounts.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(2) == Some(&fstype)
                    && (f.get(1) == Some(&target) || f.get(1) == Some(&format!("{root}{target}").as_str()))
            }),
            "{fstype} on {target} missing:\n{mounts}"
        );
    }
    // The password was copied onto the (temporary) /perm; the service's home is there.
    assert_eq!(fs::read_to_string(b.inside("/perm/router/password")).unwrap().trim(), "pid1-password");
    let logs = b.get("/v1/services/hello/logs?since=0").unwrap();
    assert!(logs["lines"].as_array().unwrap().iter().any(|l| l["text"] == "hello from /perm/hello"), "{logs}");
    // The kernel's log is read into its ring.
    let kernel = b.get("/v1/services/kernel/logs?limit=5").unwrap();
    assert!(!kernel["lines"].as_array().unwrap().is_empty(), "{kernel}");
    // routerctl on the image talks to it (from inside init's mount namespace and root).
    let out = Command::new("nsenter")
        .args(["-t", &b.pid.to_string(), "-m", "-r", "/bin/routerctl", "status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello"), "{out:?}");
    // The watchdog has been pinged.
    assert!(!fs::read(b.root.join("watchdog")).unwrap().is_empty());

    let signal = b.signal_and_wait(rustix::process::Signal::TERM);
    assert_eq!(
        signal,
        Some(rustix::process::Signal::HUP.as_raw()),
        "reboot(2) in a PID namespace ends its init with SIGHUP"
    );
    let console = b.console();
    assert!(console.contains("init: router7 PID 1 starting"), "{console}");
    assert!(console.contains("hello: exited (signal 15)"), "{console}");
    assert!(console.contains("every service stopped; reboot"), "{console}");
    assert!(console.contains("init: rebooting"), "{console}");
    let wd = fs::read(b.root.join("watchdog")).unwrap();
    assert_eq!(wd.last(), Some(&b'V'), "magic close before reboot");
}

#[test]
fn as_pid_1_sigusr2_powers_off() {
    if !require("as_pid_1_sigusr2_powers_off") {
        return;
    }
    let mut b = Booted::boot("pid1-poweroff");
    wait_for(Duration::from_secs(15), "hello to run", || {
        (b.get("/v1/services/hello").ok()?["state"] == "Running").then_some(())
    });
    let signal = b.signal_and_wait(rustix::process::Signal::USR2);
    assert_eq!(signal, Some(rustix::process::Signal::INT.as_raw()), "power-off ends a namespace's init with SIGINT");
    assert!(b.console().contains("init: powering off"), "{}", b.console());
}
