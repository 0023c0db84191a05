//! dhcp4d as a service: its status pages and control API, a clean stop that
//! writes every acknowledged lease and a restart that remembers them, waiting
//! for lan0's address, and a bad config.json reported without losing the last
//! good one. Clients are busybox udhcpc (`-q`: one lease, then exit).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Lan, wait_for};
use testbed::{PeerSpec, Readiness};

/// Runs udhcpc once on the client side; returns its output.
fn udhcpc(lan: &Lan, extra: &[&str]) -> String {
    let iface = lan.client_if.clone();
    let mut args = vec!["udhcpc", "-f", "-q", "-n", "-i", iface.as_str(), "-s", "/bin/true", "-t", "10", "-T", "2"];
    args.extend_from_slice(extra);
    let client = lan.cli.spawn(
        PeerSpec { timeout: Duration::from_secs(40), ..PeerSpec::new("udhcpc", "busybox", &args) }
            .ready_on_log("obtained"),
    );
    client.log()
}

fn leased_addr(out: &str) -> String {
    out.split("lease of ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned()
}

#[test]
fn status_pages_and_control_api_show_the_leases() {
    if !testbed::require("status_pages_and_control_api_show_the_leases", &["busybox", "promtool"]) {
        return;
    }
    let mac = "02:73:53:00:5e:01";
    let mut lan = Lan::new("page", mac, None);
    // A public address on lan0 too, to see a non-private client refused.
    lan.srv.ip(&["addr", "add", "203.0.113.1/24", "dev", "lan0"]);
    lan.start(&[]);
    let addr = leased_addr(&udhcpc(&lan, &["-x", "hostname:Web-Page"]));
    let lease = wait_for(Duration::from_secs(10), || lan.lease_of(mac)).unwrap();
    assert_eq!(lease.hostname, "web-page");

    // Listeners on every private address of the namespace, port 8067.
    let html = wait_for(Duration::from_secs(10), || {
        let r = lan.http_get("192.168.77.1:8067", "/", None);
        (r.status == 200 && r.text().contains(&addr)).then_some(r)
    })
    .expect("the page lists the lease");
    let text = html.text();
    assert!(
        text.contains("<title>DHCPv4 status</title>") && text.contains(">web-page<") && text.contains(mac),
        "{text}"
    );
    assert!(text.contains("Dynamic leases (1)"), "{text}");

    let file = std::fs::read_to_string(runtime::perm::dhcp4d_leases_path(&lan.perm())).unwrap();
    assert!(file.starts_with("[\n\t{\n\t\t\"num\": "), "router7's tab-indented array: {file}");
    let on_disk: serde_json::Value = serde_json::from_str(&file).unwrap();
    for (path, accept) in [("/leases.json", None), ("/", Some("application/json"))] {
        let r = lan.http_get("127.0.0.1:8067", path, accept);
        assert_eq!(r.status, 200);
        assert_eq!(r.json().unwrap(), on_disk, "{path} {accept:?}");
    }

    let r = lan.http_get("127.0.0.1:8067", "/lease/web-page", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["addr"], addr);
    let active = r.headers.iter().find(|(k, _)| k == "x-lease-active").map(|(_, v)| v.as_str());
    assert_eq!(active, Some("true"), "just acknowledged");
    assert_eq!(lan.http_get("127.0.0.1:8067", "/lease/nobody", None).status, 404);
    assert_eq!(lan.http_get("127.0.0.1:8067", "/nothing-here", None).status, 404);

    let metrics = lan.http_get("127.0.0.1:8067", "/metrics", None).text();
    assert!(metrics.contains("dhcp4d_acks_total 1\n"), "{metrics}");
    assert!(metrics.contains("dhcp4d_leases_in_use 1\n"), "{metrics}");
    runtime::testing::promtool_check(&metrics).unwrap();

    // A client from a public address is refused: the pages name LAN devices.
    lan.cli.ip(&["addr", "add", "203.0.113.2/24", "dev", &lan.client_if]);
    let refused = lan.cli.enter(|| {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect("203.0.113.1:8067").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        runtime::unix_http::parse_response(&raw).unwrap()
    });
    assert_eq!(refused.status, 403);

    let status = lan.status();
    assert_eq!(status["phase"], "Up");
    assert_eq!(status["server"], "192.168.77.1");
    assert_eq!(status["pool"]["start"], "192.168.77.2");
    let events = lan.events("dhcp4d.lease.granted");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["attributes"]["addr"], addr);
    assert_eq!(events[0]["attributes"]["hostname"], "web-page");
}

