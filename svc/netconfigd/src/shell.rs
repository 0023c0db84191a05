//! The service around the core: reads the files, applies on start, on SIGUSR1
//! and on `POST /v1/commands/reload`, publishes phase and conditions, tells the
//! other services, serves `/metrics` on the private addresses.
//!
//! An apply runs synchronously on the loop's thread (a few dozen netlink
//! requests, each bounded by [`netconfigd::rtnl::REPLY_TIMEOUT`]); the control
//! API and the metrics listeners run on their own threads meanwhile. A failed
//! kernel step is retried with backoff (a NIC whose driver is still loading,
//! an interface created later), the configuration being unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netconfigd::config::{self, ConfigError, FirewallConfig, NetConfig, PortForward};
use netconfigd::firewall::TABLE;
use netconfigd::nft::Family;
use netconfigd::plan::{self, Inputs};
use netconfigd::reconcile::{self, Step};
use netconfigd::rtnl::{CounterReader, Netlink};
use runtime::cli::Args;
use runtime::control::{Control, Phase};
use runtime::http::{ListenerSet, reply, reply_text};
use runtime::httpd;
use runtime::metrics::{Counter, Encoder, Histogram, Metrics};
use runtime::perm::{Dhcp4Lease, Dhcp6Lease};
use runtime::statefile::{self, StateError};
use runtime::{Context, Handler, Signal, log_error, log_info, log_warn};
use serde_json::json;

/// Services told (SIGUSR1) after each apply.
pub const NOTIFY: [&str; 6] = ["dhcp4d", "dnsd", "radvd", "diagd", "captured", "backupd"];

/// Timer tag of an apply (the first one, and retries).
pub const APPLY_TAG: u64 = 1;
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How often a missing interfaces.json is looked for again (besides SIGUSR1 and reload).
const WAIT_POLL: Duration = Duration::from_secs(5);

/// Counters of the shell, shared with the metrics threads.
#[derive(Debug)]
pub struct ShellMetrics {
    applies: Counter,
    apply_errors: Counter,
    config_errors: Counter,
    changes: Counter,
    duration: Histogram,
}

impl Default for ShellMetrics {
    fn default() -> Self {
        Self {
            applies: Counter::default(),
            apply_errors: Counter::default(),
            config_errors: Counter::default(),
            changes: Counter::default(),
            duration: Histogram::exponential(0.001, 4.0, 8),
        }
    }
}

/// What `/metrics` renders: the shell's counters and, read at scrape time, the
/// nftables counters (monotonic: netconfigd carries them over every rebuild and
/// never resets them, unlike router7).
struct Exposition<'a> {
    shell: &'a ShellMetrics,
    nft: Option<std::collections::BTreeMap<(Family, String), netconfigd::nft::CounterValue>>,
}

impl Metrics for Exposition<'_> {
    fn encode(&self, enc: &mut Encoder) {
        let s = self.shell;
        enc.counter("netconfigd_applies_total", "Applies run (start, SIGUSR1, reload, retries).", &[], s.applies.get());
        enc.counter(
            "netconfigd_apply_errors_total",
            "Applies with at least one failed step.",
            &[],
            s.apply_errors.get(),
        );
        enc.counter(
            "netconfigd_config_errors_total",
            "Applies refused because an input was invalid.",
            &[],
            s.config_errors.get(),
        );
        enc.counter("netconfigd_changes_total", "Kernel changes made by applies.", &[], s.changes.get());
        enc.histogram("netconfigd_apply_duration_seconds", "Time an apply took.", &[], &s.duration);
        let Some(nft) = &self.nft else { return };
        for ((family, name), v) in nft {
            let fam = family.metric_label();
            let (metric, help, extra): (&str, &str, Option<(&str, &str)>) = match name.as_str() {
                "fwded" => ("nftables_filter_forward", "forwarded", None),
                "inputc" => ("nftables_filter_input", "received by the router", None),
                "outputc" => ("nftables_filter_output", "sent by the router", None),
                "input_dropped" => ("nftables_filter_dropped", "dropped by the firewall", Some(("chain", "input"))),
                "forward_dropped" => ("nftables_filter_dropped", "dropped by the firewall", Some(("chain", "forward"))),
                "invalid_dropped" => ("nftables_filter_dropped", "dropped by the firewall", Some(("chain", "invalid"))),
                _ => continue,
            };
            let mut labels = vec![("family", fam)];
            labels.extend(extra);
            enc.counter(&format!("{metric}_packets_total"), &format!("Packets {help}."), &labels, v.packets);
            enc.counter(&format!("{metric}_bytes_total"), &format!("Bytes {help}."), &labels, v.bytes);
        }
    }
}

