//! The DHCPv4 server core (RFC 2131 §4.3): takes `(now, wall, datagram)`,
//! returns the reply to send, and keeps the lease changes, events and counters
//! for the shell to persist, publish and show. It never touches a socket or a
//! clock; randomness comes from a seed.
//!
//! Decisions, with their sources:
//! - Authoritative for its subnet, like router7 and dnsmasq's
//!   `--dhcp-authoritative`: a REQUEST for a free pool address is granted even
//!   without a record of the client (so a lost leases.json costs nobody their
//!   address), and one for an address that is not the client's to have is
//!   NAKed rather than ignored (RFC 2131 §4.3.2).
//! - Clients are identified by chaddr, not option 61 (router7's leases.json is
//!   keyed by MAC, and so are static leases).
//! - Relayed messages (giaddr ≠ 0) are served only when the relay sits on our
//!   own subnet (a relay on the LAN, or perfdhcp): we have one pool and do not
//!   route to other subnets.
//! - Each message is answered as soon as it is handled. The binding changes
//!   are written by the shell within a short bound, not before the ACK (RFC
//!   2131 §3.1 step 4 commits first); why is in the crate README.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use runtime::perm::Dhcp4dLease;
use runtime::timefmt::Timestamp;
use serde_json::{Value, json};

use crate::config::Config;
use crate::hostname;
use crate::leases::{Binding, Expiry, LeaseRecord, LeaseTable, remaining_from_file};
use crate::quirks;
use crate::ratelimit::RateLimiter;
use crate::stats::Stats;
use crate::wire::{Destination, DropReason, Mac, MessageType, Reply, Request, code};

/// What happened to a lease, for the control API's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseEvent {
    /// A client got an address it did not hold a running lease for.
    Granted {
        /// The address.
        addr: Ipv4Addr,
        /// The client.
        mac: Mac,
        /// Its name, if any.
        hostname: String,
        /// Lease time; `None` for a static lease from leases.json.
        lease: Option<Duration>,
    },
    /// A client gave its address back (RELEASE).
    Released {
        /// The address.
        addr: Ipv4Addr,
        /// The client.
        mac: Mac,
        /// Its name, if any.
        hostname: String,
    },
    /// A lease ran out.
    Expired {
        /// The address.
        addr: Ipv4Addr,
        /// The last holder.
        mac: Mac,
        /// Its name, if any.
        hostname: String,
    },
    /// A client found its address in use by someone else (DECLINE).
    Declined {
        /// The address, now quarantined.
        addr: Ipv4Addr,
        /// The client.
        mac: Mac,
    },
}

impl LeaseEvent {
    /// The event topic.
    #[must_use]
    pub fn topic(&self) -> &'static str {
        match self {
            Self::Granted { .. } => "dhcp4d.lease.granted",
            Self::Released { .. } => "dhcp4d.lease.released",
            Self::Expired { .. } => "dhcp4d.lease.expired",
            Self::Declined { .. } => "dhcp4d.lease.declined",
        }
    }

    /// The event attributes.
    #[must_use]
    pub fn attributes(&self) -> Value {
        let mac = |m: &Mac| runtime::netif::format_mac(*m);
        match self {
            Self::Granted { addr, mac: m, hostname, lease } => json!({
                "addr": addr.to_string(),
                "hardware_addr": mac(m),
                "hostname": hostname,
                "lease_seconds": lease.map(|l| l.as_secs()),
            }),
            Self::Released { addr, mac: m, hostname } | Self::Expired { addr, mac: m, hostname } => json!({
                "addr": addr.to_string(),
                "hardware_addr": mac(m),
                "hostname": hostname,
            }),
            Self::Declined { addr, mac: m } => json!({
                "addr": addr.to_string(),
                "hardware_addr": mac(m),
            }),
        }
    }
}

/// SplitMix64: small, fast, and plenty for picking pool addresses.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The client's state for a REQUEST (RFC 2131 §4.3.2), told apart by option
/// 54, option 50 and ciaddr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Option 54 present: answering an OFFER.
    Selecting,
    /// No option 54, option 50 present: rebooting with a remembered address.
    InitReboot,
    /// No option 54 or 50, ciaddr set: extending a lease. RENEWING (unicast to
    /// us) and REBINDING (broadcast) differ only in the IP destination, which
    /// the shell's socket does not report; both are answered alike.
    RenewingOrRebinding,
}

