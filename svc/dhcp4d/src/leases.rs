//! The lease table: who holds which address, which addresses are free,
//! offered, quarantined or reserved, and the indexes that answer "a free
//! address", "the oldest expired lease" and "the next deadline" without a scan.
//!
//! Every pool address is in exactly one of these states, kept by the methods
//! here and checked by [`LeaseTable::check_invariants`] (tests, fuzzing):
//!
//! | state | where |
//! |---|---|
//! | free (never used, moved away from, declined long ago) | `free` |
//! | bound, lease running | `bindings` + `active` (by expiry) |
//! | bound, lease ended (expired or released): the client keeps its claim while nobody else needs the address | `bindings` + `ended` (by end time) |
//! | offered, not yet requested | `offers` (+ `ended` when it was another client's ended lease) |
//! | declined, quarantined | `quarantine` |
//! | a static lease's address (config) | `reserved` |
//!
//! Times are monotonic; only `last_ack` is wall time, for people and dnsd.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use runtime::perm::Dhcp4dLease;
use runtime::timefmt::Timestamp;

use crate::wire::Mac;

/// When a lease ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A static lease from router7's leases.json (zero expiry): never.
    Never,
    /// At this monotonic time.
    At(Instant),
}

/// One client's claim on one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The client.
    pub mac: Mac,
    /// When the lease ends (or ended).
    pub expiry: Expiry,
    /// The name the client sent, sanitised; empty for none.
    pub hostname: String,
    /// A name set by the user, which wins over the client's (router7).
    pub hostname_override: String,
    /// Wall time of the last ACK.
    pub last_ack: Timestamp,
    /// The lease ran out or was released (and the expiry event was emitted).
    pub ended: bool,
}

impl Binding {
    /// Whether the lease is running at `now`.
    #[must_use]
    pub fn active_at(&self, now: Instant) -> bool {
        match self.expiry {
            Expiry::Never => true,
            Expiry::At(t) => t > now,
        }
    }

    /// The name to publish: the override if set, else the client's.
    #[must_use]
    pub fn name(&self) -> &str {
        if self.hostname_override.is_empty() { &self.hostname } else { &self.hostname_override }
    }
}

/// A binding as persisted: what changed, for the lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The address.
    pub addr: Ipv4Addr,
    /// The binding.
    pub binding: Binding,
}

impl LeaseRecord {
    /// The router7 JSON form at `now`/`wall`. `num` is router7's pool index
    /// (address − server address − 1), so router7 reads our file correctly.
    #[must_use]
    pub fn to_file(&self, server: Ipv4Addr, now: Instant, wall: SystemTime) -> Dhcp4dLease {
        let b = &self.binding;
        let expiry = match b.expiry {
            Expiry::Never => Timestamp::GO_ZERO,
            Expiry::At(t) => Timestamp::from_system(wall_of(t, now, wall)),
        };
        Dhcp4dLease {
            num: i64::from(u32::from(self.addr)) - i64::from(u32::from(server)) - 1,
            addr: Some(self.addr),
            hardware_addr: runtime::netif::format_mac(b.mac),
            hostname: b.hostname.clone(),
            hostname_override: b.hostname_override.clone(),
            expiry,
            last_ack: b.last_ack,
        }
    }
}

/// The wall time of monotonic `t`, given that `now` is `wall`.
#[must_use]
pub fn wall_of(t: Instant, now: Instant, wall: SystemTime) -> SystemTime {
    if t >= now { wall.checked_add(t - now).unwrap_or(wall) } else { wall.checked_sub(now - t).unwrap_or(wall) }
}

/// A set of pool offsets with O(1) insert, remove and uniform random pick.
#[derive(Debug)]
struct FreeList {
    items: Vec<u32>,
    pos: Vec<u32>,
}

const ABSENT: u32 = u32::MAX;

impl FreeList {
    fn new(len: u32) -> Self {
        Self { items: Vec::new(), pos: vec![ABSENT; len as usize] }
    }

    fn contains(&self, off: u32) -> bool {
        self.pos.get(off as usize).is_some_and(|p| *p != ABSENT)
    }

    fn insert(&mut self, off: u32) {
        if !self.contains(off) && (off as usize) < self.pos.len() {
            self.pos[off as usize] = u32::try_from(self.items.len()).unwrap_or(ABSENT);
            self.items.push(off);
        }
    }

