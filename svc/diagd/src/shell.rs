//! The shell around the monitor: runs the probes it asks for (files, `/proc`,
//! echo sockets, TCP connects) in one event loop, feeds the results back with
//! the time, and publishes every complete round to the HTTP listeners, the
//! control API and the metrics.
//!
//! Local checks (link, leases, SLAAC) are answered at once; pings and connects
//! run non-blocking until they answer or the monitor's deadline cancels them.
//! A ping check sends an echo every [`PING_RESEND`] until a reply, so one lost
//! packet does not fail it.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diagd::config::{Config, ConfigFile, Ipv6Mode};
use diagd::monitor::{Action, Monitor, Notice, Outcome, Verdict, format_rtt};
use diagd::report::Report;
use diagd::tree::{CheckId, Probe};
use diagd::{addrs, echo, lease, routes};
use runtime::control::{Control, Phase};
use runtime::metrics::{Counter, Encoder};
use runtime::mio::{Interest, Token};
use runtime::perm::{Dhcp4Lease, Dhcp6Lease};
use runtime::service::Base;
use runtime::timefmt::Timestamp;
use runtime::{Context, Handler, Ready, clock, log_info, log_warn, netif, statefile};
use serde_json::json;

use crate::changes::KernelChanges;
use crate::probes::{self, EchoSocket, Version};
use crate::web::{Published, Web};

const ICMP4: Token = Token(0);
const ICMP6: Token = Token(1);
const CHANGES: Token = Token(2);
const TCP_BASE: usize = 16;
/// Time between echo requests of one ping check.
pub const PING_RESEND: Duration = Duration::from_millis(500);
/// Replies read per wake-up before letting timers run.
const BATCH: usize = 64;

/// The per-namespace view of `/proc/net` for the calling thread.
const PROC_NET: &str = "/proc/thread-self/net";

struct Ping {
    check: CheckId,
    version: Version,
    dst: SocketAddr,
    /// How the status names the target (`10.0.0.1`, `fe80::1%uplink0`); `None`
    /// for multicast, where the replier is named.
    label: Option<String>,
    sent: Vec<(u16, Instant)>,
    next_send: Instant,
    /// Addresses of ours: a multicast reply from one of them does not count.
    local: Vec<IpAddr>,
}

struct Connect {
    check: CheckId,
    stream: runtime::mio::net::TcpStream,
    started: Instant,
    source: Option<IpAddr>,
}

/// Counters the HTTP thread renders next to the report's gauges.
#[derive(Debug, Default)]
pub struct Counters {
    /// Complete rounds.
    pub rounds: Counter,
    /// Verdict changes.
    pub health_changes: Counter,
    /// ICMP packets read that were not our echo replies, by reason.
    pub icmp_ignored: [Counter; 4],
    /// Echo requests that could not be sent.
    pub echo_send_errors: Counter,
    /// Configuration files refused.
    pub config_errors: Counter,
    /// rtnetlink messages about links, addresses and routes.
    pub kernel_changes: Counter,
}

impl Counters {
    /// Adds the counters to `enc`.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.counter("diagd_rounds_total", "Complete rounds of checks.", &[], self.rounds.get());
        enc.counter("diagd_health_changes_total", "Changes of the health verdict.", &[], self.health_changes.get());
        for (reason, c) in IGNORED.iter().zip(&self.icmp_ignored) {
            enc.counter(
                "diagd_icmp_ignored_total",
                "ICMP packets read that were not replies to our echo requests.",
                &[("reason", reason.as_str())],
                c.get(),
            );
        }
        enc.counter(
            "diagd_echo_send_errors_total",
            "Echo requests the kernel refused.",
            &[],
            self.echo_send_errors.get(),
        );
        enc.counter("diagd_config_errors_total", "Configuration files refused.", &[], self.config_errors.get());
        enc.counter(
            "diagd_kernel_changes_total",
            "Messages about links, addresses and routes the kernel announced (a burst brings one round forward).",
            &[],
            self.kernel_changes.get(),
        );
    }
}

