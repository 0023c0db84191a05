//! The services the image can carry, in one table: user and group ids,
//! capabilities and supplementary groups, and from it the manifest init reads
//! (`/etc/router/services.json`) and `/etc/passwd` and `/etc/group`.
//!
//! | service | uid | capabilities | why |
//! |---|---|---|---|
//! | dhcp4 | 1001 | NET_RAW, KILL | raw DHCP socket on uplink0; SIGUSR1 to netconfigd and dnsd |
//! | dhcp6 | 1002 | NET_BIND_SERVICE, KILL | UDP port 546; SIGUSR1 to netconfigd, radvd, dnsd |
//! | dhcp4d | 1003 | NET_RAW, NET_BIND_SERVICE, KILL | raw replies to clients without an address; port 67; SIGUSR1 to dnsd |
//! | dnsd | 1004 | NET_BIND_SERVICE | port 53 |
//! | radvd | 1005 | NET_RAW | ICMPv6 raw socket |
//! | netconfigd | 1006 | NET_ADMIN, NET_RAW, KILL | links, addresses, routes, nftables; SIGUSR1 to services, SIGHUP to init |
//! | diagd | 1007 | NET_RAW | ICMP echo probes |
//! | captured | 1008 | NET_RAW | packet capture (AF_PACKET) |
//! | backupd | 1009 | DAC_READ_SEARCH, DAC_OVERRIDE, CHOWN, FOWNER | reads every service's files for a backup; a restore writes them back with their owners and modes |
//!
//! Every service also gets its own group (gid = uid). Group `router` (1000)
//! may read the password file (`/etc/router/password`, `/perm/router/password`,
//! mode 0640): captured and backupd check HTTP basic auth themselves.

use serde::Serialize;
use std::collections::BTreeMap;

/// Group that may read the password file.
pub const PASSWORD_GROUP: (&str, u32) = ("router", 1000);

/// One service as the image carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Binary name, `/svc/<name>`.
    pub name: &'static str,
    /// User id (and its own group id).
    pub uid: u32,
    /// Capabilities without the `CAP_` prefix, raised as ambient capabilities.
    pub capabilities: &'static [&'static str],
    /// Supplementary groups.
    pub groups: &'static [u32],
}

/// Every service of router7-rs, in start order (init may start them in
/// parallel; the order is only what people read first).
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec { name: "netconfigd", uid: 1006, capabilities: &["NET_ADMIN", "NET_RAW", "KILL"], groups: &[] },
    ServiceSpec { name: "dhcp4", uid: 1001, capabilities: &["NET_RAW", "KILL"], groups: &[] },
    ServiceSpec { name: "dhcp6", uid: 1002, capabilities: &["NET_BIND_SERVICE", "KILL"], groups: &[] },
    ServiceSpec { name: "dhcp4d", uid: 1003, capabilities: &["NET_RAW", "NET_BIND_SERVICE", "KILL"], groups: &[] },
    ServiceSpec { name: "dnsd", uid: 1004, capabilities: &["NET_BIND_SERVICE"], groups: &[] },
    ServiceSpec { name: "radvd", uid: 1005, capabilities: &["NET_RAW"], groups: &[] },
    ServiceSpec { name: "diagd", uid: 1007, capabilities: &["NET_RAW"], groups: &[] },
    ServiceSpec { name: "captured", uid: 1008, capabilities: &["NET_RAW"], groups: &[PASSWORD_GROUP.1] },
    ServiceSpec {
        name: "backupd",
        uid: 1009,
        capabilities: &["DAC_READ_SEARCH", "DAC_OVERRIDE", "CHOWN", "FOWNER"],
        groups: &[PASSWORD_GROUP.1],
    },
];

/// The spec of service `name`.
#[must_use]
pub fn spec(name: &str) -> Option<&'static ServiceSpec> {
    SERVICES.iter().find(|s| s.name == name)
}

/// One entry of `/etc/router/services.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry {
    /// Service name.
    pub name: String,
    /// Absolute path of the binary on the root file system.
    pub path: String,
    /// Arguments after init's own (`--perm /perm --run /run`).
    pub args: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Ambient capabilities, without `CAP_`.
    pub capabilities: Vec<String>,
}

/// `/etc/router/services.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The services init starts.
    pub services: Vec<ManifestEntry>,
}

