//! dhcp4 against a real dnsmasq in network namespaces: obtain, renew by
//! unicast (at T1 and on the `renew` command), restart (INIT-REBOOT from the
//! stored ACK), release; and rebinding by broadcast at T2 when the server
//! cannot be reached by unicast. Asserts on dnsmasq's own log and lease file
//! and on our lease.json and control API.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use common::{CLIENT_MAC, Setup, release_client, stop_client, wait_until};
use testbed::{Peer, PeerSpec};

fn dnsmasq(setup: &Setup, dir: &Path, t1: u32, t2: u32) -> Peer {
    // 2 minutes is dnsmasq's shortest lease; T1/T2 make it move sooner.
    setup.server.spawn(testbed::dnsmasq_dhcp(
        "srv0",
        "192.168.77.10,192.168.77.20,2m",
        dir,
        &[
            &format!("--dhcp-option=option:T1,{t1}s"),
            &format!("--dhcp-option=option:T2,{t2}s"),
            "--dhcp-option=option:dns-server,192.168.77.53",
            "--no-ping",
        ],
    ))
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn obtains_renews_restarts_and_releases_against_dnsmasq() {
    if !testbed::require("obtains_renews_restarts_and_releases_against_dnsmasq", &["dnsmasq"]) {
        return;
    }
    let setup = Setup::new("d4dq", "192.168.77.1/24");
    let server_dir = testbed::TempDir::new("d4dq-srv");
    let server = dnsmasq(&setup, server_dir.path(), 8, 100);

    // Obtain.
    let mut client = setup.start_client();
    let bound = setup.wait_event("dhcp4.lease.bound", 0, Duration::from_secs(30));
    let lease = setup.lease();
    let ip = lease.client_ip.unwrap();
    assert!((Ipv4Addr::new(192, 168, 77, 10)..=Ipv4Addr::new(192, 168, 77, 20)).contains(&ip), "{ip}");
    assert_eq!(bound["attributes"]["client_ip"], ip.to_string());
    assert_eq!(lease.prefix_len(), 24);
    assert_eq!(lease.router, Some(Ipv4Addr::new(192, 168, 77, 1)));
    assert_eq!(lease.dns, vec![Ipv4Addr::new(192, 168, 77, 53)]);
    assert_eq!((lease.lease_seconds, lease.server_id), (Some(120), Some(Ipv4Addr::new(192, 168, 77, 1))));
    // valid_until is the expiry (120 s), not the renewal (8 s) as in router7.
    assert_eq!(lease.renew_after.unwrap().until(lease.valid_until), Duration::from_secs(112));
    assert!(setup.ack_path().exists());
    let status = setup.status();
    assert_eq!((status["phase"].as_str(), status["state"].as_str()), (Some("Bound"), Some("BOUND")));
    let log = server.wait_for_log(&format!("DHCPACK(srv0) {ip} {CLIENT_MAC}"), Duration::from_secs(5)).unwrap();
    for step in ["DHCPDISCOVER(srv0) ", "DHCPOFFER(srv0) ", "DHCPREQUEST(srv0) "] {
        assert!(log.contains(step), "{step} missing from:\n{log}");
    }

    // Renew at T1 by unicast, once the address is configured (netconfigd's job).
    setup.configure_address();
    let seq = setup.last_seq();
    let renewed = setup.wait_event("dhcp4.lease.renewed", seq, Duration::from_secs(30));
    assert_eq!(renewed["attributes"]["via"], "RENEWING");
    let metrics = &setup.status()["metrics"];
    assert!(metrics["sent"]["request_renewing"].as_u64().unwrap() >= 1, "{metrics}");
    assert_eq!(metrics["send_errors"]["request_renewing"], 0, "{metrics}");
    assert_eq!(metrics["sent"]["request_rebinding"], 0, "{metrics}");
    let acks = count(&server.log(), &format!("DHCPACK(srv0) {ip} {CLIENT_MAC}"));
    assert!(acks >= 2, "{}", server.log());

    // And on the renew command.
    let seq = setup.last_seq();
    setup.post("renew");
    let renewed = setup.wait_event("dhcp4.lease.renewed", seq, Duration::from_secs(20));
    assert_eq!(renewed["attributes"]["via"], "RENEWING");
    wait_until("dnsmasq ACKs the renewal", Duration::from_secs(5), || {
        count(&server.log(), &format!("DHCPACK(srv0) {ip} {CLIENT_MAC}")) > acks
    });

    // Restart: the new process verifies the stored ACK with INIT-REBOOT.
    let seq = setup.last_seq();
    stop_client(&mut client);
    let before = server.log().len();
    let mut client = setup.start_client();
    let renewed = setup.wait_event("dhcp4.lease.renewed", seq, Duration::from_secs(30));
    assert_eq!(renewed["attributes"]["via"], "INIT-REBOOT");
    assert_eq!(setup.lease().client_ip, Some(ip));
    let log = server.wait_for_log(&format!("DHCPACK(srv0) {ip}"), Duration::from_secs(5)).unwrap();
    let after_restart = &log[before..];
    assert!(after_restart.contains(&format!("DHCPREQUEST(srv0) {ip} {CLIENT_MAC}")), "{after_restart}");
    assert!(!after_restart.contains("DHCPDISCOVER"), "a restart must not rediscover:\n{after_restart}");

    // Release: SIGUSR2, exit 125, dnsmasq frees the lease.
    release_client(&mut client);
    server.wait_for_log(&format!("DHCPRELEASE(srv0) {ip} {CLIENT_MAC}"), Duration::from_secs(5)).unwrap();
    let leases = server_dir.path().join("leases");
    wait_until("dnsmasq drops the lease from its file", Duration::from_secs(5), || {
        !std::fs::read_to_string(&leases).unwrap_or_default().contains(&ip.to_string())
    });
    assert!(!setup.ack_path().exists(), "the stored ACK is forgotten");
    assert_eq!(setup.lease().client_ip, Some(ip), "lease.json stays, as in router7");
}

#[test]
fn rebinds_by_broadcast_at_t2_when_unicast_to_the_server_fails() {
    if !testbed::require("rebinds_by_broadcast_at_t2_when_unicast_to_the_server_fails", &["dnsmasq", "nft"]) {
        return;
    }
    let setup = Setup::new("d4dr", "192.168.77.1/24");
    let server_dir = testbed::TempDir::new("d4dr-srv");
    let server = dnsmasq(&setup, server_dir.path(), 3, 8);
    let _client = setup.start_client();
    setup.wait_event("dhcp4.lease.bound", 0, Duration::from_secs(30));
    let ip = setup.lease().client_ip.unwrap();
    setup.configure_address();
    // The server is unreachable by unicast: our output drops it (sendto fails).
    setup.client.exec_ok(
        "nft",
        &["add table ip t; add chain ip t out { type filter hook output priority 0; }; \
             add rule ip t out udp dport 67 ip daddr != 255.255.255.255 drop"],
    );
    let seq = 0;
    let renewed = setup.wait_event("dhcp4.lease.renewed", seq, Duration::from_secs(30));
    assert_eq!(renewed["attributes"]["via"], "REBINDING", "{renewed}");
    let metrics = &setup.status()["metrics"];
    assert!(metrics["send_errors"]["request_renewing"].as_u64().unwrap() >= 1, "{metrics}");
    assert!(metrics["sent"]["request_rebinding"].as_u64().unwrap() >= 1, "{metrics}");
    assert!(count(&server.log(), &format!("DHCPACK(srv0) {ip} {CLIENT_MAC}")) >= 2, "{}", server.log());
}

/// A child process killed when dropped, so a failed test leaves none behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process called `name` (a copy of `sleep`) with its pid file in `run`, as
/// init would have it: what dhcp4 signals after writing a lease.
fn fake_service(dir: &Path, run: &Path, name: &str) -> Killed {
    let exe = dir.join(name);
    testbed::install_executable(Path::new("/bin/sleep"), &exe);
    let child = std::process::Command::new(&exe).arg("120").spawn().unwrap();
    wait_until(&format!("{name} has its name"), Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{}/comm", child.id())).is_ok_and(|c| c.trim() == name)
    });
    std::fs::write(run.join(format!("{name}.pid")), format!("{}\n", child.id())).unwrap();
    Killed(child)
}

