//! The thin shell around [`Advertiser`]: reads the inputs (lease, extra
//! prefixes, configuration, the LAN interface), owns the raw ICMPv6 socket and
//! the `/metrics` listeners, feeds the core time and packets, sends what it
//! returns, and publishes status and events on the control API.
//!
//! Files: reads `<perm>/dhcp6/wire/lease.json`, `<perm>/radvd/prefixes.json`,
//! `<perm>/radvd/config.json`; writes `<perm>/radvd/advertised.json`. A missing
//! file means "none"/defaults; a corrupt one is reported and the last good
//! contents are kept.

use std::error::Error;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use radvd::config::{self, Config};
use radvd::metrics::RadvdMetrics;
use radvd::prefixes::{self, PrefixInput, Record};
use radvd::random::SplitMix64;
use radvd::solicit::DropReason;
use radvd::{Advertiser, Inputs, Kind, Link, Transmit};
use runtime::control::{Control, Phase};
use runtime::http::ListenerSet;
use runtime::httpd;
use runtime::perm::{Dhcp6Lease, IpNet};
use runtime::service::Base;
use runtime::statefile::{self, StateError};
use runtime::timefmt::Timestamp;
use runtime::{Context, Handler, Ready, log_error, log_info, log_warn};
use serde_json::{Value, json};

use crate::socket::Icmpv6Socket;

const SOCKET: Token = Token(0);
/// Packets read per wake-up before giving timers a turn (a flood must not starve them).
const MAX_PACKETS_PER_TURN: usize = 64;
/// How often to look for a missing LAN interface besides SIGUSR1 from netconfigd.
const INTERFACE_RETRY: Duration = Duration::from_secs(10);
/// How often to look for the link-local address of an interface that has none
/// yet (no carrier, or the address is still being created).
const LINK_LOCAL_RETRY: Duration = Duration::from_secs(2);
/// The longest wait before refreshing the interface after failed sends.
const MAX_SEND_BACKOFF: Duration = Duration::from_secs(60);
/// Default `/metrics` port (radvd's own; router7 had none).
const DEFAULT_METRICS_PORT: u16 = 8068;

/// Where radvd's files are.
#[derive(Debug, Clone)]
struct Paths {
    lease: PathBuf,
    extras: PathBuf,
    config: PathBuf,
    record: PathBuf,
}

impl Paths {
    fn new(perm: &Path) -> Self {
        let own = perm.join("radvd");
        Self {
            lease: runtime::perm::dhcp6_lease_path(perm),
            extras: own.join("prefixes.json"),
            config: own.join("config.json"),
            record: own.join("advertised.json"),
        }
    }
}

/// The last good contents of each input file, and what went wrong reading it.
#[derive(Debug, Default)]
struct Files {
    config: Config,
    lease: Option<Dhcp6Lease>,
    extras: Vec<IpNet>,
    /// The prefixes they give.
    prefixes: Vec<PrefixInput>,
    problems: Vec<String>,
}

