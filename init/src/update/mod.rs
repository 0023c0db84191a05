//! Updates: HTTP push into the inactive slot, activation through kexec (or a
//! firmware reboot with syslinux's one-shot boot), the trial boot that must
//! prove itself healthy before it becomes the loader's default, and the
//! automatic rollback when it does not (issue 11; init/README.md "Updates").
//!
//! | module | owns |
//! |---|---|
//! | [`slots`] | what each slot holds and whether it may be activated (`/perm/init/slots.json`) — sans IO |
//! | [`health`] | the trial's health criterion and its commit/rollback decision — sans IO |
//! | [`upload`] | an upload's length and content checks and its hashed copy |
//! | [`bootpart`] | the FAT boot partition: kernels, `syslinux.cfg`, the ADV |
//! | [`trial`] | what the system does at boot about an activation (trial, commit, rollback record) |
//! | [`web`] | the `/update/…` endpoints on private:80 |
//!
//! [`Updater`] ties them together; threads (the web listeners, the trial
//! worker) call it, and it asks init's loop for the rest through
//! [`Shared::request`]: a reboot, a kexec, a line in init's log.

pub mod bootpart;
pub mod health;
pub mod slots;
pub mod trial;
pub mod upload;
pub mod web;

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;

use bootslot::Slot;
use bootslot::api::{
    Activated, CheckResult, Features, ImageVersion, LastUpdate, Method, PROTOCOL, TrialRecord, TrialState, UpdateStatus,
};
use bootslot::loader;
use runtime::control::Control;
use runtime::timefmt::Timestamp;

use crate::cmdline::KernelCmdline;
use crate::status::{Mode, Refusal, Request, Shared};
use bootpart::{BootPartition, Location};
use health::Observed;
use slots::{PartKind, SlotTable};

/// The table of slots.
pub const SLOTS_FILE: &str = "slots.json";
/// The activation in progress.
pub const TRIAL_FILE: &str = "trial.json";
/// The last finished update.
pub const LAST_UPDATE_FILE: &str = "last-update.json";
/// After the trial's deadline plus this long without a decision carried out
/// (the rollback reboot did not happen, the worker hangs), init stops pinging
/// the hardware watchdog: the reset lands in the loader's default, the old slot.
pub const WATCHDOG_GRACE: Duration = Duration::from_secs(90);

/// Where the boot partition and the slots are, from init's command line
/// (supervise-only tests); as PID 1 they come from `root=`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--update-boot DIR`: a folder standing in for the boot partition.
    pub boot: Option<PathBuf>,
    /// `--update-slot-a FILE`, `--update-slot-b FILE`: files standing in for the root partitions.
    pub roots: [Option<PathBuf>; 2],
}

/// What [`Updater::start`] needs to know.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `<perm>/init`, where the records are kept.
    pub dir: PathBuf,
    /// The kernel command line (slot, trial flag, `root=`).
    pub cmdline: KernelCmdline,
    /// `/etc/router/version`.
    pub version_file: PathBuf,
    /// Host name.
    pub hostname: String,
    /// PID 1 or supervise-only (kexec only as PID 1).
    pub mode: Mode,
    /// Where things are, or why they could not be found.
    pub devices: Result<Devices, String>,
}

/// The boot partition and both root partitions.
#[derive(Debug, Clone)]
pub struct Devices {
    /// The boot partition.
    pub boot: Location,
    /// Root partitions of slot a and slot b.
    pub roots: [PathBuf; 2],
    /// Their sizes in bytes.
    pub root_bytes: [u64; 2],
}

