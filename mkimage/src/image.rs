//! Building a disk image: collects the kernel and the static binaries, makes
//! the root SquashFS, the boot FAT with syslinux and the `/perm` ext4, writes
//! them with the MBR into an image file or onto a block device, and reports
//! what went in and what was left out.
//!
//! Both slots get the same kernel and root at first, so slot B is a working
//! fallback from day one; updates (issue #11) then replace the inactive slot.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use runtime::perm::{InterfaceDetails, Interfaces};
use runtime::timefmt::Timestamp;
use serde::Serialize;

use crate::binaries;
use crate::bootfs;
use crate::error::{Error, Result};
use crate::layout::{DiskId, Layout, ROOT_SIZE, Slot, kernel_cmdline};
use crate::mbr;
use crate::password::Password;
use crate::permfs::{self, PermDir, PermFile};
use crate::progress::Progress;
use crate::qemu::{LAN_MAC, UPLINK_MAC};
use crate::rootfs::{self, Tree};
use crate::services::{self, PASSWORD_GROUP, SERVICES};

/// The LAN address of the default interfaces.json.
pub const DEFAULT_LAN_ADDR: &str = "192.168.42.1/24";

/// Everything an image is built from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The bzImage (from kernel-config/build).
    pub kernel: PathBuf,
    /// Folder with the static binaries (from ci/build-static): `init`,
    /// `routerctl` (optional) and one per service.
    pub bins: PathBuf,
    /// The router's host name.
    pub hostname: String,
    /// The router's password.
    pub password: Password,
    /// `/perm/interfaces.json` to install, or `None` for the QEMU default.
    pub interfaces: Option<PathBuf>,
    /// Build time, seconds since the epoch (`SOURCE_DATE_EPOCH`): every
    /// timestamp in the image.
    pub epoch: u64,
    /// Version string for `/etc/router/version`.
    pub version: String,
    /// The slot the boot loader starts by default.
    pub default_slot: Slot,
    /// Only these services (others are left out), or all that are ready.
    pub only_services: Option<Vec<String>>,
}

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An image file of this size (created or replaced; sparse).
    File {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// A block device (its whole size; every partition on it is overwritten).
    Device {
        /// e.g. `/dev/sdb`.
        path: PathBuf,
    },
}

impl Target {
    fn path(&self) -> &Path {
        match self {
            Self::File { path, .. } | Self::Device { path } => path,
        }
    }
}

/// A service the image does not carry, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// Service name.
    pub name: String,
    /// Why: "not built", "placeholder …", "not selected".
    pub reason: String,
}

/// A partition as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    /// 1..=4.
    pub number: u8,
    /// First byte.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Content.
    pub content: &'static str,
}

