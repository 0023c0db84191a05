//! The check tree: router7's shape and names, one fixed list in depth-first
//! pre-order (so "the first error" is the first failing entry), each check with
//! its parent and the probe the shell runs for it.
//!
//! ```text
//! link/uplink0                     uplink is IFF_UP and IFF_RUNNING
//! ├─ dhcp4                         dhcp4's lease.json: valid_until > now
//! │  └─ ping4: $default-gateway    echo to the IPv4 gateway of the route to the tcp4 target
//! │     └─ tcp4/<target>           TCP handshake
//! ├─ dhcp6                         dhcp6's lease.json: valid_until > now
//! │  └─ tcp6/<target> from lan0    TCP from lan0's global address (the delegated prefix is routed)
//! ├─ ra6/uplink0                   a global /64 SLAAC address on the uplink (from an RA)
//! │  └─ ping6gw: $default-gateway  echo to the IPv6 gateway of the route to the tcp6 target
//! │     └─ tcp6/<target>           TCP from the uplink's SLAAC address
//! └─ ping6: ff02::2%uplink0        some router on the uplink answers an all-routers echo
//! ```

use std::net::{SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use crate::config::Config;

/// Which check (also its stable id in metrics, conditions and JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckId {
    /// The uplink is up.
    Link,
    /// dhcp4's lease is valid.
    Dhcp4,
    /// The IPv4 gateway answers.
    Ping4Gateway,
    /// TCP over IPv4.
    Tcp4,
    /// dhcp6's lease is valid.
    Dhcp6,
    /// TCP over IPv6 from the LAN's delegated prefix.
    Tcp6Lan,
    /// SLAAC on the uplink.
    Slaac,
    /// The IPv6 gateway answers.
    Ping6Gateway,
    /// TCP over IPv6 from the uplink.
    Tcp6,
    /// All-routers multicast echo.
    Ping6AllRouters,
}

impl CheckId {
    /// Every check, in depth-first pre-order.
    pub const ALL: [Self; 10] = [
        Self::Link,
        Self::Dhcp4,
        Self::Ping4Gateway,
        Self::Tcp4,
        Self::Dhcp6,
        Self::Tcp6Lan,
        Self::Slaac,
        Self::Ping6Gateway,
        Self::Tcp6,
        Self::Ping6AllRouters,
    ];

    /// Position in [`CheckId::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stable machine name.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Dhcp4 => "dhcp4",
            Self::Ping4Gateway => "ping4_gateway",
            Self::Tcp4 => "tcp4",
            Self::Dhcp6 => "dhcp6",
            Self::Tcp6Lan => "tcp6_lan",
            Self::Slaac => "slaac",
            Self::Ping6Gateway => "ping6_gateway",
            Self::Tcp6 => "tcp6",
            Self::Ping6AllRouters => "ping6_all_routers",
        }
    }

    /// The check it depends on.
    #[must_use]
    pub fn parent(self) -> Option<Self> {
        match self {
            Self::Link => None,
            Self::Dhcp4 | Self::Dhcp6 | Self::Slaac | Self::Ping6AllRouters => Some(Self::Link),
            Self::Ping4Gateway => Some(Self::Dhcp4),
            Self::Tcp4 => Some(Self::Ping4Gateway),
            Self::Tcp6Lan => Some(Self::Dhcp6),
            Self::Ping6Gateway => Some(Self::Slaac),
            Self::Tcp6 => Some(Self::Ping6Gateway),
        }
    }

    /// The checks that depend on it directly, in order.
    pub fn children(self) -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(move |c| c.parent() == Some(self))
    }

    /// Depth in the tree (the link is 0).
    #[must_use]
    pub fn depth(self) -> usize {
        std::iter::successors(self.parent(), |p| p.parent()).count()
    }

    /// Which part of connectivity it is about.
    #[must_use]
    pub fn family(self) -> Family {
        match self {
            Self::Link => Family::Link,
            Self::Dhcp4 | Self::Ping4Gateway | Self::Tcp4 => Family::V4,
            _ => Family::V6,
        }
    }
}

/// Which part of connectivity a check is about; each has a control-API condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The uplink itself.
    Link,
    /// IPv4.
    V4,
    /// IPv6 (counts towards health as [`crate::config::Ipv6Mode`] says).
    V6,
}

impl Family {
    /// Every family.
    pub const ALL: [Self; 3] = [Self::Link, Self::V4, Self::V6];

    /// The condition type of the control API.
    #[must_use]
    pub fn condition(self) -> &'static str {
        match self {
            Self::Link => "Link",
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }
}

/// What the shell does to run a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Look at the link's flags and counters.
    Link {
        /// The uplink.
        ifname: String,
    },
    /// Read dhcp4's lease file.
    Lease4,
    /// Read dhcp6's lease file.
    Lease6,
    /// Find the IPv4 gateway of the route towards `toward` and ping it.
    Ping4Gateway {
        /// Where the route should lead (the tcp4 target).
        toward: std::net::Ipv4Addr,
    },
    /// Find the IPv6 gateway of the route towards `toward` and ping it.
    Ping6Gateway {
        /// Where the route should lead (the tcp6 target).
        toward: std::net::Ipv6Addr,
    },
    /// Ping `ff02::2` on `ifname`; the first reply from another host passes.
    Ping6AllRouters {
        /// The uplink.
        ifname: String,
    },
    /// Look for a global /64 SLAAC address on `ifname`.
    Slaac {
        /// The uplink.
        ifname: String,
    },
    /// Connect over IPv4.
    Tcp4 {
        /// Where to.
        target: SocketAddrV4,
    },
    /// Connect over IPv6 from a global address of `source_ifname` (SLAAC on
    /// the uplink, the delegated prefix on the LAN).
    Tcp6 {
        /// Where to.
        target: SocketAddrV6,
        /// Whose address to connect from.
        source_ifname: String,
        /// Only a SLAAC address of that interface will do (the uplink's).
        slaac_only: bool,
    },
}

