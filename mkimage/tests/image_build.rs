//! Builds whole images with the real `mkimage` binary from fake inputs (a
//! minimal bzImage header, minimal static ELF files carrying marker strings)
//! and reads them back with independent tools: `sfdisk` for the partition
//! table, `unsquashfs` for the root slots, `mdir`/`mtype`/`fsck.fat` for the
//! boot partition, `e2fsck`/`debugfs` for `/perm`. Also proves that the same
//! inputs give the same bytes, and that a dynamic binary is refused.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runtime::testing;
use serde_json::Value;
use testbed::TempDir;

const TOOLS: &[&str] =
    &["sfdisk", "unsquashfs", "mdir", "mtype", "fsck.fat", "e2fsck", "debugfs", "syslinux", "mkfs.ext4"];
const EPOCH: &str = "1764000000";

fn tools(test: &str) -> bool {
    TOOLS.iter().all(|t| testing::tool(t, test).is_some())
}

/// A minimal x86-64 ELF executable: header, `headers` program header types, `tail`.
fn elf(headers: &[u32], tail: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16] = 2;
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&u16::try_from(headers.len()).unwrap().to_le_bytes());
    for kind in headers {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&ph);
    }
    b.extend_from_slice(tail);
    b
}

fn bzimage() -> Vec<u8> {
    let mut k = vec![0x90u8; 2 << 20];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    k[0x211] = 1;
    k[0x234] = 1;
    k[0x236..0x238].copy_from_slice(&0x7fu16.to_le_bytes());
    k
}

struct Inputs {
    dir: TempDir,
}

