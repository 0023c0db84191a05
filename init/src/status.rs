//! What the loop shares with the web and control threads, and the status
//! documents built from it.
//!
//! The loop owns the truth. After every change it publishes a [`View`] (a
//! snapshot of each service's state) into [`Shared`]; threads read the view and
//! the log rings, and send [`Request`]s back through a queue and the loop's
//! waker. A service's own status comes from its control socket
//! (`<run>/router/<name>.sock`, `GET /v1/status`), asked for in parallel when a
//! page is built, with a short timeout; one that does not answer is shown so.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use runtime::LoopWaker;
use runtime::timefmt::Timestamp;

use crate::cmdline::Slot;
use crate::logs::{LogPage, LogStore};
use crate::manifest::ServiceSpec;
use crate::mounts::PermState;
use crate::supervisor::{Exit, Record, State, StopReason};
use crate::sysinfo::{self, Address, Memory, Usage};

/// How long a service's control socket gets to answer a status query.
pub const SERVICE_STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// Something a thread asks the loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Stop a service.
    Stop(String),
    /// Restart (or start) a service.
    Restart(String),
    /// Start a service unless it runs.
    Start(String),
    /// Reboot the machine (supervise-only: stop everything and exit).
    Reboot,
    /// Power off (supervise-only: stop everything and exit).
    Poweroff,
    /// Re-read the password and refresh the web listeners (like SIGHUP).
    Refresh,
    /// Stop everything and reboot into the kernel loaded with kexec (an update's activation).
    Kexec,
    /// A line for init's log and the console (from a thread: the update worker).
    Note(String),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such service.
    UnknownService,
    /// A shutdown is under way.
    ShuttingDown,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UnknownService => "no such service",
            Self::ShuttingDown => "the system is shutting down",
        })
    }
}

/// How init runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// As the machine's PID 1.
    Pid1,
    /// As a plain supervisor (tests, trying it out): no mounts, no reboot.
    SuperviseOnly,
}

/// One service as the loop last published it.
#[derive(Debug, Clone)]
pub struct ServiceView {
    /// Its manifest entry.
    pub spec: ServiceSpec,
    /// Its supervision record.
    pub record: Record,
}

/// The loop's published snapshot.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Every service, in manifest order.
    pub services: Vec<ServiceView>,
    /// `reboot` or `poweroff` once a shutdown began.
    pub shutting_down: Option<&'static str>,
    /// Why the manifest was not used.
    pub manifest_error: Option<String>,
    /// Where the web interface listens.
    pub listeners: Vec<String>,
}

/// Counters the loop increments and `/metrics` shows.
#[derive(Debug, Default)]
pub struct Counters {
    /// Console lines dropped because the console was too slow.
    pub console_dropped: AtomicU64,
    /// Processes reaped that were not a service's main process.
    pub orphans_reaped: AtomicU64,
    /// Failed writes of persisted logs.
    pub log_write_errors: AtomicU64,
}

/// Facts fixed at boot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootInfo {
    /// `root=`.
    pub root: Option<String>,
    /// `router.slot=`.
    pub slot: Option<Slot>,
    /// `router.trial=1`.
    pub trial: bool,
    /// Our kernel parameters that were not understood.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmdline_ignored: Vec<String>,
}

/// `/perm` as found at boot, with its current usage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermInfo {
    /// The folder.
    pub path: PathBuf,
    /// Mounted, formatted, temporary, or a plain folder.
    pub state: PermState,
    /// The device.
    pub device: Option<PathBuf>,
    /// What happened at boot.
    pub detail: String,
    /// Size and use now.
    #[serde(flatten)]
    pub usage: Option<Usage>,
}

/// How a process ended, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitInfo {
    /// Exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Terminating signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// When.
    pub time: Timestamp,
}

/// A service's log ring in numbers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogStats {
    /// Lines held.
    pub lines: usize,
    /// Lines it holds at most.
    pub capacity: usize,
    /// Sequence number of the newest line.
    pub last_seq: u64,
}

