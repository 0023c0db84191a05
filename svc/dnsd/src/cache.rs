//! The answer cache: prepared upstream replies keyed by question, bounded in
//! entries and in bytes, evicting by CLOCK (second chance, an approximation of
//! least-recently-used that costs one bit per hit instead of list surgery).
//!
//! The key is the question's name lower-cased (RFC 4343), its type and class,
//! and the DO and CD bits of the query (an answer with DNSSEC records, or one
//! the upstream did not validate, is not served to a client that did not ask
//! for it). Entries are fresh until their lifetime (see `answer`) runs out;
//! expired entries stay, as candidates for serving stale (RFC 8767), until
//! [`Limits::max_stale`] has passed or space is needed; the clock hand takes
//! them even when they were used (no second chance).
//!
//! The map is keyed by a 64-bit SipHash of the key, with a random secret
//! (so nobody outside can make keys collide); the entry keeps the question in
//! its message and every lookup compares it, so even a collision only costs a
//! miss. Each entry is one allocation (message and TTL table, see `answer`).
//! Size accounting counts that allocation, the entry's slot, its map bucket
//! and the allocator's header, so `max_bytes` bounds what the cache really
//! holds, within a few percent.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::time::{Duration, Instant};

use crate::answer::StoredAnswer;

/// Longest key: a 255-byte name, type, class and one flag byte.
pub const MAX_KEY_LEN: usize = 255 + 5;

/// A cache key built on the stack; see the module docs.
#[derive(Clone, Copy)]
pub struct Key {
    bytes: [u8; MAX_KEY_LEN],
    len: usize,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", &self.bytes[..self.len])
    }
}

/// The query bits that change what an answer may hold.
pub mod key_flag {
    /// DNSSEC OK (RFC 3225).
    pub const DO: u8 = 1;
    /// Checking disabled (RFC 4035 §3.2.2).
    pub const CD: u8 = 2;
}

impl Key {
    /// The key for `name` (an uncompressed wire name of at most 255 bytes).
    #[must_use]
    pub fn new(name: &[u8], qtype: u16, qclass: u16, flags: u8) -> Self {
        let mut bytes = [0u8; MAX_KEY_LEN];
        let n = name.len().min(255);
        crate::wire::lowercase_into(&name[..n], &mut bytes[..n]);
        bytes[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
        bytes[n + 2..n + 4].copy_from_slice(&qclass.to_be_bytes());
        bytes[n + 4] = flags;
        Self { bytes, len: n + 5 }
    }

    /// The key's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The lower-cased name.
    #[must_use]
    pub fn name(&self) -> &[u8] {
        &self.bytes[..self.len - 5]
    }

    /// The query flags ([`key_flag`]).
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.bytes[self.len - 1]
    }
}

/// Limits of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries.
    pub max_entries: usize,
    /// Most bytes (see the module docs for what counts).
    pub max_bytes: usize,
    /// How long past expiry an entry may still be served stale.
    pub max_stale: Duration,
}

impl Default for Limits {
    /// 10,000 entries and 4 MiB: about every name a home network asks for in a
    /// day, in a fraction of the appliance's 4 GB.
    fn default() -> Self {
        Self { max_entries: 10_000, max_bytes: 4 << 20, max_stale: Duration::from_secs(86_400) }
    }
}

#[derive(Debug)]
struct Entry {
    hash: u64,
    flags: u8,
    referenced: bool,
    size: u32,
    answer: StoredAnswer,
}

impl Entry {
    fn matches(&self, key: &[u8]) -> bool {
        match key.split_last() {
            Some((&flags, question)) => flags == self.flags && self.answer.question() == question,
            None => false,
        }
    }
}

/// Per-entry memory beyond the answer's own: its slot, its map bucket (with
/// the table's spare capacity) and the allocator's header.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Option<Entry>>() + 32;

/// The map's keys are already SipHash values: used as they are.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A fresh answer.
    Fresh(&'a StoredAnswer),
    /// Nothing fresh.
    Miss,
}

/// Counts of what the cache did, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries added.
    pub inserted: u64,
    /// Entries removed to make room.
    pub evicted: u64,
    /// Entries removed because they were too old even to serve stale.
    pub expired: u64,
}

/// The cache; see the module docs.
#[derive(Debug)]
pub struct Cache {
    map: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    secret: RandomState,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    hand: usize,
    sweep_at: usize,
    bytes: usize,
    limits: Limits,
    stats: CacheStats,
}

