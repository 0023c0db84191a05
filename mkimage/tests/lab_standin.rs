//! Proves the end-to-end checks themselves, today, without waiting for our
//! services: the same ISP and LAN namespaces and the same checks as the QEMU
//! test, against a stand-in router made of Debian peers in a namespace
//! (dhclient for DHCPv4 and prefix delegation on uplink0, dnsmasq serving
//! DHCP and forwarding DNS on lan0, radvd, nftables masquerade and a drop
//! firewall, a small web server with basic auth). Every check must pass; then
//! the firewall and masquerade are removed and the NAT and uplink checks must
//! fail, so the checks are shown to catch a broken router.
#![allow(clippy::unwrap_used)]

mod lab;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use lab::{ROUTER_LAN, Report, RouterUnderTest};
use mkimage::qemu::{LAN_MAC, UPLINK_MAC};
use testbed::{Netns, PeerSpec, TempDir, veth};

const PASSWORD: &str = "stand-in-password-42";

const RULES: &str = "table inet standin {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname \"uplink0\" ct state established,related accept
    iifname \"uplink0\" udp dport { 68, 546 } accept
    iifname \"uplink0\" meta l4proto { icmp, ipv6-icmp } accept
    iifname \"uplink0\" drop
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname \"uplink0\" ct state established,related accept
    iifname \"uplink0\" icmpv6 type echo-request accept
    iifname \"uplink0\" drop
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    meta nfproto ipv4 oifname \"uplink0\" masquerade
  }
}
";

/// A web server on `addr` in `ns` that wants basic auth with `PASSWORD`.
fn web_server(ns: &Netns, addr: SocketAddr) {
    let listener = ns.enter(|| TcpListener::bind(addr).unwrap());
    let good = format!("Basic {}", runtime::base64::encode(format!("router:{PASSWORD}").as_bytes()));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut authorized = false;
            let mut reader = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("Authorization: ") {
                    authorized = v.trim() == good;
                }
            }
            let status = if authorized { "200 OK" } else { "401 Unauthorized" };
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
        }
    });
}