/// One service in status documents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Name.
    pub name: String,
    /// `Starting`, `Running`, `Stopping`, `Backoff`, `CrashLoop` or `Stopped`.
    pub state: String,
    /// Main process.
    pub pid: Option<i32>,
    /// When the state last changed.
    pub since: Timestamp,
    /// How long the current run has lasted.
    pub uptime_seconds: Option<f64>,
    /// Starts after the first.
    pub restarts: u64,
    /// In a crash loop.
    pub crash_loop: bool,
    /// Failures since the last stable run.
    pub consecutive_failures: u32,
    /// Failures within the crash-loop window.
    pub recent_failures: usize,
    /// Seconds until the next restart.
    pub next_start_in_seconds: Option<f64>,
    /// The last exit.
    pub last_exit: Option<ExitInfo>,
    /// Why it is stopped.
    pub stop_reason: Option<String>,
    /// Resident memory of the main process.
    pub rss_bytes: Option<u64>,
    /// Binary.
    pub path: String,
    /// Arguments as passed.
    pub args: Vec<String>,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Ambient capabilities.
    pub capabilities: Vec<String>,
    /// Its log ring.
    pub log: LogStats,
    /// The service's own `/v1/status`, when asked for and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// Why its `/v1/status` could not be had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_error: Option<String>,
}

/// The overview: the system and every service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overview {
    /// Host name.
    pub hostname: String,
    /// `/etc/router/version`.
    pub version: String,
    /// Kernel release.
    pub kernel: String,
    /// How init runs.
    pub mode: Mode,
    /// Seconds since boot.
    pub uptime_seconds: Option<f64>,
    /// Seconds since init started.
    pub init_uptime_seconds: f64,
    /// Boot facts.
    pub boot: BootInfo,
    /// Memory.
    pub memory: Memory,
    /// `/perm`.
    pub perm: PermInfo,
    /// Addresses of up interfaces.
    pub addresses: Vec<Address>,
    /// Where the web interface listens.
    pub listeners: Vec<String>,
    /// `reboot` or `poweroff` once a shutdown began.
    pub shutting_down: Option<String>,
    /// Why the manifest was not used.
    pub manifest_error: Option<String>,
    /// Orphans reaped.
    pub orphans_reaped: u64,
    /// Console lines dropped.
    pub console_dropped_lines: u64,
    /// Every service.
    pub services: Vec<ServiceStatus>,
    /// Both slots, the trial, the last update (issue 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<bootslot::api::UpdateStatus>,
}

