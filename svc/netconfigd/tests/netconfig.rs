//! The real netconfigd in a namespace, modelled on router7's TestNetconfig,
//! TestNetconfigBridges and TestDHCPv4OldAddressDeconfigured: golden inputs in,
//! then links, addresses and routes read back with `ip -j`, the ruleset with
//! `nft`, counters carried across a rebuild, a second apply that changes
//! nothing, a changed lease, bridges, and configuration errors that leave the
//! last good state in place. (No `dummy` module here: veth pairs stand in.)
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{
    Daemon, GOLDEN_CONFIG, GOLDEN_DHCP4, GOLDEN_DHCP6, GOLDEN_INTERFACES, counter, golden_forwardings, golden_table,
    ip_json, nft_json, nft_table, veth_link, write,
};
use serde_json::Value;
use testbed::{Netns, TempDir};

const TOOLS: &[&str] = &["nft", "ping"];

/// router7's TestNetconfig namespace: `dummy0` (…ca:fe), `lan0` (…b0:0c) and a
/// MAC-less-by-config `wg0`, all down; their peers parked in a second namespace.
fn testnetconfig_links() -> (Netns, Netns) {
    let ns = Netns::new("ncfg");
    let park = Netns::new("park");
    veth_link(&ns, "dummy0", "02:73:53:00:ca:fe", &park, "p-dummy0");
    veth_link(&ns, "lan0", "02:73:53:00:b0:0c", &park, "p-lan0");
    veth_link(&ns, "wg0", "02:73:53:00:77:01", &park, "p-wg0");
    (ns, park)
}

fn golden_perm(dir: &TempDir) {
    let perm = dir.path().join("perm");
    write(&perm, "interfaces.json", GOLDEN_INTERFACES);
    write(&perm, "portforwardings.json", &golden_forwardings(false));
    write(&perm, "dhcp4/wire/lease.json", GOLDEN_DHCP4);
    write(&perm, "dhcp6/wire/lease.json", GOLDEN_DHCP6);
    write(&perm, "netconfigd/config.json", GOLDEN_CONFIG);
}

fn link<'a>(links: &'a Value, name: &str) -> &'a Value {
    links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == name)
        .unwrap_or_else(|| panic!("no link {name} in {links:#}"))
}

fn addrs_of(ns: &Netns, dev: &str) -> Vec<String> {
    let j = ip_json(ns, &["addr", "show", "dev", dev]);
    j[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let brd = a["broadcast"].as_str().map(|b| format!(" brd {b}")).unwrap_or_default();
            format!("{}/{}{brd} scope {}", a["local"].as_str().unwrap(), a["prefixlen"], a["scope"].as_str().unwrap())
        })
        .collect()
}

/// `ip -j route show` lines as `ip route` would print their essentials.
fn routes(ns: &Netns, args: &[&str]) -> Vec<String> {
    let (family, rest) = match args.first() {
        Some(&"-6") => (vec!["-6"], &args[1..]),
        _ => (vec![], args),
    };
    let mut full = family;
    full.extend_from_slice(&["route", "show"]);
    full.extend_from_slice(rest);
    let j = ip_json(ns, &full);
    j.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut s = String::new();
            if let Some(t) = r["type"].as_str() {
                s.push_str(t);
                s.push(' ');
            }
            s.push_str(r["dst"].as_str().unwrap());
            for (key, word) in
                [("gateway", "via"), ("dev", "dev"), ("protocol", "proto"), ("scope", "scope"), ("prefsrc", "src")]
            {
                if let Some(v) = r[key].as_str() {
                    s.push_str(&format!(" {word} {v}"));
                }
            }
            s
        })
        .collect()
}

