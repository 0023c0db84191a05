//! The shell around the supervision core: one `runtime::EventLoop` with
//! SIGCHLD, the service pipes, the kernel log, the console, timers for the
//! watchdog and the web listeners, and the queue of requests from the web and
//! control threads. It spawns, signals and reaps (every child, orphans
//! included: `waitpid(-1, WNOHANG)` until nothing is left), turns output into
//! log lines (ring, `/perm` file, console), and shuts down cleanly.
//!
//! Signals: SIGCHLD reaps; SIGTERM and SIGINT reboot; SIGUSR2 powers off;
//! SIGHUP (netconfigd after each apply) and SIGUSR1 re-read the password and
//! refresh the web listeners.
//!
//! Work per wake-up is bounded: a pipe is read up to [`PIPE_BUDGET`] bytes per
//! turn and then waits its turn again, so a service flooding its output cannot
//! starve the timers, the other services or a shutdown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use serde_json::json;

use runtime::control::{Control, Phase};
use runtime::http::{BasicAuth, ListenerPool};
use runtime::sys::SignalInfo;
use runtime::timefmt::Timestamp;
use runtime::{Context, EventLoop, Handler, Ready, Signal};

use crate::console::ConsoleQueue;
use crate::logfile::LogFile;
use crate::logs::{LineSplitter, LogStore, Stream};
use crate::manifest::{self, Manifest, ServiceSpec};
use crate::status::{Mode, Request, ServiceView, Shared, SharedInit, View};
use crate::supervisor::{Action, Exit, Kill, Next, Notice, Policy, StartReason, Supervisor};
use crate::{spawn, web};

/// Bytes read from one pipe per loop turn.
pub const PIPE_BUDGET: usize = 64 * 1024;
/// Lines init keeps of its own log.
pub const INIT_LOG_LINES: usize = 5000;
/// Lines kept of the kernel log.
pub const KERNEL_LOG_LINES: usize = 2000;
/// How often the watchdog is pinged.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_secs(5);
/// How often the web listeners follow address changes without a SIGHUP.
pub const LISTENER_INTERVAL: Duration = Duration::from_secs(30);
/// A safety net for a lost SIGCHLD.
pub const REAP_INTERVAL: Duration = Duration::from_secs(10);
const CONSOLE_RETRY: Duration = Duration::from_millis(50);

const TIMER_WATCHDOG: u64 = 1;
const TIMER_LISTENERS: u64 = 2;
const TIMER_REAP: u64 = 3;
const TIMER_CONSOLE: u64 = 4;

const KMSG_TOKEN: Token = Token(0);
const CONSOLE_IN_TOKEN: Token = Token(1);
const FIRST_PIPE_TOKEN: usize = 16;

/// How init is configured (see `init --help`).
#[derive(Debug, Clone)]
pub struct Config {
    /// PID 1 or supervise-only.
    pub mode: Mode,
    /// The manifest.
    pub manifest: PathBuf,
    /// `/perm`.
    pub perm: PathBuf,
    /// `/run`.
    pub run: PathBuf,
    /// Where service lines are mirrored (the serial console).
    pub console: Option<PathBuf>,
    /// The hardware watchdog device.
    pub watchdog: Option<PathBuf>,
    /// The web interface's port.
    pub http_port: u16,
    /// Listen on these instead of the private addresses.
    pub http_addrs: Option<Vec<IpAddr>>,
    /// The LAN interface (its addresses are private).
    pub lan: String,
    /// The password the image carries, copied to `/perm/router/password` when that is absent.
    pub image_password: PathBuf,
    /// `/etc/router/version`.
    pub version_file: PathBuf,
    /// Supervision numbers.
    pub policy: Policy,
    /// Cap of each persisted log file.
    pub log_file_bytes: u64,
    /// Read the kernel log (`/dev/kmsg`) into the `kernel` ring.
    pub kmsg: bool,
    /// The console input for the rescue prompt.
    pub rescue: Option<crate::rescue::RescueConfig>,
}

/// What the boot sequence found (PID 1) or what stands in for it.
#[derive(Debug, Clone)]
pub struct BootFacts {
    /// Host name.
    pub hostname: String,
    /// Kernel command line facts.
    pub boot: crate::status::BootInfo,
    /// `/perm`.
    pub perm: crate::status::PermInfo,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Reboot.
    Reboot,
    /// Power off.
    Poweroff,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::Poweroff => "poweroff",
        }
    }
}

