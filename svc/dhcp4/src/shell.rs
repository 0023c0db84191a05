//! The shell around the core: the uplink's raw socket (the client has no
//! address while it asks for one), a UDP socket for unicast renewals once the
//! address is configured, the files, the control API and the signals.
//!
//! One event loop: the raw socket and the UDP socket are its sources, the
//! core's `poll_at` its deadline, and a housekeeping timer looks for the
//! interface (it may appear late: netconfigd renames NICs to `uplink0`) and for
//! wall-clock jumps (no RTC: the clock leaps when NTP first syncs).

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use dhcp4::{Action, Client, Destination, DropReason, Event, Identity, Outgoing, Random, StateName, Transmit};
use runtime::control::{Control, Phase};
use runtime::packet::{ETH_P_IP, Framing, PACKET_OUTGOING, PacketSocket};
use runtime::perm::Dhcp4Lease;
use runtime::service::{Base, EXIT_DO_NOT_RESTART};
use runtime::{Context, Handler, Ready, Signal, bpf, clock, frame, log_debug, log_info, log_warn, netif, notify};
use serde_json::{Value, json};

use crate::store::{Store, Stored};

const RAW: runtime::mio::Token = runtime::mio::Token(0);
const HOUSEKEEPING: u64 = 1;
/// How often to look for a missing interface.
const LINK_RETRY: Duration = Duration::from_secs(1);
/// How often to check the interface index and the wall clock otherwise.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10);
/// A wall clock that moved this much against the monotonic one has jumped.
const CLOCK_JUMP: Duration = Duration::from_secs(2);
/// Packets handled per wake-up before letting timers run.
const BATCH: usize = 64;
/// Receive buffer: a jumbo frame.
const BUFFER: usize = 9216;
/// IP TTL of what we send (RFC 1122 §3.2.1.7's default).
const TTL: u8 = 64;
const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;

/// Transaction IDs and jitter from splitmix64, seeded from the kernel.
#[derive(Debug)]
pub struct Prng(u64);

impl Prng {
    /// Seeded from `/dev/urandom`, or (should that fail) from the clock, pid and MAC.
    #[must_use]
    pub fn seeded(mac: [u8; 6]) -> Self {
        use std::io::Read;
        let mut seed = [0u8; 8];
        let from_kernel = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed));
        if from_kernel.is_err() {
            let nanos = clock::wall_now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let mut m = [0u8; 8];
            m[..6].copy_from_slice(&mac);
            #[allow(clippy::cast_possible_truncation)] // mixing bits, truncation intended
            let mixed = (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32) ^ u64::from_le_bytes(m);
            seed = mixed.to_le_bytes();
        }
        Self(u64::from_le_bytes(seed))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Random for Prng {
    fn xid(&mut self) -> u32 {
        #[allow(clippy::cast_possible_truncation)] // the high half of a random word
        let x = (self.next() >> 32) as u32;
        x
    }
    fn jitter_ms(&mut self) -> i32 {
        i32::try_from(self.next() % 2001).unwrap_or(0) - 1000
    }
}

struct Link {
    socket: PacketSocket,
    ifindex: u32,
}

struct Unicast {
    socket: runtime::mio::net::UdpSocket,
    local: Ipv4Addr,
}

/// The service.
pub struct Shell {
    uplink: String,
    run: PathBuf,
    control: Control,
    store: Store,
    hostname: Option<String>,
    spoofed: Option<[u8; 6]>,
    link: Option<Link>,
    unicast: Option<Unicast>,
    client: Option<Client<Prng>>,
    stored: Option<Stored>,
    /// lease.json as last written or found.
    doc: Option<Dhcp4Lease>,
    /// The link-layer source of the last packet read, and of the last ACK.
    last_src_mac: Option<[u8; 6]>,
    server_mac: Option<[u8; 6]>,
    lost: Option<Ipv4Addr>,
    clock_anchor: (Instant, SystemTime),
    waiting_logged: bool,
}