/// What a build produced (printed, and written as JSON next to an image file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The image file or device.
    pub target: String,
    /// Its size.
    pub disk_size: u64,
    /// MBR disk signature, hex.
    pub disk_id: String,
    /// The partitions.
    pub partitions: Vec<PartitionReport>,
    /// The loader's default slot.
    pub default_slot: String,
    /// Kernel command line of slot A.
    pub cmdline_a: String,
    /// Kernel command line of slot B.
    pub cmdline_b: String,
    /// `/etc/router/version`'s version.
    pub version: String,
    /// Build time, RFC 3339.
    pub build_time: String,
    /// Build time, seconds since the epoch.
    pub epoch: u64,
    /// Size of the kernel.
    pub kernel_size: u64,
    /// Size of the root SquashFS.
    pub root_size: u64,
    /// Whether `/init` is still the placeholder of issue #9 (it exits at once).
    pub init_placeholder: bool,
    /// Whether `/bin/routerctl` is in the image.
    pub routerctl: bool,
    /// The services in the image (and in the manifest).
    pub services: Vec<String>,
    /// The services left out, with the reason.
    pub left_out: Vec<LeftOut>,
    /// Where the password is kept on the build host.
    pub password_file: String,
    /// Whether this build generated the password.
    pub password_created: bool,
    /// Where `/perm/interfaces.json` came from.
    pub interfaces: String,
}

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let p =
            std::env::temp_dir().join(format!("mkimage-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        Ok(Self(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The binaries chosen for an image.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `/init`.
    pub init: Vec<u8>,
    /// Whether init is the placeholder.
    pub init_placeholder: bool,
    /// `/bin/routerctl`, when built.
    pub routerctl: Option<Vec<u8>>,
    /// `(name, binary)` of every service that goes in, in table order.
    pub services: Vec<(&'static str, Vec<u8>)>,
    /// The services left out.
    pub left_out: Vec<LeftOut>,
}

/// Picks the binaries from `bins`: init (required), routerctl (when built),
/// and every service that is built, implemented (not the placeholder) and
/// selected. Each one must be a static x86-64 ELF.
///
/// # Errors
/// When init is missing or any chosen binary is not static.
pub fn collect_binaries(bins: &Path, only: Option<&[String]>) -> Result<Binaries> {
    if let Some(unknown) = only.and_then(|o| o.iter().find(|n| services::spec(n).is_none())) {
        let known: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        return Err(Error::Invalid(format!("unknown service {unknown:?} (known: {})", known.join(", "))));
    }
    let init_path = bins.join("init");
    let init = binaries::read(&init_path)
        .map_err(|e| Error::Invalid(format!("{e} (build the static binaries with ci/build-static)")))?;
    binaries::check_static_elf("init", &init)?;
    let init_placeholder = binaries::contains(&init, binaries::INIT_PLACEHOLDER);

    let routerctl_path = bins.join("routerctl");
    let routerctl = if routerctl_path.is_file() {
        let data = binaries::read(&routerctl_path)?;
        binaries::check_static_elf("routerctl", &data)?;
        Some(data)
    } else {
        None
    };

    let mut services = Vec::new();
    let mut left_out = Vec::new();
    for spec in SERVICES {
        let path = bins.join(spec.name);
        let reason = if only.is_some_and(|o| !o.iter().any(|n| n == spec.name)) {
            Some("not selected (--services)".to_owned())
        } else if !path.is_file() {
            Some(format!("not built ({} is missing)", path.display()))
        } else {
            None
        };
        if let Some(reason) = reason {
            left_out.push(LeftOut { name: spec.name.to_owned(), reason });
            continue;
        }
        let data = binaries::read(&path)?;
        if binaries::contains(&data, binaries::SERVICE_PLACEHOLDER) {
            left_out.push(LeftOut {
                name: spec.name.to_owned(),
                reason: "not implemented yet (the binary is its placeholder, which exits 125)".to_owned(),
            });
            continue;
        }
        binaries::check_static_elf(spec.name, &data)?;
        services.push((spec.name, data));
    }
    Ok(Binaries { init, init_placeholder, routerctl, services, left_out })
}

/// `/perm/interfaces.json` for QEMU: the two virtio NICs by MAC, lan0 with
/// [`DEFAULT_LAN_ADDR`].
#[must_use]
pub fn default_interfaces() -> Interfaces {
    Interfaces {
        interfaces: vec![
            InterfaceDetails { hardware_addr: UPLINK_MAC.to_owned(), name: "uplink0".to_owned(), ..Default::default() },
            InterfaceDetails {
                hardware_addr: LAN_MAC.to_owned(),
                name: "lan0".to_owned(),
                addr: DEFAULT_LAN_ADDR.to_owned(),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

/// Reads and checks a user's interfaces.json: it must parse in router7's
/// format and name uplink0 and lan0 (lan0 may be a bridge).
///
/// # Errors
/// When it does not.
pub fn read_interfaces(path: &Path) -> Result<Vec<u8>> {
    let data = fs::read(path).map_err(|e| Error::io(path, e))?;
    let parsed: Interfaces = serde_json::from_slice(&data)
        .map_err(|e| Error::Invalid(format!("{}:{}:{}: {e}", path.display(), e.line(), e.column())))?;
    if parsed.by_name("uplink0").is_none() {
        return Err(Error::Invalid(format!("{}: no interface named uplink0", path.display())));
    }
    if parsed.by_name("lan0").is_none() && !parsed.bridges.iter().any(|b| b.name == "lan0") {
        return Err(Error::Invalid(format!("{}: no interface or bridge named lan0", path.display())));
    }
    Ok(data)
}

/// `/etc/router/version`: `{"version","build_time"}`.
#[must_use]
pub fn version_json(version: &str, epoch: u64) -> Vec<u8> {
    let v = serde_json::json!({
        "version": version,
        "build_time": build_time(epoch),
    });
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

fn build_time(epoch: u64) -> String {
    Timestamp { secs: i64::try_from(epoch).unwrap_or(i64::MAX), nanos: 0 }.to_string()
}

/// The root file system of an image.
///
/// # Errors
/// Only on internal inconsistencies of the tree.
pub fn root_tree(bins: &Binaries, hostname: &str, password: &str, version: &str, epoch: u64) -> Result<Tree> {
    let mut t = Tree::new();
    for dir in ["/bin", "/boot", "/dev", "/etc", "/etc/router", "/perm", "/proc", "/run", "/svc", "/sys"] {
        t.dir(dir, 0o755)?;
    }
    t.dir("/tmp", 0o1777)?;
    t.file("/init", 0o755, 0, 0, bins.init.clone())?;
    if let Some(ctl) = &bins.routerctl {
        t.file("/bin/routerctl", 0o755, 0, 0, ctl.clone())?;
    }
    for (name, data) in &bins.services {
        t.file(&format!("/svc/{name}"), 0o755, 0, 0, data.clone())?;
    }
    let names: Vec<&str> = bins.services.iter().map(|(n, _)| *n).collect();
    t.file("/etc/hostname", 0o644, 0, 0, format!("{hostname}\n").into_bytes())?;
    t.file(
        "/etc/hosts",
        0o644,
        0,
        0,
        format!("127.0.0.1 localhost {hostname}\n::1 localhost {hostname}\n").into_bytes(),
    )?;
    t.file("/etc/passwd", 0o644, 0, 0, services::passwd().into_bytes())?;
    t.file("/etc/group", 0o644, 0, 0, services::group().into_bytes())?;
    t.symlink("/etc/resolv.conf", "/tmp/resolv.conf")?;
    t.file("/etc/router/services.json", 0o644, 0, 0, services::Manifest::for_services(&names).to_json())?;
    t.file("/etc/router/password", 0o640, 0, PASSWORD_GROUP.1, format!("{password}\n").into_bytes())?;
    t.file("/etc/router/version", 0o644, 0, 0, version_json(version, epoch))?;
    Ok(t)
}

fn write_at(file: &mut File, path: &Path, offset: u64, data: &[u8], progress: &Progress, what: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path, e);
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let bar = progress.bytes(what, data.len() as u64);
    for chunk in data.chunks(1 << 20) {
        file.write_all(chunk).map_err(io)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

fn refuse_if_mounted(device: &Path) -> Result<()> {
    let dev = device.to_string_lossy();
    for table in ["/proc/mounts", "/proc/swaps"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.split_whitespace().next().is_some_and(|s| s.starts_with(&*dev))) {
            return Err(Error::Invalid(format!("{dev} is in use ({table}: {line}); unmount it first")));
        }
    }
    Ok(())
}

/// Opens the target and returns it with its size.
fn open_target(target: &Target) -> Result<(File, u64)> {
    match target {
        Target::File { path, size } => {
            if fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device()) {
                return Err(Error::Invalid(format!("{} is a block device: use --device", path.display())));
            }
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
            f.set_len(*size).map_err(|e| Error::io(path, e))?;
            Ok((f, *size))
        }
        Target::Device { path } => {
            let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
            if !meta.file_type().is_block_device() {
                return Err(Error::Invalid(format!("{} is not a block device", path.display())));
            }
            refuse_if_mounted(path)?;
            let mut f = OpenOptions::new().read(true).write(true).open(path).map_err(|e| Error::io(path, e))?;
            let size = f.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))?;
            Ok((f, size))
        }
    }
}

/// Builds the image described by `inputs` onto `target`.
///
/// # Errors
/// When an input is missing or invalid, something does not fit, or a tool fails.
pub fn build(inputs: &Inputs, target: &Target, progress: &Progress) -> Result<Report> {
    let step = progress.step("checking the kernel and binaries");
    let kernel = binaries::read(&inputs.kernel)?;
    binaries::check_bzimage(&kernel)?;
    let bins = collect_binaries(&inputs.bins, inputs.only_services.as_deref())?;
    let (interfaces, interfaces_source) = match &inputs.interfaces {
        Some(p) => (read_interfaces(p)?, p.display().to_string()),
        None => {
            let mut data = serde_json::to_vec_pretty(&default_interfaces()).unwrap_or_default();
            data.push(b'\n');
            (data, format!("default for QEMU (uplink0 = {UPLINK_MAC}, lan0 = {LAN_MAC} at {DEFAULT_LAN_ADDR})"))
        }
    };
    step.done(&format!(
        "{} services, {} left out{}",
        bins.services.len(),
        bins.left_out.len(),
        if bins.init_placeholder { ", init is still the placeholder" } else { "" }
    ));

    let step = progress.step("writing the root SquashFS");
    let tree = root_tree(&bins, &inputs.hostname, &inputs.password.value, &inputs.version, inputs.epoch)?;
    let mtime = u32::try_from(inputs.epoch).map_err(|_| Error::Invalid("SOURCE_DATE_EPOCH beyond 2106".into()))?;
    let root = rootfs::write_squashfs(&tree, mtime)?;
    if root.len() as u64 > ROOT_SIZE {
        return Err(Error::TooLarge { what: "the root SquashFS".into(), size: root.len() as u64, limit: ROOT_SIZE });
    }
    step.done(&format!("{} bytes of files in {} bytes", tree.content_bytes(), root.len()));

    let (mut disk, disk_size) = open_target(target)?;
    let path = target.path().to_owned();
    let layout = Layout::for_disk(disk_size)?;
    let id = DiskId::from_hostname(&inputs.hostname);
    let scratch = Scratch::new()?;

    let step = progress.step("writing the boot partition (FAT, syslinux, kernels)");
    let fat = scratch.0.join("boot.fat");
    File::create(&fat).and_then(|f| f.set_len(layout.boot.size)).map_err(|e| Error::io(&fat, e))?;
    let config = bootfs::loader_config(id, inputs.default_slot);
    bootfs::build_fat(
        &fat,
        layout.boot.start_lba(),
        id.0,
        inputs.epoch,
        &[
            (Slot::A.kernel_file(), &kernel),
            (Slot::B.kernel_file(), &kernel),
            (bootfs::LOADER_CONFIG, config.as_bytes()),
        ],
    )?;
    bootfs::install_syslinux(&fat, inputs.epoch)?;
    let fat_bytes = fs::read(&fat).map_err(|e| Error::io(&fat, e))?;
    write_at(&mut disk, &path, layout.boot.start, &fat_bytes, progress, "boot")?;
    step.done(&format!("kernel {} bytes in both slots, default slot {}", kernel.len(), inputs.default_slot));

    let step = progress.step("writing root slots A and B");
    for slot in Slot::ALL {
        write_at(&mut disk, &path, layout.root(slot).start, &root, progress, &format!("root {slot}"))?;
    }
    step.done("");

    let step = progress.step("writing the partition table");
    let boot_code = binaries::read(Path::new(mbr::SYSLINUX_MBR))?;
    mbr::write(&mut disk, &layout, id, &boot_code)?;
    disk.sync_all().map_err(|e| Error::io(&path, e))?;
    step.done(&format!("disk signature {:08x}", id.0));

    let step = progress.step("making /perm (ext4)");
    let perm_files = [
        PermFile {
            path: "router/password".into(),
            mode: 0o640,
            uid: 0,
            gid: PASSWORD_GROUP.1,
            data: format!("{}\n", inputs.password.value).into_bytes(),
        },
        PermFile { path: "interfaces.json".into(), mode: 0o644, uid: 0, gid: 0, data: interfaces },
    ];
    // As init keeps it: only root and the password group get into the folder.
    let perm_dirs = [PermDir { path: "router".into(), mode: 0o750, uid: 0, gid: PASSWORD_GROUP.1 }];
    permfs::make(&path, layout.perm, id, inputs.epoch, &perm_files, &perm_dirs, &scratch.0)?;
    disk.sync_all().map_err(|e| Error::io(&path, e))?;
    step.done(&format!("{} MiB", layout.perm.size >> 20));

    let contents = ["boot (FAT16, syslinux)", "root A (SquashFS)", "root B (SquashFS)", "perm (ext4)"];
    Ok(Report {
        target: path.display().to_string(),
        disk_size,
        disk_id: format!("{:08x}", id.0),
        partitions: layout
            .partitions()
            .iter()
            .zip(contents)
            .map(|(p, content)| PartitionReport {
                number: p.number,
                start: p.extent.start,
                size: p.extent.size,
                content,
            })
            .collect(),
        default_slot: inputs.default_slot.label().to_owned(),
        cmdline_a: kernel_cmdline(id, Slot::A),
        cmdline_b: kernel_cmdline(id, Slot::B),
        version: inputs.version.clone(),
        build_time: build_time(inputs.epoch),
        epoch: inputs.epoch,
        kernel_size: kernel.len() as u64,
        root_size: root.len() as u64,
        init_placeholder: bins.init_placeholder,
        routerctl: bins.routerctl.is_some(),
        services: bins.services.iter().map(|(n, _)| (*n).to_owned()).collect(),
        left_out: bins.left_out.clone(),
        password_file: inputs.password.file.display().to_string(),
        password_created: inputs.password.created,
        interfaces: interfaces_source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_tmp(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("mkimage-{}-{name}", std::process::id()));
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn default_interfaces_map_qemus_macs_in_router7s_format() {
        let text = serde_json::to_string(&default_interfaces()).unwrap();
        assert_eq!(
            text,
            r#"{"interfaces":[{"hardware_addr":"52:54:00:72:37:01","name":"uplink0"},{"hardware_addr":"52:54:00:72:37:02","name":"lan0","addr":"192.168.42.1/24"}]}"#
        );
    }

    #[test]
    fn user_interfaces_must_name_uplink0_and_lan0() {
        let ok = write_tmp(
            "if-ok.json",
            r#"{"interfaces":[{"hardware_addr":"00:0d:b9:00:00:01","name":"uplink0"}],
            "bridges":[{"name":"lan0","interface_hardware_addrs":["00:0d:b9:00:00:02","00:0d:b9:00:00:03"]}]}"#,
        );
        assert!(read_interfaces(&ok).is_ok(), "lan0 may be a bridge");
        let no_lan = write_tmp("if-nolan.json", r#"{"interfaces":[{"name":"uplink0"}]}"#);
        assert!(read_interfaces(&no_lan).unwrap_err().to_string().contains("lan0"));
        let broken = write_tmp("if-broken.json", "{\"interfaces\": [\n  {\"name\": 7}\n]}");
        let err = read_interfaces(&broken).unwrap_err().to_string();
        assert!(err.contains(":2:"), "file:line:column: {err}");
        for p in [ok, no_lan, broken] {
            fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn version_file_has_version_and_rfc3339_build_time() {
        let v: serde_json::Value = serde_json::from_slice(&version_json("1.2.3", 1_764_000_000)).unwrap();
        assert_eq!(v, serde_json::json!({"version":"1.2.3","build_time":"2025-11-24T16:00:00Z"}));
    }
}