#[test]
fn testnetconfig_golden_inputs_become_kernel_state() {
    if !testbed::require("testnetconfig_golden_inputs_become_kernel_state", TOOLS) {
        return;
    }
    let (ns, _park) = testnetconfig_links();
    let dir = TempDir::new("ncfg");
    golden_perm(&dir);
    let d = Daemon::start(&ns, dir, &[]);
    let status = d.wait_apply(0, "Applied");
    for step in ["Config", "Links", "Addresses", "Routes", "Sysctls", "Firewall"] {
        assert_eq!(Daemon::condition(&status, step)["status"], "True", "{step}: {status:#}");
    }

    // Links: renamed by MAC, spoofed MAC, MTU, up.
    let links = ip_json(&ns, &["link", "show"]);
    let up = link(&links, "uplink0");
    assert_eq!(up["address"], "02:73:53:00:ca:fe");
    assert!(up["flags"].as_array().unwrap().contains(&Value::from("UP")), "{up:#}");
    let lan = link(&links, "lan0");
    assert_eq!((lan["address"].as_str(), lan["mtu"].as_u64()), (Some("02:73:53:00:b0:aa"), Some(1492)));
    assert!(!links.as_array().unwrap().iter().any(|l| l["ifname"] == "dummy0"));

    // Addresses.
    assert!(addrs_of(&ns, "uplink0").contains(&"85.195.207.62/25 brd 85.195.207.127 scope global".to_owned()));
    let lan_addrs = addrs_of(&ns, "lan0");
    for want in ["192.168.42.1/24 brd 192.168.42.255 scope global", "2a02:168:4a00::1/64 scope global"] {
        assert!(lan_addrs.contains(&want.to_owned()), "{want} not in {lan_addrs:?}");
    }
    let wg = addrs_of(&ns, "wg0");
    assert!(
        wg.contains(&"10.22.100.1/24 brd 10.22.100.255 scope global".to_owned())
            && wg.contains(&"fe80::1/64 scope link".to_owned()),
        "{wg:?}"
    );

    // Routes: router7's three uplink routes exactly, the extra route, the unreachable prefix.
    assert_eq!(
        routes(&ns, &["dev", "uplink0"]),
        [
            "default via 85.195.207.1 proto dhcp src 85.195.207.62",
            "85.195.207.0/25 proto kernel scope link src 85.195.207.62",
            "85.195.207.1 proto dhcp scope link src 85.195.207.62",
        ]
    );
    let v6 = routes(&ns, &["-6"]);
    assert!(v6.contains(&"unreachable 2a02:168:4a00::/48 dev lo proto static".to_owned()), "{v6:?}");
    let wg_routes = routes(&ns, &["-6", "dev", "wg0"]);
    assert!(wg_routes.contains(&"2a02:168:4a00:22::/64 via fe80::2 proto static".to_owned()), "{wg_routes:?}");

    // Sysctls, resolv.conf.
    for (key, want) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("net.ipv6.conf.uplink0.accept_ra", "2"),
        ("net.ipv4.icmp_ratelimit", "0"),
    ] {
        let out = ns.exec_ok("sysctl", &["-n", key]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "{key}");
    }
    assert_eq!(std::fs::read_to_string(&d.resolv).unwrap(), "nameserver 192.168.42.1\n");

    // The ruleset: what nft lists is exactly the reviewed golden file.
    for family in ["ip", "ip6"] {
        assert_eq!(nft_table(&ns, family), golden_table(family), "table {family} router7");
    }
    let j = nft_json(&ns);
    assert!(j["nftables"].as_array().unwrap().iter().any(|i| i["counter"]["name"] == "input_dropped"), "{j:#}");
}

