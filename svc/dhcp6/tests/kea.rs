//! Our client against kea-dhcp6 with prefix-delegation pools, in namespaces:
//! a /48 obtained, renewed at T1, rebound after T2 while the server was
//! unreachable, rebound again from the stored lease after a restart, then
//! released (kea's CSV lease file shows it); and a /56 by length hint from a
//! server with no address pool (IA_PD only).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{Dirs, SLOW, prefixes, start_dhcp6};
use testbed::{Netns, Peer, PeerSpec, TempDir, veth};

const CLIENT_MAC: &str = "02:73:53:00:ca:fe";

struct Kea {
    peer: Peer,
    leases: PathBuf,
}

/// Starts kea-dhcp6 on `srv0` in `ns` with `subnet` (a JSON object) and short timers.
fn start_kea(ns: &Netns, dir: &TempDir, subnet: &str, timers: (u32, u32, u32, u32)) -> Kea {
    let (t1, t2, preferred, valid) = timers;
    std::fs::create_dir_all("/run/kea").unwrap();
    let d = dir.path().display();
    // Unique names: other tests may run kea at the same time.
    let tag = format!("{}-{}", std::process::id(), dir.path().file_name().unwrap().to_string_lossy());
    let leases = dir.path().join(format!("kea6-leases-{tag}.csv"));
    let log = dir.path().join("kea6.log");
    let config = dir.path().join(format!("kea6-{tag}.json"));
    let text = format!(
        r#"{{"Dhcp6":{{
  "interfaces-config":{{"interfaces":["srv0"]}},
  "server-id":{{"type":"LL","persist":false}},
  "lease-database":{{"type":"memfile","persist":true,"name":"{leases}","lfc-interval":0}},
  "renew-timer":{t1},"rebind-timer":{t2},"preferred-lifetime":{preferred},"valid-lifetime":{valid},
  "option-data":[{{"name":"dns-servers","data":"2001:db8:1::53"}}],
  "subnet6":[{subnet}],
  "loggers":[{{"name":"kea-dhcp6","output_options":[{{"output":"{log}"}}],"severity":"DEBUG","debuglevel":99}}]
}}}}"#,
        leases = leases.display(),
        log = log.display(),
    );
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let peer = ns.spawn(
        PeerSpec::new("kea-dhcp6", "kea-dhcp6", &["-c", &config])
            .env("KEA_PIDFILE_DIR", &d.to_string())
            .env("KEA_LOCKFILE_DIR", &d.to_string())
            .log_file(&log)
            .ready_on_log("DHCP6_STARTED"),
    );
    Kea { peer, leases }
}

/// Two namespaces joined by a veth pair: `up0` (ours) and `srv0` (kea's, with 2001:db8:1::1/64).
fn link(tag: &str) -> (Netns, Netns) {
    let server = Netns::new(&format!("{tag}s"));
    let client = Netns::new(&format!("{tag}c"));
    veth(&client, "up0", CLIENT_MAC, &server, "srv0", "02:73:53:00:00:01");
    server.addr("srv0", "2001:db8:1::1/64");
    server.wait_for_link_local("srv0");
    (server, client)
}

/// Kea's CSV lines (address, duid, valid_lifetime, expire, subnet_id,
/// pref_lifetime, lease_type, iaid, prefix_len, …) for prefix `prefix`.
fn kea_lines(kea: &Kea, prefix: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(&kea.leases)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|f| f.first().is_some_and(|a| a == prefix) && f.get(6).is_some_and(|t| t == "2"))
        .collect()
}