/// Everything the threads share with the loop.
#[derive(Debug)]
pub struct Shared {
    /// The log rings.
    pub logs: Arc<LogStore>,
    /// Counters.
    pub counters: Counters,
    /// Host name.
    pub hostname: String,
    /// Version line.
    pub version: String,
    /// Mode.
    pub mode: Mode,
    /// Boot facts.
    pub boot: BootInfo,
    /// `/perm` as found at boot.
    pub perm: PermInfo,
    /// The runtime folder (service sockets are in `<run>/router`).
    pub run_dir: PathBuf,
    /// The update machinery, once started.
    pub update: std::sync::OnceLock<Arc<crate::update::Updater>>,
    started: Instant,
    started_wall: SystemTime,
    view: Mutex<View>,
    requests: Mutex<Vec<Request>>,
    waker: LoopWaker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock aborts (panic = "abort"); the data stays usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The facts [`Shared::new`] needs.
#[derive(Debug, Clone)]
pub struct SharedInit {
    /// Host name.
    pub hostname: String,
    /// Version line.
    pub version: String,
    /// Mode.
    pub mode: Mode,
    /// Boot facts.
    pub boot: BootInfo,
    /// `/perm` as found at boot.
    pub perm: PermInfo,
    /// The runtime folder.
    pub run_dir: PathBuf,
}

/// Converts a monotonic instant to wall time, relative to a pair read together.
#[must_use]
pub fn wall_of(at: Instant, now: Instant, wall_now: SystemTime) -> Timestamp {
    let t = if at <= now { wall_now.checked_sub(now - at) } else { wall_now.checked_add(at - now) };
    Timestamp::from_system(t.unwrap_or(wall_now))
}

fn exit_info(exit: Exit, at: Instant, now: Instant, wall: SystemTime) -> ExitInfo {
    let (code, signal) = match exit {
        Exit::Code(c) => (Some(c), None),
        Exit::Signal(s) => (None, Some(s)),
    };
    ExitInfo { code, signal, time: wall_of(at, now, wall) }
}

fn stop_reason(r: StopReason) -> String {
    match r {
        StopReason::NotStarted => "not started at boot (autostart false)".into(),
        StopReason::Manual => "stopped by hand".into(),
        StopReason::Exited(e) => format!("exited on its own ({e}): not restarted"),
        StopReason::Shutdown => "shutdown".into(),
        StopReason::Unkillable => "did not die after SIGKILL".into(),
    }
}

impl Shared {
    /// Shared state for a loop whose waker is `waker`.
    #[must_use]
    pub fn new(init: SharedInit, logs: Arc<LogStore>, waker: LoopWaker, started: Instant) -> Self {
        Self {
            logs,
            counters: Counters::default(),
            hostname: init.hostname,
            version: init.version,
            mode: init.mode,
            boot: init.boot,
            perm: init.perm,
            run_dir: init.run_dir,
            update: std::sync::OnceLock::new(),
            started,
            started_wall: runtime::clock::wall_now(),
            view: Mutex::new(View::default()),
            requests: Mutex::new(Vec::new()),
            waker,
        }
    }

    /// Publishes a new snapshot (the loop calls this).
    pub fn publish(&self, view: View) {
        *lock(&self.view) = view;
    }

    /// The current snapshot.
    #[must_use]
    pub fn view(&self) -> View {
        lock(&self.view).clone()
    }

    /// Requests that arrived (the loop calls this on wake).
    pub fn take_requests(&self) -> Vec<Request> {
        std::mem::take(&mut *lock(&self.requests))
    }

    /// When init started, in wall time.
    #[must_use]
    pub fn started_wall(&self) -> SystemTime {
        self.started_wall
    }

    /// Queues a line for init's log, also during a shutdown.
    pub fn note(&self, text: String) {
        lock(&self.requests).push(Request::Note(text));
        self.waker.wake();
    }

    /// Queues a request for the loop, refusing what it would refuse.
    pub fn request(&self, request: Request) -> Result<(), Refusal> {
        let view = self.view();
        if view.shutting_down.is_some() {
            return Err(Refusal::ShuttingDown);
        }
        if let Request::Stop(name) | Request::Restart(name) | Request::Start(name) = &request
            && !view.services.iter().any(|s| &s.spec.name == name)
        {
            return Err(Refusal::UnknownService);
        }
        lock(&self.requests).push(request);
        self.waker.wake();
        Ok(())
    }