impl Devices {
    /// As PID 1: partitions 1, 2 and 3 of the disk `root=` names, the boot
    /// partition mounted at `/boot` when used.
    ///
    /// # Errors
    /// When `root=` is missing or a partition cannot be found.
    pub fn from_root(root: Option<&str>, sys: &Path, dev: &Path) -> Result<Self, String> {
        let root = root.ok_or("no root= on the kernel command line")?;
        let find = |n| crate::rootdev::partition_device(root, sys, dev, n).map_err(|e| e.to_string());
        let boot = find(1)?;
        let roots = [find(2)?, find(3)?];
        let size = |p: &Path| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            crate::rootdev::block_size(sys, name).map_err(|e| e.to_string())
        };
        let root_bytes = [size(&roots[0])?, size(&roots[1])?];
        Ok(Self { boot: Location::Device { device: boot, mount_point: PathBuf::from("/boot") }, roots, root_bytes })
    }

    /// From `--update-*` options: folders and files standing in.
    ///
    /// # Errors
    /// When an option is missing or a file cannot be read.
    pub fn from_options(o: &Options) -> Result<Self, String> {
        let boot = o.boot.clone().ok_or("no --update-boot (not PID 1): updates are off")?;
        let [Some(a), Some(b)] = o.roots.clone() else {
            return Err("--update-boot needs --update-slot-a and --update-slot-b".into());
        };
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()));
        let root_bytes = [len(&a)?, len(&b)?];
        Ok(Self { boot: Location::Folder(boot), roots: [a, b], root_bytes })
    }
}

/// A trial as the running system tracks it.
#[derive(Debug, Clone)]
pub struct TrialView {
    /// The activation.
    pub record: TrialRecord,
    /// When it rolls back at the latest.
    pub deadline: Instant,
    /// The checks as last evaluated.
    pub results: Vec<CheckResult>,
    /// Decided (committed or failed).
    pub decided: bool,
}

/// What the threads change.
#[derive(Debug)]
struct State {
    table: SlotTable,
    default: Option<Slot>,
    trial: Option<TrialView>,
    last: Option<LastUpdate>,
    busy: Option<String>,
    /// An activation was accepted: nothing else until the reboot.
    activated: bool,
}

/// The update machinery of one boot.
#[derive(Debug)]
pub struct Updater {
    dir: PathBuf,
    /// Where the partitions are, or why updates are off.
    devices: Result<Found, String>,
    active: Option<Slot>,
    trial_flag: bool,
    running: ImageVersion,
    hostname: String,
    kexec_allowed: bool,
    started: Instant,
    shared: Arc<Shared>,
    control: Control,
    state: Mutex<State>,
}

/// The boot partition, both root partitions and their sizes.
type Found = (Arc<BootPartition>, [PathBuf; 2], [u64; 2]);

/// What power-down does when `reboot(LINUX_REBOOT_CMD_KEXEC)` fails after a
/// kexec activation: the same trial through the firmware.
static KEXEC_FALLBACK: Mutex<Option<(Arc<BootPartition>, Slot)>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Now, as RFC 3339.
#[must_use]
pub fn now_text() -> String {
    Timestamp::from_system(runtime::clock::wall_now()).to_string()
}

/// The slot a kernel command line runs: `router.slot=`, else the partition
/// number in `root=` (`…-02`, `/dev/vda3`).
#[must_use]
pub fn active_slot(cmdline: &KernelCmdline) -> Option<Slot> {
    if let Some(s) = cmdline.slot {
        return Some(slot_of(s));
    }
    let root = cmdline.root.as_deref()?;
    let digits: String = root.chars().rev().take_while(char::is_ascii_digit).collect();
    let n: u32 = digits.chars().rev().collect::<String>().parse().ok()?;
    Slot::from_partition(n)
}

/// Why an activation failed, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// HTTP status.
    pub status: u16,
    /// Why.
    pub error: String,
}

fn refused(status: u16, error: impl Into<String>) -> Refused {
    Refused { status, error: error.into() }
}

/// What an activation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The slot (default: the inactive one).
    pub slot: Option<Slot>,
    /// Through kexec (default) or the firmware.
    pub kexec: bool,
    /// The trial's deadline.
    pub trial_seconds: u64,
    /// `update` or `rollback`.
    pub kind: String,
}

/// An HTTP status and why, for [`bootpart::replace_file`].
struct Failure(u16, String);

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self(500, e.to_string())
    }
}

enum KexecError {
    /// The kernel refused the image: the slot's kernel is bad.
    BadImage(String),
    /// kexec cannot be used here (no support, no permission, no config).
    Unavailable(String),
}

