//! The event loop around the core: reads interfaces.json and config.json,
//! owns the sockets, feeds datagrams to [`Server`], sends its replies, hands
//! lease changes to the writer thread, runs the HTTP pages, and keeps the
//! control API's phase, conditions and fields.
//!
//! Phase `Pending` while lan0 has no IPv4 address in interfaces.json or its
//! sockets cannot be opened (the interface may not exist yet: netconfigd
//! renames interfaces); retried every few seconds and on SIGUSR1. `Up` while
//! serving.

use std::error::Error;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use runtime::control::{Control, Phase};
use runtime::http::ListenerSet;
use runtime::perm::{Dhcp4dLease, Interfaces};
use runtime::service::Base;
use runtime::statefile::{self, StateError};
use runtime::{Context, Handler, Ready};
use serde_json::json;

use dhcp4d::config::{Config, ConfigError};
use dhcp4d::stats::Stats;
use dhcp4d::{Reply, Server};

use crate::pages::{self, PageState};
use crate::sockets::Sockets;
use crate::writer::{Job, LeaseWriter, Settings};

const UDP: Token = Token(0);
const RETRY_TIMER: u64 = 1;
const STATUS_TIMER: u64 = 2;
/// How often inputs are retried while `Pending`.
const RETRY_EVERY: Duration = Duration::from_secs(3);
/// How often the control API's fields are refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Datagrams handled per wake-up before the loop looks at its timers again.
const MAX_PER_WAKE: usize = 256;
/// The default status page port (router7's).
pub const HTTP_PORT: u16 = 8067;
/// Default shortest time between two writes of leases.json: the bound within
/// which changes are coalesced (the crate README says how it was chosen).
pub const DEFAULT_WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// Where the status pages listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSpec {
    /// The port.
    pub port: u16,
    /// Fixed addresses; `None` = the private addresses, followed on SIGUSR1.
    pub addrs: Option<Vec<IpAddr>>,
}

impl HttpSpec {
    /// Parses `PORT`, `:PORT`, `ADDR:PORT` or `ADDR,ADDR:PORT` (`[v6]` in brackets).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("--http {text:?}: expected PORT or ADDR[,ADDR…]:PORT");
        let (addrs, port) = text.rsplit_once(':').unwrap_or(("", text));
        let port: u16 = port.parse().map_err(|_| bad())?;
        if addrs.is_empty() {
            return Ok(Self { port, addrs: None });
        }
        let list = addrs
            .split(',')
            .map(|a| a.trim().trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        Ok(Self { port, addrs: Some(list) })
    }
}

struct Shell {
    perm: PathBuf,
    lan: String,
    control: Control,
    stats: Arc<Stats>,
    pages: Arc<PageState>,
    writer: LeaseWriter,
    server: Option<Server>,
    sockets: Option<Sockets>,
    seq: u64,
    http: ListenerSet,
    http_addrs: Option<Vec<IpAddr>>,
    retry_armed: bool,
    listeners_incomplete: bool,
    last_config_text: Option<String>,
    last_interfaces: Option<Interfaces>,
    buf: Vec<u8>,
    send_errors_logged: u64,
    exhausted_reported: u64,
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut b)).is_ok() {
        return u64::from_ne_bytes(b);
    }
    let t = runtime::clock::wall_now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    t.as_nanos() as u64 ^ u64::from(std::process::id())
}

