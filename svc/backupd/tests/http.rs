//! backupd (the real binary) in a namespace, used as a person would: curl and
//! Debian's tar for backups, our host-side client for download and restore.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir};

const PASSWORD: &str = "hunter2 but longer";
const SLOW: Duration = Duration::from_secs(60);

struct Router {
    ns: Netns,
    dir: TempDir,
    backupd: Peer,
}

impl Router {
    fn new(tag: &str) -> Self {
        let ns = Netns::new(tag);
        let dir = TempDir::new(tag);
        let perm = dir.path().join("perm");
        write(&perm, "router/password", format!("{PASSWORD}\n").as_bytes(), 0o600);
        write(&perm, "random.seed", &[9u8; 512], 0o600);
        write(&perm, "dhcp4d/leases.json", b"[\n\t{\"hostname\": \"xps\"}\n]\n", 0o644);
        write(&perm, "dhcp6/duid", &[0, 10, 0, 3, 0, 1, 2, 3, 4, 5, 6, 7], 0o640);
        write(&perm, "dhcp4d/nobackup/big.cache", b"not in backups", 0o644);
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let mut spec = PeerSpec::new(
            "backupd",
            env!("CARGO_BIN_EXE_backupd"),
            &["--perm", &perm.display().to_string(), "--run", &dir.path().join("run").display().to_string()],
        )
        .ready_when(Readiness::TcpPort(8077));
        spec.timeout = SLOW;
        let backupd = ns.spawn(spec);
        Self { ns, dir, backupd }
    }

    fn perm(&self) -> PathBuf {
        self.dir.path().join("perm")
    }

    fn curl(&self, args: &[&str]) -> std::process::Output {
        self.ns.exec("curl", args)
    }

    fn status_code(&self, args: &[&str]) -> String {
        let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.curl(&all).stdout).into_owned()
    }

    /// The process's peak resident memory (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.backupd.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap()
    }
}

fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Files and folders under `root` with their modes, file mtimes and contents, leaving out `skip`.
fn tree(root: &Path, skip: &[&str]) -> BTreeMap<String, (u32, i64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if skip.iter().any(|s| child == *s || child.starts_with(&format!("{s}/"))) {
                continue;
            }
            let m = std::fs::symlink_metadata(root.join(&child)).unwrap();
            if m.is_dir() {
                out.insert(child.clone(), (m.mode() & 0o7777, 0, Vec::new()));
                stack.push(child);
            } else if m.is_file() {
                out.insert(child.clone(), (m.mode() & 0o7777, m.mtime(), std::fs::read(root.join(&child)).unwrap()));
            }
        }
    }
    out
}

#[test]
fn curl_and_debian_tar_round_trip_and_a_wrong_password_is_401() {
    if !testbed::require("curl_and_debian_tar_round_trip_and_a_wrong_password_is_401", &["curl", "tar", "diff"]) {
        return;
    }
    let r = Router::new("bkrt");
    let url = "http://127.0.0.1:8077/backup.tar.gz";
    assert_eq!(r.status_code(&["-u", "router:wrong", url]), "401");
    assert_eq!(r.status_code(&[url]), "401");
    assert_eq!(r.status_code(&["-u", &format!("router:{PASSWORD}"), "-X", "POST", url]), "405");

    let file = r.dir.path().join("backup.tar.gz");
    let out = r.curl(&["-sSf", "-u", &format!("router:{PASSWORD}"), "-o", &file.display().to_string(), url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let x = r.dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar").arg("-xzf").arg(&file).arg("-C").arg(&x).status().unwrap();
    assert!(st.success());
    // diff -r: equal to /perm except what backups leave out.
    let d =
        Command::new("diff").args(["-r", "-x", "nobackup", "-x", "backupd"]).arg(r.perm()).arg(&x).output().unwrap();
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stdout));
    assert!(!x.join("dhcp4d/nobackup").exists(), "nobackup is not backed up");
    assert_eq!(tree(&x, &[]), tree(&r.perm(), &["dhcp4d/nobackup", "backupd"]), "modes and file times kept");
}

#[test]
fn restore_replaces_perm_and_signals_the_services() {
    if !testbed::require("restore_replaces_perm_and_signals_the_services", &[]) {
        return;
    }
    let r = Router::new("bkrs");
    let file = r.dir.path().join("backup.tar.gz");
    let got = r.ns.enter(|| backupd::client::download("127.0.0.1", PASSWORD, &file)).unwrap();
    assert!(got.manifest.entries.iter().any(|e| e.path == "dhcp4d/leases.json"));
    assert!(!r.dir.path().join("backup.tar.gz.partial").exists());
    let before = tree(&r.perm(), &["backupd"]);

    // /perm changes after the backup: a lease is rewritten, a file appears, one goes.
    write(&r.perm(), "dhcp4d/leases.json", b"[]\n", 0o644);
    write(&r.perm(), "dnsd/new.json", b"{}", 0o644);
    std::fs::remove_file(r.perm().join("dhcp6/duid")).unwrap();

    // A "dnsd" to signal: a copy of sleep under that name, with its pid file.
    let fake = r.dir.path().join("dnsd");
    testbed::install_executable(Path::new("/bin/sleep"), &fake);
    let mut dnsd = Command::new(&fake).arg("60").spawn().unwrap();
    std::fs::write(r.dir.path().join("run/dnsd.pid"), format!("{}\n", dnsd.id())).unwrap();
    wait_for_comm(dnsd.id(), "dnsd");

    let summary = r.ns.enter(|| backupd::client::restore("127.0.0.1", PASSWORD, &file)).unwrap();
    assert_eq!(summary["signalled"], serde_json::json!(["dnsd"]), "{summary:#}");
    // dnsd/new.json, and backupd's own events.jsonl, started after the backup.
    assert_eq!(summary["restored"]["removed_files"], 2, "{summary:#}");
    assert!(!r.perm().join("dnsd").exists());
    assert_eq!(tree(&r.perm(), &["backupd"]), before);
    assert!(r.perm().join("dhcp4d/nobackup/big.cache").exists(), "nobackup is left alone");
    let status = dnsd.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(10), "dnsd got SIGUSR1");
}

