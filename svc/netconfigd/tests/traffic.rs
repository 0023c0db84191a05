//! Real traffic through a router configured by the real netconfigd:
//!
//! ```text
//!  far ──(mtu 1280)── isp ──── router (netconfigd) ──── lan
//!  203.0.113.2        198.51.100.1   uplink0 198.51.100.2      192.168.42.10
//!  2001:db8:fa::2     2001:db8:ffff::1      2001:db8:ffff::2   2001:db8:4a00::10
//!                                    lan0 192.168.42.1, 2001:db8:4a00::1 (from the dhcp6 lease)
//! ```
//!
//! Masquerade, port forwarding and hairpin NAT, unsolicited connections from the
//! ISP side dropped (router and LAN, IPv4 and IPv6) until config.json opens them,
//! NDP and path MTU discovery through the firewall, and the MSS of forwarded SYNs
//! clamped to the route MTU (captured with tcpdump, read with tshark).
//! Every address lives in namespaces this test creates.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use common::{Daemon, counter, write};
use testbed::{Netns, PeerSpec, TempDir, veth};

const INTERFACES: &str = r#"{"interfaces":[
  {"hardware_addr":"02:73:53:00:ca:fe","name":"uplink0","extra_addrs":["2001:db8:ffff::2/64"],
   "extra_routes":[{"destination":"::/0","gateway":"2001:db8:ffff::1"}]MTU},
  {"hardware_addr":"02:73:53:00:b0:0c","name":"lan0","addr":"192.168.42.1/24"}]}"#;

const DHCP4: &str = r#"{"valid_until":"2030-01-01T00:00:00Z","client_ip":"198.51.100.2",
  "subnet_mask":"255.255.255.0","router":"198.51.100.1","dns":[]}"#;

const DHCP6: &str = r#"{"valid_until":"2030-01-01T00:00:00Z",
  "prefixes":[{"IP":"2001:db8:4a00::","Mask":"////////AAAAAAAAAAAAAA=="}],"dns":[]}"#;

const FORWARDINGS: &str =
    r#"{"forwardings":[{"proto":"tcp","port":"8080","dest_addr":"192.168.42.10","dest_port":"9999"}]}"#;

struct Topology {
    far: Netns,
    isp: Netns,
    router: Netns,
    lan: Netns,
    daemon: Daemon,
}

fn interfaces(mtu: Option<u32>) -> String {
    INTERFACES.replace("MTU", &mtu.map(|m| format!(",\"mtu\":{m}")).unwrap_or_default())
}

fn topology(tag: &str) -> Topology {
    let far = Netns::new(&format!("{tag}f"));
    let isp = Netns::new(&format!("{tag}i"));
    let router = Netns::new(&format!("{tag}r"));
    let lan = Netns::new(&format!("{tag}l"));
    veth(&router, "eth-up", "02:73:53:00:ca:fe", &isp, "isp0", "02:00:00:00:00:01");
    veth(&router, "eth-lan", "02:73:53:00:b0:0c", &lan, "eth0", "02:00:00:00:00:10");
    veth(&isp, "far0", "02:00:00:00:00:02", &far, "far1", "02:00:00:00:00:03");
    for dev in ["eth-up", "eth-lan"] {
        router.ip(&["link", "set", dev, "down"]);
    }

    isp.addr("isp0", "198.51.100.1/24");
    isp.addr("isp0", "2001:db8:ffff::1/64");
    isp.addr("far0", "203.0.113.1/24");
    isp.addr("far0", "2001:db8:fa::1/64");
    isp.ip(&["link", "set", "far0", "mtu", "1280"]);
    isp.ip(&["-6", "route", "add", "2001:db8:4a00::/48", "via", "2001:db8:ffff::2"]);
    isp.sysctl("net.ipv4.ip_forward", "1");
    isp.sysctl("net.ipv6.conf.all.forwarding", "1");

    far.addr("far1", "203.0.113.2/24");
    far.addr("far1", "2001:db8:fa::2/64");
    far.ip(&["link", "set", "far1", "mtu", "1280"]);
    far.ip(&["route", "add", "default", "via", "203.0.113.1"]);
    far.ip(&["-6", "route", "add", "default", "via", "2001:db8:fa::1"]);

    lan.addr("eth0", "192.168.42.10/24");
    lan.addr("eth0", "2001:db8:4a00::10/64");
    lan.ip(&["route", "add", "default", "via", "192.168.42.1"]);
    lan.ip(&["-6", "route", "add", "default", "via", "2001:db8:4a00::1"]);

    let dir = TempDir::new(&format!("{tag}-perm"));
    let perm = dir.path().join("perm");
    write(&perm, "interfaces.json", &interfaces(None));
    write(&perm, "dhcp4/wire/lease.json", DHCP4);
    write(&perm, "dhcp6/wire/lease.json", DHCP6);
    write(&perm, "portforwardings.json", FORWARDINGS);
    let daemon = Daemon::start(&router, dir, &[]);
    daemon.wait_apply(0, "Applied");
    for ns in [&far, &isp, &lan] {
        for dev in ["isp0", "far0", "far1", "eth0"] {
            if ns.exec("ip", &["link", "show", dev]).status.success() {
                ns.wait_for_link_local(dev);
            }
        }
    }
    router.wait_for_link_local("uplink0");
    router.wait_for_link_local("lan0");
    Topology { far, isp, router, lan, daemon }
}

