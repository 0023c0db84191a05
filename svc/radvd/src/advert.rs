//! The Router Advertisement message (RFC 4861 §4.2) and its options, built on
//! `smoltcp::wire`'s NDISC types: the header, Source Link-Layer Address (§4.6.1),
//! Prefix Information (§4.6.2) and MTU (§4.6.4) through [`NdiscRepr`] and
//! [`NdiscOptionRepr`], RDNSS and DNSSL through [`crate::dns_options`].
//!
//! Emitted bytes leave the ICMPv6 checksum at zero: a raw ICMPv6 socket has the
//! kernel fill it in (RFC 3542 §3.1). [`RouterAdvert::parse`] reads an RA back,
//! for tests and the fuzz target.

use std::net::Ipv6Addr;

use smoltcp::time::Duration as WireDuration;
use smoltcp::wire::{
    Icmpv6Message, Icmpv6Packet, NdiscOption, NdiscOptionRepr, NdiscOptionType, NdiscPrefixInfoFlags,
    NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags, RawHardwareAddress,
};

use crate::dns_options::{DNSSL, Dnssl, RDNSS, Rdnss};

/// ICMPv6 header plus the RA's fixed fields.
pub const HEADER_LEN: usize = 16;
/// Bytes of one Prefix Information option.
pub const PIO_LEN: usize = 32;

/// Default Router Preference (RFC 4191 §2.2), bits 3–4 of the flags byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// `01`.
    High,
    /// `00`, what every RFC 4861 router sends.
    Medium,
    /// `11`.
    Low,
    /// `10`, which receivers treat as medium.
    Reserved,
}

impl Preference {
    fn bits(self) -> u8 {
        match self {
            Self::High => 0b01,
            Self::Medium => 0b00,
            Self::Low => 0b11,
            Self::Reserved => 0b10,
        }
    }

    fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b01 => Self::High,
            0b00 => Self::Medium,
            0b11 => Self::Low,
            _ => Self::Reserved,
        }
    }
}

/// One Prefix Information option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The prefix (bits past `len` are zero).
    pub prefix: Ipv6Addr,
    /// Its length.
    pub len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: hosts may form addresses in it (SLAAC, RFC 4862 §5.5.3).
    pub autonomous: bool,
    /// Valid lifetime, seconds (`u32::MAX` = infinity).
    pub valid: u32,
    /// Preferred lifetime, seconds.
    pub preferred: u32,
}

/// A Router Advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAdvert {
    /// Cur Hop Limit for hosts (0 = unspecified).
    pub hop_limit: u8,
    /// M: addresses via DHCPv6.
    pub managed: bool,
    /// O: other configuration via DHCPv6.
    pub other: bool,
    /// Default Router Preference.
    pub preference: Preference,
    /// Router Lifetime, seconds (0 = not a default router).
    pub router_lifetime: u16,
    /// Reachable Time, milliseconds (0 = unspecified).
    pub reachable_time: u32,
    /// Retrans Timer, milliseconds (0 = unspecified).
    pub retrans_time: u32,
    /// Source Link-Layer Address option.
    pub source_mac: Option<[u8; 6]>,
    /// MTU option.
    pub mtu: Option<u32>,
    /// Prefix Information options, in order.
    pub prefixes: Vec<PrefixInfo>,
    /// RDNSS option.
    pub rdnss: Option<Rdnss>,
    /// DNSSL option.
    pub dnssl: Option<Dnssl>,
}

/// Why bytes are not an RA we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnAdvert(pub &'static str);

impl std::fmt::Display for NotAnAdvert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a router advertisement: {}", self.0)
    }
}

impl std::error::Error for NotAnAdvert {}

