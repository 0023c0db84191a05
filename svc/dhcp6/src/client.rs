//! The DHCPv6 client state machine (RFC 8415 §18.2): Solicit → Advertise →
//! Request → Reply, Renew at T1, Rebind at T2, Release, and Rebind after a
//! restart with a stored lease (§18.2.12: a client holding delegated prefixes
//! uses Rebind, not Confirm), falling back to Solicit.
//!
//! Sans-IO: [`Client::handle`] takes a received datagram, [`Client::poll`]
//! returns the next datagram to send, [`Client::poll_at`] says when to call
//! `poll` again. Time and randomness come in from outside. Everything goes to
//! `ff02::1:2` (the shell's job); the client never unicasts, so Server Unicast
//! options are ignored and UseMulticast needs no action.
//!
//! What it owns: the exchanges and their retransmission, the choice of server,
//! the lease and its lifetimes, and the policy for failures: it never loops
//! faster than RFC 8415's retransmission times, and a server that keeps
//! refusing (NoPrefixAvail) is retried with a growing back-off. router7 spun
//! when dnsmasq offered no IA_PD; that case is a test here.
//!
//! It does not own files, sockets or signals: the shell persists the lease
//! whenever [`Client::lease_generation`] changes.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcproto::v6::MessageType;
use serde::Serialize;

use crate::lease::{Address, Lease, Prefix, mask};
use crate::timing::{self, Random, Retransmit};
use crate::wire::{self, IaNaRequest, IaPdRequest, Inbound, Outbound, Status, StatusInfo};

/// IAID of our IA_PD (router7 used 1) and of our IA_NA.
pub const IAID: u32 = 1;
/// The earliest a Renew follows a Reply, whatever T1 the server sent: a
/// server handing out T1 = 1 s (or lifetimes of 0) must not make us spin.
pub const MIN_RENEW: Duration = Duration::from_secs(5);
/// First back-off after a Request that got nothing; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(10);
/// Longest back-off (SOL_MAX_RT).
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// First wait before asking again for an IA the server did not give
/// (NoPrefixAvail); doubles up to [`BACKOFF_MAX`].
pub const MISSING_RETRY_MIN: Duration = Duration::from_secs(60);

/// What the client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Our DUID, sent byte for byte.
    pub duid: Vec<u8>,
    /// Ask for an address (IA_NA) too, as router7 did.
    pub request_address: bool,
    /// A prefix length to ask for (`::/len` in the IA_PD).
    pub prefix_length_hint: Option<u8>,
}

/// A datagram to send to `ff02::1:2`:547.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Its message type.
    pub kind: MessageType,
    /// The DHCPv6 message.
    pub bytes: Vec<u8>,
}

/// Why a received datagram was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drop {
    /// It does not parse (or an option the client uses is malformed).
    Malformed,
    /// Not an Advertise or Reply, or not the one the current exchange expects.
    UnexpectedType,
    /// A Reconfigure: we never offered Reconfigure Accept (§18.2.11).
    Reconfigure,
    /// No exchange is in progress.
    NoExchange,
    /// Another transaction's.
    TransactionMismatch,
    /// No Server Identifier (§16.3, §16.10).
    MissingServerId,
    /// No Client Identifier.
    MissingClientId,
    /// Someone else's Client Identifier.
    ClientIdMismatch,
    /// A Reply from another server than the one asked.
    ServerIdMismatch,
    /// An Advertise or Reply with nothing for us (§18.2.9).
    NoLeases,
    /// Status UnspecFail: retried on the retransmission schedule (§18.2.10).
    StatusUnspecFail,
    /// Status UseMulticast: we only ever multicast; retried on schedule.
    StatusUseMulticast,
    /// Another top-level failure status.
    StatusOther,
    /// Not from port 547 (counted by the shell).
    SourcePort,
}

impl Drop {
    /// Every reason, for counters.
    pub const ALL: [Self; 14] = [
        Self::Malformed,
        Self::UnexpectedType,
        Self::Reconfigure,
        Self::NoExchange,
        Self::TransactionMismatch,
        Self::MissingServerId,
        Self::MissingClientId,
        Self::ClientIdMismatch,
        Self::ServerIdMismatch,
        Self::NoLeases,
        Self::StatusUnspecFail,
        Self::StatusUseMulticast,
        Self::StatusOther,
        Self::SourcePort,
    ];

    /// A snake-case name for counters and logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnexpectedType => "unexpected_type",
            Self::Reconfigure => "reconfigure_ignored",
            Self::NoExchange => "no_exchange",
            Self::TransactionMismatch => "transaction_mismatch",
            Self::MissingServerId => "missing_server_id",
            Self::MissingClientId => "missing_client_id",
            Self::ClientIdMismatch => "client_id_mismatch",
            Self::ServerIdMismatch => "server_id_mismatch",
            Self::NoLeases => "no_leases",
            Self::StatusUnspecFail => "status_unspec_fail",
            Self::StatusUseMulticast => "status_use_multicast",
            Self::StatusOther => "status_other",
            Self::SourcePort => "source_port",
        }
    }
}

fn kind_name(kind: MessageType) -> &'static str {
    match kind {
        MessageType::Solicit => "solicit",
        MessageType::Advertise => "advertise",
        MessageType::Request => "request",
        MessageType::Renew => "renew",
        MessageType::Rebind => "rebind",
        MessageType::Reply => "reply",
        MessageType::Release => "release",
        _ => "other",
    }
}

