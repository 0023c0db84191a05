//! The client's counters: packets received, accepted and dropped by reason
//! (counted by the core), messages sent and failed sends by kind (counted by
//! the shell, which knows whether a send worked). Shown in the control API's
//! status as `metrics`; dhcp4 has no HTTP port.

use serde_json::{Map, Value, json};

use crate::wire::{DropReason, Outgoing};

/// Plain counters; the loop owns them, nothing else writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Packets handed to the core.
    pub received: u64,
    /// Packets the core acted on.
    pub accepted: u64,
    dropped: [u64; DropReason::ALL.len()],
    sent: [u64; Outgoing::ALL.len()],
    send_errors: [u64; Outgoing::ALL.len()],
}

impl Metrics {
    /// Counts a dropped packet.
    pub fn count_drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    /// Packets dropped for `reason`.
    #[must_use]
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Packets dropped for any reason.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Counts one send of `kind`, successful or not.
    pub fn count_send(&mut self, kind: Outgoing, ok: bool) {
        if ok {
            self.sent[kind.index()] += 1;
        } else {
            self.send_errors[kind.index()] += 1;
        }
    }

    /// Messages of `kind` sent.
    #[must_use]
    pub fn sent(&self, kind: Outgoing) -> u64 {
        self.sent[kind.index()]
    }

    /// Sends of `kind` that failed.
    #[must_use]
    pub fn send_errors(&self, kind: Outgoing) -> u64 {
        self.send_errors[kind.index()]
    }

    /// The status document's `metrics` field.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let by = |names: &mut dyn Iterator<Item = (&'static str, u64)>| -> Value {
            Value::Object(names.map(|(k, v)| (k.to_owned(), json!(v))).collect::<Map<_, _>>())
        };
        json!({
            "received": self.received,
            "accepted": self.accepted,
            "dropped": by(&mut DropReason::ALL.iter().map(|r| (r.as_str(), self.dropped(*r)))),
            "sent": by(&mut Outgoing::ALL.iter().map(|k| (k.as_str(), self.sent(*k)))),
            "send_errors": by(&mut Outgoing::ALL.iter().map(|k| (k.as_str(), self.send_errors(*k)))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_kind_and_names_every_one() {
        let mut m = Metrics::default();
        m.count_drop(DropReason::WrongXid);
        m.count_drop(DropReason::WrongXid);
        m.count_drop(DropReason::Truncated);
        m.count_send(Outgoing::RequestRenewing, true);
        m.count_send(Outgoing::RequestRenewing, false);
        assert_eq!((m.dropped(DropReason::WrongXid), m.dropped_total()), (2, 3));
        let j = m.to_json();
        assert_eq!(j["dropped"]["wrong_xid"], 2);
        assert_eq!(j["dropped"].as_object().unwrap().len(), DropReason::ALL.len());
        assert_eq!(j["sent"]["request_renewing"], 1);
        assert_eq!(j["send_errors"]["request_renewing"], 1);
        assert_eq!(j["sent"]["discover"], 0);
    }
}