impl Topology {
    /// Writes config.json and waits for the apply.
    fn configure(&self, rel: &str, text: &str) {
        write(&self.daemon.perm, rel, text);
        let n = self.daemon.applies();
        self.daemon.reload();
        self.daemon.wait_apply(n, "Applied");
    }
}

/// A TCP listener inside `ns`; the first accepted connection's peer address and
/// first line come back on the channel.
fn listen(ns: &Netns, addr: &str) -> mpsc::Receiver<(SocketAddr, String)> {
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = ns.enter(|| TcpListener::bind(addr).unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((mut s, peer)) = listener.accept() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(b"pong\n");
            if tx.send((peer, String::from_utf8_lossy(&buf[..n]).into_owned())).is_err() {
                break;
            }
        }
    });
    rx
}

/// Connects from `ns` to `to`, says hello and reads the answer.
fn connect(ns: &Netns, to: &str, timeout: Duration) -> std::io::Result<String> {
    let to: SocketAddr = to.parse().unwrap();
    ns.enter(|| {
        let mut s = TcpStream::connect_timeout(&to, timeout)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"hello\n")?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

fn assert_dropped(ns: &Netns, to: &str) {
    match connect(ns, to, Duration::from_secs(2)) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
        other => panic!("a connection to {to} must be silently dropped, got {other:?}"),
    }
}

fn accepted(rx: &mpsc::Receiver<(SocketAddr, String)>) -> (SocketAddr, String) {
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

const TOOLS: &[&str] = &["nft", "ping", "tcpdump", "tshark"];

#[test]
fn lan_reaches_the_isp_through_masquerade() {
    if !testbed::require("lan_reaches_the_isp_through_masquerade", TOOLS) {
        return;
    }
    let t = topology("mq");
    let rx = listen(&t.isp, "198.51.100.1:8000");
    assert_eq!(connect(&t.lan, "198.51.100.1:8000", Duration::from_secs(5)).unwrap(), "pong\n");
    let (peer, line) = accepted(&rx);
    assert_eq!(
        (peer.ip().to_string().as_str(), line.as_str()),
        ("198.51.100.2", "hello\n"),
        "the server sees the router"
    );
    // IPv6 is routed, not translated: the server sees the LAN host itself.
    let rx6 = listen(&t.isp, "[2001:db8:ffff::1]:8000");
    assert_eq!(connect(&t.lan, "[2001:db8:ffff::1]:8000", Duration::from_secs(5)).unwrap(), "pong\n");
    assert_eq!(accepted(&rx6).0.ip().to_string(), "2001:db8:4a00::10");
    assert!(counter(&t.router, "ip", "fwded").0 > 0 && counter(&t.router, "ip6", "fwded").0 > 0);
}

#[test]
fn port_forwardings_reach_a_lan_server_also_by_hairpin() {
    if !testbed::require("port_forwardings_reach_a_lan_server_also_by_hairpin", TOOLS) {
        return;
    }
    let t = topology("pf");
    let rx = listen(&t.lan, "192.168.42.10:9999");
    assert_eq!(connect(&t.isp, "198.51.100.2:8080", Duration::from_secs(5)).unwrap(), "pong\n");
    assert_eq!(accepted(&rx).0.ip().to_string(), "198.51.100.1", "forwarded without source NAT");
    // Hairpin: a LAN host using the public address gets there too.
    assert_eq!(connect(&t.lan, "198.51.100.2:8080", Duration::from_secs(5)).unwrap(), "pong\n");
    assert_eq!(accepted(&rx).0.ip().to_string(), "192.168.42.1", "hairpin NAT: replies must come back via the router");
    // A port that is not forwarded is not reachable.
    assert_dropped(&t.isp, "198.51.100.2:8081");
}

#[test]
fn unsolicited_connections_from_the_isp_are_dropped_until_opened() {
    if !testbed::require("unsolicited_connections_from_the_isp_are_dropped_until_opened", TOOLS) {
        return;
    }
    let t = topology("fw");
    // Services on the router (all addresses) and on the LAN host (dual stack).
    let router_rx = listen(&t.router, "[::]:2222");
    let lan_rx = listen(&t.lan, "[::]:9999");
    // An attacker on the ISP segment routing straight at the LAN.
    t.isp.ip(&["route", "add", "192.168.42.0/24", "via", "198.51.100.2"]);

    // The LAN is trusted; NDP and echo requests work from the ISP side.
    assert_eq!(connect(&t.lan, "192.168.42.1:2222", Duration::from_secs(5)).unwrap(), "pong\n");
    accepted(&router_rx);
    t.isp.exec_ok("ping", &["-6", "-c", "1", "-W", "3", "2001:db8:ffff::2"]);
    t.isp.exec_ok("ping", &["-c", "1", "-W", "3", "198.51.100.2"]);

    let dropped_before = counter(&t.router, "ip", "input_dropped").0 + counter(&t.router, "ip6", "input_dropped").0;
    for to in ["198.51.100.2:2222", "[2001:db8:ffff::2]:2222", "[2001:db8:4a00::1]:2222"] {
        assert_dropped(&t.isp, to);
    }
    for to in ["192.168.42.10:9999", "[2001:db8:4a00::10]:9999"] {
        assert_dropped(&t.isp, to);
    }
    assert!(
        counter(&t.router, "ip", "input_dropped").0 + counter(&t.router, "ip6", "input_dropped").0 > dropped_before
    );
    assert!(counter(&t.router, "ip6", "forward_dropped").0 > 0 && counter(&t.router, "ip", "forward_dropped").0 > 0);

    // Open them in config.json: the same connections now go through.
    t.configure(
        "netconfigd/config.json",
        r#"{"firewall":{"input":[{"proto":"tcp","port":"2222"}],
            "forward6":[{"proto":"tcp","port":"9999","dest_addr":"2001:db8:4a00::10"}]}}"#,
    );
    for (to, from) in [("198.51.100.2:2222", "198.51.100.1"), ("[2001:db8:ffff::2]:2222", "2001:db8:ffff::1")] {
        assert_eq!(connect(&t.isp, to, Duration::from_secs(5)).unwrap(), "pong\n", "{to}");
        assert_eq!(accepted(&router_rx).0.ip().to_canonical().to_string(), from);
    }
    assert_eq!(connect(&t.isp, "[2001:db8:4a00::10]:9999", Duration::from_secs(5)).unwrap(), "pong\n");
    assert_eq!(accepted(&lan_rx).0.ip().to_string(), "2001:db8:ffff::1");
    // IPv4 to the LAN stays closed: only port forwardings reach it.
    assert_dropped(&t.isp, "192.168.42.10:9999");
    // An opening restricted to other sources does not open it for us.
    t.configure(
        "netconfigd/config.json",
        r#"{"firewall":{"input":[{"proto":"tcp","port":"2222","from":"203.0.113.0/24"}]}}"#,
    );
    assert_dropped(&t.isp, "198.51.100.2:2222");
    assert_eq!(connect(&t.far, "198.51.100.2:2222", Duration::from_secs(5)).unwrap(), "pong\n", "allowed source");
    assert_eq!(accepted(&router_rx).0.ip().to_canonical().to_string(), "203.0.113.2");
}