fn metrics_handler(shell: Arc<ShellMetrics>) -> httpd::Handler {
    // Reading the counters is one netlink dump from the kernel: short enough
    // for the server's thread.
    Arc::new(move |request: &httpd::Request| {
        if request.path() != "/metrics" {
            return reply_text(404, "not found; try /metrics").into();
        }
        let nft = match CounterReader::open().and_then(|mut r| r.read(TABLE)) {
            Ok(c) => Some(c),
            Err(e) => {
                log_warn!("metrics: cannot read the nftables counters: {e}");
                None
            }
        };
        let text = runtime::metrics::render(&Exposition { shell: &shell, nft });
        reply(200, runtime::metrics::CONTENT_TYPE, text).into()
    })
}

/// Everything an apply reads, validated.
struct Loaded {
    net: NetConfig,
    forwardings: Vec<PortForward>,
    firewall: FirewallConfig,
    dhcp4: Option<Dhcp4Lease>,
    dhcp6: Option<Dhcp6Lease>,
    warnings: Vec<String>,
}

enum Load {
    /// interfaces.json does not exist yet.
    Waiting(PathBuf),
    Ready(Box<Loaded>),
}

fn read_lease<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ConfigError> {
    statefile::read_json(path).map_err(|e| {
        let (location, message) = match e {
            StateError::Corrupt { line, column, message, .. } => (format!("{line}:{column}"), message),
            other => ("0".to_owned(), other.to_string()),
        };
        ConfigError { file: path.to_owned(), location, message }
    })
}

fn load(perm: &Path) -> Result<Load, ConfigError> {
    let interfaces = runtime::perm::interfaces_path(perm);
    let Some((net, mut warnings)) = config::load_interfaces(&interfaces)? else {
        return Ok(Load::Waiting(interfaces));
    };
    let (forwardings, w) = config::load_forwardings(&perm.join("portforwardings.json"))?;
    warnings.extend(w);
    let firewall = config::load_config(&perm.join("netconfigd/config.json"))?;
    let dhcp4 = read_lease(&runtime::perm::dhcp4_lease_path(perm))?;
    let dhcp6 = read_lease(&runtime::perm::dhcp6_lease_path(perm))?;
    Ok(Load::Ready(Box::new(Loaded { net, forwardings, firewall, dhcp4, dhcp6, warnings })))
}

/// The service.
pub struct Shell {
    args: Args,
    control: Control,
    kernel: Netlink,
    metrics: Arc<ShellMetrics>,
    pool: ListenerSet,
    signal_init: bool,
    retry_timer: Option<runtime::timer::TimerId>,
    backoff: Option<Duration>,
    waiting: bool,
}

impl Shell {
    /// Opens the netlink sockets and the metrics listeners (served by `server`).
    pub fn new(args: Args, control: Control, server: &httpd::Server) -> std::io::Result<Self> {
        let port: u16 = match args.value("listen-port") {
            None => 8066,
            Some(p) => p
                .parse()
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad --listen-port {p}")))?,
        };
        let resolv = PathBuf::from(args.value("resolv-conf").unwrap_or("/tmp/resolv.conf"));
        let kernel = Netlink::open(Path::new("/proc/sys"), &resolv)?;
        let metrics = Arc::new(ShellMetrics::default());
        let pool = ListenerSet::new(server, port, metrics_handler(Arc::clone(&metrics)));
        let signal_init = args.flag("signal-init");
        Ok(Self { args, control, kernel, metrics, pool, signal_init, retry_timer: None, backoff: None, waiting: false })
    }

    fn refresh_listeners(&mut self) {
        match runtime::netif::private_addrs(&self.args.lan) {
            Ok(addrs) => {
                for (addr, e) in self.pool.update(&addrs) {
                    log_warn!("metrics: cannot listen on {addr}: {e}");
                }
            }
            Err(e) => log_warn!("metrics: cannot list addresses: {e}"),
        }
    }