/// Runs dhcp4 until it is stopped or released.
pub fn run(mut base: Base) -> Result<i32, Box<dyn std::error::Error>> {
    let store = Store::new(&base.args.perm);
    let hostname = rustix::system::uname().nodename().to_str().ok().map(str::to_owned);
    let mut shell = Shell {
        uplink: base.args.uplink.clone(),
        run: base.args.run.clone(),
        control: base.control.clone(),
        spoofed: store.spoofed_mac(&base.args.uplink),
        stored: store.load(clock::wall_now()),
        store,
        hostname,
        link: None,
        unicast: None,
        client: None,
        doc: None,
        last_src_mac: None,
        server_mac: None,
        lost: None,
        clock_anchor: (clock::now(), clock::wall_now()),
        waiting_logged: false,
    };
    shell.doc = shell.stored.as_ref().and_then(|s| s.doc.clone());
    let now = clock::now();
    shell.try_link(base.event_loop.registry(), now);
    let next = if shell.link.is_some() { HOUSEKEEPING_EVERY } else { LINK_RETRY };
    base.event_loop.add_timer(now + next, HOUSEKEEPING);
    shell.drive(now);
    let code = base.event_loop.run(&mut shell)?;
    Ok(code)
}

impl Shell {
    fn identity(&self, mac: [u8; 6]) -> Identity {
        Identity::new(mac, self.hostname.as_deref())
    }

    /// Opens the raw socket once the interface exists, and makes the client
    /// when it is first possible (the MAC comes from the interface).
    fn try_link(&mut self, registry: &runtime::mio::Registry, now: Instant) {
        let ifindex = match netif::index(&self.uplink) {
            Ok(i) => i,
            Err(e) => {
                if !self.waiting_logged {
                    log_warn!("waiting for {} to appear ({e})", self.uplink);
                    self.waiting_logged = true;
                }
                self.drop_link(registry);
                return;
            }
        };
        if self.link.as_ref().is_some_and(|l| l.ifindex == ifindex) {
            return;
        }
        self.drop_link(registry);
        let opened = bpf::ipv4_udp_to_port(bpf::Link::Cooked, CLIENT_PORT)
            .map_err(io::Error::other)
            .and_then(|filter| PacketSocket::open(ifindex, ETH_P_IP, Framing::Cooked, Some(&filter)))
            .and_then(|mut socket| {
                registry.register(&mut socket, RAW, runtime::mio::Interest::READABLE)?;
                Ok(socket)
            });
        let socket = match opened {
            Ok(s) => s,
            Err(e) => {
                log_warn!("cannot open a packet socket on {}: {e}; retrying", self.uplink);
                return;
            }
        };
        let mac = match self.spoofed {
            Some(m) => m,
            None => match netif::mac(&self.uplink) {
                Ok(m) => m,
                Err(e) => {
                    log_warn!("cannot read the MAC address of {}: {e}; retrying", self.uplink);
                    return;
                }
            },
        };
        log_info!(
            "listening on {} (index {ifindex}, MAC {}{})",
            self.uplink,
            netif::format_mac(mac),
            if self.spoofed.is_some() { " from interfaces.json" } else { "" }
        );
        self.waiting_logged = false;
        self.link = Some(Link { socket, ifindex });
        self.ensure_client(mac, now);
    }

    fn drop_link(&mut self, registry: &runtime::mio::Registry) {
        if let Some(mut link) = self.link.take() {
            let _ = registry.deregister(&mut link.socket);
            log_warn!("{} (index {}) is gone; waiting for it to come back", self.uplink, link.ifindex);
        }
    }

    fn ensure_client(&mut self, mac: [u8; 6], now: Instant) {
        let identity = self.identity(mac);
        if let Some(client) = &mut self.client {
            if client.identity().mac != mac {
                log_info!("MAC address is now {}; verifying the lease under it", netif::format_mac(mac));
            }
            client.set_identity(now, identity);
            return;
        }
        let rng = Prng::seeded(mac);
        self.client = Some(match self.stored.take() {
            Some(stored) => match Client::restore(identity.clone(), rng, now, stored.ack, stored.remaining) {
                Ok(c) => {
                    let held = c.held().map(|h| h.lease.client_ip);
                    log_info!(
                        "verifying the stored lease of {} (INIT-REBOOT); it {}",
                        held.map_or_else(String::new, |ip| ip.to_string()),
                        match stored.remaining {
                            Some(r) => format!("runs for {} s more by the wall clock", r.as_secs()),
                            None => "ran out by the wall clock, but the server may still have it".into(),
                        }
                    );
                    c
                }
                Err(e) => {
                    log_warn!("the stored ACK is unusable ({e}); discovering");
                    Client::new(identity, Prng::seeded(mac), now)
                }
            },
            None => Client::new(identity, rng, now),
        });
    }