const IGNORED: [echo::Ignored; 4] =
    [echo::Ignored::Malformed, echo::Ignored::NotEchoReply, echo::Ignored::BadChecksum, echo::Ignored::NotOurs];

/// The service.
pub struct Shell {
    monitor: Monitor,
    perm: PathBuf,
    uplink: String,
    lan: String,
    config_path: PathBuf,
    ipv6_override: Option<Ipv6Mode>,
    control: Control,
    published: Arc<Mutex<Published>>,
    counters: Arc<Counters>,
    web: Web,
    icmp4: Option<EchoSocket>,
    icmp6: Option<EchoSocket>,
    /// `None` when it could not be opened: rounds then come on the schedule only.
    changes: Option<KernelChanges>,
    pings: Vec<Ping>,
    connects: Vec<Connect>,
    nonce: u64,
    ident: u16,
    next_seq: u16,
    logged_icmp_kind: [bool; 2],
}

/// Runs diagd until it is stopped.
pub fn run(mut base: Base) -> Result<i32, Box<dyn std::error::Error>> {
    let ipv6_override = match base.args.value("ipv6") {
        None => None,
        Some(v) => Some(Ipv6Mode::parse(v).ok_or_else(|| format!("--ipv6 {v}: use auto, required or ignored"))?),
    };
    let listen = match base.args.value("http") {
        None => None,
        Some(v) => Some(v.parse::<SocketAddr>().map_err(|_| format!("--http {v}: not an address:port"))?),
    };
    let perm = base.args.perm.clone();
    let config_path = perm.join("diagd/config.json");
    let counters = Arc::new(Counters::default());
    let now = clock::now();
    // Until a config.json is accepted: the defaults, with --ipv6 if given.
    let mut fallback = Config::default();
    if let Some(mode) = ipv6_override {
        fallback.ipv6 = mode;
    }
    let mut shell = Shell {
        monitor: Monitor::new(fallback, &base.args.uplink, &base.args.lan, now),
        perm,
        uplink: base.args.uplink.clone(),
        lan: base.args.lan.clone(),
        config_path,
        ipv6_override,
        control: base.control.clone(),
        published: Arc::new(Mutex::new(Published::default())),
        counters: Arc::clone(&counters),
        web: Web::new(listen),
        icmp4: None,
        icmp6: None,
        changes: None,
        pings: Vec::new(),
        connects: Vec::new(),
        nonce: random_u64(),
        ident: u16::try_from(std::process::id() & 0xffff).unwrap_or(0),
        next_seq: 0,
        logged_icmp_kind: [false; 2],
    };
    if let Some(config) = shell.load_config() {
        shell.monitor = Monitor::new(config, &shell.uplink, &shell.lan, now);
    }
    match KernelChanges::open().and_then(|c| c.register(base.event_loop.registry(), CHANGES).map(|()| c)) {
        Ok(c) => shell.changes = Some(c),
        Err(e) => {
            log_warn!("cannot follow the kernel's link, address and route changes ({e}): checking on the schedule only")
        }
    }
    // Published before anything listens, so the first request already sees Pending.
    shell.publish();
    shell.web.start(&base.httpd, Arc::clone(&shell.published), Arc::clone(&counters));
    shell.web.refresh(&shell.lan);
    log_info!(
        "checking {} every {}s (ipv6: {}), serving on {}",
        shell.uplink,
        shell.monitor.config().interval.as_secs(),
        shell.monitor.config().ipv6.as_str(),
        shell.web.describe()
    );
    let code = base.event_loop.run(&mut shell)?;
    Ok(code)
}

fn random_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_ok() {
        return u64::from_ne_bytes(b);
    }
    let t = Timestamp::from_system(clock::wall_now());
    (u64::from(t.nanos) << 32) ^ u64::from(std::process::id()) ^ t.secs.unsigned_abs()
}

fn wall() -> Timestamp {
    Timestamp::from_system(clock::wall_now())
}