    fn service_status(&self, s: &ServiceView, now: Instant, wall: SystemTime) -> ServiceStatus {
        let r = &s.record;
        let state = r.state();
        let pid = state.pid();
        let (lines, capacity, last_seq) = self.logs.stats(&s.spec.name).unwrap_or((0, 0, 0));
        let uptime = match state {
            State::Running { since, .. } | State::Stopping { since, .. } => {
                Some(now.saturating_duration_since(since).as_secs_f64())
            }
            _ => None,
        };
        ServiceStatus {
            name: s.spec.name.clone(),
            state: state.name().to_owned(),
            pid,
            since: wall_of(r.changed(), now, wall),
            uptime_seconds: uptime,
            restarts: r.restarts(),
            crash_loop: r.crash_loop(),
            consecutive_failures: r.consecutive_failures(),
            recent_failures: r.recent_failures(),
            next_start_in_seconds: r.next_start().map(|t| t.saturating_duration_since(now).as_secs_f64()),
            last_exit: r.last_exit().map(|(e, at)| exit_info(e, at, now, wall)),
            stop_reason: match state {
                State::Stopped { why } => Some(stop_reason(why)),
                _ => None,
            },
            rss_bytes: pid.and_then(sysinfo::rss_bytes),
            path: s.spec.path.display().to_string(),
            args: s.spec.command_args(&self.perm.path, &self.run_dir),
            uid: s.spec.uid,
            gid: s.spec.gid,
            groups: s.spec.groups.clone(),
            capabilities: s.spec.capabilities.clone(),
            log: LogStats { lines, capacity, last_seq },
            status: None,
            status_error: None,
        }
    }

    /// Every service's status; with `ask_services`, each running one's own
    /// `/v1/status` too (in parallel, [`SERVICE_STATUS_TIMEOUT`] each).
    #[must_use]
    pub fn services(&self, ask_services: bool) -> Vec<ServiceStatus> {
        let view = self.view();
        let now = runtime::clock::now();
        let wall = runtime::clock::wall_now();
        let mut out: Vec<ServiceStatus> = view.services.iter().map(|s| self.service_status(s, now, wall)).collect();
        if ask_services {
            std::thread::scope(|scope| {
                let asks: Vec<_> = out
                    .iter_mut()
                    .filter(|s| s.pid.is_some())
                    .map(|s| {
                        let socket = runtime::control::socket_path(&self.run_dir, &s.name);
                        (s, scope.spawn(move || ask_status(&socket)))
                    })
                    .collect();
                for (s, handle) in asks {
                    match handle.join() {
                        Ok(Ok(v)) => s.status = Some(v),
                        Ok(Err(e)) => s.status_error = Some(e),
                        Err(_) => s.status_error = Some("status query failed".into()),
                    }
                }
            });
        }
        out
    }

    /// One service, with its own status.
    #[must_use]
    pub fn service(&self, name: &str) -> Option<ServiceStatus> {
        let view = self.view();
        let s = view.services.iter().find(|s| s.spec.name == name)?;
        let mut status = self.service_status(s, runtime::clock::now(), runtime::clock::wall_now());
        if status.pid.is_some() {
            match ask_status(&runtime::control::socket_path(&self.run_dir, name)) {
                Ok(v) => status.status = Some(v),
                Err(e) => status.status_error = Some(e),
            }
        }
        Some(status)
    }

    /// The overview document.
    #[must_use]
    pub fn overview(&self, ask_services: bool) -> Overview {
        let view = self.view();
        let mut perm = self.perm.clone();
        perm.usage = sysinfo::usage(&perm.path);
        Overview {
            hostname: self.hostname.clone(),
            version: self.version.clone(),
            kernel: sysinfo::kernel_release(),
            mode: self.mode,
            uptime_seconds: sysinfo::uptime(),
            init_uptime_seconds: runtime::clock::now().saturating_duration_since(self.started).as_secs_f64(),
            boot: self.boot.clone(),
            memory: sysinfo::memory(),
            perm,
            addresses: sysinfo::addresses(),
            listeners: view.listeners.clone(),
            shutting_down: view.shutting_down.map(str::to_owned),
            manifest_error: view.manifest_error.clone(),
            orphans_reaped: self.counters.orphans_reaped.load(Ordering::Relaxed),
            console_dropped_lines: self.counters.console_dropped.load(Ordering::Relaxed),
            services: self.services(ask_services),
            update: self.update.get().map(|u| u.status()),
        }
    }

    /// Whether `name` has a log ring (a service, `init` or `kernel`).
    #[must_use]
    pub fn has_log(&self, name: &str) -> bool {
        self.logs.stats(name).is_some()
    }