fn wait_for_comm(pid: u32, name: &str) {
    for _ in 0..500 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every bad archive: a 400 (or 409) with the reason, and /perm exactly as before.
#[test]
fn bad_archives_are_refused_over_http_with_nothing_changed() {
    if !testbed::require("bad_archives_are_refused_over_http_with_nothing_changed", &["curl", "tar"]) {
        return;
    }
    let r = Router::new("bkbad");
    let auth = format!("router:{PASSWORD}");
    let good = r.dir.path().join("good.tar.gz");
    let out = r.curl(&["-sSf", "-u", &auth, "-o", &good.display().to_string(), "http://127.0.0.1:8077/backup.tar.gz"]);
    assert!(out.status.success());
    let good_bytes = std::fs::read(&good).unwrap();

    // Archives made with Debian's tar, each with one bad entry among good ones.
    let src = r.dir.path().join("evil");
    write(&src, "dhcp4d/leases.json", b"evil", 0o644);
    let outside = r.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    symlink("/etc/passwd", src.join("link")).unwrap();
    let tar = |name: &str, args: &[&str]| -> Vec<u8> {
        let file = r.dir.path().join(name);
        let st = Command::new("tar").arg("-czf").arg(&file).arg("-C").arg(&src).args(args).status().unwrap();
        assert!(st.success(), "tar {args:?}");
        std::fs::read(file).unwrap()
    };
    let traversal = tar("dotdot.tar.gz", &["dhcp4d/leases.json", "--transform=s,^dhcp4d/leases.json,../x,"]);
    let absolute = tar("abs.tar.gz", &["--absolute-names", "dhcp4d/leases.json", "--transform=s,^dhcp4d,/etc/x,"]);
    let link = tar("link.tar.gz", &["dhcp4d/leases.json", "link"]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("traversal", traversal, "../x"),
        ("absolute", absolute, "absolute"),
        ("symlink", link, "symbolic link"),
        ("truncated", good_bytes[..good_bytes.len() / 2].to_vec(), "truncated"),
        ("one byte short", good_bytes[..good_bytes.len() - 1].to_vec(), ""),
        ("too short for gzip", b"hello".to_vec(), "truncated"),
        ("not gzip", b"this is plain text, not an archive".to_vec(), "gzip"),
    ];
    let before = tree(&r.perm(), &["backupd"]);
    for (what, bytes, reason) in cases {
        let file = r.dir.path().join("upload.tar.gz");
        std::fs::write(&file, &bytes).unwrap();
        let out = r.curl(&[
            "-s",
            "-w",
            "\n%{http_code}",
            "-u",
            &auth,
            "--data-binary",
            &format!("@{}", file.display()),
            "http://127.0.0.1:8077/restore",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        assert_eq!(code, "400", "{what}: {body}");
        assert!(body.contains(reason), "{what}: {body}");
        assert_eq!(tree(&r.perm(), &["backupd"]), before, "{what} changed /perm");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
    // The wrong password is refused before the upload.
    let out = r.ns.enter(|| backupd::client::restore("127.0.0.1", "wrong", &good));
    assert!(matches!(out, Err(backupd::client::ClientError::Unauthorized)), "{out:?}");
    let metrics = r.curl(&["-s", "http://127.0.0.1:8077/metrics"]);
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(text.contains("backupd_restores_total{result=\"refused\"} 7"), "{text}");
}

/// A file far larger than what the process ever holds: backup and restore
/// stream it (VmHWM, the peak resident size, stays well below its size).
#[test]
fn a_large_file_is_streamed_not_held_in_memory() {
    if !testbed::require("a_large_file_is_streamed_not_held_in_memory", &[]) {
        return;
    }
    let r = Router::new("bkbig");
    const SIZE: usize = 96 << 20;
    let big = r.perm().join("dhcp4d/big.log");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut line = 0u64;
        let mut written = 0;
        while written < SIZE {
            let text = format!(
                "{line:016x} lease renewed for 02:73:53:{:02x}:{:02x}:{:02x}\n",
                line % 251,
                line % 241,
                line % 239
            );
            f.write_all(text.as_bytes()).unwrap();
            written += text.len();
            line += 1;
        }
    }
    let size = std::fs::metadata(&big).unwrap().len();
    let start_kib = r.peak_rss_kib();
    let file = r.dir.path().join("backup.tar.gz");
    let got = r.ns.enter(|| backupd::client::download("127.0.0.1", PASSWORD, &file)).unwrap();
    assert!(got.manifest.total > size);
    let after_backup = r.peak_rss_kib();
    std::fs::remove_file(&big).unwrap();
    r.ns.enter(|| backupd::client::restore("127.0.0.1", PASSWORD, &file)).unwrap();
    assert_eq!(std::fs::metadata(&big).unwrap().len(), size);
    let after_restore = r.peak_rss_kib();
    eprintln!(
        "file {} MiB; backupd VmHWM {start_kib} KiB at start, {after_backup} KiB after the backup, {after_restore} KiB after the restore",
        size >> 20
    );
    assert!(after_restore * 1024 < size / 4, "peak {after_restore} KiB for a {size}-byte file");
}