fn read_proc(name: &str) -> Result<String, String> {
    let path = Path::new(PROC_NET).join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {}", path.display(), probes::error_text(&e)))
}

impl Shell {
    /// Reads config.json: a missing file gives the defaults; a bad one is
    /// reported and gives `None`, so the caller keeps the last good config.
    fn load_config(&mut self) -> Option<Config> {
        let shown = self.config_path.display().to_string();
        let file = match statefile::read_json::<ConfigFile>(&self.config_path) {
            Ok(file) => file.unwrap_or_default(),
            Err(e) => {
                self.config_rejected(&e.to_string());
                return None;
            }
        };
        let mut config = match Config::try_from(file) {
            Ok(c) => c,
            Err(e) => {
                self.config_rejected(&format!("{shown}: {e}"));
                return None;
            }
        };
        if let Some(mode) = self.ipv6_override {
            config.ipv6 = mode;
        }
        self.control.set_condition("ConfigValid", Some(true), "Loaded", "");
        Some(config)
    }

    fn config_rejected(&self, why: &str) {
        self.counters.config_errors.inc();
        log_warn!("config refused, keeping the last good one: {why}");
        self.control.set_condition("ConfigValid", Some(false), "Invalid", why);
    }

    fn reload(&mut self, cx: &mut Context<'_>) {
        self.web.refresh(&self.lan);
        if let Some(config) = self.load_config()
            && config != *self.monitor.config()
        {
            log_info!("config changed; starting a new round");
            let out = self.monitor.set_config(config, &self.uplink, &self.lan, cx.now());
            self.carry_out(cx, out.actions);
        }
        self.monitor.run_soon(cx.now());
    }

