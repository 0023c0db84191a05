//! dnsd's metrics: a struct of atomics the loop updates and the HTTP thread
//! renders on `/metrics` (Prometheus text, via `runtime::metrics`).
//!
//! ```text
//! dnsd_queries_total{proto="udp",type="A"} 1234
//! dnsd_answers_total{source="cache"} 1000
//! dnsd_responses_total{rcode="NXDOMAIN"} 12
//! dnsd_cache_lookups_total{result="hit"} 1000
//! dnsd_dropped_total{reason="upstream_mismatch"} 1
//! dnsd_upstream_latency_seconds_bucket{upstream="192.0.2.53:53",le="0.004"} 17
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use runtime::metrics::{Counter, Encoder, Gauge, Histogram, Metrics};

use crate::wire::rtype;

/// Query types counted by name; everything else is `other`.
pub const QTYPES: [(u16, &str); 15] = [
    (rtype::A, "A"),
    (rtype::AAAA, "AAAA"),
    (rtype::PTR, "PTR"),
    (rtype::HTTPS, "HTTPS"),
    (rtype::SVCB, "SVCB"),
    (rtype::SRV, "SRV"),
    (rtype::TXT, "TXT"),
    (rtype::MX, "MX"),
    (rtype::CNAME, "CNAME"),
    (rtype::NS, "NS"),
    (rtype::SOA, "SOA"),
    (rtype::DS, "DS"),
    (rtype::DNSKEY, "DNSKEY"),
    (rtype::ANY, "ANY"),
    (0, "other"),
];

/// Response codes counted by name; everything else is `other`.
pub const RCODES: [&str; 7] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"];

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// Our local names.
    Local,
    /// A fresh cache entry.
    Cache,
    /// An upstream, just now.
    Upstream,
    /// An expired cache entry, because every upstream failed (RFC 8767).
    Stale,
    /// Our own error (FORMERR, NOTIMP, SERVFAIL, …).
    Error,
}

const SOURCES: [(AnswerSource, &str); 5] = [
    (AnswerSource::Local, "local"),
    (AnswerSource::Cache, "cache"),
    (AnswerSource::Upstream, "upstream"),
    (AnswerSource::Stale, "stale"),
    (AnswerSource::Error, "error"),
];

/// Why something was dropped or refused; the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// A client message shorter than a header.
    QueryTooShort,
    /// A client message with QR set.
    QueryIsResponse,
    /// A client datagram longer than we take (4 KiB).
    QueryTooLong,
    /// A malformed query (answered FORMERR).
    QueryMalformed,
    /// A query we do not implement (answered NOTIMP).
    QueryNotImplemented,
    /// A query with an unsupported EDNS version (answered BADVERS).
    QueryBadVersion,
    /// Too many queries waiting for upstreams.
    PendingFull,
    /// Too many clients waiting for the same answer.
    WaitersFull,
    /// A retransmitted query already waiting.
    Duplicate,
    /// A reply whose address, port and ID match no query of ours.
    UpstreamUnexpected,
    /// A reply whose question does not match the query (anti-spoofing).
    UpstreamMismatch,
    /// A reply that does not parse.
    UpstreamMalformed,
    /// A reply we could not send back to the client.
    SendFailed,
    /// A TCP connection refused because too many are open.
    TcpConnectionsFull,
    /// A TCP message longer than we accept, or a closed connection's answer.
    TcpDropped,
}

const DROPS: [(Discard, &str); 15] = [
    (Discard::QueryTooShort, "query_too_short"),
    (Discard::QueryIsResponse, "query_is_response"),
    (Discard::QueryTooLong, "query_too_long"),
    (Discard::QueryMalformed, "query_malformed"),
    (Discard::QueryNotImplemented, "query_not_implemented"),
    (Discard::QueryBadVersion, "query_bad_version"),
    (Discard::PendingFull, "pending_full"),
    (Discard::WaitersFull, "waiters_full"),
    (Discard::Duplicate, "duplicate"),
    (Discard::UpstreamUnexpected, "upstream_unexpected"),
    (Discard::UpstreamMismatch, "upstream_mismatch"),
    (Discard::UpstreamMalformed, "upstream_malformed"),
    (Discard::SendFailed, "send_failed"),
    (Discard::TcpConnectionsFull, "tcp_connections_full"),
    (Discard::TcpDropped, "tcp_dropped"),
];