    /// Runs the core until it has nothing more to say at `now`.
    fn drive(&mut self, now: Instant) {
        while let Some(action) = self.client.as_mut().and_then(|c| c.poll(now)) {
            match action {
                Action::Send(t) => self.send(&t),
                Action::Event(e) => self.on_event(e, now),
            }
        }
        self.publish();
    }

    fn send(&mut self, t: &Transmit) {
        let result = match t.destination {
            Destination::Broadcast { source } => self.send_raw(t, source, Ipv4Addr::BROADCAST, frame::BROADCAST_MAC),
            Destination::Unicast { source, server } => self.send_unicast(t, source, server),
        };
        if let Some(c) = self.client.as_mut() {
            c.metrics_mut().count_send(t.kind, result.is_ok());
        }
        match result {
            Ok(()) => log_debug!("sent {} (xid {:#010x}) to {:?}", t.kind.as_str(), t.xid, t.destination),
            Err(e) if t.kind == Outgoing::RequestRenewing => log_warn!(
                "cannot send the renewal by unicast ({e}): is the address configured on {} yet? \
                 the lease will be rebound by broadcast at T2",
                self.uplink
            ),
            Err(e) => log_warn!("cannot send {} on {}: {e}; will retransmit", t.kind.as_str(), self.uplink),
        }
    }

    fn send_raw(&self, t: &Transmit, source: Ipv4Addr, dest: Ipv4Addr, dest_mac: [u8; 6]) -> io::Result<()> {
        let link = self.link.as_ref().ok_or_else(|| io::Error::other(format!("{} does not exist", self.uplink)))?;
        let packet = frame::build_udp4_ip(
            SocketAddrV4::new(source, CLIENT_PORT),
            SocketAddrV4::new(dest, SERVER_PORT),
            TTL,
            &t.payload,
        );
        link.socket.send_to(&packet, dest_mac).map(|_| ())
    }