impl Manifest {
    /// The manifest for `included` services (names from [`SERVICES`]), in the
    /// table's order.
    #[must_use]
    pub fn for_services(included: &[&str]) -> Self {
        let services = SERVICES
            .iter()
            .filter(|s| included.contains(&s.name))
            .map(|s| ManifestEntry {
                name: s.name.to_owned(),
                path: format!("/svc/{}", s.name),
                args: Vec::new(),
                env: BTreeMap::new(),
                uid: s.uid,
                gid: s.uid,
                groups: s.groups.to_vec(),
                capabilities: s.capabilities.iter().map(|c| (*c).to_owned()).collect(),
            })
            .collect();
        Self { services }
    }

    /// Pretty JSON with a final newline.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings, numbers and maps cannot fail.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// `/etc/passwd`: root and one user per service (every service, so ids stay
/// readable in `ls -l /perm` even for services an image leaves out).
#[must_use]
pub fn passwd() -> String {
    let mut out = String::from("root:x:0:0:root:/perm/root:/bin/false\n");
    for s in SERVICES {
        out.push_str(&format!("{0}:x:{1}:{1}:{0}:/perm/{0}:/bin/false\n", s.name, s.uid));
    }
    out
}

/// `/etc/group`: root, the password group with its members, one group per service.
#[must_use]
pub fn group() -> String {
    let (group_name, gid) = PASSWORD_GROUP;
    let members: Vec<&str> = SERVICES.iter().filter(|s| s.groups.contains(&gid)).map(|s| s.name).collect();
    let mut out = format!("root:x:0:\n{group_name}:x:{gid}:{}\n", members.join(","));
    for s in SERVICES {
        out.push_str(&format!("{0}:x:{1}:\n", s.name, s.uid));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_clear_of_root_and_the_password_group() {
        let mut uids: Vec<u32> = SERVICES.iter().map(|s| s.uid).collect();
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len(), SERVICES.len());
        assert!(uids.iter().all(|&u| u != 0 && u != PASSWORD_GROUP.1));
    }

    #[test]
    fn capabilities_follow_the_design_table() {
        let caps = |n: &str| spec(n).unwrap().capabilities.to_vec();
        assert_eq!(caps("dhcp4"), ["NET_RAW", "KILL"]);
        assert_eq!(caps("dhcp6"), ["NET_BIND_SERVICE", "KILL"]);
        assert_eq!(caps("dhcp4d"), ["NET_RAW", "NET_BIND_SERVICE", "KILL"]);
        assert_eq!(caps("dnsd"), ["NET_BIND_SERVICE"]);
        assert_eq!(caps("radvd"), ["NET_RAW"]);
        assert_eq!(caps("netconfigd"), ["NET_ADMIN", "NET_RAW", "KILL"]);
        assert_eq!(caps("diagd"), ["NET_RAW"]);
        assert_eq!(caps("captured"), ["NET_RAW"]);
        assert!(caps("backupd").contains(&"DAC_READ_SEARCH"));
        // Nobody gets SYS_ADMIN or the like.
        for s in SERVICES {
            for c in s.capabilities {
                assert!(
                    [
                        "NET_RAW",
                        "NET_ADMIN",
                        "NET_BIND_SERVICE",
                        "KILL",
                        "DAC_READ_SEARCH",
                        "DAC_OVERRIDE",
                        "CHOWN",
                        "FOWNER"
                    ]
                    .contains(c),
                    "{}: {c}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn manifest_has_the_agreed_fields_for_included_services_only() {
        let m = Manifest::for_services(&["dnsd", "dhcp4"]);
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        let list = v["services"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        // Table order: dhcp4 before dnsd.
        assert_eq!(list[0]["name"], "dhcp4");
        assert_eq!(
            list[1],
            serde_json::json!({"name":"dnsd","path":"/svc/dnsd","args":[],"env":{},"uid":1004,"gid":1004,
                "groups":[],"capabilities":["NET_BIND_SERVICE"]})
        );
    }

    #[test]
    fn passwd_and_group_list_every_service() {
        let p = passwd();
        let g = group();
        for s in SERVICES {
            assert!(p.contains(&format!("\n{}:x:{}:{}:", s.name, s.uid, s.uid)), "{}", s.name);
            assert!(g.contains(&format!("\n{}:x:{}:\n", s.name, s.uid)), "{}", s.name);
        }
        assert!(g.contains("\nrouter:x:1000:captured,backupd\n"));
        assert!(p.starts_with("root:x:0:0:"));
    }
}
