//! The gateway checks' routing lookups, done on the kernel's own tables as
//! `/proc/net/route` and `/proc/net/ipv6_route` show them (per network
//! namespace). Like router7's `RouteGet(8.8.8.8)`, the gateway is that of the
//! route the kernel would take towards the TCP target: the longest matching
//! prefix, then the lowest metric. Only the main table is visible there; policy
//! routing is not something this router sets up.

use std::net::{Ipv4Addr, Ipv6Addr};

const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;

/// One usable route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<A> {
    /// Output interface.
    pub dev: String,
    /// Destination.
    pub dest: A,
    /// Prefix length.
    pub prefix_len: u8,
    /// Next hop, `None` for an on-link route.
    pub gateway: Option<A>,
    /// Metric.
    pub metric: u32,
}

fn usable(flags: u32) -> bool {
    flags & RTF_UP != 0 && flags & RTF_REJECT == 0
}

/// Parses `/proc/net/route`. Lines that do not parse are skipped.
#[must_use]
pub fn parse_v4(text: &str) -> Vec<Route<Ipv4Addr>> {
    // The kernel prints each __be32 as a host-order integer, so the bytes come
    // back with to_ne_bytes.
    let addr = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(v.to_ne_bytes()));
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || f[0] == "Iface" {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if !usable(flags) {
                return None;
            }
            let mask = addr(f[7])?;
            let prefix_len = u8::try_from(u32::from(mask).count_ones()).ok()?;
            let gw = addr(f[2])?;
            Some(Route {
                dev: f[0].to_owned(),
                dest: addr(f[1])?,
                prefix_len,
                gateway: (flags & RTF_GATEWAY != 0 && !gw.is_unspecified()).then_some(gw),
                metric: f[6].parse().ok()?,
            })
        })
        .collect()
}

/// Parses `/proc/net/ipv6_route`. Lines that do not parse are skipped.
#[must_use]
pub fn parse_v6(text: &str) -> Vec<Route<Ipv6Addr>> {
    let addr = |s: &str| (s.len() == 32).then(|| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from)).flatten();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            if !usable(flags) || f[9] == "lo" {
                return None;
            }
            let gw = addr(f[4])?;
            Some(Route {
                dev: f[9].to_owned(),
                dest: addr(f[0])?,
                prefix_len: u8::from_str_radix(f[1], 16).ok().filter(|l| *l <= 128)?,
                gateway: (flags & RTF_GATEWAY != 0 && !gw.is_unspecified()).then_some(gw),
                metric: u32::from_str_radix(f[5], 16).ok()?,
            })
        })
        .collect()
}

fn contains_v4(r: &Route<Ipv4Addr>, ip: Ipv4Addr) -> bool {
    let mask = if r.prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(r.prefix_len.min(32))) };
    u32::from(ip) & mask == u32::from(r.dest) & mask
}

fn contains_v6(r: &Route<Ipv6Addr>, ip: Ipv6Addr) -> bool {
    let mask = if r.prefix_len == 0 { 0 } else { u128::MAX << (128 - u32::from(r.prefix_len.min(128))) };
    u128::from(ip) & mask == u128::from(r.dest) & mask
}

fn best<A: Clone>(routes: impl Iterator<Item = Route<A>>) -> Option<Route<A>> {
    routes.min_by(|a, b| b.prefix_len.cmp(&a.prefix_len).then(a.metric.cmp(&b.metric)))
}

/// The route the kernel would take towards `target`.
#[must_use]
pub fn lookup_v4(routes: &[Route<Ipv4Addr>], target: Ipv4Addr) -> Option<Route<Ipv4Addr>> {
    best(routes.iter().filter(|r| contains_v4(r, target)).cloned())
}

/// The route the kernel would take towards `target`.
#[must_use]
pub fn lookup_v6(routes: &[Route<Ipv6Addr>], target: Ipv6Addr) -> Option<Route<Ipv6Addr>> {
    best(routes.iter().filter(|r| contains_v6(r, target)).cloned())
}

