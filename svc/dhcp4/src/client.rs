//! The client state machine of RFC 2131 §4.4 (figure 5): INIT, SELECTING,
//! REQUESTING, BOUND, RENEWING, REBINDING and INIT-REBOOT, each a struct that
//! owns its deadlines (after smoltcp's `socket/dhcpv4.rs`).
//!
//! Sans-IO: the shell passes in `now` and received BOOTP payloads
//! ([`Client::handle_packet`]), asks [`Client::poll_at`] when to come back, and
//! drains [`Client::poll`] for messages to send and events to act on. Transaction
//! IDs and retransmission jitter come from an injected [`Random`].
//!
//! Where we differ from router7 (reference §1.1, quirk 2): renewal at T1 is a
//! unicast REQUEST to the server (RENEWING), only at T2 is it broadcast
//! (REBINDING); a restart verifies the stored lease with INIT-REBOOT. What we
//! keep: a lease that runs out stays configured (router7's "maximise
//! connectivity"); we emit [`Event::Expired`] and go back to discovering.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::lease::Lease;
use crate::metrics::Metrics;
use crate::wire::{self, DropReason, Fields, Identity, Outgoing, ReplyKind};

/// Where randomness comes from, so tests are deterministic.
pub trait Random {
    /// A fresh transaction ID.
    fn xid(&mut self) -> u32;
    /// Milliseconds in `-1000..=1000`: RFC 2131 §4.1's "uniform random number
    /// chosen from the range -1 to +1" seconds added to each retransmission delay.
    fn jitter_ms(&mut self) -> i32;
}

/// First retransmission delay (RFC 2131 §4.1).
pub const FIRST_RETRANSMIT: Duration = Duration::from_secs(4);
/// Longest retransmission delay (RFC 2131 §4.1).
pub const MAX_RETRANSMIT: Duration = Duration::from_secs(64);
/// Fewest seconds between REQUESTs in RENEWING and REBINDING (RFC 2131 §4.4.5).
pub const MIN_RENEW_RETRANSMIT: Duration = Duration::from_secs(60);
/// REQUESTs sent in REQUESTING before going back to INIT: the first and four
/// retransmissions, 4 + 8 + 16 + 32 s, then 64 s of waiting (RFC 2131 §3.1 step 5,
/// §4.4.1: "after employing the retransmission algorithm").
pub const MAX_SELECTING_REQUESTS: u32 = 5;
/// REQUESTs sent in INIT-REBOOT before discovering instead. A server with no
/// record of us "MUST remain silent" (RFC 2131 §4.3.2), so this is short: about
/// 28 s (0, 4, 12 s, then 16 s of waiting).
pub const MAX_INIT_REBOOT_REQUESTS: u32 = 3;
/// Far enough in the future to mean "never" without overflowing an `Instant`.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).or_else(|| now.checked_add(FAR)).unwrap_or(now)
}

/// The RFC 2131 §4.1 delay before retransmission number `attempt + 1`:
/// 4 s doubled per attempt up to 64 s, ±1 s.
pub fn retransmit_delay(attempt: u32, rng: &mut impl Random) -> Duration {
    let base = FIRST_RETRANSMIT.saturating_mul(1 << attempt.min(4)).min(MAX_RETRANSMIT);
    let jitter = rng.jitter_ms().clamp(-1000, 1000);
    let ms = i64::try_from(base.as_millis()).unwrap_or(i64::MAX).saturating_add(i64::from(jitter));
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Link-layer and IP broadcast to port 67, from `source` (0.0.0.0 until we
    /// hold an address; RFC 2131 §4.1).
    Broadcast {
        /// IP source address.
        source: Ipv4Addr,
    },
    /// IP unicast to `server`:67 from our `source`:68.
    Unicast {
        /// Our address.
        source: Ipv4Addr,
        /// The server identifier.
        server: Ipv4Addr,
    },
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// What it is.
    pub kind: Outgoing,
    /// Its transaction ID.
    pub xid: u32,
    /// Where it goes.
    pub destination: Destination,
    /// The BOOTP payload.
    pub payload: Vec<u8>,
}

/// What the shell is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new lease, or one with another address: persist it, notify readers.
    Bound,
    /// The same address, extended: persist it, notify readers.
    Renewed {
        /// The state whose REQUEST was answered.
        via: StateName,
    },
    /// The lease ran out with no server answering. Its configuration stays in
    /// place; the client is discovering again.
    Expired,
    /// A server refused our address (DHCPNAK); the client starts over.
    Lost {
        /// The address refused.
        address: Ipv4Addr,
        /// Option 54 of the NAK.
        server: Option<Ipv4Addr>,
        /// Option 56 of the NAK.
        message: Option<String>,
    },
}

