//! The host side of updates without a router: `read_image` takes exactly the
//! default slot's root (the SquashFS's used bytes, rounded up to 4 KiB) and
//! kernel, and the version, out of a real `mkimage build` (from fake inputs);
//! `mkimage update`/`rollback` fail cleanly when no router answers or no
//! password is kept. The backup they take first runs against the real backupd
//! binary (the static build, as the QEMU tests use) in a namespace: started
//! late, it is waited for, then the backup lands and old ones rotate out;
//! without it, with a wrong password or a broken archive nothing reaches init's
//! update endpoint. The router side runs under QEMU (`update_e2e.rs`).
#![allow(clippy::unwrap_used)]

mod common;
mod lab;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use runtime::testing;
use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir};

/// A minimal static x86-64 ELF carrying `tail`.
fn elf(tail: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16] = 2;
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&1u16.to_le_bytes());
    let mut ph = vec![0u8; 56];
    ph[..4].copy_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&ph);
    b.extend_from_slice(tail);
    b
}

fn bzimage() -> Vec<u8> {
    let mut k: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
    k[0x1fe] = 0x55;
    k[0x1ff] = 0xaa;
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    k[0x211] = 1;
    k[0x234] = 1;
    k[0x236..0x238].copy_from_slice(&0x7fu16.to_le_bytes());
    k
}