    /// Log lines of `name` after `since`, waiting up to `wait` for one.
    #[must_use]
    pub fn log_after(&self, name: &str, since: u64, limit: usize, wait: Duration) -> Option<LogPage> {
        if wait.is_zero() {
            self.logs.after(name, since, limit)
        } else {
            self.logs.wait_after(name, since, limit, wait)
        }
    }

    /// Prometheus text for `/metrics`.
    #[must_use]
    pub fn metrics(&self) -> String {
        let mut enc = runtime::metrics::Encoder::new();
        let services = self.services(false);
        for s in &services {
            let l = [("service", s.name.as_str())];
            enc.gauge(
                "init_service_up",
                "Whether the service's process runs.",
                &l,
                f64::from(u8::from(s.pid.is_some())),
            );
            enc.counter("init_service_restarts_total", "Starts of the service after its first.", &l, s.restarts);
            enc.gauge(
                "init_service_crash_loop",
                "Whether the service is in a crash loop (5 failures within 10 minutes).",
                &l,
                f64::from(u8::from(s.crash_loop)),
            );
            if let Some(rss) = s.rss_bytes {
                enc.gauge("init_service_rss_bytes", "Resident memory of the service's main process.", &l, rss as f64);
            }
            enc.counter("init_service_log_lines_total", "Lines the service has logged.", &l, s.log.last_seq);
        }
        let c = &self.counters;
        enc.counter(
            "init_console_dropped_lines_total",
            "Log lines not shown on the console because it was too slow.",
            &[],
            c.console_dropped.load(Ordering::Relaxed),
        );
        enc.counter(
            "init_orphans_reaped_total",
            "Reaped processes that were not a service's main process.",
            &[],
            c.orphans_reaped.load(Ordering::Relaxed),
        );
        enc.counter(
            "init_log_write_errors_total",
            "Failed writes of persisted logs.",
            &[],
            c.log_write_errors.load(Ordering::Relaxed),
        );
        let mem = sysinfo::memory();
        enc.gauge("init_memory_total_bytes", "MemTotal.", &[], mem.total_bytes as f64);
        enc.gauge("init_memory_available_bytes", "MemAvailable.", &[], mem.available_bytes as f64);
        if let Some(u) = sysinfo::usage(&self.perm.path) {
            enc.gauge("init_perm_size_bytes", "Size of /perm.", &[], u.total_bytes as f64);
            enc.gauge("init_perm_available_bytes", "Free space on /perm.", &[], u.available_bytes as f64);
        }
        enc.gauge(
            "init_perm_persistent",
            "Whether /perm survives a reboot (0: a temporary tmpfs stands in).",
            &[],
            f64::from(u8::from(self.perm.state != PermState::Temporary)),
        );
        if let Some(up) = sysinfo::uptime() {
            enc.gauge("init_uptime_seconds", "Seconds since boot.", &[], up);
        }
        enc.finish()
    }
}

/// A service's `/v1/status`, or why not.
pub fn ask_status(socket: &std::path::Path) -> Result<Value, String> {
    let r = runtime::unix_http::request(socket, "GET", "/v1/status", b"", SERVICE_STATUS_TIMEOUT)
        .map_err(|e| format!("not answering: {e}"))?;
    if r.status != 200 {
        return Err(format!("answered {}", r.status));
    }
    r.json().map_err(|e| format!("answered with invalid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_monotonic_instants_to_wall_time() {
        let now = runtime::clock::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(wall_of(now - Duration::from_secs(10), now, wall), Timestamp { secs: 999_990, nanos: 0 });
        assert_eq!(wall_of(now + Duration::from_secs(5), now, wall), Timestamp { secs: 1_000_005, nanos: 0 });
    }

    #[test]
    fn a_socket_nobody_serves_is_reported_as_not_answering() {
        let err = ask_status(std::path::Path::new("/nonexistent/router/x.sock")).unwrap_err();
        assert!(err.starts_with("not answering"), "{err}");
    }
}
