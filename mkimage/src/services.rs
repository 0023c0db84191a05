//! The services the image can carry, in one table: user and group ids,
//! capabilities, supplementary groups and arguments, and from it the manifest
//! init reads (`/etc/router/services.json`) and `/etc/passwd` and `/etc/group`.
//!
//! | service | uid | capabilities | why |
//! |---|---|---|---|
//! | dhcp4 | 1001 | NET_RAW, NET_BIND_SERVICE, KILL | raw DHCP socket on uplink0; UDP port 68 for the unicast renewal; SIGUSR1 to netconfigd and dnsd |
//! | dhcp6 | 1002 | NET_BIND_SERVICE, KILL | UDP port 546; SIGUSR1 to netconfigd, radvd, dnsd |
//! | dhcp4d | 1003 | NET_RAW, NET_BIND_SERVICE, KILL | raw replies to clients without an address; port 67; SIGUSR1 to dnsd |
//! | dnsd | 1004 | NET_BIND_SERVICE | port 53 |
//! | radvd | 1005 | NET_RAW | ICMPv6 raw socket |
//! | netconfigd | 1006 | NET_ADMIN, KILL | links, addresses, routes, sysctls, nftables (all netlink); SIGUSR1 to services, SIGHUP to init (`--signal-init`) |
//! | diagd | 1007 | NET_RAW | ICMP echo probes |
//! | captured | 1008 | NET_RAW | packet capture (AF_PACKET) |
//! | backupd | 1009 | DAC_READ_SEARCH, DAC_OVERRIDE, CHOWN, FOWNER | reads every service's files for a backup; a restore writes them back with their owners and modes |
//!
//! Every service also gets its own group (gid = uid) and is a member of the
//! shared group `router` (1000, init's `shared_gid`): init makes
//! `/run/router` root:router 1770, where each service creates its control
//! socket. The password file (`/etc/router/password`,
//! `/perm/router/password`, mode 0640) belongs to group `router-password`
//! (1010, init's `password_gid`), whose only members are captured and
//! backupd, which check HTTP basic auth themselves: a DHCP or DNS service
//! that parses what the LAN sends has no business reading the password.
//!
//! Deliberately not granted: dhcp4d's optional `NET_ADMIN` (a receive
//! buffer beyond `rmem_max`; without it dhcp4d asks for what the kernel
//! allows), since a DHCP server facing the LAN has no business
//! reconfiguring the network; `NET_RAW` for netconfigd, which only speaks
//! netlink.

use serde::Serialize;
use std::collections::BTreeMap;

/// The services' shared group (init's `shared_gid`): owns `/run/router`,
/// where every service creates its control socket.
pub const SHARED_GROUP: (&str, u32) = ("router", 1000);
/// The group that may read the password file (init's `password_gid`).
pub const PASSWORD_GROUP: (&str, u32) = ("router-password", 1010);

/// One service as the image carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Binary name, `/svc/<name>`.
    pub name: &'static str,
    /// User id (and its own group id).
    pub uid: u32,
    /// Capabilities without the `CAP_` prefix, raised as ambient capabilities.
    pub capabilities: &'static [&'static str],
    /// Supplementary groups besides the shared one, which every service has.
    pub groups: &'static [u32],
    /// Arguments init passes (after which it appends `--perm /perm --run /run`).
    pub args: &'static [&'static str],
}