/// The router's own hostname, which no client may take.
fn router_hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Runs the service (called by `runtime::service::main`).
pub fn run(base: Base) -> Result<i32, Box<dyn Error>> {
    let Base { args, mut event_loop, control, httpd, pid_file, socket } = base;
    let http_spec = match args.value("http") {
        Some(t) => HttpSpec::parse(t)?,
        None => HttpSpec { port: HTTP_PORT, addrs: None },
    };
    let interval = match args.value("write-interval") {
        Some(ms) => {
            Duration::from_millis(ms.parse().map_err(|_| format!("--write-interval {ms:?}: not milliseconds"))?)
        }
        None => DEFAULT_WRITE_INTERVAL,
    };
    let stats = Arc::new(Stats::default());
    let pages = Arc::new(PageState::new(Arc::clone(&stats)));
    let writer = LeaseWriter::start(Settings {
        path: runtime::perm::dhcp4d_leases_path(&args.perm),
        run: args.run.clone(),
        interval,
        control: control.clone(),
        stats: Arc::clone(&stats),
        published: Arc::clone(&pages.leases),
    })?;
    let mut shell = Shell {
        perm: args.perm.clone(),
        lan: args.lan.clone(),
        control,
        stats,
        http: ListenerSet::new(&httpd, http_spec.port, pages::handler(Arc::clone(&pages))),
        pages,
        writer,
        server: None,
        sockets: None,
        seq: 0,
        http_addrs: http_spec.addrs,
        retry_armed: false,
        listeners_incomplete: false,
        last_config_text: None,
        last_interfaces: None,
        buf: vec![0; 4096],
        send_errors_logged: 0,
        exhausted_reported: 0,
    };
    let now = runtime::clock::now();
    shell.refresh(event_loop.registry(), now);
    if shell.needs_retry() {
        event_loop.add_timer(now + RETRY_EVERY, RETRY_TIMER);
        shell.retry_armed = true;
    }
    event_loop.add_timer(now + STATUS_EVERY, STATUS_TIMER);
    let code = event_loop.run(&mut shell)?;
    drop(shell);
    drop(pid_file);
    drop(socket);
    Ok(code)
}

impl Shell {
    fn needs_retry(&self) -> bool {
        self.server.is_none() || self.sockets.is_none()
    }

    fn pending(&self, reason: &str, message: &str) {
        let mut c = self.control.update();
        c.set_phase(Phase::Pending);
        c.set_condition("Serving", Some(false), reason, message);
    }

    /// Reads interfaces.json; the last good copy when it is corrupt or gone.
    fn read_interfaces(&mut self) -> Result<Interfaces, String> {
        let path = runtime::perm::interfaces_path(&self.perm);
        let problem = match statefile::read_json::<Interfaces>(&path) {
            Ok(Some(i)) => {
                // Once per new content, not on every SIGUSR1.
                if self.last_interfaces.as_ref() != Some(&i) {
                    for f in i.unknown_fields() {
                        runtime::log_warn!("{}: unknown field {f} (ignored)", path.display());
                    }
                }
                self.last_interfaces = Some(i.clone());
                return Ok(i);
            }
            Ok(None) => format!("{} does not exist", path.display()),
            Err(e) => e.to_string(),
        };
        match &self.last_interfaces {
            Some(i) => {
                runtime::log_error!("{problem}; keeping the last good copy");
                Ok(i.clone())
            }
            None => Err(problem),
        }
    }

    /// The configuration for `server`/`prefix`: config.json when it is good,
    /// else its last good text, else router7's defaults.
    fn config_for(&mut self, server: Ipv4Addr, prefix: u8) -> Config {
        let path = self.perm.join("dhcp4d/config.json");
        let text = match statefile::read(&path) {
            Ok(Some(bytes)) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(None) => None,
            Err(e) => {
                runtime::log_error!("{e}");
                self.last_config_text.clone()
            }
        };
        let parsed = text.as_deref().map(|t| Config::from_file(server, prefix, &path, t));
        let cfg = match parsed {
            None => {
                self.last_config_text = None;
                self.control.set_condition("ConfigValid", Some(true), "Defaults", "no config.json: router7's defaults");
                Config::defaults(server, prefix)
            }
            Some(Ok(cfg)) => {
                self.last_config_text = text;
                self.control.set_condition("ConfigValid", Some(true), "Loaded", "config.json is valid");
                cfg
            }
            Some(Err(e)) => self.config_after_error(server, prefix, &path, &e),
        };
        cfg.with_router_hostname(&router_hostname())
    }