#[test]
fn checks_pass_against_a_standin_router_and_catch_a_broken_one() {
    let test = "checks_pass_against_a_standin_router_and_catch_a_broken_one";
    if !testbed::require(test, &["dnsmasq", "kea-dhcp6", "dhclient", "dig", "nft", "radvd", "timeout", "ping"]) {
        return;
    }
    let isp_ns = Netns::new("isp");
    let router = Netns::new("rtr");
    let lan = Netns::new("lan");
    veth(&router, "uplink0", UPLINK_MAC, &isp_ns, "isp0", "02:72:37:00:00:01");
    veth(&router, "lan0", LAN_MAC, &lan, "eth0", "02:72:37:00:00:02");
    router.sysctl("net.ipv4.ip_forward", "1");
    router.sysctl("net.ipv6.conf.all.forwarding", "1");
    router.sysctl("net.ipv6.conf.uplink0.accept_ra", "2");
    let isp = lab::Isp::start(isp_ns, "isp0");
    let dir = TempDir::new("standin");

    // The stand-in router: uplink by DHCP, a /64 of the delegated prefix on
    // lan0, DHCP and DNS forwarding on lan0, router advertisements, NAT and a
    // firewall, a web interface.
    router.addr("lan0", &format!("{ROUTER_LAN}/24"));
    router.wait_for_link_local("uplink0");
    lab::dhcp4(&router, "uplink0", dir.path(), Duration::from_secs(60)).unwrap();
    let l6 = dir.path().join("uplink0.leases6");
    let out = router.exec(
        "timeout",
        &[
            "60",
            "dhclient",
            "-6",
            "-P",
            "-1",
            "-v",
            "-lf",
            l6.to_str().unwrap(),
            "-pf",
            dir.path().join("d6.pid").to_str().unwrap(),
            "-sf",
            "/bin/true",
            "uplink0",
        ],
    );
    let prefix = lab::parse_dhclient6_prefix(&std::fs::read_to_string(&l6).unwrap_or_default())
        .unwrap_or_else(|| panic!("no delegated prefix: {}", String::from_utf8_lossy(&out.stderr)));
    let base = prefix.split('/').next().unwrap();
    let lan6 = format!("{}1/64", base);
    router.ip(&["-6", "addr", "add", &lan6, "dev", "lan0"]);
    router.wait_for_link_local("lan0");
    let dns_log = dir.path().join("lan-dnsmasq.log");
    let _lan_dnsmasq = router.spawn(
        PeerSpec::new(
            "standin-dnsmasq",
            "dnsmasq",
            &[
                "-k",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--interface=lan0",
                &format!("--listen-address={ROUTER_LAN}"),
                "--port=53",
                &format!("--server={}", lab::ISP_ADDR),
                "--dhcp-range=192.168.42.100,192.168.42.150,255.255.255.0,20m",
                &format!("--dhcp-option=option:router,{ROUTER_LAN}"),
                &format!("--dhcp-option=option:dns-server,{ROUTER_LAN}"),
                &format!("--dhcp-leasefile={}", dir.path().join("lan.leases").display()),
                "--no-ping",
                "--pid-file=",
                &format!("--log-facility={}", dns_log.display()),
            ],
        )
        .log_file(&dns_log)
        .ready_on_log("DHCP, IP range 192.168.42.100"),
    );
    let radvd_conf = dir.path().join("radvd.conf");
    std::fs::write(
        &radvd_conf,
        format!(
            "interface lan0 {{\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 4;\n prefix {base}/64 {{ AdvOnLink on; AdvAutonomous on; }};\n}};\n"
        ),
    )
    .unwrap();
    let _radvd = router.spawn(
        PeerSpec::new(
            "standin-radvd",
            "radvd",
            &[
                "-n",
                "-C",
                radvd_conf.to_str().unwrap(),
                "-p",
                dir.path().join("radvd.pid").to_str().unwrap(),
                "-m",
                "stderr",
            ],
        )
        .ready_when(testbed::Readiness::File(dir.path().join("radvd.pid"))),
    );
    let rules = dir.path().join("rules.nft");
    std::fs::write(&rules, RULES).unwrap();
    router.exec_ok("nft", &["-f", rules.to_str().unwrap()]);
    web_server(&router, SocketAddr::new(ROUTER_LAN.into(), 80));

    let mut report = Report::default();
    let missing = |_: &str| None;
    let r = RouterUnderTest { uplink_mac: UPLINK_MAC, password: PASSWORD, missing: &missing };
    let client = lab::LanClient::start(&lan, "eth0", dir.path());
    let mut after_lease_ran = false;
    let lease_at = lab::run_checks(&mut report, &r, &isp, &lan, "eth0", &client, Duration::from_secs(30), &mut |_| {
        after_lease_ran = true
    });
    assert!(lease_at.is_some() && after_lease_ran);
    report.finish("stand-in router");
    assert_eq!(report.rows.len(), 11, "every check ran:\n{}", report.table());

    // A router without firewall and masquerade must fail the checks.
    router.exec_ok("nft", &["flush", "ruleset"]);
    let uplink = isp.lease_of(UPLINK_MAC).unwrap();
    let closed = lab::uplink_is_closed(&isp, uplink);
    assert!(closed.as_ref().is_err_and(|e| e.contains("Refused")), "{closed:?}");
    let nat = lab::nat_reaches_isp(&isp, &lan, uplink, Duration::from_secs(3));
    assert!(nat.as_ref().is_err_and(|e| e.contains("no masquerade") || e.contains("no TCP connection")), "{nat:?}");
    let host = lab::global_v6_in(&lan, "eth0", &prefix).unwrap();
    let _listener = lan.enter(|| TcpListener::bind(SocketAddr::new(IpAddr::V6(host), lab::LAN_PORT)).unwrap());
    assert_eq!(
        lab::probe_tcp(&isp.ns, host, lab::LAN_PORT),
        lab::Probe::Open,
        "without a firewall the LAN host is open"
    );
}
