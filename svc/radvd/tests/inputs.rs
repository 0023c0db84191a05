//! Inputs that are missing, late or wrong: radvd waits for a LAN interface
//! that does not exist yet, reports a corrupt file with its line and column
//! and keeps advertising what it read last, and takes a corrected file on the
//! next SIGUSR1.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Host, LISTENING, Lan, ROUTER7_LEASE};

/// The condition `kind` of a status (`null` while not yet published).
fn condition<'a>(status: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    static NONE: serde_json::Value = serde_json::Value::Null;
    status["conditions"].as_array().and_then(|a| a.iter().find(|c| c["type"] == kind)).unwrap_or(&NONE)
}

#[test]
fn waits_for_the_lan_interface_and_advertises_once_it_appears() {
    if !testbed::require("waits_for_the_lan_interface_and_advertises_once_it_appears", &["rdisc6"]) {
        return;
    }
    let mut lan = Lan::new("late", Host::Quiet, Some(ROUTER7_LEASE));
    lan.spawn(&["--metrics-port", "0"], "waiting for it");
    let s = lan.wait_status("the missing interface reported", |s| {
        condition(s, "InterfaceReady")["reason"] == "InterfaceMissing"
    });
    assert_eq!(s["phase"], "Pending");
    // netconfigd creates lan0, then signals us.
    lan.connect();
    lan.sigusr1();
    lan.wait_status("advertising", |s| s["phase"] == "Up");
    assert!(lan.rdisc6("eth0").contains("Prefix                   : 2a02:168:4a00::/64"));
    assert_eq!(condition(&lan.status(), "InterfaceReady")["status"], "True");
}

#[test]
fn a_corrupt_file_is_reported_and_the_last_good_contents_kept() {
    if !testbed::require("a_corrupt_file_is_reported_and_the_last_good_contents_kept", &["rdisc6"]) {
        return;
    }
    let mut lan = Lan::new("bad", Host::Quiet, Some(ROUTER7_LEASE));
    lan.write_own("prefixes.json", r#"[{"IP":"2001:db8:77::","Mask":"//////////8AAAAAAAAAAA=="}]"#);
    lan.write_own("config.json", r#"{"search_domains": ["home.arpa"]}"#);
    lan.connect();
    lan.spawn(&["--metrics-port", "0"], LISTENING);
    let out = lan.rdisc6("eth0");
    assert!(out.contains("Prefix                   : 2001:db8:77::/64"), "{out}");
    assert!(out.contains("Prefix                   : 2a02:168:4a00::/64"), "{out}");
    assert!(out.contains("DNS search list          : home.arpa "), "{out}");

    lan.write_own("prefixes.json", "[\n{\"IP\": ");
    lan.write_own("config.json", r#"{"search_domain": ["typo.example"]}"#);
    lan.sigusr1();
    let s = lan.wait_status("the problems reported", |s| condition(s, "InputsValid")["status"] == "False");
    let message = condition(&s, "InputsValid")["message"].as_str().unwrap().to_owned();
    assert!(message.contains("prefixes.json:2:"), "{message}");
    assert!(message.contains("unknown field `search_domain`"), "{message}");
    let out = lan.rdisc6("eth0");
    assert!(out.contains("Prefix                   : 2001:db8:77::/64"), "kept: {out}");
    assert!(out.contains("DNS search list          : home.arpa "), "kept: {out}");

    // Fixed: no extra prefix (so it is deprecated) and the default search list.
    lan.write_own("prefixes.json", "[]");
    std::fs::remove_file(lan.perm().join("radvd/config.json")).unwrap();
    lan.sigusr1();
    let s = lan.wait_status("the problems gone", |s| condition(s, "InputsValid")["status"] == "True");
    assert_eq!(s["deprecated_prefixes"][0]["prefix"], "2001:db8:77::/64");
    let out = lan.rdisc6("eth0");
    assert!(out.contains("DNS search list          : lan "), "{out}");
    let deprecated = out.split("Prefix                   : 2001:db8:77::/64").nth(1).unwrap();
    assert!(deprecated.contains("Valid time              :            0"), "{out}");
}

#[test]
fn help_names_the_options() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_radvd")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for option in ["--perm DIR", "--run DIR", "--lan IFACE", "--metrics-port PORT"] {
        assert!(text.contains(option), "{text}");
    }
    assert!(!text.contains("--uplink"), "{text}");
}
