//! The sans-IO core: what the LAN is told and when. It takes the inputs the
//! shell read (configuration, the LAN interface, the prefixes), solicitations
//! as they arrive, and the time; it hands back advertisements to send and
//! events to publish. It reads no clock, file or socket.
//!
//! A prefix is in one of three states:
//! - **current**: advertised with its lifetimes (valid 7200 s, preferred 1800 s
//!   by default), never longer than what is left of its DHCPv6 lifetimes
//!   (RFC 9096 §3, L-15); once its DHCPv6 valid lifetime has run out it is
//!   **expired** and left out, as hosts have dropped it too by then.
//! - **deprecated**: it was advertised and is gone (the lease changed or was
//!   lost). RFC 9096 §3.5 (which updates RFC 7084 L-13) says stale prefixes MUST
//!   be advertised with Preferred and Valid Lifetime 0, L and A unchanged. We do
//!   so for as long as a host may still hold an address in it: until the last
//!   valid lifetime we advertised runs out, and at most two hours, since a host
//!   that hears valid lifetime 0 keeps an address at most two more hours (RFC
//!   4862 §5.5.3 e). Preferred lifetime 0 deprecates the host's address at once;
//!   hosts that follow RFC 4862 strictly keep it valid (unused for new
//!   connections) until that timer ends, newer ones drop it immediately.
//!
//! While no prefix is current the Router Lifetime is 0: a router without an
//! IPv6 uplink must not be the LAN's default router (RFC 7084 G-4, G-5). When
//! nothing at all is left to say, up to MAX_FINAL_RTR_ADVERTISEMENTS RAs with
//! Router Lifetime 0 end the default route (RFC 4861 §6.2.5) and RAs stop; with
//! no prefix ever known nothing is sent at all (router7). A clean stop of the
//! daemon sends no final RA: a restart by init must not cut the LAN's route.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::timefmt::Timestamp;
use serde_json::{Value, json};

use crate::advert::{Preference, PrefixInfo, RouterAdvert};
use crate::config::Config;
use crate::dns_options::{Dnssl, Rdnss};
use crate::metrics::RadvdMetrics;
use crate::prefixes::{Lifetimes, Prefix, PrefixInput, Record, RecordEntry, Source};
use crate::random::Random;
use crate::schedule::{Answer, Due, Schedule};
use crate::solicit::{self, DropReason};

/// ff02::1, where unsolicited and multicast solicited RAs go (RFC 4861 §6.2.4).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::2, where Router Solicitations go (RFC 4861 §6.3.7).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// Cur Hop Limit advertised to hosts (router7).
pub const CUR_HOP_LIMIT: u8 = 64;
/// Deprecated prefixes kept in RAs at once; the oldest make way.
pub const MAX_DEPRECATED: usize = 8;
/// MAX_FINAL_RTR_ADVERTISEMENTS (RFC 4861 §10).
pub const MAX_FINAL_RTR_ADVERTISEMENTS: u32 = 3;
/// The longest a host keeps an address after hearing valid lifetime 0 (RFC 4862 §5.5.3 e).
pub const TWO_HOURS: Duration = Duration::from_secs(7200);
/// Link MTUs below IPv6's minimum (RFC 8200 §5) are not advertised.
const IPV6_MIN_MTU: u32 = 1280;

/// The LAN interface as the shell found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Hardware address (Source Link-Layer Address option).
    pub mac: Option<[u8; 6]>,
    /// MTU (MTU option).
    pub mtu: Option<u32>,
    /// Link-local address: the RA's source (RFC 4861 §4.2) and the RDNSS.
    pub link_local: Option<Ipv6Addr>,
}

/// Everything a reload reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Settings.
    pub config: Config,
    /// The LAN interface, when it exists.
    pub link: Option<Link>,
    /// The prefixes to advertise.
    pub prefixes: Vec<PrefixInput>,
}

/// Why an RA goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The periodic timer.
    Unsolicited,
    /// A solicitation or a reload brought a multicast RA forward.
    SolicitedMulticast,
    /// The answer to one host's solicitation.
    SolicitedUnicast,
}