impl Cache {
    /// An empty cache.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            map: HashMap::default(),
            secret: RandomState::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
            sweep_at: 0,
            bytes: 0,
            limits,
            stats: CacheStats::default(),
        }
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held (see the module docs).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What it did so far.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits, evicting what no longer fits.
    pub fn set_limits(&mut self, now: Instant, limits: Limits) {
        self.limits = limits;
        while self.map.len() > limits.max_entries || self.bytes > limits.max_bytes {
            if !self.evict_one(now) {
                break;
            }
        }
    }

    fn find(&self, key: &[u8]) -> Option<(u64, u32)> {
        let hash = self.secret.hash_one(key);
        let idx = *self.map.get(&hash)?;
        let entry = self.slots.get(idx as usize)?.as_ref()?;
        entry.matches(key).then_some((hash, idx))
    }

    /// The fresh answer for `key` at `now`, marking it used.
    pub fn get(&mut self, key: &[u8], now: Instant) -> Lookup<'_> {
        let Some((_, idx)) = self.find(key) else {
            return Lookup::Miss;
        };
        match self.slots.get_mut(idx as usize).and_then(Option::as_mut) {
            Some(entry) if now < entry.answer.expires() => {
                entry.referenced = true;
                Lookup::Fresh(&entry.answer)
            }
            _ => Lookup::Miss,
        }
    }

    /// An expired answer for `key` that may still be served stale at `now`.
    #[must_use]
    pub fn get_stale(&self, key: &[u8], now: Instant) -> Option<&StoredAnswer> {
        let (_, idx) = self.find(key)?;
        let entry = self.slots.get(idx as usize)?.as_ref()?;
        (now < entry.answer.expires() + self.limits.max_stale).then_some(&entry.answer)
    }

    /// Stores `answer` under `key` (replacing what was there) if it has a
    /// lifetime, is the answer to that key's question, and fits; returns
    /// whether it was stored.
    pub fn insert(&mut self, key: &[u8], answer: StoredAnswer, now: Instant) -> bool {
        let Some((&flags, question)) = key.split_last() else { return false };
        if answer.lifetime() == 0 || self.limits.max_entries == 0 || answer.question() != question {
            return false;
        }
        let size = answer.size() + ENTRY_OVERHEAD;
        if size > self.limits.max_bytes {
            return false;
        }
        let hash = self.secret.hash_one(key);
        // The same key, or (once in 2^64) another with the same hash: replaced.
        if let Some(&idx) = self.map.get(&hash) {
            self.remove_slot(idx);
        }
        while self.map.len() >= self.limits.max_entries || self.bytes + size > self.limits.max_bytes {
            if !self.evict_one(now) {
                return false;
            }
        }
        let entry = Entry { hash, flags, referenced: false, size: u32::try_from(size).unwrap_or(u32::MAX), answer };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(entry);
                i
            }
            None => {
                self.slots.push(Some(entry));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.map.insert(hash, idx);
        self.bytes += size;
        self.stats.inserted += 1;
        true
    }

    fn remove_slot(&mut self, idx: u32) {
        if let Some(entry) = self.slots.get_mut(idx as usize).and_then(Option::take) {
            self.map.remove(&entry.hash);
            self.bytes -= entry.size as usize;
            self.free.push(idx);
        }
    }

    /// Evicts one entry: an expired one, or the first the clock hand finds
    /// without its second chance. Returns false when the cache is empty.
    fn evict_one(&mut self, now: Instant) -> bool {
        if self.map.is_empty() {
            return false;
        }
        // Two turns always find one: the first clears every reference bit.
        for _ in 0..2 * self.slots.len() + 1 {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let idx = self.hand;
            self.hand += 1;
            let Some(entry) = self.slots[idx].as_mut() else { continue };
            if entry.referenced && now < entry.answer.expires() {
                entry.referenced = false;
                continue;
            }
            self.remove_slot(idx as u32);
            self.stats.evicted += 1;
            return true;
        }
        false
    }

    /// Drops entries too old even to serve stale, looking at no more than
    /// `budget` slots (called from housekeeping, so it never stalls the loop).
    pub fn sweep(&mut self, now: Instant, budget: usize) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        for _ in 0..budget.min(n) {
            let idx = self.sweep_at % n;
            self.sweep_at = idx + 1;
            let old = self.slots[idx].as_ref().is_some_and(|e| now >= e.answer.expires() + self.limits.max_stale);
            if old {
                self.remove_slot(idx as u32);
                self.stats.expired += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::TtlPolicy;
    use crate::tests::{at, query, reply_to, with_a, with_soa};
    use crate::wire::rtype;
    use std::net::Ipv4Addr;

    fn answer(name: &str, ttl: u32, received_ms: u64) -> StoredAnswer {
        let q = query(1, name, rtype::A, None);
        let msg = reply_to(&q, |p, n| with_a(p, n, Ipv4Addr::new(192, 0, 2, 1), ttl));
        StoredAnswer::prepare(&msg, rtype::A, at(received_ms), &TtlPolicy::default()).unwrap()
    }

    fn key(name: &str) -> Vec<u8> {
        let mut wire_name = Vec::new();
        crate::tests::encode_name(&mut wire_name, name);
        Key::new(&wire_name, rtype::A, 1, 0).as_bytes().to_vec()
    }

    fn fresh(c: &mut Cache, name: &str, ms: u64) -> bool {
        matches!(c.get(&key(name), at(ms)), Lookup::Fresh(_))
    }

    #[test]
    fn entries_expire_with_their_ttl() {
        let mut c = Cache::new(Limits::default());
        assert!(c.insert(&key("a.example"), answer("a.example", 10, 0), at(0)));
        assert!(fresh(&mut c, "a.example", 9_999));
        assert!(!fresh(&mut c, "a.example", 10_000));
        assert!(c.get_stale(&key("a.example"), at(10_000)).is_some(), "still there to serve stale");
        assert!(c.get_stale(&key("a.example"), at(10_000 + 86_400_000)).is_none());
        c.sweep(at(10_000 + 86_400_000), 100);
        assert!(c.is_empty() && c.bytes() == 0);
        assert_eq!(c.stats().expired, 1);
        // Zero TTL: never stored.
        assert!(!c.insert(&key("z.example"), answer("z.example", 0, 0), at(0)));
    }

    #[test]
    fn keys_ignore_case_but_not_type_or_flags() {
        let mut wire_name = Vec::new();
        crate::tests::encode_name(&mut wire_name, "WWW.Example.COM");
        let upper = Key::new(&wire_name, rtype::A, 1, 0);
        assert_eq!(upper.as_bytes(), key("www.example.com").as_slice());
        assert_ne!(Key::new(&wire_name, rtype::AAAA, 1, 0).as_bytes(), upper.as_bytes());
        assert_ne!(Key::new(&wire_name, rtype::A, 1, key_flag::DO).as_bytes(), upper.as_bytes());
        assert_eq!(upper.name(), b"\x03www\x07example\x03com\x00");
    }

    #[test]
    fn negative_entries_live_for_the_soa_minimum() {
        let mut c = Cache::new(Limits::default());
        let q = query(1, "nx.example", rtype::A, None);
        let msg = reply_to(&q, |p, _| {
            *p.rcode_mut() = simple_dns::RCODE::NameError;
            with_soa(p, "example", 900, 120);
        });
        let a = StoredAnswer::prepare(&msg, rtype::A, at(0), &TtlPolicy::default()).unwrap();
        assert_eq!((a.kind(), a.lifetime()), (crate::answer::Kind::Negative, 120));
        c.insert(&key("nx.example"), a, at(0));
        assert!(fresh(&mut c, "nx.example", 119_999));
        assert!(!fresh(&mut c, "nx.example", 120_000));
    }

    #[test]
    fn bounded_by_entries_evicting_without_second_chance_first() {
        let mut c = Cache::new(Limits { max_entries: 3, ..Limits::default() });
        for n in ["a", "b", "c"] {
            c.insert(&key(n), answer(n, 300, 0), at(0));
        }
        // a and c are used: b has no second chance and goes first.
        assert!(fresh(&mut c, "a", 1) && fresh(&mut c, "c", 1));
        c.insert(&key("d"), answer("d", 300, 0), at(2));
        assert_eq!(c.len(), 3);
        assert!(!fresh(&mut c, "b", 3) && fresh(&mut c, "a", 3) && fresh(&mut c, "d", 3));
        assert_eq!(c.stats().evicted, 1);
    }

    #[test]
    fn an_expired_entry_has_no_second_chance() {
        let mut c = Cache::new(Limits { max_entries: 3, ..Limits::default() });
        for (n, ttl) in [("short", 1), ("b", 300), ("c", 300)] {
            c.insert(&key(n), answer(n, ttl, 0), at(0));
            assert!(fresh(&mut c, n, 0));
        }
        c.insert(&key("d"), answer("d", 300, 5_000), at(5_000));
        assert!(c.get_stale(&key("short"), at(5_000)).is_none(), "the expired one went");
        assert!(fresh(&mut c, "b", 5_000) && fresh(&mut c, "c", 5_000) && fresh(&mut c, "d", 5_000));
    }

    #[test]
    fn bounded_by_bytes() {
        let one = answer("x00", 300, 0).size() + ENTRY_OVERHEAD;
        let mut c = Cache::new(Limits { max_bytes: 10 * one, ..Limits::default() });
        for i in 0..100 {
            let n = format!("x{i:02}");
            assert!(c.insert(&key(&n), answer(&n, 300, 0), at(0)));
            assert!(c.bytes() <= 10 * one);
        }
        assert_eq!(c.len(), 10);
        // Shrinking evicts down to the new limits.
        c.set_limits(at(0), Limits { max_entries: 4, ..c.limits() });
        assert_eq!(c.len(), 4);
        assert_eq!(c.bytes(), 4 * one);
        // An answer bigger than the whole cache is not stored.
        let mut tiny = Cache::new(Limits { max_bytes: 10, ..Limits::default() });
        assert!(!tiny.insert(&key("x"), answer("x", 300, 0), at(0)));
    }

    #[test]
    fn replacing_an_entry_keeps_the_accounting_right() {
        let mut c = Cache::new(Limits::default());
        c.insert(&key("a"), answer("a", 300, 0), at(0));
        let bytes = c.bytes();
        c.insert(&key("a"), answer("a", 600, 0), at(0));
        assert_eq!((c.len(), c.bytes()), (1, bytes));
        assert!(fresh(&mut c, "a", 400_000));
    }
}