    fn remove(&mut self, off: u32) {
        if !self.contains(off) {
            return;
        }
        let at = self.pos[off as usize] as usize;
        self.items.swap_remove(at);
        if let Some(&moved) = self.items.get(at) {
            self.pos[moved as usize] = u32::try_from(at).unwrap_or(ABSENT);
        }
        self.pos[off as usize] = ABSENT;
    }

    fn pick(&self, random: u64) -> Option<u32> {
        let n = self.items.len() as u64;
        (n > 0).then(|| self.items[usize::try_from(random % n).unwrap_or(0)])
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

#[derive(Debug, Clone, Copy)]
struct Offer {
    mac: Mac,
    until: Instant,
}

/// What expired, for events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The address.
    pub addr: Ipv4Addr,
    /// Its last holder.
    pub mac: Mac,
    /// Its name.
    pub hostname: String,
}

/// The table; see the module docs.
#[derive(Debug)]
pub struct LeaseTable {
    pool_start: u32,
    pool_len: u32,
    bindings: HashMap<Ipv4Addr, Binding>,
    by_mac: HashMap<Mac, Ipv4Addr>,
    reserved: HashMap<Ipv4Addr, Mac>,
    static_by_mac: HashMap<Mac, Ipv4Addr>,
    free: FreeList,
    active: BTreeSet<(Instant, Ipv4Addr)>,
    ended: BTreeSet<(Instant, Ipv4Addr)>,
    never: usize,
    offers: HashMap<Ipv4Addr, Offer>,
    offer_by_mac: HashMap<Mac, Ipv4Addr>,
    offer_queue: VecDeque<(Instant, Ipv4Addr)>,
    quarantine: HashMap<Ipv4Addr, Instant>,
    quarantine_queue: BTreeSet<(Instant, Ipv4Addr)>,
    dirty: Vec<Ipv4Addr>,
    dirty_set: HashSet<Ipv4Addr>,
}

impl LeaseTable {
    /// A table for the pool `start..=end` with static leases `statics` (MAC, address).
    #[must_use]
    pub fn new(start: Ipv4Addr, end: Ipv4Addr, statics: &[(Mac, Ipv4Addr)]) -> Self {
        let pool_start = u32::from(start);
        let pool_len = u32::from(end).saturating_sub(pool_start) + 1;
        let mut t = Self {
            pool_start,
            pool_len,
            bindings: HashMap::new(),
            by_mac: HashMap::new(),
            reserved: statics.iter().map(|(m, a)| (*a, *m)).collect(),
            static_by_mac: statics.iter().copied().collect(),
            free: FreeList::new(pool_len),
            active: BTreeSet::new(),
            ended: BTreeSet::new(),
            never: 0,
            offers: HashMap::new(),
            offer_by_mac: HashMap::new(),
            offer_queue: VecDeque::new(),
            quarantine: HashMap::new(),
            quarantine_queue: BTreeSet::new(),
            dirty: Vec::new(),
            dirty_set: HashSet::new(),
        };
        for off in 0..pool_len {
            t.settle(Ipv4Addr::from(pool_start + off));
        }
        t
    }

    fn offset(&self, a: Ipv4Addr) -> Option<u32> {
        let off = u32::from(a).checked_sub(self.pool_start)?;
        (off < self.pool_len).then_some(off)
    }

    /// Whether `a` is a pool address.
    #[must_use]
    pub fn in_pool(&self, a: Ipv4Addr) -> bool {
        self.offset(a).is_some()
    }

    /// Puts `a` into, or takes it out of, the free list according to its state.
    fn settle(&mut self, a: Ipv4Addr) {
        let Some(off) = self.offset(a) else { return };
        let free = !self.bindings.contains_key(&a)
            && !self.reserved.contains_key(&a)
            && !self.offers.contains_key(&a)
            && !self.quarantine.contains_key(&a);
        if free { self.free.insert(off) } else { self.free.remove(off) }
    }

    fn mark_dirty(&mut self, a: Ipv4Addr) {
        if self.dirty_set.insert(a) {
            self.dirty.push(a);
        }
    }

    fn reclaimable(&self, a: Ipv4Addr) -> bool {
        self.in_pool(a) && !self.reserved.contains_key(&a)
    }

    fn index(&mut self, a: Ipv4Addr, b: &Binding) {
        match b.expiry {
            Expiry::Never => self.never += 1,
            Expiry::At(t) if !b.ended => {
                self.active.insert((t, a));
            }
            Expiry::At(t) => {
                if self.reclaimable(a) {
                    self.ended.insert((t, a));
                }
            }
        }
    }

