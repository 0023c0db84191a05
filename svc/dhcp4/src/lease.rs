//! A lease as read from a DHCPACK: the configuration (address, mask, routers,
//! DNS, MTU, classless static routes, domain) and its times (options 51, 58,
//! 59), and how it is written to `/perm/dhcp4/wire/lease.json`.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use dhcproto::v4::{DhcpOption, Message, OptionCode};
use runtime::perm::{Dhcp4Lease, Route4};
use runtime::timefmt::Timestamp;

use crate::wire;

/// Lease time used when an ACK lacks option 51 (RFC 2131 table 3 makes it a
/// MUST, so this only covers broken servers): router7's 10 minutes, short
/// enough that a server that fixes itself is heard from soon.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(600);

/// Shortest lease we schedule by. A server offering less (or 0) would have us
/// renew in a tight loop; below this its lease, T1 and T2 are replaced by this
/// value and the default fractions.
pub const MIN_LEASE: Duration = Duration::from_secs(10);

/// A classless static route (option 121, RFC 3442).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClasslessRoute {
    /// Destination network (host bits cleared).
    pub destination: Ipv4Addr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Next hop; `0.0.0.0` means on-link.
    pub gateway: Ipv4Addr,
}

/// When to renew, rebind and give up, relative to when the lease was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// Option 51 (or [`DEFAULT_LEASE`]), at least [`MIN_LEASE`].
    pub lease: Duration,
    /// T1: start RENEWING.
    pub renew: Duration,
    /// T2: start REBINDING.
    pub rebind: Duration,
}

impl LeaseTimes {
    /// RFC 2131 §4.4.5: T1 defaults to 0.5 and T2 to 0.875 of the lease, and
    /// T1 < T2 < lease must hold; server values breaking that order are
    /// replaced by the defaults. `0xffffffff` ("infinity", §3.3) is kept as
    /// the 136 years it amounts to.
    #[must_use]
    pub fn new(lease: Option<u32>, t1: Option<u32>, t2: Option<u32>) -> Self {
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        let mut lease = lease.map_or(DEFAULT_LEASE, secs);
        let (mut t1, mut t2) = (t1.map(secs), t2.map(secs));
        if lease < MIN_LEASE {
            (lease, t1, t2) = (MIN_LEASE, None, None);
        }
        // A zero T1 or T2 from the server is as unordered as a too large one.
        let rebind = t2.filter(|t| !t.is_zero() && *t < lease).unwrap_or(lease * 7 / 8);
        let half = lease / 2;
        let renew = t1.filter(|t| !t.is_zero() && *t < rebind).unwrap_or(if half < rebind { half } else { rebind / 2 });
        Self { lease, renew, rebind }
    }
}

/// The configuration and times of one DHCPACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `yiaddr`.
    pub client_ip: Ipv4Addr,
    /// Option 1 (contiguous masks only).
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3.
    pub routers: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain_name: Option<String>,
    /// Option 26 (RFC 2132 §5.1: at least 68).
    pub mtu: Option<u16>,
    /// Option 121.
    pub classless_routes: Vec<ClasslessRoute>,
    /// Option 54: where RENEWING and RELEASE go.
    pub server_id: Option<Ipv4Addr>,
    /// Options 51, 58, 59.
    pub times: LeaseTimes,
}

fn contiguous(mask: Ipv4Addr) -> bool {
    let m = u32::from(mask);
    m.leading_ones() + m.trailing_zeros() == 32
}