fn build(dir: &Path, slot: &str) -> std::path::PathBuf {
    let bins = dir.join("bins");
    std::fs::create_dir_all(&bins).unwrap();
    std::fs::write(bins.join("init"), elf(b"init: a real init")).unwrap();
    std::fs::write(bins.join("dnsd"), elf(b"dnsd: serving")).unwrap();
    std::fs::write(dir.join("bzImage"), bzimage()).unwrap();
    std::fs::write(dir.join("password"), "a-fixed-password-for-tests\n").unwrap();
    let out = dir.join(format!("router-{slot}.img"));
    let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .arg("build")
        .arg("--kernel")
        .arg(dir.join("bzImage"))
        .arg("--bins")
        .arg(&bins)
        .arg("--out")
        .arg(&out)
        .arg("--password-file")
        .arg(dir.join("password"))
        .args(["--hostname", "router7-test", "--version", "3.1.4-test", "--default-slot", slot])
        .env("SOURCE_DATE_EPOCH", "1764000000")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn an_image_gives_its_default_slots_root_kernel_and_version() {
    let test = "an_image_gives_its_default_slots_root_kernel_and_version";
    if ["syslinux", "mkfs.ext4", "debugfs", "unsquashfs"].iter().any(|t| testing::tool(t, test).is_none()) {
        return;
    }
    let dir = TempDir::new("mkimage-upd");
    for slot in ["a", "b"] {
        let image = mkimage::update::read_image(&build(dir.path(), slot)).unwrap();
        assert_eq!(image.slot.label(), slot);
        assert_eq!(image.kernel, bzimage());
        assert_eq!(image.version.version, "3.1.4-test");
        assert_eq!(image.version.build_time.as_deref(), Some("2025-11-24T16:00:00Z"));
        assert_eq!(&image.root[..4], b"hsqs");
        assert_eq!(image.root.len() % 4096, 0);
        let used = u64::from_le_bytes(image.root[40..48].try_into().unwrap());
        assert!(image.root.len() as u64 >= used && (image.root.len() as u64) < used + 4096, "{used}");
        // What unsquashfs reads from exactly these bytes.
        let sq = dir.path().join(format!("root-{slot}.sqfs"));
        std::fs::write(&sq, &image.root).unwrap();
        let o = Command::new("unsquashfs").arg("-cat").arg(&sq).arg("/etc/router/version").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("3.1.4-test"));
    }
    let err = mkimage::update::read_image(&dir.path().join("password")).unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[test]
fn update_and_rollback_fail_cleanly_without_a_router_or_a_password() {
    let dir = TempDir::new("mkimage-noroute");
    let pw = dir.path().join("password");
    std::fs::write(&pw, "some-password\n").unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("127.0.0.1:{port}");
    // --no-backup: straight to init's endpoint (the backup's failures: below).
    let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .args(["rollback", "--host", &host, "--password-file", pw.to_str().unwrap(), "--no-backup"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--no-backup: no backup of /perm is taken before this rollback"), "{err}");
    assert!(err.contains(&format!("cannot connect to {host}")), "{err}");
    // Contradictions and bad numbers are refused before anything is asked.
    for (extra, says) in [
        (&["--no-backup", "--backup-dir", "/tmp"][..], "--no-backup takes no backup"),
        (&["--no-backup", "--keep-backups", "2"][..], "--no-backup takes no backup"),
        (&["--keep-backups", "-1"][..], "--keep-backups \"-1\""),
        (&["--keep-backups", "many"][..], "--keep-backups \"many\""),
        (&["--no-backup", "--backup-wait", "5"][..], "--no-backup takes no backup"),
        (&["--backup-wait", "soon"][..], "--backup-wait \"soon\""),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
            .args(["rollback", "--host", &host, "--password-file", pw.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says) && !err.contains("backupd on"), "{extra:?}: {err}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .args(["update", "--host", &host, "--image", "/nonexistent.img"])
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["--hostname", "nobody-here"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("router7-rs/nobody-here/password"), "no password kept: {err}");
    let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .args(["update", "--host", &host, "--password-file", pw.to_str().unwrap(), "--trial-seconds", "5"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--trial-seconds"), "{}", String::from_utf8_lossy(&o.stderr));
}

const PASSWORD: &str = "a-fixed-password-for-tests";

/// backupd, the real binary, in `ns` on 127.0.0.1:8077 with `/perm` at `perm`
/// (its password: `perm/router/password`).
fn backupd(ns: &Netns, dir: &Path, perm: &Path) -> Peer {
    let bin = common::binaries().join("backupd");
    assert!(bin.is_file(), "{} is missing", bin.display());
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    let mut spec = PeerSpec::new(
        "backupd",
        bin.to_str().unwrap(),
        &["--perm", perm.to_str().unwrap(), "--run", run.to_str().unwrap()],
    )
    .ready_when(Readiness::TcpPort(8077));
    spec.timeout = Duration::from_secs(60);
    ns.spawn(spec)
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// `mkimage args…` run inside `ns`, with `env`.
fn mkimage_in(ns: &Netns, args: &[String], env: &[(&str, &Path)]) -> Output {
    ns.enter(|| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mkimage"));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    })
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The names in `dir` (none when it does not exist), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    n.sort();
    n
}

#[test]
fn update_and_rollback_send_nothing_when_the_backup_fails() {
    let test = "update_and_rollback_send_nothing_when_the_backup_fails";
    if !testbed::require(test, &["syslinux", "mkfs.ext4", "debugfs", "tar"]) {
        return;
    }
    let dir = TempDir::new("mkimage-bkfail");
    let image = build(dir.path(), "a");
    let ns = Netns::new("updbkf");
    // init's update endpoint: a listener that must never see a connection.
    let init = ns.enter(|| TcpListener::bind("127.0.0.1:0").unwrap());
    init.set_nonblocking(true).unwrap();
    let host = format!("127.0.0.1:{}", init.local_addr().unwrap().port());
    let backups = dir.path().join("backups");
    let pw = dir.path().join("password");
    let common_args = strings(&["--host", &host, "--password-file", pw.to_str().unwrap(), "--backup-wait", "1"])
        .into_iter()
        .chain(["--backup-dir".to_owned(), backups.display().to_string()])
        .collect::<Vec<_>>();
    let commands: Vec<Vec<String>> = vec![
        [strings(&["update", "--image", image.to_str().unwrap()]), common_args.clone()].concat(),
        [strings(&["rollback"]), common_args.clone()].concat(),
    ];
    let refused = |what: &str, cause: &str| {
        for args in &commands {
            let o = mkimage_in(&ns, args, &[]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{what}: {args:?}: {err}");
            assert!(err.contains("the backup of /perm from backupd on 127.0.0.1:8077 failed"), "{what}: {err}");
            assert!(err.contains(cause), "{what}: want {cause:?}: {err}");
            assert!(err.contains(&format!("the {} was not started and nothing was sent to the router", args[0])));
            assert!(err.contains(&format!("pass --no-backup to {} without a backup", args[0])), "{err}");
            assert!(!err.contains("backed up /perm"), "{what}: {err}");
            // Only a refused connection is retried, and said once.
            let waited =
                err.matches("refused the connection (is the router still starting?); trying again for up to 1 s");
            assert_eq!(waited.count(), usize::from(cause == "Connection refused"), "{what}: {err}");
            assert!(o.stdout.is_empty(), "{what}: {}", String::from_utf8_lossy(&o.stdout));
            // Nothing that looks like a backup, not even a partial one.
            assert!(names(&backups).is_empty(), "{what}: {:?}", names(&backups));
            match init.accept() {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("{what}: {args:?} reached init's endpoint: {other:?}"),
            }
        }
    };

    // Nothing listens on 8077, for longer than --backup-wait.
    refused("no backupd", "Connection refused");

    // backupd with another password.
    let perm = dir.path().join("perm");
    write(&perm, "router/password", b"not-the-password-mkimage-has\n");
    write(&perm, "dhcp4d/leases.json", b"[]\n");
    let peer = backupd(&ns, dir.path(), &perm);
    refused("wrong password", "the router refused the password (401)");
    drop(peer);

    // A stand-in on 8077 that sends a cut-off gzip'd tar with a matching
    // length: the HTTP exchange completes, the archive does not.
    let src = dir.path().join("src");
    let noise: Vec<u8> = (0u32..20000).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    write(&src, "dhcp4d/leases.json", &noise);
    let tgz = dir.path().join("src.tar.gz");
    let st = Command::new("tar").arg("-czf").arg(&tgz).arg("-C").arg(&src).arg("dhcp4d").status().unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&tgz).unwrap();
    let cut = bytes[..bytes.len() / 2].to_vec();
    let fake = ns.enter(|| TcpListener::bind("127.0.0.1:8077").unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for _ in 0..2 {
            let (mut s, _) = fake.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", cut.len());
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&cut).unwrap();
        }
    });
    refused("cut-off archive", "not a valid backup");
    server.join().unwrap();
}

#[test]
fn update_waits_for_backupd_backs_up_first_and_keeps_the_newest() {
    let test = "update_waits_for_backupd_backs_up_first_and_keeps_the_newest";
    if !testbed::require(test, &["syslinux", "mkfs.ext4", "debugfs", "tar"]) {
        return;
    }
    let dir = TempDir::new("mkimage-bkok");
    let image = build(dir.path(), "a");
    let ns = Netns::new("updbko");
    let perm = dir.path().join("perm");
    let leases = b"[\n\t{\"hostname\": \"xps\", \"addr\": \"192.168.42.23\"}\n]\n";
    write(&perm, "router/password", format!("{PASSWORD}\n").as_bytes());
    write(&perm, "dhcp4d/leases.json", leases);
    write(&perm, "interfaces.json", b"{\"interfaces\":[]}\n");

    // Six older backups of ours and files that are not ours.
    let backups = dir.path().join("backups");
    let old: Vec<String> = (1..=6).map(|day| format!("backup-127.0.0.1-2025-01-0{day}T120000Z.tar.gz")).collect();
    for name in &old {
        write(&backups, name, b"an old backup");
    }
    let foreign = ["notes.txt", "backup-manual.tar.gz", "backup-127.0.0.1-2025-01-01T120000Z.tar.gz.partial"];
    for name in foreign {
        write(&backups, name, b"not ours");
    }
    std::fs::create_dir(backups.join("backup-127.0.0.1-2024-01-01T000000Z.tar.gz")).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let folder_mode = mode(&backups);

    // Nothing listens on init's port here: the update fails after the backup.
    let host = "127.0.0.1:80";
    let pw = dir.path().join("password");
    let args = [
        strings(&["update", "--image", image.to_str().unwrap(), "--host", host, "--password-file"]),
        vec![pw.display().to_string(), "--backup-dir".into(), backups.display().to_string()],
        strings(&["--keep-backups", "3", "--backup-wait", "60"]),
    ]
    .concat();
    // backupd starts only once mkimage has been refused, as after a reboot:
    // mkimage says so and waits for it.
    let mut child = ns.enter(|| {
        Command::new(env!("CARGO_BIN_EXE_mkimage"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    });
    let stderr = child.stderr.take().unwrap();
    let (refused, was_refused) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("backupd on 127.0.0.1:8077 refused the connection") {
                let _ = refused.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let said = was_refused.recv_timeout(Duration::from_secs(60));
    let _backupd = backupd(&ns, dir.path(), &perm);
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(said.is_ok(), "mkimage did not say it waits for backupd: {err}");
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.matches("refused the connection").count(), 1, "said once: {err}");
    let backed = err.find("mkimage: backed up /perm to ").unwrap_or_else(|| panic!("{err}"));
    let connect = err.find(&format!("cannot connect to {host}")).unwrap_or_else(|| panic!("{err}"));
    assert!(backed < connect, "the backup comes first: {err}");

    let now = names(&backups);
    let new: Vec<&String> = now.iter().filter(|n| !old.contains(n) && !foreign.contains(&n.as_str())).collect();
    let new: Vec<&String> = new.into_iter().filter(|n| !n.starts_with("backup-127.0.0.1-2024")).collect();
    assert_eq!(new.len(), 1, "{now:?}");
    let taken = backups.join(new[0]);
    assert!(new[0].starts_with("backup-127.0.0.1-20") && new[0].ends_with("Z.tar.gz"), "{}", new[0]);
    assert!(err.contains(&format!("backed up /perm to {} (", taken.display())), "{err}");
    let size = std::fs::metadata(&taken).unwrap().len();
    assert!(err.contains(&format!("({size} bytes;")), "{err}");
    assert_eq!(mode(&taken), 0o600, "a backup holds the password");
    assert_eq!(mode(&backups), folder_mode, "an existing folder is left as it is");
    // A complete gzip'd tar holding /perm, as Debian's tar reads it.
    let list = Command::new("tar").arg("-tzf").arg(&taken).output().unwrap();
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let list = String::from_utf8_lossy(&list.stdout);
    for f in ["dhcp4d/leases.json", "interfaces.json", "router/password"] {
        assert!(list.lines().any(|l| l.trim_start_matches("./") == f), "{f} not in {list}");
    }
    let content = Command::new("tar").arg("-xzOf").arg(&taken).arg("dhcp4d/leases.json").output().unwrap();
    assert_eq!(content.stdout, leases);
    // Three of ours kept: the new one and the two newest old ones.
    for (i, name) in old.iter().enumerate() {
        assert_eq!(backups.join(name).exists(), i >= 4, "{name}: {now:?}");
        if i < 4 {
            assert!(err.contains(&format!("removed the old backup {}", backups.join(name).display())), "{err}");
        }
    }
    for name in foreign {
        assert_eq!(std::fs::read(backups.join(name)).unwrap(), b"not ours", "{name}");
    }
    assert!(backups.join("backup-127.0.0.1-2024-01-01T000000Z.tar.gz").is_dir());

    // rollback too, with --keep-backups 0 (all kept) and the default folder,
    // made (0700) under $XDG_CONFIG_HOME for --hostname.
    let xdg = dir.path().join("xdg");
    let args = [
        strings(&["rollback", "--host", host, "--hostname", "bk-test", "--keep-backups", "0", "--password-file"]),
        vec![pw.display().to_string()],
    ]
    .concat();
    let o = mkimage_in(&ns, &args, &[("XDG_CONFIG_HOME", xdg.as_path())]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot connect to {host}")), "{err}");
    let default: PathBuf = xdg.join("router7-rs/bk-test/backups");
    assert_eq!(mode(&default), 0o700);
    let got = names(&default);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(err.contains(&format!("backed up /perm to {}", default.join(&got[0]).display())), "{err}");
    let st = Command::new("tar").arg("-tzf").arg(default.join(&got[0])).output().unwrap();
    assert!(st.status.success());
    assert!(!err.contains("removed the old backup"), "{err}");
}