/// An RA to send: the ICMPv6 message (checksum zero, the kernel fills it), from
/// the link-local address, hop limit 255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: Ipv6Addr,
    /// Source: the LAN's link-local address.
    pub src: Ipv6Addr,
    /// The ICMPv6 message.
    pub bytes: Vec<u8>,
    /// Why it goes out.
    pub kind: Kind,
}

/// Something for the control API's event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `radvd.prefix.advertised`, `.deprecated`, `.expired`, `.withdrawn`.
    pub topic: &'static str,
    /// Details.
    pub attributes: Value,
}

#[derive(Debug, Clone)]
struct Current {
    source: Source,
    lifetimes: Option<Lifetimes>,
    preferred_deadline: Option<Instant>,
    valid_deadline: Option<Instant>,
    /// The latest time a host may hold an address in it, from what we advertised.
    hosts_hold_until: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Expired {
    source: Source,
    lifetimes: Option<Lifetimes>,
    hosts_hold_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Deprecated {
    until: Instant,
    reason: &'static str,
}

/// What the RAs say, apart from the lifetimes counting down; a change restarts
/// the fast start (RFC 4861 §6.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    current: Vec<Prefix>,
    deprecated: Vec<Prefix>,
    link: Link,
    config: Config,
    finals: bool,
}

/// The core; see the module docs.
pub struct Advertiser {
    config: Config,
    link: Option<Link>,
    current: BTreeMap<Prefix, Current>,
    expired: BTreeMap<Prefix, Expired>,
    deprecated: BTreeMap<Prefix, Deprecated>,
    schedule: Schedule,
    rng: Box<dyn Random>,
    metrics: Arc<RadvdMetrics>,
    events: Vec<Event>,
    record_dirty: bool,
    content: Option<Content>,
    /// Final RAs (Router Lifetime 0, no prefix) still to send.
    finals_left: u32,
    last_router_lifetime: u16,
    /// Deprecations restored from the record, announced after the first reload
    /// (those still delegated are current again by then).
    announce_restored: bool,
}

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser")
            .field("link", &self.link)
            .field("current", &self.current.keys().collect::<Vec<_>>())
            .field("deprecated", &self.deprecated.keys().collect::<Vec<_>>())
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// Whole seconds until `deadline` (`u32::MAX` = none), saturating.
fn secs_until(now: Instant, deadline: Option<Instant>) -> u32 {
    deadline.map_or(u32::MAX, |d| u32::try_from(d.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX))
}

/// The monotonic deadline of a wall-clock end, computed once when the lease is
/// read: a later jump of the wall clock (NTP after a boot in 1970) moves nothing.
fn deadline(now: Instant, wall_now: Timestamp, until: Timestamp) -> Option<Instant> {
    let left = wall_now.until(until);
    // Beyond u32 seconds a lifetime is infinite (RFC 4861 §4.6.2).
    if left.as_secs() >= u64::from(u32::MAX) {
        return None;
    }
    now.checked_add(left)
}

impl Advertiser {
    /// A core with nothing to advertise yet.
    #[must_use]
    pub fn new(config: Config, rng: Box<dyn Random>, metrics: Arc<RadvdMetrics>) -> Self {
        Self {
            schedule: Schedule::new(config.intervals),
            config,
            link: None,
            current: BTreeMap::new(),
            expired: BTreeMap::new(),
            deprecated: BTreeMap::new(),
            rng,
            metrics,
            events: Vec::new(),
            record_dirty: false,
            content: None,
            finals_left: 0,
            last_router_lifetime: 0,
            announce_restored: false,
        }
    }

    fn emit(&mut self, topic: &'static str, attributes: Value) {
        self.events.push(Event { topic, attributes });
    }

