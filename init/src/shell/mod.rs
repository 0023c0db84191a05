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
use runtime::http::{BasicAuth, ListenerSet};
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

mod output;
mod setup;
mod supervision;

pub use setup::{ensure_password, run};

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
    /// Where updates write when not PID 1 (tests).
    pub update: crate::update::Options,
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
    /// Reboot into the kernel an update's activation loaded (kexec).
    Kexec,
}

impl Outcome {
    /// `reboot`, `poweroff` or `kexec`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::Poweroff => "poweroff",
            Self::Kexec => "kexec",
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
    pool: Option<ListenerSet>,
    listener_errors: BTreeMap<String, String>,
    watchdog: Option<Watchdog>,
    watchdog_withheld: bool,
    shutdown: Option<Outcome>,
    manifest_error: Option<String>,
    dirty: bool,
    last_now: Instant,
    rescue: Option<crate::rescue::RescueShell>,
}

impl Init {
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
        let mut c = self.control.update();
        if looping.is_empty() {
            c.set_condition("ServicesHealthy", Some(true), "NoCrashLoop", "no service is in a crash loop");
        } else {
            c.set_condition(
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
        c.set_phase(phase);
        drop(c);
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
                // A trial long past its deadline without a decision carried out:
                // let the watchdog reset into the loader's default (the old slot).
                let may = self.shared.update.get().is_none_or(|u| u.watchdog_may_ping(now));
                if !may && !self.watchdog_withheld {
                    self.watchdog_withheld = true;
                    self.say(None, "update trial overdue: no more watchdog pings".into());
                }
                if may
                    && let Some(w) = self.watchdog.as_mut()
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
