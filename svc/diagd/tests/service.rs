//! diagd as a service: HTTP only on private addresses (never the uplink's),
//! the three pages, metrics that promtool accepts, the control API (phase,
//! conditions, the tree, events), `renew` and SIGUSR1 re-checking at once, a
//! new config.json taking effect on SIGUSR1, and a bad one refused while the
//! last good one keeps running.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Lab, WAIT, node};
use serde_json::json;

fn rounds(lab: &Lab) -> u64 {
    lab.status()["round"]["count"].as_u64().unwrap()
}

/// Waits for more than `after` rounds, well before the 30 s interval would bring one.
fn wait_round_after(lab: &Lab, after: u64) {
    let deadline = runtime::clock::now() + Duration::from_secs(10);
    while rounds(lab) <= after {
        assert!(runtime::clock::now() < deadline, "no new round within 10 s\n{}", lab.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_private_addresses_control_api_metrics_and_reloads() {
    if !testbed::require("serves_private_addresses_control_api_metrics_and_reloads", &["promtool"]) {
        return;
    }
    let mut lab = Lab::new("ds");
    // A long interval: every later round is one we asked for.
    lab.config(json!({"ipv6": "ignored", "interval_seconds": 30, "retry_seconds": 1}));
    lab.start_diagd(&[]);
    lab.expect("Healthy", "");

    // Private addresses only: loopback and the LAN, never the uplink.
    for addr in ["127.0.0.1:7733", "192.168.42.1:7733", "[2001:db8:42::1]:7733"] {
        let (code, body) = lab.http(addr, "/health.json").unwrap();
        assert_eq!(code, 200, "{addr}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["first_error"], "");
    }
    assert!(lab.http("192.0.2.2:7733", "/health.json").is_err(), "nothing listens on the uplink");

    let (code, html) = lab.http("127.0.0.1:7733", "/").unwrap();
    assert_eq!(code, 200);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("✔ link/uplink0: "), "{html}");
    assert!(html.contains("✔ tcp4/198.51.100.1:8443: connection established"), "{html}");
    assert_eq!(lab.http("127.0.0.1:7733", "/nope").unwrap().0, 404);

    let (code, metrics) = lab.http("127.0.0.1:7733", "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("\ndiagd_healthy 1\n"), "{metrics}");
    assert!(metrics.contains("diagd_check_ok{check=\"tcp4\",name=\"tcp4/198.51.100.1:8443\"} 1\n"), "{metrics}");
    assert!(metrics.contains("diagd_check_latency_seconds{check=\"ping4_gateway\""), "{metrics}");
    runtime::testing::promtool_check(&metrics).unwrap();

    // The control API: phase, one condition per family, the tree, events.
    let status = lab.status();
    assert_eq!(status["phase"], "Healthy");
    let conds: Vec<(String, String)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned()))
        .collect();
    for (kind, want) in [("ConfigValid", "True"), ("Link", "True"), ("IPv4", "True")] {
        assert!(conds.contains(&(kind.to_owned(), want.to_owned())), "{kind}: {conds:?}");
    }
    assert_eq!(status["checks"][0]["name"], "link/uplink0");
    let events = lab.events("diagd.health.changed");
    assert_eq!(events[0]["attributes"], json!({"from": "Pending", "to": "Healthy", "first_error": ""}));

    // renew: a round now, not in 30 s.
    let before = rounds(&lab);
    assert_eq!(lab.command("renew"), 202);
    wait_round_after(&lab, before);

    // SIGUSR1 (what netconfigd sends after applying): a round now as well.
    let pid = lab.diagd.as_ref().unwrap().pid();
    let before = rounds(&lab);
    lab.diagd.as_ref().unwrap().signal("USR1");
    wait_round_after(&lab, before);

    // A bad config.json is refused; the running config stays and so does health.
    std::fs::write(lab.perm.join("diagd/config.json"), br#"{"tcp4_target": "198.51.100.1:9", "colour": "red"}"#)
        .unwrap();
    lab.diagd.as_ref().unwrap().signal("USR1");
    let deadline = runtime::clock::now() + WAIT;
    loop {
        let s = lab.status();
        let valid = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "ConfigValid").cloned().unwrap();
        if valid["status"] == "False" {
            assert!(valid["message"].as_str().unwrap().contains("unknown field `colour`"), "{valid}");
            assert!(valid["message"].as_str().unwrap().contains("config.json:1:"), "file:line:column: {valid}");
            break;
        }
        assert!(runtime::clock::now() < deadline, "bad config not reported\n{}", lab.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let h = lab.expect("Healthy", "");
    assert_eq!(node(&h, "tcp4")["name"], "tcp4/198.51.100.1:8443", "the last good config runs on");

    // A good new config takes effect on SIGUSR1: a closed port now.
    lab.config(json!({"ipv6": "ignored", "interval_seconds": 30, "tcp4_target": "198.51.100.1:9"}));
    lab.diagd.as_ref().unwrap().signal("USR1");
    lab.expect("Unhealthy", "tcp4/198.51.100.1:9: connection refused");
    assert_eq!(lab.diagd.as_ref().unwrap().pid(), pid, "never restarted");

    // stop: a clean exit.
    assert_eq!(lab.command("stop"), 202);
    let status = lab.diagd.as_mut().unwrap().wait(Duration::from_secs(10)).expect("diagd exits on stop");
    assert!(status.success(), "{status}");
}
