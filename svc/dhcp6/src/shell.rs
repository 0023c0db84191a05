//! The shell around [`dhcp6::Client`]: the UDP socket on the uplink's
//! link-local address, the DUID, config and lease files, signals, the clock
//! and the control API.
//!
//! Start-up waits, without exiting, for what it needs: the DUID (made from the
//! uplink's MAC when `/perm/dhcp6/duid` is absent, so the interface must
//! exist) and a usable link-local address (tentative right after link up:
//! binding fails until DAD is done). The client starts once the socket is
//! bound, so a restart's Rebind is not wasted on a link that is not up yet.

use std::error::Error;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use runtime::control::{Control, Phase};
use runtime::event_loop::{Context, Handler, Ready, Signal};
use runtime::perm::Dhcp6Lease;
use runtime::service::{Base, EXIT_DO_NOT_RESTART};
use runtime::timefmt::Timestamp;
use runtime::{log_debug, log_error, log_info, log_warn};
use serde_json::{Value, json};

use dhcp6::client::{Client, Config, Drop, Event, IaKind, Transmit};
use dhcp6::config::Settings;
use dhcp6::lease::{Lease, hex};
use dhcp6::wire::{ALL_SERVERS, CLIENT_PORT, SERVER_PORT};
use dhcp6::{Random, duid};

/// Who reads our lease and gets SIGUSR1 after it changes.
const READERS: [&str; 3] = ["netconfigd", "radvd", "dnsd"];
const SOCKET: Token = Token(0);
const TAG_SETUP: u64 = 1;
const TAG_PERSIST: u64 = 2;
const TAG_RELEASE_DEADLINE: u64 = 3;
/// How often to retry what start-up waits for (the interface, its link-local address).
const SETUP_RETRY: Duration = Duration::from_secs(1);
/// How long to wait for an invalid DUID file to be fixed before looking again.
const DUID_RETRY: Duration = Duration::from_secs(60);
/// Datagrams read per wake-up before giving the timers a turn.
const RECV_BUDGET: usize = 64;
/// The Release exchange takes 15 s at most (REL_MAX_RC); never hang on exit longer than this.
const RELEASE_DEADLINE: Duration = Duration::from_secs(20);

/// Transaction IDs and RAND from the kernel's random pool.
struct OsRandom {
    urandom: Option<std::fs::File>,
    fallback: u64,
}

impl OsRandom {
    fn new() -> Self {
        let urandom = std::fs::File::open("/dev/urandom").ok();
        if urandom.is_none() {
            log_warn!("/dev/urandom is unavailable; transaction IDs are less random");
        }
        let wall = runtime::clock::wall_now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = u64::from(std::process::id()) << 32 ^ u64::from(wall.subsec_nanos()) ^ wall.as_secs();
        Self { urandom, fallback: seed | 1 }
    }

    fn next_u32(&mut self) -> u32 {
        use std::io::Read;
        let mut b = [0u8; 4];
        if let Some(f) = &mut self.urandom
            && f.read_exact(&mut b).is_ok()
        {
            return u32::from_ne_bytes(b);
        }
        // xorshift64*
        let mut x = self.fallback;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.fallback = x;
        u32::try_from(x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32).unwrap_or(0)
    }
}

impl Random for OsRandom {
    fn transaction_id(&mut self) -> [u8; 3] {
        let b = self.next_u32().to_be_bytes();
        [b[1], b[2], b[3]]
    }

    fn jitter_permille(&mut self) -> i32 {
        i32::try_from(self.next_u32() % 201).unwrap_or(0) - 100
    }
}

/// The bound socket.
struct Uplink {
    socket: mio::net::UdpSocket,
    ifindex: u32,
    address: Ipv6Addr,
}

