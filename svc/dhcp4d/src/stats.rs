//! The server's counters and gauges, shared by the loop (which counts), the
//! lease writer (which times writes) and the HTTP threads (which render them
//! with [`runtime::metrics`]).

use runtime::metrics::{Counter, Encoder, Gauge, Histogram, Metrics};

use crate::wire::{DropReason, MessageType};

const TYPES: [MessageType; 8] = [
    MessageType::Discover,
    MessageType::Offer,
    MessageType::Request,
    MessageType::Decline,
    MessageType::Ack,
    MessageType::Nak,
    MessageType::Release,
    MessageType::Inform,
];

/// Every number `/metrics` shows.
#[derive(Debug)]
pub struct Stats {
    received: [Counter; 8],
    /// OFFERs sent.
    pub offers: Counter,
    /// ACKs sent for REQUESTs.
    pub acks: Counter,
    /// NAKs sent.
    pub naks: Counter,
    /// Addresses declined by clients.
    pub declines: Counter,
    /// Leases released by clients.
    pub releases: Counter,
    /// INFORMs answered.
    pub informs: Counter,
    /// Leases that ran out.
    pub expirations: Counter,
    /// DISCOVERs left unanswered because no address was free.
    pub pool_exhausted: Counter,
    drops: [Counter; DropReason::ALL.len()],
    /// Replies the kernel refused to send.
    pub send_errors: Counter,
    /// Lease file writes.
    pub writes: Counter,
    /// Lease file writes that failed.
    pub write_errors: Counter,
    /// How long writing the lease file took.
    pub write_seconds: Histogram,
    /// Dynamic leases not yet expired plus static leases.
    pub leases_in_use: Gauge,
    /// Pool size.
    pub pool_size: Gauge,
    /// Pool addresses never used or given back.
    pub pool_free: Gauge,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            received: Default::default(),
            offers: Counter::default(),
            acks: Counter::default(),
            naks: Counter::default(),
            declines: Counter::default(),
            releases: Counter::default(),
            informs: Counter::default(),
            expirations: Counter::default(),
            pool_exhausted: Counter::default(),
            drops: Default::default(),
            send_errors: Counter::default(),
            writes: Counter::default(),
            write_errors: Counter::default(),
            write_seconds: Histogram::exponential(0.0005, 4.0, 8),
            leases_in_use: Gauge::default(),
            pool_size: Gauge::default(),
            pool_free: Gauge::default(),
        }
    }
}

impl Stats {
    /// Counts a received message of `kind`.
    pub fn received(&self, kind: MessageType) {
        if let Some(i) = TYPES.iter().position(|t| *t == kind) {
            self.received[i].inc();
        }
    }

    /// Counts a drop.
    pub fn dropped(&self, reason: DropReason) {
        self.drops[reason.index()].inc();
    }

    /// Drops counted for `reason`.
    #[must_use]
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].get()
    }

    /// Received messages of `kind`.
    #[must_use]
    pub fn received_count(&self, kind: MessageType) -> u64 {
        TYPES.iter().position(|t| *t == kind).map_or(0, |i| self.received[i].get())
    }
}

impl Metrics for Stats {
    fn encode(&self, enc: &mut Encoder) {
        for (t, c) in TYPES.iter().zip(&self.received) {
            if matches!(t, MessageType::Offer | MessageType::Ack | MessageType::Nak) {
                continue;
            }
            let name = t.name().to_ascii_lowercase();
            enc.counter("dhcp4d_received_total", "DHCP messages received, by type.", &[("type", &name)], c.get());
        }
        enc.counter("dhcp4d_offers_total", "DHCPOFFERs sent.", &[], self.offers.get());
        enc.counter("dhcp4d_acks_total", "DHCPACKs sent for DHCPREQUESTs.", &[], self.acks.get());
        enc.counter("dhcp4d_naks_total", "DHCPNAKs sent.", &[], self.naks.get());
        enc.counter("dhcp4d_declines_total", "Addresses declined by clients (quarantined).", &[], self.declines.get());
        enc.counter("dhcp4d_releases_total", "Leases released by clients.", &[], self.releases.get());
        enc.counter("dhcp4d_informs_total", "DHCPINFORMs answered.", &[], self.informs.get());
        enc.counter("dhcp4d_expirations_total", "Leases that ran out.", &[], self.expirations.get());
        enc.counter(
            "dhcp4d_pool_exhausted_total",
            "DHCPDISCOVERs left unanswered because no address was free.",
            &[],
            self.pool_exhausted.get(),
        );
        for (r, c) in DropReason::ALL.iter().zip(&self.drops) {
            enc.counter(
                "dhcp4d_drops_total",
                "Messages dropped without a reply, by reason.",
                &[("reason", r.label())],
                c.get(),
            );
        }
        enc.counter("dhcp4d_send_errors_total", "Replies the kernel refused to send.", &[], self.send_errors.get());
        enc.counter("dhcp4d_lease_file_writes_total", "Writes of leases.json.", &[], self.writes.get());
        enc.counter(
            "dhcp4d_lease_file_write_errors_total",
            "Failed writes of leases.json.",
            &[],
            self.write_errors.get(),
        );
        enc.histogram(
            "dhcp4d_lease_file_write_seconds",
            "Time to write leases.json (encode, fsync, rename).",
            &[],
            &self.write_seconds,
        );
        enc.gauge("dhcp4d_leases_in_use", "Leases not expired (dynamic and static).", &[], self.leases_in_use.get());
        enc.gauge("dhcp4d_pool_size", "Addresses in the pool.", &[], self.pool_size.get());
        enc.gauge("dhcp4d_pool_free", "Pool addresses never used or given back.", &[], self.pool_free.get());
    }
}