impl Updater {
    /// Loads the records, publishes the status in `shared` and starts the
    /// worker that settles what the last activation left (see [`trial`]).
    pub fn start(setup: Setup, shared: Arc<Shared>, control: Control) -> Arc<Self> {
        let running = std::fs::read_to_string(&setup.version_file)
            .map(|t| ImageVersion::parse(&t))
            .unwrap_or_else(|_| ImageVersion { version: "unknown version".into(), build_time: None });
        let active = active_slot(&setup.cmdline);
        let mut notes = Vec::new();
        let mut table = match runtime::statefile::read_json::<SlotTable>(&setup.dir.join(SLOTS_FILE)) {
            Ok(Some(t)) => t.normalised(),
            Ok(None) => SlotTable::new(),
            Err(e) => {
                notes.push(format!("{e}; starting a fresh slot table (both slots as installed)"));
                SlotTable::new()
            }
        };
        if let Some(a) = active {
            table.confirm_running(a, &running);
        }
        let last = match runtime::statefile::read_json::<LastUpdate>(&setup.dir.join(LAST_UPDATE_FILE)) {
            Ok(l) => l,
            Err(e) => {
                notes.push(e.to_string());
                None
            }
        };
        let devices = match (setup.devices, active) {
            (Ok(d), Some(_)) => Ok((Arc::new(BootPartition::new(d.boot)), d.roots, d.root_bytes)),
            (Ok(_), None) => Err("the running slot is not known (no router.slot= and no slot in root=)".into()),
            (Err(e), _) => Err(e),
        };
        let updater = Arc::new(Self {
            dir: setup.dir,
            devices,
            active,
            trial_flag: setup.cmdline.trial,
            running,
            hostname: setup.hostname,
            kexec_allowed: setup.mode == Mode::Pid1,
            started: runtime::clock::now(),
            shared: Arc::clone(&shared),
            control,
            state: Mutex::new(State { table, default: None, trial: None, last, busy: None, activated: false }),
        });
        let _ = shared.update.set(Arc::clone(&updater));
        for n in notes {
            updater.note(n);
        }
        if let Err(e) = &updater.devices {
            updater.note(format!("updates are off: {e}"));
        }
        let worker = Arc::clone(&updater);
        if let Err(e) = std::thread::Builder::new().name("update".into()).spawn(move || trial::run(&worker)) {
            updater.note(format!("cannot start the update worker: {e}"));
        }
        updater
    }

    /// A line in init's log (and on the console), prefixed `update: `.
    pub fn note(&self, text: String) {
        self.shared.note(format!("update: {text}"));
    }