/// Every service of router7-rs, in start order. init starts them one after
/// the other in one loop turn, each spawn waiting for the one before to exec,
/// while the ones already running take the CPU for their own start: what a LAN
/// client needs comes first — netconfigd (addresses, routes, firewall, from
/// the stored leases), dnsd (names), dhcp4d (LAN leases), dhcp4 (confirming
/// the uplink lease) — so that after a boot, and an update's kexec, they are
/// not queued behind services the LAN does not wait for. Under QEMU spawning
/// all nine took 1.3–4.3 s, but the LAN waited for netconfigd's first apply
/// (first in either order), not for dnsd: no measurable change there
/// (init/README.md "Updates").
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "netconfigd",
        uid: 1006,
        capabilities: &["NET_ADMIN", "KILL"],
        groups: &[],
        args: &["--signal-init"],
    },
    ServiceSpec { name: "dnsd", uid: 1004, capabilities: &["NET_BIND_SERVICE"], groups: &[], args: &[] },
    ServiceSpec {
        name: "dhcp4d",
        uid: 1003,
        capabilities: &["NET_RAW", "NET_BIND_SERVICE", "KILL"],
        groups: &[],
        args: &[],
    },
    ServiceSpec {
        name: "dhcp4",
        uid: 1001,
        capabilities: &["NET_RAW", "NET_BIND_SERVICE", "KILL"],
        groups: &[],
        args: &[],
    },
    ServiceSpec { name: "dhcp6", uid: 1002, capabilities: &["NET_BIND_SERVICE", "KILL"], groups: &[], args: &[] },
    ServiceSpec { name: "radvd", uid: 1005, capabilities: &["NET_RAW"], groups: &[], args: &[] },
    ServiceSpec { name: "diagd", uid: 1007, capabilities: &["NET_RAW"], groups: &[], args: &[] },
    ServiceSpec { name: "captured", uid: 1008, capabilities: &["NET_RAW"], groups: &[PASSWORD_GROUP.1], args: &[] },
    ServiceSpec {
        name: "backupd",
        uid: 1009,
        capabilities: &["DAC_READ_SEARCH", "DAC_OVERRIDE", "CHOWN", "FOWNER"],
        groups: &[PASSWORD_GROUP.1],
        args: &[],
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
    /// The services' shared group (owns `/run/router`).
    pub shared_gid: u32,
    /// The group that reads the password file.
    pub password_gid: u32,
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
                args: s.args.iter().map(|a| (*a).to_owned()).collect(),
                env: BTreeMap::new(),
                uid: s.uid,
                gid: s.uid,
                groups: std::iter::once(SHARED_GROUP.1).chain(s.groups.iter().copied()).collect(),
                capabilities: s.capabilities.iter().map(|c| (*c).to_owned()).collect(),
            })
            .collect();
        Self { shared_gid: SHARED_GROUP.1, password_gid: PASSWORD_GROUP.1, services }
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

