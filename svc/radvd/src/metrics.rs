//! radvd's counters, rendered as Prometheus text (`/metrics` on port 8068 of the
//! private addresses) and as JSON in the control API's status.

use runtime::metrics::{Counter, Encoder, Gauge, Metrics};
use serde_json::{Value, json};

use crate::solicit::DropReason;

/// Counters and gauges the loop updates and the HTTP thread reads.
#[derive(Debug, Default)]
pub struct RadvdMetrics {
    /// Periodic multicast RAs sent.
    pub sent_unsolicited: Counter,
    /// Multicast RAs sent early for a solicitation or a reload.
    pub sent_solicited_multicast: Counter,
    /// Unicast RAs sent to a soliciting host.
    pub sent_solicited_unicast: Counter,
    /// RAs the kernel refused to send.
    pub send_errors: Counter,
    /// Valid Router Solicitations received.
    pub solicitations: Counter,
    /// Valid solicitations received while there was nothing to advertise.
    pub solicitations_unanswered: Counter,
    /// Packets dropped, by [`DropReason::ALL`] position.
    pub dropped: [Counter; DropReason::ALL.len()],
    /// Prefixes advertised with lifetimes.
    pub prefixes_advertised: Gauge,
    /// Prefixes advertised with zero lifetimes (deprecated).
    pub prefixes_deprecated: Gauge,
    /// Reloads (SIGUSR1 or the control API).
    pub reloads: Counter,
}

impl RadvdMetrics {
    /// Counts a dropped packet.
    pub fn drop_packet(&self, reason: DropReason) {
        if let Some(i) = DropReason::ALL.iter().position(|r| *r == reason) {
            self.dropped[i].inc();
        }
    }

    /// How many packets were dropped for `reason`.
    #[must_use]
    pub fn dropped(&self, reason: DropReason) -> u64 {
        DropReason::ALL.iter().position(|r| *r == reason).map_or(0, |i| self.dropped[i].get())
    }

    /// The counters as JSON, for the control API.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let dropped: serde_json::Map<String, Value> =
            DropReason::ALL.iter().map(|r| (r.label().to_owned(), json!(self.dropped(*r)))).collect();
        json!({
            "advertisements_sent": {
                "unsolicited": self.sent_unsolicited.get(),
                "solicited_multicast": self.sent_solicited_multicast.get(),
                "solicited_unicast": self.sent_solicited_unicast.get(),
            },
            "send_errors": self.send_errors.get(),
            "solicitations_received": self.solicitations.get(),
            "solicitations_unanswered": self.solicitations_unanswered.get(),
            "dropped": dropped,
            "reloads": self.reloads.get(),
        })
    }
}

impl Metrics for RadvdMetrics {
    fn encode(&self, enc: &mut Encoder) {
        let sent = "radvd_advertisements_sent_total";
        let sent_help = "Router Advertisements sent.";
        enc.counter(sent, sent_help, &[("kind", "unsolicited")], self.sent_unsolicited.get());
        enc.counter(sent, sent_help, &[("kind", "solicited_multicast")], self.sent_solicited_multicast.get());
        enc.counter(sent, sent_help, &[("kind", "solicited_unicast")], self.sent_solicited_unicast.get());
        enc.counter(
            "radvd_send_errors_total",
            "Router Advertisements the kernel refused.",
            &[],
            self.send_errors.get(),
        );
        enc.counter(
            "radvd_solicitations_total",
            "Valid Router Solicitations received on the LAN.",
            &[],
            self.solicitations.get(),
        );
        enc.counter(
            "radvd_solicitations_unanswered_total",
            "Valid Router Solicitations received while there was nothing to advertise.",
            &[],
            self.solicitations_unanswered.get(),
        );
        for r in DropReason::ALL {
            enc.counter(
                "radvd_dropped_total",
                "ICMPv6 packets dropped, by reason (RFC 4861 6.1.1 checks).",
                &[("reason", r.label())],
                self.dropped(r),
            );
        }
        let prefixes = "radvd_prefixes";
        let prefixes_help = "Prefixes in Router Advertisements, by state.";
        enc.gauge(prefixes, prefixes_help, &[("state", "advertised")], self.prefixes_advertised.get());
        enc.gauge(prefixes, prefixes_help, &[("state", "deprecated")], self.prefixes_deprecated.get());
        enc.counter(
            "radvd_reloads_total",
            "Reloads of the inputs (SIGUSR1 or the control API).",
            &[],
            self.reloads.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_once_and_promtool_accepts_it() {
        let m = RadvdMetrics::default();
        m.sent_unsolicited.add(3);
        m.drop_packet(DropReason::HopLimit);
        m.drop_packet(DropReason::HopLimit);
        m.prefixes_advertised.set(1.0);
        let text = runtime::metrics::render(&m);
        assert!(text.contains("radvd_advertisements_sent_total{kind=\"unsolicited\"} 3\n"), "{text}");
        assert!(text.contains("radvd_dropped_total{reason=\"hop_limit\"} 2\n"), "{text}");
        assert_eq!(text.matches("# TYPE radvd_dropped_total counter").count(), 1);
        assert_eq!(m.to_json()["dropped"]["hop_limit"], 2);
        if runtime::testing::tool("promtool", "renders_every_family_once_and_promtool_accepts_it").is_none() {
            return;
        }
        runtime::testing::promtool_check(&text).unwrap();
    }
}