impl Inputs {
    /// init (real), routerctl, dnsd and radvd (real), dhcp4 (placeholder); the
    /// other services are not built.
    fn new() -> Self {
        let dir = TempDir::new("mkimage-in");
        let bins = dir.path().join("bins");
        std::fs::create_dir_all(&bins).unwrap();
        std::fs::write(bins.join("init"), elf(&[1, 2], b"init: starting (a real init)")).unwrap();
        std::fs::write(bins.join("routerctl"), elf(&[1], b"routerctl")).unwrap();
        std::fs::write(bins.join("dnsd"), elf(&[1, 2], b"dnsd: serving")).unwrap();
        std::fs::write(bins.join("radvd"), elf(&[1], b"radvd: advertising")).unwrap();
        std::fs::write(
            bins.join("dhcp4"),
            elf(&[1], b"dhcp4 is not implemented yet; exiting 125 so it is not restarted"),
        )
        .unwrap();
        std::fs::write(dir.path().join("bzImage"), bzimage()).unwrap();
        std::fs::write(dir.path().join("password"), "a-fixed-password-for-tests\n").unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn build(&self, out: &Path, epoch: &str, extra: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkimage"));
        cmd.arg("build")
            .arg("--kernel")
            .arg(self.path("bzImage"))
            .arg("--bins")
            .arg(self.path("bins"))
            .arg("--out")
            .arg(out)
            .arg("--password-file")
            .arg(self.path("password"))
            .args(["--hostname", "router7-test", "--version", "9.9.9-test"])
            .args(extra)
            .env("SOURCE_DATE_EPOCH", epoch);
        cmd.output().unwrap()
    }

    fn build_ok(&self, out: &Path, epoch: &str) -> Value {
        let o = self.build(out, epoch, &[]);
        assert!(o.status.success(), "mkimage build failed:\n{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap()
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let o = Command::new(program).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Copies bytes `start..start+size` of `image` into `to`.
fn extract(image: &Path, start: u64, size: u64, to: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(image).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut buf = vec![0u8; usize::try_from(size).unwrap()];
    f.read_exact(&mut buf).unwrap();
    std::fs::write(to, buf).unwrap();
}

fn partition(report: &Value, n: usize) -> (u64, u64) {
    let p = &report["partitions"][n - 1];
    (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap())
}

#[test]
fn image_reads_back_with_standard_tools() {
    if !tools("image_reads_back_with_standard_tools") {
        return;
    }
    let inputs = Inputs::new();
    let img = inputs.path("router.img");
    let report = inputs.build_ok(&img, EPOCH);

    // What went in and what was left out, and why.
    assert_eq!(report["services"], serde_json::json!(["dnsd", "radvd"]));
    let left: Vec<(String, String)> = report["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_owned(), l["reason"].as_str().unwrap().to_owned()))
        .collect();
    assert!(left.iter().any(|(n, r)| n == "dhcp4" && r.contains("not implemented yet")), "{left:?}");
    assert!(left.iter().any(|(n, r)| n == "netconfigd" && r.contains("not built")), "{left:?}");
    assert_eq!(report["init_placeholder"], false);
    assert_eq!(report["routerctl"], true);

    // Partition table, read by util-linux.
    let table: Value = serde_json::from_str(&run("sfdisk", &["--json", img.to_str().unwrap()])).unwrap();
    let t = &table["partitiontable"];
    assert_eq!(t["label"], "dos");
    let id = report["disk_id"].as_str().unwrap();
    assert_eq!(t["id"].as_str().unwrap().trim_start_matches("0x"), id);
    let parts = t["partitions"].as_array().unwrap();
    let got: Vec<(u64, u64, &str, bool)> = parts
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                p["type"].as_str().unwrap(),
                p["bootable"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2048, 131_072, "e", true),
            (133_120, 524_288, "83", false),
            (657_408, 524_288, "83", false),
            (1_181_696, 915_456, "83", false),
        ]
    );
    let mbr = std::fs::read(&img).unwrap()[..440].to_vec();
    assert_eq!(mbr, std::fs::read("/usr/lib/syslinux/mbr/mbr.bin").unwrap(), "syslinux MBR code");

    // Both root slots hold the same SquashFS; unsquashfs lists it.
    let (a_start, a_size) = partition(&report, 2);
    let (b_start, _) = partition(&report, 3);
    let root_size = report["root_size"].as_u64().unwrap();
    let root_a = inputs.path("root-a.sqfs");
    let root_b = inputs.path("root-b.sqfs");
    extract(&img, a_start, root_size, &root_a);
    extract(&img, b_start, root_size, &root_b);
    assert!(root_size < a_size);
    assert_eq!(std::fs::read(&root_a).unwrap(), std::fs::read(&root_b).unwrap());
    let listing = run("unsquashfs", &["-lln", root_a.to_str().unwrap()]);
    let entry = |path: &str| -> String {
        listing
            .lines()
            .find(|l| l.ends_with(&format!("squashfs-root{path}")) || l.contains(&format!("squashfs-root{path} ->")))
            .unwrap_or_else(|| panic!("{path} not in the root:\n{listing}"))
            .to_owned()
    };
    assert!(entry("/init").starts_with("-rwxr-xr-x 0/0"));
    assert!(entry("/svc/dnsd").starts_with("-rwxr-xr-x 0/0"));
    assert!(entry("/svc/radvd").starts_with("-rwxr-xr-x 0/0"));
    assert!(entry("/bin/routerctl").starts_with("-rwxr-xr-x 0/0"));
    assert!(!listing.contains("/svc/dhcp4"), "the placeholder stays out:\n{listing}");
    assert!(entry("/etc/router/password").starts_with("-rw-r----- 0/1010"));
    assert!(entry("/etc/resolv.conf").contains("-> /tmp/resolv.conf"));
    assert!(entry("/tmp").starts_with("drwxrwxrwt"));
    for dir in ["/proc", "/sys", "/dev", "/run", "/perm", "/boot"] {
        assert!(entry(dir).starts_with("drwxr-xr-x 0/0"), "{dir}");
    }
    assert!(entry("/init").contains("2025-11-24 16:00"), "mtime = SOURCE_DATE_EPOCH: {}", entry("/init"));
    let cat = |path: &str| -> String {
        let dest = inputs.path("unsq");
        let _ = std::fs::remove_dir_all(&dest);
        run("unsquashfs", &["-no-xattrs", "-d", dest.to_str().unwrap(), root_a.to_str().unwrap(), path]);
        std::fs::read_to_string(dest.join(path.trim_start_matches('/'))).unwrap()
    };
    let manifest: Value = serde_json::from_str(&cat("/etc/router/services.json")).unwrap();
    let names: Vec<&str> =
        manifest["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dnsd", "radvd"]);
    assert_eq!(manifest["services"][0]["capabilities"], serde_json::json!(["NET_BIND_SERVICE"]));
    assert_eq!(manifest["services"][0]["path"], "/svc/dnsd");
    assert_eq!(cat("/etc/router/password"), "a-fixed-password-for-tests\n");
    assert_eq!(cat("/etc/hostname"), "router7-test\n");
    let version: Value = serde_json::from_str(&cat("/etc/router/version")).unwrap();
    assert_eq!(version, serde_json::json!({"version":"9.9.9-test","build_time":"2025-11-24T16:00:00Z"}));
    assert!(cat("/etc/passwd").contains("\ndnsd:x:1004:1004:"));

    // Boot partition: syslinux, both kernels, the loader configuration.
    let at = format!("{}@@{}", img.display(), partition(&report, 1).0);
    let dir = run("mdir", &["-a", "-b", "-i", &at, "::"]);
    for f in ["VMLINUZ-A", "VMLINUZ-B", "SYSLINUX.CFG", "LDLINUX.SYS", "LDLINUX.C32"] {
        assert!(dir.to_uppercase().contains(f), "{f} missing:\n{dir}");
    }
    let cfg = run("mtype", &["-i", &at, "::syslinux.cfg"]);
    assert!(cfg.contains("\nDEFAULT a\n"), "{cfg}");
    assert!(cfg.contains(&format!(
        "root=PARTUUID={id}-02 ro rootfstype=squashfs init=/init panic=10 oops=panic router.slot=a"
    )));
    assert!(cfg.contains(&format!("root=PARTUUID={id}-03 ")));
    assert_eq!(
        report["cmdline_a"].as_str().unwrap(),
        cfg.lines().find(|l| l.contains("slot=a")).unwrap().trim().trim_start_matches("APPEND ")
    );
    let kernel = inputs.path("vmlinuz-b");
    run("mcopy", &["-n", "-i", &at, "::vmlinuz-b", kernel.to_str().unwrap()]);
    assert_eq!(std::fs::read(&kernel).unwrap(), bzimage());
    let (boot_start, boot_size) = partition(&report, 1);
    let boot = inputs.path("boot.fat");
    extract(&img, boot_start, boot_size, &boot);
    run("fsck.fat", &["-n", boot.to_str().unwrap()]);

    // /perm: a clean ext4 with the password (root:router 0640) and interfaces.json.
    let (perm_start, _) = partition(&report, 4);
    let perm = format!("{}?offset={perm_start}", img.display());
    run("e2fsck", &["-fn", &perm]);
    let stat = run("debugfs", &["-R", "stat /router/password", &perm]);
    assert!(stat.contains("Mode:  0640"), "{stat}");
    assert!(stat.contains("User:     0   Group:  1010"), "{stat}");
    let stat = run("debugfs", &["-R", "stat /router", &perm]);
    assert!(stat.contains("Mode:  0750") && stat.contains("User:     0   Group:  1010"), "{stat}");
    let manifest_groups = &manifest["services"][0]["groups"];
    assert_eq!(manifest_groups, &serde_json::json!([1000]), "dnsd: the shared group only");
    assert_eq!((manifest["shared_gid"].as_u64(), manifest["password_gid"].as_u64()), (Some(1000), Some(1010)));
    assert!(cat("/etc/group").contains("\nrouter-password:x:1010:captured,backupd\n"));
    let interfaces: Value = serde_json::from_str(&run("debugfs", &["-R", "cat /interfaces.json", &perm])).unwrap();
    assert_eq!(interfaces["interfaces"][0]["name"], "uplink0");
    assert_eq!(interfaces["interfaces"][0]["hardware_addr"], mkimage::qemu::UPLINK_MAC);
    assert_eq!(interfaces["interfaces"][1]["name"], "lan0");
    assert_eq!(interfaces["interfaces"][1]["addr"], "192.168.42.1/24");
    assert_eq!(run("debugfs", &["-R", "cat /router/password", &perm]), "a-fixed-password-for-tests\n");
    let label = run("e2label", &[&perm]);
    assert_eq!(label.trim(), "perm");
}

#[test]
fn same_inputs_give_the_same_image_bytes() {
    if !tools("same_inputs_give_the_same_image_bytes") {
        return;
    }
    let inputs = Inputs::new();
    let first = inputs.path("first.img");
    let second = inputs.path("second.img");
    let r1 = inputs.build_ok(&first, EPOCH);
    // Wall time moves on between the builds: nothing of it may leak into the image.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r2 = inputs.build_ok(&second, EPOCH);
    let (a, b) = (std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
    assert_eq!(a.len(), b.len());
    if let Some(at) = a.iter().zip(&b).position(|(x, y)| x != y) {
        let part = r1["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| {
                let s = p["start"].as_u64().unwrap();
                (s..s + p["size"].as_u64().unwrap()).contains(&(at as u64))
            })
            .map_or("outside the partitions".to_owned(), |p| p["content"].to_string());
        panic!("the images differ first at byte {at} ({part})");
    }
    assert_eq!(r1["root_size"], r2["root_size"]);

    // A different build time gives a different root, so the comparison above
    // is not comparing two constants.
    let third = inputs.path("third.img");
    let r3 = inputs.build_ok(&third, "1764000999");
    let (start, _) = partition(&r1, 2);
    let len = usize::try_from(r1["root_size"].as_u64().unwrap().min(r3["root_size"].as_u64().unwrap())).unwrap();
    let s = usize::try_from(start).unwrap();
    let c = std::fs::read(&third).unwrap();
    assert_ne!(a[s..s + len], c[s..s + len]);
}

#[test]
fn dynamic_binaries_and_missing_init_are_refused() {
    if !tools("dynamic_binaries_and_missing_init_are_refused") {
        return;
    }
    let inputs = Inputs::new();
    // PT_INTERP (3): a dynamically linked dnsd.
    std::fs::write(inputs.path("bins/dnsd"), elf(&[6, 3, 1], b"dnsd")).unwrap();
    let o = inputs.build(&inputs.path("x.img"), EPOCH, &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dnsd: dynamically linked"), "{err}");

    // Without init there is no image.
    std::fs::write(inputs.path("bins/dnsd"), elf(&[1], b"dnsd")).unwrap();
    std::fs::remove_file(inputs.path("bins/init")).unwrap();
    let o = inputs.build(&inputs.path("y.img"), EPOCH, &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ci/build-static"));
}

#[test]
fn services_can_be_selected_and_slot_b_made_the_default() {
    if !tools("services_can_be_selected_and_slot_b_made_the_default") {
        return;
    }
    let inputs = Inputs::new();
    let img = inputs.path("b.img");
    let o = inputs.build(&img, EPOCH, &["--services", "radvd", "--default-slot", "b", "--size", "700M"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(img.with_extension("json")).unwrap()).unwrap();
    assert_eq!(report["services"], serde_json::json!(["radvd"]));
    assert!(
        report["left_out"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "dnsd" && l["reason"].as_str().unwrap().contains("not selected"))
    );
    assert_eq!(report["disk_size"], 700u64 << 20);
    let at = format!("{}@@1048576", img.display());
    assert!(run("mtype", &["-i", &at, "::syslinux.cfg"]).contains("\nDEFAULT b\n"));
    let o = inputs.build(&inputs.path("c.img"), EPOCH, &["--services", "nosuchd"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown service \"nosuchd\""));
    let o = inputs.build(&inputs.path("d.img"), EPOCH, &["--size", "300M"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("too small"));
}

#[test]
fn boot_once_changes_only_the_adv_and_clears_back_to_the_same_bytes() {
    if !tools("boot_once_changes_only_the_adv_and_clears_back_to_the_same_bytes") {
        return;
    }
    let inputs = Inputs::new();
    let img = inputs.path("once.img");
    inputs.build_ok(&img, EPOCH);
    let before = std::fs::read(&img).unwrap();
    let mkimage = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_mkimage")).arg("boot-once").arg(&img).args(args).output().unwrap()
    };
    assert!(mkimage(&[]).stdout.is_empty(), "no one-shot boot after a build");
    assert!(mkimage(&["b router.trial=1"]).status.success());
    assert_eq!(String::from_utf8_lossy(&mkimage(&[]).stdout), "b router.trial=1\n");
    let after = std::fs::read(&img).unwrap();
    // Only the two ADV copies at the end of ldlinux.sys changed, nothing else
    // of the FAT (no directory entry, no cluster moved).
    let boot_end = 65 << 20;
    assert!(before[boot_end..] == after[boot_end..], "only the boot partition changes");
    let changed: Vec<usize> = before[..boot_end]
        .iter()
        .zip(&after[..boot_end])
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    assert!(!changed.is_empty());
    let (first, last) = (changed[0], *changed.last().unwrap());
    assert!(last - first < 1024, "changes span {first}..={last}");
    let ldlinux = inputs.path("ldlinux.sys");
    let at = format!("{}@@1048576", img.display());
    run("mcopy", &["-n", "-i", &at, "::ldlinux.sys", ldlinux.to_str().unwrap()]);
    let ld = std::fs::read(&ldlinux).unwrap();
    let adv = &ld[ld.len() - 1024..];
    assert!(adv.windows(16).any(|w| w == b"b router.trial=1"), "the command is in ldlinux.sys's ADV");
    let p = (0..boot_end - 1024).step_by(512).find(|&i| &after[i..i + 1024] == adv).expect("the ADV is on the disk");
    assert!(first >= p && last < p + 1024, "changes {first}..={last} lie inside the ADV at {p}");
    assert!(mkimage(&["--clear"]).status.success());
    assert!(std::fs::read(&img).unwrap() == before, "clearing restores the built bytes");
}

/// A loop device, detached on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn writes_onto_a_block_device_only_when_confirmed() {
    let test = "writes_onto_a_block_device_only_when_confirmed";
    if !tools(test) || !testing::root(test) || testing::tool("losetup", test).is_none() {
        return;
    }
    let inputs = Inputs::new();
    let backing = inputs.path("disk.img");
    std::fs::File::create(&backing).unwrap().set_len(800 << 20).unwrap();
    let dev = Loop(run("losetup", &["-f", "--show", backing.to_str().unwrap()]).trim().to_owned());
    let build = |extra: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_mkimage"))
            .arg("build")
            .arg("--kernel")
            .arg(inputs.path("bzImage"))
            .arg("--bins")
            .arg(inputs.path("bins"))
            .args(["--device", &dev.0])
            .arg("--password-file")
            .arg(inputs.path("password"))
            .args(extra)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    // No terminal to confirm on and no --yes: nothing is written.
    let o = build(&[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs a confirmation"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read(&backing).unwrap()[..1 << 20].iter().all(|&b| b == 0), "the device was not touched");
    assert!(String::from_utf8_lossy(&build(&["--yes", "--size", "1G"]).stderr).contains("--out only"));

    let o = build(&["--yes"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table: Value = serde_json::from_str(&run("sfdisk", &["--json", &dev.0])).unwrap();
    let parts = table["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    assert_eq!(
        parts[3]["start"].as_u64().unwrap() + parts[3]["size"].as_u64().unwrap(),
        800 * 2048,
        "/perm fills the device"
    );
    drop(dev);
    run("e2fsck", &["-fn", &format!("{}?offset={}", backing.display(), 1_181_696 * 512)]);
    let at = format!("{}@@1048576", backing.display());
    assert!(run("mtype", &["-i", &at, "::syslinux.cfg"]).contains("DEFAULT a"));
}