/// Opens `[link-local%ifname]:546`, bound to the device, multicasting out of it.
fn open_socket(ifname: &str, ifindex: u32, address: Ipv6Addr) -> io::Result<UdpSocket> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto, sockopt};
    let fd = rustix::net::socket_with(
        AddressFamily::INET6,
        SocketType::DGRAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        Some(ipproto::UDP),
    )?;
    sockopt::set_ipv6_v6only(&fd, true)?;
    runtime::sys::bind_to_device(fd.as_fd(), ifname)?;
    sockopt::set_ipv6_multicast_if(&fd, ifindex)?;
    // Hop limit 1 is the multicast default; set it anyway so it is never otherwise.
    sockopt::set_ipv6_multicast_hops(&fd, 1)?;
    sockopt::set_ipv6_multicast_loop(&fd, false)?;
    rustix::net::bind(&fd, &SocketAddrV6::new(address, CLIENT_PORT, 0, ifindex))?;
    Ok(UdpSocket::from(fd))
}

/// The first link-local address of `ifname`, with its index.
fn link_local(ifname: &str) -> io::Result<Option<(Ipv6Addr, u32)>> {
    Ok(runtime::netif::addrs()?.into_iter().find_map(|a| match a.addr {
        IpAddr::V6(v6) if a.ifname == ifname && v6.is_unicast_link_local() => Some((v6, a.ifindex)),
        _ => None,
    }))
}

/// Send errors that mean the socket is no longer usable (the address or the link went away).
fn socket_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().and_then(|n| rustix::io::Errno::from_raw_os_error(n).into()),
        Some(rustix::io::Errno::ADDRNOTAVAIL | rustix::io::Errno::NODEV | rustix::io::Errno::NXIO)
    ) || e.kind() == io::ErrorKind::AddrNotAvailable
}

/// The service.
struct Service {
    control: Control,
    uplink_name: String,
    run_dir: PathBuf,
    perm: PathBuf,
    settings: Settings,
    duid: Option<Vec<u8>>,
    stored: Option<Lease>,
    client: Option<Client<OsRandom>>,
    uplink: Option<Uplink>,
    persisted_generation: Option<u64>,
    setup_timer_armed: bool,
    persist_timer_armed: bool,
    releasing: bool,
    last_setup_problem: Option<String>,
    send_errors: u64,
    receive_errors: u64,
}

impl Service {
    fn new(base: &Base) -> Self {
        let perm = base.args.perm.clone();
        let control = base.control.clone();
        let settings = load_settings(&perm, &control);
        let stored = load_lease(&perm);
        let s = Self {
            control,
            uplink_name: base.args.uplink.clone(),
            run_dir: base.args.run.clone(),
            perm,
            settings,
            duid: None,
            stored,
            client: None,
            uplink: None,
            persisted_generation: None,
            setup_timer_armed: false,
            persist_timer_armed: false,
            releasing: false,
            last_setup_problem: None,
            send_errors: 0,
            receive_errors: 0,
        };
        s.publish();
        s
    }

    fn setup_problem(&mut self, condition: &str, reason: &str, message: String) {
        self.control.set_condition(condition, Some(false), reason, &message);
        if self.last_setup_problem.as_deref() != Some(message.as_str()) {
            log_warn!("{message}; retrying");
            self.last_setup_problem = Some(message);
        }
    }

    /// Loads or makes the DUID; opens the socket; starts the client. Each step
    /// that cannot be done yet is retried by a timer.
    fn setup(&mut self, cx: &mut Context<'_>) {
        if self.releasing {
            return;
        }
        if self.duid.is_none() {
            match self.load_duid() {
                Ok(d) => self.duid = Some(d),
                Err(retry) => {
                    self.arm_setup(cx, retry);
                    return;
                }
            }
        }
        if self.uplink.is_none() {
            match self.open_uplink(cx) {
                Ok(u) => {
                    log_info!("listening on [{}%{}]:{CLIENT_PORT}", u.address, self.uplink_name);
                    self.control.set_condition(
                        "UplinkReady",
                        Some(true),
                        "Bound",
                        &format!("[{}%{}]:{CLIENT_PORT}", u.address, self.uplink_name),
                    );
                    self.last_setup_problem = None;
                    self.uplink = Some(u);
                }
                Err((reason, message)) => {
                    self.setup_problem("UplinkReady", reason, message);
                    self.arm_setup(cx, SETUP_RETRY);
                    return;
                }
            }
        }
        if self.client.is_none()
            && let Some(duid) = &self.duid
        {
            let config = Config {
                duid: duid.clone(),
                request_address: self.settings.request_address,
                prefix_length_hint: self.settings.prefix_length_hint,
            };
            let stored = self.stored.take();
            let text = stored.as_ref().map(summary);
            let client = Client::new(config, OsRandom::new(), cx.now(), stored);
            if let Some(text) = text {
                log_info!("stored lease: {text}; {}", client.state_name());
            }
            self.client = Some(client);
            // Nothing to write yet: the file already holds what was stored.
            self.persisted_generation = Some(0);
        }
        self.after_client(cx);
    }

