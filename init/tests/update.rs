//! Updates on a real init (supervise-only, in a PID namespace), with a folder
//! standing in for the boot partition (syslinux.cfg, ldlinux.sys with a real
//! ADV, the kernels) and files for the root partitions: uploads over TCP
//! (hashes, limits, refusals, an upload cut off halfway), the activation
//! through the one-shot boot, and the trial boot's commit and rollback —
//! including the old slot's record after a trial that never reached init.
//! The kernel and the firmware are the QEMU test's (mkimage/tests/update_e2e.rs).
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::{Init, Options, PASSWORD, Svc, TempDir, wait_for};

const SLOT_BYTES: u64 = 8 << 20;

fn require(test: &str) -> bool {
    testbed::require(test, &["unshare", "sh", "sleep"])
}

fn loader_config(default: &str) -> String {
    format!(
        "SERIAL 0 115200\nPROMPT 0\nDEFAULT {default}\n\
         LABEL a\n  LINUX /vmlinuz-a\n  APPEND console=ttyS0,115200 root=/dev/vda2 ro init=/init panic=10 router.slot=a\n\
         LABEL b\n  LINUX /vmlinuz-b\n  APPEND console=ttyS0,115200 root=/dev/vda3 ro init=/init panic=10 router.slot=b\n"
    )
}

fn squashfs(len: usize, seed: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    v[..4].copy_from_slice(b"hsqs");
    v[40..48].copy_from_slice(&(len as u64).to_le_bytes());
    v
}

fn bzimage(len: usize, seed: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect();
    // setup_sects 1, and a payload of the rest (in 16-byte paragraphs).
    v[0x1f1] = 1;
    v[0x1f4..0x1f8].copy_from_slice(&u32::try_from((len - 1024) / 16).unwrap().to_le_bytes());
    v[510] = 0x55;
    v[511] = 0xaa;
    v[514..518].copy_from_slice(b"HdrS");
    v
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A folder with the boot partition's files, the two root "partitions" and
/// a kernel command line, for init to be started in.
fn world(tag: &str, cmdline: &str, default: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let boot = dir.path().join("boot");
    fs::create_dir_all(&boot).unwrap();
    fs::write(boot.join("syslinux.cfg"), loader_config(default)).unwrap();
    let mut loader = vec![0x90u8; 30_000];
    loader.extend_from_slice(&bootslot::adv::encode(&[]).unwrap());
    fs::write(boot.join("ldlinux.sys"), loader).unwrap();
    fs::write(boot.join("vmlinuz-a"), bzimage(100_000, 1)).unwrap();
    fs::write(boot.join("vmlinuz-b"), bzimage(100_000, 1)).unwrap();
    for s in ["slot-a.img", "slot-b.img"] {
        fs::File::create(dir.path().join(s)).unwrap().set_len(SLOT_BYTES).unwrap();
    }
    fs::write(dir.path().join("cmdline"), cmdline).unwrap();
    dir
}

fn options(dir: &Path) -> Options {
    let p = |n: &str| dir.join(n).display().to_string();
    Options {
        args: vec![
            "--update-boot".into(),
            p("boot"),
            "--update-slot-a".into(),
            p("slot-a.img"),
            "--update-slot-b".into(),
            p("slot-b.img"),
            "--cmdline".into(),
            p("cmdline"),
        ],
        ..Options::default()
    }
}

/// A raw HTTP exchange: the head (with `Content-Length: declared` when
/// given), `body`, then the answer's head and as much body as it declares.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    declared: Option<usize>,
    body: &[u8],
) -> (u16, Value) {
    let mut s = open(addr, method, path, headers, declared);
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok());
    let mut rest = vec![0u8; length.unwrap_or(0)];
    s.read_exact(&mut rest).unwrap();
    raw.extend(rest);
    let r = runtime::unix_http::parse_response(&raw).unwrap();
    (r.status, r.json().unwrap_or(Value::Null))
}