    /// Unicast from `source`:68 through a UDP socket bound to that address and
    /// to the uplink: it only works once the address is configured, which is
    /// netconfigd's job after our SIGUSR1.
    fn send_unicast(&mut self, t: &Transmit, source: Ipv4Addr, server: Ipv4Addr) -> io::Result<()> {
        if self.unicast.as_ref().is_none_or(|u| u.local != source) {
            self.unicast = None;
            let std_socket = std::net::UdpSocket::bind(SocketAddrV4::new(source, CLIENT_PORT))?;
            runtime::sys::bind_to_device(std_socket.as_fd(), &self.uplink)?;
            std_socket.set_nonblocking(true)?;
            self.unicast = Some(Unicast { socket: runtime::mio::net::UdpSocket::from_std(std_socket), local: source });
        }
        let Some(u) = self.unicast.as_ref() else {
            return Err(io::Error::other("no unicast socket"));
        };
        u.socket.send_to(&t.payload, SocketAddrV4::new(server, SERVER_PORT).into()).map(|_| ())
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Bound | Event::Renewed { .. } => {
                let topic = match event {
                    Event::Renewed { .. } => "dhcp4.lease.renewed",
                    _ => "dhcp4.lease.bound",
                };
                self.server_mac = self.last_src_mac;
                self.lost = None;
                self.persist(now);
                let Some(doc) = self.doc.clone() else { return };
                if self.unicast.as_ref().is_some_and(|u| Some(u.local) != doc.client_ip) {
                    self.unicast = None;
                }
                notify::notify_all(&self.run, &["netconfigd", "dnsd"], Signal::Usr1);
                let mut attributes = lease_json(&doc);
                if let Event::Renewed { via } = event {
                    attributes["via"] = json!(via.as_str());
                }
                log_info!(
                    "{} {}/{} router {} dns {:?} from {} for {} s",
                    if topic.ends_with("bound") { "bound" } else { "renewed" },
                    show(doc.client_ip),
                    doc.prefix_len(),
                    show(doc.router),
                    doc.dns,
                    show(doc.server_id),
                    doc.lease_seconds.unwrap_or(0)
                );
                self.control.emit(topic, attributes);
            }
            Event::Expired => {
                let ip = self.client.as_ref().and_then(|c| c.held()).map(|h| h.lease.client_ip);
                log_warn!("the lease of {} expired; it stays configured while we look for a server", show(ip));
                self.control.emit("dhcp4.lease.expired", json!({"client_ip": show(ip)}));
            }
            Event::Lost { address, server, message } => {
                log_warn!(
                    "{} refused {address} (DHCPNAK{}); discovering",
                    show(server),
                    message.as_deref().map_or_else(String::new, |m| format!(": {m}"))
                );
                self.lost = Some(address);
                self.unicast = None;
                self.store.forget_ack();
                self.control.emit(
                    "dhcp4.lease.lost",
                    json!({"client_ip": address.to_string(), "server_id": show(server), "message": message}),
                );
            }
        }
    }

    /// Writes the held lease with wall times derived from its monotonic grant time.
    fn persist(&mut self, now: Instant) {
        let Some(held) = self.client.as_ref().and_then(|c| c.held()) else { return };
        let granted = held.granted_at.map_or_else(clock::wall_now, |g| wall_at(now, clock::wall_now(), g));
        match self.store.save(held, granted) {
            Ok(doc) => self.doc = Some(doc),
            Err(e) => {
                log_warn!("cannot persist the lease: {e}");
                self.doc = Some(held.lease.to_perm(granted));
            }
        }
    }

    /// Rewrites lease.json when the wall clock jumped (the lease's times are
    /// kept monotonic; only what is shown and persisted follows the clock).
    fn check_clock(&mut self, now: Instant) {
        let wall = clock::wall_now();
        let moved = clock_moved(self.clock_anchor, now, wall);
        self.clock_anchor = (now, wall);
        if moved < CLOCK_JUMP {
            return;
        }
        let Some(held) = self.client.as_ref().and_then(|c| c.held()).filter(|h| h.granted_at.is_some()) else {
            return;
        };
        let granted = held.granted_at.map_or(wall, |g| wall_at(now, wall, g));
        let doc = held.lease.to_perm(granted);
        log_info!("the wall clock moved by {} s; rewriting the lease's times", moved.as_secs());
        if let Err(e) = self.store.save_doc(&doc) {
            log_warn!("cannot rewrite the lease: {e}");
        }
        self.doc = Some(doc);
    }

    fn read_raw(&mut self, cx: &mut Context<'_>) {
        let mut buf = vec![0u8; BUFFER];
        for _ in 0..BATCH {
            let Some(link) = self.link.as_ref() else { return };
            match link.socket.recv(&mut buf) {
                Ok((n, meta)) => {
                    if meta.pkttype == PACKET_OUTGOING {
                        continue;
                    }
                    let now = clock::now();
                    self.last_src_mac = Some(meta.src_mac);
                    let Some(client) = self.client.as_mut() else { continue };
                    match frame::parse_udp4_ip(&buf[..n]) {
                        Ok(udp) => client.handle_packet(now, udp.payload),
                        Err(e) => {
                            client.metrics_mut().received += 1;
                            client.metrics_mut().count_drop(DropReason::Frame);
                            log_debug!("dropped a frame: {e}");
                        }
                    }
                    self.drive(now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.drain_udp();
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ENETDOWN and friends: the interface went down or away;
                    // housekeeping reopens the socket if its index changed.
                    log_warn!("receiving on {}: {e}", self.uplink);
                    return;
                }
            }
        }
        cx.ready_again(RAW);
    }

    /// Replies to our unicast renewals reach the raw socket, which is where the
    /// core hears them, and the UDP socket, whose copies are dropped unread
    /// each time the raw socket had something (so it needs no registration).
    fn drain_udp(&mut self) {
        let Some(u) = self.unicast.as_ref() else { return };
        let mut buf = [0u8; 2048];
        for _ in 0..BATCH {
            if u.socket.recv_from(&mut buf).is_err() {
                return;
            }
        }
    }

    fn publish(&self) {
        let mut c = self.control.update();
        let Some(client) = &self.client else {
            c.set_phase(Phase::Pending);
            let missing = self.link.is_none();
            c.set_condition(
                "InterfaceReady",
                Some(!missing),
                if missing { "Missing" } else { "Open" },
                &format!("{} {}", self.uplink, if missing { "does not exist yet" } else { "is open" }),
            );
            c.set_condition("LeaseValid", Some(false), "NoLease", "no lease yet");
            c.set_field("state", Value::Null);
            c.set_field("lease", self.doc.as_ref().map_or(Value::Null, lease_json));
            return;
        };
        let state = client.state();
        let valid = client.has_valid_lease();
        c.set_phase(if valid { Phase::Bound } else { Phase::Pending });
        c.set_condition(
            "InterfaceReady",
            Some(self.link.is_some()),
            if self.link.is_some() { "Open" } else { "Missing" },
            &format!("{} {}", self.uplink, if self.link.is_some() { "is open" } else { "is gone" }),
        );
        let held = client.held();
        let (reason, message) = match held {
            Some(h) if !h.expired => (camel(state), format!("{} held, {}", h.lease.client_ip, state.as_str())),
            Some(h) => ("Expired", format!("{} expired; kept configured while {}", h.lease.client_ip, state.as_str())),
            None => match self.lost {
                Some(ip) => ("Lost", format!("{ip} was refused (DHCPNAK); {}", state.as_str())),
                None => ("NoLease", format!("no lease yet; {}", state.as_str())),
            },
        };
        c.set_condition("LeaseValid", Some(valid), reason, &message);
        c.set_field("state", json!(state.as_str()));
        c.set_field("interface", json!(self.uplink));
        c.set_field("mac", json!(netif::format_mac(client.identity().mac)));
        c.set_field("xid", client.xid().map_or(Value::Null, |x| json!(format!("{x:#010x}"))));
        let lease = match (held, &self.doc) {
            (Some(h), Some(doc)) if doc.client_ip == Some(h.lease.client_ip) => {
                let mut j = lease_json(doc);
                j["expired"] = json!(h.expired);
                j
            }
            (Some(h), _) => {
                let mut j = lease_json(&h.lease.to_perm(SystemTime::UNIX_EPOCH));
                // Times unknown (restored without lease.json): do not show 1970.
                for k in ["valid_until", "renew_after", "rebind_after"] {
                    j[k] = Value::Null;
                }
                j["expired"] = json!(h.expired);
                j
            }
            (None, _) => Value::Null,
        };
        c.set_field("lease", lease);
        c.set_field("metrics", client.metrics().to_json());
    }
}