#[test]
fn kea_delegates_renews_rebinds_restarts_and_releases_a_48() {
    if !testbed::require("kea_delegates_renews_rebinds_restarts_and_releases_a_48", &["kea-dhcp6", "nft"]) {
        return;
    }
    let (server, client) = link("k48");
    let dir = TempDir::new("kea48");
    let subnet = r#"{"id":1,"subnet":"2001:db8:1::/64","interface":"srv0",
        "pools":[{"pool":"2001:db8:1::100-2001:db8:1::1ff"}],
        "pd-pools":[{"prefix":"2001:db8:8000::","prefix-len":33,"delegated-len":48}]}"#;
    // T1 4 s, T2 8 s, lifetimes 30/60 s.
    let kea = start_kea(&server, &dir, subnet, (4, 8, 30, 60));
    let dirs = Dirs::new(dir.path());
    let mut ours = start_dhcp6(&client, &dirs, "up0");

    // Obtain.
    let bound = dirs.event_after(0, "dhcp6.prefix.bound", SLOW);
    let prefix = bound["attributes"]["prefixes"][0].as_str().unwrap().to_owned();
    assert!(prefix.starts_with("2001:db8:") && prefix.ends_with("/48"), "{bound}");
    let lease = dirs.lease().expect("lease.json written");
    assert_eq!(prefixes(&lease), vec![prefix.clone()]);
    assert_eq!(lease.dns, vec!["2001:db8:1::53".parse::<std::net::Ipv6Addr>().unwrap()]);
    assert!(lease.address.is_some(), "kea also gave an address");
    assert_eq!(lease.delegations.len(), 1);
    let ip = prefix.trim_end_matches("/48");
    let status = dirs.status();
    assert_eq!(status["phase"], "Bound");
    assert_eq!(status["lease"]["prefixes"][0]["IP"], ip);
    // A DUID-LL from the MAC was made and stored, and kea knows us by it.
    let duid = std::fs::read(dirs.perm.join("dhcp6/duid")).unwrap();
    assert_eq!(duid, [0, 3, 0, 1, 2, 0x73, 0x53, 0, 0xca, 0xfe]);
    assert!(kea_lines(&kea, ip).iter().any(|f| f[1] == "00:03:00:01:02:73:53:00:ca:fe" && f[8] == "48"));

    // Renew at T1.
    let renewed = dirs.event_after(bound["seq"].as_u64().unwrap(), "dhcp6.prefix.renewed", SLOW);
    assert_eq!(renewed["attributes"]["prefixes"][0], prefix.as_str());
    kea.peer.wait_for_log("RENEW (type 5)", SLOW).unwrap();

    // The server becomes unreachable: Renew goes unanswered until T2, then Rebind.
    server.exec_ok("nft", &["add table inet r7t_block"]);
    server.exec_ok("nft", &["add chain inet r7t_block input { type filter hook input priority 0; policy accept; }"]);
    server.exec_ok("nft", &["add rule inet r7t_block input udp dport 547 drop"]);
    dirs.wait_status("state Rebinding", SLOW, |s| s["state"] == "Rebinding");
    let before_rebind = dirs.last_seq();
    server.exec_ok("nft", &["delete table inet r7t_block"]);
    // The next Rebind (REB_TIMEOUT 10 s after the first) reaches kea.
    let rebound = dirs.event_after(before_rebind, "dhcp6.prefix.rebound", SLOW);
    assert_eq!(rebound["attributes"]["prefixes"][0], prefix.as_str());
    kea.peer.wait_for_log("REBIND (type 6)", SLOW).unwrap();
    let status = dirs.status();
    assert!(status["metrics"]["sent"]["rebind"].as_u64().unwrap() >= 2, "{status}");
    assert_eq!(status["metrics"]["sent"]["solicit"], 1, "never re-solicited: {status}");

    // Restart: the new process rebinds from the stored lease and keeps the prefix.
    ours.stop();
    let before_restart = {
        let text = std::fs::read_to_string(dirs.perm.join("dhcp6/events.jsonl")).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap()
    };
    let mut ours = start_dhcp6(&client, &dirs, "up0");
    let rebound = dirs.event_after(before_restart, "dhcp6.prefix.rebound", SLOW);
    assert_eq!(rebound["attributes"]["prefixes"][0], prefix.as_str());
    let status = dirs.status();
    assert_eq!(status["metrics"]["sent"]["solicit"], 0, "a restart with a valid lease rebinds: {status}");
    assert_eq!(status["metrics"]["sent"]["rebind"], 1, "{status}");
    assert!(
        ours.log().contains("stored lease: prefixes") && ours.log().contains("RebindingAfterRestart"),
        "{}",
        ours.log()
    );

    // Release: exit 125, an empty lease file, and kea records the lease as gone.
    ours.signal("USR2");
    let exit = ours.wait(SLOW).expect("exits after the Release");
    assert_eq!(exit.code(), Some(125), "{}", ours.log());
    let lease = dirs.lease().unwrap();
    assert!(lease.prefixes.is_empty() && lease.address.is_none(), "{lease:?}");
    let lines = kea_lines(&kea, ip);
    let last = lines.last().unwrap();
    assert_eq!(last[2], "0", "kea's last record of {ip} has valid lifetime 0 (released): {lines:?}");
    kea.peer.wait_for_log("RELEASE (type 8)", SLOW).unwrap();
}

#[test]
fn kea_without_addresses_delegates_a_56_by_length_hint() {
    if !testbed::require("kea_without_addresses_delegates_a_56_by_length_hint", &["kea-dhcp6"]) {
        return;
    }
    let (server, client) = link("k56");
    let dir = TempDir::new("kea56");
    // A /56 pool and no address pool: IA_NA gets NoAddrsAvail. (kea 2.2 logs
    // the IA_PD hint's prefix, `::`, but does not choose pools by its length.)
    let subnet = r#"{"id":1,"subnet":"2001:db8:1::/64","interface":"srv0",
        "pd-pools":[{"prefix":"2001:db8:c000::","prefix-len":40,"delegated-len":56}]}"#;
    let kea = start_kea(&server, &dir, subnet, (600, 900, 1200, 1800));
    let dirs = Dirs::new(dir.path());
    std::fs::write(dirs.perm.join("dhcp6/config.json"), r#"{"prefix_length_hint": 56}"#).unwrap();
    let _ours = start_dhcp6(&client, &dirs, "up0");

    let bound = dirs.event_after(0, "dhcp6.prefix.bound", SLOW);
    let prefix = bound["attributes"]["prefixes"][0].as_str().unwrap().to_owned();
    assert!(prefix.starts_with("2001:db8:c0") && prefix.ends_with("/56"), "{bound}\n{}", kea.peer.log());
    let lease = dirs.lease().unwrap();
    assert_eq!(prefixes(&lease), vec![prefix]);
    assert_eq!(lease.address, None, "kea had no address to give");
    let status = dirs.status();
    assert_eq!(status["phase"], "Bound");
    assert_eq!(status["state"], "Bound");
    // The Solicit carried the length hint as an IA Prefix `::/56` (without one kea logs "(no hint)").
    kea.peer.wait_for_log("IA_PD option with iaid=1 and hint=::", SLOW).unwrap();
    let unavailable = dirs.event_after(0, "dhcp6.address.unavailable", SLOW);
    assert_eq!(unavailable["attributes"]["status"], "NoAddrsAvail", "{unavailable}");
}
