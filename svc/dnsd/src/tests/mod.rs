//! Conversations with the core under a fake clock: queries in, answers and
//! upstream queries out. Every message the core writes is parsed with
//! simple-dns, an independent implementation, before anything is asserted.

mod local_names;
mod resolver;
mod wire_format;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use simple_dns::rdata::{A, RData, SOA};
use simple_dns::{CLASS, Name, Packet, PacketFlag, RCODE, ResourceRecord};

use crate::entropy::SplitMix64;
use crate::metrics::DnsMetrics;
use crate::resolver::{ClientAddr, Handled, Resolver, Transmit, Tunables};
use crate::upstream::{Source, UpstreamSpec};
use crate::wire::{self, CLASS_IN, Header, flag};

/// A fixed start for the fake clock.
pub(crate) fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(runtime::clock::now)
}

pub(crate) fn at(ms: u64) -> Instant {
    t0() + Duration::from_millis(ms)
}

pub(crate) fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A query as a stub resolver sends it: RD set, optionally with EDNS.
pub(crate) fn query(id: u16, name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut out = Vec::new();
    Header { id, flags: flag::RD, qdcount: 1, ancount: 0, nscount: 0, arcount: u16::from(edns.is_some()) }
        .emit(&mut out);
    encode_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    if let Some((size, dnssec_ok)) = edns {
        wire::emit_opt(&mut out, 0, dnssec_ok);
        let at = out.len() - 8;
        wire::put16(&mut out, at, size);
    }
    out
}

/// Parses with simple-dns, which must accept everything we write.
pub(crate) fn parse(msg: &[u8]) -> Packet<'_> {
    Packet::parse(msg).unwrap_or_else(|e| panic!("simple-dns rejects our message ({e}): {msg:?}"))
}

pub(crate) fn a_records(p: &Packet<'_>) -> Vec<(Ipv4Addr, u32)> {
    p.answers
        .iter()
        .filter_map(|rr| match &rr.rdata {
            RData::A(a) => Some((Ipv4Addr::from(a.address), rr.ttl)),
            _ => None,
        })
        .collect()
}

/// The upstream's reply to `query`: its ID and question, RA, and what `fill` adds.
pub(crate) fn reply_to(query: &[u8], fill: impl for<'a> FnOnce(&mut Packet<'a>, Name<'a>)) -> Vec<u8> {
    let q = parse(query);
    let mut p = Packet::new_reply(q.id());
    p.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    let question = q.questions[0].clone().into_owned();
    let name = question.qname.clone();
    p.questions.push(question);
    fill(&mut p, name);
    p.build_bytes_vec_compressed().unwrap()
}

pub(crate) fn with_a<'a>(p: &mut Packet<'a>, name: Name<'a>, ip: Ipv4Addr, ttl: u32) {
    p.answers.push(ResourceRecord::new(name, CLASS::IN, ttl, RData::A(A { address: u32::from(ip) })));
}

pub(crate) fn with_soa(p: &mut Packet<'_>, zone: &'static str, ttl: u32, minimum: u32) {
    let soa = SOA {
        mname: Name::new_unchecked("ns.example"),
        rname: Name::new_unchecked("hostmaster.example"),
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum,
    };
    p.name_servers.push(ResourceRecord::new(Name::new_unchecked(zone), CLASS::IN, ttl, RData::SOA(soa)));
}

pub(crate) fn nxdomain(p: &mut Packet<'_>) {
    *p.rcode_mut() = RCODE::NameError;
}

pub(crate) const UP1: &str = "192.0.2.1:53";
pub(crate) const UP2: &str = "192.0.2.2:53";
pub(crate) const CLIENT: &str = "192.168.42.23:5353";

pub(crate) fn udp_client(port: u16) -> ClientAddr {
    ClientAddr::Udp { listener: 1, peer: SocketAddr::new("192.168.42.23".parse().unwrap(), port) }
}

/// The core, its metrics and what it asked the shell to do.
pub(crate) struct Harness {
    pub(crate) r: Resolver,
    pub(crate) metrics: Arc<DnsMetrics>,
}

impl Harness {
    pub(crate) fn new(upstreams: &[&str]) -> Self {
        Self::with(Tunables::default(), upstreams)
    }

    pub(crate) fn with(tun: Tunables, upstreams: &[&str]) -> Self {
        let metrics = Arc::new(DnsMetrics::default());
        let mut r = Resolver::new(tun, Arc::clone(&metrics), Box::new(SplitMix64(7)));
        let specs: Vec<UpstreamSpec> =
            upstreams.iter().map(|u| UpstreamSpec { addr: u.parse().unwrap(), source: Source::Config }).collect();
        r.set_upstreams(&specs);
        Self { r, metrics }
    }

    /// Sends `msg` from `client`; returns the outcome and the immediate answer.
    pub(crate) fn ask(&mut self, now: Instant, client: ClientAddr, msg: &[u8]) -> (Handled, Vec<u8>) {
        let mut out = Vec::new();
        let h = self.r.on_query(now, client, msg, &mut out);
        (h, out)
    }

    /// Asks and expects an immediate answer.
    pub(crate) fn answer(&mut self, now: Instant, msg: &[u8]) -> Vec<u8> {
        let (h, out) = self.ask(now, udp_client(5353), msg);
        assert_eq!(h, Handled::Reply);
        out
    }

    pub(crate) fn transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.r.poll_transmit()).collect()
    }

    /// The upstream UDP queries sent since the last call: (slot, to, msg).
    pub(crate) fn upstream_queries(&mut self) -> Vec<(u8, SocketAddr, Vec<u8>)> {
        self.transmits()
            .into_iter()
            .filter_map(|t| match t {
                Transmit::UpstreamUdp { slot, to, msg } => Some((slot, to, msg)),
                _ => None,
            })
            .collect()
    }

    /// Answers for waiting clients since the last call.
    pub(crate) fn client_answers(&mut self) -> Vec<(ClientAddr, Vec<u8>)> {
        self.transmits()
            .into_iter()
            .filter_map(|t| match t {
                Transmit::Client { to, msg } => Some((to, msg)),
                _ => None,
            })
            .collect()
    }

    /// Runs the deadlines up to `now`.
    pub(crate) fn tick(&mut self, now: Instant) {
        if self.r.poll_at().is_some_and(|t| t <= now) {
            self.r.on_deadline(now);
        }
    }
}