/// What [`run`] hands back for the last steps.
#[derive(Debug)]
pub struct Finished {
    /// Reboot or power off.
    pub outcome: Outcome,
    /// The watchdog, still armed: closed with the magic character just before the end.
    pub watchdog: Option<Watchdog>,
}

/// The hardware watchdog (`/dev/watchdog`): opening it arms it, every write
/// pings it, and writing `V` before closing disarms it ("magic close").
#[derive(Debug)]
pub struct Watchdog(std::fs::File);

impl Watchdog {
    /// Opens and so arms the watchdog.
    pub fn open(path: &Path) -> io::Result<Self> {
        std::fs::OpenOptions::new().write(true).open(path).map(Self)
    }

    /// Pings it.
    pub fn ping(&mut self) -> io::Result<()> {
        use std::io::Write;
        self.0.write_all(b"\0")
    }

    /// Disarms and closes it.
    pub fn magic_close(mut self) -> io::Result<()> {
        use std::io::Write;
        self.0.write_all(b"V")
    }
}

struct Pipe {
    ring: String,
    stream: Stream,
    fd: OwnedFd,
    splitter: LineSplitter,
}

struct Console {
    fd: OwnedFd,
    queue: ConsoleQueue,
}

/// Opens the console for writing without blocking and without becoming our
/// controlling terminal.
pub fn open_console(path: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode as FsMode, OFlags};
    let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::APPEND | OFlags::CREATE;
    Ok(rustix::fs::open(path, flags, FsMode::from_raw_mode(0o640))?)
}

struct Init {
    cfg: Config,
    specs: Vec<ServiceSpec>,
    autostart: Vec<bool>,
    sup: Supervisor,
    shared: Arc<Shared>,
    logs: Arc<LogStore>,
    control: Control,
    files: HashMap<String, LogFile>,
    console: Option<Console>,
    console_timer: bool,
    pipes: HashMap<Token, Pipe>,
    busy: BTreeSet<Token>,
    next_token: usize,
    kmsg: Option<OwnedFd>,
    spawn_cfg: spawn::SpawnConfig,
    auth: Arc<RwLock<Option<BasicAuth>>>,
    password_file: PathBuf,
    pool: Option<ListenerPool>,
    listener_errors: BTreeMap<String, String>,
    watchdog: Option<Watchdog>,
    shutdown: Option<Outcome>,
    manifest_error: Option<String>,
    dirty: bool,
    last_now: Instant,
    rescue: Option<crate::rescue::RescueShell>,
}

impl Init {
    fn wall(&self) -> Timestamp {
        Timestamp::from_system(runtime::clock::wall_now())
    }

    /// Lines into a ring, its file and (unless it is the kernel's) the console.
    fn emit_lines(&mut self, ring: &str, stream: Stream, texts: Vec<String>) {
        self.emit(ring, stream, texts, stream != Stream::Kernel);
    }

