//! dhcp4 against a real kea-dhcp4 in network namespaces: obtain, renew by
//! unicast at T1, restart (INIT-REBOOT from the stored ACK), release; and
//! rebind by broadcast at T2 when the address is not configured (so the
//! unicast renewal cannot be sent). Asserts on kea's own log and lease file.
//!
//! kea runs with `KEA_PIDFILE_DIR`/`KEA_LOCKFILE_DIR` in the test's folder and a
//! config file named after the test, so other kea instances on the machine do
//! not collide with it.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::{CLIENT_MAC, Setup, release_client, stop_client, wait_until};
use testbed::{Peer, PeerSpec, TempDir};

const LEASE: u32 = 20;

fn kea(setup: &Setup, dir: &Path, name: &str) -> Peer {
    // kea insists on this folder existing even when told to put its files elsewhere.
    std::fs::create_dir_all("/run/kea").unwrap();
    let log = dir.join("kea.log");
    let leases = dir.join("kea-leases.csv");
    let config = serde_json::json!({"Dhcp4": {
        // Raw sockets: the udp type binds 10.0.0.1:67 and never hears broadcasts.
        "interfaces-config": {"interfaces": ["srv0"], "dhcp-socket-type": "raw"},
        "lease-database": {"type": "memfile", "persist": true, "name": leases, "lfc-interval": 0},
        "valid-lifetime": LEASE, "renew-timer": 5, "rebind-timer": 10,
        "option-data": [
            {"name": "routers", "data": "10.0.0.1"},
            {"name": "domain-name-servers", "data": "10.0.0.53"},
            {"name": "domain-name", "data": "isp.example"}
        ],
        "subnet4": [{"id": 1, "subnet": "10.0.0.0/16", "pools": [{"pool": "10.0.0.2-10.0.250.250"}]}],
        // Debug level 50 logs each packet's type, which tells INIT-REBOOT from DISCOVER.
        "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": log}], "severity": "DEBUG", "debuglevel": 50}]
    }});
    let path = dir.join(format!("kea-{name}-{}.json", std::process::id()));
    std::fs::write(&path, config.to_string()).unwrap();
    let dir_text = dir.to_str().unwrap();
    setup.server.spawn(
        PeerSpec::new("kea-dhcp4", "kea-dhcp4", &["-c", path.to_str().unwrap()])
            .env("KEA_PIDFILE_DIR", dir_text)
            .env("KEA_LOCKFILE_DIR", dir_text)
            .log_file(&log)
            .ready_on_log("DHCP4_STARTED"),
    )
}

fn received(log: &str, kind: &str) -> usize {
    log.lines().filter(|l| l.contains("DHCP4_PACKET_RECEIVED") && l.contains(&format!("{kind} (type"))).count()
}

#[test]
fn obtains_renews_at_t1_restarts_and_releases_against_kea() {
    if !testbed::require("obtains_renews_at_t1_restarts_and_releases_against_kea", &["kea-dhcp4"]) {
        return;
    }
    let setup = Setup::new("d4k", "10.0.0.1/16");
    let server_dir = TempDir::new("d4k-srv");
    let server = kea(&setup, server_dir.path(), "obtain");

    let mut client = setup.start_client();
    setup.wait_event("dhcp4.lease.bound", 0, Duration::from_secs(30));
    let lease = setup.lease();
    let ip = lease.client_ip.unwrap();
    assert_eq!(lease.prefix_len(), 16);
    assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(lease.dns, vec![Ipv4Addr::new(10, 0, 0, 53)]);
    assert_eq!(lease.domain_name.as_deref(), Some("isp.example"));
    assert_eq!(lease.lease_seconds, Some(LEASE));
    assert_eq!(lease.renew_after.unwrap().until(lease.rebind_after.unwrap()), Duration::from_secs(5));
    let log = server.wait_for_log(&format!("lease {ip} has been allocated"), Duration::from_secs(5)).unwrap();
    assert!(received(&log, "DHCPDISCOVER") >= 1 && received(&log, "DHCPREQUEST") >= 1, "{log}");
    let csv = std::fs::read_to_string(server_dir.path().join("kea-leases.csv")).unwrap();
    assert!(csv.contains(&format!("{ip},{CLIENT_MAC},01:{CLIENT_MAC}")), "{csv}");

    // T1 (5 s): unicast from our address to the server's, now that it is configured.
    setup.configure_address();
    let seq = setup.last_seq();
    let renewed = setup.wait_event("dhcp4.lease.renewed", seq, Duration::from_secs(30));
    assert_eq!(renewed["attributes"]["via"], "RENEWING");
    let unicast = format!("DHCPREQUEST (type 3) received from {ip} to 10.0.0.1 ");
    server.wait_for_log(&unicast, Duration::from_secs(5)).unwrap();

    // Restart: INIT-REBOOT, no DISCOVER.
    let seq = setup.last_seq();
    stop_client(&mut client);
    let before = server.log().len();
    let mut client = setup.start_client();
    let renewed = setup.wait_event("dhcp4.lease.renewed", seq, Duration::from_secs(30));
    assert_eq!(renewed["attributes"]["via"], "INIT-REBOOT");
    let log =
        server.wait_for_log(&format!("INIT-REBOOT state and requests address {ip}"), Duration::from_secs(5)).unwrap();
    let after_restart = &log[before..];
    assert_eq!(received(after_restart, "DHCPDISCOVER"), 0, "{after_restart}");
    assert!(received(after_restart, "DHCPREQUEST") >= 1, "{after_restart}");

    // Release.
    release_client(&mut client);
    server.wait_for_log(&format!("address {ip} was released properly"), Duration::from_secs(5)).unwrap();
    wait_until("kea writes the released lease", Duration::from_secs(5), || {
        let csv = std::fs::read_to_string(server_dir.path().join("kea-leases.csv")).unwrap_or_default();
        // A released lease is rewritten with a valid lifetime of 0.
        csv.lines().last().is_some_and(|l| l.starts_with(&format!("{ip},{CLIENT_MAC},01:{CLIENT_MAC},0,")))
    });
    assert!(!setup.ack_path().exists());
}

#[test]
fn rebinds_at_t2_without_the_address_configured_against_kea() {
    if !testbed::require("rebinds_at_t2_without_the_address_configured_against_kea", &["kea-dhcp4"]) {
        return;
    }
    let setup = Setup::new("d4kr", "10.0.0.1/16");
    let server_dir = TempDir::new("d4kr-srv");
    let server = kea(&setup, server_dir.path(), "rebind");
    let _client = setup.start_client();
    setup.wait_event("dhcp4.lease.bound", 0, Duration::from_secs(30));
    let ip = setup.lease().client_ip.unwrap();
    // No address on cli0: the unicast renewal at T1 cannot be sent; at T2 the
    // broadcast REQUEST reaches kea, whose raw socket answers without ARP.
    let renewed = setup.wait_event("dhcp4.lease.renewed", 0, Duration::from_secs(30));
    assert_eq!(renewed["attributes"]["via"], "REBINDING", "{renewed}");
    let metrics = &setup.status()["metrics"];
    assert!(metrics["send_errors"]["request_renewing"].as_u64().unwrap() >= 1, "{metrics}");
    assert_eq!(metrics["sent"]["request_renewing"], 0, "{metrics}");
    server
        .wait_for_log(&format!("DHCPREQUEST (type 3) received from {ip} to 255.255.255.255 "), Duration::from_secs(5))
        .unwrap();
}