fn route_mtu(ns: &Netns, family: &str, dst: &str) -> Option<u64> {
    let j = ns.ip_json(&[family, "route", "get", dst]);
    j[0]["mtu"].as_u64().or_else(|| j[0]["metrics"][0]["mtu"].as_u64())
}

#[test]
fn path_mtu_discovery_works_through_the_firewall() {
    if !testbed::require("path_mtu_discovery_works_through_the_firewall", TOOLS) {
        return;
    }
    let t = topology("mtu");
    for (family, dst) in [("-4", "203.0.113.2"), ("-6", "2001:db8:fa::2")] {
        // Forwarded: the ISP's "too big" error must reach the LAN host …
        assert_eq!(route_mtu(&t.lan, family, dst), None);
        let _ = t.lan.exec("ping", &[family, "-M", "do", "-s", "1400", "-c", "1", "-W", "2", dst]);
        assert_eq!(route_mtu(&t.lan, family, dst), Some(1280), "LAN host learnt the path MTU to {dst}");
        t.lan.exec_ok("ping", &[family, "-M", "do", "-s", "1200", "-c", "1", "-W", "3", dst]);
        // … and the router itself.
        let _ = t.router.exec("ping", &[family, "-M", "do", "-s", "1400", "-c", "1", "-W", "2", dst]);
        assert_eq!(route_mtu(&t.router, family, dst), Some(1280), "router learnt the path MTU to {dst}");
    }
}