    fn emit(&mut self, ring: &str, stream: Stream, texts: Vec<String>, mirror: bool) {
        if texts.is_empty() {
            return;
        }
        let lines = self.logs.push(ring, self.wall(), stream, texts);
        if let Some(f) = self.files.get_mut(ring) {
            for l in &lines {
                if !f.write(l) {
                    self.shared.counters.log_write_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !mirror {
            return;
        }
        if let Some(c) = self.console.as_mut() {
            for l in &lines {
                c.queue.push(ring, &l.text);
            }
            self.shared.counters.console_dropped.store(c.queue.dropped(), Ordering::Relaxed);
        }
    }

    /// One line of init's own: into init's log (and the console), and when it
    /// is about a service, into that service's log too.
    fn say(&mut self, service: Option<usize>, text: String) {
        let line = match service.and_then(|i| self.specs.get(i)).map(|s| s.name.clone()) {
            Some(name) => {
                // The service's own log gets it too; the console once, from init's.
                self.emit(&name, Stream::Init, vec![text.clone()], false);
                format!("{name}: {text}")
            }
            None => text,
        };
        if self.cfg.mode == Mode::SuperviseOnly {
            eprintln!("init: {line}");
        }
        self.emit_lines("init", Stream::Init, vec![line]);
    }

    fn name(&self, i: usize) -> String {
        self.specs.get(i).map(|s| s.name.clone()).unwrap_or_default()
    }

    fn apply(&mut self, registry: &Registry, actions: Vec<Action>, now: Instant) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            self.dirty = true;
            match action {
                Action::Spawn(i) => queue.extend(self.start(registry, i, now)),
                Action::Signal { service, pgid, signal } => {
                    let sig = match signal {
                        Kill::Term => rustix::process::Signal::TERM,
                        Kill::Kill => rustix::process::Signal::KILL,
                    };
                    let Some(pid) = rustix::process::Pid::from_raw(pgid) else { continue };
                    match rustix::process::kill_process_group(pid, sig) {
                        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                        Err(e) => self.say(Some(service), format!("cannot signal process group {pgid}: {e}")),
                    }
                    if signal == Kill::Kill {
                        self.say(
                            Some(service),
                            format!("did not stop within {:?}: SIGKILL", self.sup.policy().stop_timeout),
                        );
                    }
                }
                Action::KillLeftovers { pgid } => {
                    if let Some(pid) = rustix::process::Pid::from_raw(pgid)
                        && rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_ok()
                        && let Some(i) = self.sup.service_of(pgid)
                    {
                        self.say(Some(i), "killed processes left in its group".into());
                    }
                }
                Action::Notice(n) => self.notice(n),
            }
        }
    }

    fn start(&mut self, registry: &Registry, i: usize, now: Instant) -> Vec<Action> {
        let spec = self.specs[i].clone();
        let started =
            spawn::prepare_home(&spec, &self.spawn_cfg).and_then(|home| spawn::spawn(&spec, &home, &self.spawn_cfg));
        match started {
            Ok(child) => {
                for (fd, stream) in [(child.stdout, Stream::Stdout), (child.stderr, Stream::Stderr)] {
                    self.add_pipe(registry, &spec.name, stream, fd);
                }
                let pid_file = runtime::notify::pid_path(&self.cfg.run, &spec.name);
                if let Err(e) = runtime::statefile::write_atomic(&pid_file, format!("{}\n", child.pid).as_bytes()) {
                    self.say(Some(i), format!("cannot write its pid file: {e}"));
                }
                self.sup.spawned(i, child.pid, now)
            }
            Err(e) => self.sup.spawn_failed(i, format!("{}: {e}", spec.path.display()), now),
        }
    }

    fn add_pipe(&mut self, registry: &Registry, ring: &str, stream: Stream, fd: OwnedFd) {
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE) {
            self.say(None, format!("cannot watch {ring}'s {}: {e}", stream.name()));
            return;
        }
        self.pipes.insert(token, Pipe { ring: ring.to_owned(), stream, fd, splitter: LineSplitter::default() });
        // Output may already be waiting; edge-triggered readiness would not say so.
        self.busy.insert(token);
    }

    fn notice(&mut self, n: Notice) {
        match n {
            Notice::Started { service, pid, attempt, reason } => {
                let name = self.name(service);
                let why = match reason {
                    StartReason::Boot => "boot".to_owned(),
                    StartReason::Manual => "asked for".to_owned(),
                    StartReason::Failure { delay } => format!("after a failure, waited {delay:?}"),
                };
                self.say(Some(service), format!("started, pid {pid}, attempt {attempt} ({why})"));
                self.control.emit("init.service.started", json!({"service": name, "pid": pid, "attempt": attempt}));
                if attempt > 1 {
                    let (reason, delay) = match reason {
                        StartReason::Failure { delay } => ("failure", delay.as_secs_f64()),
                        StartReason::Manual => ("manual", 0.0),
                        StartReason::Boot => ("boot", 0.0),
                    };
                    self.control.emit(
                        "init.service.restarted",
                        json!({"service": name, "pid": pid, "attempt": attempt, "reason": reason, "delay_seconds": delay}),
                    );
                }
            }
            Notice::Exited { service, pid, exit, ran, next } => {
                let name = self.name(service);
                let pid_file = runtime::notify::pid_path(&self.cfg.run, &name);
                if std::fs::read_to_string(&pid_file).is_ok_and(|t| t.trim() == pid.to_string()) {
                    let _ = std::fs::remove_file(&pid_file);
                }
                let mut attrs = json!({"service": name, "pid": pid, "ran_seconds": ran.as_secs_f64()});
                match exit {
                    Exit::Code(c) => attrs["code"] = json!(c),
                    Exit::Signal(s) => attrs["signal"] = json!(s),
                }
                let then = self.describe_next(next, &mut attrs);
                self.say(Some(service), format!("exited ({exit}) after {:.1} s; {then}", ran.as_secs_f64()));
                self.control.emit("init.service.exited", attrs);
            }
            Notice::SpawnFailed { service, error, next } => {
                let name = self.name(service);
                let mut attrs = json!({"service": name, "error": error});
                let then = self.describe_next(next, &mut attrs);
                self.say(Some(service), format!("cannot start: {error}; {then}"));
                self.control.emit("init.service.exited", attrs);
            }
            Notice::CrashLoop { service, failures, window } => {
                let name = self.name(service);
                self.say(
                    Some(service),
                    format!(
                        "CRASH LOOP: {failures} failures within {} minutes; still retrying with backoff",
                        window.as_secs() / 60
                    ),
                );
                self.control.emit(
                    "init.service.crashloop",
                    json!({"service": name, "failures": failures, "window_seconds": window.as_secs()}),
                );
            }
            Notice::Stable { service } => {
                self.say(Some(service), "running stably: backoff and crash-loop state reset".into());
            }
            Notice::Unkillable { service, pid } => {
                self.say(
                    Some(service),
                    format!("pid {pid} survived SIGKILL (stuck in the kernel?); no longer waiting for it"),
                );
            }
        }
    }

