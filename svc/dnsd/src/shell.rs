//! The loop around the core: the listeners on the private addresses
//! (`listeners`), TCP clients (`tcp`), the pool of upstream sockets and
//! upstream TCP connections, the metrics listener, SIGUSR1 and the control
//! API, moderation under load (`moderation`), and a housekeeping timer.
//!
//! Work per wake-up is bounded: at most [`BATCH`] datagrams or TCP messages
//! per source, then the source is remembered and served on the next turn (the
//! loop does not sleep while any is left), so a flood on one socket cannot
//! starve the others or the timers.

use std::collections::HashMap;
use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnsd::config;
use dnsd::local::LocalZone;
use dnsd::metrics::{Discard, DnsMetrics};
use dnsd::resolver::{ClientAddr, Handled, Resolver, Transmit, Tunables};
use dnsd::upstream::{HealthEvent, UpstreamSpec};
use mio::{Interest, Registry, Token};
use runtime::control::{Control, Phase};
use runtime::http::ListenerSet;
use runtime::httpd;
use runtime::service::Base;
use runtime::{Context, Handler, Ready, log_error, log_info, log_warn};
use serde_json::json;

use crate::inputs::Inputs;
use crate::listeners::{self, Batch, Listeners};
use crate::moderation::Moderation;
use crate::net::{self, OsEntropy, PoolSocket};
use crate::tcp::{self, ClientConn, Next, QueryResult, UpstreamConn, UpstreamIo};

/// Datagrams or messages handled per source per wake-up.
const BATCH: usize = 64;
/// Most TCP client connections.
const MAX_TCP_CLIENTS: usize = 64;
/// Most upstream TCP connections.
const MAX_UPSTREAM_TCP: usize = 64;
/// The metrics port.
const HTTP_PORT: u16 = 8053;
/// DNS.
const DNS_PORT: u16 = 53;
/// Housekeeping period.
const TICK: Duration = Duration::from_secs(1);
/// How often listeners that failed to bind are tried again.
const LISTEN_RETRY: Duration = Duration::from_secs(10);
const HOUSEKEEPING: u64 = 1;

const UDP_LISTENER: usize = 1;
const TCP_LISTENER: usize = 2;
const TCP_CLIENT: usize = 3;
const POOL: usize = 4;
const UPSTREAM_TCP: usize = 5;
const MODERATION: usize = 6;
const KIND_SHIFT: u32 = 48;

fn token(kind: usize, n: u64) -> Token {
    Token((kind << KIND_SHIFT) | (n as usize & ((1 << KIND_SHIFT) - 1)))
}

/// The token of UDP listener `id`.
pub fn udp_token(id: u32) -> Token {
    token(UDP_LISTENER, u64::from(id))
}

fn split(t: Token) -> (usize, u64) {
    (t.0 >> KIND_SHIFT, (t.0 & ((1 << KIND_SHIFT) - 1)) as u64)
}

/// The service: see the module docs.
pub struct Dnsd {
    perm: PathBuf,
    lan: String,
    cli_listen: Vec<SocketAddr>,
    control: Control,
    metrics: Arc<DnsMetrics>,
    resolver: Resolver,
    inputs: Inputs,
    upstreams: Vec<UpstreamSpec>,
    local_names: usize,
    listeners: Listeners,
    clients: HashMap<u64, ClientConn>,
    next_conn: u64,
    pool: Vec<Option<PoolSocket>>,
    upstream_tcp: HashMap<u64, UpstreamConn>,
    http: Option<ListenerSet>,
    busy: Vec<Token>,
    buf: Vec<u8>,
    out: Vec<u8>,
    batch: Batch,
    moderation: Option<Moderation>,
    rng: OsEntropy,
    listen_errors: Vec<String>,
    last_listen_try: Instant,
    epoch: Instant,
}

fn parse_listen(text: &str) -> Result<Vec<SocketAddr>, String> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| config::parse_addr(s, DNS_PORT).map_err(|e| format!("--listen: {e}")))
        .collect()
}

