//! The forwarder's state machine: queries from clients and replies from
//! upstreams go in with the time, answers and upstream queries come out. It
//! never touches a socket or the clock.
//!
//! A query is answered, in order, from the local names (`local`), from the
//! cache, or by forwarding. Forwarding joins a query already waiting for the
//! same key (one upstream query serves every client asking at once), or sends
//! a new one: to the best upstream (`upstream`), from one of a pool of UDP
//! sockets, with a random ID. When a try times out the next upstream is tried
//! (the earlier tries stay open: a late answer still counts); a truncated reply
//! is asked again over TCP (RFC 7766 §5); an upstream FORMERR or NOTIMP to our
//! EDNS query is retried without EDNS (RFC 6891 §7); SERVFAIL and REFUSED move
//! on to another upstream (the clients get SERVFAIL when none answers better). When the budget runs out (2.5 s, or 1 s when every
//! upstream was already down) the clients get an expired cache entry if there
//! is one (RFC 8767), else SERVFAIL — never silence (router7 sent nothing and
//! clients hung until their own timeout).
//!
//! Anti-spoofing (RFC 5452): a reply counts only if it arrives on the socket
//! the query left from, from the upstream's address and port, with the query's
//! ID (16 random bits), and carries exactly our question (name ignoring case,
//! type and class). Anything else is dropped and counted; the real answer can
//! still arrive. The shell binds the pool's sockets to random ports and the
//! core retires each after [`Tunables::slot_max_uses`] queries or
//! [`Tunables::slot_max_age`], so the port is as unguessable as the ID.
//!
//! Bounds: at most [`Tunables::max_pending`] forwarded queries wait at once
//! (more are dropped: the client retries), each with at most
//! [`Tunables::max_waiters`] clients; the cache is bounded (`cache`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::answer::{Asker, Kind, Rendered, StoredAnswer, TtlPolicy};
use crate::cache::{Cache, Key, Limits, Lookup, key_flag};
use crate::entropy::Entropy;
use crate::local::{self, LocalZone};
use crate::metrics::{AnswerSource, Discard, DnsMetrics};
use crate::upstream::{HealthEvent, UpstreamSet, UpstreamSpec, UpstreamStatus};
use crate::wire::{self, DropReason, Edns, HEADER_LEN, Header, QueryError, RejectReason, flag, rcode};

/// Limits and timers of the resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunables {
    /// Most forwarded queries waiting at once.
    pub max_pending: usize,
    /// Most clients waiting for one forwarded query.
    pub max_waiters: usize,
    /// How long a forwarded query may take before the clients get SERVFAIL.
    pub query_budget: Duration,
    /// The budget when every upstream was down as the query came in.
    pub all_down_budget: Duration,
    /// UDP sockets for upstream queries.
    pub udp_slots: u8,
    /// Queries a socket sends before it is replaced by one on a new random port.
    pub slot_max_uses: u32,
    /// Age after which a socket is replaced.
    pub slot_max_age: Duration,
    /// TTL limits.
    pub ttl: TtlPolicy,
    /// Cache limits.
    pub cache: Limits,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            max_pending: 1024,
            max_waiters: 32,
            query_budget: Duration::from_millis(2500),
            all_down_budget: Duration::from_millis(1000),
            udp_slots: 8,
            slot_max_uses: 200,
            slot_max_age: Duration::from_secs(60),
            ttl: TtlPolicy::default(),
            cache: Limits::default(),
        }
    }
}

/// Who asked: the shell's handle of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAddr {
    /// A datagram from `peer` to our UDP socket number `listener`.
    Udp {
        /// The shell's listener number.
        listener: u32,
        /// The client.
        peer: SocketAddr,
    },
    /// A message on TCP connection `conn`.
    Tcp {
        /// The shell's connection number (never reused).
        conn: u64,
    },
}

impl ClientAddr {
    fn is_tcp(&self) -> bool {
        matches!(self, Self::Tcp { .. })
    }