    fn emit(&self, topic: &str, attributes: serde_json::Value) {
        self.control.emit(topic, attributes);
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn save_table(&self, table: &SlotTable) -> Result<(), String> {
        runtime::statefile::write_json(&self.file(SLOTS_FILE), table).map_err(|e| e.to_string())
    }

    fn save_trial(&self, record: &TrialRecord) -> Result<(), String> {
        runtime::statefile::write_json(&self.file(TRIAL_FILE), record).map_err(|e| e.to_string())
    }

    fn save_last(&self, last: &LastUpdate) -> Result<(), String> {
        runtime::statefile::write_json(&self.file(LAST_UPDATE_FILE), last).map_err(|e| e.to_string())
    }

    fn boot(&self) -> Result<&Arc<BootPartition>, String> {
        self.devices.as_ref().map(|(b, _, _)| b).map_err(Clone::clone)
    }

    /// The running slot.
    #[must_use]
    pub fn active(&self) -> Option<Slot> {
        self.active
    }

    /// The version running now.
    #[must_use]
    pub fn running(&self) -> &ImageVersion {
        &self.running
    }

    /// `GET /update/features`.
    #[must_use]
    pub fn features(&self) -> Features {
        let inactive = self.active.map(Slot::other);
        let max_root = match (&self.devices, inactive) {
            (Ok((_, _, sizes)), Some(s)) => sizes[usize::from(s == Slot::B)],
            _ => 0,
        };
        Features {
            protocol: PROTOCOL,
            hash: "sha256".into(),
            features: ["root", "kernel", "activate", "kexec", "trial", "rollback"].map(String::from).to_vec(),
            max_root_bytes: max_root,
            max_kernel_bytes: bootslot::api::MAX_KERNEL_BYTES,
            running: self.running.clone(),
            active: self.active,
            hostname: self.hostname.clone(),
        }
    }

    /// `GET /update/status` (and `update` in init's overview).
    #[must_use]
    pub fn status(&self) -> UpdateStatus {
        let st = lock(&self.state);
        let now = runtime::clock::now();
        UpdateStatus {
            running: self.running.clone(),
            active: self.active,
            inactive: self.active.map(Slot::other),
            default: st.default,
            slots: st.table.status(self.active, st.default),
            trial: st.trial.as_ref().filter(|t| !t.decided).map(|t| bootslot::api::TrialStatus {
                record: t.record.clone(),
                remaining_seconds: t.deadline.saturating_duration_since(now).as_secs_f64(),
                results: t.results.clone(),
            }),
            last_update: st.last.clone(),
            busy: st.busy.clone(),
            unavailable: self.devices.as_ref().err().cloned(),
        }
    }

    /// Whether init's loop may ping the hardware watchdog: not once a trial
    /// is [`WATCHDOG_GRACE`] past its deadline without having committed.
    #[must_use]
    pub fn watchdog_may_ping(&self, now: Instant) -> bool {
        let st = lock(&self.state);
        may_ping(st.trial.as_ref().map(|t| (t.record.state, t.deadline)), now)
    }

    /// What init sees of every service now (each running one asked for its status).
    #[must_use]
    pub fn observe(&self) -> Vec<Observed> {
        self.shared
            .services(true)
            .into_iter()
            .map(|s| Observed {
                running_seconds: (s.state == "Running").then_some(s.uptime_seconds.unwrap_or(0.0)),
                service: s.name,
                status: s.status,
            })
            .collect()
    }

    fn manifest_services(&self) -> Vec<String> {
        self.shared.view().services.iter().map(|s| s.spec.name.clone()).collect()
    }

    /// Refuses what cannot happen now: updates off, busy, an activation
    /// under way, a trial not yet committed (its old slot is the only way back).
    fn check_idle(&self, st: &State) -> Result<(), Refused> {
        if let Err(e) = &self.devices {
            return Err(refused(503, format!("updates are off: {e}")));
        }
        if st.activated {
            return Err(refused(409, "an activation is under way: the router is rebooting"));
        }
        if let Some(b) = &st.busy {
            return Err(refused(409, format!("busy: {b}")));
        }
        if let Some(t) = st.trial.as_ref().filter(|t| t.record.state != TrialState::Committed) {
            return Err(refused(
                409,
                format!(
                    "slot {} is on trial and not committed yet: its fallback, slot {}, must not be written",
                    t.record.to_slot, t.record.from_slot
                ),
            ));
        }
        if self.shared.view().shutting_down.is_some() {
            return Err(refused(409, "the system is shutting down"));
        }
        Ok(())
    }

    /// Starts an upload of `part`: checks it may happen, marks the inactive
    /// slot's part missing (on disk, before any byte is written) and returns
    /// the slot and the room there is.
    ///
    /// # Errors
    /// When it may not happen now.
    pub fn begin_upload(
        &self,
        part: PartKind,
        declared: Option<u64>,
        claimed: Option<ImageVersion>,
    ) -> Result<(Slot, u64), Refused> {
        let mut st = lock(&self.state);
        self.check_idle(&st)?;
        let slot = self.active.map(Slot::other).ok_or_else(|| refused(503, "the running slot is not known"))?;
        let max = match part {
            PartKind::Root => self.devices.as_ref().map(|(_, _, s)| s[usize::from(slot == Slot::B)]).unwrap_or(0),
            PartKind::Kernel => bootslot::api::MAX_KERNEL_BYTES,
        };
        let length = upload::check_length(declared, max).map_err(|e| refused(e.status(), e.to_string()))?;
        let mut table = st.table.clone();
        table.begin(slot, part, claimed.as_ref(), &now_text());
        self.save_table(&table).map_err(|e| refused(500, format!("cannot record the upload: {e}")))?;
        st.table = table;
        st.busy = Some(format!("receiving the {} of slot {slot} ({length} bytes)", part.name()));
        Ok((slot, length))
    }

    /// Ends an upload begun with [`Updater::begin_upload`].
    pub fn finish_upload(&self, slot: Slot, part: PartKind, result: &Result<(String, u64), String>) {
        let mut st = lock(&self.state);
        st.busy = None;
        match result {
            Ok((sha256, bytes)) => {
                st.table.finish(slot, part, sha256, *bytes, &now_text());
                self.emit(
                    "init.update.uploaded",
                    json!({"slot": slot, "part": part.name(), "sha256": sha256, "bytes": bytes}),
                );
            }
            Err(e) => {
                st.table.fail(slot, part, e);
                self.emit("init.update.upload_failed", json!({"slot": slot, "part": part.name(), "error": e}));
            }
        }
        if let Err(e) = self.save_table(&st.table) {
            drop(st);
            self.note(format!("cannot record the {} upload of slot {slot}: {e}", part.name()));
            return;
        }
        drop(st);
        match result {
            Ok((sha, bytes)) => self.note(format!("slot {slot}: {} written, {bytes} bytes, sha256 {sha}", part.name())),
            Err(e) => self.note(format!("slot {slot}: {} upload failed, slot not bootable: {e}", part.name())),
        }
    }

    /// Writes the root image from `src` into `slot`'s partition.
    ///
    /// # Errors
    /// What went wrong, with its HTTP status.
    pub fn write_root(&self, slot: Slot, src: &mut dyn io::Read, length: u64) -> Result<String, (u16, String)> {
        let (_, roots, _) = self.devices.as_ref().map_err(|e| (503, e.clone()))?;
        let path = &roots[usize::from(slot == Slot::B)];
        let mut dev = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| (500, format!("{}: {e}", path.display())))?;
        let sha = upload::copy(PartKind::Root, src, &mut dev, length).map_err(|e| (e.status(), e.to_string()))?;
        dev.sync_all().map_err(|e| (500, format!("syncing {}: {e}", path.display())))?;
        Ok(sha)
    }