/// Runs dnsd until it is stopped.
pub fn run(base: Base) -> Result<i32, Box<dyn Error>> {
    let Base { args, mut event_loop, control, httpd, pid_file, socket } = base;
    let cli_listen = args.value("listen").map(parse_listen).transpose()?.unwrap_or_default();
    let http_port = match args.value("http-port") {
        Some(p) => p.parse::<u16>().map_err(|_| format!("--http-port: not a port: {p:?}"))?,
        None => HTTP_PORT,
    };
    let metrics = Arc::new(DnsMetrics::default());
    let now = runtime::clock::now();
    let resolver = Resolver::new(Tunables::default(), Arc::clone(&metrics), Box::new(OsEntropy::new()));
    let http = (http_port != 0).then(|| {
        let m = Arc::clone(&metrics);
        let handler: httpd::Handler = Arc::new(move |req: &httpd::Request| serve_http(req, &m).into());
        ListenerSet::new(&httpd, http_port, handler)
    });
    let slots = usize::from(resolver.udp_slots());
    let mut d = Dnsd {
        perm: args.perm.clone(),
        lan: args.lan.clone(),
        cli_listen,
        control,
        metrics,
        resolver,
        inputs: Inputs::default(),
        upstreams: Vec::new(),
        local_names: 0,
        listeners: Listeners::default(),
        clients: HashMap::new(),
        next_conn: 1,
        pool: (0..slots).map(|_| None).collect(),
        upstream_tcp: HashMap::new(),
        http,
        busy: Vec::new(),
        buf: vec![0; 65_536],
        out: Vec::with_capacity(4096),
        batch: Batch::new(),
        moderation: None,
        rng: OsEntropy::new(),
        listen_errors: Vec::new(),
        last_listen_try: now,
        epoch: now,
    };
    for slot in 0..slots {
        d.open_slot(event_loop.registry(), slot as u8);
    }
    match Moderation::new() {
        Ok(m) => {
            use std::os::fd::AsRawFd;
            let fd = m.timer().as_raw_fd();
            event_loop.registry().register(&mut mio::unix::SourceFd(&fd), token(MODERATION, 0), Interest::READABLE)?;
            d.moderation = Some(m);
        }
        Err(e) => log_warn!("no timerfd ({e}); busy listeners are not moderated"),
    }
    d.reload(event_loop.registry(), now);
    event_loop.add_timer(now + TICK, HOUSEKEEPING);
    let code = event_loop.run(&mut d)?;
    log_info!("stopped");
    drop(pid_file);
    drop(socket);
    Ok(code)
}

fn serve_http(req: &httpd::Request, metrics: &DnsMetrics) -> httpd::Response {
    use runtime::http::{method_not_allowed, reply, reply_text};
    match req.path() {
        "/metrics" | "/" if !req.is_get() => method_not_allowed("GET, HEAD"),
        "/metrics" => reply(200, runtime::metrics::CONTENT_TYPE, runtime::metrics::render(metrics)),
        "/" => reply_text(200, "dnsd: metrics at /metrics"),
        _ => reply_text(404, "not found"),
    }
}

impl Dnsd {
    fn open_slot(&mut self, registry: &Registry, slot: u8) {
        if let Some(mut old) = self.pool.get_mut(usize::from(slot)).and_then(Option::take) {
            let _ = registry.deregister(&mut old.socket);
        }
        match PoolSocket::open(&mut self.rng) {
            Ok(mut s) => {
                if let Err(e) = registry.register(&mut s.socket, token(POOL, u64::from(slot)), Interest::READABLE) {
                    log_error!("upstream socket {slot}: {e}");
                    return;
                }
                log_debug_port(slot, s.port);
                self.pool[usize::from(slot)] = Some(s);
            }
            Err(e) => log_error!("upstream socket {slot}: cannot bind a random port: {e}"),
        }
    }