/// The gateway towards `target`, or why there is none (a check's failure text).
pub fn gateway_v4(routes: &[Route<Ipv4Addr>], target: Ipv4Addr) -> Result<(Ipv4Addr, String), String> {
    match lookup_v4(routes, target) {
        None => Err(format!("no route to {target}")),
        Some(Route { gateway: None, dev, .. }) => Err(format!("no gateway: {target} is on-link via {dev}")),
        Some(Route { gateway: Some(gw), dev, .. }) => Ok((gw, dev)),
    }
}

/// The gateway towards `target`, or why there is none (a check's failure text).
pub fn gateway_v6(routes: &[Route<Ipv6Addr>], target: Ipv6Addr) -> Result<(Ipv6Addr, String), String> {
    match lookup_v6(routes, target) {
        None => Err(format!("no route to {target}")),
        Some(Route { gateway: None, dev, .. }) => Err(format!("no gateway: {target} is on-link via {dev}")),
        Some(Route { gateway: Some(gw), dev, .. }) => Ok((gw, dev)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // In the format of `/proc/net/route` on a little-endian machine (x86, like the apu2c4).
    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
uplink0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
uplink0\t00000000\t0200000A\t0003\t0\t0\t50\t00000000\t0\t0\t0
uplink0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
lan0\t002AA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
uplink0\t08080808\t00000000\t0201\t0\t0\t0\tFFFFFFFF\t0\t0\t0
";

    // In the format of `/proc/net/ipv6_route`: an RA default route, a reject entry, connected routes.
    const ROUTE6: &str = "\
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 uplink0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 uplink0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 uplink0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo
20010db8000100000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001 lo
";

    #[test]
    fn parses_the_ipv4_table_and_picks_the_lowest_metric_default() {
        let routes = parse_v4(ROUTE);
        assert_eq!(routes.len(), 4, "the header and the reject route are skipped");
        assert_eq!(routes[0].gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(routes[3].dest, Ipv4Addr::new(192, 168, 42, 0));
        assert_eq!(routes[3].prefix_len, 24);
        let target = Ipv4Addr::new(8, 8, 4, 4);
        assert_eq!(gateway_v4(&routes, target), Ok((Ipv4Addr::new(10, 0, 0, 2), "uplink0".into())));
    }

    #[test]
    fn longest_prefix_wins_and_on_link_or_missing_routes_fail() {
        let routes = parse_v4(ROUTE);
        assert_eq!(
            gateway_v4(&routes, Ipv4Addr::new(10, 0, 0, 99)),
            Err("no gateway: 10.0.0.99 is on-link via uplink0".into())
        );
        let no_default: Vec<_> = routes.into_iter().filter(|r| r.prefix_len > 0).collect();
        assert_eq!(gateway_v4(&no_default, Ipv4Addr::new(8, 8, 8, 8)), Err("no route to 8.8.8.8".into()));
    }

    #[test]
    fn parses_the_ipv6_table_skipping_reject_and_loopback_entries() {
        let routes = parse_v6(ROUTE6);
        assert_eq!(routes.len(), 3);
        let target: Ipv6Addr = "2001:4860:4860::8888".parse().unwrap();
        assert_eq!(gateway_v6(&routes, target), Ok(("fe80::1".parse().unwrap(), "uplink0".into())));
        let on_link: Ipv6Addr = "2001:db8:1::7".parse().unwrap();
        assert_eq!(gateway_v6(&routes, on_link), Err("no gateway: 2001:db8:1::7 is on-link via uplink0".into()));
        assert_eq!(gateway_v6(&routes[..2], target), Err("no route to 2001:4860:4860::8888".into()));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        assert!(parse_v4("Iface\nuplink0 zz 00 0003 0 0 x 00000000\n\n").is_empty());
        assert!(parse_v6("0000 00 short\n20010db8 40 x x x x x x 1 uplink0\n").is_empty());
    }
}