/// Per-upstream figures.
#[derive(Debug)]
pub struct UpstreamMetrics {
    /// Queries sent.
    pub queries: Counter,
    /// Answers received.
    pub answers: Counter,
    /// Failed tries (timeouts, send errors, malformed replies).
    pub failures: Counter,
    /// Answer latency.
    pub latency: Histogram,
    /// 1 while considered up.
    pub up: Gauge,
}

impl Default for UpstreamMetrics {
    fn default() -> Self {
        let m = Self {
            queries: Counter::default(),
            answers: Counter::default(),
            failures: Counter::default(),
            // 0.5 ms … 2 s.
            latency: Histogram::exponential(0.0005, 2.0, 13),
            up: Gauge::default(),
        };
        m.up.set(1.0);
        m
    }
}

/// Everything dnsd counts.
#[derive(Debug)]
pub struct DnsMetrics {
    queries: [[Counter; QTYPES.len()]; 2],
    answers: [Counter; SOURCES.len()],
    responses: [Counter; RCODES.len()],
    truncated: Counter,
    drops: [Counter; DROPS.len()],
    /// Cache hits.
    pub cache_hits: Counter,
    /// Cache misses.
    pub cache_misses: Counter,
    /// Cache insertions.
    pub cache_inserts: Counter,
    /// Cache evictions to make room.
    pub cache_evictions: Counter,
    /// Cache entries.
    pub cache_entries: Gauge,
    /// Cache bytes.
    pub cache_bytes: Gauge,
    /// Queries waiting for upstreams.
    pub pending: Gauge,
    /// Open TCP client connections.
    pub tcp_connections: Gauge,
    /// Retries over TCP after a truncated UDP reply.
    pub tcp_retries: Counter,
    /// 1 while busy listeners are read on a timer (see the binary's `moderation`).
    pub moderated: Gauge,
    upstreams: Mutex<Vec<(SocketAddr, Arc<UpstreamMetrics>)>>,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self {
            queries: Default::default(),
            answers: Default::default(),
            responses: Default::default(),
            truncated: Counter::default(),
            drops: Default::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_inserts: Counter::default(),
            cache_evictions: Counter::default(),
            cache_entries: Gauge::default(),
            cache_bytes: Gauge::default(),
            pending: Gauge::default(),
            tcp_connections: Gauge::default(),
            tcp_retries: Counter::default(),
            moderated: Gauge::default(),
            upstreams: Mutex::new(Vec::new()),
        }
    }
}

impl DnsMetrics {
    /// Counts a query.
    pub fn query(&self, tcp: bool, qtype: u16) {
        let t = QTYPES.iter().position(|&(code, _)| code == qtype).unwrap_or(QTYPES.len() - 1);
        self.queries[usize::from(tcp)][t].inc();
    }

    /// Counts an answer sent.
    pub fn answer(&self, source: AnswerSource, rcode: u16, truncated: bool) {
        if let Some(i) = SOURCES.iter().position(|&(s, _)| s == source) {
            self.answers[i].inc();
        }
        self.responses[usize::from(rcode).min(RCODES.len() - 1)].inc();
        if truncated {
            self.truncated.inc();
        }
    }

    /// Counts a drop.
    pub fn discard(&self, reason: Discard) {
        if let Some(i) = DROPS.iter().position(|&(d, _)| d == reason) {
            self.drops[i].inc();
        }
    }

    /// The count for `reason` (tests).
    #[must_use]
    pub fn dropped(&self, reason: Discard) -> u64 {
        DROPS.iter().position(|&(d, _)| d == reason).map_or(0, |i| self.drops[i].get())
    }

    /// Answers sent from `source` (tests).
    #[must_use]
    pub fn answers_from(&self, source: AnswerSource) -> u64 {
        SOURCES.iter().position(|&(s, _)| s == source).map_or(0, |i| self.answers[i].get())
    }