    fn config_after_error(&mut self, server: Ipv4Addr, prefix: u8, path: &Path, e: &ConfigError) -> Config {
        self.control.set_condition("ConfigValid", Some(false), "Invalid", &e.to_string());
        let last = self.last_config_text.as_deref().map(|t| Config::from_file(server, prefix, path, t));
        match last {
            Some(Ok(cfg)) => {
                runtime::log_error!("{e}; keeping the last good configuration");
                cfg
            }
            _ => {
                runtime::log_error!("{e}; serving router7's defaults until it is fixed");
                Config::defaults(server, prefix)
            }
        }
    }

    /// Reads leases.json; a corrupt file is moved aside (and reported) so the
    /// next write does not destroy what a person may still recover from it.
    fn read_leases(&self) -> (Vec<Dhcp4dLease>, bool) {
        let path = runtime::perm::dhcp4d_leases_path(&self.perm);
        match statefile::read_json::<Vec<Dhcp4dLease>>(&path) {
            Ok(l) => (l.unwrap_or_default(), false),
            Err(e @ StateError::Corrupt { .. }) => {
                let secs = runtime::clock::wall_now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                let aside = path.with_extension(format!("json.corrupt-{}", secs.as_secs()));
                let moved = std::fs::rename(&path, &aside);
                runtime::log_error!(
                    "{e}; starting without its leases (moved to {}: {})",
                    aside.display(),
                    moved.map_or_else(|e| e.to_string(), |()| "ok".into())
                );
                (Vec::new(), true)
            }
            Err(e) => {
                runtime::log_error!("{e}; starting without its leases");
                (Vec::new(), false)
            }
        }
    }

    /// (Re)reads the inputs and brings the server, sockets and listeners in line.
    fn refresh(&mut self, registry: &Registry, now: Instant) {
        let interfaces = match self.read_interfaces() {
            Ok(i) => i,
            Err(why) => return self.pending("NoInterfaces", &why),
        };
        let Some((server_addr, prefix)) = interfaces.ipv4_of(&self.lan) else {
            let why = format!("{} has no IPv4 addr in interfaces.json", self.lan);
            return self.pending("NoAddress", &why);
        };
        let cfg = self.config_for(server_addr, prefix);
        self.apply_config(cfg, now);
        self.open_sockets(registry);
        self.update_listeners();
        self.flush_to_writer();
        self.publish_status();
    }

    fn apply_config(&mut self, cfg: Config, now: Instant) {
        *self.pages.statics.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(cfg.static_leases.clone());
        *self.pages.lease_time.write().unwrap_or_else(std::sync::PoisonError::into_inner) = cfg.lease_time;
        match &mut self.server {
            None => {
                let server_addr = cfg.server;
                runtime::log_info!(
                    "serving {} from {server_addr}: pool {}–{}, {} s leases",
                    cfg.subnet,
                    cfg.pool_start,
                    cfg.pool_end,
                    cfg.lease_time.as_secs()
                );
                let mut server = Server::new(cfg, random_seed(), Arc::clone(&self.stats));
                let (stored, moved_aside) = self.read_leases();
                let warnings = server.load(&stored, now, runtime::clock::wall_now());
                for w in &warnings {
                    runtime::log_warn!("leases.json: {w}");
                }
                runtime::log_info!("{} leases loaded", server.records().len());
                self.seq += 1;
                self.writer.send(Job::Reset {
                    seq: self.seq,
                    server: server_addr,
                    records: server.records(),
                    // Entries left out are forgotten at the next write; a file
                    // moved aside is replaced at once so dnsd reads valid JSON.
                    write: moved_aside,
                });
                self.server = Some(server);
            }
            Some(server) if *server.config() != cfg => {
                runtime::log_info!("configuration changed: serving {} from {}", cfg.subnet, cfg.server);
                let server_addr = cfg.server;
                for w in server.reconfigure(cfg, now) {
                    runtime::log_warn!("{w}");
                }
                // The writer gets the whole table: `num` counts from the server address.
                server.take_changes();
                self.seq += 1;
                self.writer.send(Job::Reset {
                    seq: self.seq,
                    server: server_addr,
                    records: server.records(),
                    write: true,
                });
            }
            Some(_) => {}
        }
    }