/// Counters, shown in the control API's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages sent, by type.
    pub sent: std::collections::BTreeMap<&'static str, u64>,
    /// Messages accepted, by type.
    pub received: std::collections::BTreeMap<&'static str, u64>,
    /// Datagrams dropped, by reason.
    pub dropped: std::collections::BTreeMap<&'static str, u64>,
    /// Exchanges that ended without an answer (Request after REQ_MAX_RC, Renew at T2, …).
    pub exchanges_failed: u64,
    /// Back-offs after a server gave nothing.
    pub backoffs: u64,
}

impl Counters {
    fn new() -> Self {
        let mut c = Self::default();
        for d in Drop::ALL {
            c.dropped.insert(d.as_str(), 0);
        }
        for k in [MessageType::Solicit, MessageType::Request, MessageType::Renew, MessageType::Rebind] {
            c.sent.insert(kind_name(k), 0);
        }
        c.sent.insert(kind_name(MessageType::Release), 0);
        c.received.insert(kind_name(MessageType::Advertise), 0);
        c.received.insert(kind_name(MessageType::Reply), 0);
        c
    }

    /// Counts a dropped datagram.
    pub fn drop(&mut self, reason: Drop) {
        *self.dropped.entry(reason.as_str()).or_default() += 1;
    }

    /// Datagrams dropped for `reason`.
    #[must_use]
    pub fn dropped(&self, reason: Drop) -> u64 {
        self.dropped.get(reason.as_str()).copied().unwrap_or(0)
    }

    /// Messages of `kind` sent.
    #[must_use]
    pub fn sent(&self, kind: MessageType) -> u64 {
        self.sent.get(kind_name(kind)).copied().unwrap_or(0)
    }
}

/// Which IA an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IaKind {
    /// IA_NA (an address).
    Address,
    /// IA_PD (a delegated prefix).
    Prefix,
}

/// Why a prefix or address was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// Its valid lifetime ended (it stays in the lease when nothing replaced it).
    Expired,
    /// The server sent it with a valid lifetime of 0.
    Withdrawn,
    /// A new binding from Request came without it.
    Replaced,
    /// We released it.
    Released,
}

impl LossReason {
    /// A name for events.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
            Self::Replaced => "replaced",
            Self::Released => "released",
        }
    }
}

/// What the shell reports (events, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A Request was answered with leases: a new binding.
    Bound,
    /// A Renew was answered with leases.
    Renewed,
    /// A Rebind was answered with leases.
    Rebound,
    /// A prefix is gone.
    PrefixLost {
        /// The prefix.
        prefix: (Ipv6Addr, u8),
        /// Why.
        reason: LossReason,
    },
    /// An address is gone.
    AddressLost {
        /// The address.
        addr: Ipv6Addr,
        /// Why.
        reason: LossReason,
    },
    /// A server said it has nothing for one of our IAs (NoPrefixAvail, …); reported on change.
    Unavailable {
        /// Which IA.
        ia: IaKind,
        /// What the server said.
        status: StatusInfo,
    },
    /// An exchange ended without an answer.
    ExchangeFailed {
        /// Its message type.
        kind: MessageType,
    },
    /// Waiting before soliciting again.
    BackingOff {
        /// For how long.
        delay: Duration,
    },
    /// The Release exchange is over (answered or given up).
    Released,
}

/// A server's offer, from an Advertise.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    server_id: Vec<u8>,
    preference: u8,
    addresses: Vec<Ipv6Addr>,
    prefixes: Vec<(Ipv6Addr, u8)>,
}