    fn arm_setup(&mut self, cx: &mut Context<'_>, after: Duration) {
        if !self.setup_timer_armed {
            cx.add_timer(cx.now() + after, TAG_SETUP);
            self.setup_timer_armed = true;
        }
    }

    /// The DUID from the file, or a new DUID-LL stored in it; `Err` = retry after.
    fn load_duid(&mut self) -> Result<Vec<u8>, Duration> {
        let path = duid::path(&self.perm);
        match runtime::statefile::read(&path) {
            Ok(Some(bytes)) => match duid::check(&bytes) {
                Ok(()) => {
                    log_info!("DUID {} from {}", hex(&bytes), path.display());
                    let mut c = self.control.update();
                    c.set_condition("DuidValid", Some(true), "FromFile", &hex(&bytes));
                    c.set_field("duid", json!(hex(&bytes)));
                    Ok(bytes)
                }
                Err(e) => {
                    log_error!("{}: {e}; fix or remove it (then SIGUSR1)", path.display());
                    let mut c = self.control.update();
                    c.set_condition("DuidValid", Some(false), "DuidFileInvalid", &format!("{}: {e}", path.display()));
                    c.set_phase(Phase::Error);
                    Err(DUID_RETRY)
                }
            },
            Ok(None) => {
                let mac = match runtime::netif::mac(&self.uplink_name) {
                    Ok(mac) => mac,
                    Err(e) => {
                        self.setup_problem("DuidValid", "NoUplinkMac", format!("no DUID yet: {e}"));
                        return Err(SETUP_RETRY);
                    }
                };
                let d = duid::link_layer(mac);
                if let Err(e) = runtime::statefile::write_atomic(&path, &d) {
                    // Still usable for this run; we try to store it again next start.
                    log_error!("cannot store the new DUID: {e}");
                }
                log_info!("created DUID-LL {} from {} and stored it in {}", hex(&d), self.uplink_name, path.display());
                let mut c = self.control.update();
                c.set_condition("DuidValid", Some(true), "Created", &hex(&d));
                c.set_field("duid", json!(hex(&d)));
                Ok(d)
            }
            Err(e) => {
                self.setup_problem("DuidValid", "DuidFileUnreadable", e.to_string());
                Err(SETUP_RETRY)
            }
        }
    }