    fn describe_next(&self, next: Next, attrs: &mut serde_json::Value) -> String {
        match next {
            Next::RestartIn(d) => {
                attrs["next"] = json!("restart");
                attrs["restart_in_seconds"] = json!(d.as_secs_f64());
                format!("restarting in {d:?}")
            }
            Next::RestartNow => {
                attrs["next"] = json!("restart");
                attrs["restart_in_seconds"] = json!(0.0);
                "restarting now".into()
            }
            Next::Stop(why) => {
                attrs["next"] = json!("stop");
                format!("not restarting ({why:?})")
            }
        }
    }

    fn reap(&mut self, registry: &Registry, now: Instant) {
        loop {
            match rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    let pid = pid.as_raw_nonzero().get();
                    let exit = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(sig)) => Exit::Signal(sig),
                        (None, None) => continue,
                    };
                    if let Some(actions) = self.sup.exited(pid, exit, now) {
                        self.apply(registry, actions, now);
                    } else if self.rescue.as_mut().is_some_and(|r| r.exited(pid)) {
                        self.say(None, "rescue shell ended".into());
                    } else {
                        self.shared.counters.orphans_reaped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(None) | Err(rustix::io::Errno::CHILD) => return,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    self.say(None, format!("waitpid: {e}"));
                    return;
                }
            }
        }
    }

    /// Reads a pipe up to the budget; returns whether more may be waiting.
    fn read_pipe(&mut self, registry: &Registry, token: Token) -> bool {
        let Some(pipe) = self.pipes.get_mut(&token) else { return false };
        let mut buf = [0u8; 16 * 1024];
        let mut lines = Vec::new();
        let mut total = 0;
        let mut eof = false;
        let mut more = false;
        loop {
            match rustix::io::read(&pipe.fd, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    pipe.splitter.push(&buf[..n], &mut lines);
                    total += n;
                    if total >= PIPE_BUDGET {
                        more = true;
                        break;
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let (ring, stream) = (pipe.ring.clone(), pipe.stream);
        if eof {
            pipe.splitter.finish(&mut lines);
            if let Some(pipe) = self.pipes.remove(&token) {
                let _ = registry.deregister(&mut SourceFd(&pipe.fd.as_raw_fd()));
            }
        }
        self.emit_lines(&ring, stream, lines);
        more && !eof
    }

    fn read_kmsg(&mut self) -> bool {
        let Some(fd) = self.kmsg.as_ref() else { return false };
        let mut lines = Vec::new();
        let mut buf = [0u8; 8192];
        let mut more = false;
        loop {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) | Err(rustix::io::Errno::AGAIN) => break,
                Ok(n) => {
                    if let Some(line) = crate::kmsg::format_record(&buf[..n]) {
                        lines.push(line);
                    }
                    if lines.len() >= 256 {
                        more = true;
                        break;
                    }
                }
                // Records were overwritten before we read them: carry on.
                Err(rustix::io::Errno::PIPE | rustix::io::Errno::INTR) => {}
                Err(_) => {
                    self.kmsg = None;
                    break;
                }
            }
        }
        self.emit_lines("kernel", Stream::Kernel, lines);
        more
    }

    fn drain_busy(&mut self, registry: &Registry) {
        let busy: Vec<Token> = std::mem::take(&mut self.busy).into_iter().collect();
        for token in busy {
            let more = match token {
                KMSG_TOKEN => self.read_kmsg(),
                t => self.read_pipe(registry, t),
            };
            if more {
                self.busy.insert(token);
            }
        }
    }

    fn flush_console(&mut self, cx: &mut Context<'_>) {
        let Some(c) = self.console.as_mut() else { return };
        while !c.queue.is_empty() {
            match rustix::io::write(&c.fd, c.queue.pending()) {
                Ok(n) => c.queue.consumed(n),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // Full (EAGAIN) or gone: try again shortly; the queue stays bounded.
                    if !self.console_timer {
                        self.console_timer = true;
                        cx.add_timer(cx.now() + CONSOLE_RETRY, TIMER_CONSOLE);
                    }
                    break;
                }
            }
        }
    }

    fn publish(&mut self) {
        self.dirty = false;
        let services: Vec<ServiceView> = self
            .specs
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| Some(ServiceView { spec: spec.clone(), record: self.sup.record(i)?.clone() }))
            .collect();
        let looping: Vec<&str> =
            services.iter().filter(|s| s.record.crash_loop()).map(|s| s.spec.name.as_str()).collect();
        if looping.is_empty() {
            self.control.set_condition("ServicesHealthy", Some(true), "NoCrashLoop", "no service is in a crash loop");
        } else {
            self.control.set_condition(
                "ServicesHealthy",
                Some(false),
                "CrashLoop",
                &format!("in a crash loop: {}", looping.join(", ")),
            );
        }
        let phase = if self.manifest_error.is_some() {
            Phase::Error
        } else if !looping.is_empty() {
            Phase::Unhealthy
        } else {
            Phase::Up
        };
        self.control.set_phase(phase);
        let listeners =
            self.pool.as_ref().map(|p| p.local_addrs().iter().map(ToString::to_string).collect()).unwrap_or_default();
        self.shared.publish(View {
            services,
            shutting_down: self.shutdown.map(Outcome::name),
            manifest_error: self.manifest_error.clone(),
            listeners,
        });
    }

    /// Bookkeeping after every dispatch.
    fn after(&mut self, cx: &mut Context<'_>) {
        self.last_now = cx.now();
        if self.dirty {
            self.publish();
        }
        for f in self.files.values_mut() {
            f.flush();
        }
        self.flush_console(cx);
        if self.shutdown.is_some() && self.sup.all_stopped() {
            cx.stop(0);
        }
    }

    fn begin_shutdown(&mut self, registry: &Registry, outcome: Outcome, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(outcome);
        self.dirty = true;
        self.say(None, format!("shutting down for {}: stopping every service", outcome.name()));
        self.control.emit("init.shutdown", json!({"kind": outcome.name()}));
        let actions = self.sup.shutdown(now);
        self.apply(registry, actions, now);
    }

    fn refresh(&mut self) {
        self.load_password();
        self.refresh_listeners();
    }

    fn load_password(&mut self) {
        let auth = match BasicAuth::from_file(&self.password_file) {
            Ok(a) => Some(a),
            Err(e) => {
                self.say(None, format!("no web password ({e}): the web interface stays closed"));
                None
            }
        };
        *self.auth.write().unwrap_or_else(std::sync::PoisonError::into_inner) = auth;
    }

    fn refresh_listeners(&mut self) {
        let Some(pool) = self.pool.as_mut() else { return };
        let open = self.auth.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_some();
        let addrs: Vec<(IpAddr, u32)> = if !open {
            Vec::new()
        } else if let Some(list) = &self.cfg.http_addrs {
            list.iter().map(|ip| (*ip, 0)).collect()
        } else {
            runtime::netif::private_addrs(&self.cfg.lan).unwrap_or_default()
        };
        let before = pool.local_addrs();
        let errors: BTreeMap<String, String> =
            pool.update(&addrs).into_iter().map(|(a, e)| (a.to_string(), e.to_string())).collect();
        let after = pool.local_addrs();
        if before != after {
            let list: Vec<String> = after.iter().map(ToString::to_string).collect();
            self.say(
                None,
                format!("web interface on {}", if list.is_empty() { "nothing".into() } else { list.join(", ") }),
            );
            self.dirty = true;
        }
        if errors != self.listener_errors {
            for (addr, e) in &errors {
                self.say(None, format!("web interface: cannot listen on {addr}: {e} (retrying)"));
            }
            self.listener_errors = errors;
        }
    }

    fn handle_request(&mut self, registry: &Registry, request: Request, now: Instant) {
        let index = |name: &str| self.specs.iter().position(|s| s.name == name);
        let result = match &request {
            Request::Stop(n) => index(n).map(|i| (i, self.sup.stop(i, now))),
            Request::Restart(n) => index(n).map(|i| (i, self.sup.restart(i, now))),
            Request::Start(n) => index(n).map(|i| (i, self.sup.start_one(i, now))),
            Request::Reboot => return self.begin_shutdown(registry, Outcome::Reboot, now),
            Request::Poweroff => return self.begin_shutdown(registry, Outcome::Poweroff, now),
            Request::Refresh => return self.refresh(),
        };
        match result {
            Some((i, Ok(actions))) => {
                let what = match request {
                    Request::Stop(_) => "stop",
                    Request::Start(_) => "start",
                    _ => "restart",
                };
                self.say(Some(i), format!("{what} asked for"));
                self.dirty = true;
                self.apply(registry, actions, now);
            }
            Some((i, Err(e))) => self.say(Some(i), format!("request refused: {e:?}")),
            None => {}
        }
    }
}