    /// Takes what the record of the last run says hosts may still hold: each
    /// becomes deprecated (a reload revives those still delegated). Call before
    /// the first [`Advertiser::reload`].
    pub fn restore(&mut self, now: Instant, record: &Record) {
        for entry in &record.prefixes {
            let Ok(prefix) = entry.prefix.parse::<Prefix>() else { continue };
            if self.current.contains_key(&prefix) {
                continue;
            }
            let held = Duration::from_secs(entry.valid_seconds.into()).min(TWO_HOURS);
            if !held.is_zero() {
                self.deprecated.insert(prefix, Deprecated { until: now + held, reason: "restart" });
                self.announce_restored = true;
            }
        }
        self.trim_deprecated();
    }

    /// Takes new inputs (start, SIGUSR1, `reload` command) and sends a fresh RA
    /// at once — at most one every MIN_DELAY_BETWEEN_RAS.
    pub fn reload(&mut self, now: Instant, wall_now: Timestamp, inputs: Inputs) {
        if inputs.config != self.config {
            self.schedule.set_intervals(now, inputs.config.intervals, self.rng.as_mut());
            self.config = inputs.config;
        }
        self.link = inputs.link;
        self.apply_prefixes(now, wall_now, inputs.prefixes);
        if std::mem::take(&mut self.announce_restored) {
            let restored: Vec<(Prefix, Instant)> =
                self.deprecated.iter().filter(|(_, d)| d.reason == "restart").map(|(p, d)| (*p, d.until)).collect();
            for (prefix, until) in restored {
                self.emit(
                    "radvd.prefix.deprecated",
                    json!({"prefix": prefix.to_string(), "reason": "restart", "seconds": secs_until(now, Some(until))}),
                );
            }
        }
        self.expire(now);
        self.commit(now, true);
    }

    fn apply_prefixes(&mut self, now: Instant, wall_now: Timestamp, inputs: Vec<PrefixInput>) {
        let wanted: BTreeMap<Prefix, PrefixInput> = inputs.into_iter().map(|p| (p.prefix, p)).collect();
        let gone: Vec<Prefix> = self.current.keys().filter(|p| !wanted.contains_key(p)).copied().collect();
        for prefix in gone {
            if let Some(c) = self.current.remove(&prefix) {
                self.deprecate(now, prefix, c.hosts_hold_until, "removed");
            }
        }
        self.expired.retain(|p, _| wanted.contains_key(p));
        for (prefix, input) in wanted {
            let deadlines = |l: Option<Lifetimes>| match l {
                Some(l) => (deadline(now, wall_now, l.preferred_until), deadline(now, wall_now, l.valid_until)),
                None => (None, None),
            };
            if let Some(c) = self.current.get_mut(&prefix) {
                c.source = input.source;
                // Unchanged lifetimes keep their deadlines (see `deadline`).
                if c.lifetimes != input.lifetimes {
                    (c.preferred_deadline, c.valid_deadline) = deadlines(input.lifetimes);
                    c.lifetimes = input.lifetimes;
                }
                continue;
            }
            let hosts_hold_until = match self.expired.get(&prefix) {
                // Still the lease that ran out: stays expired.
                Some(e) if e.lifetimes == input.lifetimes => continue,
                Some(e) => e.hosts_hold_until,
                None => None,
            };
            self.expired.remove(&prefix);
            if self.deprecated.remove(&prefix).is_some() {
                self.record_dirty = true;
            }
            let (preferred_deadline, valid_deadline) = deadlines(input.lifetimes);
            self.current.insert(
                prefix,
                Current {
                    source: input.source,
                    lifetimes: input.lifetimes,
                    preferred_deadline,
                    valid_deadline,
                    hosts_hold_until,
                },
            );
            self.record_dirty = true;
            self.emit("radvd.prefix.advertised", json!({"prefix": prefix.to_string(), "source": input.source.name()}));
        }
    }

    /// Moves a prefix that hosts may still hold to the deprecated list.
    fn deprecate(&mut self, now: Instant, prefix: Prefix, hosts_hold_until: Option<Instant>, reason: &'static str) {
        self.record_dirty = true;
        let until = hosts_hold_until.map(|u| u.min(now + TWO_HOURS));
        match until {
            Some(until) if until > now => {
                self.deprecated.insert(prefix, Deprecated { until, reason });
                self.emit(
                    "radvd.prefix.deprecated",
                    json!({"prefix": prefix.to_string(), "reason": reason, "seconds": (until - now).as_secs()}),
                );
                self.trim_deprecated();
            }
            _ => self.emit("radvd.prefix.withdrawn", json!({"prefix": prefix.to_string(), "reason": reason})),
        }
    }