/// `/etc/group`: root, the shared group with every service as a member, the
/// password group with its members, one group per service.
#[must_use]
pub fn group() -> String {
    let all: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
    let readers: Vec<&str> = SERVICES.iter().filter(|s| s.groups.contains(&PASSWORD_GROUP.1)).map(|s| s.name).collect();
    let mut out = format!(
        "root:x:0:\n{}:x:{}:{}\n{}:x:{}:{}\n",
        SHARED_GROUP.0,
        SHARED_GROUP.1,
        all.join(","),
        PASSWORD_GROUP.0,
        PASSWORD_GROUP.1,
        readers.join(",")
    );
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
        assert!(uids.iter().all(|&u| u != 0 && u != SHARED_GROUP.1 && u != PASSWORD_GROUP.1));
    }

    #[test]
    fn capabilities_follow_the_design_table() {
        let caps = |n: &str| spec(n).unwrap().capabilities.to_vec();
        // dhcp4 binds <lease>:68 for the unicast renewal (RFC 2131 §4.4.5).
        assert_eq!(caps("dhcp4"), ["NET_RAW", "NET_BIND_SERVICE", "KILL"]);
        assert_eq!(caps("dhcp6"), ["NET_BIND_SERVICE", "KILL"]);
        assert_eq!(caps("dhcp4d"), ["NET_RAW", "NET_BIND_SERVICE", "KILL"]);
        assert_eq!(caps("dnsd"), ["NET_BIND_SERVICE"]);
        assert_eq!(caps("radvd"), ["NET_RAW"]);
        assert_eq!(caps("netconfigd"), ["NET_ADMIN", "KILL"]);
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
        let m = Manifest::for_services(&["dhcp4", "dnsd"]);
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        let list = v["services"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!((v["shared_gid"].as_u64(), v["password_gid"].as_u64()), (Some(1000), Some(1010)));
        // Table order: dnsd before dhcp4.
        assert_eq!(list[1]["name"], "dhcp4");
        assert_eq!(
            list[0],
            serde_json::json!({"name":"dnsd","path":"/svc/dnsd","args":[],"env":{},"uid":1004,"gid":1004,
                "groups":[1000],"capabilities":["NET_BIND_SERVICE"]})
        );
    }

    /// Init makes `/run/router` root:shared-group 1770: a service outside
    /// the group cannot create its control socket there and exits (seen on
    /// the first boot of the real init: every service crash-looped with
    /// "control socket /run/router/<name>.sock: Permission denied").
    #[test]
    fn every_service_is_in_the_shared_group() {
        let m = Manifest::for_services(&SERVICES.iter().map(|s| s.name).collect::<Vec<_>>());
        assert_eq!(m.services.len(), SERVICES.len());
        for s in &m.services {
            assert_eq!(s.groups.first(), Some(&m.shared_gid), "{}", s.name);
            assert!(s.groups.iter().all(|&g| g != 0), "{}: root's group", s.name);
            // Only the services that check HTTP basic auth themselves read the password.
            let reads_password = s.groups.contains(&m.password_gid);
            assert_eq!(reads_password, ["captured", "backupd"].contains(&s.name.as_str()), "{}", s.name);
        }
    }

    /// The manifest of every service passes init's own strict parser and
    /// validation (what `init --check-manifest` runs), and init reads back
    /// what the table says.
    #[test]
    fn manifest_is_accepted_by_init() {
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        let m = init::manifest::Manifest::parse(
            std::path::Path::new("services.json"),
            &Manifest::for_services(&names).to_json(),
        )
        .unwrap();
        assert_eq!((m.shared_gid, m.password_gid), (SHARED_GROUP.1, PASSWORD_GROUP.1));
        assert_eq!(m.services.len(), SERVICES.len());
        for (got, want) in m.services.iter().zip(SERVICES) {
            assert_eq!(got.name, want.name);
            assert_eq!((got.uid, got.gid), (want.uid, want.uid));
            assert_eq!(got.capabilities, want.capabilities);
            assert_eq!(got.groups[0], SHARED_GROUP.1);
            assert_eq!(
                got.command_args(std::path::Path::new("/perm"), std::path::Path::new("/run")),
                want.args.iter().copied().chain(["--perm", "/perm", "--run", "/run"]).collect::<Vec<_>>()
            );
        }
    }

    /// netconfigd tells init about new addresses only with `--signal-init`
    /// (tests never pass it); without it the web interface would listen on
    /// lan0 only after init's 30 s refresh.
    #[test]
    fn netconfigd_signals_init_on_the_device() {
        let m = Manifest::for_services(&["netconfigd", "dhcp4"]);
        assert_eq!(m.services[0].name, "netconfigd");
        assert_eq!(m.services[0].args, ["--signal-init"]);
        assert!(m.services[1].args.is_empty());
    }

    #[test]
    fn what_the_lan_client_needs_starts_first() {
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        assert_eq!(names[..4], ["netconfigd", "dnsd", "dhcp4d", "dhcp4"]);
        let m = Manifest::for_services(&["backupd", "dhcp4", "dnsd", "netconfigd"]);
        let order: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["netconfigd", "dnsd", "dhcp4", "backupd"], "the manifest keeps the start order");
    }

    #[test]
    fn passwd_and_group_list_every_service() {
        let p = passwd();
        let g = group();
        for s in SERVICES {
            assert!(p.contains(&format!("\n{}:x:{}:{}:", s.name, s.uid, s.uid)), "{}", s.name);
            assert!(g.contains(&format!("\n{}:x:{}:\n", s.name, s.uid)), "{}", s.name);
        }
        assert!(g.contains("\nrouter:x:1000:netconfigd,dnsd,dhcp4d,dhcp4,dhcp6,radvd,diagd,captured,backupd\n"));
        assert!(g.contains("\nrouter-password:x:1010:captured,backupd\n"));
        assert!(p.starts_with("root:x:0:0:"));
    }
}