    fn open_sockets(&mut self, registry: &Registry) {
        let index = runtime::netif::index(&self.lan).ok();
        if let Some(s) = &self.sockets
            && Some(s.ifindex) == index
        {
            return;
        }
        if let Some(mut old) = self.sockets.take() {
            runtime::log_warn!("{} changed (index {} → {index:?}); reopening", self.lan, old.ifindex);
            let _ = registry.deregister(&mut old.udp);
        }
        match Sockets::open(&self.lan) {
            Ok(mut s) => match registry.register(&mut s.udp, UDP, Interest::READABLE) {
                Ok(()) => {
                    runtime::log_info!("listening on {} (UDP port 67)", self.lan);
                    self.sockets = Some(s);
                }
                Err(e) => self.pending("SocketError", &format!("registering the UDP socket: {e}")),
            },
            Err(e) => {
                runtime::log_warn!("cannot open sockets on {}: {e}", self.lan);
                self.pending("SocketError", &format!("{}: {e}", self.lan));
            }
        }
    }

    fn update_listeners(&mut self) {
        let addrs: Vec<(IpAddr, u32)> = match &self.http_addrs {
            Some(fixed) => fixed.iter().map(|a| (*a, 0)).collect(),
            None => match runtime::netif::private_addrs(&self.lan) {
                Ok(a) => a,
                Err(e) => {
                    runtime::log_warn!("listing addresses: {e}");
                    return;
                }
            },
        };
        let errors = self.http.update(&addrs);
        // An address still in duplicate address detection cannot be bound
        // yet; the status timer tries again.
        for (addr, e) in &errors {
            if !self.listeners_incomplete {
                runtime::log_warn!("status page on {addr}: {e}; retrying");
            }
        }
        self.listeners_incomplete = !errors.is_empty();
    }

    fn publish_status(&self) {
        let Some(server) = &self.server else { return };
        let cfg = server.config();
        let mut c = self.control.update();
        if self.sockets.is_some() {
            c.set_phase(Phase::Up);
            c.set_condition("Serving", Some(true), "Listening", &format!("DHCP on {}", self.lan));
        }
        c.set_field("server", json!(cfg.server.to_string()));
        c.set_field("subnet", json!(cfg.subnet.to_string()));
        c.set_field("pool", json!({"start": cfg.pool_start.to_string(), "end": cfg.pool_end.to_string()}));
        c.set_field("lease_seconds", json!(cfg.lease_time.as_secs()));
        c.set_field("leases_in_use", json!(server.table().in_use()));
        c.set_field("pool_free", json!(server.table().free_count()));
    }

    /// [`Shell::refresh`], and the retry timer armed if it left us pending.
    fn refresh_or_retry(&mut self, cx: &mut Context<'_>) {
        self.refresh(cx.registry(), cx.now());
        if self.needs_retry() && !self.retry_armed {
            cx.add_timer(cx.now() + RETRY_EVERY, RETRY_TIMER);
            self.retry_armed = true;
        }
    }

    /// Hands this turn's lease changes and events to the writer.
    fn flush_to_writer(&mut self) {
        let Some(server) = &mut self.server else { return };
        let changes = server.take_changes();
        let events = server.take_events();
        if changes.is_empty() && events.is_empty() {
            return;
        }
        for e in &events {
            runtime::log_info!("{} {}", e.topic(), e.attributes());
        }
        self.seq += 1;
        self.writer.send(Job::Batch { seq: self.seq, changes, events });
    }