impl Handler for Init {
    fn poll_at(&self) -> Option<Instant> {
        let busy = (!self.busy.is_empty()).then_some(self.last_now);
        [self.sup.poll_at(), busy].into_iter().flatten().min()
    }

    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        self.drain_busy(cx.registry());
        let now = cx.now();
        let actions = self.sup.on_deadline(now);
        self.apply(cx.registry(), actions, now);
        self.after(cx);
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, token: Token, _ready: Ready) {
        match token {
            KMSG_TOKEN => {
                if self.read_kmsg() {
                    self.busy.insert(token);
                }
            }
            CONSOLE_IN_TOKEN => self.console_input(cx),
            t => {
                if self.read_pipe(cx.registry(), t) {
                    self.busy.insert(t);
                }
            }
        }
        self.after(cx);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
        let now = cx.now();
        match tag {
            TIMER_WATCHDOG => {
                if let Some(w) = self.watchdog.as_mut()
                    && let Err(e) = w.ping()
                {
                    self.say(None, format!("watchdog ping failed: {e}"));
                }
                cx.add_timer(now + WATCHDOG_INTERVAL, TIMER_WATCHDOG);
            }
            TIMER_LISTENERS => {
                self.refresh_listeners();
                cx.add_timer(now + LISTENER_INTERVAL, TIMER_LISTENERS);
            }
            TIMER_REAP => {
                self.reap(cx.registry(), now);
                cx.add_timer(now + REAP_INTERVAL, TIMER_REAP);
            }
            TIMER_CONSOLE => self.console_timer = false,
            _ => {}
        }
        self.after(cx);
    }

    fn on_wake(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        for r in self.shared.take_requests() {
            self.handle_request(cx.registry(), r, now);
        }
        self.after(cx);
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        self.refresh();
        self.after(cx);
    }

    fn on_release(&mut self, cx: &mut Context<'_>) {
        self.begin_shutdown(cx.registry(), Outcome::Poweroff, cx.now());
        self.after(cx);
    }

    fn on_stop(&mut self, cx: &mut Context<'_>) {
        self.begin_shutdown(cx.registry(), Outcome::Reboot, cx.now());
        self.after(cx);
    }

    fn on_other_signal(&mut self, cx: &mut Context<'_>, signal: Signal, _info: SignalInfo) {
        match signal {
            Signal::Chld => self.reap(cx.registry(), cx.now()),
            Signal::Hup => self.refresh(),
            _ => {}
        }
        self.after(cx);
    }
}

