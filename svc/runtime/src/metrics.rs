//! Metrics as plain structs of atomics, rendered in the Prometheus text format
//! (version 0.0.4) on demand.
//!
//! A service keeps a struct of [`Counter`]s, [`Gauge`]s and [`Histogram`]s that
//! its loop updates, and implements [`Metrics::encode`] to name them. The HTTP
//! thread renders it with [`render`]. Samples of one family are grouped under one
//! `# HELP`/`# TYPE` header whatever order they were added in, which is what
//! `promtool check metrics` demands.
//!
//! ```text
//! # HELP dnsd_queries_total DNS queries received.
//! # TYPE dnsd_queries_total counter
//! dnsd_queries_total{proto="udp"} 42
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    /// The current value.
    #[must_use]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Observations counted into cumulative buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds (sorted ascending; `+Inf` is implied).
    #[must_use]
    pub fn new(bounds: &[f64]) -> Self {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let buckets = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Self { bounds, buckets, count: AtomicU64::new(0), sum_bits: AtomicU64::new(0) }
    }

    /// Exponential bounds `start, start*factor, …` (`n` of them).
    #[must_use]
    pub fn exponential(start: f64, factor: f64, n: usize) -> Self {
        let bounds: Vec<f64> = std::iter::successors(Some(start), |b| Some(b * factor)).take(n).collect();
        Self::new(&bounds)
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut cur = self.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self.sum_bits.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Number of observations.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Something that can describe its metrics.
pub trait Metrics {
    /// Adds every metric to `enc`.
    fn encode(&self, enc: &mut Encoder);
}

#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: &'static str,
    samples: String,
}

/// Collects samples grouped by family.
#[derive(Debug, Default)]
pub struct Encoder {
    families: Vec<Family>,
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn labels_text(labels: &[(&str, &str)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape_label(v)));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

impl Encoder {
    /// An empty encoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn family(&mut self, name: &str, help: &str, kind: &'static str) -> &mut String {
        let idx = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    samples: String::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[idx].samples
    }

    /// A counter sample; `name` should end in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        let line = format!("{name}{} {value}\n", labels_text(labels, None));
        self.family(name, help, "counter").push_str(&line);
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let line = format!("{name}{} {}\n", labels_text(labels, None), number(value));
        self.family(name, help, "gauge").push_str(&line);
    }

    /// A histogram's `_bucket`, `_sum` and `_count` samples.
    pub fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut text = String::new();
        let mut cumulative = 0u64;
        for (bound, bucket) in h.bounds.iter().zip(&h.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = number(*bound);
            let _ = writeln!(text, "{name}_bucket{} {cumulative}", labels_text(labels, Some(("le", &le))));
        }
        let count = h.count();
        let _ = writeln!(text, "{name}_bucket{} {count}", labels_text(labels, Some(("le", "+Inf"))));
        let _ = writeln!(
            text,
            "{name}_sum{} {}",
            labels_text(labels, None),
            number(f64::from_bits(h.sum_bits.load(Ordering::Relaxed)))
        );
        let _ = writeln!(text, "{name}_count{} {count}", labels_text(labels, None));
        self.family(name, help, "histogram").push_str(&text);
    }

    /// The exposition text.
    #[must_use]
    pub fn finish(self) -> String {
        let mut out = String::new();
        for f in self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            out.push_str(&f.samples);
        }
        out
    }
}

/// Renders `m` as Prometheus text.
#[must_use]
pub fn render(m: &dyn Metrics) -> String {
    let mut enc = Encoder::new();
    m.encode(&mut enc);
    enc.finish()
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    struct Sample {
        queries_udp: Counter,
        queries_tcp: Counter,
        leases: Gauge,
        latency: Histogram,
    }

    impl Metrics for Sample {
        fn encode(&self, enc: &mut Encoder) {
            enc.counter("dnsd_queries_total", "DNS queries received.", &[("proto", "udp")], self.queries_udp.get());
            enc.gauge("dhcp4d_leases", "Leases in use.", &[], self.leases.get());
            // Same family again after another one: must still be grouped.
            enc.counter("dnsd_queries_total", "DNS queries received.", &[("proto", "tcp")], self.queries_tcp.get());
            enc.histogram(
                "dnsd_upstream_latency_seconds",
                "Upstream answer latency.",
                &[("upstream", "a\"b")],
                &self.latency,
            );
        }
    }

    fn sample() -> Sample {
        let s = Sample {
            queries_udp: Counter::default(),
            queries_tcp: Counter::default(),
            leases: Gauge::default(),
            latency: Histogram::new(&[0.001, 0.01, 0.1]),
        };
        s.queries_udp.add(41);
        s.queries_udp.inc();
        s.queries_tcp.inc();
        s.leases.set(3.0);
        for v in [0.0005, 0.005, 0.05, 2.0] {
            s.latency.observe(v);
        }
        s
    }

    #[test]
    fn renders_grouped_families_with_cumulative_buckets() {
        let text = render(&sample());
        let expected = "\
# HELP dnsd_queries_total DNS queries received.
# TYPE dnsd_queries_total counter
dnsd_queries_total{proto=\"udp\"} 42
dnsd_queries_total{proto=\"tcp\"} 1
# HELP dhcp4d_leases Leases in use.
# TYPE dhcp4d_leases gauge
dhcp4d_leases 3
# HELP dnsd_upstream_latency_seconds Upstream answer latency.
# TYPE dnsd_upstream_latency_seconds histogram
dnsd_upstream_latency_seconds_bucket{upstream=\"a\\\"b\",le=\"0.001\"} 1
dnsd_upstream_latency_seconds_bucket{upstream=\"a\\\"b\",le=\"0.01\"} 2
dnsd_upstream_latency_seconds_bucket{upstream=\"a\\\"b\",le=\"0.1\"} 3
dnsd_upstream_latency_seconds_bucket{upstream=\"a\\\"b\",le=\"+Inf\"} 4
dnsd_upstream_latency_seconds_sum{upstream=\"a\\\"b\"} 2.0555
dnsd_upstream_latency_seconds_count{upstream=\"a\\\"b\"} 4
";
        assert_eq!(text, expected);
    }

    #[test]
    fn promtool_accepts_the_output() {
        if crate::testing::tool("promtool", "promtool_accepts_the_output").is_none() {
            return;
        }
        crate::testing::promtool_check(&render(&sample())).unwrap();
    }

    #[test]
    fn promtool_rejects_a_broken_exposition() {
        // Proves the check above can fail: a counter without _total and a duplicate TYPE.
        if crate::testing::tool("promtool", "promtool_rejects_a_broken_exposition").is_none() {
            return;
        }
        assert!(crate::testing::promtool_check("# TYPE x counter\nx 1\n# TYPE x counter\nx 2\n").is_err());
    }
}
