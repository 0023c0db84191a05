//! Facts about the network interfaces of the caller's network namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

pub use crate::sys::{InterfaceAddr, LinkInfo};

/// Every address of every interface.
pub fn addrs() -> io::Result<Vec<InterfaceAddr>> {
    crate::sys::interface_addrs()
}

/// Every link (interface) with its flags and packet counters.
pub fn links() -> io::Result<Vec<LinkInfo>> {
    crate::sys::interface_links()
}

/// The link named `name`, if it exists.
pub fn link(name: &str) -> io::Result<Option<LinkInfo>> {
    Ok(links()?.into_iter().find(|l| l.ifname == name))
}

/// A throwaway socket for interface ioctls in the caller's namespace.
fn ioctl_socket() -> io::Result<rustix::fd::OwnedFd> {
    Ok(rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None)?)
}

/// The index of interface `name`.
pub fn index(name: &str) -> io::Result<u32> {
    let sock = ioctl_socket()?;
    rustix::net::netdevice::name_to_index(sock.as_fd(), name)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("interface {name}: {e}")))
}

/// The hardware address of interface `name`.
pub fn mac(name: &str) -> io::Result<[u8; 6]> {
    let sock = ioctl_socket()?;
    crate::sys::interface_mac(sock.as_fd(), name)
        .map_err(|e| io::Error::new(e.kind(), format!("interface {name}: {e}")))
}

/// Brings interface `name` up (init does this for `lo`).
pub fn set_up(name: &str) -> io::Result<()> {
    let sock = ioctl_socket()?;
    crate::sys::set_interface_up(sock.as_fd(), name)
        .map_err(|e| io::Error::new(e.kind(), format!("interface {name}: {e}")))
}

/// The MTU of interface `name`.
pub fn mtu(name: &str) -> io::Result<u32> {
    let sock = ioctl_socket()?;
    crate::sys::interface_mtu(sock.as_fd(), name)
        .map_err(|e| io::Error::new(e.kind(), format!("interface {name}: {e}")))
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
#[must_use]
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`).
#[must_use]
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Whether an address is private in router7's sense: loopback, RFC 1918 / ULA,
/// link-local, or 100.64.0.0/10 (CGNAT / tailnets).
#[must_use]
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64)
        }
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// The addresses private listeners bind (as `(address, interface index)`): of
/// every up interface not named `uplink*`, the private addresses ([`is_private`]),
/// plus all addresses of the LAN interface `lan` — its global `<prefix>::1`
/// serves the LAN too, and the firewall keeps the uplink away from it.
pub fn private_addrs(lan: &str) -> io::Result<Vec<(IpAddr, u32)>> {
    Ok(select_private(&addrs()?, lan))
}

fn select_private(all: &[InterfaceAddr], lan: &str) -> Vec<(IpAddr, u32)> {
    let mut out: Vec<(IpAddr, u32)> = all
        .iter()
        .filter(|a| a.up && !a.ifname.starts_with("uplink"))
        .filter(|a| a.ifname == lan || is_private(a.addr))
        .map(|a| (a.addr, a.ifindex))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The first IPv4 address of interface `name`.
pub fn ipv4_of(name: &str) -> io::Result<Option<(Ipv4Addr, u8)>> {
    Ok(addrs()?.into_iter().find_map(|a| match a.addr {
        IpAddr::V4(v4) if a.ifname == name => Some((v4, a.prefix_len)),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ifname: &str, addr: &str, up: bool, loopback: bool) -> InterfaceAddr {
        InterfaceAddr { ifname: ifname.into(), ifindex: 1, addr: addr.parse().unwrap(), prefix_len: 24, up, loopback }
    }

    #[test]
    fn private_addresses_never_include_the_uplink_or_down_interfaces() {
        let all = [
            a("lo", "127.0.0.1", true, true),
            a("uplink0", "85.195.207.62", true, false),
            a("uplink0", "fe80::1", true, false),
            a("lan0", "192.168.42.1", true, false),
            a("lan0", "2a02:168:4a00::1", true, false),
            a("eth9", "10.0.0.1", false, false),
            a("wg0", "10.22.100.1", true, false),
            a("wg0", "2001:db8::7", true, false),
        ];
        let got: Vec<String> = select_private(&all, "lan0").into_iter().map(|(ip, _)| ip.to_string()).collect();
        assert_eq!(got, ["10.22.100.1", "127.0.0.1", "192.168.42.1", "2a02:168:4a00::1"]);
    }

    #[test]
    fn classifies_private_ranges() {
        for p in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
            "::1",
        ] {
            assert!(is_private(p.parse().unwrap()), "{p}");
        }
        for p in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "2a02:168:4a00::1"] {
            assert!(!is_private(p.parse().unwrap()), "{p}");
        }
    }

    #[test]
    fn parses_and_formats_macs() {
        assert_eq!(parse_mac("02:73:53:00:CA:fe"), Some([2, 0x73, 0x53, 0, 0xca, 0xfe]));
        assert_eq!(format_mac([2, 0x73, 0x53, 0, 0xca, 0xfe]), "02:73:53:00:ca:fe");
        for bad in ["", "02:73:53:00:ca", "02:73:53:00:ca:fe:01", "0g:73:53:00:ca:fe", "2:73:53:00:ca:fe"] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn loopback_has_an_index_and_a_zero_mac() {
        assert!(index("lo").unwrap() > 0);
        assert_eq!(mac("lo").unwrap(), [0; 6]);
        assert!(index("does-not-exist0").is_err());
    }

    #[test]
    fn loopback_is_a_running_link_and_a_missing_one_is_none() {
        let lo = link("lo").unwrap().expect("every namespace has lo");
        assert!(lo.up && lo.ifindex == index("lo").unwrap());
        assert_eq!(link("does-not-exist0").unwrap(), None);
    }
}