    /// Re-reads every input and applies it.
    fn reload(&mut self, registry: &Registry, now: Instant) {
        self.inputs.reload(&self.perm);
        let names = self.inputs.local_names(&self.lan, now, runtime::clock::wall_now());
        let (zone, warnings) = LocalZone::new(&names);
        for w in warnings {
            log_warn!("{w}");
        }
        self.local_names = zone.len();
        self.resolver.set_local(zone);
        self.rebind(registry, now);
        let own: Vec<SocketAddr> =
            self.listeners.udp.iter().map(|l| SocketAddr::new(l.addr.ip(), l.addr.port())).collect();
        let specs =
            config::upstreams(&self.inputs.config, self.inputs.dhcp4.as_ref(), self.inputs.dhcp6.as_ref(), &own);
        if specs != self.upstreams {
            let list: Vec<String> = specs.iter().map(|u| format!("{} ({})", u.addr, u.source.name())).collect();
            log_info!("upstreams: {}", if list.is_empty() { "none".into() } else { list.join(", ") });
            self.upstreams = specs;
        }
        self.resolver.set_upstreams(&self.upstreams);
        self.resolver.set_cache_limits(now, self.inputs.config.cache);
        if let Some(http) = &mut self.http {
            match runtime::netif::private_addrs(&self.lan) {
                Ok(addrs) => {
                    for (addr, e) in http.update(&addrs) {
                        log_warn!("metrics listener {addr}: {e}");
                    }
                }
                Err(e) => log_warn!("cannot list addresses for the metrics listener: {e}"),
            }
        }
        log_info!(
            "loaded: {} local names, {} upstreams, cache of {} entries / {} bytes",
            self.local_names,
            self.upstreams.len(),
            self.inputs.config.cache.max_entries,
            self.inputs.config.cache.max_bytes
        );
        self.publish(now);
        self.control.emit(
            "dnsd.reloaded",
            json!({
                "upstreams": self.upstreams.iter().map(|u| u.addr.to_string()).collect::<Vec<_>>(),
                "local_names": self.local_names,
                "listen": self.listeners.udp.iter().map(|l| l.addr.to_string()).collect::<Vec<_>>(),
            }),
        );
    }

    fn wanted_listen(&self) -> io::Result<Vec<SocketAddr>> {
        if !self.cli_listen.is_empty() {
            return Ok(self.cli_listen.clone());
        }
        if !self.inputs.config.listen.is_empty() {
            return Ok(self.inputs.config.listen.clone());
        }
        let addrs = runtime::netif::private_addrs(&self.lan)?;
        Ok(addrs.into_iter().map(|(ip, scope)| net::listen_addr(ip, scope, DNS_PORT)).collect())
    }

    /// Listens on exactly the wanted addresses (router7's multilisten).
    fn rebind(&mut self, registry: &Registry, now: Instant) {
        self.last_listen_try = now;
        let wanted = match self.wanted_listen() {
            Ok(w) => w,
            Err(e) => {
                log_error!("cannot list the private addresses: {e}; keeping the listeners");
                return;
            }
        };
        let errors = self.listeners.rebind(registry, &wanted, udp_token, |id| token(TCP_LISTENER, u64::from(id)));
        for e in &errors {
            if !self.listen_errors.contains(e) {
                log_error!("cannot listen on {e}; trying again every {}s", LISTEN_RETRY.as_secs());
            }
        }
        self.listen_errors = errors;
        let mut c = self.control.update();
        if self.listen_errors.is_empty() {
            c.set_condition("Listening", Some(true), "Listening", &format!("{} addresses", wanted.len()));
        } else {
            c.set_condition("Listening", Some(false), "BindFailed", &self.listen_errors.join("; "));
        }
        c.set_phase(if self.listeners.udp.is_empty() { Phase::Pending } else { Phase::Up });
    }