/// What [`Client::poll`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message.
    Send(Transmit),
    /// React to an event.
    Event(Event),
}

/// RFC 2131 figure 5's states, for status and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateName {
    /// Waiting to start discovering.
    Init,
    /// DISCOVER sent, waiting for an OFFER.
    Selecting,
    /// REQUEST for an OFFER sent, waiting for the ACK.
    Requesting,
    /// Holding a lease until T1.
    Bound,
    /// Past T1: asking our server by unicast.
    Renewing,
    /// Past T2: asking any server by broadcast.
    Rebinding,
    /// After a restart: verifying the stored lease.
    InitReboot,
}

impl StateName {
    /// RFC 2131's spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Selecting => "SELECTING",
            Self::Requesting => "REQUESTING",
            Self::Bound => "BOUND",
            Self::Renewing => "RENEWING",
            Self::Rebinding => "REBINDING",
            Self::InitReboot => "INIT-REBOOT",
        }
    }
}

/// The lease whose configuration is in place: valid, or kept after it ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The configuration and its times.
    pub lease: Lease,
    /// The DHCPACK as received (BOOTP payload), for `/perm/dhcp4/wire/ack`.
    pub ack: Vec<u8>,
    /// When it was granted: when the REQUEST that got it was first sent (RFC
    /// 2131 §4.4.1). `None` for a lease restored from disk.
    pub granted_at: Option<Instant>,
    /// When it runs out, when known.
    pub expires_at: Option<Instant>,
    /// Whether it ran out (or was restored already expired).
    pub expired: bool,
}

/// One transaction: its ID, when it began (for `secs`) and when its first
/// REQUEST went out (the lease's start, RFC 2131 §4.4.1).
#[derive(Debug, Clone, Copy)]
struct Exchange {
    xid: u32,
    started_at: Instant,
    first_sent_at: Option<Instant>,
}

impl Exchange {
    fn new(rng: &mut impl Random, now: Instant) -> Self {
        Self { xid: rng.xid(), started_at: now, first_sent_at: None }
    }

    fn secs(&self, now: Instant) -> u16 {
        u16::try_from(now.saturating_duration_since(self.started_at).as_secs()).unwrap_or(u16::MAX)
    }
}

/// Retransmission by RFC 2131 §4.1's exponential backoff.
#[derive(Debug, Clone, Copy)]
struct Retransmit {
    next_at: Instant,
    sent: u32,
}

impl Retransmit {
    fn at(now: Instant) -> Self {
        Self { next_at: now, sent: 0 }
    }

    fn record(&mut self, now: Instant, rng: &mut impl Random) {
        self.next_at = after(now, retransmit_delay(self.sent, rng));
        self.sent += 1;
    }
}

#[derive(Debug)]
struct InitState {
    start_at: Instant,
}

#[derive(Debug)]
struct SelectingState {
    tx: Exchange,
    retransmit: Retransmit,
    /// `secs` of the last DISCOVER, repeated in the REQUEST (RFC 2131 §4.4.1).
    secs: u16,
}

#[derive(Debug)]
struct RequestingState {
    tx: Exchange,
    retransmit: Retransmit,
    secs: u16,
    server_id: Ipv4Addr,
    offered_ip: Ipv4Addr,
}

