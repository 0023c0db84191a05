//! The IPv6 checks against a real router advertisement daemon (radvd) in the
//! ISP namespace: SLAAC on the uplink and the RA's default route, the gateway
//! and all-routers echoes, TCP from the uplink's and from the LAN's address,
//! and the dhcp6 lease — each passes, then fails and recovers. Also: "auto"
//! counts IPv6 only once dhcp6 has a lease file, so a home without IPv6 is healthy.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Lab, node};
use serde_json::json;

const DROP_ECHO_TO: &str = "table inet diagdtest {\n chain input {\n  type filter hook input priority 0;\n  \
                            ip6 daddr DST icmpv6 type echo-request drop\n }\n}\n";

#[test]
fn ipv6_checks_follow_the_network() {
    if !testbed::require("ipv6_checks_follow_the_network", &["radvd", "nft"]) {
        return;
    }
    let mut lab = Lab::new("d6");
    lab.write_lease6(3600);
    lab.start_radvd();
    lab.wait_for_slaac();
    lab.config(json!({"ipv6": "required"}));
    lab.start_diagd(&[]);

    let h = lab.expect("Healthy", "");
    let slaac = node(&h, "slaac")["status"].as_str().unwrap().to_owned();
    assert!(slaac.starts_with("2001:db8:1:") && slaac.ends_with("/64"), "{slaac}");
    let isp_ll = common::link_local(&lab.isp, "isp0");
    let gw = node(&h, "ping6_gateway")["status"].as_str().unwrap().to_owned();
    assert!(gw.ends_with(&format!("from {isp_ll}%uplink0")), "the RA's router, scoped: {gw}");
    let all_routers = node(&h, "ping6_all_routers")["status"].as_str().unwrap().to_owned();
    assert!(all_routers.ends_with(&format!("from {isp_ll}")), "the ISP answered, not we ourselves: {all_routers}");
    let tcp6 = node(&h, "tcp6")["status"].as_str().unwrap().to_owned();
    assert!(tcp6.starts_with(&format!("connection established from {}", &slaac[..slaac.len() - 3])), "{tcp6}");
    assert_eq!(node(&h, "tcp6_lan")["name"], "tcp6/[2001:db8:ffff::1]:8443 from lan0");
    assert!(node(&h, "tcp6_lan")["status"].as_str().unwrap().starts_with("connection established from 2001:db8:42::1"));
    assert_eq!(h["ipv6"], json!({"mode": "required", "counted": true}));

    // All routers stop answering multicast echoes (the router itself is one
    // too: forwarding is on, so this also proves we do not count our own).
    lab.nft(&DROP_ECHO_TO.replace("DST", "ff02::2"));
    lab.expect("Unhealthy", "ping6: ff02::2%uplink0: no echo reply within 1s");
    lab.nft_flush();
    lab.expect("Healthy", "");

    // The gateway stops answering unicast echoes.
    lab.nft(&DROP_ECHO_TO.replace("DST", &isp_ll));
    let h = lab.expect("Unhealthy", "ping6gw: $default-gateway: no echo reply within 1s");
    assert_eq!(node(&h, "tcp6")["status"], "dependency ping6gw: $default-gateway failed");
    lab.nft_flush();
    lab.expect("Healthy", "");

    // The target's server is gone: the LAN's connect comes first in pre-order.
    lab.target6 = None;
    let h = lab.expect("Unhealthy", "tcp6/[2001:db8:ffff::1]:8443 from lan0: connection refused");
    assert_eq!(node(&h, "tcp6")["status"], "connection refused");
    lab.start_target6();
    lab.expect("Healthy", "");

    // The LAN loses its delegated address.
    lab.rtr.ip(&["-6", "addr", "del", "2001:db8:42::1/64", "dev", "lan0"]);
    lab.expect("Unhealthy", "tcp6/[2001:db8:ffff::1]:8443 from lan0: no global IPv6 address on lan0");
    lab.rtr.ip(&["-6", "addr", "add", "2001:db8:42::1/64", "dev", "lan0"]);
    lab.expect("Healthy", "");

    // The dhcp6 lease expires.
    lab.write_lease6(-1);
    lab.expect("Unhealthy", "dhcp6: lease expired at ");
    lab.write_lease6(3600);
    lab.expect("Healthy", "");

    // No more RAs and the SLAAC address is gone; radvd back brings it back.
    lab.kill_radvd();
    lab.rtr.ip(&["-6", "addr", "flush", "dev", "uplink0", "scope", "global"]);
    let h = lab.expect("Unhealthy", "ra6/uplink0: no SLAAC address found");
    assert_eq!(node(&h, "ping6_gateway")["status"], "dependency ra6/uplink0 failed");
    lab.start_radvd();
    lab.wait_for_slaac();
    lab.expect("Healthy", "");
}

#[test]
fn auto_mode_counts_ipv6_only_once_dhcp6_has_a_lease() {
    if !testbed::require("auto_mode_counts_ipv6_only_once_dhcp6_has_a_lease", &[]) {
        return;
    }
    // A home whose ISP gives no IPv6: no RAs, no dhcp6 lease.
    let mut lab = Lab::new("da");
    lab.config(json!({}));
    // Ping sockets allowed for every group: the unprivileged path.
    lab.rtr.sysctl("net.ipv4.ping_group_range", "0 2147483647");
    lab.start_diagd(&[]);
    let h = lab.expect("Healthy", "");
    assert_eq!(h["ipv6"], json!({"mode": "auto", "counted": false}));
    assert_eq!(node(&h, "slaac")["ok"], false, "the IPv6 checks still run and show");
    assert_eq!(node(&h, "slaac")["counted"], false);
    assert!(lab.log().contains("echo over V4 uses a ping socket"), "{}", lab.log());

    // dhcp6 got a lease: from now on IPv6 must work, and here it does not.
    lab.write_lease6(3600);
    let h = lab.expect("Unhealthy", "tcp6/[2001:db8:ffff::1]:8443 from lan0: ");
    assert_eq!(h["ipv6"]["counted"], true);
    let status = lab.status();
    let v6 = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "IPv6").unwrap();
    assert_eq!(v6["status"], "False");

    // The --ipv6 flag overrides config.json (router7's -ipv6=false).
    lab.diagd = None;
    lab.start_diagd(&["--ipv6", "ignored"]);
    let h = lab.expect("Healthy", "");
    assert_eq!(h["ipv6"], json!({"mode": "ignored", "counted": false}));
}