    /// Publishes status fields, conditions and gauges.
    fn publish(&mut self, now: Instant) {
        let up = self.resolver.any_upstream_up(now);
        let status = self.resolver.upstream_status(now);
        let down: Vec<&str> = status.iter().filter(|s| !s.up).map(|s| s.addr.as_str()).collect();
        let mut c = self.control.update();
        if status.is_empty() {
            c.set_condition("UpstreamsAvailable", Some(false), "NoUpstreams", "no upstream is known");
        } else if !up {
            c.set_condition("UpstreamsAvailable", Some(false), "AllDown", "every upstream is down");
        } else if down.is_empty() {
            c.set_condition("UpstreamsAvailable", Some(true), "AllUp", "every upstream answers");
        } else {
            let message = format!("down: {}", down.join(", "));
            c.set_condition("UpstreamsAvailable", Some(true), "SomeDown", &message);
        }
        c.set_field("upstreams", json!(status));
        let cache = self.resolver.cache();
        let limits = cache.limits();
        c.set_field(
            "cache",
            json!({"entries": cache.len(), "bytes": cache.bytes(), "max_entries": limits.max_entries, "max_bytes": limits.max_bytes}),
        );
        c.set_field("listen", json!(self.listeners.udp.iter().map(|l| l.addr.to_string()).collect::<Vec<_>>()));
        c.set_field("local_names", json!(self.local_names));
        c.set_field("pending", json!(self.resolver.pending()));
        drop(c);
        self.metrics.cache_entries.set(cache.len() as f64);
        self.metrics.cache_bytes.set(cache.bytes() as f64);
        self.metrics.tcp_connections.set(self.clients.len() as f64);
    }

