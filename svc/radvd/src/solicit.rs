//! Router Solicitations (RFC 4861 §4.1) and their validation (§6.1.1): what
//! fails a check is dropped with a reason the metrics count.

use std::fmt;
use std::net::Ipv6Addr;

use smoltcp::wire::{Icmpv6Message, Icmpv6Packet, NdiscOption, NdiscOptionType};

/// Hop limit every Neighbor Discovery message must arrive with (§6.1.1): a
/// packet at 255 cannot have been forwarded by a router.
pub const ND_HOP_LIMIT: u8 = 255;

/// Bytes of a Router Solicitation without options.
const RS_LEN: usize = 8;

/// A valid Router Solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    /// Its IPv6 source (`::` before the host has an address).
    pub source: Ipv6Addr,
    /// Its Source Link-Layer Address option, when it carried one.
    pub source_mac: Option<[u8; 6]>,
}

/// Why a packet was not taken as a Router Solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// The IP hop limit was not 255 (or unknown).
    HopLimit,
    /// Shorter than 8 bytes.
    TooShort,
    /// Another ICMPv6 type (the socket filter normally keeps these away).
    NotSolicitation,
    /// ICMP code not 0.
    BadCode,
    /// An option of length 0 or running past the message.
    BadOption,
    /// A source link-layer address option from the unspecified address.
    UnspecifiedWithLinkAddress,
    /// A multicast source address.
    MulticastSource,
    /// Received on another interface than the LAN.
    OtherInterface,
}

impl DropReason {
    /// Every reason, for metrics.
    pub const ALL: [Self; 8] = [
        Self::HopLimit,
        Self::TooShort,
        Self::NotSolicitation,
        Self::BadCode,
        Self::BadOption,
        Self::UnspecifiedWithLinkAddress,
        Self::MulticastSource,
        Self::OtherInterface,
    ];

    /// A metrics label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::HopLimit => "hop_limit",
            Self::TooShort => "too_short",
            Self::NotSolicitation => "not_solicitation",
            Self::BadCode => "bad_code",
            Self::BadOption => "bad_option",
            Self::UnspecifiedWithLinkAddress => "unspecified_with_lladdr",
            Self::MulticastSource => "multicast_source",
            Self::OtherInterface => "other_interface",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Validates a received ICMPv6 message as a Router Solicitation (§6.1.1). The
/// checksum is the kernel's job on a raw ICMPv6 socket (RFC 3542 §3.1), so it is
/// not checked again here.
pub fn validate(source: Ipv6Addr, hop_limit: Option<u8>, bytes: &[u8]) -> Result<Solicitation, DropReason> {
    if hop_limit != Some(ND_HOP_LIMIT) {
        return Err(DropReason::HopLimit);
    }
    if bytes.len() < RS_LEN {
        return Err(DropReason::TooShort);
    }
    let packet = Icmpv6Packet::new_checked(bytes).map_err(|_| DropReason::NotSolicitation)?;
    if packet.msg_type() != Icmpv6Message::RouterSolicit {
        return Err(DropReason::NotSolicitation);
    }
    if packet.msg_code() != 0 {
        return Err(DropReason::BadCode);
    }
    if source.is_multicast() {
        return Err(DropReason::MulticastSource);
    }
    // §6.1.1: every option's length must be > 0 (and, to be read at all, fit);
    // options we do not know are ignored (§4.1).
    let mut source_mac = None;
    let mut rest = &bytes[RS_LEN..];
    while !rest.is_empty() {
        // Lengths by hand: smoltcp's checked view also refuses known options of
        // odd length (a PIO of 8 bytes), which §6.1.1 does not ask us to drop.
        let units = rest.get(1).copied().ok_or(DropReason::BadOption)?;
        let len = usize::from(units) * 8;
        if len == 0 || len > rest.len() {
            return Err(DropReason::BadOption);
        }
        let (this, tail) = rest.split_at(len);
        let opt = NdiscOption::new_unchecked(this);
        if opt.option_type() == NdiscOptionType::SourceLinkLayerAddr {
            // At least 8 bytes, so the 6 of an Ethernet address are there.
            let raw = opt.link_layer_addr();
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&raw.as_bytes()[..6]);
            source_mac = Some(mac);
        }
        rest = tail;
    }
    if source.is_unspecified() && source_mac.is_some() {
        return Err(DropReason::UnspecifiedWithLinkAddress);
    }
    Ok(Solicitation { source, source_mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x73, 0x53ff, 0xfe00, 0xbeef);
    const RS_WITH_SLLA: [u8; 16] = [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x02, 0x73, 0x53, 0x00, 0xbe, 0xef];

    #[test]
    fn accepts_a_solicitation_with_and_without_link_address() {
        let s = validate(HOST, Some(255), &RS_WITH_SLLA).unwrap();
        assert_eq!(s, Solicitation { source: HOST, source_mac: Some([0x02, 0x73, 0x53, 0x00, 0xbe, 0xef]) });
        let bare = validate(Ipv6Addr::UNSPECIFIED, Some(255), &RS_WITH_SLLA[..8]).unwrap();
        assert_eq!(bare.source_mac, None);
        // Unknown options are ignored; reserved bytes are not checked (§6.1.1).
        let mut odd = RS_WITH_SLLA.to_vec();
        odd[4] = 0xff;
        odd.extend_from_slice(&[200, 1, 1, 2, 3, 4, 5, 6]);
        // A prefix option makes no sense here and is short for one; still only ignored.
        odd.extend_from_slice(&[3, 1, 64, 0, 0, 0, 0, 0]);
        assert!(validate(HOST, Some(255), &odd).is_ok());
    }

    #[test]
    fn a_hop_limit_other_than_255_is_dropped() {
        for hops in [Some(254), Some(64), Some(1), Some(0), None] {
            assert_eq!(validate(HOST, hops, &RS_WITH_SLLA), Err(DropReason::HopLimit), "{hops:?}");
        }
    }

    #[test]
    fn malformed_solicitations_are_dropped_with_their_reason() {
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = RS_WITH_SLLA.to_vec();
            f(&mut b);
            validate(HOST, Some(255), &b)
        };
        assert_eq!(with(&|b| b.truncate(7)), Err(DropReason::TooShort));
        assert_eq!(with(&|b| b[0] = 134), Err(DropReason::NotSolicitation));
        assert_eq!(with(&|b| b[0] = 200), Err(DropReason::NotSolicitation));
        assert_eq!(with(&|b| b[1] = 1), Err(DropReason::BadCode));
        assert_eq!(with(&|b| b[9] = 0), Err(DropReason::BadOption), "option length 0");
        assert_eq!(with(&|b| b[9] = 2), Err(DropReason::BadOption), "option past the end");
        assert_eq!(with(&|b| b.push(1)), Err(DropReason::BadOption), "one stray byte");
        assert_eq!(
            validate(Ipv6Addr::UNSPECIFIED, Some(255), &RS_WITH_SLLA),
            Err(DropReason::UnspecifiedWithLinkAddress)
        );
        assert_eq!(validate("ff02::1".parse().unwrap(), Some(255), &RS_WITH_SLLA), Err(DropReason::MulticastSource));
    }

    #[test]
    fn every_reason_has_its_own_label() {
        let mut labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DropReason::ALL.len());
    }
}