    fn open_uplink(&self, cx: &mut Context<'_>) -> Result<Uplink, (&'static str, String)> {
        let name = &self.uplink_name;
        let (address, ifindex) = match link_local(name) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(("NoLinkLocal", format!("{name} has no IPv6 link-local address yet"))),
            Err(e) => return Err(("NoLinkLocal", format!("cannot list addresses: {e}"))),
        };
        let std_socket = open_socket(name, ifindex, address)
            .map_err(|e| ("BindFailed", format!("cannot bind [{address}%{name}]:{CLIENT_PORT} (tentative?): {e}")))?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        cx.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)
            .map_err(|e| ("BindFailed", format!("cannot register the socket: {e}")))?;
        Ok(Uplink { socket, ifindex, address })
    }

    fn drop_uplink(&mut self, cx: &mut Context<'_>, why: &str) {
        if let Some(mut u) = self.uplink.take() {
            let _ = cx.registry().deregister(&mut u.socket);
            log_warn!("socket on [{}%{}] unusable ({why}); reopening", u.address, self.uplink_name);
            self.control.set_condition("UplinkReady", Some(false), "SocketLost", why);
        }
        self.arm_setup(cx, SETUP_RETRY);
    }

    fn send(&mut self, cx: &mut Context<'_>, t: &Transmit) {
        let Some(u) = &self.uplink else { return };
        let dst = SocketAddr::V6(SocketAddrV6::new(ALL_SERVERS, SERVER_PORT, 0, u.ifindex));
        match u.socket.send_to(&t.bytes, dst) {
            Ok(_) => log_debug!("sent {:?} ({} bytes)", t.kind, t.bytes.len()),
            Err(e) => {
                // Counted as sent by the client: its retransmission resends it.
                self.send_errors += 1;
                if socket_gone(&e) {
                    self.drop_uplink(cx, &e.to_string());
                } else {
                    log_warn!("sending {:?}: {e}", t.kind);
                }
            }
        }
    }

    fn drive(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let mut out = Vec::new();
        if let Some(c) = &mut self.client {
            while let Some(t) = c.poll(now) {
                out.push(t);
            }
        }
        for t in &out {
            self.send(cx, t);
        }
        self.after_client(cx);
    }

    fn receive(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let mut buf = [0u8; 2048];
        for _ in 0..RECV_BUDGET {
            let Some(u) = &self.uplink else { return };
            let (n, from) = match u.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.after_client(cx);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.receive_errors += 1;
                    log_warn!("receiving: {e}");
                    self.after_client(cx);
                    return;
                }
            };
            let Some(c) = &mut self.client else { continue };
            if from.port() != SERVER_PORT {
                c.note_drop(Drop::SourcePort);
                continue;
            }
            if let Err(reason) = c.handle(now, &buf[..n]) {
                log_debug!("dropped {n} bytes from {from}: {}", reason.as_str());
            }
        }
        // More may be waiting: let the timers run, then come back.
        cx.ready_again(SOCKET);
        self.after_client(cx);
    }

    /// Reports events, persists a changed lease and tells its readers,
    /// publishes status; ends the process once a Release is over.
    fn after_client(&mut self, cx: &mut Context<'_>) {
        let Some(c) = &mut self.client else {
            self.publish();
            return;
        };
        let events = c.take_events();
        // The file and the status first: whoever reacts to an event finds
        // the lease on disk and the phase up to date.
        let generation = self.client.as_ref().map(Client::lease_generation);
        if generation != self.persisted_generation {
            self.persist(cx);
        }
        self.publish();
        for e in &events {
            self.report(e);
        }
        if self.releasing && self.client.as_ref().is_some_and(Client::is_released) {
            log_info!("released; exiting {EXIT_DO_NOT_RESTART}");
            cx.stop(EXIT_DO_NOT_RESTART);
        }
    }

    fn persist(&mut self, cx: &mut Context<'_>) {
        let now = cx.now();
        let wall = runtime::clock::wall_now();
        let Some(c) = &self.client else { return };
        let file = match c.lease() {
            Some(l) => l.to_perm(now, wall),
            None => empty_lease(wall),
        };
        let path = runtime::perm::dhcp6_lease_path(&self.perm);
        match runtime::statefile::write_json(&path, &file) {
            Ok(()) => {
                self.persisted_generation = Some(c.lease_generation());
                runtime::notify::notify_all(&self.run_dir, &READERS, Signal::Usr1);
            }
            Err(e) => {
                log_error!("cannot write the lease: {e}");
                if !self.persist_timer_armed {
                    self.persist_timer_armed = true;
                    cx.add_timer(now + Duration::from_secs(10), TAG_PERSIST);
                }
            }
        }
    }

    fn report(&self, e: &Event) {
        let lease = self.client.as_ref().and_then(Client::lease);
        let what = if lease.is_some_and(|l| !l.prefixes.is_empty()) { "prefix" } else { "address" };
        match e {
            Event::Bound | Event::Renewed | Event::Rebound => {
                let verb = match e {
                    Event::Bound => "bound",
                    Event::Renewed => "renewed",
                    _ => "rebound",
                };
                let attrs = lease.map_or(Value::Null, lease_attributes);
                if let Some(l) = lease {
                    log_info!(
                        "{verb}: prefixes {}, address {}, DNS {:?}, renew in {}s",
                        prefixes_text(l),
                        l.addresses.first().map_or("none".to_owned(), |a| a.addr.to_string()),
                        l.dns,
                        l.renew_at.saturating_duration_since(runtime::clock::now()).as_secs()
                    );
                }
                self.control.emit(&format!("dhcp6.{what}.{verb}"), attrs);
            }
            Event::PrefixLost { prefix, reason } => {
                log_warn!("lost prefix {}/{} ({})", prefix.0, prefix.1, reason.as_str());
                self.control.emit(
                    "dhcp6.prefix.lost",
                    json!({"prefix": format!("{}/{}", prefix.0, prefix.1), "reason": reason.as_str()}),
                );
            }
            Event::AddressLost { addr, reason } => {
                log_warn!("lost address {addr} ({})", reason.as_str());
                self.control.emit("dhcp6.address.lost", json!({"address": addr, "reason": reason.as_str()}));
            }
            Event::Unavailable { ia, status } => {
                let kind = if *ia == IaKind::Prefix { "prefix" } else { "address" };
                log_warn!("server has no {kind} for us: {:?} {:?}", status.code, status.message);
                self.control.emit(
                    &format!("dhcp6.{kind}.unavailable"),
                    json!({"status": format!("{:?}", status.code), "message": status.message}),
                );
            }
            Event::ExchangeFailed { kind } => log_warn!("{kind:?} got no answer"),
            Event::BackingOff { delay } => log_info!("nothing granted; soliciting again in {}s", delay.as_secs()),
            Event::Released => {
                self.control.emit("dhcp6.lease.released", json!({}));
            }
        }
    }

    fn publish(&self) {
        let lease = self.client.as_ref().and_then(Client::lease).or(self.stored.as_ref());
        let now = runtime::clock::now();
        let wall = runtime::clock::wall_now();
        let mut c = self.control.update();
        c.set_field("lease", lease.map_or(Value::Null, |l| json!(l.to_perm(now, wall))));
        if let Some(client) = &self.client {
            c.set_field("state", json!(client.state_name()));
            let mut metrics = json!(client.counters());
            metrics["send_errors"] = json!(self.send_errors);
            metrics["receive_errors"] = json!(self.receive_errors);
            c.set_field("metrics", metrics);
        }
        if c.phase() == Phase::Error && self.duid.is_none() {
            return;
        }
        let valid = lease.is_some_and(Lease::has_valid);
        c.set_phase(if valid && !self.releasing { Phase::Bound } else { Phase::Pending });
        match lease {
            Some(l) if l.has_valid() => c.set_condition("LeaseValid", Some(true), "Bound", &summary(l)),
            Some(l) => c.set_condition("LeaseValid", Some(false), "Expired", &summary(l)),
            None => c.set_condition("LeaseValid", Some(false), "NoLease", "no lease yet"),
        }
        let unavailable = self.client.as_ref().and_then(|client| client.unavailable(IaKind::Prefix));
        match (lease, unavailable) {
            (Some(l), _) if l.has_valid_prefix() => {
                c.set_condition("PrefixDelegated", Some(true), "Delegated", &prefixes_text(l));
            }
            (_, Some(s)) => {
                c.set_condition("PrefixDelegated", Some(false), &format!("{:?}", s.code), &s.message);
            }
            (Some(l), None) if !l.prefixes.is_empty() => {
                c.set_condition("PrefixDelegated", Some(false), "Expired", &prefixes_text(l));
            }
            (Some(l), None) if l.has_valid() => {
                // dnsmasq, for one, leaves the IA_PD out of its answers.
                c.set_condition("PrefixDelegated", Some(false), "NotOffered", "the server gave no prefix");
            }
            _ => c.set_condition("PrefixDelegated", Some(false), "Pending", "no prefix yet"),
        }
    }
}