    /// Runs the monitor's actions; local checks answer at once, which may start more.
    fn carry_out(&mut self, cx: &mut Context<'_>, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Cancel { check } => self.cancel(cx, check),
                Action::Start { check, probe, .. } => {
                    if let Some(outcome) = self.start(cx, check, &probe) {
                        let out = self.monitor.on_outcome(cx.now(), wall(), check, outcome);
                        queue.extend(out.actions);
                        self.notices(out.notices);
                    }
                }
            }
        }
    }

    fn feed(&mut self, cx: &mut Context<'_>, check: CheckId, outcome: Outcome) {
        let out = self.monitor.on_outcome(cx.now(), wall(), check, outcome);
        self.notices(out.notices);
        self.carry_out(cx, out.actions);
    }

    fn cancel(&mut self, cx: &mut Context<'_>, check: CheckId) {
        self.pings.retain(|p| p.check != check);
        self.connects.retain_mut(|c| {
            if c.check == check {
                let _ = cx.registry().deregister(&mut c.stream);
                false
            } else {
                true
            }
        });
    }

    /// Starts `probe`; returns the outcome at once for local checks and failures to start.
    fn start(&mut self, cx: &mut Context<'_>, check: CheckId, probe: &Probe) -> Option<Outcome> {
        match probe {
            Probe::Link { ifname } => {
                // The root starts a round: see whether the ISP gave us IPv6.
                let v6 = self.perm.join("dhcp6/wire/lease.json").exists();
                self.monitor.set_ipv6_present(v6);
                Some(link_outcome(ifname))
            }
            Probe::Lease4 => Some(self.lease_outcome::<Dhcp4Lease>("dhcp4/wire/lease.json", |l| l.valid_until)),
            Probe::Lease6 => Some(self.lease_outcome::<Dhcp6Lease>("dhcp6/wire/lease.json", |l| l.valid_until)),
            Probe::Slaac { ifname } => Some(match read_proc("if_inet6") {
                Err(e) => Outcome::fail(e),
                Ok(text) => match addrs::global_of(&addrs::parse(&text), ifname, true) {
                    Some(a) => Outcome::pass(format!("{}/{}", a.addr, a.prefix_len)),
                    None => Outcome::fail("no SLAAC address found"),
                },
            }),
            Probe::Ping4Gateway { toward } => {
                let routes = match read_proc("route") {
                    Ok(t) => routes::parse_v4(&t),
                    Err(e) => return Some(Outcome::fail(e)),
                };
                match routes::gateway_v4(&routes, *toward) {
                    Err(e) => Some(Outcome::fail(e)),
                    Ok((gw, _)) => {
                        let dst = SocketAddr::V4(SocketAddrV4::new(gw, 0));
                        self.start_ping(cx, check, Version::V4, dst, Some(gw.to_string()))
                    }
                }
            }
            Probe::Ping6Gateway { toward } => {
                let routes = match read_proc("ipv6_route") {
                    Ok(t) => routes::parse_v6(&t),
                    Err(e) => return Some(Outcome::fail(e)),
                };
                match routes::gateway_v6(&routes, *toward) {
                    Err(e) => Some(Outcome::fail(e)),
                    Ok((gw, dev)) => {
                        let scope = if gw.is_unicast_link_local() { netif::index(&dev).unwrap_or(0) } else { 0 };
                        let dst = SocketAddr::V6(SocketAddrV6::new(gw, 0, 0, scope));
                        let label = if scope == 0 { gw.to_string() } else { format!("{gw}%{dev}") };
                        self.start_ping(cx, check, Version::V6, dst, Some(label))
                    }
                }
            }
            Probe::Ping6AllRouters { ifname } => match netif::index(ifname) {
                Err(e) => Some(Outcome::fail(probes::error_text(&e))),
                Ok(index) => {
                    let all_routers = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
                    let dst = SocketAddr::V6(SocketAddrV6::new(all_routers, 0, 0, index));
                    self.start_ping(cx, check, Version::V6, dst, None)
                }
            },
            Probe::Tcp4 { target } => self.start_connect(cx, check, SocketAddr::V4(*target), None),
            Probe::Tcp6 { target, source_ifname, slaac_only } => {
                let text = match read_proc("if_inet6") {
                    Ok(t) => t,
                    Err(e) => return Some(Outcome::fail(e)),
                };
                let all = addrs::parse(&text);
                match addrs::global_of(&all, source_ifname, *slaac_only) {
                    None if *slaac_only => Some(Outcome::fail(format!("no SLAAC address on {source_ifname}"))),
                    None => Some(Outcome::fail(format!("no global IPv6 address on {source_ifname}"))),
                    Some(a) => {
                        let source = IpAddr::V6(a.addr);
                        self.start_connect(cx, check, SocketAddr::V6(*target), Some(source))
                    }
                }
            }
        }
    }

    fn lease_outcome<L: serde::de::DeserializeOwned>(
        &self,
        relative: &str,
        valid_until: impl Fn(&L) -> Timestamp,
    ) -> Outcome {
        let path = self.perm.join(relative);
        let file = match statefile::read_json::<L>(&path) {
            Ok(None) => lease::LeaseFile::Missing,
            Ok(Some(l)) => lease::LeaseFile::ValidUntil(valid_until(&l)),
            Err(e) => lease::LeaseFile::Unreadable(e.to_string()),
        };
        lease::outcome(&file, &path.display().to_string(), wall())
    }

    fn socket(&mut self, cx: &mut Context<'_>, version: Version) -> Result<&EchoSocket, String> {
        let (slot, token, i) = match version {
            Version::V4 => (&mut self.icmp4, ICMP4, 0),
            Version::V6 => (&mut self.icmp6, ICMP6, 1),
        };
        if slot.is_none() {
            let s = EchoSocket::open(version).map_err(|e| format!("cannot open an ICMP socket: {e}"))?;
            s.register(cx.registry(), token).map_err(|e| e.to_string())?;
            if !self.logged_icmp_kind[i] {
                self.logged_icmp_kind[i] = true;
                let kind = if s.raw { "raw socket (CAP_NET_RAW)" } else { "ping socket" };
                log_info!("echo over {version:?} uses a {kind}");
            }
            *slot = Some(s);
        }
        slot.as_ref().ok_or_else(|| "no ICMP socket".to_owned())
    }

    fn start_ping(
        &mut self,
        cx: &mut Context<'_>,
        check: CheckId,
        version: Version,
        dst: SocketAddr,
        label: Option<String>,
    ) -> Option<Outcome> {
        if let Err(e) = self.socket(cx, version) {
            return Some(Outcome::fail(e));
        }
        let local = if label.is_none() {
            netif::addrs().map(|a| a.into_iter().map(|a| a.addr).collect()).unwrap_or_default()
        } else {
            Vec::new()
        };
        let ping = Ping { check, version, dst, label, sent: Vec::new(), next_send: cx.now(), local };
        self.pings.push(ping);
        self.resend_due(cx);
        None
    }

    fn resend_due(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let mut failed: Vec<(CheckId, String)> = Vec::new();
        for i in 0..self.pings.len() {
            if self.pings[i].next_send > now {
                continue;
            }
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            let (version, dst, check) = (self.pings[i].version, self.pings[i].dst, self.pings[i].check);
            let packet = match version {
                Version::V4 => echo::request_v4(self.ident, seq, self.nonce),
                Version::V6 => echo::request_v6(self.ident, seq, self.nonce),
            };
            let socket = match version {
                Version::V4 => self.icmp4.as_ref(),
                Version::V6 => self.icmp6.as_ref(),
            };
            let sent = socket.map(|s| s.send(&packet, dst));
            let p = &mut self.pings[i];
            p.next_send = now + PING_RESEND;
            match sent {
                Some(Ok(())) => p.sent.push((seq, now)),
                Some(Err(e)) => {
                    self.counters.echo_send_errors.inc();
                    // Only the first send's error fails the check at once (e.g.
                    // "network is unreachable"); later ones wait for the deadline.
                    if p.sent.is_empty() {
                        failed.push((check, format!("ping {}: {}", dst.ip(), probes::error_text(&e))));
                    }
                }
                None => failed.push((check, "no ICMP socket".to_owned())),
            }
        }
        for (check, why) in failed {
            self.pings.retain(|p| p.check != check);
            self.feed(cx, check, Outcome::fail(why));
        }
    }

    fn start_connect(
        &mut self,
        cx: &mut Context<'_>,
        check: CheckId,
        target: SocketAddr,
        source: Option<IpAddr>,
    ) -> Option<Outcome> {
        let mut stream = match probes::connect(target, source) {
            Ok(s) => s,
            Err(e) => return Some(Outcome::fail(probes::error_text(&e))),
        };
        let token = Token(TCP_BASE + check.index());
        if let Err(e) = cx.registry().register(&mut stream, token, Interest::WRITABLE) {
            return Some(Outcome::fail(e.to_string()));
        }
        self.connects.push(Connect { check, stream, started: cx.now(), source });
        None
    }

    fn on_icmp(&mut self, cx: &mut Context<'_>, version: Version) {
        let mut buf = [0u8; 2048];
        let mut replies: Vec<(CheckId, Outcome)> = Vec::new();
        for n in 0.. {
            if n == BATCH {
                cx.ready_again(match version {
                    Version::V4 => ICMP4,
                    Version::V6 => ICMP6,
                });
                break;
            }
            let socket = match version {
                Version::V4 => self.icmp4.as_ref(),
                Version::V6 => self.icmp6.as_ref(),
            };
            let Some(socket) = socket else { return };
            let (len, from) = match socket.recv(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A pending socket error (an ICMP error for an earlier echo) is
                    // reported once and cleared; more packets may still be queued,
                    // so keep reading. The ping's deadline reports the failure.
                    runtime::log_debug!("echo socket: {e}");
                    continue;
                }
            };
            let parsed = match version {
                Version::V4 => echo::parse_v4(&buf[..len], socket.raw, self.nonce),
                Version::V6 => echo::parse_v6(&buf[..len], self.nonce),
            };
            let reply = match parsed {
                Ok(r) => r,
                Err(why) => {
                    if let Some(i) = IGNORED.iter().position(|w| *w == why) {
                        self.counters.icmp_ignored[i].inc();
                    }
                    continue;
                }
            };
            let now = cx.now();
            let Some(ping) =
                self.pings.iter().find(|p| p.version == version && p.sent.iter().any(|s| s.0 == reply.seq))
            else {
                continue; // a late reply to a finished check
            };
            let from_ip = from.map_or_else(|| "?".to_owned(), |f| f.to_string());
            if ping.label.is_none() && from.is_some_and(|f| ping.local.contains(&f)) {
                continue; // our own answer to our multicast echo
            }
            let sent_at = ping.sent.iter().find(|s| s.0 == reply.seq).map_or(now, |s| s.1);
            let rtt = now.saturating_duration_since(sent_at);
            let who = ping.label.clone().unwrap_or(from_ip);
            replies.push((ping.check, Outcome::pass(format!("{} from {who}", format_rtt(rtt))).with_latency(rtt)));
            let done = ping.check;
            self.pings.retain(|p| p.check != done);
        }
        for (check, outcome) in replies {
            self.feed(cx, check, outcome);
        }
    }

    fn on_changes(&mut self, cx: &mut Context<'_>) {
        let Some(changes) = &self.changes else { return };
        match changes.drain() {
            Ok(0) => {}
            Ok(n) => {
                self.counters.kernel_changes.add(n as u64);
                self.monitor.kernel_changed(cx.now());
            }
            Err(e) => {
                log_warn!("reading the kernel's changes failed ({e}): checking on the schedule only from now");
                if let Some(c) = self.changes.take() {
                    let _ = c.deregister(cx.registry());
                }
            }
        }
    }

    fn on_connect(&mut self, cx: &mut Context<'_>, token: Token) {
        let Some(i) = self.connects.iter().position(|c| TCP_BASE + c.check.index() == token.0) else {
            return;
        };
        let result = probes::connect_result(&self.connects[i].stream);
        let outcome = match result {
            Ok(None) => return,
            Ok(Some(())) => {
                let c = &self.connects[i];
                let took = cx.now().saturating_duration_since(c.started);
                let from = c.source.map(|s| format!(" from {s}")).unwrap_or_default();
                Outcome::pass(format!("connection established{from} in {}", format_rtt(took))).with_latency(took)
            }
            Err(e) => Outcome::fail(probes::error_text(&e)),
        };
        let mut c = self.connects.remove(i);
        let _ = cx.registry().deregister(&mut c.stream);
        drop(c);
        self.feed(cx, CheckId::ALL[token.0 - TCP_BASE], outcome);
    }

    fn notices(&mut self, notices: Vec<Notice>) {
        let mut publish = false;
        for n in notices {
            match n {
                Notice::RoundComplete => {
                    self.counters.rounds.inc();
                    publish = true;
                }
                Notice::HealthChanged { from, to, first_error } => {
                    self.counters.health_changes.inc();
                    if first_error.is_empty() {
                        log_info!("health: {} → {}", from.as_str(), to.as_str());
                    } else {
                        log_warn!("health: {} → {}: {first_error}", from.as_str(), to.as_str());
                    }
                    self.control.emit(
                        "diagd.health.changed",
                        json!({"from": from.as_str(), "to": to.as_str(), "first_error": first_error}),
                    );
                }
                Notice::CheckChanged { check, ok, status } => {
                    let name = self.monitor.tree().name(check).to_owned();
                    log_info!("{} {name}: {status}", if ok { "✔" } else { "✘" });
                    self.control.emit(
                        "diagd.check.changed",
                        json!({"check": check.key(), "name": name, "ok": ok, "status": status}),
                    );
                }
            }
        }
        if publish {
            self.publish();
        }
    }

    fn publish(&mut self) {
        let report = Report::of(&self.monitor);
        let status = report.status_json();
        let mut update = self.control.update();
        update.set_phase(match report.verdict {
            Verdict::Pending => Phase::Pending,
            Verdict::Healthy => Phase::Healthy,
            Verdict::Unhealthy => Phase::Unhealthy,
        });
        for (kind, status, reason, message) in report.conditions() {
            update.set_condition(kind, status, reason, &message);
        }
        for key in ["first_error", "round", "ipv6", "checks"] {
            update.set_field(key, status[key].clone());
        }
        drop(update);
        let mut p = self.published.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        p.report = Some(report);
    }
}