struct Service {
    lan: String,
    paths: Paths,
    files: Files,
    core: Advertiser,
    metrics: Arc<RadvdMetrics>,
    control: Control,
    socket: Option<Icmpv6Socket>,
    link: Option<Link>,
    /// Why the interface cannot be used (a condition reason and a message).
    link_problem: Option<(&'static str, String)>,
    /// The socket cannot be opened for good (no CAP_NET_RAW): phase Error.
    fatal: bool,
    /// The last problem logged, so a retry every few seconds logs it once.
    logged_problem: Option<String>,
    retry_at: Option<Instant>,
    send_backoff: Duration,
    last_send_error_log: Option<Instant>,
    listeners: Option<ListenerSet>,
    buf: Vec<u8>,
}

/// Starts radvd; see the module docs.
pub fn run(base: Base) -> Result<i32, Box<dyn Error>> {
    let Base { args, mut event_loop, control, httpd, pid_file: _pid_file, socket: _control_socket } = base;
    let metrics_port = match args.value("metrics-port").map(str::parse::<u16>) {
        Some(Ok(p)) => p,
        None => DEFAULT_METRICS_PORT,
        Some(Err(_)) => {
            // A wrong command line does not get better by restarting.
            log_error!("--metrics-port {:?} is not a port", args.value("metrics-port").unwrap_or(""));
            return Ok(runtime::service::EXIT_DO_NOT_RESTART);
        }
    };
    let metrics = Arc::new(RadvdMetrics::default());
    let listeners = (metrics_port != 0).then(|| {
        let m = Arc::clone(&metrics);
        let handler: httpd::Handler = Arc::new(move |request: &httpd::Request| serve_metrics(&m, request).into());
        ListenerSet::new(&httpd, metrics_port, handler)
    });
    let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let now = runtime::clock::now();
    let mut service = Service {
        lan: args.lan.clone(),
        paths: Paths::new(&args.perm),
        files: Files::default(),
        core: Advertiser::new(Config::default(), Box::new(SplitMix64::new(seed)), Arc::clone(&metrics)),
        metrics,
        control,
        socket: None,
        link: None,
        link_problem: None,
        fatal: false,
        logged_problem: None,
        retry_at: None,
        send_backoff: Duration::from_secs(1),
        last_send_error_log: None,
        listeners,
        buf: vec![0u8; 65_536],
    };
    service.restore_record(now);
    service.read_files();
    service.refresh(event_loop.registry(), now);
    service.update_listeners();
    service.flush(now);
    log_info!("started on {}", service.lan);
    Ok(event_loop.run(&mut service)?)
}

fn serve_metrics(metrics: &RadvdMetrics, request: &httpd::Request) -> httpd::Response {
    if request.path() == "/metrics" && request.is_get() {
        runtime::http::reply(200, runtime::metrics::CONTENT_TYPE, runtime::metrics::render(metrics))
    } else {
        runtime::http::reply_text(404, "not found")
    }
}

/// The link-local address to send from: the one derived from the MAC (stable
/// across restarts and what hosts already know), else the lowest.
fn choose_link_local(addrs: &[Ipv6Addr], mac: Option<[u8; 6]>) -> Option<Ipv6Addr> {
    let eui64 = mac
        .map(|m| Ipv6Addr::from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]));
    let mut lls: Vec<Ipv6Addr> = addrs.iter().copied().filter(Ipv6Addr::is_unicast_link_local).collect();
    lls.sort_unstable();
    eui64.filter(|e| lls.contains(e)).or_else(|| lls.first().copied())
}

/// Reads JSON telling missing (`Ok(None)`) from corrupt.
fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    statefile::read_json(path)
}

impl Service {
    fn restore_record(&mut self, now: Instant) {
        match read::<Record>(&self.paths.record) {
            Ok(Some(record)) => {
                if !record.prefixes.is_empty() {
                    log_info!(
                        "{} prefixes advertised before the restart; deprecating those no longer delegated",
                        record.prefixes.len()
                    );
                }
                self.core.restore(now, &record);
            }
            Ok(None) => {}
            Err(e) => log_warn!("ignoring {e}"),
        }
    }

    /// Re-reads the three input files, keeping the last good contents of any that is corrupt.
    fn read_files(&mut self) {
        let mut problems = Vec::new();
        match statefile::read(&self.paths.config) {
            Ok(None) => self.files.config = Config::default(),
            Ok(Some(bytes)) => match config::parse(&bytes) {
                Ok(c) => self.files.config = c,
                Err(e) => problems.push(format!("{}: {e}; keeping the previous settings", self.paths.config.display())),
            },
            Err(e) => problems.push(format!("{e}; keeping the previous settings")),
        }
        match read::<Dhcp6Lease>(&self.paths.lease) {
            Ok(lease) => self.files.lease = lease,
            Err(e) => problems.push(format!("{e}; keeping the previous lease")),
        }
        match read::<Vec<IpNet>>(&self.paths.extras) {
            Ok(extras) => self.files.extras = extras.unwrap_or_default(),
            Err(e) => problems.push(format!("{e}; keeping the previous prefixes")),
        }
        for p in &problems {
            log_error!("{p}");
        }
        self.files.problems = problems;
        let (prefixes, warnings) = prefixes::collect(self.files.lease.as_ref(), &self.files.extras);
        for w in warnings {
            log_warn!("{w}");
        }
        self.files.prefixes = prefixes;
    }