    /// The figures of upstream `addr`, made on first use and kept (an upstream
    /// that goes and comes back continues its counts).
    #[must_use]
    pub fn upstream(&self, addr: SocketAddr) -> Arc<UpstreamMetrics> {
        let mut list = self.upstreams.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, m)) = list.iter().find(|(a, _)| *a == addr) {
            return Arc::clone(m);
        }
        let m = Arc::new(UpstreamMetrics::default());
        list.push((addr, Arc::clone(&m)));
        m
    }
}

impl Metrics for DnsMetrics {
    fn encode(&self, enc: &mut Encoder) {
        for (p, proto) in ["udp", "tcp"].into_iter().enumerate() {
            for (t, (_, name)) in QTYPES.iter().enumerate() {
                let v = self.queries[p][t].get();
                enc.counter(
                    "dnsd_queries_total",
                    "DNS queries received, by transport and type.",
                    &[("proto", proto), ("type", name)],
                    v,
                );
            }
        }
        for (i, (_, name)) in SOURCES.iter().enumerate() {
            enc.counter(
                "dnsd_answers_total",
                "Answers sent, by where they came from.",
                &[("source", name)],
                self.answers[i].get(),
            );
        }
        for (i, name) in RCODES.iter().enumerate() {
            enc.counter(
                "dnsd_responses_total",
                "Answers sent, by response code.",
                &[("rcode", name)],
                self.responses[i].get(),
            );
        }
        enc.counter(
            "dnsd_truncated_total",
            "Answers sent truncated (TC) because they did not fit the transport.",
            &[],
            self.truncated.get(),
        );
        for (i, (_, name)) in DROPS.iter().enumerate() {
            enc.counter(
                "dnsd_dropped_total",
                "Messages dropped or refused, by reason.",
                &[("reason", name)],
                self.drops[i].get(),
            );
        }
        let lookups = "dnsd_cache_lookups_total";
        let help = "Cache lookups of forwarded names, by result.";
        enc.counter(lookups, help, &[("result", "hit")], self.cache_hits.get());
        enc.counter(lookups, help, &[("result", "miss")], self.cache_misses.get());
        enc.counter("dnsd_cache_inserts_total", "Answers stored in the cache.", &[], self.cache_inserts.get());
        enc.counter(
            "dnsd_cache_evictions_total",
            "Cache entries evicted to make room.",
            &[],
            self.cache_evictions.get(),
        );
        enc.gauge("dnsd_cache_entries", "Entries in the cache.", &[], self.cache_entries.get());
        enc.gauge("dnsd_cache_bytes", "Bytes held by the cache.", &[], self.cache_bytes.get());
        enc.gauge("dnsd_pending_queries", "Queries waiting for an upstream.", &[], self.pending.get());
        enc.gauge("dnsd_tcp_connections", "Open TCP client connections.", &[], self.tcp_connections.get());
        enc.counter(
            "dnsd_tcp_retries_total",
            "Queries retried over TCP after a truncated UDP reply.",
            &[],
            self.tcp_retries.get(),
        );
        enc.gauge(
            "dnsd_udp_moderated",
            "1 while client datagrams are read on a timer instead of each waking dnsd (over 4000/s).",
            &[],
            self.moderated.get(),
        );
        let list = self.upstreams.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (addr, m) in list.iter() {
            let a = addr.to_string();
            let l = [("upstream", a.as_str())];
            enc.counter("dnsd_upstream_queries_total", "Queries sent to each upstream.", &l, m.queries.get());
            enc.counter("dnsd_upstream_answers_total", "Answers received from each upstream.", &l, m.answers.get());
            enc.counter(
                "dnsd_upstream_failures_total",
                "Failed tries per upstream (timeouts, send errors, malformed replies).",
                &l,
                m.failures.get(),
            );
            enc.gauge("dnsd_upstream_up", "1 while the upstream is considered up.", &l, m.up.get());
            enc.histogram(
                "dnsd_upstream_latency_seconds",
                "Time from sending a query to an upstream until its answer.",
                &l,
                &m.latency,
            );
        }
    }
}