    fn trim_deprecated(&mut self) {
        while self.deprecated.len() > MAX_DEPRECATED {
            let Some(oldest) = self.deprecated.iter().min_by_key(|(_, d)| d.until).map(|(p, _)| *p) else { break };
            self.deprecated.remove(&oldest);
            self.record_dirty = true;
            self.emit("radvd.prefix.withdrawn", json!({"prefix": oldest.to_string(), "reason": "too many"}));
        }
    }

    /// Ends what has run out: DHCPv6 lifetimes of current prefixes, deprecation periods.
    fn expire(&mut self, now: Instant) {
        let ran_out: Vec<Prefix> =
            self.current.iter().filter(|(_, c)| c.valid_deadline.is_some_and(|d| d <= now)).map(|(p, _)| *p).collect();
        for prefix in ran_out {
            if let Some(c) = self.current.remove(&prefix) {
                self.record_dirty = true;
                self.emit("radvd.prefix.expired", json!({"prefix": prefix.to_string(), "source": c.source.name()}));
                // Hosts heard lifetimes capped by this deadline; only a lease that
                // was shortened can leave them holding more.
                if c.hosts_hold_until.is_some_and(|u| u > now) {
                    self.deprecate(now, prefix, c.hosts_hold_until, "expired");
                }
                self.expired.insert(
                    prefix,
                    Expired { source: c.source, lifetimes: c.lifetimes, hosts_hold_until: c.hosts_hold_until },
                );
            }
        }
        let ended: Vec<Prefix> = self.deprecated.iter().filter(|(_, d)| d.until <= now).map(|(p, _)| *p).collect();
        for prefix in ended {
            self.deprecated.remove(&prefix);
            self.record_dirty = true;
            self.emit("radvd.prefix.withdrawn", json!({"prefix": prefix.to_string(), "reason": "deprecation over"}));
        }
        if !self.deprecated.is_empty() || !self.current.is_empty() || self.content.is_some() {
            self.commit(now, false);
        }
    }

    fn content_now(&self) -> Option<Content> {
        let link = self.link.filter(|l| l.link_local.is_some())?;
        let finals = self.current.is_empty() && self.deprecated.is_empty();
        if finals && self.finals_left == 0 {
            return None;
        }
        Some(Content {
            current: self.current.keys().copied().collect(),
            deprecated: self.deprecated.keys().copied().collect(),
            link,
            config: self.config.clone(),
            finals,
        })
    }

    /// Starts, restarts or stops the timers after the content may have changed;
    /// `fresh` asks for an RA at once even when it did not.
    fn commit(&mut self, now: Instant, fresh: bool) {
        let was_saying_something = self.content.as_ref().is_some_and(|c| !c.finals);
        let nothing_left = self.current.is_empty() && self.deprecated.is_empty();
        if nothing_left && was_saying_something && self.last_router_lifetime > 0 {
            // §6.2.5: tell hosts we are no longer their default router.
            self.finals_left = MAX_FINAL_RTR_ADVERTISEMENTS;
        } else if !nothing_left {
            self.finals_left = 0;
        }
        let content = self.content_now();
        match &content {
            None => self.schedule.stop(),
            Some(c) if !self.schedule.active() || self.content.as_ref() != Some(c) => self.schedule.start(now),
            Some(_) if fresh => self.schedule.send_soon(now),
            Some(_) => {}
        }
        self.content = content;
        self.metrics.prefixes_advertised.set(self.current.len() as f64);
        self.metrics.prefixes_deprecated.set(self.deprecated.len() as f64);
    }

