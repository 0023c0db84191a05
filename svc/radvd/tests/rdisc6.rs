//! rdisc6 (ndisc6) on the LAN side solicits and prints our advertisement; its
//! output must show router7's values exactly (router7's own test compared the
//! same output byte for byte).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Host, Lan, ROUTER7_LEASE};

const EXPECTED: &str = "\
Hop limit                 :           64 (      0x40)
Stateful address conf.    :           No
Stateful other conf.      :           No
Mobile home agent         :           No
Router preference         :       medium
Neighbor discovery proxy  :           No
Router lifetime           :         1800 (0x00000708) seconds
Reachable time            :  unspecified (0x00000000)
Retransmit time           :  unspecified (0x00000000)
 Source link-layer address: 02:73:53:00:CA:FE
 MTU                      :         1500 bytes (valid)
 Prefix                   : 2a02:168:4a00::/64
  On-link                 :          Yes
  Autonomous address conf.:          Yes
  Valid time              :         7200 (0x00001c20) seconds
  Pref. time              :         1800 (0x00000708) seconds
 Recursive DNS server     : fe80::73:53ff:fe00:cafe
  DNS server lifetime     :         1800 (0x00000708) seconds
 DNS search list          : lan 
  DNS search list lifetime:         1800 (0x00000708) seconds
 from fe80::73:53ff:fe00:cafe
";

#[test]
fn rdisc6_reads_router7s_values_from_our_advertisement() {
    if !testbed::require("rdisc6_reads_router7s_values_from_our_advertisement", &["rdisc6"]) {
        return;
    }
    let lan = Lan::start("rdisc", Host::Quiet, Some(ROUTER7_LEASE), &["--metrics-port", "0"]);
    let out = lan.lan.exec("rdisc6", &["-1", "-w", "3000", "eth0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rdisc6 failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let body = stdout.split_once("\n\n").map_or(&*stdout, |(_, b)| b);
    assert_eq!(body, EXPECTED, "rdisc6 printed:\n{stdout}");
    assert_eq!(lan.status()["phase"], "Up");
}

#[test]
fn rdisc6_sees_lifetimes_capped_by_the_delegation() {
    if !testbed::require("rdisc6_sees_lifetimes_capped_by_the_delegation", &["rdisc6"]) {
        return;
    }
    let now = runtime::timefmt::Timestamp::from_system(runtime::clock::wall_now());
    let at = |s: u64| now.plus(std::time::Duration::from_secs(s)).to_string();
    let lease = format!(
        r#"{{"valid_until":"{t1}","prefixes":[{{"IP":"2001:db8:7700::","Mask":"////////AAAAAAAAAAAAAA=="}}],"dns":[],
            "delegations":[{{"prefix":"2001:db8:7700::/48","preferred_until":"{p}","valid_until":"{v}"}}]}}"#,
        t1 = at(300),
        p = at(600),
        v = at(1000)
    );
    let lan = Lan::start("cap", Host::Quiet, Some(&lease), &["--metrics-port", "0"]);
    let out = lan.lan.exec("rdisc6", &["-1", "-w", "3000", "eth0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let value = |label: &str| -> u64 {
        let line =
            stdout.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{label}:\n{stdout}"));
        line.split(':').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
    };
    let (valid, preferred) = (value("Valid time"), value("Pref. time"));
    assert!((960..=1000).contains(&valid), "valid {valid}:\n{stdout}");
    assert!((560..=600).contains(&preferred), "preferred {preferred}:\n{stdout}");
    assert_eq!(value("Router lifetime"), 1800);
    assert!(stdout.contains("Prefix                   : 2001:db8:7700::/64"), "{stdout}");
}