    fn send(&mut self, reply: &Reply) {
        let (Some(sockets), Some(server)) = (&self.sockets, &self.server) else { return };
        if let Err(e) = sockets.send(reply, server.config().server) {
            self.stats.send_errors.inc();
            // One line per thousand failures is enough to see it in the log.
            if self.send_errors_logged.is_multiple_of(1000) {
                runtime::log_warn!("sending {} to {:?}: {e}", reply.kind.name(), reply.dest);
            }
            self.send_errors_logged += 1;
        }
    }

    fn receive(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let wall = runtime::clock::wall_now();
        let mut drained = false;
        for _ in 0..MAX_PER_WAKE {
            let (Some(sockets), Some(server)) = (&self.sockets, &mut self.server) else { return };
            let n = match sockets.udp.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    runtime::log_warn!("receiving on {}: {e}", self.lan);
                    drained = true;
                    break;
                }
            };
            if let Some(reply) = server.handle_datagram(now, wall, &self.buf[..n]) {
                self.send(&reply);
            }
        }
        if !drained {
            cx.ready_again(UDP);
        }
        self.flush_to_writer();
    }
}

impl Handler for Shell {
    fn poll_at(&self) -> Option<Instant> {
        self.server.as_ref().and_then(Server::poll_at)
    }

    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        if let Some(s) = &mut self.server {
            s.advance(cx.now());
        }
        self.flush_to_writer();
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, token: Token, _ready: Ready) {
        if token == UDP {
            self.receive(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
        match tag {
            RETRY_TIMER => {
                self.retry_armed = false;
                self.refresh(cx.registry(), cx.now());
                if self.needs_retry() {
                    cx.add_timer(cx.now() + RETRY_EVERY, RETRY_TIMER);
                    self.retry_armed = true;
                }
            }
            STATUS_TIMER => {
                if self.listeners_incomplete {
                    self.update_listeners();
                }
                // lan0 deleted and re-created (netconfigd renames interfaces)
                // leaves the sockets on a dead index.
                if self.sockets.as_ref().is_some_and(|s| runtime::netif::index(&self.lan).ok() != Some(s.ifindex)) {
                    self.refresh_or_retry(cx);
                }
                let exhausted = self.stats.pool_exhausted.get();
                if exhausted > self.exhausted_reported {
                    let size = self.server.as_ref().map_or(0, |s| s.config().pool_size());
                    runtime::log_warn!(
                        "pool of {size} exhausted: {} DISCOVERs left unanswered",
                        exhausted - self.exhausted_reported
                    );
                    self.exhausted_reported = exhausted;
                }
                self.publish_status();
                cx.add_timer(cx.now() + STATUS_EVERY, STATUS_TIMER);
            }
            _ => {}
        }
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        self.refresh_or_retry(cx);
    }

    fn on_stop(&mut self, cx: &mut Context<'_>) {
        // Every acknowledged lease is on disk before we go.
        self.flush_to_writer();
        let seq = self.seq + 1;
        if self.writer.stop(seq, Duration::from_secs(10)) {
            runtime::log_info!("leases written; stopping");
        } else {
            runtime::log_error!("the lease writer did not finish within 10 s; stopping anyway");
        }
        cx.stop(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_specs() {
        let p = |t| HttpSpec::parse(t);
        assert_eq!(p("8067"), Ok(HttpSpec { port: 8067, addrs: None }));
        assert_eq!(p(":18067"), Ok(HttpSpec { port: 18067, addrs: None }));
        assert_eq!(p("127.0.0.1:9").unwrap().addrs, Some(vec!["127.0.0.1".parse().unwrap()]));
        assert_eq!(
            p("127.0.0.1,[::1]:9").unwrap().addrs,
            Some(vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()])
        );
        for bad in ["", "x", "1.2.3.4", "1.2.3.4:x", "nope:80", "70000"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