fn prefixes_text(l: &Lease) -> String {
    if l.prefixes.is_empty() {
        return "none".into();
    }
    l.prefixes.iter().map(|p| format!("{}/{}", p.prefix, p.len)).collect::<Vec<_>>().join(", ")
}

fn summary(l: &Lease) -> String {
    let address = l.addresses.first().map_or("none".to_owned(), |a| a.addr.to_string());
    format!("prefixes {}; address {address}", prefixes_text(l))
}

fn lease_attributes(l: &Lease) -> Value {
    json!({
        "prefixes": l.prefixes.iter().map(|p| format!("{}/{}", p.prefix, p.len)).collect::<Vec<_>>(),
        "address": l.addresses.first().map(|a| a.addr),
        "dns": l.dns,
        "server": l.server_id.as_deref().map(hex),
    })
}

/// What the file says after a Release or when a server took everything away.
fn empty_lease(wall: std::time::SystemTime) -> Dhcp6Lease {
    Dhcp6Lease {
        valid_until: Timestamp::from_system(wall),
        prefixes: Vec::new(),
        dns: Vec::new(),
        delegations: Vec::new(),
        renew_after: None,
        rebind_after: None,
        server_duid: None,
        address: None,
    }
}

fn load_settings(perm: &std::path::Path, control: &Control) -> Settings {
    match Settings::load(perm) {
        Ok(s) => {
            control.set_condition("ConfigValid", Some(true), "Loaded", "");
            s
        }
        Err(e) => {
            log_error!("{e}; using the defaults");
            control.set_condition("ConfigValid", Some(false), "ConfigInvalid", &e.to_string());
            Settings::default()
        }
    }
}

