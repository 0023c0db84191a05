//! IPv6 addresses with the kernel's flags, from `/proc/net/if_inet6` (per
//! network namespace): the SLAAC check (a global /64 address the kernel made
//! from a router advertisement) and the source addresses of the TCP checks.
//!
//! router7 recognised SLAAC by an EUI-64 interface identifier (`ff:fe` in the
//! middle), which misses stable-privacy addresses (RFC 7217, `addr_gen_mode` 2
//! or 3). Here an address is SLAAC when the kernel did not get it from a person
//! or a program: it lacks `IFA_F_PERMANENT`, which every `ip addr add` sets.

use std::net::Ipv6Addr;

const IFA_F_TEMPORARY: u32 = 0x01;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_TENTATIVE: u32 = 0x40;
const IFA_F_PERMANENT: u32 = 0x80;

/// One line of `/proc/net/if_inet6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr6 {
    /// The address.
    pub addr: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `IFA_F_*` flags.
    pub flags: u32,
    /// Interface name.
    pub ifname: String,
}

impl Addr6 {
    /// Global unicast (2000::/3).
    #[must_use]
    pub fn is_global(&self) -> bool {
        self.addr.segments()[0] & 0xe000 == 0x2000
    }

    /// Usable as a source: neither tentative nor failed duplicate detection.
    #[must_use]
    pub fn is_usable(&self) -> bool {
        self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0
    }

    /// Made by the kernel's SLAAC from a router advertisement (stable, not a privacy address).
    #[must_use]
    pub fn is_slaac(&self) -> bool {
        self.prefix_len == 64 && self.flags & (IFA_F_PERMANENT | IFA_F_TEMPORARY) == 0
    }
}

/// Parses `/proc/net/if_inet6`; lines that do not parse are skipped.
#[must_use]
pub fn parse(text: &str) -> Vec<Addr6> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || f[0].len() != 32 {
                return None;
            }
            Some(Addr6 {
                addr: Ipv6Addr::from(u128::from_str_radix(f[0], 16).ok()?),
                prefix_len: u8::from_str_radix(f[2], 16).ok().filter(|l| *l <= 128)?,
                flags: u32::from_str_radix(f[4], 16).ok()?,
                ifname: f[5].to_owned(),
            })
        })
        .collect()
}

/// The first usable global address of `ifname` (only SLAAC ones when `slaac_only`).
#[must_use]
pub fn global_of<'a>(addrs: &'a [Addr6], ifname: &str, slaac_only: bool) -> Option<&'a Addr6> {
    addrs.iter().find(|a| a.ifname == ifname && a.is_global() && a.is_usable() && (!slaac_only || a.is_slaac()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // In the format of /proc/net/if_inet6: a SLAAC address (flags 0x00, or 0x100
    // with mngtmpaddr), a privacy address (0x01), a static one (0x80), a
    // tentative one (0x40), link-local and loopback.
    const IF_INET6: &str = "\
20010db8000100000000000000000005 03 40 00 80 uplink0
20010db8000100001111222233334444 03 40 00 01 uplink0
20010db800010000a8bbccfffedd0001 03 40 00 00 uplink0
fe80000000000000a8bbccfffedd0001 03 40 20 80 uplink0
20010db8000200000000000000000001 04 40 00 40 lan0
20010db8000300000000000000000001 04 40 00 80 lan0
00000000000000000000000000000001 01 80 10 80       lo
";

    #[test]
    fn finds_the_slaac_address_and_not_static_or_privacy_ones() {
        let addrs = parse(IF_INET6);
        assert_eq!(addrs.len(), 7);
        let slaac = global_of(&addrs, "uplink0", true).unwrap();
        assert_eq!(slaac.addr, "2001:db8:1:0:a8bb:ccff:fedd:1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(global_of(&addrs, "uplink0", false).unwrap().addr, "2001:db8:1::5".parse::<Ipv6Addr>().unwrap());
        assert_eq!(global_of(&addrs, "lo", false), None);
    }

    #[test]
    fn stable_privacy_slaac_counts_and_tentative_addresses_do_not() {
        let addrs = parse("20010db800010000c0ffee0012345678 03 40 00 100 uplink0\n");
        assert!(global_of(&addrs, "uplink0", true).is_some(), "RFC 7217 addresses have no ff:fe");
        let lan = parse(IF_INET6);
        assert_eq!(global_of(&lan, "lan0", false).unwrap().addr, "2001:db8:3::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(global_of(&lan, "lan0", true), None);
    }

    #[test]
    fn garbage_is_skipped() {
        assert!(parse("zz 03 40 00 00 uplink0\n2001 03 40 00 00 x\n\n").is_empty());
    }
}
