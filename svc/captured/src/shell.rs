//! The capture loop: one `SOCK_RAW` packet socket per interface with the
//! filter attached before binding, drained into the hub; the HTTP listeners
//! on private addresses; the files; signals and the control API.
//!
//! Interfaces may appear late (netconfigd renames NICs to `uplink0`/`lan0`)
//! or be re-created: a housekeeping timer opens what is missing and reopens a
//! socket whose interface index changed. Packets are stamped with the wall
//! clock when read (`runtime::clock::wall_now`; rustix has no
//! `SO_TIMESTAMPNS` control messages): stamps are within a loop turn of the
//! kernel's, and follow the wall clock when NTP first sets it.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use captured::config::{self, Settings};
use captured::filter;
use captured::hub::Hub;
use captured::pcapng::SNAPLEN;
use captured::ring::Iface;
use runtime::bpf::SockFilter;
use runtime::control::{Control, Phase};
use runtime::http::{BasicAuth, ListenerSet};
use runtime::httpd;
use runtime::mio::{Interest, Registry, Token};
use runtime::packet::{ETH_P_ALL, Framing, PACKET_OUTGOING, PacketSocket};
use runtime::service::Base;
use runtime::{Context, Handler, Ready, clock, log_info, log_warn, netif};
use serde_json::json;

use crate::server::{self, Shared, wall_ns};

const HOUSEKEEPING: u64 = 1;
/// How often to look for a missing interface.
const LINK_RETRY: Duration = Duration::from_secs(1);
/// How often to check interface indexes and publish the status otherwise.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10);
/// Packets read per interface per wake-up before letting timers run.
const BATCH: usize = 256;
/// Receive buffer: a 64 KiB GSO frame plus its headers, so `orig_len` is right for it.
const RECV_BUFFER: usize = 65_600;
/// The packet sockets' receive buffer.
const SOCKET_BUFFER: usize = 4 << 20;

struct Link {
    socket: PacketSocket,
    ifindex: u32,
}

/// The service.
pub struct Shell {
    names: [String; 2],
    lan: String,
    perm: PathBuf,
    control: Control,
    shared: Arc<Shared>,
    links: [Option<Link>; 2],
    settings: Settings,
    filter: Vec<SockFilter>,
    pool: ListenerSet,
    buf: Vec<u8>,
    waiting_logged: [bool; 2],
    password_logged: bool,
    /// Interfaces whose socket was left with packets after a bounded drain
    /// (mio is edge-triggered: it will not report them again), and since when.
    backlog: [bool; 2],
    backlog_at: Option<Instant>,
}

fn token(iface: Iface) -> Token {
    Token(iface.index())
}

/// Runs captured until it is stopped.
pub fn run(mut base: Base) -> Result<i32, Box<dyn std::error::Error>> {
    let port: u16 = match base.args.value("port") {
        Some(p) => p.parse().map_err(|_| format!("--port {p}: not a port"))?,
        None => 5022,
    };
    let names = [base.args.uplink.clone(), base.args.lan.clone()];
    let (settings, config_error) = match Settings::load(&base.args.perm) {
        Ok(s) => (s, None),
        Err(e) => (Settings::default(), Some(e.to_string())),
    };
    let filter = filter::program(&settings.extra)?;
    let shared =
        Arc::new(Shared::new(Hub::new(settings.limits), names.clone(), settings.max_clients, base.control.clone()));
    let handler_shared = Arc::clone(&shared);
    let handler: httpd::Handler = Arc::new(move |request: &httpd::Request| server::handle(&handler_shared, request));
    let mut shell = Shell {
        names,
        lan: base.args.lan.clone(),
        perm: base.args.perm.clone(),
        control: base.control.clone(),
        shared,
        links: [None, None],
        settings,
        filter,
        pool: ListenerSet::new(&base.httpd, port, handler),
        buf: vec![0; RECV_BUFFER],
        waiting_logged: [false; 2],
        password_logged: false,
        backlog: [false; 2],
        backlog_at: None,
    };
    match config_error {
        Some(e) => {
            log_warn!("{e}; using the defaults");
            shell.control.set_condition("ConfigValid", Some(false), "Invalid", &e);
        }
        None => shell.control.set_condition("ConfigValid", Some(true), "Loaded", &shell.settings_text()),
    }
    shell.load_password();
    shell.update_listeners();
    shell.open_links(base.event_loop.registry());
    shell.publish();
    let now = clock::now();
    let next = if shell.links.iter().all(Option::is_some) { HOUSEKEEPING_EVERY } else { LINK_RETRY };
    base.event_loop.add_timer(now + next, HOUSEKEEPING);
    let code = base.event_loop.run(&mut shell)?;
    shell.shared.hub().close();
    shell.shared.wake_clients();
    Ok(code)
}