/// `(destination port, MSS)` of every SYN in a capture.
fn syn_mss(capture: &std::path::Path) -> Vec<(u16, u16)> {
    let out = std::process::Command::new("tshark")
        .args(["-r", capture.to_str().unwrap(), "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0"])
        .args(["-T", "fields", "-e", "tcp.dstport", "-e", "tcp.options.mss_val"])
        .output()
        .unwrap();
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

#[test]
fn mss_of_forwarded_syns_is_clamped_to_the_route_mtu() {
    if !testbed::require("mss_of_forwarded_syns_is_clamped_to_the_route_mtu", TOOLS) {
        return;
    }
    let t = topology("mss");
    let dir = TempDir::new("mss-capture");
    let capture = dir.path().join("syn.pcap");
    let mut tcpdump = t.isp.spawn(
        PeerSpec::new(
            "tcpdump",
            "tcpdump",
            &["-i", "isp0", "-n", "-U", "--immediate-mode", "-Z", "root", "-w", capture.to_str().unwrap(), "tcp"],
        )
        .ready_on_log("listening on"),
    );
    let _rx4 = listen(&t.isp, "198.51.100.1:8001");
    let _rx6 = listen(&t.isp, "[2001:db8:ffff::1]:8001");
    let _rx4b = listen(&t.isp, "198.51.100.1:8002");
    let _rx6b = listen(&t.isp, "[2001:db8:ffff::1]:8002");
    // Full-size links first: the LAN host's own MSS passes unchanged.
    connect(&t.lan, "198.51.100.1:8001", Duration::from_secs(5)).unwrap();
    connect(&t.lan, "[2001:db8:ffff::1]:8001", Duration::from_secs(5)).unwrap();
    // A smaller uplink MTU (PPPoE-like): forwarded SYNs are clamped to it.
    t.configure("interfaces.json", &interfaces(Some(1400)));
    assert_eq!(t.router.ip_json(&["link", "show", "dev", "uplink0"])[0]["mtu"], 1400);
    connect(&t.lan, "198.51.100.1:8002", Duration::from_secs(5)).unwrap();
    connect(&t.lan, "[2001:db8:ffff::1]:8002", Duration::from_secs(5)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.stop();
    let mut syns = syn_mss(&capture);
    syns.sort_unstable();
    // IPv4: 1500 − 40 = 1460, then 1400 − 40 = 1360; IPv6: 1500 − 60 = 1440, then 1340.
    assert_eq!(syns, [(8001, 1440), (8001, 1460), (8002, 1340), (8002, 1360)], "{}", tcpdump.log());
}