    /// Finds the LAN interface, (re)opens the socket when needed, and hands the
    /// core the current inputs (which sends a fresh RA).
    fn refresh(&mut self, registry: &Registry, now: Instant) {
        self.retry_at = None;
        self.fatal = false;
        self.link = self.read_link();
        match self.link {
            None => {
                self.close_socket(registry);
                self.retry_at = Some(now + INTERFACE_RETRY);
            }
            Some(link) if self.socket.as_ref().map(Icmpv6Socket::ifindex) != Some(link.ifindex) => {
                self.close_socket(registry);
                match Icmpv6Socket::open(&self.lan, link.ifindex) {
                    Ok(mut socket) => match registry.register(&mut socket, SOCKET, Interest::READABLE) {
                        Ok(()) => {
                            log_info!("listening for router solicitations on {} (index {})", self.lan, link.ifindex);
                            self.socket = Some(socket);
                        }
                        Err(e) => self.socket_failed(now, format!("register: {e}")),
                    },
                    Err(e) => {
                        self.fatal = e.kind() == io::ErrorKind::PermissionDenied;
                        self.socket_failed(now, format!("{}: {e}", self.lan));
                    }
                }
            }
            Some(_) => {}
        }
        if self.link.is_some_and(|l| l.link_local.is_none()) {
            self.retry_at = Some(now + LINK_LOCAL_RETRY);
        }
        match &self.link_problem {
            Some((_, message)) if self.logged_problem.as_ref() != Some(message) => {
                log_warn!("{message}; waiting for it");
                self.logged_problem = Some(message.clone());
            }
            Some(_) => {}
            None => self.logged_problem = None,
        }
        // Without a socket nothing can be sent: the core sees no link.
        let link = self.link.filter(|_| self.socket.is_some());
        let wall_now = Timestamp::from_system(runtime::clock::wall_now());
        let inputs = Inputs { config: self.files.config.clone(), link, prefixes: self.files.prefixes.clone() };
        self.core.reload(now, wall_now, inputs);
    }

    fn socket_failed(&mut self, now: Instant, message: String) {
        self.link_problem = Some(("SocketError", format!("cannot open the ICMPv6 socket: {message}")));
        self.retry_at = Some(now + INTERFACE_RETRY);
    }

    fn close_socket(&mut self, registry: &Registry) {
        if let Some(mut socket) = self.socket.take() {
            let _ = registry.deregister(&mut socket);
        }
    }

    fn read_link(&mut self) -> Option<Link> {
        self.link_problem = None;
        let ifindex = match runtime::netif::index(&self.lan) {
            Ok(i) => i,
            Err(e) => {
                self.link_problem = Some(("InterfaceMissing", e.to_string()));
                return None;
            }
        };
        let mac = runtime::netif::mac(&self.lan).ok().filter(|m| *m != [0; 6]);
        let mtu = runtime::netif::mtu(&self.lan).ok();
        let addrs: Vec<Ipv6Addr> = runtime::netif::addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a.ifname == self.lan)
            .filter_map(|a| match a.addr {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        let link_local = choose_link_local(&addrs, mac);
        if link_local.is_none() {
            self.link_problem = Some(("NoLinkLocal", format!("{} has no IPv6 link-local address", self.lan)));
        }
        Some(Link { ifindex, mac, mtu, link_local })
    }

    fn update_listeners(&mut self) {
        let Some(pool) = &mut self.listeners else { return };
        match runtime::netif::private_addrs(&self.lan) {
            Ok(addrs) => {
                for (addr, e) in pool.update(&addrs) {
                    log_warn!("/metrics on {addr}: {e}");
                }
            }
            Err(e) => log_warn!("cannot list addresses for /metrics: {e}"),
        }
    }

    /// Reads every queued packet (up to a bound) and hands solicitations to the core.
    fn drain(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        for _ in 0..MAX_PACKETS_PER_TURN {
            let Some(socket) = &self.socket else { return };
            let (n, meta) = match socket.recv(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log_warn!("receiving on {}: {e}", self.lan);
                    return;
                }
            };
            if meta.ifindex != Some(socket.ifindex()) {
                // SO_BINDTODEVICE already keeps other interfaces away; this is the second lock.
                self.metrics.drop_packet(DropReason::OtherInterface);
                continue;
            }
            if meta.truncated {
                self.metrics.drop_packet(DropReason::BadOption);
                continue;
            }
            match self.core.handle_rs(now, *meta.src.ip(), meta.hop_limit, &self.buf[..n]) {
                Ok(answer) => runtime::log_debug!("solicitation from {}: {answer:?}", meta.src.ip()),
                Err(reason) => runtime::log_debug!("dropped a packet from {}: {reason}", meta.src.ip()),
            }
        }
        cx.ready_again(SOCKET);
    }

    fn send(&mut self, now: Instant, t: &Transmit) {
        let Some(socket) = &self.socket else { return };
        match socket.send(t) {
            Ok(()) => {
                self.send_backoff = Duration::from_secs(1);
                match t.kind {
                    Kind::Unsolicited => self.metrics.sent_unsolicited.inc(),
                    Kind::SolicitedMulticast => self.metrics.sent_solicited_multicast.inc(),
                    Kind::SolicitedUnicast => self.metrics.sent_solicited_unicast.inc(),
                }
            }
            Err(e) => {
                self.metrics.send_errors.inc();
                if self.last_send_error_log.is_none_or(|l| now.duration_since(l) >= Duration::from_secs(60)) {
                    log_warn!("sending a router advertisement to {} from {}: {e}", t.dst, t.src);
                    self.last_send_error_log = Some(now);
                }
                // The source address may be gone or not usable yet (DAD): look
                // again soon, backing off while it keeps failing.
                if t.dst.is_multicast() && self.retry_at.is_none() {
                    self.retry_at = Some(now + self.send_backoff);
                    self.send_backoff = (self.send_backoff * 2).min(MAX_SEND_BACKOFF);
                }
            }
        }
    }