#[test]
fn second_apply_changes_nothing_and_counters_survive_a_rebuild() {
    if !testbed::require("second_apply_changes_nothing_and_counters_survive_a_rebuild", TOOLS) {
        return;
    }
    let (ns, _park) = testnetconfig_links();
    let dir = TempDir::new("ncfg2");
    golden_perm(&dir);
    let d = Daemon::start(&ns, dir, &[]);
    d.wait_apply(0, "Applied");

    // Traffic through the input and output hooks of both families, so the counters move.
    ns.exec_ok("ping", &["-c", "3", "-i", "0.2", "-W", "2", "192.168.42.1"]);
    ns.exec_ok("ping", &["-6", "-c", "2", "-i", "0.2", "-W", "2", "2a02:168:4a00::1"]);
    let input4 = counter(&ns, "ip", "inputc");
    let output6 = counter(&ns, "ip6", "outputc");
    assert!(input4.0 >= 3 && output6.0 >= 2, "{input4:?} {output6:?}");

    // A second apply: nothing at all changes, not even rule handles.
    let snapshot = |ns: &Netns| {
        let nft = ns.exec_ok("nft", &["-a", "list", "ruleset"]).stdout;
        let text = String::from_utf8(nft).unwrap();
        let no_counts: String =
            text.lines().filter(|l| !l.trim_start().starts_with("packets")).collect::<Vec<_>>().join("\n");
        (no_counts, ip_json(ns, &["addr"]), ip_json(ns, &["route", "show", "table", "all"]), ip_json(ns, &["link"]))
    };
    let before = snapshot(&ns);
    let n = d.applies();
    d.peer.signal("USR1");
    let status = d.wait_apply(n, "Applied");
    assert_eq!(status["changes"], Value::Array(vec![]), "{status:#}");
    for step in ["Links", "Addresses", "Routes", "Sysctls", "Firewall"] {
        assert_eq!(Daemon::condition(&status, step)["reason"], "UpToDate", "{step}");
    }
    let after = snapshot(&ns);
    assert_eq!(before.0, after.0, "the ruleset (with handles) is untouched");
    assert_eq!(before.1, after.1);
    assert_eq!(before.2, after.2);
    assert_eq!(before.3, after.3);

    // router7's VerifyAdditionalNftables: one more forwarding changes only the
    // portforwardings chain; the counters carry over.
    let ip6_handle_before = table_handle(&ns, "ip6");
    let ip_handle_before = table_handle(&ns, "ip");
    write(&d.perm, "portforwardings.json", &golden_forwardings(true));
    let n = d.applies();
    d.reload();
    let status = d.wait_apply(n, "Applied");
    assert_eq!(Daemon::condition(&status, "Firewall")["reason"], "Applied");
    assert_ne!(table_handle(&ns, "ip"), ip_handle_before, "the ip table was rebuilt");
    assert_eq!(table_handle(&ns, "ip6"), ip6_handle_before, "the ip6 table was left alone");
    let now = nft_table(&ns, "ip");
    let golden = golden_table("ip");
    let added = "ip daddr != 127.0.0.0/8 ip daddr != 192.168.42.0/24 fib daddr type local tcp dport 8045 dnat to 192.168.42.22:8045";
    let diff: Vec<&str> = now.lines().filter(|l| !golden.lines().any(|g| g == *l)).collect();
    assert_eq!(diff.len(), 2, "only the new rule and the fingerprint differ: {diff:?}");
    assert!(diff.iter().any(|l| l.trim() == added), "{diff:?}");
    assert!(diff.iter().any(|l| l.trim().starts_with("comment \"managed by netconfigd; fingerprint")), "{diff:?}");
    let carried = counter(&ns, "ip", "inputc");
    assert!(carried.0 >= input4.0 && carried.1 >= input4.1, "counters carried over: {input4:?} -> {carried:?}");

    // /metrics on the private address reports them as monotonic counters.
    let metrics = ns.enter(|| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&"192.168.42.1:8066".parse().unwrap(), Duration::from_secs(5))
            .unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    let line = metrics.lines().find(|l| l.starts_with("nftables_filter_input_packets_total{family=\"ipv4\"}")).unwrap();
    let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= carried.0, "{line}");
    assert!(metrics.contains("netconfigd_applies_total 3"), "{metrics}");
    let promtool = runtime::testing::tool("promtool", "second_apply_changes_nothing_and_counters_survive_a_rebuild");
    if promtool.is_some() {
        let body = metrics.split("\r\n\r\n").nth(1).unwrap();
        runtime::testing::promtool_check(body).unwrap();
    }
}