#[test]
fn sigterm_writes_pending_leases_and_a_restart_remembers_them() {
    if !testbed::require("sigterm_writes_pending_leases_and_a_restart_remembers_them", &["busybox"]) {
        return;
    }
    let (mac_a, mac_b) = ("02:73:53:00:5e:0a", "02:73:53:00:5e:0b");
    let mut lan = Lan::new("stop", mac_a, None);
    // Writes at most once a minute: the second lease is still pending at SIGTERM.
    lan.start(&["--write-interval", "60000"]);
    let addr_a = leased_addr(&udhcpc(&lan, &[]));
    assert!(wait_for(Duration::from_secs(10), || lan.lease_of(mac_a)).is_some(), "a lone change is written at once");
    lan.cli.ip(&["link", "set", "dev", &lan.client_if, "address", mac_b]);
    let addr_b = leased_addr(&udhcpc(&lan, &[]));
    std::thread::sleep(Duration::from_millis(500));
    assert!(lan.lease_of(mac_b).is_none(), "the second write waits for the interval");

    let status = lan.stop();
    assert!(status.success(), "clean exit: {status}");
    let a = lan.lease_of(mac_a).expect("lease A on disk");
    let b = lan.lease_of(mac_b).expect("lease B written at SIGTERM");
    assert_eq!((a.addr.unwrap().to_string(), b.addr.unwrap().to_string()), (addr_a.clone(), addr_b.clone()));
    assert!(!lan.run_dir().join("dhcp4d.pid").exists() && !lan.socket().exists(), "cleaned up");

    // A restart forgets nobody: B asks again and gets its address back, as
    // a renewal of its running lease (no new grant).
    lan.start(&[]);
    let again = leased_addr(&udhcpc(&lan, &[]));
    assert_eq!(again, addr_b);
    assert!(
        wait_for(Duration::from_secs(10), || lan.lease_of(mac_b).filter(|l| l.last_ack > b.last_ack)).is_some(),
        "the renewal after the restart is written"
    );
    // The event stream survived the restart (events.jsonl under /perm).
    let granted = lan.events("dhcp4d.lease.granted");
    let seen: Vec<(u64, String)> = granted
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["attributes"]["hardware_addr"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(seen, vec![(1, mac_a.to_owned()), (2, mac_b.to_owned())]);
}

#[test]
fn waits_for_lan0s_address_then_serves() {
    if !testbed::require("waits_for_lan0s_address_then_serves", &["busybox"]) {
        return;
    }
    let mut lan = Lan::new("wait", "02:73:53:00:5e:21", None);
    let interfaces = lan.perm().join("interfaces.json");
    std::fs::write(&interfaces, "{\"interfaces\":[{\"name\":\"lan0\"}]}\n").unwrap();
    let socket = lan.socket();
    lan.start_with(&[], Readiness::File(socket));
    let status = wait_for(Duration::from_secs(10), || {
        let s = lan.status();
        s["conditions"].as_array()?.iter().any(|c| c["type"] == "Serving").then_some(s)
    })
    .unwrap();
    assert_eq!(status["phase"], "Pending", "{status}");
    let serving = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Serving").unwrap().clone();
    assert_eq!((serving["status"].as_str(), serving["reason"].as_str()), (Some("False"), Some("NoAddress")));

    std::fs::write(&interfaces, "{\"interfaces\":[{\"name\":\"lan0\",\"addr\":\"192.168.77.1/24\"}]}\n").unwrap();
    lan.dhcp4d().signal("USR1");
    assert!(wait_for(Duration::from_secs(10), || (lan.status()["phase"] == "Up").then_some(())).is_some());
    let addr = leased_addr(&udhcpc(&lan, &[]));
    assert!(addr.starts_with("192.168.77."), "{addr}");
}

#[test]
fn a_bad_config_is_reported_and_the_last_good_one_kept() {
    if !testbed::require("a_bad_config_is_reported_and_the_last_good_one_kept", &["busybox"]) {
        return;
    }
    let mut lan = Lan::new("conf", "02:73:53:00:5e:31", Some("{\"lease_seconds\": 3600}\n"));
    lan.start(&[]);
    let config = lan.perm().join("dhcp4d/config.json");
    std::fs::write(
        &config,
        "{\n\t\"lease_seconds\": 3600,\n\t\"pool\": {\"start\": \"192.168.77.10\", \"end\": \"192.168.78.5\"}\n}\n",
    )
    .unwrap();
    lan.dhcp4d().signal("USR1");
    let condition = wait_for(Duration::from_secs(10), || {
        lan.status()["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "ConfigValid" && c["status"] == "False")
            .cloned()
    })
    .expect("ConfigValid turns False");
    let message = condition["message"].as_str().unwrap();
    assert!(message.contains("config.json:3:44: pool.end: 192.168.78.5 is not a host address"), "{message}");
    assert!(lan.dhcp4d().log().contains("keeping the last good configuration"), "{}", lan.dhcp4d().log());
    // Still serving, with the last good lease time.
    let out = udhcpc(&lan, &[]);
    assert!(out.contains("lease time 3600"), "{out}");
    assert_eq!(lan.status()["phase"], "Up");
}

#[test]
fn a_lease_nobody_renews_expires_with_an_event() {
    if !testbed::require("a_lease_nobody_renews_expires_with_an_event", &["busybox"]) {
        return;
    }
    let mac = "02:73:53:00:5e:41";
    let mut lan = Lan::new("expi", mac, Some("{\"lease_seconds\": 10}\n"));
    lan.start(&[]);
    // udhcpc -q takes the lease and exits: nobody renews it.
    let addr = leased_addr(&udhcpc(&lan, &[]));
    let expired = wait_for(Duration::from_secs(40), || {
        lan.events("dhcp4d.lease.expired").into_iter().find(|e| e["attributes"]["hardware_addr"] == mac)
    })
    .expect("an expiry event from the timer, without any traffic");
    assert_eq!(expired["attributes"]["addr"], addr);
    let metrics = lan.http_get("127.0.0.1:8067", "/metrics", None).text();
    assert!(metrics.contains("dhcp4d_expirations_total 1\n"), "{metrics}");
    assert!(metrics.contains("dhcp4d_leases_in_use 0\n"), "{metrics}");
    // The lease stays in the file (expired) so the client gets the address back.
    assert_eq!(lan.lease_of(mac).unwrap().addr.unwrap().to_string(), addr);
    assert_eq!(leased_addr(&udhcpc(&lan, &[])), addr);
}