impl Lease {
    /// Reads the lease out of an ACK; `None` when `yiaddr` is not a usable address.
    #[must_use]
    pub fn from_ack(ack: &Message) -> Option<Self> {
        let client_ip = ack.yiaddr();
        if !wire::usable_host_address(client_ip) {
            return None;
        }
        let opts = ack.opts();
        let u32_opt = |code| match opts.get(code) {
            Some(DhcpOption::AddressLeaseTime(v) | DhcpOption::Renewal(v) | DhcpOption::Rebinding(v)) => Some(*v),
            _ => None,
        };
        let subnet_mask = match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(m)) if contiguous(*m) => Some(*m),
            _ => None,
        };
        let routers = match opts.get(OptionCode::Router) {
            Some(DhcpOption::Router(r)) => r.iter().copied().filter(|ip| wire::usable_host_address(*ip)).collect(),
            _ => Vec::new(),
        };
        let dns = match opts.get(OptionCode::DomainNameServer) {
            Some(DhcpOption::DomainNameServer(d)) => {
                d.iter().copied().filter(|ip| wire::usable_host_address(*ip)).collect()
            }
            _ => Vec::new(),
        };
        let domain_name = match opts.get(OptionCode::DomainName) {
            Some(DhcpOption::DomainName(d)) => {
                let d = d.trim_end_matches('\0').trim();
                (!d.is_empty() && d.chars().all(|c| c.is_ascii_graphic())).then(|| d.to_owned())
            }
            _ => None,
        };
        let mtu = match opts.get(OptionCode::InterfaceMtu) {
            Some(DhcpOption::InterfaceMtu(m)) if *m >= 68 => Some(*m),
            _ => None,
        };
        let classless_routes = match opts.get(OptionCode::ClasslessStaticRoute) {
            Some(DhcpOption::ClasslessStaticRoute(routes)) => routes
                .iter()
                .map(|(net, gateway)| ClasslessRoute {
                    destination: net.network(),
                    prefix_len: net.prefix_len(),
                    gateway: *gateway,
                })
                .collect(),
            _ => Vec::new(),
        };
        Some(Self {
            client_ip,
            subnet_mask,
            routers,
            dns,
            domain_name,
            mtu,
            classless_routes,
            server_id: wire::server_id(ack),
            times: LeaseTimes::new(
                u32_opt(OptionCode::AddressLeaseTime),
                u32_opt(OptionCode::Renewal),
                u32_opt(OptionCode::Rebinding),
            ),
        })
    }

    /// The default gateway. RFC 3442 ("DHCP Client Behavior"): when option
    /// 121 is present the client MUST ignore option 3, so the default route is
    /// then the 121 route to 0.0.0.0/0, if there is one.
    #[must_use]
    pub fn default_router(&self) -> Option<Ipv4Addr> {
        if self.classless_routes.is_empty() {
            self.routers.first().copied()
        } else {
            self.classless_routes.iter().find(|r| r.prefix_len == 0 && !r.gateway.is_unspecified()).map(|r| r.gateway)
        }
    }

    /// The lease as `/perm/dhcp4/wire/lease.json`, granted at wall time `granted`.
    /// Unlike router7 (quirk 1), `valid_until` is the lease's expiry; the renewal
    /// time has its own field.
    #[must_use]
    pub fn to_perm(&self, granted: SystemTime) -> Dhcp4Lease {
        let at = |d: Duration| Timestamp::from_system(granted.checked_add(d).unwrap_or(granted));
        Dhcp4Lease {
            valid_until: at(self.times.lease),
            client_ip: Some(self.client_ip),
            subnet_mask: self.subnet_mask,
            router: self.default_router(),
            dns: self.dns.clone(),
            renew_after: Some(at(self.times.renew)),
            rebind_after: Some(at(self.times.rebind)),
            lease_seconds: u32::try_from(self.times.lease.as_secs()).ok(),
            server_id: self.server_id,
            mtu: self.mtu,
            classless_routes: self
                .classless_routes
                .iter()
                .map(|r| Route4 { destination: format!("{}/{}", r.destination, r.prefix_len), gateway: r.gateway })
                .collect(),
            domain_name: self.domain_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::{MessageType, Opcode};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn t1_and_t2_default_to_half_and_seven_eighths() {
        let t = LeaseTimes::new(Some(1608), None, None);
        assert_eq!((t.lease, t.renew, t.rebind), (secs(1608), secs(804), secs(1407)));
        let missing = LeaseTimes::new(None, None, None);
        assert_eq!((missing.lease, missing.renew), (DEFAULT_LEASE, DEFAULT_LEASE / 2));
    }

    #[test]
    fn server_times_are_honoured_when_ordered_and_replaced_when_not() {
        let t = LeaseTimes::new(Some(20), Some(5), Some(10));
        assert_eq!((t.renew, t.rebind), (secs(5), secs(10)));
        // T2 beyond the lease: default T2; T1 beyond T2: default T1.
        let t = LeaseTimes::new(Some(100), Some(90), Some(200));
        assert_eq!((t.renew, t.rebind), (secs(50), Duration::from_millis(87_500)));
        // A small T2 from the server with T1 missing: T1 stays below it.
        let t = LeaseTimes::new(Some(100), None, Some(10));
        assert_eq!((t.renew, t.rebind), (secs(5), secs(10)));
        // Zero T1/T2 are replaced, so the order still holds.
        let t = LeaseTimes::new(Some(100), Some(0), Some(0));
        assert_eq!((t.renew, t.rebind), (secs(50), Duration::from_millis(87_500)));
        let t = LeaseTimes::new(Some(100), None, Some(1));
        assert!(Duration::ZERO < t.renew && t.renew < t.rebind, "{t:?}");
        // A zero lease cannot make us spin.
        let t = LeaseTimes::new(Some(0), Some(0), Some(0));
        assert_eq!((t.lease, t.renew, t.rebind), (MIN_LEASE, MIN_LEASE / 2, MIN_LEASE * 7 / 8));
        // Infinity is a very long lease, still in order.
        let t = LeaseTimes::new(Some(u32::MAX), None, None);
        assert!(t.renew < t.rebind && t.rebind < t.lease);
    }

    fn ack_with(opts: Vec<DhcpOption>) -> Message {
        let mut msg = Message::default();
        msg.set_opcode(Opcode::BootReply).set_yiaddr(Ipv4Addr::new(192, 0, 2, 10));
        msg.opts_mut().insert(DhcpOption::MessageType(MessageType::Ack));
        for o in opts {
            msg.opts_mut().insert(o);
        }
        msg
    }

    /// Option 121 from its wire form (RFC 3442 §3: prefix length, significant
    /// octets of the destination, gateway).
    fn classless(bytes: &[u8]) -> DhcpOption {
        use dhcproto::{Decodable, Decoder};
        let mut raw = vec![121, u8::try_from(bytes.len()).unwrap()];
        raw.extend_from_slice(bytes);
        DhcpOption::decode(&mut Decoder::new(&raw)).unwrap()
    }

    #[test]
    fn classless_routes_replace_the_router_option() {
        let ack = ack_with(vec![
            DhcpOption::Router(vec![Ipv4Addr::new(192, 0, 2, 1)]),
            classless(&[8, 10, 192, 0, 2, 254, 0, 192, 0, 2, 2]),
        ]);
        let lease = Lease::from_ack(&ack).unwrap();
        assert_eq!(lease.default_router(), Some(Ipv4Addr::new(192, 0, 2, 2)));
        let perm = lease.to_perm(SystemTime::UNIX_EPOCH);
        assert_eq!(perm.router, Some(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(perm.classless_routes[0].destination, "10.0.0.0/8");
        // 121 without a default route: no default route at all, option 3 or not.
        let ack =
            ack_with(vec![DhcpOption::Router(vec![Ipv4Addr::new(192, 0, 2, 1)]), classless(&[8, 10, 192, 0, 2, 254])]);
        assert_eq!(Lease::from_ack(&ack).unwrap().default_router(), None);
    }

    #[test]
    fn unusable_values_are_left_out() {
        let ack = ack_with(vec![
            DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 255, 0)),
            DhcpOption::InterfaceMtu(40),
            DhcpOption::DomainNameServer(vec![Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(192, 0, 2, 53)]),
            DhcpOption::DomainName("bad name\n".into()),
        ]);
        let lease = Lease::from_ack(&ack).unwrap();
        assert_eq!((lease.subnet_mask, lease.mtu, lease.domain_name), (None, None, None));
        assert_eq!(lease.dns, vec![Ipv4Addr::new(192, 0, 2, 53)]);
        let mut zero = ack_with(vec![]);
        zero.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        assert!(Lease::from_ack(&zero).is_none());
    }

    #[test]
    fn perm_lease_has_expiry_in_valid_until_and_all_new_fields() {
        let ack = ack_with(vec![
            DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)),
            DhcpOption::AddressLeaseTime(3600),
            DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 0, 2, 1)),
            DhcpOption::InterfaceMtu(1492),
            DhcpOption::DomainName("isp.example".into()),
        ]);
        let granted = SystemTime::UNIX_EPOCH + secs(1_000_000);
        let perm = Lease::from_ack(&ack).unwrap().to_perm(granted);
        assert_eq!(perm.valid_until, Timestamp::from_system(granted + secs(3600)));
        assert_eq!(perm.renew_after, Some(Timestamp::from_system(granted + secs(1800))));
        assert_eq!(perm.rebind_after, Some(Timestamp::from_system(granted + secs(3150))));
        assert_eq!(perm.lease_seconds, Some(3600));
        assert_eq!(perm.server_id, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(perm.mtu, Some(1492));
        assert_eq!(perm.domain_name.as_deref(), Some("isp.example"));
        assert_eq!(perm.prefix_len(), 24);
    }
}