    fn unindex(&mut self, a: Ipv4Addr, b: &Binding) {
        match b.expiry {
            Expiry::Never => self.never -= 1,
            Expiry::At(t) => {
                self.active.remove(&(t, a));
                self.ended.remove(&(t, a));
            }
        }
    }

    /// The binding at `a`.
    #[must_use]
    pub fn binding(&self, a: Ipv4Addr) -> Option<&Binding> {
        self.bindings.get(&a)
    }

    /// The address bound to `mac` (its lease, running or ended).
    #[must_use]
    pub fn address_of(&self, mac: Mac) -> Option<Ipv4Addr> {
        self.by_mac.get(&mac).copied()
    }

    /// The address a static lease (config, or a zero-expiry one from the file) gives `mac`.
    #[must_use]
    pub fn fixed_address_of(&self, mac: Mac) -> Option<Ipv4Addr> {
        self.static_by_mac.get(&mac).copied().or_else(|| {
            let a = *self.by_mac.get(&mac)?;
            (self.bindings.get(&a)?.expiry == Expiry::Never).then_some(a)
        })
    }

    /// Whether `a` is a static lease's address (config or zero expiry).
    #[must_use]
    pub fn is_static_address(&self, a: Ipv4Addr) -> bool {
        self.reserved.contains_key(&a) || self.bindings.get(&a).is_some_and(|b| b.expiry == Expiry::Never)
    }

    /// The client a live offer of `a` is for.
    #[must_use]
    pub fn offered_to(&self, a: Ipv4Addr, now: Instant) -> Option<Mac> {
        self.offers.get(&a).filter(|o| o.until > now).map(|o| o.mac)
    }

    /// The address offered to `mac`, if the offer is live.
    #[must_use]
    pub fn offer_of(&self, mac: Mac, now: Instant) -> Option<Ipv4Addr> {
        let a = *self.offer_by_mac.get(&mac)?;
        (self.offered_to(a, now) == Some(mac)).then_some(a)
    }

    /// Whether `a` is quarantined at `now`.
    #[must_use]
    pub fn quarantined(&self, a: Ipv4Addr, now: Instant) -> bool {
        self.quarantine.get(&a).is_some_and(|until| *until > now)
    }

    /// Whether `mac` may be given `a` at `now`, on the pool's terms. The caller
    /// has checked that `a` is a host of the subnet and not the server.
    #[must_use]
    pub fn available_for(&self, a: Ipv4Addr, mac: Mac, now: Instant) -> bool {
        if self.quarantined(a, now) {
            return false;
        }
        if let Some(owner) = self.reserved.get(&a) {
            return *owner == mac;
        }
        // A client with a static lease gets that address, and another one only
        // while its own is quarantined.
        if let Some(fixed) = self.fixed_address_of(mac)
            && fixed != a
            && !self.quarantined(fixed, now)
        {
            return false;
        }
        if self.offered_to(a, now).is_some_and(|m| m != mac) {
            return false;
        }
        match self.bindings.get(&a) {
            Some(b) if b.mac == mac => true,
            Some(b) => !b.active_at(now) && self.in_pool(a),
            None => self.in_pool(a),
        }
    }

    /// Removes the binding at `a` (its index entries, its MAC's pointer).
    pub fn take(&mut self, a: Ipv4Addr) -> Option<Binding> {
        let b = self.bindings.remove(&a)?;
        self.unindex(a, &b);
        if self.by_mac.get(&b.mac) == Some(&a) {
            self.by_mac.remove(&b.mac);
        }
        self.mark_dirty(a);
        self.settle(a);
        Some(b)
    }

    /// Stores `b` at `a`, replacing whatever was there; the MAC's binding at
    /// another address is removed (a client holds one address) and offers of
    /// `a`, or to the MAC, are settled.
    pub fn put(&mut self, a: Ipv4Addr, b: Binding) {
        self.take(a);
        if let Some(old) = self.by_mac.get(&b.mac).copied() {
            self.take(old);
        }
        self.cancel_offer_at(a);
        self.cancel_offer_of(b.mac);
        self.index(a, &b);
        self.by_mac.insert(b.mac, a);
        self.bindings.insert(a, b);
        self.mark_dirty(a);
        self.settle(a);
    }

