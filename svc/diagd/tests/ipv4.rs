//! Every IPv4 check passes, then fails and recovers as the network is changed
//! under it: link down, carrier lost, lease missing and expired, gateway
//! route deleted, gateway address gone, TCP target refused and filtered.
//! health.json and the control API's phase follow each change.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Lab, node};
use serde_json::json;

#[test]
fn ipv4_checks_follow_the_network() {
    if !testbed::require("ipv4_checks_follow_the_network", &["nft"]) {
        return;
    }
    let mut lab = Lab::new("d4");
    // No IPv6 in this lab: with "ignored" the v6 checks run but do not count.
    lab.config(json!({"ipv6": "ignored"}));
    lab.start_diagd(&[]);

    let health = lab.expect("Healthy", "");
    assert!(node(&health, "link")["status"].as_str().unwrap().contains(" rx, "));
    let ping = node(&health, "ping4_gateway");
    assert!(ping["status"].as_str().unwrap().ends_with("from 192.0.2.1"), "{ping}");
    assert!(ping["latency_seconds"].as_f64().unwrap() > 0.0);
    let tcp = node(&health, "tcp4");
    assert_eq!(tcp["name"], "tcp4/198.51.100.1:8443");
    assert!(tcp["status"].as_str().unwrap().starts_with("connection established"), "{tcp}");
    assert_eq!(node(&health, "dhcp6")["counted"], false);
    assert!(lab.log().contains("echo over V4 uses a raw socket"), "ping_group_range excludes us here");

    // Link administratively down (routes go with it; put them back after).
    lab.rtr.ip(&["link", "set", "uplink0", "down"]);
    let h = lab.expect("Unhealthy", "link/uplink0: link uplink0 not UP");
    assert_eq!(node(&h, "dhcp4")["status"], "dependency link/uplink0 failed");
    assert_eq!(node(&h, "tcp4")["status"], "dependency ping4: $default-gateway failed");
    let status = lab.status();
    let link = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Link").unwrap();
    assert_eq!((link["status"].as_str(), link["reason"].as_str()), (Some("False"), Some("CheckFailed")));
    lab.rtr.ip(&["link", "set", "uplink0", "up"]);
    lab.rtr.ip(&["route", "replace", "default", "via", "192.0.2.1"]);
    lab.expect("Healthy", "");

    // Carrier lost: the far end goes down.
    lab.isp.ip(&["link", "set", "isp0", "down"]);
    lab.expect("Unhealthy", "link/uplink0: link uplink0 has no carrier (not RUNNING)");
    lab.isp.ip(&["link", "set", "isp0", "up"]);
    lab.rtr.ip(&["route", "replace", "default", "via", "192.0.2.1"]);
    lab.expect("Healthy", "");

    // The lease: missing, then expired (ours is the real expiry), then renewed.
    lab.remove_lease4();
    let missing = format!("dhcp4: no lease: {}/dhcp4/wire/lease.json does not exist", lab.perm.display());
    lab.expect("Unhealthy", &missing);
    lab.write_lease4(-60);
    lab.expect("Unhealthy", "dhcp4: lease expired at ");
    lab.write_lease4(3600);
    lab.expect("Healthy", "");

    // The gateway: its route deleted, then its address gone from the ISP side.
    lab.rtr.ip(&["route", "del", "default"]);
    lab.expect("Unhealthy", "ping4: $default-gateway: no route to 198.51.100.1");
    lab.rtr.ip(&["route", "add", "default", "via", "192.0.2.1"]);
    lab.expect("Healthy", "");
    lab.isp.ip(&["addr", "del", "192.0.2.1/24", "dev", "isp0"]);
    let h = lab.expect("Unhealthy", "ping4: $default-gateway: no echo reply within 1s");
    assert_eq!(node(&h, "tcp4")["ran"], false);
    lab.isp.ip(&["addr", "add", "192.0.2.1/24", "dev", "isp0"]);
    lab.expect("Healthy", "");

    // The TCP target: refused when its server is gone, a timeout when filtered.
    lab.target4 = None;
    lab.expect("Unhealthy", "tcp4/198.51.100.1:8443: connection refused");
    lab.start_target4();
    lab.expect("Healthy", "");
    lab.nft(
        "table inet diagdtest {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 8443 drop\n }\n}\n",
    );
    lab.expect("Unhealthy", "tcp4/198.51.100.1:8443: connection not established within 1s");
    lab.nft_flush();
    let health = lab.expect("Healthy", "");
    assert!(health["round"]["count"].as_u64().unwrap() > 10);

    // Each flip was an event, in order, with the first error.
    let events = lab.events("diagd.health.changed");
    let flips: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["attributes"]["to"].as_str().unwrap().to_owned(),
                e["attributes"]["first_error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(flips[0], ("Healthy".to_owned(), String::new()), "Pending → Healthy first");
    let unhealthy = flips.iter().filter(|f| f.0 == "Unhealthy").count();
    assert_eq!(unhealthy, 7, "one per breakage (missing → expired stays Unhealthy): {flips:?}");
    assert!(flips.windows(2).all(|w| w[0].0 != w[1].0), "alternating: {flips:?}");
    assert!(!lab.events("diagd.check.changed").is_empty());
}

/// What nobody signals diagd about: a route (or an address, or a carrier) the
/// kernel changes by itself, as a router advertisement does. With a 300 s
/// interval, only the kernel's announcement can bring the round that sees it
/// within the 40 s `expect` waits.
#[test]
fn a_change_the_kernel_announces_is_checked_soon_not_at_the_next_interval() {
    if !testbed::require("a_change_the_kernel_announces_is_checked_soon_not_at_the_next_interval", &[]) {
        return;
    }
    let mut lab = Lab::new("d4k");
    lab.config(json!({"ipv6": "ignored", "interval_seconds": 300, "retry_seconds": 1}));
    lab.rtr.ip(&["route", "del", "default"]);
    lab.start_diagd(&[]);
    lab.expect("Unhealthy", "ping4: $default-gateway: no route to 198.51.100.1");
    let rounds = |lab: &Lab| lab.status()["round"]["count"].as_u64().unwrap();
    let before = rounds(&lab);

    lab.rtr.ip(&["route", "add", "default", "via", "192.0.2.1"]);
    lab.expect("Healthy", "");
    // One round for the change (retry 1 s after it makes two with thresholds of 1 at most).
    assert!(rounds(&lab) - before <= 2, "{} rounds for one change", rounds(&lab) - before);
    let (code, metrics) = lab.http("127.0.0.1:7733", "/metrics").unwrap();
    assert_eq!(code, 200);
    let changes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("diagd_kernel_changes_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no diagd_kernel_changes_total: {metrics}"));
    assert!(changes >= 1, "{metrics}");
}