fn table_handle(ns: &Netns, family: &str) -> u64 {
    let j = nft_json(ns);
    j["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["table"]["family"] == family && i["table"]["name"] == "router7")
        .and_then(|i| i["table"]["handle"].as_u64())
        .unwrap()
}

#[test]
fn a_changed_lease_replaces_the_old_address() {
    if !testbed::require("a_changed_lease_replaces_the_old_address", TOOLS) {
        return;
    }
    let (ns, _park) = testnetconfig_links();
    let dir = TempDir::new("ncfg3");
    let perm = dir.path().join("perm");
    write(&perm, "interfaces.json", GOLDEN_INTERFACES);
    write(&perm, "dhcp4/wire/lease.json", GOLDEN_DHCP4);
    let d = Daemon::start(&ns, dir, &[]);
    d.wait_apply(0, "Applied");
    write(
        &d.perm,
        "dhcp4/wire/lease.json",
        &GOLDEN_DHCP4.replace("85.195.207.62", "85.195.199.99").replace("85.195.207.1\"", "85.195.199.1\""),
    );
    let n = d.applies();
    d.peer.signal("USR1");
    d.wait_apply(n, "Applied");
    let addrs = addrs_of(&ns, "uplink0");
    assert!(addrs.contains(&"85.195.199.99/25 brd 85.195.199.127 scope global".to_owned()), "{addrs:?}");
    assert!(!addrs.iter().any(|a| a.starts_with("85.195.207.62")), "the old address is gone: {addrs:?}");
    assert_eq!(
        routes(&ns, &["dev", "uplink0"]),
        [
            "default via 85.195.199.1 proto dhcp src 85.195.199.99",
            "85.195.199.0/25 proto kernel scope link src 85.195.199.99",
            "85.195.199.1 proto dhcp scope link src 85.195.199.99",
        ]
    );
}

#[test]
fn bridges_are_created_with_their_members() {
    if !testbed::require("bridges_are_created_with_their_members", TOOLS) {
        return;
    }
    let ns = Netns::new("nbr");
    let park = Netns::new("pbr");
    veth_link(&ns, "dummy0", "02:73:53:00:ca:fe", &park, "p-dummy0");
    veth_link(&ns, "eth0", "02:73:53:00:b0:0c", &park, "p-eth0");
    let dir = TempDir::new("nbr");
    write(
        &dir.path().join("perm"),
        "interfaces.json",
        r#"{"bridges":[{"name":"lan0","interface_hardware_addrs":["02:73:53:00:b0:0c"]}],
            "interfaces":[{"hardware_addr":"02:73:53:00:ca:fe","name":"uplink0"},
                          {"spoof_hardware_addr":"02:73:53:00:b0:aa","name":"lan0","addr":"192.168.42.1/24"}]}"#,
    );
    let d = Daemon::start(&ns, dir, &[]);
    d.wait_apply(0, "Applied");
    let bridge = ip_json(&ns, &["-d", "link", "show", "dev", "lan0"]);
    assert_eq!(bridge[0]["linkinfo"]["info_kind"], "bridge", "{bridge:#}");
    assert_eq!(bridge[0]["address"], "02:73:53:00:b0:aa");
    assert!(addrs_of(&ns, "lan0").contains(&"192.168.42.1/24 brd 192.168.42.255 scope global".to_owned()));
    let members = ip_json(&ns, &["link", "show", "master", "lan0"]);
    assert_eq!(members.as_array().unwrap().iter().map(|l| l["ifname"].clone()).collect::<Vec<_>>(), ["eth0"]);
    let n = d.applies();
    d.reload();
    let status = d.wait_apply(n, "Applied");
    assert_eq!(status["changes"], Value::Array(vec![]), "{status:#}");
}