    /// Sends what is due and publishes what changed.
    fn flush(&mut self, now: Instant) {
        while let Some(t) = self.core.poll(now) {
            self.send(now, &t);
        }
        for event in self.core.take_events() {
            log_info!("{} {}", event.topic, event.attributes);
            self.control.emit(event.topic, event.attributes);
        }
        if let Some(record) = self.core.take_record(now)
            && let Err(e) = statefile::write_json(&self.paths.record, &record)
        {
            log_warn!("{e}");
        }
        self.publish(now);
    }

    fn publish(&self, now: Instant) {
        let mut status = self.core.status(now);
        let has_prefix = status["prefixes"].as_array().is_some_and(|a| !a.is_empty());
        // Relative times go stale in a published status; wall times do not.
        let wall_now = runtime::clock::wall_now();
        let at = |secs: &Value, later: bool| {
            secs.as_f64().filter(|s| s.is_finite() && *s >= 0.0).map(|s| {
                let d = Duration::from_secs_f64(s);
                let t = if later { wall_now.checked_add(d) } else { wall_now.checked_sub(d) };
                t.map_or(Value::Null, |t| json!(Timestamp::from_system(t).to_string()))
            })
        };
        let next = at(&status["next_unsolicited_in_seconds"], true).unwrap_or(Value::Null);
        let last = at(&status["last_multicast_seconds_ago"], false).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut status {
            fields.remove("next_unsolicited_in_seconds");
            fields.remove("last_multicast_seconds_ago");
            fields.insert("next_unsolicited_at".into(), next);
            fields.insert("last_multicast_at".into(), last);
        }
        let mut c = self.control.update();
        if let Value::Object(fields) = status {
            for (k, v) in fields {
                c.set_field(&k, v);
            }
        }
        c.set_field("interface", json!(self.lan));
        c.set_field("counters", self.metrics.to_json());
        let socket_ok = self.socket.is_some() && self.link.is_some_and(|l| l.link_local.is_some());
        match &self.link_problem {
            Some((reason, message)) if !socket_ok => c.set_condition("InterfaceReady", Some(false), reason, message),
            _ if socket_ok => c.set_condition("InterfaceReady", Some(true), "Listening", &self.lan),
            _ => c.set_condition("InterfaceReady", Some(false), "NotReady", &self.lan),
        }
        if has_prefix {
            c.set_condition("PrefixAvailable", Some(true), "Delegated", "");
        } else {
            c.set_condition("PrefixAvailable", Some(false), "NoPrefix", "no prefix delegated or configured");
        }
        if self.files.problems.is_empty() {
            c.set_condition("InputsValid", Some(true), "Parsed", "");
        } else {
            c.set_condition("InputsValid", Some(false), "InvalidFile", &self.files.problems.join("; "));
        }
        let phase = if self.fatal {
            Phase::Error
        } else if self.core.advertising_prefixes() {
            Phase::Up
        } else {
            Phase::Pending
        };
        c.set_phase(phase);
    }
}

impl Handler for Service {
    fn poll_at(&self) -> Option<Instant> {
        [self.core.poll_at(), self.retry_at].into_iter().flatten().min()
    }

    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        if self.retry_at.is_some_and(|at| at <= now) {
            self.refresh(cx.registry(), now);
        }
        self.flush(now);
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, token: Token, _ready: Ready) {
        if token == SOCKET {
            self.drain(cx);
            self.flush(cx.now());
        }
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        self.metrics.reloads.inc();
        log_info!("reloading");
        self.read_files();
        self.refresh(cx.registry(), now);
        self.update_listeners();
        self.flush(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_link_local_address_derived_from_the_mac() {
        let mac = Some([0x02, 0x73, 0x53, 0x00, 0xca, 0xfe]);
        let eui: Ipv6Addr = "fe80::73:53ff:fe00:cafe".parse().unwrap();
        let other: Ipv6Addr = "fe80::1".parse().unwrap();
        let global: Ipv6Addr = "2a02:168:4a00::1".parse().unwrap();
        assert_eq!(choose_link_local(&[global, other, eui], mac), Some(eui));
        assert_eq!(choose_link_local(&[global, eui, other], None), Some(other), "the lowest otherwise");
        assert_eq!(choose_link_local(&[global], mac), None);
    }
}