    /// Writes the kernel from `src` as `slot`'s kernel file.
    ///
    /// # Errors
    /// What went wrong, with its HTTP status.
    pub fn write_kernel(&self, slot: Slot, src: &mut dyn io::Read, length: u64) -> Result<String, (u16, String)> {
        let boot = self.boot().map_err(|e| (503, e))?;
        let outcome = boot.with(|dir| {
            let name = bootpart::read_config(dir)
                .ok()
                .and_then(|cfg| loader::kernel(&cfg, slot).ok())
                .unwrap_or_else(|| slot.kernel_file().to_owned());
            let file = dir.join(&name);
            let old = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let free = rustix::fs::statvfs(dir).map(|v| v.f_bavail.saturating_mul(v.f_frsize)).unwrap_or(u64::MAX);
            if length > free.saturating_add(old) {
                return Ok(Err((413, format!("the boot partition has room for {} bytes, not {length}", free + old))));
            }
            // The slot is not bootable already (its kernel is marked missing):
            // make room first, then write the new one under a temp name.
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Ok(Err((500, format!("{}: {e}", file.display())))),
            }
            let written = bootpart::replace_file(dir, &name, |f| {
                upload::copy(PartKind::Kernel, src, f, length).map_err(|e| Failure(e.status(), e.to_string()))
            });
            Ok(written.map_err(|Failure(status, e)| (status, e)))
        });
        match outcome {
            Ok(r) => r,
            Err(e) => Err((500, format!("boot partition: {e}"))),
        }
    }

    fn load_kexec(&self, boot: &BootPartition, slot: Slot) -> Result<(), KexecError> {
        let loaded = boot.with(|dir| {
            let cfg = bootpart::read_config(dir)?;
            let cmdline = match loader::trial_cmdline(&cfg, slot) {
                Ok(c) => c,
                Err(e) => return Ok(Err(KexecError::Unavailable(e.to_string()))),
            };
            let kernel = dir.join(loader::kernel(&cfg, slot).unwrap_or_else(|_| slot.kernel_file().to_owned()));
            let file = std::fs::File::open(&kernel)?;
            Ok(match runtime::sys::kexec_file_load(file.as_fd(), &cmdline) {
                Ok(()) => Ok(()),
                Err(e) => {
                    use rustix::io::Errno;
                    let bad = [Errno::NOEXEC, Errno::INVAL, Errno::BADMSG].map(Errno::raw_os_error);
                    Err(match e.raw_os_error() {
                        Some(c) if bad.contains(&c) => {
                            KexecError::BadImage(format!("kexec refused {}: {e}", kernel.display()))
                        }
                        _ => KexecError::Unavailable(format!("kexec_file_load: {e}")),
                    })
                }
            })
        });
        loaded.unwrap_or_else(|e| Err(KexecError::Unavailable(format!("boot partition: {e}"))))
    }

    /// Prepares the activation of a slot: a trial boot through kexec (the
    /// kernel loaded) or the firmware (the one-shot boot set), and the record
    /// of it in `/perm/init/trial.json`. [`Updater::launch`] then reboots —
    /// after the answer went out, so the client learns that it was accepted.
    ///
    /// # Errors
    /// Why the slot may not be activated now.
    pub fn activate(&self, ask: &Activation) -> Result<Activated, Refused> {
        let (target, active, to_version) = {
            let mut st = lock(&self.state);
            self.check_idle(&st)?;
            let active = self.active.ok_or_else(|| refused(503, "the running slot is not known"))?;
            if self.shared.perm.state == crate::mounts::PermState::Temporary {
                // The trial's record must survive the reboot, or nobody can tell a rollback.
                return Err(refused(
                    503,
                    "/perm is a temporary tmpfs: an activation's record would not survive the reboot",
                ));
            }
            let target = ask.slot.unwrap_or_else(|| active.other());
            st.table.activatable(target, active).map_err(|e| refused(409, format!("slot {target}: {e}")))?;
            let r = st.table.get(target);
            let to_version = ImageVersion {
                version: r.version.clone().unwrap_or_else(|| "unknown (installed by the image build)".into()),
                build_time: r.build_time.clone(),
            };
            st.busy = Some(format!("activating slot {target}"));
            st.activated = true;
            (target, active, to_version)
        };
        let result = self.prepare(ask, target, active, to_version);
        if result.is_err() {
            let mut st = lock(&self.state);
            st.busy = None;
            st.activated = false;
        }
        result
    }

    fn prepare(
        &self,
        ask: &Activation,
        target: Slot,
        active: Slot,
        to_version: ImageVersion,
    ) -> Result<Activated, Refused> {
        let boot = Arc::clone(self.boot().map_err(|e| refused(503, e))?);
        let names = self.manifest_services();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let checks = health::criterion(&health::default_checks(&names), &self.observe());
        let (mut method, mut note) = (Method::Firmware, None);
        if ask.kexec && !self.kexec_allowed {
            note = Some("kexec is not used in supervise-only mode: firmware reboot".to_owned());
        } else if ask.kexec {
            match self.load_kexec(&boot, target) {
                Ok(()) => method = Method::Kexec,
                Err(KexecError::BadImage(e)) => {
                    let mut st = lock(&self.state);
                    st.table.fail(target, PartKind::Kernel, &e);
                    let _ = self.save_table(&st.table);
                    return Err(refused(422, format!("slot {target}'s kernel is not bootable: {e}")));
                }
                Err(KexecError::Unavailable(e)) => note = Some(format!("{e}: firmware reboot instead")),
            }
        }
        if method == Method::Firmware {
            let cmd = loader::boot_once_command(target);
            boot.with(|dir| bootpart::set_boot_once(dir, Some(&cmd)))
                .map_err(|e| refused(500, format!("cannot set the one-shot boot {cmd:?}: {e}")))?;
        }
        let undo = |method: Method| match method {
            Method::Kexec => {
                let _ = runtime::sys::kexec_file_unload();
            }
            Method::Firmware => {
                let _ = boot.with(|dir| bootpart::set_boot_once(dir, None));
            }
        };
        let record = TrialRecord {
            from_slot: active,
            to_slot: target,
            from_version: self.running.clone(),
            to_version,
            method,
            activated_at: now_text(),
            deadline_seconds: ask.trial_seconds,
            checks,
            state: TrialState::Pending,
            reason: None,
            kind: ask.kind.clone(),
            trial_started_at: None,
        };
        if let Err(e) = self.save_trial(&record) {
            undo(method);
            return Err(refused(500, format!("cannot record the activation: {e}")));
        }
        if method == Method::Kexec {
            *lock(&KEXEC_FALLBACK) = Some((Arc::clone(&boot), target));
        }
        if self.shared.view().shutting_down.is_some() {
            undo(method);
            self.abandon();
            return Err(refused(409, Refusal::ShuttingDown.to_string()));
        }
        self.emit(
            "init.update.activated",
            json!({"slot": target, "method": method.name(), "version": record.to_version.version,
                   "trial_seconds": ask.trial_seconds, "checks": record.checks}),
        );
        let how = match method {
            Method::Kexec => "kexec",
            Method::Firmware => "a firmware reboot (one-shot boot)",
        };
        self.note(format!(
            "activating slot {target} ({}) through {how}; trial of {} s: {}",
            record.to_version,
            ask.trial_seconds,
            record.checks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ));
        Ok(Activated {
            slot: target,
            method,
            trial_seconds: ask.trial_seconds,
            activated_at: record.activated_at,
            note,
        })
    }
}