fn link_outcome(ifname: &str) -> Outcome {
    match netif::link(ifname) {
        Err(e) => Outcome::fail(probes::error_text(&e)),
        Ok(None) => Outcome::fail(format!("link {ifname} not found")),
        Ok(Some(l)) if !l.up => Outcome::fail(format!("link {ifname} not UP")),
        Ok(Some(l)) if !l.running => Outcome::fail(format!("link {ifname} has no carrier (not RUNNING)")),
        Ok(Some(l)) => Outcome::pass(format!("{} rx, {} tx", l.rx_packets, l.tx_packets)),
    }
}

impl Handler for Shell {
    fn poll_at(&self) -> Option<Instant> {
        let resend = self.pings.iter().map(|p| p.next_send).min();
        [self.monitor.poll_at(), resend].into_iter().flatten().min()
    }

    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        self.resend_due(cx);
        let out = self.monitor.poll(cx.now(), wall());
        self.notices(out.notices);
        self.carry_out(cx, out.actions);
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, token: Token, _ready: Ready) {
        match token {
            ICMP4 => self.on_icmp(cx, Version::V4),
            ICMP6 => self.on_icmp(cx, Version::V6),
            CHANGES => self.on_changes(cx),
            t if t.0 >= TCP_BASE && t.0 < TCP_BASE + CheckId::ALL.len() => self.on_connect(cx, t),
            _ => {}
        }
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        log_info!("reload: re-reading {} and re-checking", self.config_path.display());
        self.reload(cx);
    }

    fn on_renew(&mut self, cx: &mut Context<'_>) {
        log_info!("renew: re-checking now");
        self.monitor.run_soon(cx.now());
    }

    fn on_other_signal(&mut self, cx: &mut Context<'_>, _signal: runtime::Signal, _info: runtime::sys::SignalInfo) {
        // SIGHUP: listeners only.
        let _ = cx;
        self.web.refresh(&self.lan);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diagd::config::Config;

    /// router7's TestDiagLink: a nonexistent link errors, `lo` is fine.
    #[test]
    fn a_missing_link_fails_and_loopback_passes() {
        assert_eq!(link_outcome("nonexistant"), Outcome::fail("link nonexistant not found"));
        let lo = link_outcome("lo");
        assert!(lo.ok && lo.status.ends_with(" tx"), "{lo:?}");
    }

    /// router7's TestDiagMonitor: the tree under a missing link.
    #[test]
    fn the_tree_under_a_missing_link_blames_it() {
        let now = clock::now();
        let mut m = Monitor::new(Config::default(), "nonexistant", "lan0", now);
        let out = m.poll(now, wall());
        let Some(Action::Start { check: CheckId::Link, probe: Probe::Link { ifname }, .. }) = out.actions.first()
        else {
            panic!("{out:?}");
        };
        let _ = m.on_outcome(now, wall(), CheckId::Link, link_outcome(ifname));
        let report = Report::of(&m);
        let root = &report.tree_json()[0];
        assert_eq!(root["name"], "link/nonexistant");
        assert_eq!((root["ok"].as_bool(), root["status"].as_str()), (Some(false), Some("link nonexistant not found")));
        assert_eq!(root["children"][0]["name"], "dhcp4");
        assert_eq!(root["children"][0]["status"], "dependency link/nonexistant failed");
        assert_eq!(m.first_error(), "link/nonexistant: link nonexistant not found");
    }
}