impl Shell {
    fn settings_text(&self) -> String {
        let s = &self.settings;
        format!(
            "ring {} packets / {} bytes, extra UDP ports {:?}, extra TCP ports {:?}, {} clients",
            s.limits.max_packets, s.limits.max_bytes, s.extra.udp_ports, s.extra.tcp_ports, s.max_clients
        )
    }

    fn load_password(&mut self) {
        let path = self.perm.join("router/password");
        let auth = match BasicAuth::from_file(&path) {
            Ok(a) => {
                self.password_logged = false;
                self.control.set_condition("PasswordSet", Some(true), "Loaded", &path.display().to_string());
                Some(a)
            }
            Err(e) => {
                if !self.password_logged {
                    log_warn!("{}: {e}; every stream request is refused until it exists", path.display());
                    self.password_logged = true;
                }
                self.control.set_condition("PasswordSet", Some(false), "Missing", &format!("{}: {e}", path.display()));
                None
            }
        };
        *self.shared.auth.write().unwrap_or_else(PoisonError::into_inner) = auth;
    }

    fn update_listeners(&mut self) {
        match netif::private_addrs(&self.lan) {
            Ok(addrs) => {
                for (addr, e) in self.pool.update(&addrs) {
                    log_warn!("cannot listen on {addr}: {e}");
                }
            }
            Err(e) => log_warn!("cannot list addresses: {e}"),
        }
        let listening = self.pool.local_addrs();
        let mut c = self.control.update();
        c.set_phase(if listening.is_empty() { Phase::Pending } else { Phase::Up });
        c.set_field("listening", json!(listening.iter().map(ToString::to_string).collect::<Vec<_>>()));
    }

    fn open_links(&mut self, registry: &Registry) {
        for iface in Iface::ALL {
            self.open_link(registry, iface);
        }
    }

    fn open_link(&mut self, registry: &Registry, iface: Iface) {
        let i = iface.index();
        let name = self.names[i].clone();
        let ifindex = match netif::index(&name) {
            Ok(n) => n,
            Err(e) => {
                if !self.waiting_logged[i] {
                    log_warn!("waiting for {name} to appear ({e})");
                    self.waiting_logged[i] = true;
                }
                self.close_link(registry, iface, "InterfaceMissing", &e.to_string());
                return;
            }
        };
        if self.links[i].as_ref().is_some_and(|l| l.ifindex == ifindex) {
            return;
        }
        self.close_link(registry, iface, "Reopening", "");
        let opened = PacketSocket::open(ifindex, ETH_P_ALL, Framing::Raw, Some(&self.filter)).and_then(|mut socket| {
            // Room for a burst while the loop is busy (the kernel caps it at net.core.rmem_max).
            if let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(socket.as_fd(), SOCKET_BUFFER) {
                log_warn!("{name}: cannot enlarge the receive buffer: {e}");
            }
            registry.register(&mut socket, token(iface), Interest::READABLE)?;
            Ok(socket)
        });
        match opened {
            Ok(socket) => {
                log_info!("capturing on {name} (index {ifindex})");
                self.waiting_logged[i] = false;
                self.links[i] = Some(Link { socket, ifindex });
                self.shared.capturing[i].store(1, Ordering::Relaxed);
                self.control.set_condition(
                    condition(iface),
                    Some(true),
                    "Capturing",
                    &format!("{name} index {ifindex}"),
                );
                // Packets queued before the registration would wait for the next one.
                self.drain_noting_backlog(iface, clock::now());
            }
            Err(e) => {
                log_warn!("cannot capture on {name}: {e}; retrying");
                self.close_link(registry, iface, "SocketFailed", &e.to_string());
            }
        }
    }

    fn close_link(&mut self, registry: &Registry, iface: Iface, reason: &str, message: &str) {
        let i = iface.index();
        if let Some(mut link) = self.links[i].take() {
            let _ = registry.deregister(&mut link.socket);
        }
        self.shared.capturing[i].store(0, Ordering::Relaxed);
        self.control.set_condition(condition(iface), Some(false), reason, message);
    }