#[test]
fn invalid_configuration_is_reported_and_the_last_good_state_stays() {
    if !testbed::require("invalid_configuration_is_reported_and_the_last_good_state_stays", TOOLS) {
        return;
    }
    let (ns, _park) = testnetconfig_links();
    let dir = TempDir::new("ncfg4");
    // No interfaces.json yet: netconfigd waits instead of crashing.
    let d = Daemon::start(&ns, dir, &[]);
    let status = d.wait_status("Pending", |s| {
        s["phase"] == "Pending" && Daemon::condition(s, "Config")["reason"] == "WaitingForInterfaces"
    });
    assert!(status["applies"].is_null(), "{status:#}");
    // Written later: found without a signal (netconfigd looks again every 5 s).
    golden_perm(&d.dir);
    d.wait_apply(0, "Applied");
    let good = (nft_table(&ns, "ip"), ip_json(&ns, &["addr"]));

    let cases: [(&str, String, &str); 4] = [
        (
            "portforwardings.json",
            golden_forwardings(false).replace("\"53\", \"dest_addr\"", "\"70000\", \"dest_addr\""),
            "portforwardings.json:forwardings[2].port: port 70000 is out of range",
        ),
        (
            "interfaces.json",
            GOLDEN_INTERFACES.replace("192.168.42.1/24", "192.168.42.1/33"),
            "interfaces.json:interfaces[1].addr:",
        ),
        ("netconfigd/config.json", GOLDEN_CONFIG.replace("\"from\"", "\"form\""), "config.json:2:"),
        ("dhcp4/wire/lease.json", GOLDEN_DHCP4.replace("\"router\"", "\"router\" 1"), "lease.json:5:"),
    ];
    for (file, bad, want) in cases {
        let original = std::fs::read_to_string(d.perm.join(file)).unwrap();
        write(&d.perm, file, &bad);
        d.reload();
        let status = d.wait_status(&format!("an error for {file}"), |s| {
            s["phase"] == "Error" && Daemon::condition(s, "Config")["message"].as_str().unwrap_or("").contains(want)
        });
        assert_eq!(Daemon::condition(&status, "Config")["reason"], "InvalidConfig");
        assert_eq!((nft_table(&ns, "ip"), ip_json(&ns, &["addr"])), good, "{file}: the last good state stays");
        write(&d.perm, file, &original);
        let n = d.applies();
        d.reload();
        d.wait_apply(n, "Applied");
    }
    assert!(d.peer.log().contains("not applying:"), "{}", d.peer.log());
}

#[test]
fn each_apply_tells_the_other_services() {
    if !testbed::require("each_apply_tells_the_other_services", TOOLS) {
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let (ns, _park) = testnetconfig_links();
    let dir = TempDir::new("ncfg5");
    golden_perm(&dir);
    // A stand-in "dnsd": a copy of sleep under that name, with its pid file where
    // init would write it. SIGUSR1 ends it, which is how we see it arrived.
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let exe = dir.path().join("dnsd");
    testbed::install_executable(std::path::Path::new("/bin/sleep"), &exe);
    let mut dnsd = std::process::Command::new(&exe).arg("60").spawn().unwrap();
    for _ in 0..500 {
        if std::fs::read_to_string(format!("/proc/{}/comm", dnsd.id())).is_ok_and(|c| c.trim() == "dnsd") {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::write(run.join("dnsd.pid"), format!("{}\n", dnsd.id())).unwrap();
    let d = Daemon::start(&ns, dir, &[]);
    d.wait_apply(0, "Applied");
    let deadline = runtime::clock::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = dnsd.try_wait().unwrap() {
            break s;
        }
        assert!(runtime::clock::now() < deadline, "dnsd was not signalled");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(10), "SIGUSR1");
}