    /// Takes a received ICMPv6 message from `source` with IP hop limit
    /// `hop_limit`: a valid Router Solicitation (RFC 4861 §6.1.1) is answered
    /// per §6.2.6; anything else is dropped and counted.
    pub fn handle_rs(
        &mut self,
        now: Instant,
        source: Ipv6Addr,
        hop_limit: Option<u8>,
        bytes: &[u8],
    ) -> Result<Answer, DropReason> {
        let rs = solicit::validate(source, hop_limit, bytes).inspect_err(|r| self.metrics.drop_packet(*r))?;
        self.metrics.solicitations.inc();
        // RFC 7772 §5.1: unicast when the host has an address and gave its link-layer address.
        let unicast_to = (!rs.source.is_unspecified() && rs.source_mac.is_some()).then_some(rs.source);
        let answer = self.schedule.solicit(now, unicast_to, self.rng.as_mut());
        if answer == Answer::Idle {
            self.metrics.solicitations_unanswered.inc();
        }
        Ok(answer)
    }

    /// The next time [`Advertiser::poll`] has work.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        let lease_ends = self.current.values().filter_map(|c| c.valid_deadline);
        let deprecations_end = self.deprecated.values().map(|d| d.until);
        self.schedule.poll_at().into_iter().chain(lease_ends).chain(deprecations_end).min()
    }

    /// The RA due at `now`, if any; call until `None`.
    pub fn poll(&mut self, now: Instant) -> Option<Transmit> {
        self.expire(now);
        loop {
            let due = self.schedule.poll(now, self.rng.as_mut())?;
            let Some((ra, src)) = self.advert(now) else {
                // Cannot happen while the schedule runs (it only runs with a
                // link-local address); stop rather than spin.
                self.schedule.stop();
                return None;
            };
            let (dst, kind) = match due {
                Due::Multicast { solicited: false } => (ALL_NODES, Kind::Unsolicited),
                Due::Multicast { solicited: true } => (ALL_NODES, Kind::SolicitedMulticast),
                Due::Unicast(host) => (host, Kind::SolicitedUnicast),
            };
            let finals = self.current.is_empty() && self.deprecated.is_empty();
            if finals {
                if self.finals_left == 0 {
                    continue;
                }
                if dst == ALL_NODES {
                    self.finals_left -= 1;
                    if self.finals_left == 0 {
                        self.commit(now, false);
                    }
                }
            }
            for (prefix, c) in &mut self.current {
                if let Some(p) = ra.prefixes.iter().find(|p| p.prefix == prefix.addr() && p.len == prefix.prefix_len())
                {
                    let held = now.checked_add(Duration::from_secs(p.valid.into()));
                    // An infinite lifetime is held as long as two hours matter.
                    let held = held.unwrap_or(now + TWO_HOURS);
                    c.hosts_hold_until = Some(c.hosts_hold_until.map_or(held, |h| h.max(held)));
                }
            }
            self.last_router_lifetime = ra.router_lifetime;
            return Some(Transmit { dst, src, bytes: ra.emit(), kind });
        }
    }

    /// The RA as it would go out at `now`, with its source address.
    #[must_use]
    pub fn advert(&self, now: Instant) -> Option<(RouterAdvert, Ipv6Addr)> {
        let link = self.link?;
        let link_local = link.link_local?;
        let mut prefixes = Vec::new();
        for (prefix, c) in &self.current {
            let valid = self.config.valid_lifetime.min(secs_until(now, c.valid_deadline));
            let preferred = self.config.preferred_lifetime.min(secs_until(now, c.preferred_deadline)).min(valid);
            prefixes.push(PrefixInfo {
                prefix: prefix.addr(),
                len: prefix.prefix_len(),
                on_link: true,
                autonomous: prefix.autonomous(),
                valid,
                preferred,
            });
        }
        for prefix in self.deprecated.keys() {
            prefixes.push(PrefixInfo {
                prefix: prefix.addr(),
                len: prefix.prefix_len(),
                on_link: true,
                autonomous: prefix.autonomous(),
                valid: 0,
                preferred: 0,
            });
        }
        let default_router = !self.current.is_empty();
        let ra = RouterAdvert {
            hop_limit: CUR_HOP_LIMIT,
            managed: false,
            other: false,
            preference: Preference::Medium,
            router_lifetime: if default_router { self.config.router_lifetime } else { 0 },
            reachable_time: 0,
            retrans_time: 0,
            source_mac: link.mac.filter(|m| *m != [0; 6]),
            mtu: link.mtu.filter(|m| *m >= IPV6_MIN_MTU),
            prefixes,
            rdnss: Some(Rdnss { lifetime: self.config.rdnss_lifetime, servers: vec![link_local] }),
            dnssl: Dnssl::new(self.config.dnssl_lifetime, &self.config.search_domains).ok(),
        };
        Some((ra, link_local))
    }