    /// Reads the inputs and applies them; see the module docs.
    pub fn apply(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        if let Some(id) = self.retry_timer.take() {
            cx.cancel_timer(id);
        }
        let loaded = match load(&self.args.perm) {
            Ok(Load::Ready(l)) => l,
            Ok(Load::Waiting(path)) => {
                if !self.waiting {
                    log_info!("{} does not exist yet; waiting for it", path.display());
                }
                self.waiting = true;
                self.retry_timer = Some(cx.add_timer(now + WAIT_POLL, APPLY_TAG));
                let mut c = self.control.update();
                c.set_phase(Phase::Pending);
                c.set_condition(
                    "Config",
                    Some(false),
                    "WaitingForInterfaces",
                    &format!("{} does not exist", path.display()),
                );
                drop(c);
                self.refresh_listeners();
                return;
            }
            Err(e) => {
                // Nothing is touched: the last good configuration stays in the kernel.
                log_error!("not applying: {e}");
                self.metrics.config_errors.inc();
                let mut c = self.control.update();
                c.set_phase(Phase::Error);
                c.set_condition("Config", Some(false), "InvalidConfig", &e.to_string());
                drop(c);
                self.control.emit(
                    "netconfigd.config.invalid",
                    json!({"file": e.file.display().to_string(), "location": e.location, "message": e.message}),
                );
                return;
            }
        };
        self.waiting = false;
        for w in &loaded.warnings {
            log_warn!("{w}");
        }
        let plan = plan::plan(&Inputs {
            net: &loaded.net,
            forwardings: &loaded.forwardings,
            firewall: &loaded.firewall,
            dhcp4: loaded.dhcp4.as_ref(),
            dhcp6: loaded.dhcp6.as_ref(),
            uplink: &self.args.uplink,
            lan: &self.args.lan,
        });
        for w in &plan.warnings {
            log_warn!("{w}");
        }
        let report = reconcile::apply(&plan, &mut self.kernel);
        let took = runtime::clock::now().saturating_duration_since(now);
        self.metrics.applies.inc();
        self.metrics.duration.observe(took.as_secs_f64());
        let changes = report.changes();
        self.metrics.changes.add(changes.len() as u64);
        for c in &changes {
            log_info!("{c}");
        }
        let mut errors = Vec::new();
        // Conditions, fields and phase go out as one update, and before the
        // event: whoever reads the status on hearing "applied" sees this apply.
        let mut c = self.control.update();
        c.set_condition("Config", Some(true), "Valid", "all inputs read and valid");
        for step in Step::ALL {
            let r = report.steps.get(&step).cloned().unwrap_or_default();
            if r.errors.is_empty() {
                let (reason, message) = if r.changes.is_empty() {
                    ("UpToDate", "nothing to change".to_owned())
                } else {
                    ("Applied", format!("{} changes: {}", r.changes.len(), r.changes.join("; ")))
                };
                c.set_condition(step.name(), Some(true), reason, &message);
            } else {
                for e in &r.errors {
                    log_error!("{}: {e}", step.name());
                }
                c.set_condition(step.name(), Some(false), "Failed", &r.errors.join("; "));
                errors.extend(r.errors.iter().map(|e| format!("{}: {e}", step.name())));
            }
        }
        c.set_field("changes", json!(changes));
        c.set_field("warnings", json!(loaded.warnings.iter().chain(&plan.warnings).collect::<Vec<_>>()));
        c.set_field("applies", json!(self.metrics.applies.get()));
        c.set_field("leases", json!({"dhcp4": loaded.dhcp4.is_some(), "dhcp6": loaded.dhcp6.is_some()}));
        if errors.is_empty() {
            self.backoff = None;
            c.set_phase(Phase::Applied);
        } else {
            let backoff = self.backoff.map_or(RETRY_FIRST, |d| (d * 2).min(RETRY_MAX));
            self.backoff = Some(backoff);
            log_warn!("{} errors; applying again in {backoff:?}", errors.len());
            self.retry_timer = Some(cx.add_timer(now + backoff, APPLY_TAG));
            self.metrics.apply_errors.inc();
            c.set_phase(Phase::Error);
        }
        drop(c);
        self.control.emit(
            "netconfigd.applied",
            json!({"changes": changes.len(), "errors": errors, "seconds": took.as_secs_f64()}),
        );
        log_info!("applied in {took:?}: {report}");
        runtime::notify::notify_all(&self.args.run, &NOTIFY, Signal::Usr1);
        if self.signal_init {
            // init re-reads the interface addresses for its web listeners (router7 did the same).
            if let Some(pid) = rustix::process::Pid::from_raw(1)
                && let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::HUP)
            {
                log_warn!("SIGHUP to init: {e}");
            }
        }
        self.refresh_listeners();
    }
}

impl Handler for Shell {
    fn on_reload(&mut self, cx: &mut Context<'_>) {
        self.apply(cx);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
        if tag == APPLY_TAG {
            self.retry_timer = None;
            self.apply(cx);
        }
    }
}
