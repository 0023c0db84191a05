//! Our client against dnsmasq, which serves IA_NA only: we get the address
//! and the DNS server, write no prefix, and do not spin (router7 re-solicited
//! in a tight loop here). The DUID file's bytes, fiber7's odd `00 0a …`, go
//! out unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Dirs, SLOW, start_dhcp6};
use testbed::{Netns, TempDir, veth};

/// router7's test DUID (its integration test asserts dnsmasq logs it).
const DUID: [u8; 12] = [0, 0x0a, 0, 3, 0, 1, 0x4c, 0x5e, 0x0c, 0x41, 0xbf, 0x39];

fn count(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn dnsmasq_without_prefixes_gives_an_address_and_we_do_not_spin() {
    if !testbed::require("dnsmasq_without_prefixes_gives_an_address_and_we_do_not_spin", &["dnsmasq"]) {
        return;
    }
    let server = Netns::new("dm6s");
    let client = Netns::new("dm6c");
    veth(&client, "up0", "02:73:53:00:ca:fe", &server, "srv0", "02:73:53:00:00:01");
    server.addr("srv0", "2001:db8::1/64");
    server.wait_for_link_local("srv0");

    let dir = TempDir::new("dnsmasq6");
    let dnsmasq = server.spawn(testbed::dnsmasq_dhcp(
        "srv0",
        "2001:db8::100,2001:db8::1ff,64,2m",
        dir.path(),
        &["--dhcp-option=option6:dns-server,[2001:db8::53]"],
    ));

    let dirs = Dirs::new(dir.path());
    std::fs::write(dirs.perm.join("dhcp6/duid"), DUID).unwrap();
    let mut ours = start_dhcp6(&client, &dirs, "up0");

    let bound = dirs.event_after(0, "dhcp6.address.bound", SLOW);
    let address = bound["attributes"]["address"].as_str().unwrap().to_owned();
    assert!(address.starts_with("2001:db8::1"), "{bound}");
    let lease = dirs.lease().unwrap();
    assert!(lease.prefixes.is_empty() && lease.delegations.is_empty(), "no prefix written: {lease:?}");
    assert_eq!(lease.address.map(|a| a.to_string()), Some(address.clone()));
    assert_eq!(lease.dns, vec!["2001:db8::53".parse::<std::net::Ipv6Addr>().unwrap()]);
    let status = dirs.status();
    assert_eq!(status["phase"], "Bound");
    let pd = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PrefixDelegated").unwrap();
    assert_eq!((pd["status"].as_str(), pd["reason"].as_str()), (Some("False"), Some("NotOffered")), "{status}");
    // The DUID went out byte for byte.
    dnsmasq.wait_for_log("00:0a:00:03:00:01:4c:5e:0c:41:bf:39", SLOW).unwrap();

    // Over the next 10 s: no new Solicit, and hardly anything at all.
    let before = dnsmasq.log();
    let sent_before = dirs.status()["metrics"]["sent"].clone();
    std::thread::sleep(Duration::from_secs(10));
    let after = dnsmasq.log();
    let solicits = count(&after, "DHCPSOLICIT") - count(&before, "DHCPSOLICIT");
    assert!(solicits <= 3, "{solicits} Solicits in 10 s after binding:\n{after}");
    let status = dirs.status();
    let sent = &status["metrics"]["sent"];
    let total = |v: &serde_json::Value| v.as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum::<u64>();
    assert!(total(sent) - total(&sent_before) <= 3, "sent {sent} after {sent_before}");
    assert_eq!(sent["solicit"], 1, "{status}");
    assert_eq!(status["state"], "Bound");

    // `renew` on the control API: a Renew now, and dnsmasq renews the address.
    let seq = dirs.last_seq();
    let r = runtime::unix_http::request(&dirs.socket(), "POST", "/v1/commands/renew", b"", SLOW).unwrap();
    assert_eq!(r.status, 202);
    let renewed = dirs.event_after(seq, "dhcp6.address.renewed", SLOW);
    assert_eq!(renewed["attributes"]["address"], address.as_str());
    dnsmasq.wait_for_log("DHCPRENEW(srv0)", SLOW).unwrap();

    // Release: dnsmasq sees it; we exit 125 and the file holds nothing.
    ours.signal("USR2");
    assert_eq!(ours.wait(SLOW).and_then(|s| s.code()), Some(125), "{}", ours.log());
    dnsmasq.wait_for_log("DHCPRELEASE(srv0) 00:0a:00:03:00:01:4c:5e:0c:41:bf:39", SLOW).unwrap();
    let lease = dirs.lease().unwrap();
    assert!(lease.address.is_none() && lease.prefixes.is_empty(), "{lease:?}");
}
