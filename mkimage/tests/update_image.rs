//! The host side of updates without a router: `read_image` takes exactly the
//! default slot's root (the SquashFS's used bytes, rounded up to 4 KiB) and
//! kernel, and the version, out of a real `mkimage build` (from fake inputs);
//! `mkimage update`/`rollback` fail cleanly when no router answers or no
//! password is kept. The router side runs under QEMU (`update_e2e.rs`).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use runtime::testing;
use testbed::TempDir;

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
    let o = Command::new(env!("CARGO_BIN_EXE_mkimage"))
        .args(["rollback", "--host", &host, "--password-file", pw.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("cannot connect to {host}")), "{err}");
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