/// The tree for one configuration: names and probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    names: Vec<String>,
    probes: Vec<Probe>,
    timeouts: Vec<Duration>,
}

/// How long a check that only looks at local state may take before it counts
/// as failed (the shell answers these at once; this only guards against a bug).
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(1);

impl Tree {
    /// The tree for `config`, the uplink and the LAN interface.
    #[must_use]
    pub fn new(config: &Config, uplink: &str, lan: &str) -> Self {
        let mut names = Vec::new();
        let mut probes = Vec::new();
        let mut timeouts = Vec::new();
        for id in CheckId::ALL {
            let (name, probe, timeout) = match id {
                CheckId::Link => (format!("link/{uplink}"), Probe::Link { ifname: uplink.to_owned() }, LOCAL_TIMEOUT),
                CheckId::Dhcp4 => ("dhcp4".to_owned(), Probe::Lease4, LOCAL_TIMEOUT),
                CheckId::Ping4Gateway => (
                    "ping4: $default-gateway".to_owned(),
                    Probe::Ping4Gateway { toward: *config.tcp4_target.ip() },
                    config.ping_timeout,
                ),
                CheckId::Tcp4 => (
                    format!("tcp4/{}", config.tcp4_target),
                    Probe::Tcp4 { target: config.tcp4_target },
                    config.tcp_timeout,
                ),
                CheckId::Dhcp6 => ("dhcp6".to_owned(), Probe::Lease6, LOCAL_TIMEOUT),
                CheckId::Tcp6Lan => (
                    format!("tcp6/{} from {lan}", config.tcp6_target),
                    Probe::Tcp6 { target: config.tcp6_target, source_ifname: lan.to_owned(), slaac_only: false },
                    config.tcp_timeout,
                ),
                CheckId::Slaac => (format!("ra6/{uplink}"), Probe::Slaac { ifname: uplink.to_owned() }, LOCAL_TIMEOUT),
                CheckId::Ping6Gateway => (
                    "ping6gw: $default-gateway".to_owned(),
                    Probe::Ping6Gateway { toward: *config.tcp6_target.ip() },
                    config.ping_timeout,
                ),
                CheckId::Tcp6 => (
                    format!("tcp6/{}", config.tcp6_target),
                    Probe::Tcp6 { target: config.tcp6_target, source_ifname: uplink.to_owned(), slaac_only: true },
                    config.tcp_timeout,
                ),
                CheckId::Ping6AllRouters => (
                    format!("ping6: ff02::2%{uplink}"),
                    Probe::Ping6AllRouters { ifname: uplink.to_owned() },
                    config.ping_timeout,
                ),
            };
            names.push(name);
            probes.push(probe);
            timeouts.push(timeout);
        }
        Self { names, probes, timeouts }
    }

    /// The check's display name (router7's, e.g. `link/uplink0`).
    #[must_use]
    pub fn name(&self, id: CheckId) -> &str {
        &self.names[id.index()]
    }

    /// What the shell runs.
    #[must_use]
    pub fn probe(&self, id: CheckId) -> &Probe {
        &self.probes[id.index()]
    }

    /// How long it may take.
    #[must_use]
    pub fn timeout(&self, id: CheckId) -> Duration {
        self.timeouts[id.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_depth_first_pre_order() {
        // Every check comes after its parent, and a subtree is contiguous.
        fn preorder(id: CheckId, out: &mut Vec<CheckId>) {
            out.push(id);
            for c in id.children() {
                preorder(c, out);
            }
        }
        let mut walk = Vec::new();
        preorder(CheckId::Link, &mut walk);
        assert_eq!(walk, CheckId::ALL.to_vec());
        for (i, id) in CheckId::ALL.iter().enumerate() {
            assert_eq!(id.index(), i);
        }
    }

    #[test]
    fn names_follow_router7() {
        let t = Tree::new(&Config::default(), "uplink0", "lan0");
        let names: Vec<&str> = CheckId::ALL.iter().map(|&c| t.name(c)).collect();
        assert_eq!(
            names,
            [
                "link/uplink0",
                "dhcp4",
                "ping4: $default-gateway",
                "tcp4/8.8.8.8:443",
                "dhcp6",
                "tcp6/[2001:4860:4860::8888]:443 from lan0",
                "ra6/uplink0",
                "ping6gw: $default-gateway",
                "tcp6/[2001:4860:4860::8888]:443",
                "ping6: ff02::2%uplink0",
            ]
        );
        assert_eq!(CheckId::Tcp6.depth(), 3);
        assert_eq!(t.timeout(CheckId::Tcp4), Duration::from_secs(3));
        assert_eq!(t.timeout(CheckId::Ping6AllRouters), Duration::from_secs(2));
    }
}