impl Updater {
    /// Reboots into the activation [`Updater::activate`] prepared (through
    /// init's loop: services stopped, `/perm` unmounted, then kexec or a reset).
    pub fn launch(&self, done: &Activated) {
        let request = if done.method == Method::Kexec { Request::Kexec } else { Request::Reboot };
        if let Err(e) = self.shared.request(request) {
            // A shutdown began in between: it reboots into the default slot, so undo.
            match done.method {
                Method::Kexec => {
                    let _ = runtime::sys::kexec_file_unload();
                }
                Method::Firmware => {
                    if let Ok(boot) = self.boot() {
                        let _ = boot.with(|dir| bootpart::set_boot_once(dir, None));
                    }
                }
            }
            self.abandon();
            self.note(format!("the activation of slot {} was abandoned: {e}", done.slot));
        }
    }

    /// Forgets a prepared activation.
    fn abandon(&self) {
        let _ = std::fs::remove_file(self.file(TRIAL_FILE));
        *lock(&KEXEC_FALLBACK) = None;
        let mut st = lock(&self.state);
        st.busy = None;
        st.activated = false;
    }
}

/// Called by power-down when `reboot(LINUX_REBOOT_CMD_KEXEC)` failed after a
/// kexec activation: sets the one-shot boot of the same slot so the firmware
/// reboot that follows runs the same trial. What happened, for the console.
#[must_use]
pub fn after_failed_kexec() -> String {
    let Some((boot, slot)) = lock(&KEXEC_FALLBACK).take() else {
        return "no update was being activated".into();
    };
    let cmd = loader::boot_once_command(slot);
    match boot.with(|dir| bootpart::set_boot_once(dir, Some(&cmd))) {
        Ok(()) => format!("one-shot boot {cmd:?} set: the firmware reboot runs the same trial"),
        Err(e) => format!("cannot set the one-shot boot {cmd:?} ({e}): the firmware boots the default slot"),
    }
}