    /// The largest answer this client takes (RFC 1035 §4.2.1, RFC 6891 §6.2.5, RFC 7766 §8).
    fn limit(&self, edns: Option<Edns>) -> usize {
        match self {
            Self::Tcp { .. } => usize::from(u16::MAX),
            Self::Udp { .. } => edns.map_or(usize::from(wire::MIN_UDP_SIZE), |e| e.reply_limit()),
        }
    }
}

/// What the shell must send or do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// An answer for a client that was waiting.
    Client {
        /// The client.
        to: ClientAddr,
        /// The message.
        msg: Vec<u8>,
    },
    /// A query to an upstream over UDP, from socket `slot`.
    UpstreamUdp {
        /// Which socket of the pool.
        slot: u8,
        /// The upstream.
        to: SocketAddr,
        /// The message.
        msg: Vec<u8>,
    },
    /// A query to an upstream over a new TCP connection (`handle`); the shell
    /// sends it framed (RFC 1035 §4.2.2) and reports the one reply, or the failure.
    UpstreamTcp {
        /// The connection's handle.
        handle: u64,
        /// The upstream.
        to: SocketAddr,
        /// The message (unframed).
        msg: Vec<u8>,
    },
    /// Close TCP connection `handle` (its query is over).
    CloseTcp {
        /// The connection's handle.
        handle: u64,
    },
    /// Replace the pool's socket `slot` with one on a new random port (no query uses it now).
    ReopenSlot {
        /// Which socket.
        slot: u8,
    },
}

/// What happened to a client's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The answer is in the output buffer; send it to the client.
    Reply,
    /// It waits for an upstream; the answer comes later as [`Transmit::Client`].
    Pending,
    /// Dropped (counted).
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum WireKey {
    Udp { slot: u8, from: SocketAddr, id: u16 },
    Tcp { handle: u64 },
}

#[derive(Debug)]
struct Attempt {
    upstream: SocketAddr,
    wire: WireKey,
    id: u16,
    sent: Instant,
    edns: bool,
    open: bool,
    timed_out: bool,
}

#[derive(Debug)]
struct Waiter {
    client: ClientAddr,
    id: u16,
    flags: u16,
    qname: Box<[u8]>,
    edns: Option<Edns>,
}

#[derive(Debug)]
struct Pending {
    generation: u64,
    key: Key,
    qtype: u16,
    waiters: Vec<Waiter>,
    attempts: Vec<Attempt>,
    tried: Vec<SocketAddr>,
    budget_end: Instant,
    try_deadline: Instant,
    servfail: Option<StoredAnswer>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    in_flight: u32,
    uses: u32,
    opened: Option<Instant>,
    retiring: bool,
}

enum Outcome {
    Answer(StoredAnswer),
    Failure,
}

/// The resolver; see the module docs.
pub struct Resolver {
    tun: Tunables,
    cache: Cache,
    local: LocalZone,
    upstreams: UpstreamSet,
    pending: Vec<Option<Pending>>,
    free: Vec<usize>,
    live: usize,
    next_gen: u64,
    by_key: HashMap<Box<[u8]>, usize>,
    by_wire: HashMap<WireKey, usize>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    slots: Vec<Slot>,
    next_tcp: u64,
    out: VecDeque<Transmit>,
    rng: Box<dyn Entropy + Send>,
    metrics: Arc<DnsMetrics>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("pending", &self.live).field("cache", &self.cache.len()).finish()
    }
}

impl Resolver {
    /// A resolver with no upstreams and no local names yet.
    #[must_use]
    pub fn new(tun: Tunables, metrics: Arc<DnsMetrics>, rng: Box<dyn Entropy + Send>) -> Self {
        let slots = usize::from(tun.udp_slots.max(1));
        Self {
            tun,
            cache: Cache::new(tun.cache),
            local: LocalZone::new(&local::LocalNames::default()).0,
            upstreams: UpstreamSet::new(),
            pending: Vec::new(),
            free: Vec::new(),
            live: 0,
            next_gen: 0,
            by_key: HashMap::new(),
            by_wire: HashMap::new(),
            deadlines: BinaryHeap::new(),
            slots: vec![Slot { in_flight: 0, uses: 0, opened: None, retiring: false }; slots],
            next_tcp: 1,
            out: VecDeque::new(),
            rng,
            metrics,
            scratch: Vec::with_capacity(512),
        }
    }