    /// Records `a` as changed, so the lease file is brought up to date about
    /// it (after a binding was dropped without [`LeaseTable::take`]).
    pub fn touch(&mut self, a: Ipv4Addr) {
        self.mark_dirty(a);
    }

    /// Marks the binding at `a` as ended at `now` (RELEASE); it stays as the
    /// client's claim until someone else needs the address.
    pub fn end(&mut self, a: Ipv4Addr, now: Instant) -> bool {
        let Some(mut b) = self.bindings.remove(&a) else { return false };
        self.unindex(a, &b);
        let changed = match b.expiry {
            Expiry::Never => false,
            Expiry::At(t) => {
                b.expiry = Expiry::At(t.min(now));
                let was = b.ended;
                b.ended = true;
                !was
            }
        };
        self.index(a, &b);
        self.bindings.insert(a, b);
        if changed {
            self.mark_dirty(a);
        }
        changed
    }

    /// Reserves `a` for `mac` until `until`.
    pub fn offer(&mut self, a: Ipv4Addr, mac: Mac, until: Instant) {
        self.cancel_offer_of(mac);
        self.cancel_offer_at(a);
        self.offers.insert(a, Offer { mac, until });
        self.offer_by_mac.insert(mac, a);
        self.offer_queue.push_back((until, a));
        self.settle(a);
    }

    fn cancel_offer_at(&mut self, a: Ipv4Addr) {
        if let Some(o) = self.offers.remove(&a) {
            if self.offer_by_mac.get(&o.mac) == Some(&a) {
                self.offer_by_mac.remove(&o.mac);
            }
            self.settle(a);
        }
    }

    /// Drops the offer made to `mac`, if any (it chose another server).
    pub fn cancel_offer_of(&mut self, mac: Mac) {
        if let Some(a) = self.offer_by_mac.remove(&mac) {
            if self.offers.get(&a).is_some_and(|o| o.mac == mac) {
                self.offers.remove(&a);
            }
            self.settle(a);
        }
    }

    /// Keeps `a` from everyone until `until` (a DECLINE).
    pub fn quarantine(&mut self, a: Ipv4Addr, until: Instant) {
        if let Some(old) = self.quarantine.insert(a, until) {
            self.quarantine_queue.remove(&(old, a));
        }
        self.quarantine_queue.insert((until, a));
        self.settle(a);
    }

    /// A free pool address chosen by `random`.
    #[must_use]
    pub fn pick_free(&self, random: u64) -> Option<Ipv4Addr> {
        self.free.pick(random).map(|off| Ipv4Addr::from(self.pool_start + off))
    }

    /// The pool address whose lease ended longest ago and that is not offered
    /// to anyone else: reusing it costs its old client the least.
    #[must_use]
    pub fn oldest_ended(&self, mac: Mac, now: Instant) -> Option<Ipv4Addr> {
        self.ended
            .iter()
            .map(|(_, a)| *a)
            .find(|a| self.offered_to(*a, now).is_none_or(|m| m == mac) && !self.quarantined(*a, now))
    }

    /// The oldest live offer to another client, taken back from it (the pool is
    /// otherwise exhausted: a DISCOVER flood cannot starve real clients).
    pub fn steal_offer(&mut self, mac: Mac, now: Instant) -> Option<Ipv4Addr> {
        let victim = self
            .offer_queue
            .iter()
            .filter(|(until, a)| self.offers.get(a).is_some_and(|o| o.until == *until))
            .map(|(_, a)| *a)
            .find(|a| self.offered_to(*a, now).is_some_and(|m| m != mac) && !self.quarantined(*a, now))?;
        self.cancel_offer_at(victim);
        Some(victim)
    }

    /// Processes what is due at `now`: leases that ran out (returned for
    /// events), offers that lapsed, quarantines that ended.
    pub fn advance(&mut self, now: Instant) -> Vec<Expired> {
        let mut out = Vec::new();
        while let Some(&(t, a)) = self.active.first() {
            if t > now {
                break;
            }
            self.active.pop_first();
            if let Some(mut b) = self.bindings.remove(&a) {
                b.ended = true;
                self.index(a, &b);
                out.push(Expired { addr: a, mac: b.mac, hostname: b.name().to_owned() });
                self.bindings.insert(a, b);
            }
        }
        while let Some(&(until, a)) = self.offer_queue.front() {
            if until > now {
                break;
            }
            self.offer_queue.pop_front();
            if self.offers.get(&a).is_some_and(|o| o.until == until) {
                self.cancel_offer_at(a);
            }
        }
        while let Some(&(until, a)) = self.quarantine_queue.first() {
            if until > now {
                break;
            }
            self.quarantine_queue.pop_first();
            self.quarantine.remove(&a);
            self.settle(a);
        }
        // Offers are re-made and cancelled often; keep the queue from holding
        // many dead entries (each is checked against `offers` when popped).
        if self.offer_queue.len() > 4 * self.offers.len() + 1024 {
            let offers = &self.offers;
            self.offer_queue.retain(|(u, a)| offers.get(a).is_some_and(|o| o.until == *u));
        }
        out
    }