    /// Whether prefixes are being advertised (the control API's `Up`).
    #[must_use]
    pub fn advertising_prefixes(&self) -> bool {
        self.schedule.active() && !self.current.is_empty()
    }

    /// Whether any RA is going out (prefixes, deprecations or final RAs).
    #[must_use]
    pub fn advertising(&self) -> bool {
        self.schedule.active()
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The record to persist, when it changed since the last call.
    pub fn take_record(&mut self, now: Instant) -> Option<Record> {
        if !std::mem::take(&mut self.record_dirty) {
            return None;
        }
        let held = u32::try_from(TWO_HOURS.as_secs()).unwrap_or(u32::MAX);
        let mut prefixes: Vec<RecordEntry> = self
            .current
            .keys()
            .map(|p| RecordEntry { prefix: p.to_string(), valid_seconds: self.config.valid_lifetime.min(held) })
            .collect();
        prefixes.extend(
            self.deprecated
                .iter()
                .map(|(p, d)| RecordEntry { prefix: p.to_string(), valid_seconds: secs_until(now, Some(d.until)) }),
        );
        Some(Record { prefixes })
    }

    /// The control API's view.
    #[must_use]
    pub fn status(&self, now: Instant) -> Value {
        let ra = self.advert(now).map(|(ra, _)| ra);
        let lifetimes = |prefix: &Prefix| {
            ra.as_ref()
                .and_then(|ra| ra.prefixes.iter().find(|p| p.prefix == prefix.addr() && p.len == prefix.prefix_len()))
                .map(|p| (p.valid, p.preferred))
        };
        let current: Vec<Value> = self
            .current
            .iter()
            .map(|(p, c)| {
                let (valid, preferred) = lifetimes(p).unwrap_or((0, 0));
                json!({
                    "prefix": p.to_string(),
                    "source": c.source.name(),
                    "valid_lifetime": valid,
                    "preferred_lifetime": preferred,
                    "delegation_valid_until": c.lifetimes.map(|l| l.valid_until.to_string()),
                })
            })
            .collect();
        let deprecated: Vec<Value> = self
            .deprecated
            .iter()
            .map(|(p, d)| json!({"prefix": p.to_string(), "reason": d.reason, "seconds_left": secs_until(now, Some(d.until))}))
            .collect();
        let expired: Vec<Value> =
            self.expired.iter().map(|(p, e)| json!({"prefix": p.to_string(), "source": e.source.name()})).collect();
        let secs = |at: Option<Instant>| at.map(|a| a.saturating_duration_since(now).as_secs_f64());
        json!({
            "advertising": self.schedule.active(),
            "link": self.link.map(|l| json!({
                "ifindex": l.ifindex,
                "mac": l.mac.map(runtime::netif::format_mac),
                "mtu": l.mtu,
                "link_local": l.link_local.map(|a| a.to_string()),
            })),
            "router_lifetime": ra.as_ref().map(|r| r.router_lifetime),
            "prefixes": current,
            "deprecated_prefixes": deprecated,
            "expired_prefixes": expired,
            "next_unsolicited_in_seconds": secs(self.schedule.next_unsolicited()),
            "last_multicast_seconds_ago": self.schedule.last_multicast().map(|l| now.saturating_duration_since(l).as_secs_f64()),
            "intervals_seconds": [self.config.intervals.min.as_secs(), self.config.intervals.max.as_secs()],
        })
    }
}

#[cfg(test)]
#[path = "advertiser_tests.rs"]
mod tests;
