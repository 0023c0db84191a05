//! dhcp4d against three real DHCP clients — ISC dhclient, dhcpcd and busybox
//! udhcpc — each in its own pair of namespaces: the client gets an address,
//! renews it at T1 (20-second leases, so T1 is 10 s), and releases it. At each
//! step the client's own output, its interface and dhcp4d's leases.json and
//! event stream must agree.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Lan, hook_script, lines, wait_for};
use testbed::PeerSpec;

const LEASE: &str = r#"{"lease_seconds": 20}"#;
/// Generous: T1 is 10 s, and the machine may be loaded.
const RENEW_WITHIN: Duration = Duration::from_secs(40);

/// Waits for the lease of `mac` in leases.json to be at `addr` with a
/// `last_ack` later than `after`.
fn wait_for_ack(
    lan: &Lan,
    mac: &str,
    addr: &str,
    after: Option<runtime::timefmt::Timestamp>,
) -> runtime::perm::Dhcp4dLease {
    wait_for(RENEW_WITHIN, || {
        lan.lease_of(mac)
            .filter(|l| l.addr.map(|a| a.to_string()).as_deref() == Some(addr) && after.is_none_or(|t| l.last_ack > t))
    })
    .unwrap_or_else(|| panic!("no ACK of {addr} to {mac} in leases.json after {after:?}: {:#?}", lan.leases()))
}

/// Waits until dhcp4d reports the release of `addr` by `mac` (event and file).
fn wait_for_release(lan: &Lan, mac: &str, addr: &str) {
    let released = wait_for(Duration::from_secs(20), || {
        lan.events("dhcp4d.lease.released")
            .into_iter()
            .find(|e| e["attributes"]["hardware_addr"] == mac && e["attributes"]["addr"] == addr)
    });
    assert!(released.is_some(), "no release event; events: {:?}", lan.events("dhcp4d."));
    let lease = wait_for(Duration::from_secs(10), || {
        lan.lease_of(mac).filter(|l| l.expiry <= runtime::timefmt::Timestamp::from_system(runtime::clock::wall_now()))
    });
    assert!(lease.is_some(), "leases.json still shows a running lease: {:#?}", lan.leases());
    assert_eq!(lan.lease_of(mac).unwrap().addr.unwrap().to_string(), addr, "the client keeps its claim");
}

fn granted(lan: &Lan, mac: &str) -> String {
    let events = lan.events("dhcp4d.lease.granted");
    let e = events.iter().find(|e| e["attributes"]["hardware_addr"] == mac).expect("a granted event");
    e["attributes"]["addr"].as_str().unwrap().to_owned()
}

