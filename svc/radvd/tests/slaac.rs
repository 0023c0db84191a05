//! The kernel's own SLAAC on the LAN side (`accept_ra=1`, forwarding off): it
//! forms an address in our prefix and a default route via the router's
//! link-local address; when the prefix goes, its address is deprecated
//! (preferred lifetime 0); when the last prefix goes, so does the default route.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Host, LISTENING, Lan, ROUTER_LL, ROUTER7_LEASE, addr_block, lease_for};

/// Seconds of `valid_lft` or `preferred_lft` in an address block.
fn lifetime(block: &str, key: &str) -> u64 {
    let rest = &block[block.find(key).unwrap() + key.len()..];
    rest.trim_start().trim_start_matches(|c: char| !c.is_ascii_digit()).split("sec").next().unwrap().parse().unwrap()
}

const OLD_ADDR: &str = "2a02:168:4a00:0:73:53ff:fe00:beef";
const NEW_ADDR: &str = "2a02:168:4b00:0:73:53ff:fe00:beef";
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn kernel_slaac_follows_our_prefixes_and_deprecates_a_removed_one() {
    if !testbed::require("kernel_slaac_follows_our_prefixes_and_deprecates_a_removed_one", &[]) {
        return;
    }
    let mut lan = Lan::start("slaac", Host::Slaac, Some(ROUTER7_LEASE), &["--metrics-port", "0"]);

    let text = lan.wait_lan("a SLAAC address and a default route", WAIT, |t| {
        t.contains(&format!("inet6 {OLD_ADDR}/64 scope global dynamic"))
            && t.contains(&format!("default via {ROUTER_LL} dev eth0 proto ra"))
    });
    let block = addr_block(&text, OLD_ADDR).unwrap();
    assert!(!block.contains("deprecated"), "{block}");
    assert!((1700..=1800).contains(&lifetime(block, "preferred_lft")), "preferred 1800 s counting down: {block}");
    assert!((7100..=7200).contains(&lifetime(block, "valid_lft")), "valid 7200 s: {block}");

    // The ISP delegates another prefix: dhcp6 rewrites the lease and signals us.
    lan.write_lease(&lease_for("2a02:168:4b00::"));
    lan.sigusr1();
    let text = lan.wait_lan("the new address, the old one deprecated", WAIT, |t| {
        t.contains(&format!("inet6 {NEW_ADDR}/64"))
            && addr_block(t, OLD_ADDR).is_some_and(|b| b.contains("deprecated") && b.contains("preferred_lft 0sec"))
    });
    assert!(!addr_block(&text, NEW_ADDR).unwrap().contains("deprecated"), "{text}");
    assert!(text.contains(&format!("default via {ROUTER_LL} dev eth0 proto ra")), "still the default router: {text}");
    let status = lan.status();
    assert_eq!(status["phase"], "Up");
    assert_eq!(status["prefixes"][0]["prefix"], "2a02:168:4b00::/64");
    assert_eq!(status["deprecated_prefixes"][0]["prefix"], "2a02:168:4a00::/64");
    assert_eq!(status["deprecated_prefixes"][0]["reason"], "removed");
    let topics = lan.event_topics();
    assert!(topics.contains(&"radvd.prefix.deprecated".to_owned()), "{topics:?}");
    let record = std::fs::read_to_string(lan.perm().join("radvd/advertised.json")).unwrap();
    assert!(record.contains("2a02:168:4a00::/64") && record.contains("2a02:168:4b00::/64"), "{record}");

    // The lease is lost: no prefix is left, so we stop being the default router.
    std::fs::remove_file(lan.perm().join("dhcp6/wire/lease.json")).unwrap();
    lan.sigusr1();
    let text = lan.wait_lan("both deprecated, no default route", WAIT, |t| {
        !t.contains("default via")
            && addr_block(t, NEW_ADDR).is_some_and(|b| b.contains("deprecated") && b.contains("preferred_lft 0sec"))
    });
    assert!(addr_block(&text, OLD_ADDR).unwrap().contains("deprecated"), "{text}");
    let status = lan.status();
    assert_eq!(status["phase"], "Pending");
    assert_eq!(status["router_lifetime"], 0);
    assert_eq!(status["deprecated_prefixes"].as_array().unwrap().len(), 2);
}

#[test]
fn a_restart_with_a_new_delegation_deprecates_the_old_prefix() {
    if !testbed::require("a_restart_with_a_new_delegation_deprecates_the_old_prefix", &[]) {
        return;
    }
    let mut lan = Lan::start("rest", Host::Slaac, Some(ROUTER7_LEASE), &["--metrics-port", "0"]);
    lan.wait_lan("a SLAAC address", WAIT, |t| t.contains(&format!("inet6 {OLD_ADDR}/64 scope global dynamic")));
    // The router reboots; dhcp6 comes back with another prefix before radvd starts.
    lan.radvd().stop();
    lan.write_lease(&lease_for("2a02:168:4b00::"));
    lan.spawn(&["--metrics-port", "0"], LISTENING);
    lan.wait_lan("the old address deprecated after the restart", WAIT, |t| {
        t.contains(&format!("inet6 {NEW_ADDR}/64"))
            && addr_block(t, OLD_ADDR).is_some_and(|b| b.contains("deprecated") && b.contains("preferred_lft 0sec"))
    });
    assert_eq!(lan.status()["deprecated_prefixes"][0]["reason"], "restart");
    let topics = lan.event_topics();
    assert!(
        topics.ends_with(&["radvd.prefix.advertised".to_owned(), "radvd.prefix.deprecated".to_owned()]),
        "{topics:?}"
    );
}