/// The watchdog rule: pings stop once a trial (its state and deadline) is
/// [`WATCHDOG_GRACE`] past its deadline without having committed.
#[must_use]
pub fn may_ping(trial: Option<(TrialState, Instant)>, now: Instant) -> bool {
    match trial {
        Some((state, deadline)) if state != TrialState::Committed => now < deadline + WATCHDOG_GRACE,
        _ => true,
    }
}

/// The slot shared with status documents (init's own [`crate::cmdline::Slot`] predates bootslot).
#[must_use]
pub fn slot_of(s: crate::cmdline::Slot) -> Slot {
    match s {
        crate::cmdline::Slot::A => Slot::A,
        crate::cmdline::Slot::B => Slot::B,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_starved_only_by_a_trial_long_past_its_deadline() {
        let t0 = runtime::clock::now();
        let late = t0 + Duration::from_secs(120) + WATCHDOG_GRACE;
        assert!(may_ping(None, late), "no trial");
        assert!(may_ping(Some((TrialState::Pending, t0 + Duration::from_secs(120))), late - Duration::from_secs(1)));
        assert!(!may_ping(Some((TrialState::Pending, t0 + Duration::from_secs(120))), late));
        assert!(!may_ping(Some((TrialState::Failed, t0)), t0 + WATCHDOG_GRACE), "the rollback reboot did not come");
        assert!(may_ping(Some((TrialState::Committed, t0)), late), "committed: healthy for good");
    }

    #[test]
    fn the_running_slot_comes_from_router_slot_or_the_root_partition() {
        let c = |t: &str| KernelCmdline::parse(t);
        assert_eq!(active_slot(&c("root=/dev/vda2 router.slot=b")), Some(Slot::B));
        assert_eq!(active_slot(&c("root=PARTUUID=0a0b0c0d-03")), Some(Slot::B));
        assert_eq!(active_slot(&c("root=/dev/sda2")), Some(Slot::A));
        assert_eq!(active_slot(&c("root=/dev/sda4")), None);
        assert_eq!(active_slot(&c("")), None);
    }
}