impl Offer {
    /// Ranking (§18.2.9): a server that delegates a prefix beats one that
    /// does not, whatever their preference (a less preferred server "MAY" be
    /// chosen for a better set of IAs); then preference; then an address.
    fn rank(&self) -> (bool, u8, bool) {
        (!self.prefixes.is_empty(), self.preference, !self.addresses.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Soliciting {
    xid: [u8; 3],
    rtx: Retransmit,
    best: Option<Offer>,
}

impl Soliciting {
    /// Advertises are collected until the first RT has elapsed (§18.2.1).
    fn collect_until(&self) -> Option<Instant> {
        self.rtx.first_sent().map(|first| first + self.rtx.rt()).filter(|_| self.rtx.sent() == 1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requesting {
    xid: [u8; 3],
    rtx: Retransmit,
    offer: Offer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound {
    renew_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Renewing {
    xid: [u8; 3],
    rtx: Retransmit,
    server_id: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rebinding {
    xid: [u8; 3],
    rtx: Retransmit,
    after_restart: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BackingOff {
    until: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Releasing {
    xid: [u8; 3],
    rtx: Retransmit,
    server_id: Vec<u8>,
    addresses: Vec<Ipv6Addr>,
    prefixes: Vec<(Ipv6Addr, u8)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Soliciting(Soliciting),
    Requesting(Requesting),
    Bound(Bound),
    Renewing(Renewing),
    Rebinding(Rebinding),
    BackingOff(BackingOff),
    Releasing(Releasing),
    Released,
}

enum Step {
    Send(Transmit),
    Changed,
    Idle,
}

/// Which exchange a Reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Request,
    Renew,
    Rebind,
}

/// The client. See the module docs.
pub struct Client<R: Random> {
    config: Config,
    rng: R,
    state: State,
    lease: Option<Lease>,
    generation: u64,
    failures: u32,
    missing_retry: Duration,
    sol_max_rt: Duration,
    events: Vec<Event>,
    counters: Counters,
    unavailable: [Option<StatusInfo>; 2],
}

impl<R: Random> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("state", &self.state).field("lease", &self.lease).finish_non_exhaustive()
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl<R: Random> Client<R> {
    /// A client starting at `now`. With a stored lease that still holds
    /// something valid it Rebinds first (§18.2.12, with the Confirm
    /// retransmission parameters); otherwise it Solicits, naming the stored
    /// prefixes as hints so a server can give the same ones back.
    pub fn new(config: Config, mut rng: R, now: Instant, stored: Option<Lease>) -> Self {
        let state = match &stored {
            Some(lease) if lease.last_expiry().is_some_and(|end| end > now) => {
                let delay = timing::initial_delay(timing::CNF_MAX_DELAY, &mut rng);
                State::Rebinding(Rebinding {
                    xid: rng.transaction_id(),
                    rtx: Retransmit::new(timing::REBIND_AFTER_RESTART, now + delay, None),
                    after_restart: true,
                })
            }
            _ => {
                let delay = timing::initial_delay(timing::SOL_MAX_DELAY, &mut rng);
                State::Soliciting(Soliciting {
                    xid: rng.transaction_id(),
                    rtx: Retransmit::solicit(timing::SOLICIT, now + delay),
                    best: None,
                })
            }
        };
        Self {
            config,
            rng,
            state,
            lease: stored,
            generation: 0,
            failures: 0,
            missing_retry: MISSING_RETRY_MIN,
            sol_max_rt: timing::SOLICIT.mrt,
            events: Vec::new(),
            counters: Counters::new(),
            unavailable: [None, None],
        }
    }

    /// Changes what the next messages ask for (a reloaded `config.json`).
    pub fn set_request(&mut self, request_address: bool, prefix_length_hint: Option<u8>) {
        self.config.request_address = request_address;
        self.config.prefix_length_hint = prefix_length_hint;
    }

    /// The lease held, if any (also one whose lifetimes ended, until replaced).
    #[must_use]
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Increases whenever the lease changes (the shell persists it then).
    #[must_use]
    pub fn lease_generation(&self) -> u64 {
        self.generation
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts a datagram the shell dropped.
    pub fn note_drop(&mut self, reason: Drop) {
        self.counters.drop(reason);
    }

    /// The state's name, for status and logs.
    #[must_use]
    pub fn state_name(&self) -> &'static str {
        match &self.state {
            State::Soliciting(_) => "Soliciting",
            State::Requesting(_) => "Requesting",
            State::Bound(_) => "Bound",
            State::Renewing(_) => "Renewing",
            State::Rebinding(r) if r.after_restart => "RebindingAfterRestart",
            State::Rebinding(_) => "Rebinding",
            State::BackingOff(_) => "BackingOff",
            State::Releasing(_) => "Releasing",
            State::Released => "Released",
        }
    }

    /// The last failure status a server gave for our IA of `ia`, while it is missing.
    #[must_use]
    pub fn unavailable(&self, ia: IaKind) -> Option<&StatusInfo> {
        self.unavailable[ia as usize].as_ref()
    }

    /// The transaction ID a reply must carry now, if an exchange is in progress.
    #[must_use]
    pub fn current_xid(&self) -> Option<[u8; 3]> {
        match &self.state {
            State::Soliciting(s) => Some(s.xid),
            State::Requesting(s) => Some(s.xid),
            State::Renewing(s) => Some(s.xid),
            State::Rebinding(s) => Some(s.xid),
            State::Releasing(s) => Some(s.xid),
            State::Bound(_) | State::BackingOff(_) | State::Released => None,
        }
    }

    /// Whether the Release exchange is over (the shell exits then).
    #[must_use]
    pub fn is_released(&self) -> bool {
        self.state == State::Released
    }

    /// When [`Client::poll`] has something to do.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Soliciting(s) => {
                let collect = s.best.as_ref().and(s.collect_until());
                Some(collect.map_or(s.rtx.deadline(), |c| c.min(s.rtx.deadline())))
            }
            State::Requesting(s) => Some(s.rtx.deadline()),
            State::Renewing(s) => Some(s.rtx.deadline()),
            State::Rebinding(s) => Some(s.rtx.deadline()),
            State::Releasing(s) => Some(s.rtx.deadline()),
            State::Bound(b) => Some(b.renew_at),
            State::BackingOff(b) => Some(b.until),
            State::Released => None,
        };
        let expiry =
            if self.state == State::Released { None } else { self.lease.as_ref().and_then(Lease::next_expiry) };
        [state, expiry].into_iter().flatten().min()
    }

    /// Advances timers to `now`; returns a datagram to send, if one is due.
    /// Call until it returns `None`, then again at [`Client::poll_at`]. A
    /// datagram that fails to leave counts as sent: the retransmission
    /// schedule sends it again, as it would after a loss.
    pub fn poll(&mut self, now: Instant) -> Option<Transmit> {
        // Each step either sends, idles or changes state towards one that
        // does; a handful always suffices (Bound → Renewing → Rebinding → Soliciting).
        for _ in 0..8 {
            self.expire(now);
            match self.step(now) {
                Step::Send(t) => {
                    *self.counters.sent.entry(kind_name(t.kind)).or_default() += 1;
                    return Some(t);
                }
                Step::Changed => {}
                Step::Idle => return None,
            }
        }
        None
    }

    /// `renew` from the control API: Renew now when bound, solicit again at
    /// once (from a fresh RT) when soliciting or backing off.
    pub fn renew(&mut self, now: Instant) {
        match &self.state {
            State::Bound(_) => self.start_renewing(now),
            State::Soliciting(_) | State::BackingOff(_) => {
                self.failures = 0;
                self.start_soliciting(now, Duration::ZERO);
            }
            _ => {}
        }
    }

    /// SIGUSR2: stop using the lease and Release it (§18.2.7). Without a
    /// server to release to (nothing valid, or a lease router7 wrote without
    /// a server DUID) the client is released at once.
    pub fn release(&mut self, now: Instant) {
        if matches!(self.state, State::Releasing(_) | State::Released) {
            return;
        }
        let Some(lease) = self.lease.take() else {
            self.state = State::Released;
            self.events.push(Event::Released);
            return;
        };
        self.generation += 1;
        for p in &lease.prefixes {
            self.events.push(Event::PrefixLost { prefix: (p.prefix, p.len), reason: LossReason::Released });
        }
        for a in &lease.addresses {
            self.events.push(Event::AddressLost { addr: a.addr, reason: LossReason::Released });
        }
        match (&lease.server_id, lease.has_valid()) {
            (Some(server_id), true) => {
                self.state = State::Releasing(Releasing {
                    xid: self.rng.transaction_id(),
                    rtx: Retransmit::new(timing::RELEASE, now, None),
                    server_id: server_id.clone(),
                    addresses: lease.addresses.iter().filter(|a| !a.expired).map(|a| a.addr).collect(),
                    prefixes: lease.prefixes.iter().filter(|p| !p.expired).map(|p| (p.prefix, p.len)).collect(),
                });
            }
            _ => {
                self.state = State::Released;
                self.events.push(Event::Released);
            }
        }
    }

    /// Takes a datagram received on port 546.
    pub fn handle(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Drop> {
        self.expire(now);
        let result = self.handle_inner(now, bytes);
        if let Err(reason) = result {
            self.counters.drop(reason);
        }
        result
    }

    fn handle_inner(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Drop> {
        let (kind, xid) = wire::header(bytes).map_err(|_| Drop::Malformed)?;
        match kind {
            MessageType::Reconfigure => return Err(Drop::Reconfigure),
            MessageType::Advertise | MessageType::Reply => {}
            _ => return Err(Drop::UnexpectedType),
        }
        let expected = self.current_xid().ok_or(Drop::NoExchange)?;
        if xid != expected {
            return Err(Drop::TransactionMismatch);
        }
        let msg = wire::parse(bytes).map_err(|_| Drop::Malformed)?;
        // §16.3 (Advertise) and §16.10 (Reply).
        if msg.server_id.is_none() {
            return Err(Drop::MissingServerId);
        }
        match &msg.client_id {
            None => return Err(Drop::MissingClientId),
            Some(id) if *id != self.config.duid => return Err(Drop::ClientIdMismatch),
            Some(_) => {}
        }
        let result = match (&self.state, kind) {
            (State::Soliciting(_), MessageType::Advertise) => self.on_advertise(now, &msg),
            (State::Requesting(_), MessageType::Reply) => self.on_reply(now, &msg, Via::Request),
            (State::Renewing(_), MessageType::Reply) => self.on_reply(now, &msg, Via::Renew),
            (State::Rebinding(_), MessageType::Reply) => self.on_reply(now, &msg, Via::Rebind),
            (State::Releasing(_), MessageType::Reply) => {
                // §18.2.10.2: any Reply ends the Release, whatever its status.
                self.state = State::Released;
                self.events.push(Event::Released);
                Ok(())
            }
            _ => Err(Drop::UnexpectedType),
        };
        if result.is_ok() {
            *self.counters.received.entry(kind_name(kind)).or_default() += 1;
        }
        result
    }

    fn on_advertise(&mut self, now: Instant, msg: &Inbound) -> Result<(), Drop> {
        // §18.2.9: SOL_MAX_RT is honoured even from an Advertise that is then ignored.
        if let Some(v) = msg.sol_max_rt.filter(|v| timing::SOL_MAX_RT_RANGE.contains(v)) {
            self.sol_max_rt = secs(v);
            if let State::Soliciting(s) = &mut self.state {
                s.rtx.set_mrt(self.sol_max_rt);
            }
        }
        let (na, pd) = self.our_ias(msg);
        self.note_ia_status(IaKind::Prefix, pd.and_then(|ia| ia.status.as_ref()));
        if self.config.request_address {
            self.note_ia_status(IaKind::Address, na.and_then(|ia| ia.status.as_ref()));
        }
        let offer = Offer {
            server_id: msg.server_id.clone().unwrap_or_default(),
            preference: msg.preference,
            addresses: na
                .filter(|ia| ia.status.as_ref().is_none_or(StatusInfo::is_success) && self.config.request_address)
                .map(|ia| ia.addresses.iter().filter(|a| usable(a.preferred, a.valid)).map(|a| a.addr).collect())
                .unwrap_or_default(),
            prefixes: pd
                .filter(|ia| ia.status.as_ref().is_none_or(StatusInfo::is_success))
                .map(|ia| {
                    ia.prefixes
                        .iter()
                        .filter(|p| p.len <= 128 && usable(p.preferred, p.valid))
                        .map(|p| (mask(p.prefix, p.len), p.len))
                        .collect()
                })
                .unwrap_or_default(),
        };
        // §18.2.9: an Advertise with neither an address nor a prefix is
        // ignored, and the Solicit retransmission timer goes on.
        if offer.addresses.is_empty() && offer.prefixes.is_empty() {
            return Err(Drop::NoLeases);
        }
        let State::Soliciting(s) = &mut self.state else { return Err(Drop::UnexpectedType) };
        let collecting = s.collect_until().is_some_and(|until| now < until);
        if offer.preference == 255 || !collecting {
            self.start_requesting(now, offer);
        } else if s.best.as_ref().is_none_or(|b| offer.rank() > b.rank()) {
            s.best = Some(offer);
        }
        Ok(())
    }

    /// Our IA_NA and IA_PD in a message (the first of each with our IAID),
    /// without those whose T1 exceeds T2 (§21.4, §21.21: discarded).
    fn our_ias<'m>(&self, msg: &'m Inbound) -> (Option<&'m wire::IaNa>, Option<&'m wire::IaPd>) {
        let sane = |t1: u32, t2: u32| t1 == 0 || t2 == 0 || t1 <= t2;
        let na = msg.ia_na.iter().find(|ia| ia.iaid == IAID).filter(|ia| sane(ia.t1, ia.t2));
        let pd = msg.ia_pd.iter().find(|ia| ia.iaid == IAID).filter(|ia| sane(ia.t1, ia.t2));
        (na, pd)
    }

    fn note_ia_status(&mut self, ia: IaKind, status: Option<&StatusInfo>) {
        let Some(status) = status.filter(|s| !s.is_success() && s.code != Status::NoBinding) else { return };
        let slot = &mut self.unavailable[ia as usize];
        if slot.as_ref().map(|s| s.code) != Some(status.code) {
            self.events.push(Event::Unavailable { ia, status: status.clone() });
        }
        *slot = Some(status.clone());
    }

    fn on_reply(&mut self, now: Instant, msg: &Inbound, via: Via) -> Result<(), Drop> {
        let server_id = msg.server_id.clone().unwrap_or_default();
        let expected_server = match &self.state {
            State::Requesting(r) => Some(&r.offer.server_id),
            State::Renewing(r) => Some(&r.server_id),
            _ => None,
        };
        if expected_server.is_some_and(|s| *s != server_id) {
            return Err(Drop::ServerIdMismatch);
        }
        if let Some(status) = msg.status.as_ref().filter(|s| !s.is_success()) {
            return match status.code {
                Status::UnspecFail => Err(Drop::StatusUnspecFail),
                Status::UseMulticast => Err(Drop::StatusUseMulticast),
                // §18.2.10.1: NotOnLink answering a Request → discover again.
                Status::NotOnLink if via == Via::Request => {
                    self.back_off(now);
                    Ok(())
                }
                _ => Err(Drop::StatusOther),
            };
        }
        let (na, pd) = self.our_ias(msg);
        let mut no_binding = false;
        let mut granted = Granted::default();
        if let Some(ia) = pd {
            match ia.status.as_ref().filter(|s| !s.is_success()) {
                Some(s) if s.code == Status::NoBinding => no_binding = true,
                Some(s) => self.note_ia_status(IaKind::Prefix, Some(s)),
                None => {
                    for p in &ia.prefixes {
                        if p.len > 128 || p.preferred > p.valid {
                            continue; // §21.22: discarded
                        }
                        let net = (mask(p.prefix, p.len), p.len);
                        if p.valid == 0 {
                            granted.withdrawn_prefixes.push(net);
                        } else {
                            granted.prefixes.push((net, p.preferred, p.valid));
                        }
                    }
                    if !granted.prefixes.is_empty() {
                        granted.timers.push(t1_t2(ia.t1, ia.t2, granted.prefixes.iter().map(|g| g.1)));
                    }
                }
            }
        }
        if let Some(ia) = na {
            match ia.status.as_ref().filter(|s| !s.is_success()) {
                Some(s) if s.code == Status::NoBinding => no_binding = true,
                Some(s) => {
                    if self.config.request_address {
                        self.note_ia_status(IaKind::Address, Some(s));
                    }
                }
                None => {
                    for a in &ia.addresses {
                        if a.preferred > a.valid {
                            continue; // §21.6: discarded
                        }
                        if a.valid == 0 {
                            granted.withdrawn_addresses.push(a.addr);
                        } else {
                            granted.addresses.push((a.addr, a.preferred, a.valid));
                        }
                    }
                    if !granted.addresses.is_empty() {
                        granted.timers.push(t1_t2(ia.t1, ia.t2, granted.addresses.iter().map(|g| g.1)));
                    }
                }
            }
        }
        let changed = self.apply(now, msg, &granted, via == Via::Request);
        let lease_has_valid = self.lease.as_ref().is_some_and(Lease::has_valid);
        if no_binding && via != Via::Request {
            // §18.2.10.1: NoBinding answering Renew or Rebind → Request, from
            // the server that answered, with every IA.
            let lease = self.lease.as_ref();
            let offer = Offer {
                server_id,
                preference: 0,
                addresses: lease
                    .map(|l| l.addresses.iter().filter(|a| !a.expired).map(|a| a.addr).collect())
                    .unwrap_or_default(),
                prefixes: lease
                    .map(|l| l.prefixes.iter().filter(|p| !p.expired).map(|p| (p.prefix, p.len)).collect())
                    .unwrap_or_default(),
            };
            self.start_requesting(now, offer);
            return Ok(());
        }
        if granted.prefixes.is_empty() && granted.addresses.is_empty() {
            if via == Via::Request || !lease_has_valid {
                // Nothing to hold on to: wait, then discover again.
                self.back_off(now);
                return Ok(());
            }
            // A Renew or Rebind answered with nothing new: the exchange goes
            // on at its own pace (withdrawals, if any, are applied).
            return if changed { Ok(()) } else { Err(Drop::NoLeases) };
        }
        // Success.
        self.failures = 0;
        let (t1, t2) = granted.timers.iter().fold((u64::MAX, u64::MAX), |(a, b), (t1, t2)| (a.min(*t1), b.min(*t2)));
        let renew_at = now + Duration::from_secs(t1).max(MIN_RENEW);
        let rebind_at = now + Duration::from_secs(t2).max(MIN_RENEW);
        let missing = self.missing_ias();
        let mut wake = renew_at;
        if missing.is_empty() {
            self.missing_retry = MISSING_RETRY_MIN;
        } else {
            // Ask again for what the server did not give, well before T1 if
            // T1 is long, but never in a tight loop.
            wake = wake.min(now + self.missing_retry);
            self.missing_retry = (self.missing_retry * 2).min(BACKOFF_MAX);
        }
        for ia in [IaKind::Address, IaKind::Prefix] {
            if !missing.contains(&ia) {
                self.unavailable[ia as usize] = None;
            }
        }
        if let Some(lease) = &mut self.lease {
            lease.renew_at = renew_at;
            lease.rebind_at = rebind_at.max(renew_at);
            self.generation += 1;
        }
        self.state = State::Bound(Bound { renew_at: wake });
        self.events.push(match via {
            Via::Request => Event::Bound,
            Via::Renew => Event::Renewed,
            Via::Rebind => Event::Rebound,
        });
        Ok(())
    }

    /// Which IAs we want but do not hold.
    fn missing_ias(&self) -> Vec<IaKind> {
        let lease = self.lease.as_ref();
        let mut out = Vec::new();
        if self.config.request_address && !lease.is_some_and(Lease::has_valid_address) {
            out.push(IaKind::Address);
        }
        if !lease.is_some_and(Lease::has_valid_prefix) {
            out.push(IaKind::Prefix);
        }
        out
    }

    /// Folds a Reply's leases into ours (§18.2.10.1): new ones added, known
    /// ones refreshed, valid lifetime 0 removed, others left alone. A Request
    /// makes a new binding: what it granted replaces what we held of that
    /// kind. Returns whether the lease changed.
    fn apply(&mut self, now: Instant, msg: &Inbound, g: &Granted, fresh: bool) -> bool {
        let grants = !g.prefixes.is_empty() || !g.addresses.is_empty();
        let withdraws = !g.withdrawn_prefixes.is_empty() || !g.withdrawn_addresses.is_empty();
        if !(grants || (withdraws && self.lease.is_some())) {
            return false;
        }
        let lease = self.lease.get_or_insert_with(|| Lease {
            server_id: None,
            prefixes: Vec::new(),
            addresses: Vec::new(),
            dns: Vec::new(),
            domains: Vec::new(),
            renew_at: now,
            rebind_at: now,
        });
        let mut events = Vec::new();
        if fresh && !g.prefixes.is_empty() {
            lease.prefixes.retain(|p| {
                let keep = g.prefixes.iter().any(|(net, ..)| *net == (p.prefix, p.len));
                if !keep {
                    events.push(Event::PrefixLost { prefix: (p.prefix, p.len), reason: LossReason::Replaced });
                }
                keep
            });
        }
        if fresh && !g.addresses.is_empty() {
            lease.addresses.retain(|a| {
                let keep = g.addresses.iter().any(|(addr, ..)| *addr == a.addr);
                if !keep {
                    events.push(Event::AddressLost { addr: a.addr, reason: LossReason::Replaced });
                }
                keep
            });
        }
        lease.prefixes.retain(|p| {
            let gone = g.withdrawn_prefixes.contains(&(p.prefix, p.len));
            if gone {
                events.push(Event::PrefixLost { prefix: (p.prefix, p.len), reason: LossReason::Withdrawn });
            }
            !gone
        });
        lease.addresses.retain(|a| {
            let gone = g.withdrawn_addresses.contains(&a.addr);
            if gone {
                events.push(Event::AddressLost { addr: a.addr, reason: LossReason::Withdrawn });
            }
            !gone
        });
        for &((prefix, len), preferred, valid) in &g.prefixes {
            let p = Prefix {
                prefix,
                len,
                preferred_until: now + secs(preferred),
                valid_until: now + secs(valid),
                expired: false,
            };
            match lease.prefixes.iter_mut().find(|q| (q.prefix, q.len) == (prefix, len)) {
                Some(q) => *q = p,
                None => lease.prefixes.push(p),
            }
        }
        for &(addr, preferred, valid) in &g.addresses {
            let a = Address {
                addr,
                preferred_until: now + secs(preferred),
                valid_until: now + secs(valid),
                expired: false,
            };
            match lease.addresses.iter_mut().find(|b| b.addr == addr) {
                Some(b) => *b = a,
                None => lease.addresses.push(a),
            }
        }
        if grants {
            lease.server_id = msg.server_id.clone();
            lease.dns.clone_from(&msg.dns);
            lease.domains.clone_from(&msg.domains);
        }
        self.events.extend(events);
        self.generation += 1;
        if self.lease.as_ref().is_some_and(|l| l.prefixes.is_empty() && l.addresses.is_empty()) {
            self.lease = None;
        }
        true
    }

    /// Ends valid lifetimes that have passed. A prefix or address that
    /// something else valid can stand in for is removed; the last ones stay
    /// (marked expired) so the network keeps working while we retry, as dhcp4
    /// keeps its address.
    fn expire(&mut self, now: Instant) {
        if self.state == State::Released {
            return;
        }
        let Some(lease) = &mut self.lease else { return };
        if lease.next_expiry().is_none_or(|at| at > now) {
            return;
        }
        let mut events = Vec::new();
        for p in lease.prefixes.iter_mut().filter(|p| !p.expired && p.valid_until <= now) {
            p.expired = true;
            events.push(Event::PrefixLost { prefix: (p.prefix, p.len), reason: LossReason::Expired });
        }
        for a in lease.addresses.iter_mut().filter(|a| !a.expired && a.valid_until <= now) {
            a.expired = true;
            events.push(Event::AddressLost { addr: a.addr, reason: LossReason::Expired });
        }
        if lease.prefixes.iter().any(|p| !p.expired) {
            lease.prefixes.retain(|p| !p.expired);
        }
        if lease.addresses.iter().any(|a| !a.expired) {
            lease.addresses.retain(|a| !a.expired);
        }
        self.events.extend(events);
        self.generation += 1;
    }

    fn step(&mut self, now: Instant) -> Step {
        match &mut self.state {
            State::Soliciting(s) => {
                if s.best.is_some() && s.collect_until().is_some_and(|until| now >= until) {
                    if let Some(offer) = s.best.take() {
                        self.start_requesting(now, offer);
                    }
                    return Step::Changed;
                }
                if !s.rtx.due(now) {
                    return Step::Idle;
                }
                let (xid, elapsed) = (s.xid, s.rtx.elapsed_cs(now));
                s.rtx.on_transmit(now, &mut self.rng);
                let (addresses, prefixes) = self.hints();
                Step::Send(self.message(MessageType::Solicit, xid, elapsed, None, addresses, prefixes))
            }
            State::Requesting(s) => {
                if s.rtx.failed(now) {
                    self.fail(MessageType::Request);
                    let delay = self.solicit_delay();
                    self.start_soliciting(now, delay);
                    return Step::Changed;
                }
                if !s.rtx.due(now) {
                    return Step::Idle;
                }
                let (xid, elapsed) = (s.xid, s.rtx.elapsed_cs(now));
                s.rtx.on_transmit(now, &mut self.rng);
                let offer = s.offer.clone();
                Step::Send(self.message(
                    MessageType::Request,
                    xid,
                    elapsed,
                    Some(offer.server_id),
                    offer.addresses,
                    offer.prefixes,
                ))
            }
            State::Bound(b) => {
                if now < b.renew_at {
                    return Step::Idle;
                }
                self.start_renewing(now);
                Step::Changed
            }
            State::Renewing(s) => {
                if s.rtx.failed(now) {
                    self.fail(MessageType::Renew);
                    self.start_rebinding(now);
                    return Step::Changed;
                }
                if !s.rtx.due(now) {
                    return Step::Idle;
                }
                let (xid, elapsed, server) = (s.xid, s.rtx.elapsed_cs(now), s.server_id.clone());
                s.rtx.on_transmit(now, &mut self.rng);
                let (addresses, prefixes) = self.held();
                Step::Send(self.message(MessageType::Renew, xid, elapsed, Some(server), addresses, prefixes))
            }
            State::Rebinding(s) => {
                if s.rtx.failed(now) {
                    self.fail(MessageType::Rebind);
                    let delay = self.solicit_delay();
                    self.start_soliciting(now, delay);
                    return Step::Changed;
                }
                if !s.rtx.due(now) {
                    return Step::Idle;
                }
                let (xid, elapsed) = (s.xid, s.rtx.elapsed_cs(now));
                s.rtx.on_transmit(now, &mut self.rng);
                let (addresses, prefixes) = self.held();
                Step::Send(self.message(MessageType::Rebind, xid, elapsed, None, addresses, prefixes))
            }
            State::BackingOff(b) => {
                if now < b.until {
                    return Step::Idle;
                }
                self.start_soliciting(now, Duration::ZERO);
                Step::Changed
            }
            State::Releasing(s) => {
                if s.rtx.failed(now) {
                    self.fail(MessageType::Release);
                    self.state = State::Released;
                    self.events.push(Event::Released);
                    return Step::Changed;
                }
                if !s.rtx.due(now) {
                    return Step::Idle;
                }
                let (xid, elapsed) = (s.xid, s.rtx.elapsed_cs(now));
                s.rtx.on_transmit(now, &mut self.rng);
                let (server, addresses, prefixes) = (s.server_id.clone(), s.addresses.clone(), s.prefixes.clone());
                let msg = wire::build(&Outbound {
                    kind: MessageType::Release,
                    xid,
                    client_id: &self.config.duid,
                    server_id: Some(&server),
                    elapsed_cs: elapsed,
                    oro: false,
                    ia_na: (!addresses.is_empty()).then_some(IaNaRequest { iaid: IAID, addresses }),
                    ia_pd: (!prefixes.is_empty()).then_some(IaPdRequest { iaid: IAID, prefixes, length_hint: None }),
                });
                Step::Send(Transmit { kind: MessageType::Release, bytes: msg })
            }
            State::Released => Step::Idle,
        }
    }

    /// Leases we hold that are still valid, for Renew and Rebind.
    fn held(&self) -> (Vec<Ipv6Addr>, Vec<(Ipv6Addr, u8)>) {
        let Some(l) = &self.lease else { return (Vec::new(), Vec::new()) };
        (
            l.addresses.iter().filter(|a| !a.expired).map(|a| a.addr).collect(),
            l.prefixes.iter().filter(|p| !p.expired).map(|p| (p.prefix, p.len)).collect(),
        )
    }

    /// Everything we hold or held, as hints for a Solicit.
    fn hints(&self) -> (Vec<Ipv6Addr>, Vec<(Ipv6Addr, u8)>) {
        let Some(l) = &self.lease else { return (Vec::new(), Vec::new()) };
        (l.addresses.iter().map(|a| a.addr).collect(), l.prefixes.iter().map(|p| (p.prefix, p.len)).collect())
    }

    /// A Solicit, Request, Renew or Rebind: both IAs always (RFC 7550 §4.1:
    /// keep asking for an IA the server did not give), the IA_NA when
    /// configured or held.
    fn message(
        &self,
        kind: MessageType,
        xid: [u8; 3],
        elapsed_cs: u16,
        server_id: Option<Vec<u8>>,
        addresses: Vec<Ipv6Addr>,
        prefixes: Vec<(Ipv6Addr, u8)>,
    ) -> Transmit {
        let ia_na =
            (self.config.request_address || !addresses.is_empty()).then_some(IaNaRequest { iaid: IAID, addresses });
        let ia_pd = Some(IaPdRequest { iaid: IAID, prefixes, length_hint: self.config.prefix_length_hint });
        let bytes = wire::build(&Outbound {
            kind,
            xid,
            client_id: &self.config.duid,
            server_id: server_id.as_deref(),
            elapsed_cs,
            oro: true,
            ia_na,
            ia_pd,
        });
        Transmit { kind, bytes }
    }

    fn fail(&mut self, kind: MessageType) {
        self.counters.exchanges_failed += 1;
        self.events.push(Event::ExchangeFailed { kind });
    }

    fn solicit_delay(&mut self) -> Duration {
        timing::initial_delay(timing::SOL_MAX_DELAY, &mut self.rng)
    }

    fn start_soliciting(&mut self, now: Instant, delay: Duration) {
        let mut rtx = Retransmit::solicit(timing::SOLICIT, now + delay);
        rtx.set_mrt(self.sol_max_rt);
        self.state = State::Soliciting(Soliciting { xid: self.rng.transaction_id(), rtx, best: None });
    }

    fn start_requesting(&mut self, now: Instant, offer: Offer) {
        self.state = State::Requesting(Requesting {
            xid: self.rng.transaction_id(),
            rtx: Retransmit::new(timing::REQUEST, now, None),
            offer,
        });
    }

    /// Renew until T2 (§18.2.4); without a server DUID (a lease router7
    /// wrote) or past T2, Rebind straight away.
    fn start_renewing(&mut self, now: Instant) {
        let Some(lease) = &self.lease else {
            self.start_soliciting(now, Duration::ZERO);
            return;
        };
        match &lease.server_id {
            Some(server_id) if lease.rebind_at > now => {
                self.state = State::Renewing(Renewing {
                    xid: self.rng.transaction_id(),
                    rtx: Retransmit::new(timing::RENEW, now, Some(lease.rebind_at)),
                    server_id: server_id.clone(),
                });
            }
            _ => self.start_rebinding(now),
        }
    }

    /// Rebind until the last valid lifetime ends (§18.2.5).
    fn start_rebinding(&mut self, now: Instant) {
        let end = self.lease.as_ref().and_then(Lease::last_expiry).unwrap_or(now);
        self.state = State::Rebinding(Rebinding {
            xid: self.rng.transaction_id(),
            rtx: Retransmit::new(timing::REBIND, now, Some(end)),
            after_restart: false,
        });
    }

    /// Waits 10 s, 20 s, … up to SOL_MAX_RT before soliciting again.
    fn back_off(&mut self, now: Instant) {
        let exp = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let base = (BACKOFF_MIN * 2u32.saturating_pow(exp)).min(BACKOFF_MAX);
        let jitter = self.rng.jitter_permille().clamp(-100, 100);
        let spread = base * jitter.unsigned_abs() / 1000;
        let delay = if jitter < 0 { base - spread } else { base + spread };
        self.counters.backoffs += 1;
        self.events.push(Event::BackingOff { delay });
        self.state = State::BackingOff(BackingOff { until: now + delay });
    }
}

/// What one Reply granted and withdrew.
#[derive(Debug, Default)]
struct Granted {
    prefixes: Vec<((Ipv6Addr, u8), u32, u32)>,
    addresses: Vec<(Ipv6Addr, u32, u32)>,
    withdrawn_prefixes: Vec<(Ipv6Addr, u8)>,
    withdrawn_addresses: Vec<Ipv6Addr>,
    /// (T1, T2) in seconds per IA that granted something.
    timers: Vec<(u64, u64)>,
}

/// A lease with a valid lifetime and a preferred one no longer than it.
fn usable(preferred: u32, valid: u32) -> bool {
    valid > 0 && preferred <= valid
}

/// T1 and T2 of an IA; 0 leaves them to us: 0.5 and 0.8 times the shortest
/// preferred lifetime (RFC 8415 §14.2, §21.4, §21.21).
fn t1_t2(t1: u32, t2: u32, preferred: impl Iterator<Item = u32>) -> (u64, u64) {
    let shortest = u64::from(preferred.min().unwrap_or(0));
    let t1 = if t1 == 0 { shortest / 2 } else { u64::from(t1) };
    let t2 = if t2 == 0 { shortest * 4 / 5 } else { u64::from(t2) };
    (t1.min(t2), t2)
}

#[cfg(test)]
mod tests;