    fn housekeeping(&mut self, registry: &Registry, now: Instant) {
        let idle: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, c)| c.idle() && now.saturating_duration_since(c.last_active) >= tcp::IDLE_TIMEOUT)
            .map(|(&id, _)| id)
            .collect();
        for id in idle {
            self.close_client(registry, id);
        }
        for event in self.resolver.take_health_events() {
            match event {
                HealthEvent::Down { addr, reason } => {
                    log_warn!("upstream {addr} is down ({reason})");
                    self.control.emit("dnsd.upstream.down", json!({"upstream": addr.to_string(), "reason": reason}));
                }
                HealthEvent::Up { addr } => {
                    log_info!("upstream {addr} answers again");
                    self.control.emit("dnsd.upstream.up", json!({"upstream": addr.to_string()}));
                }
            }
        }
        self.resolver.sweep(now);
        self.moderation_tick(registry, now);
        if !self.listen_errors.is_empty() && now.saturating_duration_since(self.last_listen_try) >= LISTEN_RETRY {
            self.rebind(registry, now);
        }
        self.publish(now);
    }

    /// The moderation timer: read every muted listener.
    fn on_moderation_timer(&mut self, registry: &Registry, now: Instant) {
        let Self { listeners, resolver, batch, metrics, busy, moderation, .. } = self;
        if let Some(m) = moderation.as_ref() {
            m.clear();
        }
        for l in listeners.udp.iter_mut().filter(|l| l.muted) {
            if listeners::serve_udp(l, registry, now, resolver, batch, metrics, moderation.as_mut(), BATCH) {
                busy.push(udp_token(l.id));
            }
        }
    }

    /// After reads: moderation on or off when a window of them has passed
    /// (`Moderation::decide`); turned off, listeners wake the loop again.
    fn moderation_decide(&mut self, registry: &Registry, now: Instant) {
        let Some(m) = self.moderation.as_mut() else { return };
        let Some(on) = m.decide(now) else { return };
        self.metrics.moderated.set(if on { 1.0 } else { 0.0 });
        if let Some(changes) = m.report(now) {
            let more = if changes > 1 { format!(" ({changes} changes since the last message)") } else { String::new() };
            if on {
                log_info!(
                    "over {} queries/s: reading busy listeners every {} µs{more}",
                    crate::moderation::ON_ABOVE,
                    crate::moderation::PERIOD.as_micros()
                );
            } else {
                log_info!("under {} queries/s: every query wakes the loop again{more}", crate::moderation::OFF_BELOW);
            }
        }
        if on {
            return;
        }
        for l in self.listeners.udp.iter_mut().filter(|l| l.muted) {
            if !listeners::unmute(registry, l, udp_token(l.id)) {
                log_error!("udp {}: cannot watch it again; reading it every second until it can", l.addr);
            }
        }
    }

    /// Once a second: a decision even when nothing was read (the load went
    /// away while moderated), and listeners that could not be put back in
    /// the poll set are read.
    fn moderation_tick(&mut self, registry: &Registry, now: Instant) {
        self.moderation_decide(registry, now);
        if self.moderation.as_ref().is_some_and(Moderation::active) {
            return;
        }
        let stuck: Vec<u32> = self.listeners.udp.iter_mut().filter(|l| l.muted).map(|l| l.id).collect();
        for id in stuck {
            let t = udp_token(id);
            if let Some(l) = self.listeners.udp.iter_mut().find(|l| l.id == id)
                && listeners::unmute(registry, l, t)
            {
                continue;
            }
            self.read_udp(registry, now, u64::from(id), t);
        }
    }

    fn close_client(&mut self, registry: &Registry, id: u64) {
        if let Some(mut c) = self.clients.remove(&id) {
            let _ = registry.deregister(&mut c.stream);
        }
    }

    /// Client datagrams of listener `id`, a batch at a time.
    fn read_udp(&mut self, registry: &Registry, now: Instant, id: u64, t: Token) {
        let Self { listeners, resolver, batch, metrics, busy, moderation, .. } = self;
        let Some(l) = listeners.udp.iter_mut().find(|l| u64::from(l.id) == id) else { return };
        if listeners::serve_udp(l, registry, now, resolver, batch, metrics, moderation.as_mut(), BATCH) {
            busy.push(t);
        }
    }

    fn accept(&mut self, registry: &Registry, now: Instant, id: u64, t: Token) {
        let Some(l) = self.listeners.tcp.iter().find(|l| u64::from(l.id) == id) else { return };
        for _ in 0..BATCH {
            let (mut stream, _peer) = match l.listener.accept() {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and the like: let the next turn try again.
                    runtime::log_debug!("tcp {}: accept: {e}", l.addr);
                    self.busy.push(t);
                    return;
                }
            };
            if self.clients.len() >= MAX_TCP_CLIENTS {
                // RFC 7766 §6.2.2: make room by closing the longest-idle connection.
                let oldest = self.clients.iter().filter(|(_, c)| c.idle()).min_by_key(|(_, c)| c.last_active);
                match oldest.map(|(&id, _)| id) {
                    Some(old) => {
                        if let Some(mut c) = self.clients.remove(&old) {
                            let _ = registry.deregister(&mut c.stream);
                        }
                    }
                    None => {
                        self.metrics.discard(Discard::TcpConnectionsFull);
                        continue;
                    }
                }
            }
            let conn = self.next_conn;
            self.next_conn += 1;
            let _ = stream.set_nodelay(true);
            if registry.register(&mut stream, token(TCP_CLIENT, conn), Interest::READABLE | Interest::WRITABLE).is_err()
            {
                continue;
            }
            self.clients.insert(conn, ClientConn::new(stream, now));
        }
        self.busy.push(t);
    }

    fn client_io(&mut self, registry: &Registry, now: Instant, conn: u64, ready: Ready) {
        let Self { clients, resolver, out, busy, .. } = self;
        let Some(c) = clients.get_mut(&conn) else { return };
        let mut next = if ready.writable { c.flush() } else { Next::Keep };
        if next != Next::Close && (ready.readable || ready.closed) {
            let client = ClientAddr::Tcp { conn };
            next = c.on_readable(
                now,
                BATCH,
                |q, out| match resolver.on_query(now, client, q, out) {
                    Handled::Reply => QueryResult::Answer,
                    Handled::Pending => QueryResult::InFlight,
                    Handled::Dropped => QueryResult::Nothing,
                },
                out,
            );
        }
        match next {
            Next::Close => self.close_client(registry, conn),
            Next::Again => busy.push(token(TCP_CLIENT, conn)),
            Next::Keep => {}
        }
    }

    fn read_pool(&mut self, now: Instant, slot: u8, t: Token) {
        let Self { pool, resolver, buf, busy, .. } = self;
        let Some(Some(s)) = pool.get(usize::from(slot)) else { return };
        for _ in 0..BATCH {
            match s.socket.recv_from(buf) {
                Ok((n, from)) => resolver.on_upstream_udp(now, slot, net::canonical(from), &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => runtime::log_debug!("upstream socket {slot}: {e}"),
            }
        }
        busy.push(t);
    }

    fn upstream_tcp_io(&mut self, registry: &Registry, now: Instant, handle: u64, ready: Ready) {
        let Some(c) = self.upstream_tcp.get_mut(&handle) else { return };
        let result = c.on_ready(ready.writable, ready.readable || ready.closed);
        let done = match result {
            UpstreamIo::Waiting => false,
            UpstreamIo::Reply(msg) => {
                self.resolver.on_upstream_tcp(now, handle, &msg);
                true
            }
            UpstreamIo::Failed => {
                self.resolver.on_upstream_tcp_failed(now, handle);
                true
            }
        };
        if done && let Some(mut c) = self.upstream_tcp.remove(&handle) {
            let _ = registry.deregister(&mut c.stream);
        }
    }

    fn send_upstream_udp(&mut self, registry: &Registry, now: Instant, slot: u8, to: SocketAddr, msg: &[u8]) {
        if self.pool.get(usize::from(slot)).is_some_and(Option::is_none) {
            self.open_slot(registry, slot);
        }
        let sent = match self.pool.get(usize::from(slot)) {
            Some(Some(s)) => s.socket.send_to(msg, s.destination(to)).map(|_| ()),
            _ => Err(io::Error::other("no socket")),
        };
        if let Err(e) = sent {
            runtime::log_debug!("sending to {to}: {e}");
            self.resolver.on_udp_send_failed(now, slot, to, msg);
        }
    }

    fn connect_upstream(&mut self, registry: &Registry, now: Instant, handle: u64, to: SocketAddr, msg: &[u8]) {
        if self.upstream_tcp.len() >= MAX_UPSTREAM_TCP {
            self.resolver.on_upstream_tcp_failed(now, handle);
            return;
        }
        let connected = mio::net::TcpStream::connect(to).and_then(|mut stream| {
            registry.register(&mut stream, token(UPSTREAM_TCP, handle), Interest::READABLE | Interest::WRITABLE)?;
            Ok(stream)
        });
        match connected {
            Ok(stream) => {
                self.upstream_tcp.insert(handle, UpstreamConn::new(stream, msg));
            }
            Err(e) => {
                runtime::log_debug!("connecting to {to}: {e}");
                self.resolver.on_upstream_tcp_failed(now, handle);
            }
        }
    }

    /// Does what the core asked for.
    fn flush(&mut self, registry: &Registry, now: Instant) {
        while let Some(t) = self.resolver.poll_transmit() {
            match t {
                Transmit::Client { to: ClientAddr::Udp { listener, peer }, msg } => {
                    let sent =
                        self.listeners.udp.iter().find(|l| l.id == listener).map(|l| l.socket.send_to(&msg, peer));
                    if !matches!(sent, Some(Ok(_))) {
                        self.metrics.discard(Discard::SendFailed);
                    }
                }
                Transmit::Client { to: ClientAddr::Tcp { conn }, msg } => match self.clients.get_mut(&conn) {
                    Some(c) => {
                        let resume = c.in_flight == tcp::MAX_IN_FLIGHT;
                        c.in_flight = c.in_flight.saturating_sub(1);
                        match c.send(&msg, now) {
                            Next::Close => self.close_client(registry, conn),
                            _ if resume => self.busy.push(token(TCP_CLIENT, conn)),
                            _ => {}
                        }
                    }
                    None => self.metrics.discard(Discard::TcpDropped),
                },
                Transmit::UpstreamUdp { slot, to, msg } => self.send_upstream_udp(registry, now, slot, to, &msg),
                Transmit::UpstreamTcp { handle, to, msg } => self.connect_upstream(registry, now, handle, to, &msg),
                Transmit::CloseTcp { handle } => {
                    if let Some(mut c) = self.upstream_tcp.remove(&handle) {
                        let _ = registry.deregister(&mut c.stream);
                    }
                }
                Transmit::ReopenSlot { slot } => self.open_slot(registry, slot),
            }
        }
    }

    fn dispatch(&mut self, registry: &Registry, now: Instant, t: Token, ready: Ready) {
        let (kind, n) = split(t);
        match kind {
            // Listeners are registered for reading only.
            UDP_LISTENER if ready.readable => {
                self.read_udp(registry, now, n, t);
                self.moderation_decide(registry, now);
            }
            UDP_LISTENER => {}
            MODERATION => {
                self.on_moderation_timer(registry, now);
                self.moderation_decide(registry, now);
            }
            TCP_LISTENER => self.accept(registry, now, n, t),
            TCP_CLIENT => self.client_io(registry, now, n, ready),
            POOL => self.read_pool(now, u8::try_from(n).unwrap_or(u8::MAX), t),
            UPSTREAM_TCP => self.upstream_tcp_io(registry, now, n, ready),
            _ => runtime::log_debug!("event for unknown token {}", t.0),
        }
    }
}