/// How far the wall clock moved against the monotonic one since `anchor`
/// (both read together then), in either direction.
fn clock_moved(anchor: (Instant, SystemTime), now: Instant, wall: SystemTime) -> Duration {
    let (then, then_wall) = anchor;
    let expected = then_wall.checked_add(now.saturating_duration_since(then)).unwrap_or(then_wall);
    match wall.duration_since(expected) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    }
}

/// The wall time of monotonic instant `at`, given that `now` is `wall_now`.
fn wall_at(now: Instant, wall_now: SystemTime, at: Instant) -> SystemTime {
    if at <= now {
        wall_now.checked_sub(now - at).unwrap_or(wall_now)
    } else {
        wall_now.checked_add(at - now).unwrap_or(wall_now)
    }
}

fn show<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn camel(state: StateName) -> &'static str {
    match state {
        StateName::Init => "Init",
        StateName::Selecting => "Selecting",
        StateName::Requesting => "Requesting",
        StateName::Bound => "Bound",
        StateName::Renewing => "Renewing",
        StateName::Rebinding => "Rebinding",
        StateName::InitReboot => "InitReboot",
    }
}

fn lease_json(doc: &Dhcp4Lease) -> Value {
    let mut j = serde_json::to_value(doc).unwrap_or(Value::Null);
    j["prefix_len"] = json!(doc.prefix_len());
    j
}

impl Handler for Shell {
    fn poll_at(&self) -> Option<Instant> {
        self.client.as_ref().and_then(Client::poll_at)
    }

    fn on_deadline(&mut self, cx: &mut Context<'_>) {
        self.drive(cx.now());
    }