    /// How many UDP sockets the shell keeps for upstream queries.
    #[must_use]
    pub fn udp_slots(&self) -> u8 {
        u8::try_from(self.slots.len()).unwrap_or(u8::MAX)
    }

    /// Replaces the upstreams (keeping what we know of those that stay).
    pub fn set_upstreams(&mut self, specs: &[UpstreamSpec]) {
        let metrics = Arc::clone(&self.metrics);
        self.upstreams.set(specs, |addr| metrics.upstream(addr));
    }

    /// Replaces the local names.
    pub fn set_local(&mut self, zone: LocalZone) {
        self.local = zone;
    }

    /// Changes the cache's limits.
    pub fn set_cache_limits(&mut self, now: Instant, limits: Limits) {
        self.cache.set_limits(now, limits);
        self.tun.cache = limits;
    }

    /// The upstreams' status.
    #[must_use]
    pub fn upstream_status(&self, now: Instant) -> Vec<UpstreamStatus> {
        self.upstreams.status(now)
    }

    /// Whether at least one upstream is up.
    #[must_use]
    pub fn any_upstream_up(&self, now: Instant) -> bool {
        self.upstreams.any_up(now)
    }

    /// Forwarded queries waiting now.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.live
    }

    /// Deadlines queued: at most a few per waiting query (stale ones are compacted).
    #[must_use]
    pub fn deadlines(&self) -> usize {
        self.deadlines.len()
    }

    /// The cache (for status and metrics).
    #[must_use]
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Upstream health changes since the last call.
    pub fn take_health_events(&mut self) -> Vec<HealthEvent> {
        self.upstreams.take_events()
    }

    /// Housekeeping: drops cache entries too old even to serve stale, a few at a time.
    pub fn sweep(&mut self, now: Instant) {
        self.cache.sweep(now, 256);
    }

    /// The next thing the shell must send or do.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When [`Resolver::on_deadline`] must run next.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _, _))| *at)
    }

    /// A query from `client`. On [`Handled::Reply`] the answer is in `out`.
    pub fn on_query(&mut self, now: Instant, client: ClientAddr, msg: &[u8], out: &mut Vec<u8>) -> Handled {
        let tcp = client.is_tcp();
        let q = match wire::parse_query(msg) {
            Ok(q) => q,
            Err(QueryError::Drop(reason)) => {
                self.metrics.discard(match reason {
                    DropReason::TooShort => Discard::QueryTooShort,
                    DropReason::Response => Discard::QueryIsResponse,
                });
                return Handled::Dropped;
            }
            Err(QueryError::Reply { header, question, edns, rcode: rc, reason }) => {
                self.metrics.discard(match reason {
                    RejectReason::Opcode | RejectReason::Class | RejectReason::Type if rc == rcode::NOTIMP => {
                        Discard::QueryNotImplemented
                    }
                    RejectReason::BadVersion => Discard::QueryBadVersion,
                    _ => Discard::QueryMalformed,
                });
                if let Some(q) = &question {
                    self.metrics.query(tcp, q.qtype);
                }
                wire::write_error(out, &header, question.as_ref(), edns, rc);
                self.metrics.answer(AnswerSource::Error, rc, false);
                return Handled::Reply;
            }
        };
        let question = q.question;
        self.metrics.query(tcp, question.qtype);
        let limit = client.limit(q.edns);
        let mut kf = 0;
        if q.edns.is_some_and(|e| e.dnssec_ok) {
            kf |= key_flag::DO;
        }
        if q.header.has(flag::CD) {
            kf |= key_flag::CD;
        }
        let key = Key::new(question.name, question.qtype, question.qclass, kf);
        if let Some(answer) = self.local.lookup(now, key.name(), question.qtype) {
            let r = local::write_answer(out, &q, &answer, limit);
            self.metrics.answer(AnswerSource::Local, answer.rcode, r == Rendered::Truncated);
            return Handled::Reply;
        }
        let asker = Asker { id: q.header.id, flags: q.header.flags, qname: question.name, edns: q.edns, limit };
        match self.cache.get(key.as_bytes(), now) {
            Lookup::Fresh(answer) => {
                let r = answer.render(now, &asker, None, out);
                self.metrics.cache_hits.inc();
                self.metrics.answer(AnswerSource::Cache, answer.rcode(), r == Rendered::Truncated);
                return Handled::Reply;
            }
            Lookup::Miss => self.metrics.cache_misses.inc(),
        }
        let waiter =
            Waiter { client, id: q.header.id, flags: q.header.flags, qname: question.name.into(), edns: q.edns };
        self.forward(now, key, question.qtype, waiter, out)
    }

    fn forward(&mut self, now: Instant, key: Key, qtype: u16, waiter: Waiter, out: &mut Vec<u8>) -> Handled {
        if let Some(&idx) = self.by_key.get(key.as_bytes())
            && let Some(p) = self.pending.get_mut(idx).and_then(Option::as_mut)
        {
            if p.waiters.iter().any(|w| w.client == waiter.client && w.id == waiter.id) {
                self.metrics.discard(Discard::Duplicate);
                return Handled::Dropped;
            }
            if p.waiters.len() >= self.tun.max_waiters {
                self.metrics.discard(Discard::WaitersFull);
                return Handled::Dropped;
            }
            p.waiters.push(waiter);
            return Handled::Pending;
        }
        if self.upstreams.is_empty() {
            // Nowhere to ask: SERVFAIL at once (or a stale answer).
            let limit = waiter.client.limit(waiter.edns);
            let asker = Asker { id: waiter.id, flags: waiter.flags, qname: &waiter.qname, edns: waiter.edns, limit };
            self.fail_one(now, &key, qtype, &asker, None, out);
            return Handled::Reply;
        }
        if self.live >= self.tun.max_pending {
            self.metrics.discard(Discard::PendingFull);
            return Handled::Dropped;
        }
        let budget = if self.upstreams.any_up(now) { self.tun.query_budget } else { self.tun.all_down_budget };
        let generation = self.next_gen;
        self.next_gen += 1;
        let pending = Pending {
            generation,
            key,
            qtype,
            waiters: vec![waiter],
            attempts: Vec::new(),
            tried: Vec::new(),
            budget_end: now + budget,
            try_deadline: now + budget,
            servfail: None,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.pending[i] = Some(pending);
                i
            }
            None => {
                self.pending.push(Some(pending));
                self.pending.len() - 1
            }
        };
        self.live += 1;
        self.metrics.pending.set(self.live as f64);
        self.by_key.insert(key.as_bytes().into(), idx);
        if !self.send_attempt(now, idx, None, true, false) {
            self.finish(now, idx, Outcome::Failure);
        }
        Handled::Pending
    }

    fn choose_slot(&mut self) -> u8 {
        let n = self.slots.len();
        let start = self.rng.below(n as u64) as usize;
        let slot = (0..n).map(|i| (start + i) % n).find(|&i| !self.slots[i].retiring).unwrap_or(start);
        u8::try_from(slot).unwrap_or(0)
    }

    fn use_slot(&mut self, now: Instant, slot: u8) {
        let any_retiring = self.slots.iter().any(|s| s.retiring);
        let s = &mut self.slots[usize::from(slot)];
        s.in_flight += 1;
        s.uses += 1;
        let opened = *s.opened.get_or_insert(now);
        let worn = s.uses >= self.tun.slot_max_uses || now.saturating_duration_since(opened) >= self.tun.slot_max_age;
        // One socket at a time is retired, so the others carry the load.
        if worn && !any_retiring {
            s.retiring = true;
        }
    }

    fn release_slot(&mut self, now: Instant, slot: u8) {
        let Some(s) = self.slots.get_mut(usize::from(slot)) else { return };
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.retiring && s.in_flight == 0 {
            *s = Slot { in_flight: 0, uses: 0, opened: Some(now), retiring: false };
            self.out.push_back(Transmit::ReopenSlot { slot });
        }
    }

    /// Sends one try for pending `idx`: to `target` or the best upstream, over
    /// UDP or TCP, with or without EDNS. False when there is no upstream.
    fn send_attempt(&mut self, now: Instant, idx: usize, target: Option<SocketAddr>, edns: bool, tcp: bool) -> bool {
        let Some(p) = self.pending.get(idx).and_then(Option::as_ref) else { return false };
        let Some(upstream) = target.or_else(|| self.upstreams.choose(now, &p.tried)) else {
            return false;
        };
        let id = (self.rng.next_u64() & 0xffff) as u16;
        let (wire, slot) = if tcp {
            let handle = self.next_tcp;
            self.next_tcp += 1;
            (WireKey::Tcp { handle }, None)
        } else {
            let slot = self.choose_slot();
            let mut id = id;
            while self.by_wire.contains_key(&WireKey::Udp { slot, from: upstream, id }) {
                id = (self.rng.next_u64() & 0xffff) as u16;
            }
            (WireKey::Udp { slot, from: upstream, id }, Some(slot))
        };
        let id = match wire {
            WireKey::Udp { id, .. } => id,
            WireKey::Tcp { .. } => id,
        };
        let Some(p) = self.pending.get_mut(idx).and_then(Option::as_mut) else { return false };
        let dnssec_ok = p.key.flags() & key_flag::DO != 0;
        let cd = p.key.flags() & key_flag::CD != 0;
        let mut msg = Vec::with_capacity(HEADER_LEN + p.key.name().len() + 4 + wire::OPT_LEN);
        wire::write_upstream_query(&mut msg, id, p.key.name(), p.qtype, cd, edns.then_some(dnssec_ok));
        if !p.tried.contains(&upstream) {
            p.tried.push(upstream);
        }
        p.attempts.push(Attempt { upstream, wire, id, sent: now, edns, open: true, timed_out: false });
        let timeout = self.upstreams.timeout(upstream);
        // TCP needs a handshake first.
        let timeout = if tcp { timeout.max(Duration::from_millis(1000)) } else { timeout };
        p.try_deadline = (now + timeout).min(p.budget_end);
        let generation = p.generation;
        let at = p.try_deadline;
        self.deadlines.push(Reverse((at, idx, generation)));
        self.by_wire.insert(wire, idx);
        self.upstreams.sent(upstream);
        match (wire, slot) {
            (WireKey::Tcp { handle }, _) => self.out.push_back(Transmit::UpstreamTcp { handle, to: upstream, msg }),
            (WireKey::Udp { .. }, Some(slot)) => {
                self.use_slot(now, slot);
                self.out.push_back(Transmit::UpstreamUdp { slot, to: upstream, msg });
            }
            (WireKey::Udp { .. }, None) => {}
        }
        true
    }

    /// A datagram on pool socket `slot` from `from`.
    pub fn on_upstream_udp(&mut self, now: Instant, slot: u8, from: SocketAddr, msg: &[u8]) {
        let Some(h) = Header::parse(msg).filter(|h| h.has(flag::QR)) else {
            self.metrics.discard(Discard::UpstreamUnexpected);
            return;
        };
        let wire = WireKey::Udp { slot, from, id: h.id };
        match self.by_wire.get(&wire) {
            Some(&idx) => self.on_reply(now, idx, wire, &h, msg),
            None => self.metrics.discard(Discard::UpstreamUnexpected),
        }
    }

    /// The reply on upstream TCP connection `handle`.
    pub fn on_upstream_tcp(&mut self, now: Instant, handle: u64, msg: &[u8]) {
        let wire = WireKey::Tcp { handle };
        let Some(&idx) = self.by_wire.get(&wire) else {
            self.metrics.discard(Discard::UpstreamUnexpected);
            return;
        };
        let id_ok = self.attempt(idx, wire).is_some_and(|a| Header::parse(msg).is_some_and(|h| h.id == a.id));
        match Header::parse(msg).filter(|h| h.has(flag::QR) && id_ok) {
            Some(h) => self.on_reply(now, idx, wire, &h, msg),
            None => {
                self.metrics.discard(Discard::UpstreamUnexpected);
                self.on_upstream_tcp_failed(now, handle);
            }
        }
    }

    /// Upstream TCP connection `handle` failed before its reply.
    pub fn on_upstream_tcp_failed(&mut self, now: Instant, handle: u64) {
        let wire = WireKey::Tcp { handle };
        let Some(idx) = self.by_wire.remove(&wire) else { return };
        let Some(upstream) = self.close_attempt(now, idx, wire) else { return };
        self.upstreams.failure(now, upstream, "TCP connection failed");
        self.retry_or_fail(now, idx, false);
    }

    /// Sending on pool socket `slot` to `to` failed (e.g. no route); `msg` is what was sent.
    pub fn on_udp_send_failed(&mut self, now: Instant, slot: u8, to: SocketAddr, msg: &[u8]) {
        let Some(id) = wire::be16(msg, 0) else { return };
        let wire = WireKey::Udp { slot, from: to, id };
        let Some(idx) = self.by_wire.remove(&wire) else { return };
        let Some(upstream) = self.close_attempt(now, idx, wire) else { return };
        self.upstreams.failure(now, upstream, "send failed");
        self.retry_or_fail(now, idx, false);
    }

    fn attempt(&self, idx: usize, wire: WireKey) -> Option<&Attempt> {
        self.pending.get(idx)?.as_ref()?.attempts.iter().find(|a| a.wire == wire && a.open)
    }

    /// Marks a try closed (the caller removed its wire key); returns its upstream.
    fn close_attempt(&mut self, now: Instant, idx: usize, wire: WireKey) -> Option<SocketAddr> {
        let p = self.pending.get_mut(idx)?.as_mut()?;
        let a = p.attempts.iter_mut().find(|a| a.wire == wire && a.open)?;
        a.open = false;
        let upstream = a.upstream;
        match wire {
            WireKey::Udp { slot, .. } => self.release_slot(now, slot),
            WireKey::Tcp { handle } => self.out.push_back(Transmit::CloseTcp { handle }),
        }
        Some(upstream)
    }

    fn question_matches(msg: &[u8], h: &Header, key: &Key, qtype: u16) -> bool {
        if h.qdcount != 1 || h.opcode() != 0 {
            return false;
        }
        let name = key.name();
        let Some(got) = msg.get(HEADER_LEN..HEADER_LEN + name.len()) else { return false };
        // Our query's name was uncompressed, so the echo must be too: same bytes ignoring case.
        got.eq_ignore_ascii_case(name)
            && wire::be16(msg, HEADER_LEN + name.len()) == Some(qtype)
            && wire::be16(msg, HEADER_LEN + name.len() + 2) == Some(wire::CLASS_IN)
    }

    fn on_reply(&mut self, now: Instant, idx: usize, wire: WireKey, h: &Header, msg: &[u8]) {
        let Some(p) = self.pending.get(idx).and_then(Option::as_ref) else { return };
        if !Self::question_matches(msg, h, &p.key, p.qtype) {
            self.metrics.discard(Discard::UpstreamMismatch);
            return;
        }
        let qtype = p.qtype;
        let Some((sent, edns)) = self.attempt(idx, wire).map(|a| (a.sent, a.edns)) else { return };
        self.by_wire.remove(&wire);
        let Some(upstream) = self.close_attempt(now, idx, wire) else { return };
        let rtt = now.saturating_duration_since(sent);
        let over_tcp = matches!(wire, WireKey::Tcp { .. });
        if h.has(flag::TC) && !over_tcp {
            // RFC 7766 §5: ask the same server again over TCP.
            self.upstreams.success(upstream, rtt);
            self.metrics.tcp_retries.inc();
            if !self.send_attempt(now, idx, Some(upstream), edns, true) {
                self.finish(now, idx, Outcome::Failure);
            }
            return;
        }
        let answer = match StoredAnswer::prepare(msg, qtype, now, &self.tun.ttl) {
            Ok(a) => a,
            Err(_) => {
                self.metrics.discard(Discard::UpstreamMalformed);
                self.upstreams.failure(now, upstream, "malformed reply");
                self.retry_or_fail(now, idx, false);
                return;
            }
        };
        match answer.rcode() {
            rcode::SERVFAIL => {
                // It answered; the name may be what is broken. Ask another, if any.
                self.upstreams.success(upstream, rtt);
                if let Some(p) = self.pending.get_mut(idx).and_then(Option::as_mut) {
                    p.servfail = Some(answer);
                }
                self.retry_or_fail(now, idx, false);
            }
            rcode::REFUSED => {
                // It answers, but not this (an ACL or a policy): ask another.
                self.upstreams.success(upstream, rtt);
                self.retry_or_fail(now, idx, false);
            }
            rcode::FORMERR | rcode::NOTIMP if edns => {
                // RFC 6891 §7: perhaps it does not speak EDNS.
                self.upstreams.success(upstream, rtt);
                if !self.send_attempt(now, idx, Some(upstream), false, over_tcp) {
                    self.finish(now, idx, Outcome::Failure);
                }
            }
            rcode::FORMERR | rcode::NOTIMP => {
                self.upstreams.failure(now, upstream, "rejected our query");
                self.retry_or_fail(now, idx, false);
            }
            _ => {
                self.upstreams.success(upstream, rtt);
                self.finish(now, idx, Outcome::Answer(answer));
            }
        }
    }

    /// Tries another upstream (or, after a timeout, the same again) while the
    /// budget lasts; else fails the query.
    fn retry_or_fail(&mut self, now: Instant, idx: usize, allow_repeat: bool) {
        let Some(p) = self.pending.get(idx).and_then(Option::as_ref) else { return };
        let untried = self.upstreams.has_untried(&p.tried);
        let budget_end = p.budget_end;
        if now < budget_end && (untried || allow_repeat) && self.send_attempt(now, idx, None, true, false) {
            return;
        }
        // Nothing more to try now: wait for open tries until the budget ends,
        // unless none is open.
        let Some(p) = self.pending.get_mut(idx).and_then(Option::as_mut) else { return };
        let open = p.attempts.iter().any(|a| a.open && !a.timed_out);
        if !open || now >= budget_end {
            self.finish(now, idx, Outcome::Failure);
        } else if p.try_deadline != budget_end {
            p.try_deadline = budget_end;
            let generation = p.generation;
            self.deadlines.push(Reverse((budget_end, idx, generation)));
        }
    }

    /// Timeouts: call when [`Resolver::poll_at`] has passed.
    pub fn on_deadline(&mut self, now: Instant) {
        while let Some(&Reverse((at, idx, generation))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(p) = self.pending.get_mut(idx).and_then(Option::as_mut) else { continue };
            if p.generation != generation {
                continue;
            }
            if now >= p.budget_end {
                self.finish(now, idx, Outcome::Failure);
                continue;
            }
            if now < p.try_deadline {
                continue;
            }
            // The latest try timed out: blame its upstream once, then move on.
            let mut blamed = None;
            if let Some(a) = p.attempts.iter_mut().rev().find(|a| a.open && !a.timed_out) {
                a.timed_out = true;
                blamed = Some((a.upstream, a.wire));
            }
            if let Some((upstream, wire)) = blamed {
                self.upstreams.failure(now, upstream, "timeout");
                if let WireKey::Tcp { .. } = wire {
                    self.by_wire.remove(&wire);
                    self.close_attempt(now, idx, wire);
                }
            }
            self.retry_or_fail(now, idx, true);
        }
    }

    /// Drops deadlines of queries that are over or moved on, once they
    /// outnumber the live ones: the heap stays proportional to what waits.
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() <= 64 + 4 * self.live {
            return;
        }
        let pending = &self.pending;
        self.deadlines.retain(|Reverse((at, idx, generation))| {
            pending
                .get(*idx)
                .and_then(Option::as_ref)
                .is_some_and(|p| p.generation == *generation && p.try_deadline == *at)
        });
    }

    fn finish(&mut self, now: Instant, idx: usize, outcome: Outcome) {
        let Some(p) = self.pending.get_mut(idx).and_then(Option::take) else { return };
        self.free.push(idx);
        self.live -= 1;
        self.metrics.pending.set(self.live as f64);
        self.by_key.remove(p.key.as_bytes());
        self.compact_deadlines();
        for a in p.attempts.iter().filter(|a| a.open) {
            self.by_wire.remove(&a.wire);
            match a.wire {
                WireKey::Udp { slot, .. } => self.release_slot(now, slot),
                WireKey::Tcp { handle } => self.out.push_back(Transmit::CloseTcp { handle }),
            }
        }
        let mut msg = std::mem::take(&mut self.scratch);
        match outcome {
            Outcome::Answer(answer) => {
                for w in &p.waiters {
                    let asker = Asker {
                        id: w.id,
                        flags: w.flags,
                        qname: &w.qname,
                        edns: w.edns,
                        limit: w.client.limit(w.edns),
                    };
                    let r = answer.render(now, &asker, None, &mut msg);
                    self.metrics.answer(AnswerSource::Upstream, answer.rcode(), r == Rendered::Truncated);
                    self.out.push_back(Transmit::Client { to: w.client, msg: msg.clone() });
                }
                if answer.kind() != Kind::Other && answer.lifetime() > 0 {
                    let key = p.key;
                    if self.cache.insert(key.as_bytes(), answer, now) {
                        self.metrics.cache_inserts.inc();
                    }
                    self.sync_cache_metrics();
                }
            }
            Outcome::Failure => {
                for w in &p.waiters {
                    let asker = Asker {
                        id: w.id,
                        flags: w.flags,
                        qname: &w.qname,
                        edns: w.edns,
                        limit: w.client.limit(w.edns),
                    };
                    self.fail_one(now, &p.key, p.qtype, &asker, p.servfail.as_ref(), &mut msg);
                    self.out.push_back(Transmit::Client { to: w.client, msg: msg.clone() });
                }
                if let Some(sf) = p.servfail {
                    // RFC 2308 §7.1, RFC 9520: remember the failure briefly.
                    let key = p.key;
                    self.cache.insert(key.as_bytes(), sf, now);
                }
            }
        }
        self.scratch = msg;
    }

    /// The answer when no upstream answered: a stale entry, the upstream's
    /// SERVFAIL, or our own SERVFAIL.
    fn fail_one(
        &self,
        now: Instant,
        key: &Key,
        qtype: u16,
        asker: &Asker<'_>,
        servfail: Option<&StoredAnswer>,
        out: &mut Vec<u8>,
    ) {
        let stale = self.cache.get_stale(key.as_bytes(), now).filter(|a| a.kind() != Kind::ServFail);
        if let Some(stale) = stale {
            let r = stale.render(now, asker, Some(self.tun.ttl.stale_ttl), out);
            self.metrics.answer(AnswerSource::Stale, stale.rcode(), r == Rendered::Truncated);
            return;
        }
        if let Some(sf) = servfail {
            let r = sf.render(now, asker, None, out);
            self.metrics.answer(AnswerSource::Upstream, rcode::SERVFAIL, r == Rendered::Truncated);
            return;
        }
        let header = Header { id: asker.id, flags: asker.flags, qdcount: 1, ancount: 0, nscount: 0, arcount: 0 };
        let question = wire::Question { name: asker.qname, qtype, qclass: wire::CLASS_IN };
        wire::write_error(out, &header, Some(&question), asker.edns, rcode::SERVFAIL);
        self.metrics.answer(AnswerSource::Error, rcode::SERVFAIL, false);
    }

    fn sync_cache_metrics(&self) {
        let stats = self.cache.stats();
        self.metrics.cache_entries.set(self.cache.len() as f64);
        self.metrics.cache_bytes.set(self.cache.bytes() as f64);
        let evicted = stats.evicted + stats.expired;
        let seen = self.metrics.cache_evictions.get();
        if evicted > seen {
            self.metrics.cache_evictions.add(evicted - seen);
        }
    }
}