#[derive(Debug)]
struct BoundState {
    renew_at: Instant,
    rebind_at: Instant,
}

#[derive(Debug)]
struct RenewingState {
    tx: Exchange,
    next_at: Instant,
    rebind_at: Instant,
}

#[derive(Debug)]
struct RebindingState {
    tx: Exchange,
    next_at: Instant,
}

#[derive(Debug)]
struct InitRebootState {
    tx: Exchange,
    retransmit: Retransmit,
    requested_ip: Ipv4Addr,
}

#[derive(Debug)]
enum State {
    Init(InitState),
    Selecting(SelectingState),
    Requesting(RequestingState),
    Bound(BoundState),
    Renewing(RenewingState),
    Rebinding(RebindingState),
    InitReboot(InitRebootState),
}

impl State {
    fn name(&self) -> StateName {
        match self {
            Self::Init(_) => StateName::Init,
            Self::Selecting(_) => StateName::Selecting,
            Self::Requesting(_) => StateName::Requesting,
            Self::Bound(_) => StateName::Bound,
            Self::Renewing(_) => StateName::Renewing,
            Self::Rebinding(_) => StateName::Rebinding,
            Self::InitReboot(_) => StateName::InitReboot,
        }
    }

    fn exchange(&self) -> Option<&Exchange> {
        match self {
            Self::Init(_) | Self::Bound(_) => None,
            Self::Selecting(s) => Some(&s.tx),
            Self::Requesting(s) => Some(&s.tx),
            Self::Renewing(s) => Some(&s.tx),
            Self::Rebinding(s) => Some(&s.tx),
            Self::InitReboot(s) => Some(&s.tx),
        }
    }

    fn deadline(&self) -> Instant {
        match self {
            Self::Init(s) => s.start_at,
            Self::Selecting(s) => s.retransmit.next_at,
            Self::Requesting(s) => s.retransmit.next_at,
            Self::Bound(s) => s.renew_at,
            Self::Renewing(s) => s.next_at.min(s.rebind_at),
            Self::Rebinding(s) => s.next_at,
            Self::InitReboot(s) => s.retransmit.next_at,
        }
    }
}