impl RouterAdvert {
    fn header_repr(&self) -> NdiscRepr<'static> {
        let mut flags = NdiscRouterFlags::empty();
        flags.set(NdiscRouterFlags::MANAGED, self.managed);
        flags.set(NdiscRouterFlags::OTHER, self.other);
        NdiscRepr::RouterAdvert {
            hop_limit: self.hop_limit,
            flags,
            router_lifetime: WireDuration::from_secs(u64::from(self.router_lifetime)),
            reachable_time: WireDuration::from_millis(u64::from(self.reachable_time)),
            retrans_time: WireDuration::from_millis(u64::from(self.retrans_time)),
            lladdr: self.source_mac.map(|m| RawHardwareAddress::from_bytes(&m)),
            mtu: self.mtu,
            prefix_info: None,
        }
    }

    /// The ICMPv6 message, checksum left zero. Options come in a fixed order:
    /// source link-layer address, MTU, prefixes, RDNSS, DNSSL.
    #[must_use]
    pub fn emit(&self) -> Vec<u8> {
        let header = self.header_repr();
        let mut buf = vec![0u8; header.buffer_len() + PIO_LEN * self.prefixes.len()];
        let mut at = header.buffer_len();
        header.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..at]));
        // smoltcp knows M and O; the preference bits (RFC 4191 §2.2) are ours.
        buf[5] |= self.preference.bits() << 3;
        for p in &self.prefixes {
            let mut flags = NdiscPrefixInfoFlags::empty();
            flags.set(NdiscPrefixInfoFlags::ON_LINK, p.on_link);
            flags.set(NdiscPrefixInfoFlags::ADDRCONF, p.autonomous);
            let pio = NdiscOptionRepr::PrefixInformation(NdiscPrefixInformation {
                prefix_len: p.len,
                flags,
                valid_lifetime: WireDuration::from_secs(u64::from(p.valid)),
                preferred_lifetime: WireDuration::from_secs(u64::from(p.preferred)),
                prefix: p.prefix,
            });
            pio.emit(&mut NdiscOption::new_unchecked(&mut buf[at..at + PIO_LEN]));
            at += PIO_LEN;
        }
        debug_assert_eq!(at, buf.len());
        // An option that cannot be encoded (no server, a name that is not a
        // DNS name) is left out rather than sent malformed.
        if let Some(r) = &self.rdnss {
            let mut opt = vec![0u8; r.buffer_len()];
            if r.emit(&mut opt).is_ok() {
                buf.extend_from_slice(&opt);
            }
        }
        if let Some(d) = &self.dnssl {
            let mut opt = vec![0u8; d.buffer_len()];
            if d.emit(&mut opt).is_ok() {
                buf.extend_from_slice(&opt);
            }
        }
        buf
    }

    /// Reads an RA (ICMPv6 message without the IPv6 header; the checksum is not checked).
    pub fn parse(bytes: &[u8]) -> Result<Self, NotAnAdvert> {
        let packet = Icmpv6Packet::new_checked(bytes).map_err(|_| NotAnAdvert("too short"))?;
        if packet.msg_type() != Icmpv6Message::RouterAdvert {
            return Err(NotAnAdvert("type"));
        }
        if packet.msg_code() != 0 {
            return Err(NotAnAdvert("code"));
        }
        let flags = packet.router_flags();
        let mut ra = Self {
            hop_limit: packet.current_hop_limit(),
            managed: flags.contains(NdiscRouterFlags::MANAGED),
            other: flags.contains(NdiscRouterFlags::OTHER),
            preference: Preference::from_bits(bytes[5] >> 3),
            router_lifetime: u16::try_from(packet.router_lifetime().secs()).unwrap_or(u16::MAX),
            reachable_time: u32::try_from(packet.reachable_time().total_millis()).unwrap_or(u32::MAX),
            retrans_time: u32::try_from(packet.retrans_time().total_millis()).unwrap_or(u32::MAX),
            source_mac: None,
            mtu: None,
            prefixes: Vec::new(),
            rdnss: None,
            dnssl: None,
        };
        let mut rest = &bytes[HEADER_LEN..];
        while !rest.is_empty() {
            let opt = NdiscOption::new_checked(rest).map_err(|_| NotAnAdvert("option length"))?;
            let len = usize::from(opt.data_len()) * 8;
            let (this, tail) = rest.split_at(len);
            match opt.option_type() {
                NdiscOptionType::Unknown(RDNSS) => {
                    ra.rdnss = Some(Rdnss::parse(this).map_err(|_| NotAnAdvert("RDNSS"))?);
                }
                NdiscOptionType::Unknown(DNSSL) => {
                    ra.dnssl = Some(Dnssl::parse(this).map_err(|_| NotAnAdvert("DNSSL"))?);
                }
                NdiscOptionType::Unknown(_)
                | NdiscOptionType::TargetLinkLayerAddr
                | NdiscOptionType::RedirectedHeader => {
                    // §4.2/§6.1.2: receivers ignore options they do not expect.
                }
                _ => match NdiscOptionRepr::parse(&NdiscOption::new_unchecked(this)) {
                    Ok(NdiscOptionRepr::SourceLinkLayerAddr(addr)) => {
                        let mut mac = [0u8; 6];
                        let raw = addr.as_bytes();
                        let n = raw.len().min(6);
                        mac[..n].copy_from_slice(&raw[..n]);
                        ra.source_mac = Some(mac);
                    }
                    Ok(NdiscOptionRepr::Mtu(mtu)) => ra.mtu = Some(mtu),
                    Ok(NdiscOptionRepr::PrefixInformation(p)) => ra.prefixes.push(PrefixInfo {
                        prefix: p.prefix,
                        len: p.prefix_len,
                        on_link: p.flags.contains(NdiscPrefixInfoFlags::ON_LINK),
                        autonomous: p.flags.contains(NdiscPrefixInfoFlags::ADDRCONF),
                        valid: u32::try_from(p.valid_lifetime.secs()).unwrap_or(u32::MAX),
                        preferred: u32::try_from(p.preferred_lifetime.secs()).unwrap_or(u32::MAX),
                    }),
                    Ok(_) => {}
                    Err(_) => return Err(NotAnAdvert("option")),
                },
            }
            rest = tail;
        }
        Ok(ra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router7_advert() -> RouterAdvert {
        RouterAdvert {
            hop_limit: 64,
            managed: false,
            other: false,
            preference: Preference::Medium,
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_time: 0,
            source_mac: Some([0x02, 0x73, 0x53, 0x00, 0xca, 0xfe]),
            mtu: Some(1500),
            prefixes: vec![PrefixInfo {
                prefix: "2a02:168:4a00::".parse().unwrap(),
                len: 64,
                on_link: true,
                autonomous: true,
                valid: 7200,
                preferred: 1800,
            }],
            rdnss: Some(Rdnss { lifetime: 1800, servers: vec!["fe80::73:53ff:fe00:cafe".parse().unwrap()] }),
            dnssl: Some(Dnssl::new(1800, &["lan".to_owned()]).unwrap()),
        }
    }

    #[test]
    fn router7s_advertisement_is_byte_exact() {
        let bytes = router7_advert().emit();
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            // ICMPv6 type 134, code 0, checksum (kernel), hop limit 64, M=0 O=0 Prf=medium,
            // router lifetime 1800, reachable 0, retrans 0
            134, 0, 0, 0, 64, 0x00, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
            // source link-layer address
            1, 1, 0x02, 0x73, 0x53, 0x00, 0xca, 0xfe,
            // MTU 1500
            5, 1, 0, 0, 0, 0, 0x05, 0xdc,
            // prefix 2a02:168:4a00::/64, L+A, valid 7200, preferred 1800
            3, 4, 64, 0xc0, 0, 0, 0x1c, 0x20, 0, 0, 0x07, 0x08, 0, 0, 0, 0,
            0x2a, 0x02, 0x01, 0x68, 0x4a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            // RDNSS fe80::73:53ff:fe00:cafe, 1800 s
            25, 3, 0, 0, 0, 0, 0x07, 0x08,
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x73, 0x53, 0xff, 0xfe, 0x00, 0xca, 0xfe,
            // DNSSL lan, 1800 s
            31, 2, 0, 0, 0, 0, 0x07, 0x08, 3, b'l', b'a', b'n', 0, 0, 0, 0,
        ];
        assert_eq!(bytes, expected);
        assert_eq!(RouterAdvert::parse(&bytes).unwrap(), router7_advert());
    }

    #[test]
    fn smoltcp_reads_our_header_and_options() {
        let bytes = router7_advert().emit();
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        match NdiscRepr::parse(&packet).unwrap() {
            NdiscRepr::RouterAdvert { hop_limit, router_lifetime, mtu, prefix_info, lladdr, .. } => {
                assert_eq!(hop_limit, 64);
                assert_eq!(router_lifetime.secs(), 1800);
                assert_eq!(mtu, Some(1500));
                assert_eq!(lladdr.unwrap().as_bytes(), [0x02, 0x73, 0x53, 0x00, 0xca, 0xfe]);
                let p = prefix_info.unwrap();
                assert!(p.is_valid_prefix_info());
                assert_eq!((p.prefix_len, p.valid_lifetime.secs(), p.preferred_lifetime.secs()), (64, 7200, 1800));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn several_prefixes_preference_and_no_optional_options_round_trip() {
        let ra = RouterAdvert {
            hop_limit: 0,
            managed: true,
            other: true,
            preference: Preference::Low,
            router_lifetime: 0,
            reachable_time: 30_000,
            retrans_time: 1_000,
            source_mac: None,
            mtu: None,
            prefixes: vec![
                PrefixInfo {
                    prefix: "2001:db8:1::".parse().unwrap(),
                    len: 64,
                    on_link: true,
                    autonomous: true,
                    valid: u32::MAX,
                    preferred: u32::MAX,
                },
                PrefixInfo {
                    prefix: "2001:db8:2::".parse().unwrap(),
                    len: 64,
                    on_link: true,
                    autonomous: true,
                    valid: 0,
                    preferred: 0,
                },
            ],
            rdnss: None,
            dnssl: None,
        };
        let bytes = ra.emit();
        assert_eq!(bytes.len(), HEADER_LEN + 2 * PIO_LEN);
        assert_eq!(bytes[5], 0b1101_1000, "M, O and preference low");
        assert_eq!(RouterAdvert::parse(&bytes).unwrap(), ra);
    }

    #[test]
    fn a_search_list_that_is_not_dns_names_is_left_out_not_sent_malformed() {
        // Found by the `advert` fuzz target: labels holding control bytes and a dot.
        #[rustfmt::skip]
        let bytes = [
            0x86, 0x00, 0x75, 0x30, 0x00, 0x00, 0x03, 0xe8, 0xc8, 0x01, 0x01, 0x02, 0x05, 0x03, 0x06, 0x04,
            0x1f, 0x03, 0x75, 0x30, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x2e, 0x01, 0x01,
            0x01, 0x00, 0x01, 0x34, 0x00, 0x01, 0x00, 0x00,
        ];
        let ra = RouterAdvert::parse(&bytes).unwrap();
        assert_eq!(ra.dnssl.as_ref().unwrap().domains.len(), 2);
        let emitted = ra.emit();
        assert_eq!(emitted.len(), HEADER_LEN, "no zeros where the option would have been");
        let again = RouterAdvert::parse(&emitted).unwrap();
        assert_eq!(again, RouterAdvert { dnssl: None, ..ra });
    }

    #[test]
    fn parse_refuses_what_is_not_a_well_formed_advertisement() {
        let good = router7_advert().emit();
        assert!(RouterAdvert::parse(&good[..15]).is_err());
        let mut solicitation = good.clone();
        solicitation[0] = 133;
        assert!(RouterAdvert::parse(&solicitation).is_err());
        let mut code = good.clone();
        code[1] = 1;
        assert!(RouterAdvert::parse(&code).is_err());
        let mut zero_len = good.clone();
        zero_len[17] = 0;
        assert!(RouterAdvert::parse(&zero_len).is_err());
        let mut cut = good;
        cut.truncate(cut.len() - 3);
        assert!(RouterAdvert::parse(&cut).is_err());
    }
}