impl RequestState {
    fn of(req: &Request) -> Option<(Self, Ipv4Addr)> {
        let ciaddr = (!req.ciaddr.is_unspecified()).then_some(req.ciaddr);
        if req.server_id.is_some() {
            // ciaddr MUST be zero here; a client that fills it instead of
            // option 50 is still understood.
            Some((Self::Selecting, req.requested_ip.or(ciaddr)?))
        } else if let Some(r) = req.requested_ip {
            Some((Self::InitReboot, r))
        } else {
            Some((Self::RenewingOrRebinding, ciaddr?))
        }
    }
}

/// The core; see the module docs.
#[derive(Debug)]
pub struct Server {
    cfg: Config,
    table: LeaseTable,
    limiter: RateLimiter,
    rng: SplitMix64,
    stats: Arc<Stats>,
    events: Vec<LeaseEvent>,
}

fn table_for(cfg: &Config) -> LeaseTable {
    let statics: Vec<(Mac, Ipv4Addr)> = cfg.static_leases.iter().map(|s| (s.mac, s.addr)).collect();
    LeaseTable::new(cfg.pool_start, cfg.pool_end, &statics)
}

impl Server {
    /// A server with no leases; `seed` drives address picking.
    #[must_use]
    pub fn new(cfg: Config, seed: u64, stats: Arc<Stats>) -> Self {
        let table = table_for(&cfg);
        let s = Self { cfg, table, limiter: RateLimiter::new(), rng: SplitMix64(seed), stats, events: Vec::new() };
        s.update_gauges();
        s
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The lease table (read-only).
    #[must_use]
    pub fn table(&self) -> &LeaseTable {
        &self.table
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn update_gauges(&self) {
        self.stats.leases_in_use.set(self.table.in_use() as f64);
        self.stats.pool_free.set(self.table.free_count() as f64);
        self.stats.pool_size.set(f64::from(self.cfg.pool_size()));
    }

    /// Takes router7's leases.json entries (read at `now`, wall time `wall`).
    /// Entries that do not fit the configuration are left out with a warning
    /// each; the returned warnings say which and why.
    pub fn load(&mut self, leases: &[Dhcp4dLease], now: Instant, wall: SystemTime) -> Vec<String> {
        let mut warnings = Vec::new();
        let router7_start = u32::from(self.cfg.server).wrapping_add(1);
        for (i, l) in leases.iter().enumerate() {
            let Some(mac) = runtime::netif::parse_mac(&l.hardware_addr) else {
                warnings.push(format!("lease {i}: hardware_addr {:?} is not a MAC address; skipped", l.hardware_addr));
                continue;
            };
            // router7 looked leases up by `num` (offset from the server address
            // + 1); `addr` is what dnsd and people read. Prefer the address.
            let from_num =
                i64::from(router7_start).checked_add(l.num).and_then(|n| u32::try_from(n).ok()).map(Ipv4Addr::from);
            let addr = match (l.addr, from_num) {
                (Some(a), Some(n)) if a != n => {
                    warnings.push(format!("lease {i}: addr {a} and num {} ({n}) disagree; using {a}", l.num));
                    a
                }
                (Some(a), _) => a,
                (None, Some(n)) => n,
                (None, None) => {
                    warnings.push(format!("lease {i}: no address; skipped"));
                    continue;
                }
            };
            if !self.cfg.subnet.is_host(addr) || addr == self.cfg.server {
                warnings.push(format!("lease {i}: {addr} is not a client address of {}; skipped", self.cfg.subnet));
                continue;
            }
            let expiry = if l.is_static() {
                Expiry::Never
            } else {
                let longest = self.cfg.lease_time.max(l.last_ack.until(l.expiry));
                Expiry::At(now + remaining_from_file(l.expiry.to_system(), wall, longest))
            };
            let binding = Binding {
                mac,
                expiry,
                hostname: hostname::sanitize(l.hostname.as_bytes()).unwrap_or_default(),
                hostname_override: l.hostname_override.clone(),
                last_ack: if l.last_ack.is_go_zero() { l.expiry } else { l.last_ack },
                ended: matches!(expiry, Expiry::At(t) if t <= now),
            };
            if let Err(why) = self.admit(addr, &binding) {
                warnings.push(format!("lease {i} ({addr}, {}): {why}; skipped", l.hardware_addr));
                continue;
            }
            self.table.put(addr, binding);
        }
        // Loading is not a change to write back.
        self.table.take_changes();
        self.update_gauges();
        warnings
    }

    /// Whether a stored binding may be taken into the table: it must not
    /// collide with a static lease or a binding that outranks it.
    fn admit(&self, addr: Ipv4Addr, b: &Binding) -> Result<(), String> {
        if let Some(owner) = self.cfg.static_leases.iter().find(|s| s.addr == addr)
            && owner.mac != b.mac
        {
            return Err(format!("the address is the static lease of {}", runtime::netif::format_mac(owner.mac)));
        }
        if let Some(fixed) = self.cfg.static_leases.iter().find(|s| s.mac == b.mac)
            && fixed.addr != addr
        {
            return Err(format!("this MAC has the static lease {}", fixed.addr));
        }
        let outranks = |old: &Binding| match (old.expiry, b.expiry) {
            (Expiry::Never, _) => true,
            (_, Expiry::Never) => false,
            (Expiry::At(o), Expiry::At(n)) => o >= n,
        };
        if let Some(old) = self.table.binding(addr)
            && outranks(old)
        {
            return Err("the address is listed twice; the longer lease wins".into());
        }
        if let Some(other) = self.table.address_of(b.mac)
            && let Some(old) = self.table.binding(other)
            && outranks(old)
        {
            return Err(format!("this MAC is listed twice; its lease of {other} wins"));
        }
        Ok(())
    }

    /// Every binding, for writing the lease file.
    #[must_use]
    pub fn records(&self) -> Vec<LeaseRecord> {
        self.table.records()
    }

    /// Switches to `cfg`, keeping every binding that still fits and every
    /// quarantine; pending offers are dropped. Bindings that no longer fit are
    /// returned as warnings and become changes to write.
    pub fn reconfigure(&mut self, cfg: Config, now: Instant) -> Vec<String> {
        let records = self.table.records();
        let quarantined = self.table.quarantined_addresses();
        self.cfg = cfg;
        self.table = table_for(&self.cfg);
        let mut warnings = Vec::new();
        let mut dropped = Vec::new();
        for r in records {
            let fits = self.cfg.subnet.is_host(r.addr) && r.addr != self.cfg.server;
            match (fits, self.admit(r.addr, &r.binding)) {
                (true, Ok(())) => self.table.put(r.addr, r.binding),
                (false, _) => {
                    warnings.push(format!("{} is outside {} now; its lease is dropped", r.addr, self.cfg.subnet));
                    dropped.push(r.addr);
                }
                (true, Err(why)) => {
                    warnings.push(format!("lease of {}: {why}; dropped", r.addr));
                    dropped.push(r.addr);
                }
            }
        }
        for (a, until) in quarantined {
            if self.table.in_pool(a) && until > now {
                self.table.quarantine(a, until);
            }
        }
        self.table.take_changes();
        // Re-announce dropped addresses so the file forgets them.
        for a in dropped {
            self.table.touch(a);
        }
        self.update_gauges();
        warnings
    }

    /// The next time [`Server::advance`] has work.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        self.table.poll_at()
    }

    /// Processes what is due at `now`: expired leases become events.
    pub fn advance(&mut self, now: Instant) {
        for e in self.table.advance(now) {
            self.stats.expirations.inc();
            self.events.push(LeaseEvent::Expired { addr: e.addr, mac: e.mac, hostname: e.hostname });
        }
        self.update_gauges();
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<LeaseEvent> {
        std::mem::take(&mut self.events)
    }

    /// The bindings changed since the last call (`None`: the address is no
    /// longer bound), for the lease file.
    pub fn take_changes(&mut self) -> Vec<(Ipv4Addr, Option<LeaseRecord>)> {
        self.table
            .take_changes()
            .into_iter()
            .map(|(a, b)| (a, b.map(|binding| LeaseRecord { addr: a, binding })))
            .collect()
    }

    /// Handles a datagram that arrived on port 67: the reply to send, if any.
    /// Whatever is dropped is counted by reason.
    pub fn handle_datagram(&mut self, now: Instant, wall: SystemTime, datagram: &[u8]) -> Option<Reply> {
        self.advance(now);
        let result = self.rate_limited_parse(now, datagram).and_then(|req| self.handle(now, wall, &req));
        self.update_gauges();
        match result {
            Ok(reply) => reply,
            Err(reason) => {
                self.stats.dropped(reason);
                None
            }
        }
    }

    fn rate_limited_parse(&mut self, now: Instant, datagram: &[u8]) -> Result<Request, DropReason> {
        // The cheap header checks come first, so a flood of garbage is
        // counted for what it is; the rate limit comes before option parsing.
        let mac = Request::check_header(datagram)?;
        if !self.limiter.allow(mac, now) {
            return Err(DropReason::RateLimited);
        }
        Request::parse(datagram)
    }

    /// Handles a parsed message.
    pub fn handle(&mut self, now: Instant, wall: SystemTime, req: &Request) -> Result<Option<Reply>, DropReason> {
        self.stats.received(req.kind);
        if !req.giaddr.is_unspecified() && !self.cfg.subnet.is_host(req.giaddr) {
            return Err(DropReason::NotForUs);
        }
        match req.kind {
            MessageType::Discover => Ok(self.discover(now, req)),
            MessageType::Request => self.request(now, wall, req).map(Some),
            MessageType::Decline => self.decline(now, req).map(|()| None),
            MessageType::Release => self.release(now, req).map(|()| None),
            MessageType::Inform => self.inform(req).map(Some),
            MessageType::Offer | MessageType::Ack | MessageType::Nak => Err(DropReason::UnexpectedType),
        }
    }

    /// Whether `mac` may have `a`: a client address of our subnet, available
    /// in the table.
    fn can_lease(&self, a: Ipv4Addr, mac: Mac, now: Instant) -> bool {
        self.cfg.subnet.is_host(a) && a != self.cfg.server && self.table.available_for(a, mac, now)
    }

    /// RFC 2131 §4.3.1: current binding (a static lease first), previous
    /// binding, the address offered a moment ago, the requested address, a
    /// new one; when the pool is out of never-used addresses, the one whose
    /// lease ended longest ago, then (a DISCOVER flood) the oldest offer.
    fn choose(&mut self, mac: Mac, hint: Option<Ipv4Addr>, now: Instant) -> Option<Ipv4Addr> {
        let candidates = [
            self.table.fixed_address_of(mac),
            self.table.address_of(mac),
            self.table.offer_of(mac, now),
            hint.filter(|h| self.table.in_pool(*h)),
        ];
        if let Some(a) = candidates.into_iter().flatten().find(|a| self.can_lease(*a, mac, now)) {
            return Some(a);
        }
        // A client whose static address is quarantined falls through to the pool.
        let random = self.rng.next();
        self.table
            .pick_free(random)
            .or_else(|| self.table.oldest_ended(mac, now))
            .or_else(|| self.table.steal_offer(mac, now))
            .filter(|a| self.can_lease(*a, mac, now))
    }

    fn discover(&mut self, now: Instant, req: &Request) -> Option<Reply> {
        let hint = req.requested_ip.or((!req.ciaddr.is_unspecified()).then_some(req.ciaddr));
        let Some(addr) = self.choose(req.chaddr, hint, now) else {
            // Counted, not logged per packet: the shell reports it periodically.
            self.stats.pool_exhausted.inc();
            return None;
        };
        if self.table.binding(addr).is_none_or(|b| b.mac != req.chaddr) {
            self.table.offer(addr, req.chaddr, now + self.cfg.offer_hold);
        }
        self.stats.offers.inc();
        Some(self.reply(req, MessageType::Offer, addr, true))
    }

    fn request(&mut self, now: Instant, wall: SystemTime, req: &Request) -> Result<Reply, DropReason> {
        let mac = req.chaddr;
        if let Some(sid) = req.server_id
            && sid != self.cfg.server
        {
            // The client chose another server's offer (RFC 2131 §4.3.2): ours is void.
            self.table.cancel_offer_of(mac);
            return Err(DropReason::NotForUs);
        }
        let (state, addr) = RequestState::of(req).ok_or(DropReason::Invalid)?;
        if !self.can_lease(addr, mac, now) {
            runtime::log_debug!("NAK {addr} to {} ({state:?})", runtime::netif::format_mac(mac));
            self.stats.naks.inc();
            return Ok(self.nak(req));
        }
        self.bind(addr, req, now, wall);
        self.stats.acks.inc();
        Ok(self.reply(req, MessageType::Ack, addr, true))
    }

    /// The name a client gets: a static lease's, else what it sent (option 81
    /// before 12, RFC 4702 §4), sanitised, unless it is reserved.
    fn hostname_for(&self, req: &Request) -> Option<Option<String>> {
        if let Some(s) = self.cfg.static_leases.iter().find(|s| s.mac == req.chaddr)
            && let Some(h) = &s.hostname
        {
            return Some(Some(h.clone()));
        }
        let sent = req
            .fqdn_label
            .as_deref()
            .and_then(hostname::sanitize)
            .or_else(|| req.hostname.as_deref().and_then(hostname::sanitize));
        match sent {
            None if req.fqdn_label.is_none() && req.hostname.is_none() => None,
            None => Some(None),
            Some(name) if hostname::is_reserved(&name, self.cfg.router_hostname.as_deref()) => {
                runtime::log_warn!(
                    "{} asked for the reserved name {name:?}; its lease gets no name",
                    runtime::netif::format_mac(req.chaddr)
                );
                Some(None)
            }
            Some(name) => Some(Some(name)),
        }
    }

    fn bind(&mut self, addr: Ipv4Addr, req: &Request, now: Instant, wall: SystemTime) {
        let mac = req.chaddr;
        let previous = self.table.address_of(mac).and_then(|a| self.table.binding(a).map(|b| (a, b.clone())));
        let was_running = previous.as_ref().is_some_and(|(a, b)| *a == addr && b.active_at(now));
        let keep_forever = previous.as_ref().is_some_and(|(a, b)| *a == addr && b.expiry == Expiry::Never);
        let (old_name, old_override) = previous.map(|(_, b)| (b.hostname, b.hostname_override)).unwrap_or_default();
        if let Some(other) = self.table.binding(addr).filter(|b| b.mac != mac) {
            runtime::log_info!(
                "{addr} goes to {}, taking it from {} (lease ended or static lease)",
                runtime::netif::format_mac(mac),
                runtime::netif::format_mac(other.mac)
            );
        }
        // A client that sends no name keeps the one it had.
        let hostname = match self.hostname_for(req) {
            None => old_name,
            Some(name) => name.unwrap_or_default(),
        };
        let lease_time = quirks::lease_time(mac, self.cfg.lease_time);
        let expiry = if keep_forever { Expiry::Never } else { Expiry::At(now + lease_time) };
        let binding = Binding {
            mac,
            expiry,
            hostname,
            hostname_override: old_override,
            last_ack: Timestamp::from_system(wall),
            ended: false,
        };
        let name = binding.name().to_owned();
        self.table.put(addr, binding);
        if !was_running {
            let lease = (!keep_forever).then_some(lease_time);
            self.events.push(LeaseEvent::Granted { addr, mac, hostname: name, lease });
        }
    }

    /// RFC 2131 §4.3.3: the client found the address in use. It is kept from
    /// everyone for the quarantine time; a static lease's address is not (the
    /// conflict is the administrator's to fix) but is reported the same way.
    fn decline(&mut self, now: Instant, req: &Request) -> Result<(), DropReason> {
        if req.server_id.is_some_and(|s| s != self.cfg.server) {
            return Err(DropReason::NotForUs);
        }
        let addr = req.requested_ip.ok_or(DropReason::Invalid)?;
        let mac = req.chaddr;
        let holds = self.table.binding(addr).is_some_and(|b| b.mac == mac);
        let offered = self.table.offered_to(addr, now) == Some(mac);
        if !holds && !offered {
            return Err(DropReason::NoBinding);
        }
        self.stats.declines.inc();
        self.events.push(LeaseEvent::Declined { addr, mac });
        if self.table.is_static_address(addr) {
            runtime::log_warn!(
                "{} declined its static address {addr}: another device uses it",
                runtime::netif::format_mac(mac)
            );
            return Ok(());
        }
        runtime::log_warn!(
            "{} declined {addr}: another device uses it; quarantined for {} s",
            runtime::netif::format_mac(mac),
            self.cfg.decline_quarantine.as_secs()
        );
        self.table.cancel_offer_of(mac);
        if holds {
            self.table.take(addr);
        }
        if !self.cfg.decline_quarantine.is_zero() {
            self.table.quarantine(addr, now + self.cfg.decline_quarantine);
        }
        Ok(())
    }

    /// RFC 2131 §4.3.4: the lease ends now. The binding stays, so the client
    /// gets the same address back while nobody else needed it.
    fn release(&mut self, now: Instant, req: &Request) -> Result<(), DropReason> {
        if req.server_id.is_some_and(|s| s != self.cfg.server) {
            return Err(DropReason::NotForUs);
        }
        let addr = req.ciaddr;
        if addr.is_unspecified() {
            return Err(DropReason::Invalid);
        }
        let Some(b) = self.table.binding(addr).filter(|b| b.mac == req.chaddr) else {
            return Err(DropReason::NoBinding);
        };
        let hostname = b.name().to_owned();
        self.stats.releases.inc();
        if self.table.end(addr, now) {
            self.events.push(LeaseEvent::Released { addr, mac: req.chaddr, hostname });
        }
        Ok(())
    }

    /// RFC 2131 §4.3.5: configuration without an address: no yiaddr, no lease
    /// time, sent to ciaddr.
    fn inform(&mut self, req: &Request) -> Result<Reply, DropReason> {
        if req.ciaddr.is_unspecified() {
            return Err(DropReason::Invalid);
        }
        if !self.cfg.subnet.is_host(req.ciaddr) {
            return Err(DropReason::NotForUs);
        }
        self.stats.informs.inc();
        Ok(self.reply(req, MessageType::Ack, Ipv4Addr::UNSPECIFIED, false))
    }

    fn nak(&self, req: &Request) -> Reply {
        let mut options = vec![(code::MESSAGE, b"requested address not available".to_vec())];
        if let Some(ri) = &req.relay_agent_info {
            options.push((code::RELAY_AGENT_INFO, ri.clone()));
        }
        let relayed = !req.giaddr.is_unspecified();
        Reply {
            kind: MessageType::Nak,
            xid: req.xid,
            // RFC 2131 §4.3.2: a relayed NAK asks the relay to broadcast it.
            broadcast: req.broadcast || relayed,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            options,
            server_id: self.cfg.server,
            max_len: Reply::max_len_for(req.max_message_size),
            dest: if relayed { Destination::Relay { ip: req.giaddr } } else { Destination::Broadcast },
        }
    }

    /// An OFFER or ACK: options per RFC 2131 table 3 — the lease time (unless
    /// INFORM), then what the client asked for in option 55, in its order
    /// (everything we have when it did not ask), then option 82 echoed.
    fn reply(&self, req: &Request, kind: MessageType, yiaddr: Ipv4Addr, lease: bool) -> Reply {
        let mut options: Vec<(u8, Vec<u8>)> = Vec::with_capacity(10);
        let lease_time = quirks::lease_time(req.chaddr, self.cfg.lease_time);
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX).to_be_bytes().to_vec();
        if lease {
            options.push((code::LEASE_TIME, secs(lease_time)));
        }
        let mut add = |c: u8| {
            if options.iter().any(|(have, _)| *have == c) {
                return;
            }
            // T1 and T2 follow this client's lease time (RFC 2131 §4.4.5).
            let value = match c {
                code::RENEWAL_TIME | code::REBINDING_TIME if !lease => None,
                code::RENEWAL_TIME => Some(secs(lease_time / 2)),
                code::REBINDING_TIME => Some(secs(lease_time * 7 / 8)),
                _ => self.cfg.served(c).map(<[u8]>::to_vec),
            };
            if let Some(v) = value {
                options.push((c, v));
            }
        };
        match &req.parameter_list {
            Some(list) => list.iter().copied().for_each(&mut add),
            None => self.cfg.served_codes().for_each(add),
        }
        if let Some(ri) = &req.relay_agent_info {
            options.push((code::RELAY_AGENT_INFO, ri.clone()));
        }
        // RFC 2131 §4.1 and §4.3.5: to the relay; else to ciaddr; else
        // broadcast when the client asked; else unicast to yiaddr at chaddr.
        let dest = if !req.giaddr.is_unspecified() {
            Destination::Relay { ip: req.giaddr }
        } else if !req.ciaddr.is_unspecified() {
            Destination::Unicast { mac: req.chaddr, ip: req.ciaddr }
        } else if req.broadcast {
            Destination::Broadcast
        } else {
            Destination::Unicast { mac: req.chaddr, ip: yiaddr }
        };
        Reply {
            kind,
            xid: req.xid,
            broadcast: req.broadcast,
            ciaddr: if kind == MessageType::Ack { req.ciaddr } else { Ipv4Addr::UNSPECIFIED },
            yiaddr,
            giaddr: req.giaddr,
            chaddr: req.chaddr,
            options,
            server_id: self.cfg.server,
            max_len: Reply::max_len_for(req.max_message_size),
            dest,
        }
    }

    /// Checks the lease table's invariants (tests, fuzzing).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.table.check_invariants()
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