fn open(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], declared: Option<usize>) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(n) = declared {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// An upload that declares `declared` bytes, sends `sent` and goes away.
fn cut_off(addr: SocketAddr, path: &str, headers: &[(&str, &str)], declared: usize, sent: &[u8]) {
    let mut s = open(addr, "PUT", path, headers, Some(declared));
    s.write_all(sent).unwrap();
    s.shutdown(std::net::Shutdown::Both).unwrap();
}

fn auth() -> String {
    format!("Basic {}", runtime::base64::encode(format!("router:{PASSWORD}").as_bytes()))
}

fn put(init: &Init, path: &str, body: &[u8], version: Option<&str>) -> (u16, Value) {
    let a = auth();
    let mut h = vec![("Authorization", a.as_str()), ("X-Router-Update", "1")];
    if let Some(v) = version {
        h.push(("X-Router-Image-Version", v));
        h.push(("X-Router-Image-Build-Time", "2025-06-01T00:00:00Z"));
    }
    send(init.web_addr(), "PUT", path, &h, Some(body.len()), body)
}

fn slot(status: &Value, name: &str) -> Value {
    status["slots"].as_array().unwrap().iter().find(|s| s["slot"] == name).unwrap().clone()
}

#[test]
fn uploads_are_hashed_checked_and_activate_a_trial_through_the_one_shot_boot() {
    if !require("uploads_are_hashed_checked_and_activate_a_trial_through_the_one_shot_boot") {
        return;
    }
    let dir =
        world("update-upload", "BOOT_IMAGE=/vmlinuz-a console=ttyS0,115200 root=/dev/vda2 ro router.slot=a\n", "a");
    let root = dir.path().to_owned();
    let init = Init::start_in(dir, vec![Svc::new("idle", "exec sleep 1000")], options(&root));
    let addr = init.web_addr();
    let a = auth();
    let ok = [("Authorization", a.as_str()), ("X-Router-Update", "1")];

    let (code, f) = send(addr, "GET", "/update/features", &[("Authorization", &a)], None, b"");
    assert_eq!(code, 200, "{f}");
    assert_eq!(
        (f["protocol"].as_u64(), f["hash"].as_str(), f["active"].as_str()),
        (Some(1), Some("sha256"), Some("a"))
    );
    assert_eq!(f["max_root_bytes"], SLOT_BYTES);
    let st = init.get("/v1/update");
    assert_eq!((st["active"].as_str(), st["inactive"].as_str()), (Some("a"), Some("b")));
    wait_for(Duration::from_secs(10), "the default slot read from syslinux.cfg", || {
        (init.get("/v1/update")["default"] == "a").then_some(())
    });

    // Refusals change nothing.
    let root_image = squashfs(3 << 20, 5);
    let bad_pw = format!("Basic {}", runtime::base64::encode(b"router:nope"));
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<usize>, u16);
    let cases: Vec<Case<'_>> = vec![
        (vec![("Authorization", bad_pw.as_str()), ("X-Router-Update", "1")], Some(10), 401),
        (vec![("Authorization", a.as_str())], Some(10), 403),
        (vec![("Authorization", a.as_str()), ("X-Router-Update", "1"), ("Origin", "http://127.0.0.1")], Some(10), 403),
        (ok.to_vec(), None, 411),
        (ok.to_vec(), Some(0), 400),
    ];
    for (headers, declared, want) in cases {
        let (code, body) = send(addr, "PUT", "/update/root", &headers, declared, &root_image[..declared.unwrap_or(0)]);
        assert_eq!(code, want, "{headers:?} {declared:?}: {body}");
    }
    let (code, body) = send(addr, "PUT", "/update/root", &ok, Some(SLOT_BYTES as usize + 1), b"");
    assert_eq!(code, 413, "{body}");
    let (code, body) = put(&init, "/update/root", &bzimage(10_000, 3), None);
    assert_eq!(code, 422, "a kernel is not a root: {body}");
    let (code, _) = send(addr, "GET", "/update/root", &[("Authorization", &a)], None, b"");
    assert_eq!(code, 405);

    // An upload cut off halfway: slot b cannot be activated, slot a untouched.
    let a_before = fs::read(root.join("slot-a.img")).unwrap();
    let cut = squashfs(4 << 20, 9);
    cut_off(addr, "/update/root", &ok, cut.len(), &cut[..cut.len() / 2]);
    let b = wait_for(Duration::from_secs(20), "the cut-off upload to be recorded", || {
        let b = slot(&init.get("/v1/update"), "b");
        (b["root"]["state"] == "missing" && init.get("/v1/update")["busy"].is_null()).then_some(b)
    });
    assert!(b["root"]["reason"].as_str().unwrap().contains("cut off after"), "{b}");
    assert_eq!(b["activatable"], false);
    let (code, body) = send(addr, "POST", "/update/activate?kexec=false", &ok, Some(0), b"");
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("root is not usable"), "{body}");
    assert_eq!(fs::read(root.join("slot-a.img")).unwrap(), a_before, "the running slot is never written");
    assert!(init.events("init.update.upload_failed").iter().any(|e| e["attributes"]["slot"] == "b"));

    // A good root: its SHA-256 comes back and its bytes are in slot b.
    let (code, w) = put(&init, "/update/root", &root_image, Some("2.0-test"));
    assert_eq!(code, 200, "{w}");
    assert_eq!(w["sha256"], sha(&root_image));
    assert_eq!((w["slot"].as_str(), w["bytes"].as_u64()), (Some("b"), Some(root_image.len() as u64)));
    let on_disk = fs::read(root.join("slot-b.img")).unwrap();
    assert_eq!(on_disk[..root_image.len()], root_image[..]);
    let b = slot(&init.get("/v1/update"), "b");
    assert_eq!((b["version"].as_str(), b["root"]["state"].as_str()), (Some("2.0-test"), Some("written")));
    assert_eq!(b["activatable"], false, "the kernel must follow the root: {b}");

    // A kernel that is not a bzImage is refused; a good one replaces vmlinuz-b.
    let (code, body) = put(&init, "/update/kernel", &squashfs(10_000, 1), None);
    assert_eq!(code, 422, "{body}");
    let kernel = bzimage(200_000, 77);
    let (code, body) = put(&init, "/update/kernel", &kernel[..150_000], None);
    assert_eq!(code, 422, "a bzImage shorter than its header says: {body}");
    assert!(body["error"].as_str().unwrap().contains("truncated"), "{body}");
    let (code, w) = put(&init, "/update/kernel", &kernel, None);
    assert_eq!(code, 200, "{w}");
    assert_eq!(w["sha256"], sha(&kernel));
    assert_eq!(fs::read(root.join("boot/vmlinuz-b")).unwrap(), kernel);
    assert!(!root.join("boot/vmlinuz-b.tmp").exists());
    assert_eq!(fs::read(root.join("boot/vmlinuz-a")).unwrap(), bzimage(100_000, 1), "slot a's kernel untouched");
    let st = init.get("/v1/update");
    assert_eq!(slot(&st, "b")["activatable"], true, "{st}");
    assert_eq!(slot(&st, "b")["kernel"]["sha256"], sha(&kernel));

    // The web overview carries the same status.
    let (_, o) = send(addr, "GET", "/", &[("Authorization", &a), ("Accept", "application/json")], None, b"");
    assert_eq!(o["update"]["slots"][1]["version"], "2.0-test");

    // Activation: not PID 1, so no kexec: the one-shot boot of slot b with the trial flag.
    let (code, body) = send(addr, "POST", "/update/activate?trial_seconds=90", &ok, Some(0), b"");
    assert_eq!(code, 202, "{body}");
    assert_eq!((body["slot"].as_str(), body["method"].as_str()), (Some("b"), Some("firmware")));
    assert!(body["note"].as_str().unwrap().contains("supervise-only"), "{body}");
    let ldlinux = fs::read(root.join("boot/ldlinux.sys")).unwrap();
    let adv = &ldlinux[ldlinux.len() - bootslot::adv::ADV_BYTES..];
    assert_eq!(bootslot::adv::boot_once(adv).unwrap().as_deref(), Some("b router.trial=1"));
    assert_eq!(fs::read_to_string(root.join("boot/syslinux.cfg")).unwrap(), loader_config("a"), "DEFAULT untouched");
    let (_, status, log, dir) = init.stop_with(0, Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert!(log.contains("would now reboot"), "{log}");
    let trial: Value = serde_json::from_slice(&fs::read(dir.path().join("perm/init/trial.json")).unwrap()).unwrap();
    assert_eq!((trial["from_slot"].as_str(), trial["to_slot"].as_str()), (Some("a"), Some("b")));
    assert_eq!((trial["state"].as_str(), trial["method"].as_str()), (Some("pending"), Some("firmware")));
    assert_eq!(trial["deadline_seconds"], 90);
    assert_eq!(trial["to_version"]["version"], "2.0-test");
    // The manifest has no dhcp4, dhcp4d, netconfigd or diagd: nothing to check but init itself.
    assert_eq!(trial["checks"], json!([]));
}