fn load_lease(perm: &std::path::Path) -> Option<Lease> {
    let path = runtime::perm::dhcp6_lease_path(perm);
    match runtime::statefile::read_json::<Dhcp6Lease>(&path) {
        Ok(Some(file)) => Lease::from_perm(&file, runtime::clock::now(), runtime::clock::wall_now()),
        Ok(None) => None,
        Err(e) => {
            log_error!("{e}; starting without a stored lease");
            None
        }
    }
}

impl Handler for Service {
    fn poll_at(&self) -> Option<Instant> {
        self.client.as_ref().and_then(Client::poll_at)
    }

    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        self.drive(cx);
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, token: Token, _ready: Ready) {
        if token == SOCKET {
            self.receive(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
        match tag {
            TAG_SETUP => {
                self.setup_timer_armed = false;
                self.setup(cx);
            }
            TAG_PERSIST => {
                self.persist_timer_armed = false;
                self.persist(cx);
            }
            TAG_RELEASE_DEADLINE => {
                log_warn!("the Release is taking too long; exiting {EXIT_DO_NOT_RESTART}");
                cx.stop(EXIT_DO_NOT_RESTART);
            }
            _ => {}
        }
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        let settings = load_settings(&self.perm, &self.control);
        if settings != self.settings {
            log_info!("config changed: {settings:?}");
            self.settings = settings;
            if let Some(c) = &mut self.client {
                c.set_request(settings.request_address, settings.prefix_length_hint);
            }
        }
        self.setup(cx);
    }

    fn on_renew(&mut self, cx: &mut Context<'_>) {
        if let Some(c) = &mut self.client {
            log_info!("renewing on request");
            c.renew(cx.now());
        }
        self.drive(cx);
    }

    fn on_release(&mut self, cx: &mut Context<'_>) {
        log_info!("SIGUSR2: releasing");
        self.releasing = true;
        match &mut self.client {
            Some(c) => {
                c.release(cx.now());
                cx.add_timer(cx.now() + RELEASE_DEADLINE, TAG_RELEASE_DEADLINE);
                self.drive(cx);
            }
            None => {
                // Not talking to a server yet: stop using what the file holds anyway.
                if self.stored.take().is_some() {
                    let path = runtime::perm::dhcp6_lease_path(&self.perm);
                    match runtime::statefile::write_json(&path, &empty_lease(runtime::clock::wall_now())) {
                        Ok(()) => runtime::notify::notify_all(&self.run_dir, &READERS, Signal::Usr1),
                        Err(e) => log_error!("cannot write the lease: {e}"),
                    }
                }
                cx.stop(EXIT_DO_NOT_RESTART);
            }
        }
    }
}

/// Runs the service until SIGTERM (exit 0) or a Release (exit 125).
pub fn run(base: Base) -> Result<i32, Box<dyn Error>> {
    let mut service = Service::new(&base);
    let Base { mut event_loop, pid_file, socket, .. } = base;
    event_loop.add_timer(runtime::clock::now(), TAG_SETUP);
    service.setup_timer_armed = true;
    let code = event_loop.run(&mut service)?;
    drop((pid_file, socket));
    Ok(code)
}