    fn on_ready(&mut self, cx: &mut Context<'_>, token: runtime::mio::Token, _ready: Ready) {
        if token == RAW {
            self.read_raw(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
        if tag != HOUSEKEEPING {
            return;
        }
        let now = cx.now();
        self.try_link(cx.registry(), now);
        self.check_clock(now);
        self.drive(now);
        let next = if self.link.is_some() { HOUSEKEEPING_EVERY } else { LINK_RETRY };
        cx.add_timer(now + next, HOUSEKEEPING);
    }

    fn on_reload(&mut self, cx: &mut Context<'_>) {
        let spoofed = self.store.spoofed_mac(&self.uplink);
        if spoofed == self.spoofed {
            return;
        }
        self.spoofed = spoofed;
        let mac = match spoofed {
            Some(m) => Some(m),
            None => netif::mac(&self.uplink).ok(),
        };
        if let Some(mac) = mac
            && self.client.is_some()
        {
            self.ensure_client(mac, cx.now());
            self.drive(cx.now());
        }
    }

    fn on_renew(&mut self, cx: &mut Context<'_>) {
        log_info!("renewing on request");
        if let Some(c) = self.client.as_mut() {
            c.renew_now(cx.now());
        }
        self.drive(cx.now());
    }

    /// SIGUSR2: DHCPRELEASE, forget the ACK, exit 125 so init leaves us stopped.
    fn on_release(&mut self, cx: &mut Context<'_>) {
        if self.client.is_none() {
            log_info!("{} never appeared: nothing to release", self.uplink);
        }
        if let Some(client) = self.client.take() {
            let ip = client.held().map(|h| h.lease.client_ip);
            match client.release() {
                Some(t) => {
                    self.send_release(&t);
                    self.control.emit("dhcp4.lease.released", json!({"client_ip": show(ip)}));
                }
                None => log_info!("nothing to release"),
            }
        }
        self.store.forget_ack();
        cx.stop(EXIT_DO_NOT_RESTART);
    }
}

impl Shell {
    /// A RELEASE needs no answer, so when the unicast socket cannot be used
    /// (the address is not configured) it goes out through the raw socket to
    /// the link address the last ACK came from.
    fn send_release(&mut self, t: &Transmit) {
        let Destination::Unicast { source, server } = t.destination else { return };
        match self.send_unicast(t, source, server) {
            Ok(()) => log_info!("released {source} to {server}"),
            Err(e) => {
                let mac = self.server_mac.unwrap_or(frame::BROADCAST_MAC);
                match self.send_raw(t, source, server, mac) {
                    Ok(()) => log_info!(
                        "released {source} to {server} (raw, to {}; unicast failed: {e})",
                        netif::format_mac(mac)
                    ),
                    Err(e2) => log_warn!("cannot send the release to {server}: {e}; {e2}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_jump_is_told_from_time_passing() {
        let t0 = clock::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(clock_moved((t0, w0), later, w0 + Duration::from_secs(60)), Duration::ZERO);
        // NTP's first sync on a router without an RTC: from 1970 to today.
        let synced = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(clock_moved((t0, w0), later, synced) > Duration::from_secs(1_000_000));
        assert_eq!(clock_moved((t0, w0), later, w0), Duration::from_secs(60), "backwards counts too");
    }

    #[test]
    fn wall_times_of_monotonic_instants() {
        let now = clock::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(5000);
        assert_eq!(wall_at(now, wall, now - Duration::from_secs(10)), wall - Duration::from_secs(10));
        assert_eq!(wall_at(now, wall, now + Duration::from_secs(10)), wall + Duration::from_secs(10));
    }

    #[test]
    fn the_prng_gives_varied_xids_and_bounded_jitter() {
        let mut r = Prng(42);
        let xids: std::collections::BTreeSet<u32> = (0..100).map(|_| r.xid()).collect();
        assert_eq!(xids.len(), 100);
        let jitter: Vec<i32> = (0..2000).map(|_| r.jitter_ms()).collect();
        assert!(jitter.iter().all(|j| (-1000..=1000).contains(j)));
        assert!(jitter.iter().any(|j| *j < -900) && jitter.iter().any(|j| *j > 900), "spread over the range");
        assert_ne!(Prng::seeded([0; 6]).0, Prng::seeded([0; 6]).0, "seeded from the kernel");
    }
}