impl Init {
    fn console_input(&mut self, cx: &mut Context<'_>) {
        let Some(rescue) = self.rescue.as_mut() else { return };
        let outcome = rescue.on_input(cx.now());
        for text in outcome.say {
            self.say(None, text);
        }
        if let Some(err) = outcome.spawn_error {
            self.say(None, format!("rescue shell: {err}"));
        }
    }
}

/// Makes `dir` with `mode`, owned by root and `gid` (errors are reported, not fatal).
fn make_dir(dir: &Path, mode: u32, gid: Option<u32>) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some(g) = gid {
        std::os::unix::fs::chown(dir, Some(0), Some(g))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Copies the image's password to `<perm>/router/password` when that is absent,
/// readable by root and the services' shared group (captured and backupd check it).
pub fn ensure_password(
    perm: &Path,
    image_password: &Path,
    gid: u32,
    root: bool,
) -> Result<(PathBuf, Option<String>), String> {
    let dir = perm.join("router");
    let file = dir.join("password");
    make_dir(&dir, 0o750, root.then_some(gid)).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut said = None;
    if !file.exists() {
        let text = std::fs::read(image_password).map_err(|e| format!("{}: {e}", image_password.display()))?;
        runtime::statefile::prepare(&file, &text, 0o640)
            .and_then(runtime::statefile::PreparedWrite::commit)
            .map_err(|e| e.to_string())?;
        said = Some(format!("copied the image's password from {} to {}", image_password.display(), file.display()));
    }
    if root {
        std::os::unix::fs::chown(&file, Some(0), Some(gid)).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((file, said))
}

/// Runs init until a shutdown has stopped every service.
pub fn run(cfg: Config, facts: BootFacts) -> Result<Finished, Box<dyn std::error::Error>> {
    // Before any thread exists, so every thread inherits the blocked signals.
    let mut ev =
        EventLoop::with_signals(&[Signal::Chld, Signal::Term, Signal::Int, Signal::Usr1, Signal::Usr2, Signal::Hup])?;
    let now = runtime::clock::now();
    let root = rustix::process::geteuid().is_root();
    if rustix::process::getpid().as_raw_nonzero().get() != 1 {
        // Orphans of our services come to us, not to the real init.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    }
    let mut notes: Vec<String> = Vec::new();
    let (manifest, manifest_error) = match Manifest::load(&cfg.manifest) {
        Ok(m) => (m, None),
        Err(e) => {
            notes.push(format!("MANIFEST NOT USED, no service runs: {e}"));
            (Manifest { services: Vec::new(), shared_gid: manifest::DEFAULT_SHARED_GID }, Some(e.to_string()))
        }
    };
    let shared_gid = manifest.shared_gid;
    for (dir, mode, gid) in
        [(cfg.perm.join("init/logs"), 0o750, None), (cfg.run.join("router"), 0o1770, Some(shared_gid))]
    {
        if let Err(e) = make_dir(&dir, mode, if root { gid } else { None }) {
            notes.push(format!("{}: {e}", dir.display()));
        }
    }
    let password_file = match ensure_password(&cfg.perm, &cfg.image_password, shared_gid, root) {
        Ok((file, said)) => {
            notes.extend(said);
            file
        }
        Err(e) => {
            notes.push(format!("web password: {e}"));
            cfg.perm.join("router/password")
        }
    };
    let version = std::fs::read_to_string(&cfg.version_file)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_owned()))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown version".into());

    let logs = Arc::new(LogStore::new());
    logs.add("init", INIT_LOG_LINES);
    logs.add("kernel", KERNEL_LOG_LINES);
    let mut files = HashMap::new();
    let log_dir = cfg.perm.join("init/logs");
    for (name, lines) in [("init", INIT_LOG_LINES), ("kernel", KERNEL_LOG_LINES)]
        .into_iter()
        .chain(manifest.services.iter().map(|s| (s.name.as_str(), s.log_lines)))
    {
        logs.add(name, lines);
        files.insert(name.to_owned(), LogFile::new(log_dir.join(format!("{name}.log")), cfg.log_file_bytes));
    }

    let shared = Arc::new(Shared::new(
        SharedInit {
            hostname: facts.hostname.clone(),
            version: version.clone(),
            mode: cfg.mode,
            boot: facts.boot.clone(),
            perm: facts.perm.clone(),
            run_dir: cfg.run.clone(),
        },
        Arc::clone(&logs),
        ev.waker(),
        now,
    ));
    let control = Control::new("init", Some(cfg.perm.join("init/events.jsonl")), ev.waker());
    control.set_condition(
        "ManifestValid",
        Some(manifest_error.is_none()),
        if manifest_error.is_none() { "Parsed" } else { "Invalid" },
        manifest_error.as_deref().unwrap_or("services.json parsed and validated"),
    );
    let persistent = facts.perm.state != crate::mounts::PermState::Temporary;
    control.set_condition(
        "PermPersistent",
        Some(persistent),
        if persistent { "Mounted" } else { "Temporary" },
        &facts.perm.detail,
    );
    let socket = runtime::control::socket_path(&cfg.run, "init");
    control.serve_with(&socket, Some(crate::control_api::extension(control.clone(), Arc::clone(&shared))))?;
    ev.attach_control(control.clone());

    let auth = Arc::new(RwLock::new(None));
    let site = web::Site::new(Arc::clone(&shared), Arc::clone(&auth), web::new_token());
    let handler: runtime::http::RequestHandler = Arc::new(move |request| site.handle(request));
    let pool = ListenerPool::new(cfg.http_port, handler);

    let console = match &cfg.console {
        Some(path) => match open_console(path) {
            Ok(fd) => Some(Console { fd, queue: ConsoleQueue::new(crate::console::DEFAULT_LIMIT) }),
            Err(e) => {
                notes.push(format!("console {}: {e}", path.display()));
                None
            }
        },
        None => None,
    };
    let watchdog = match &cfg.watchdog {
        Some(path) if path.exists() => match Watchdog::open(path) {
            Ok(w) => {
                notes.push(format!("watchdog {} armed, pinged every {:?}", path.display(), WATCHDOG_INTERVAL));
                Some(w)
            }
            Err(e) => {
                notes.push(format!("watchdog {}: {e}", path.display()));
                None
            }
        },
        _ => None,
    };
    let kmsg = if cfg.kmsg {
        use rustix::fs::{Mode as FsMode, OFlags};
        match rustix::fs::open("/dev/kmsg", OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, FsMode::empty()) {
            Ok(fd) => {
                ev.registry().register(&mut SourceFd(&fd.as_raw_fd()), KMSG_TOKEN, Interest::READABLE)?;
                Some(fd)
            }
            Err(e) => {
                notes.push(format!("/dev/kmsg: {e}"));
                None
            }
        }
    } else {
        None
    };
    let rescue = match &cfg.rescue {
        Some(rc) => match crate::rescue::RescueShell::new(rc.clone(), password_file.clone()) {
            Ok(r) => {
                ev.registry().register(&mut SourceFd(&r.input().as_raw_fd()), CONSOLE_IN_TOKEN, Interest::READABLE)?;
                Some(r)
            }
            Err(e) => {
                notes.push(format!("console input: {e}"));
                None
            }
        },
        None => None,
    };

    let autostart: Vec<bool> = manifest.services.iter().map(|s| s.autostart).collect();
    let mut init = Init {
        spawn_cfg: spawn::SpawnConfig {
            perm: cfg.perm.clone(),
            run: cfg.run.clone(),
            drop_privileges: root,
            last_cap: spawn::last_cap(),
        },
        sup: Supervisor::new(cfg.policy, &autostart, now),
        specs: manifest.services,
        autostart,
        shared,
        logs,
        control,
        files,
        console,
        console_timer: false,
        pipes: HashMap::new(),
        busy: BTreeSet::new(),
        next_token: FIRST_PIPE_TOKEN,
        kmsg,
        auth,
        password_file,
        pool: Some(pool),
        listener_errors: BTreeMap::new(),
        watchdog,
        shutdown: None,
        manifest_error,
        dirty: true,
        last_now: now,
        rescue,
        cfg,
    };
    init.say(
        None,
        format!(
            "router7 init, {version}, {} mode, {} service(s)",
            if init.cfg.mode == Mode::Pid1 { "PID 1" } else { "supervise-only" },
            init.specs.len()
        ),
    );
    for note in notes {
        init.say(None, note);
    }
    if !root {
        init.say(None, "not root: services run as init's own user, without capability changes".into());
    }
    if init.kmsg.is_some() {
        init.busy.insert(KMSG_TOKEN);
    }
    init.refresh();
    let actions = init.sup.start_all(&init.autostart.clone(), now);
    init.apply(ev.registry(), actions, now);
    init.publish();
    ev.add_timer(now + WATCHDOG_INTERVAL, TIMER_WATCHDOG);
    ev.add_timer(now + LISTENER_INTERVAL, TIMER_LISTENERS);
    ev.add_timer(now + REAP_INTERVAL, TIMER_REAP);
    if let Some(w) = init.watchdog.as_mut() {
        let _ = w.ping();
    }
    ev.run(&mut init)?;
    Ok(init.finish(ev.registry()))
}

impl Init {
    /// After the loop: the last output, the pid files, the listeners.
    fn finish(mut self, registry: &Registry) -> Finished {
        let outcome = self.shutdown.unwrap_or(Outcome::Reboot);
        let tokens: Vec<Token> = self.pipes.keys().copied().collect();
        for t in tokens {
            // Services are gone; what is left in their pipes is read once more.
            self.read_pipe(registry, t);
        }
        self.pool = None;
        self.publish();
        self.say(None, format!("every service stopped; {}", outcome.name()));
        for f in self.files.values_mut() {
            f.flush();
        }
        // A blocking last write: these lines matter and nothing else is left to do.
        if let Some(c) = self.console.as_mut() {
            let deadline = runtime::clock::now() + Duration::from_secs(2);
            while !c.queue.is_empty() && runtime::clock::now() < deadline {
                match rustix::io::write(&c.fd, c.queue.pending()) {
                    Ok(n) => c.queue.consumed(n),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        Finished { outcome, watchdog: self.watchdog.take() }
    }
}