    /// The next time [`LeaseTable::advance`] has work.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        [
            self.active.first().map(|(t, _)| *t),
            self.offer_queue.front().map(|(t, _)| *t),
            self.quarantine_queue.first().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The addresses changed since the last call, with their bindings now
    /// (`None`: no longer bound).
    pub fn take_changes(&mut self) -> Vec<(Ipv4Addr, Option<Binding>)> {
        self.dirty_set.clear();
        let dirty = std::mem::take(&mut self.dirty);
        dirty.into_iter().map(|a| (a, self.bindings.get(&a).cloned())).collect()
    }

    /// Every binding.
    #[must_use]
    pub fn records(&self) -> Vec<LeaseRecord> {
        let mut v: Vec<LeaseRecord> =
            self.bindings.iter().map(|(a, b)| LeaseRecord { addr: *a, binding: b.clone() }).collect();
        v.sort_by_key(|r| r.addr);
        v
    }

    /// Quarantined addresses and until when.
    #[must_use]
    pub fn quarantined_addresses(&self) -> Vec<(Ipv4Addr, Instant)> {
        self.quarantine.iter().map(|(a, u)| (*a, *u)).collect()
    }

    /// Leases running: dynamic ones not expired plus static ones.
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.active.len() + self.never
    }

    /// Free pool addresses.
    #[must_use]
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Every binding.
    pub fn bindings(&self) -> impl Iterator<Item = (Ipv4Addr, &Binding)> {
        self.bindings.iter().map(|(a, b)| (*a, b))
    }

    /// Checks the invariants of the module docs; a description of the first broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (a, b) in &self.bindings {
            if self.by_mac.get(&b.mac) != Some(a) {
                return Err(format!("{a}: by_mac does not point back"));
            }
            let (in_active, in_ended) = match b.expiry {
                Expiry::Never => (false, false),
                Expiry::At(t) => (self.active.contains(&(t, *a)), self.ended.contains(&(t, *a))),
            };
            let want_active = matches!(b.expiry, Expiry::At(_)) && !b.ended;
            let want_ended = matches!(b.expiry, Expiry::At(_)) && b.ended && self.reclaimable(*a);
            if (in_active, in_ended) != (want_active, want_ended) {
                return Err(format!("{a}: indexed as active={in_active} ended={in_ended}"));
            }
        }
        if self.by_mac.len() != self.bindings.len() {
            return Err("by_mac has entries without bindings".into());
        }
        let never = self.bindings.values().filter(|b| b.expiry == Expiry::Never).count();
        if never != self.never {
            return Err(format!("never count {} != {never}", self.never));
        }
        if self.active.len() + self.ended.len() > self.bindings.len() {
            return Err("index entries without bindings".into());
        }
        for off in 0..self.pool_len {
            let a = Ipv4Addr::from(self.pool_start + off);
            let want = !self.bindings.contains_key(&a)
                && !self.reserved.contains_key(&a)
                && !self.offers.contains_key(&a)
                && !self.quarantine.contains_key(&a);
            if want != self.free.contains(off) {
                return Err(format!("{a}: free list says {}, state says {want}", self.free.contains(off)));
            }
        }
        for (mac, a) in &self.offer_by_mac {
            if self.offers.get(a).is_none_or(|o| o.mac != *mac) {
                return Err(format!("{a}: offer_by_mac without the offer"));
            }
        }
        for (a, o) in &self.offers {
            if self.offer_by_mac.get(&o.mac) != Some(a) {
                return Err(format!("{a}: offer without offer_by_mac"));
            }
        }
        if self.quarantine.len() != self.quarantine_queue.len() {
            return Err("quarantine queue out of step".into());
        }
        Ok(())
    }
}