/// tiny_http aborted the process on some malformed requests; for PID 1 that
/// reboots the router. A huge or garbage `Content-Length` on every kind of
/// endpoint (uploads, the activation, the web interface's forms, the control
/// socket) is answered 413 or 400, nothing starts, and init keeps serving.
#[test]
fn huge_or_garbage_content_lengths_are_refused_and_init_keeps_serving() {
    if !require("huge_or_garbage_content_lengths_are_refused_and_init_keeps_serving") {
        return;
    }
    let dir = world("update-lengths", "BOOT_IMAGE=/vmlinuz-a root=/dev/vda2 ro router.slot=a\n", "a");
    let root = dir.path().to_owned();
    let init = Init::start_in(dir, vec![Svc::new("idle", "exec sleep 1000")], options(&root));
    let addr = init.web_addr();
    let a = auth();
    let huge = "9999999999999999999"; // fits a u64: 413, not a wrap-around
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: Vec<Case<'_>> = vec![
        ("PUT", "/update/root", vec![("Content-Length", huge)], 413),
        ("PUT", "/update/kernel", vec![("Content-Length", huge)], 413),
        ("PUT", "/update/root", vec![("Content-Length", "18446744073709551616")], 400),
        ("PUT", "/update/root", vec![("Content-Length", "99999999999999999999999999")], 400),
        ("PUT", "/update/root", vec![("Content-Length", "-1")], 400),
        ("PUT", "/update/root", vec![("Content-Length", "0x10")], 400),
        ("PUT", "/update/root", vec![("Content-Length", "5"), ("Content-Length", "6")], 400),
        ("PUT", "/update/root", vec![("Content-Length", "5"), ("Transfer-Encoding", "chunked")], 400),
        ("PUT", "/update/root", vec![("Transfer-Encoding", "chunked")], 411),
        ("PUT", "/update/root", vec![("Transfer-Encoding", "gzip")], 501),
        ("POST", "/update/activate", vec![("Content-Length", huge)], 413),
        ("POST", "/reboot", vec![("Content-Length", huge)], 413),
        ("POST", "/reboot", vec![("Content-Length", "junk")], 400),
        ("POST", "/services/idle/stop", vec![("Content-Length", "100000")], 413),
    ];
    for (method, path, extra, want) in &cases {
        let mut headers = vec![("Authorization", a.as_str()), ("X-Router-Update", "1")];
        headers.extend(extra.iter().copied());
        let (code, body) = send(addr, method, path, &headers, None, b"");
        assert_eq!(code, *want, "{method} {path} {extra:?}: {body}");
    }
    // The control socket (root only) refuses the same.
    for (extra, want) in [(format!("Content-Length: {huge}"), 413), ("Content-Length: x".to_owned(), 400)] {
        let mut s = std::os::unix::net::UnixStream::connect(init.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "POST /v1/system/reboot HTTP/1.1\r\nHost: init\r\n{extra}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with(&format!("HTTP/1.1 {want} ")), "{extra}: {answer}");
    }
    // Nothing happened, and init still answers on both.
    let st = init.get("/v1/update");
    assert!(st["busy"].is_null() && st["last_update"].is_null(), "no upload began: {st}");
    assert!(init.events("init.update").is_empty(), "{:?}", init.events("init.update"));
    assert_eq!(init.service("idle")["state"], "Running", "the stop request did not get through");
    assert!(init.get("/v1/status")["shutting_down"].is_null(), "neither did the reboot");
    let (code, _) = send(addr, "GET", "/update/status", &[("Authorization", &a)], None, b"");
    assert_eq!(code, 200);
    let (_, status, log, _) = init.stop_with(rustix::process::Signal::TERM.as_raw(), Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_eq!(log.matches("shutting down").count(), 1, "only SIGTERM stopped init: {log}");
}

fn pending_trial(dir: &Path, checks: Value, deadline: u64, started: bool) {
    let mut record = json!({
        "from_slot": "a", "to_slot": "b",
        "from_version": {"version": "1.0"}, "to_version": {"version": "2.0"},
        "method": "kexec", "activated_at": "2025-06-01T00:00:00Z", "deadline_seconds": deadline,
        "checks": checks, "state": "pending", "kind": "update"
    });
    if started {
        record["trial_started_at"] = json!("2025-06-01T00:00:09Z");
    }
    fs::create_dir_all(dir.join("perm/init")).unwrap();
    fs::write(dir.join("perm/init/trial.json"), record.to_string()).unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_healthy_trial_commits_its_slot_as_the_loader_default() {
    if !require("a_healthy_trial_commits_its_slot_as_the_loader_default") {
        return;
    }
    let dir = world("update-commit", "root=/dev/vda3 ro router.slot=b router.trial=1\n", "a");
    let root = dir.path().to_owned();
    pending_trial(&root, json!([{"service": "steady", "phase": null}]), 60, false);
    let init = Init::start_in(dir, vec![Svc::new("steady", "exec sleep 1000")], options(&root));
    let t =
        wait_for(Duration::from_secs(10), "the trial to show", || init.get("/v1/update")["trial"].as_object().cloned());
    assert_eq!(t["to_slot"], "b");
    let last = wait_for(Duration::from_secs(50), "the commit", || {
        let l = init.get("/v1/update")["last_update"].clone();
        (l["outcome"] == "updated").then_some(l)
    });
    let after = last["healthy_after_seconds"].as_f64().unwrap();
    assert!(after >= 10.0, "a running check wants 10 s of uptime: {last}");
    assert_eq!(fs::read_to_string(root.join("boot/syslinux.cfg")).unwrap(), loader_config("b"));
    let st = init.get("/v1/update");
    assert_eq!((st["default"].as_str(), st["active"].as_str()), (Some("b"), Some("b")));
    assert!(st["trial"].is_null(), "{st}");
    assert_eq!(read_json(&root.join("perm/init/trial.json"))["state"], "committed");
    assert!(read_json(&root.join("perm/init/trial.json"))["trial_started_at"].is_string());
    assert_eq!(init.events("init.update.committed").len(), 1);
    // While a trial was pending uploads were refused; once committed they are allowed again.
    let (code, body) = put(&init, "/update/kernel", &bzimage(2048, 1), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(fs::read(root.join("boot/vmlinuz-a")).unwrap(), bzimage(2048, 1), "the inactive slot is a now");
}

#[test]
fn a_trial_that_never_gets_healthy_reboots_and_the_old_slot_reports_the_rollback() {
    if !require("a_trial_that_never_gets_healthy_reboots_and_the_old_slot_reports_the_rollback") {
        return;
    }
    let dir = world("update-rollback", "root=/dev/vda3 ro router.slot=b router.trial=1\n", "a");
    let root = dir.path().to_owned();
    pending_trial(&root, json!([{"service": "crasher", "phase": null}]), 20, false);
    let services = || vec![Svc::new("crasher", "echo broken; exit 1")];
    let init = Init::start_in(dir, services(), options(&root));
    // Uploads are refused while the trial runs: slot a is the only way back.
    let (code, body) = put(&init, "/update/kernel", &bzimage(2048, 1), None);
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("on trial"), "{body}");
    let (_, status, log, dir) = init.stop_with(0, Duration::from_secs(90));
    assert!(status.success() && log.contains("would now reboot"), "{log}");
    let trial = read_json(&root.join("perm/init/trial.json"));
    assert_eq!(trial["state"], "failed");
    let reason = trial["reason"].as_str().unwrap().to_owned();
    assert!(reason.starts_with("not healthy within 20 s: crasher running (saw "), "{reason}");
    assert_eq!(fs::read_to_string(root.join("boot/syslinux.cfg")).unwrap(), loader_config("a"), "DEFAULT stays a");

    // The firmware boots the default, slot a: it records the rollback and why.
    fs::write(root.join("cmdline"), "root=/dev/vda2 ro router.slot=a\n").unwrap();
    let init = Init::start_in(dir, services(), options(&root));
    let last = wait_for(Duration::from_secs(10), "the rollback record", || {
        let l = init.get("/v1/update")["last_update"].clone();
        (l["outcome"] == "rolled_back").then_some(l)
    });
    assert_eq!(last["reason"], reason.as_str());
    assert_eq!(
        (last["to_version"]["version"].as_str(), last["from_version"]["version"].as_str()),
        (Some("2.0"), Some("1.0"))
    );
    let b = slot(&init.get("/v1/update"), "b");
    assert_eq!((b["failed"].as_str(), b["activatable"].as_bool()), (Some(reason.as_str()), Some(false)));
    let ev = init.events("init.update.rolled_back");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["attributes"]["reason"], reason.as_str());
    let a = auth();
    let (code, body) = send(
        init.web_addr(),
        "POST",
        "/update/activate",
        &[("Authorization", &a), ("X-Router-Update", "1")],
        Some(0),
        b"",
    );
    assert_eq!(code, 409, "a slot that failed its trial is not activated again: {body}");
    assert!(body["error"].as_str().unwrap().contains("last trial failed"), "{body}");
    assert_eq!(read_json(&root.join("perm/init/trial.json"))["state"], "rolled_back");
}

#[test]
fn a_trial_that_never_reached_init_is_reported_by_the_old_slot() {
    if !require("a_trial_that_never_reached_init_is_reported_by_the_old_slot") {
        return;
    }
    // As after a kernel panic (panic=10) or a hang (watchdog): the firmware
    // booted the default, and the trial record was never touched.
    let dir = world("update-panic", "root=/dev/vda2 ro router.slot=a\n", "a");
    let root = dir.path().to_owned();
    pending_trial(&root, json!([]), 120, false);
    let init = Init::start_in(dir, vec![], options(&root));
    let last = wait_for(Duration::from_secs(10), "the rollback record", || {
        let l = init.get("/v1/update")["last_update"].clone();
        (l["outcome"] == "rolled_back").then_some(l)
    });
    let reason = last["reason"].as_str().unwrap();
    assert!(reason.contains("never started its trial") && reason.contains("kernel panic"), "{reason}");
    drop(init);

    let dir = world("update-crash", "root=/dev/vda2 ro router.slot=a\n", "a");
    let root = dir.path().to_owned();
    pending_trial(&root, json!([]), 120, true);
    let init = Init::start_in(dir, vec![], options(&root));
    let last = wait_for(Duration::from_secs(10), "the rollback record", || {
        let l = init.get("/v1/update")["last_update"].clone();
        (l["outcome"] == "rolled_back").then_some(l)
    });
    assert!(last["reason"].as_str().unwrap().contains("went down before it proved healthy"), "{last}");
}