#[test]
fn dhclient_gets_renews_and_releases_a_lease() {
    if !testbed::require("dhclient_gets_renews_and_releases_a_lease", &["dhclient"]) {
        return;
    }
    let mac = "02:73:53:00:d1:01";
    let mut lan = Lan::new("dhcl", mac, Some(LEASE));
    lan.start(&[]);
    let dir = lan.dir.path().to_owned();
    let log = dir.join("script.log");
    let script = hook_script(
        &dir,
        "dhclient-script",
        &format!(
            "echo \"$reason $new_ip_address\" >> {}\n\
             case \"$reason\" in\n\
               BOUND|RENEW|REBIND|REBOOT) ip addr replace \"$new_ip_address/$new_subnet_mask\" dev \"$interface\" ;;\n\
               RELEASE|EXPIRE|STOP) ip addr flush dev \"$interface\" ;;\n\
             esac",
            log.display()
        ),
    );
    let conf = dir.join("dhclient.conf");
    std::fs::write(
        &conf,
        "send host-name \"dhclient-test\";\nrequest subnet-mask, routers, domain-name-servers, domain-name;\n",
    )
    .unwrap();
    let (leases, pid) = (dir.join("dhclient.leases"), dir.join("dhclient.pid"));
    let args = |release: bool| {
        let mut a = vec![if release { "-r" } else { "-d" }, "-v"];
        a.extend(["-cf", conf.to_str().unwrap(), "-lf", leases.to_str().unwrap(), "-pf", pid.to_str().unwrap()]);
        a.extend(["-sf", script.to_str().unwrap(), lan.client_if.as_str()]);
        a.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let mut spec = PeerSpec::new("dhclient", "dhclient", &[]).ready_on_log("bound to ");
    spec.args = args(false);
    let client = lan.cli.spawn(PeerSpec { timeout: Duration::from_secs(30), ..spec });

    // Obtained: dhclient's log, its lease file, the interface and leases.json agree.
    let out = client.log();
    let addr = out.split("bound to ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    assert!(out.contains(&format!("DHCPACK of {addr} from 192.168.77.1")), "{out}");
    let lease_file = std::fs::read_to_string(&leases).unwrap();
    assert!(lease_file.contains(&format!("fixed-address {addr};")), "{lease_file}");
    assert!(lease_file.contains("option dhcp-lease-time 20;"), "{lease_file}");
    assert!(lease_file.contains("option routers 192.168.77.1;"), "{lease_file}");
    let first = wait_for_ack(&lan, mac, &addr, None);
    assert_eq!(first.hostname, "dhclient-test");
    assert_eq!(granted(&lan, mac), addr);
    assert!(wait_for(Duration::from_secs(5), || lan.client_addrs().contains(&addr).then_some(())).is_some());

    // Renewed at T1, by unicast from the configured address.
    assert!(
        wait_for(RENEW_WITHIN, || lines(&log).iter().any(|l| l.starts_with("RENEW ")).then_some(())).is_some(),
        "dhclient did not renew: {:?}\n{}",
        lines(&log),
        client.log()
    );
    assert!(lines(&log).contains(&format!("RENEW {addr}")), "{:?}", lines(&log));
    wait_for_ack(&lan, mac, &addr, Some(first.last_ack));

    // Released: dhclient -r sends DHCPRELEASE and stops the running client.
    let release = lan.cli.exec("dhclient", &args(true).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(release.status.success(), "{}", String::from_utf8_lossy(&release.stderr));
    wait_for_release(&lan, mac, &addr);
}

#[test]
fn dhcpcd_gets_renews_and_releases_a_lease() {
    if !testbed::require("dhcpcd_gets_renews_and_releases_a_lease", &["dhcpcd"]) {
        return;
    }
    let mac = "02:73:53:00:d1:02";
    let mut lan = Lan::new("dhcd", mac, Some(LEASE));
    lan.start(&[]);
    let dir = lan.dir.path().to_owned();
    let log = dir.join("script.log");
    // dhcpcd keeps its lease under /var/lib/dhcpcd by interface name: start clean.
    let state = format!("/var/lib/dhcpcd/{}.lease", lan.client_if);
    let _ = std::fs::remove_file(&state);
    let script = hook_script(&dir, "dhcpcd-hook", &format!("echo \"$reason $new_ip_address\" >> {}", log.display()));
    let iface = lan.client_if.clone();
    let spec = PeerSpec::new(
        "dhcpcd",
        "dhcpcd",
        // IPv4 only, foreground, debug, no ARP probe, no IPv4LL, no config
        // file, our hook instead of the system's (which would edit resolv.conf).
        &["-4", "-B", "-d", "-A", "-L", "-f", "/dev/null", "-c", script.to_str().unwrap(), "-h", "dhcpcd-test", &iface],
    )
    .ready_on_log("leased ");
    let client = lan.cli.spawn(PeerSpec { timeout: Duration::from_secs(30), ..spec });
    let out = client.log();
    let addr = out.split("leased ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    assert!(out.contains(&format!("{addr} for 20 seconds")), "{out}");
    let first = wait_for_ack(&lan, mac, &addr, None);
    assert_eq!(first.hostname, "dhcpcd-test");
    assert_eq!(granted(&lan, mac), addr);
    assert!(wait_for(Duration::from_secs(10), || lan.client_addrs().contains(&addr).then_some(())).is_some());
    assert!(
        wait_for(Duration::from_secs(10), || lines(&log).contains(&format!("BOUND {addr}")).then_some(())).is_some()
    );

    assert!(
        wait_for(RENEW_WITHIN, || lines(&log).contains(&format!("RENEW {addr}")).then_some(())).is_some(),
        "dhcpcd did not renew: {:?}\n{}",
        lines(&log),
        client.log()
    );
    wait_for_ack(&lan, mac, &addr, Some(first.last_ack));

    let release = lan.cli.exec("dhcpcd", &["-4", "-k", &iface]);
    assert!(release.status.success(), "{}", String::from_utf8_lossy(&release.stderr));
    wait_for_release(&lan, mac, &addr);
    drop(client);
    let _ = std::fs::remove_file(&state);
}

#[test]
fn udhcpc_gets_renews_and_releases_a_lease() {
    if !testbed::require("udhcpc_gets_renews_and_releases_a_lease", &["busybox"]) {
        return;
    }
    let mac = "02:73:53:00:d1:03";
    let mut lan = Lan::new("udhc", mac, Some(LEASE));
    lan.start(&[]);
    let dir = lan.dir.path().to_owned();
    let log = dir.join("script.log");
    let script = hook_script(
        &dir,
        "udhcpc-script",
        &format!(
            "echo \"$1 $ip\" >> {}\n\
             case \"$1\" in\n\
               bound|renew) ip addr replace \"$ip/$mask\" dev \"$interface\" ;;\n\
               deconfig) ip addr flush dev \"$interface\" ;;\n\
             esac",
            log.display()
        ),
    );
    let iface = lan.client_if.clone();
    let spec = PeerSpec::new(
        "udhcpc",
        "busybox",
        &["udhcpc", "-f", "-i", &iface, "-s", script.to_str().unwrap(), "-x", "hostname:udhcpc-test", "-T", "2"],
    )
    .ready_on_log("obtained");
    let client = lan.cli.spawn(PeerSpec { timeout: Duration::from_secs(30), ..spec });
    let out = client.log();
    let addr = out.split("lease of ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
    assert!(out.contains(&format!("lease of {addr} obtained from 192.168.77.1, lease time 20")), "{out}");
    let first = wait_for_ack(&lan, mac, &addr, None);
    assert_eq!(first.hostname, "udhcpc-test");
    assert_eq!(granted(&lan, mac), addr);
    assert!(wait_for(Duration::from_secs(5), || lan.client_addrs().contains(&addr).then_some(())).is_some());

    assert!(
        wait_for(RENEW_WITHIN, || lines(&log).contains(&format!("renew {addr}")).then_some(())).is_some(),
        "udhcpc did not renew: {:?}\n{}",
        lines(&log),
        client.log()
    );
    wait_for_ack(&lan, mac, &addr, Some(first.last_ack));

    // SIGUSR2: release (udhcpc stays running, unconfigured).
    client.signal("USR2");
    wait_for_release(&lan, mac, &addr);
    assert!(
        wait_for(Duration::from_secs(5), || (!lan.client_addrs().contains(&addr)).then_some(())).is_some(),
        "udhcpc deconfigured the interface"
    );
    // SIGUSR1: it asks again and gets the same address back (nobody else needed it).
    client.signal("USR1");
    let again = wait_for(Duration::from_secs(20), || {
        let l = lan.lease_of(mac)?;
        (l.expiry > runtime::timefmt::Timestamp::from_system(runtime::clock::wall_now())).then_some(l)
    })
    .expect("a new lease after the release");
    assert_eq!(again.addr.unwrap().to_string(), addr);
}