/// How long a lease loaded from the file has left: the wall-clock remainder,
/// but never more than `longest` — a router without a clock boots in 1970, and
/// a lease must not look good for decades until NTP catches up.
#[must_use]
pub fn remaining_from_file(expiry: SystemTime, wall: SystemTime, longest: Duration) -> Duration {
    expiry.duration_since(wall).unwrap_or(Duration::ZERO).min(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn mac(n: u8) -> Mac {
        [2, 0, 0, 0, 0, n]
    }

    fn bound(m: Mac, until: Instant) -> Binding {
        Binding {
            mac: m,
            expiry: Expiry::At(until),
            hostname: String::new(),
            hostname_override: String::new(),
            last_ack: Timestamp::GO_ZERO,
            ended: false,
        }
    }

    #[test]
    fn the_free_list_picks_every_address_and_removes_in_place() {
        let mut f = FreeList::new(5);
        for i in 0..5 {
            f.insert(i);
        }
        f.remove(1);
        f.remove(4);
        f.remove(4);
        let mut seen: Vec<u32> = (0..30).filter_map(|r| f.pick(r)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![0, 2, 3]);
        assert_eq!(f.len(), 3);
        f.insert(99);
        assert_eq!(f.len(), 3, "out of range is ignored");
    }

    #[test]
    fn moving_a_client_frees_its_old_address() {
        let t0 = runtime::clock::now();
        let mut t = LeaseTable::new(ip(2), ip(11), &[]);
        assert_eq!(t.free_count(), 10);
        t.put(ip(5), bound(mac(1), t0 + Duration::from_secs(60)));
        t.put(ip(6), bound(mac(1), t0 + Duration::from_secs(60)));
        assert!(t.binding(ip(5)).is_none());
        assert_eq!(t.address_of(mac(1)), Some(ip(6)));
        assert_eq!(t.free_count(), 9);
        t.check_invariants().unwrap();
        let changes: Vec<Ipv4Addr> = t.take_changes().into_iter().map(|(a, _)| a).collect();
        assert_eq!(changes, vec![ip(5), ip(6)]);
    }

    #[test]
    fn expiry_moves_leases_to_the_ended_index_in_order() {
        let t0 = runtime::clock::now();
        let mut t = LeaseTable::new(ip(2), ip(11), &[(mac(9), ip(3))]);
        t.put(ip(4), bound(mac(1), t0 + Duration::from_secs(20)));
        t.put(ip(5), bound(mac(2), t0 + Duration::from_secs(10)));
        t.put(ip(3), bound(mac(9), t0 + Duration::from_secs(5)));
        assert_eq!(t.in_use(), 3);
        assert_eq!(t.poll_at(), Some(t0 + Duration::from_secs(5)));
        let gone = t.advance(t0 + Duration::from_secs(30));
        assert_eq!(gone.iter().map(|e| e.addr).collect::<Vec<_>>(), vec![ip(3), ip(5), ip(4)]);
        assert_eq!(t.in_use(), 0);
        // The reserved address is never reclaimable; the others oldest first.
        assert_eq!(t.oldest_ended(mac(7), t0), Some(ip(5)));
        t.check_invariants().unwrap();
    }

    #[test]
    fn offers_lapse_and_can_be_stolen() {
        let t0 = runtime::clock::now();
        let mut t = LeaseTable::new(ip(2), ip(3), &[]);
        t.offer(ip(2), mac(1), t0 + Duration::from_secs(30));
        t.offer(ip(3), mac(2), t0 + Duration::from_secs(31));
        assert_eq!(t.pick_free(0), None);
        assert!(!t.available_for(ip(2), mac(3), t0));
        assert_eq!(t.steal_offer(mac(2), t0), Some(ip(2)));
        assert_eq!(t.offer_of(mac(1), t0), None);
        t.check_invariants().unwrap();
        t.advance(t0 + Duration::from_secs(31));
        assert_eq!(t.free_count(), 2);
        t.check_invariants().unwrap();
    }

    #[test]
    fn file_expiries_are_capped_for_a_clock_stuck_in_1970() {
        let lease = Duration::from_secs(1200);
        let year_2030 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert_eq!(remaining_from_file(year_2030, SystemTime::UNIX_EPOCH, lease), lease);
        let wall = year_2030 - Duration::from_secs(100);
        assert_eq!(remaining_from_file(year_2030, wall, lease), Duration::from_secs(100));
        assert_eq!(remaining_from_file(wall, year_2030, lease), Duration::ZERO);
    }
}