    /// Reads up to [`BATCH`] packets; returns whether more may be waiting.
    fn drain(&mut self, iface: Iface) -> bool {
        let i = iface.index();
        let Some(link) = &self.links[i] else { return false };
        let mut got = Vec::new();
        let mut more = false;
        let mut failed = None;
        for _ in 0..BATCH {
            match link.socket.recv(&mut self.buf) {
                Ok((n, meta)) => {
                    let stamp = wall_ns(clock::wall_now());
                    let kept = n.min(SNAPLEN as usize);
                    got.push((stamp, n, meta.pkttype == PACKET_OUTGOING, self.buf[..kept].to_vec()));
                    more = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.shared.receive_errors[i].fetch_add(1, Ordering::Relaxed);
                    failed = Some(e);
                    more = false;
                    break;
                }
            }
        }
        if !got.is_empty() {
            let mut hub = self.shared.hub();
            for (stamp, len, outgoing, data) in &got {
                hub.push(iface, *stamp, u32::try_from(*len).unwrap_or(u32::MAX), *outgoing, data);
            }
            drop(hub);
            self.shared.wake_clients();
        }
        if let Some(e) = failed {
            // ENETDOWN and friends: the housekeeping timer reopens the socket.
            log_warn!("reading {}: {e}", self.names[i]);
        }
        more
    }

    fn drain_noting_backlog(&mut self, iface: Iface, now: Instant) {
        let more = self.drain(iface);
        self.backlog[iface.index()] = more;
        if more {
            self.backlog_at.get_or_insert(now);
        } else if !self.backlog.iter().any(|b| *b) {
            self.backlog_at = None;
        }
    }

    fn reload(&mut self, registry: &Registry) {
        log_info!("reloading");
        self.load_password();
        match Settings::load(&self.perm) {
            Ok(s) => {
                let filter_changed = s.extra != self.settings.extra;
                match filter::program(&s.extra) {
                    Ok(program) => {
                        self.shared.hub().set_limits(s.limits);
                        self.shared.max_clients.store(s.max_clients, Ordering::Relaxed);
                        self.settings = s;
                        self.filter = program;
                        self.control.set_condition("ConfigValid", Some(true), "Loaded", &self.settings_text());
                        if filter_changed {
                            for iface in Iface::ALL {
                                self.close_link(registry, iface, "Reopening", "the filter changed");
                            }
                        }
                    }
                    Err(e) => self.config_invalid(&format!("{}: {e}", config::path(&self.perm).display())),
                }
            }
            Err(e) => self.config_invalid(&e.to_string()),
        }
        self.open_links(registry);
        self.update_listeners();
        self.publish();
    }

    fn config_invalid(&self, why: &str) {
        log_warn!("{why}; keeping the settings in use");
        self.control.set_condition("ConfigValid", Some(false), "Invalid", why);
    }

    fn publish(&self) {
        let stats = self.shared.hub().stats();
        let limits = self.settings.limits;
        let mut c = self.control.update();
        c.set_field(
            "ring",
            json!({
                "packets": stats.ring_packets,
                "bytes": stats.ring_bytes,
                "max_packets": limits.max_packets,
                "max_bytes": limits.max_bytes,
                "evicted": stats.evicted,
            }),
        );
        c.set_field(
            "captured",
            json!({
                self.names[0].clone(): stats.captured[0],
                self.names[1].clone(): stats.captured[1],
            }),
        );
        c.set_field("clients", json!({"streaming": stats.clients, "dropped": stats.client_drops}));
    }
}

fn condition(iface: Iface) -> &'static str {
    match iface {
        Iface::Uplink => "UplinkCapturing",
        Iface::Lan => "LanCapturing",
    }
}

impl Handler for Shell {
    fn poll_at(&self) -> Option<Instant> {
        self.backlog_at
    }

    /// A bounded drain left packets behind: read on, after the timers had their turn.
    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        self.backlog_at = None;
        for iface in Iface::ALL {
            if std::mem::take(&mut self.backlog[iface.index()]) {
                self.drain_noting_backlog(iface, cx.now());
            }
        }
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, token: Token, _ready: Ready) {
        let Some(iface) = Iface::ALL.into_iter().find(|i| i.index() == token.0) else {
            return;
        };
        self.drain_noting_backlog(iface, cx.now());
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
        if tag != HOUSEKEEPING {
            return;
        }
        self.open_links(cx.registry());
        self.publish();
        let next = if self.links.iter().all(Option::is_some) { HOUSEKEEPING_EVERY } else { LINK_RETRY };
        cx.add_timer(cx.now() + next, HOUSEKEEPING);
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        self.reload(cx.registry());
    }

    fn on_stop(&mut self, cx: &mut Context<'_>) {
        log_info!("stopping");
        self.shared.hub().close();
        self.shared.wake_clients();
        cx.stop(0);
    }
}