/// Why a stored ACK cannot be used after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    /// It does not decode.
    Malformed(DropReason),
    /// It decodes but is not a DHCPACK.
    NotAnAck,
    /// Its `yiaddr` is not a usable address.
    NoAddress,
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(r) => write!(f, "malformed ({})", r.as_str()),
            Self::NotAnAck => f.write_str("not a DHCPACK"),
            Self::NoAddress => f.write_str("no usable address in it"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// The DHCPv4 client. See the module docs.
#[derive(Debug)]
pub struct Client<R> {
    identity: Identity,
    rng: R,
    state: State,
    held: Option<Held>,
    events: VecDeque<(Instant, Event)>,
    naks_in_a_row: u32,
    metrics: Metrics,
}

impl<R: Random> Client<R> {
    /// A client with no lease, discovering from `now` (RFC 2131 §4.4.1 lets the
    /// client wait 1–10 s first to spread out a building's worth of clients
    /// booting together; a router's uplink has one client, so it does not).
    pub fn new(identity: Identity, rng: R, now: Instant) -> Self {
        Self {
            identity,
            rng,
            state: State::Init(InitState { start_at: now }),
            held: None,
            events: VecDeque::new(),
            naks_in_a_row: 0,
            metrics: Metrics::default(),
        }
    }

    /// A client after a restart, holding the stored DHCPACK `ack` (BOOTP
    /// payload) and verifying it with INIT-REBOOT (RFC 2131 §3.2, §4.3.2).
    /// `remaining` is how long the lease still runs by the wall clock; `None`
    /// when it has run out (or is unknown): INIT-REBOOT is tried all the same,
    /// since the server may still have it.
    pub fn restore(
        identity: Identity,
        mut rng: R,
        now: Instant,
        ack: Vec<u8>,
        remaining: Option<Duration>,
    ) -> Result<Self, RestoreError> {
        let reply = wire::decode(&ack).map_err(RestoreError::Malformed)?;
        if ack.first() != Some(&2) || ack.get(236..240) != Some(&wire::MAGIC_COOKIE[..]) {
            return Err(RestoreError::Malformed(DropReason::NotBootReply));
        }
        if reply.kind != ReplyKind::Ack {
            return Err(RestoreError::NotAnAck);
        }
        let lease = Lease::from_ack(&reply.message).ok_or(RestoreError::NoAddress)?;
        let remaining = remaining.filter(|r| !r.is_zero()).map(|r| r.min(lease.times.lease));
        let requested_ip = lease.client_ip;
        let tx = Exchange::new(&mut rng, now);
        Ok(Self {
            identity,
            rng,
            state: State::InitReboot(InitRebootState { tx, retransmit: Retransmit::at(now), requested_ip }),
            held: Some(Held {
                lease,
                ack,
                granted_at: None,
                expires_at: remaining.map(|r| after(now, r)),
                expired: remaining.is_none(),
            }),
            events: VecDeque::new(),
            naks_in_a_row: 0,
            metrics: Metrics::default(),
        })
    }

    /// The state, for status and logs.
    #[must_use]
    pub fn state(&self) -> StateName {
        self.state.name()
    }

    /// The lease in place, valid or kept after it ran out.
    #[must_use]
    pub fn held(&self) -> Option<&Held> {
        self.held.as_ref()
    }

    /// Whether the lease in place is still valid.
    #[must_use]
    pub fn has_valid_lease(&self) -> bool {
        self.held.as_ref().is_some_and(|h| !h.expired)
    }

    /// The open transaction's ID.
    #[must_use]
    pub fn xid(&self) -> Option<u32> {
        self.state.exchange().map(|e| e.xid)
    }

    /// Who we are on the wire.
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The counters.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The counters, for the shell's send and frame counts.
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// When [`Client::poll`] next has something to do.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        let expiry = self.held.as_ref().filter(|h| !h.expired).and_then(|h| h.expires_at);
        [self.events.front().map(|(at, _)| *at), Some(self.state.deadline()), expiry].into_iter().flatten().min()
    }

    /// Takes a received BOOTP payload; acts on it or counts why not.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8]) {
        self.metrics.received += 1;
        match self.accept(now, bytes) {
            Ok(()) => self.metrics.accepted += 1,
            Err(reason) => self.metrics.count_drop(reason),
        }
    }

    /// The `renew` command: renew now (BOUND → RENEWING), or send the pending
    /// message now and restart the backoff.
    pub fn renew_now(&mut self, now: Instant) {
        match &mut self.state {
            State::Init(s) => s.start_at = now,
            State::Selecting(s) => s.retransmit = Retransmit::at(now),
            State::Requesting(s) => s.retransmit.next_at = now,
            State::InitReboot(s) => s.retransmit.next_at = now,
            State::Renewing(s) => s.next_at = now,
            State::Rebinding(s) => s.next_at = now,
            State::Bound(s) => {
                let rebind_at = s.rebind_at;
                self.state =
                    State::Renewing(RenewingState { tx: Exchange::new(&mut self.rng, now), next_at: now, rebind_at });
            }
        }
    }

    /// Uses another identity (the MAC in interfaces.json changed): verifies the
    /// lease in place with INIT-REBOOT, or discovers anew.
    pub fn set_identity(&mut self, now: Instant, identity: Identity) {
        if identity == self.identity {
            return;
        }
        self.identity = identity;
        self.state = match &self.held {
            Some(h) => State::InitReboot(InitRebootState {
                tx: Exchange::new(&mut self.rng, now),
                retransmit: Retransmit::at(now),
                requested_ip: h.lease.client_ip,
            }),
            None => State::Init(InitState { start_at: now }),
        };
    }

    /// Gives the lease back (RFC 2131 §4.4.6): the DHCPRELEASE to send, unicast
    /// to the server with `ciaddr` and option 54, when there is a lease with a
    /// server identifier.
    pub fn release(mut self) -> Option<Transmit> {
        let held = self.held.take()?;
        let server = held.lease.server_id?;
        let source = held.lease.client_ip;
        let xid = self.rng.xid();
        let fields = Fields { xid, secs: 0, ciaddr: source, requested_ip: None, server_id: Some(server) };
        Some(Transmit {
            kind: Outgoing::Release,
            xid,
            destination: Destination::Unicast { source, server },
            payload: wire::build(Outgoing::Release, &self.identity, fields),
        })
    }

    /// The next message to send or event to act on at `now`; call until `None`
    /// after every input.
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        // Bounded: every transition below either sends (and moves the deadline
        // past `now`) or lands in a state whose deadline it checks next.
        for _ in 0..8 {
            if let Some(i) = self.events.iter().position(|(at, _)| *at <= now)
                && let Some((_, event)) = self.events.remove(i)
            {
                return Some(Action::Event(event));
            }
            if let Some(held) = &mut self.held
                && !held.expired
                && held.expires_at.is_some_and(|t| t <= now)
            {
                // RFC 2131 §4.4.5: "If the lease expires before the client
                // receives a DHCPACK, the client moves to INIT state". We do not
                // stop using the address: nothing else will give us one sooner.
                held.expired = true;
                if matches!(self.state, State::Bound(_) | State::Renewing(_) | State::Rebinding(_)) {
                    self.state = State::Init(InitState { start_at: now });
                }
                return Some(Action::Event(Event::Expired));
            }
            match self.step(now) {
                Step::Send(t) => return Some(Action::Send(t)),
                Step::Again => {}
                Step::Idle => return None,
            }
        }
        None
    }

    fn step(&mut self, now: Instant) -> Step {
        let held_ip = self.held.as_ref().map(|h| h.lease.client_ip);
        let server_id = self.held.as_ref().and_then(|h| h.lease.server_id);
        let expires_at = self.held.as_ref().and_then(|h| h.expires_at);
        match &mut self.state {
            State::Init(s) => {
                if now < s.start_at {
                    return Step::Idle;
                }
                let tx = Exchange::new(&mut self.rng, now);
                self.state = State::Selecting(SelectingState { tx, retransmit: Retransmit::at(now), secs: 0 });
                Step::Again
            }
            State::Selecting(s) => {
                if now < s.retransmit.next_at {
                    return Step::Idle;
                }
                s.secs = s.tx.secs(now);
                // RFC 2131 §4.4.1: the client MAY suggest an address: the one it
                // still has configured, if any.
                let fields = Fields {
                    xid: s.tx.xid,
                    secs: s.secs,
                    ciaddr: Ipv4Addr::UNSPECIFIED,
                    requested_ip: held_ip,
                    server_id: None,
                };
                s.retransmit.record(now, &mut self.rng);
                Step::Send(transmit(&self.identity, Outgoing::Discover, fields, broadcast_from(None)))
            }
            State::Requesting(s) => {
                if now < s.retransmit.next_at {
                    return Step::Idle;
                }
                if s.retransmit.sent >= MAX_SELECTING_REQUESTS {
                    self.state = State::Init(InitState { start_at: now });
                    return Step::Again;
                }
                s.tx.first_sent_at.get_or_insert(now);
                let fields = Fields {
                    xid: s.tx.xid,
                    secs: s.secs,
                    ciaddr: Ipv4Addr::UNSPECIFIED,
                    requested_ip: Some(s.offered_ip),
                    server_id: Some(s.server_id),
                };
                s.retransmit.record(now, &mut self.rng);
                Step::Send(transmit(&self.identity, Outgoing::RequestSelecting, fields, broadcast_from(None)))
            }
            State::InitReboot(s) => {
                if now < s.retransmit.next_at {
                    return Step::Idle;
                }
                if s.retransmit.sent >= MAX_INIT_REBOOT_REQUESTS {
                    self.state = State::Init(InitState { start_at: now });
                    return Step::Again;
                }
                s.tx.first_sent_at.get_or_insert(now);
                // RFC 2131 §4.3.2 / table 5: option 50 set, no option 54, ciaddr 0.
                let fields = Fields {
                    xid: s.tx.xid,
                    secs: s.tx.secs(now),
                    ciaddr: Ipv4Addr::UNSPECIFIED,
                    requested_ip: Some(s.requested_ip),
                    server_id: None,
                };
                s.retransmit.record(now, &mut self.rng);
                Step::Send(transmit(&self.identity, Outgoing::RequestInitReboot, fields, broadcast_from(None)))
            }
            State::Bound(s) => {
                if now < s.renew_at {
                    return Step::Idle;
                }
                let rebind_at = s.rebind_at;
                let tx = Exchange::new(&mut self.rng, now);
                self.state = State::Renewing(RenewingState { tx, next_at: now, rebind_at });
                Step::Again
            }
            State::Renewing(s) => {
                let (Some(ip), Some(server)) = (held_ip, server_id) else {
                    // No server identifier to unicast to: ask everyone.
                    return self.start_rebinding(now);
                };
                if now >= s.rebind_at {
                    return self.start_rebinding(now);
                }
                if now < s.next_at {
                    return Step::Idle;
                }
                s.tx.first_sent_at.get_or_insert(now);
                // RFC 2131 §4.4.5: wait half the time left until T2, at least 60 s.
                s.next_at = after(now, ((s.rebind_at - now) / 2).max(MIN_RENEW_RETRANSMIT)).min(s.rebind_at);
                let fields = renewal_fields(&s.tx, now, ip);
                let destination = Destination::Unicast { source: ip, server };
                Step::Send(transmit(&self.identity, Outgoing::RequestRenewing, fields, destination))
            }
            State::Rebinding(s) => {
                let Some(ip) = held_ip else {
                    self.state = State::Init(InitState { start_at: now });
                    return Step::Again;
                };
                if now < s.next_at {
                    return Step::Idle;
                }
                s.tx.first_sent_at.get_or_insert(now);
                // RFC 2131 §4.4.5: half the time left on the lease, at least 60 s.
                s.next_at = match expires_at {
                    Some(e) if e > now => after(now, ((e - now) / 2).max(MIN_RENEW_RETRANSMIT)).min(e),
                    _ => after(now, MIN_RENEW_RETRANSMIT),
                };
                let fields = renewal_fields(&s.tx, now, ip);
                Step::Send(transmit(&self.identity, Outgoing::RequestRebinding, fields, broadcast_from(Some(ip))))
            }
        }
    }

    fn start_rebinding(&mut self, now: Instant) -> Step {
        let tx = Exchange::new(&mut self.rng, now);
        self.state = State::Rebinding(RebindingState { tx, next_at: now });
        Step::Again
    }

    fn accept(&mut self, now: Instant, bytes: &[u8]) -> Result<(), DropReason> {
        let header = wire::check_header(bytes, self.identity.mac)?;
        let exchange = *self.state.exchange().ok_or(DropReason::NotWaiting)?;
        if header.xid != exchange.xid {
            return Err(DropReason::WrongXid);
        }
        let reply = wire::decode(bytes)?;
        match (&self.state, reply.kind) {
            (State::Selecting(s), ReplyKind::Offer) => {
                let offered_ip = reply.message.yiaddr();
                let server_id = wire::server_id(&reply.message);
                let Some(server_id) = server_id.filter(|_| wire::usable_host_address(offered_ip)) else {
                    return Err(DropReason::InvalidOffer);
                };
                // The first acceptable OFFER wins (RFC 2131 §4.4.1 lets the
                // client take the first). The REQUEST keeps the OFFER's xid and
                // the DISCOVER's secs.
                self.state = State::Requesting(RequestingState {
                    tx: exchange,
                    retransmit: Retransmit::at(now),
                    secs: s.secs,
                    server_id,
                    offered_ip,
                });
                Ok(())
            }
            (
                State::Requesting(_) | State::InitReboot(_) | State::Renewing(_) | State::Rebinding(_),
                ReplyKind::Ack,
            ) => {
                // The ACK's server identifier may differ from the OFFER's
                // (fiber7 does that); it is the one we renew with.
                let lease = Lease::from_ack(&reply.message).ok_or(DropReason::InvalidAck)?;
                self.bind(now, exchange, lease, bytes.to_vec());
                Ok(())
            }
            (
                State::Requesting(_) | State::InitReboot(_) | State::Renewing(_) | State::Rebinding(_),
                ReplyKind::Nak,
            ) => {
                self.refused(now, &reply.message);
                Ok(())
            }
            _ => Err(DropReason::UnexpectedType),
        }
    }

    fn bind(&mut self, now: Instant, exchange: Exchange, lease: Lease, ack: Vec<u8>) {
        let granted = exchange.first_sent_at.unwrap_or(now);
        let renewal = matches!(self.state, State::InitReboot(_) | State::Renewing(_) | State::Rebinding(_));
        let same_address = self.held.as_ref().is_some_and(|h| h.lease.client_ip == lease.client_ip);
        let event = if renewal && same_address { Event::Renewed { via: self.state.name() } } else { Event::Bound };
        let times = lease.times;
        self.state = State::Bound(BoundState {
            renew_at: after(granted, times.renew).max(now),
            rebind_at: after(granted, times.rebind).max(now),
        });
        self.held = Some(Held {
            lease,
            ack,
            granted_at: Some(granted),
            expires_at: Some(after(granted, times.lease)),
            expired: false,
        });
        self.naks_in_a_row = 0;
        self.events.push_back((now, event));
    }

    fn refused(&mut self, now: Instant, nak: &dhcproto::v4::Message) {
        let refused_ip = match &self.state {
            State::Requesting(s) => Some(s.offered_ip),
            State::InitReboot(s) => Some(s.requested_ip),
            _ => self.held.as_ref().map(|h| h.lease.client_ip),
        };
        // The NAK is about the address we asked for; a kept lease for another
        // address (asked for in DISCOVER, offered something else) stays.
        if let Some(held) = self.held.take_if(|h| Some(h.lease.client_ip) == refused_ip) {
            let event = Event::Lost {
                address: held.lease.client_ip,
                server: wire::server_id(nak),
                message: wire::server_message(nak),
            };
            self.events.push_back((now, event));
        }
        // RFC 2131 §3.1 step 5 / §4.4.5: on a NAK, restart from INIT. A server
        // that NAKs every REQUEST must not have us loop at network speed: from
        // the second NAK in a row on, wait with the usual backoff.
        self.naks_in_a_row += 1;
        let wait = match self.naks_in_a_row {
            0 | 1 => Duration::ZERO,
            n => retransmit_delay(n - 2, &mut self.rng),
        };
        self.state = State::Init(InitState { start_at: after(now, wait) });
    }
}

enum Step {
    Send(Transmit),
    Again,
    Idle,
}

fn broadcast_from(ip: Option<Ipv4Addr>) -> Destination {
    Destination::Broadcast { source: ip.unwrap_or(Ipv4Addr::UNSPECIFIED) }
}

/// RENEWING and REBINDING (RFC 2131 §4.3.2, table 5): ciaddr set, neither
/// option 50 nor option 54.
fn renewal_fields(tx: &Exchange, now: Instant, ip: Ipv4Addr) -> Fields {
    Fields { xid: tx.xid, secs: tx.secs(now), ciaddr: ip, requested_ip: None, server_id: None }
}

fn transmit(identity: &Identity, kind: Outgoing, fields: Fields, destination: Destination) -> Transmit {
    Transmit { kind, xid: fields.xid, destination, payload: wire::build(kind, identity, fields) }
}

#[cfg(test)]
mod tests;