fn log_debug_port(slot: u8, port: u16) {
    runtime::log_debug!("upstream socket {slot} on port {port}");
}

impl Handler for Dnsd {
    fn poll_at(&self) -> Option<Instant> {
        if self.busy.is_empty() { self.resolver.poll_at() } else { Some(self.epoch) }
    }

    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let registry = cx.registry();
        let busy = std::mem::take(&mut self.busy);
        let ready = Ready { readable: true, writable: false, closed: false };
        for t in busy {
            self.dispatch(registry, now, t, ready);
        }
        if self.resolver.poll_at().is_some_and(|at| at <= now) {
            self.resolver.on_deadline(now);
        }
        self.flush(registry, now);
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, t: Token, ready: Ready) {
        let now = cx.now();
        let registry = cx.registry();
        self.dispatch(registry, now, t, ready);
        self.flush(registry, now);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
        if tag == HOUSEKEEPING {
            let now = cx.now();
            self.housekeeping(cx.registry(), now);
            cx.add_timer(now + TICK, HOUSEKEEPING);
        }
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        log_info!("reloading");
        let now = cx.now();
        self.reload(cx.registry(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_a_comma_list_with_port_53_by_default() {
        let got = parse_listen("10.0.0.1:5353, 127.0.0.1,[::1]:53").unwrap();
        let want: Vec<SocketAddr> =
            ["10.0.0.1:5353", "127.0.0.1:53", "[::1]:53"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(got, want);
        assert!(parse_listen("10.0.0.1:5353,nonsense").is_err());
    }

    #[test]
    fn tokens_keep_kind_and_number_apart() {
        for (kind, n) in
            [(UDP_LISTENER, 1), (TCP_CLIENT, 123_456_789), (POOL, 7), (UPSTREAM_TCP, (1 << KIND_SHIFT) - 1)]
        {
            assert_eq!(split(token(kind, n)), (kind, n));
        }
        assert!(token(MODERATION, 0).0 < runtime::event_loop::FIRST_RESERVED_TOKEN);
    }
}