#[test]
fn waits_for_the_uplink_uses_the_spoofed_mac_and_signals_readers() {
    if !testbed::require("waits_for_the_uplink_uses_the_spoofed_mac_and_signals_readers", &["dnsmasq"]) {
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let client_ns = testbed::Netns::new("d4wc");
    let dir = testbed::TempDir::new("d4w");
    let (perm, run) = (dir.path().join("perm"), dir.path().join("run"));
    std::fs::create_dir_all(&perm).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    let spoofed = "02:73:53:00:be:ef";
    std::fs::write(
        perm.join("interfaces.json"),
        format!(
            r#"{{"interfaces":[{{"name":"cli0","hardware_addr":"{CLIENT_MAC}","spoof_hardware_addr":"{spoofed}"}}]}}"#
        ),
    )
    .unwrap();
    let mut readers: Vec<_> = ["netconfigd", "dnsd"].iter().map(|n| fake_service(dir.path(), &run, n)).collect();
    let socket = runtime::control::socket_path(&run, "dhcp4");
    let mut client = client_ns.spawn(
        PeerSpec::new(
            "dhcp4",
            env!("CARGO_BIN_EXE_dhcp4"),
            &["--perm", perm.to_str().unwrap(), "--run", run.to_str().unwrap(), "--uplink", "cli0"],
        )
        .ready_when(testbed::Readiness::File(socket.clone())),
    );
    // No cli0 yet: dhcp4 waits, saying so, and does not exit.
    assert!(client.wait(Duration::from_secs(2)).is_none(), "dhcp4 exited:\n{}", client.log());
    let status = common::get(&socket, "/v1/status");
    assert_eq!(status["phase"], "Pending");
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "InterfaceReady").unwrap();
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("Missing")));

    // The uplink appears (with its own MAC; netconfigd would set the spoofed one).
    let server_ns = testbed::Netns::new("d4ws");
    testbed::veth(&server_ns, "srv0", common::SERVER_MAC, &client_ns, "cli0", CLIENT_MAC);
    server_ns.addr("srv0", "192.168.77.1/24");
    let setup_dir = testbed::TempDir::new("d4w-srv");
    let server = server_ns.spawn(testbed::dnsmasq_dhcp(
        "srv0",
        "192.168.77.10,192.168.77.20,2m",
        setup_dir.path(),
        &["--no-ping"],
    ));
    let deadline = runtime::clock::now() + Duration::from_secs(30);
    while common::get(&socket, "/v1/status")["phase"] != "Bound" {
        assert!(runtime::clock::now() < deadline, "not bound:\n{}\n{}", client.log(), server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.log();
    assert!(log.contains(&format!("DHCPDISCOVER(srv0) {spoofed}")), "{log}");
    assert!(!log.contains(CLIENT_MAC), "the interface's own MAC is not used:\n{log}");
    assert_eq!(common::get(&socket, "/v1/status")["mac"], spoofed);

    // netconfigd and dnsd were told (SIGUSR1 ends a sleep).
    for (reader, name) in readers.iter_mut().zip(["netconfigd", "dnsd"]) {
        let mut status = None;
        wait_until(&format!("{name} gets SIGUSR1"), Duration::from_secs(5), || {
            status = reader.0.try_wait().unwrap();
            status.is_some()
        });
        assert_eq!(status.unwrap().signal(), Some(runtime::Signal::Usr1.number()), "{name}");
    }
}
