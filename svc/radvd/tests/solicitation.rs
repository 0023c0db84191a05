//! Router Solicitations sent from the LAN side through a raw ICMPv6 socket:
//! valid ones are answered (by unicast when the host gave its link-layer
//! address, else by multicast) with hop limit 255 as seen on arrival; invalid
//! ones (hop limit 254, code 1, an option of length 0) get nothing and are
//! counted; solicitations on another interface of the router are not ours.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use common::{HOST_LL, Host, Lan, ROUTER_LL, ROUTER7_LEASE};
use radvd::advert::RouterAdvert;
use runtime::sys;
use rustix::net::{AddressFamily, SocketFlags, SocketType, ipproto};
use testbed::veth;

const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const RS_WITH_SLLA: [u8; 16] = [133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x02, 0x73, 0x53, 0x00, 0xbe, 0xef];
const METRICS_PORT: u16 = 18_068;

/// A raw ICMPv6 socket on the host's `eth0` that sees Router Advertisements.
struct HostSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl HostSocket {
    fn open(ifname: &str) -> Self {
        let fd = rustix::net::socket_with(
            AddressFamily::INET6,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(ipproto::ICMPV6),
        )
        .unwrap();
        sys::set_icmpv6_filter(fd.as_fd(), &[134]).unwrap();
        sys::bind_to_device(fd.as_fd(), ifname).unwrap();
        sys::set_ipv6_recv_hop_limit(fd.as_fd(), true).unwrap();
        sys::set_ipv6_recv_pktinfo(fd.as_fd(), true).unwrap();
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_millis(200)),
        )
        .unwrap();
        Self { fd, ifindex: runtime::netif::index(ifname).unwrap() }
    }

    fn solicit(&self, bytes: &[u8], hop_limit: u8) {
        let src: Ipv6Addr = HOST_LL.parse().unwrap();
        let dst = SocketAddrV6::new(ALL_ROUTERS, 0, 0, self.ifindex);
        sys::send_ipv6(self.fd.as_fd(), bytes, dst, Some(src), self.ifindex, Some(hop_limit)).unwrap();
    }

    /// The next RA within `timeout`: its bytes, destination and hop limit.
    fn next_advert(&self, timeout: Duration) -> Option<(RouterAdvert, Ipv6Addr, Option<u8>, Ipv6Addr)> {
        let deadline = runtime::clock::now() + timeout;
        let mut buf = [0u8; 2048];
        while runtime::clock::now() < deadline {
            match sys::recv_ipv6(self.fd.as_fd(), &mut buf) {
                Ok((n, meta)) => {
                    let ra = RouterAdvert::parse(&buf[..n]).unwrap();
                    return Some((ra, meta.dst.unwrap(), meta.hop_limit, *meta.src.ip()));
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("{e}"),
            }
        }
        None
    }
}

#[test]
fn valid_solicitations_are_answered_with_hop_limit_255_and_invalid_ones_counted() {
    if !testbed::require("valid_solicitations_are_answered_with_hop_limit_255_and_invalid_ones_counted", &["promtool"])
    {
        return;
    }
    let lan = Lan::start("rs", Host::Quiet, Some(ROUTER7_LEASE), &["--metrics-port", &METRICS_PORT.to_string()]);
    let router_ll: Ipv6Addr = ROUTER_LL.parse().unwrap();
    let host_ll: Ipv6Addr = HOST_LL.parse().unwrap();
    // The fast start's first RA went out when radvd started; the next is 16 s away.
    lan.wait_status("the first RA", |s| s["counters"]["advertisements_sent"]["unsolicited"] == 1);
    lan.lan.enter(|| {
        let host = HostSocket::open("eth0");
        // A host with an address and a link-layer address: answered directly.
        host.solicit(&RS_WITH_SLLA, 255);
        let (ra, dst, hops, src) = host.next_advert(Duration::from_secs(5)).expect("a unicast answer");
        assert_eq!((dst, src, hops), (host_ll, router_ll, Some(255)));
        assert_eq!(ra.prefixes[0].prefix, "2a02:168:4a00::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ra.router_lifetime, 1800);
        // Without a link-layer address option: answered to all nodes.
        host.solicit(&RS_WITH_SLLA[..8], 255);
        let (_, dst, hops, src) = host.next_advert(Duration::from_secs(5)).expect("a multicast answer");
        assert_eq!((dst, src, hops), (ALL_NODES, router_ll, Some(255)));
        // Invalid ones: forwarded (hop limit 254), code 1, an option of length 0.
        host.solicit(&RS_WITH_SLLA, 254);
        let mut code = RS_WITH_SLLA;
        code[1] = 1;
        host.solicit(&code, 255);
        let mut zero = RS_WITH_SLLA;
        zero[9] = 0;
        host.solicit(&zero, 255);
    });
    let s = lan.wait_status("the drops counted", |s| {
        let d = &s["counters"]["dropped"];
        d["hop_limit"] == 1 && d["bad_code"] == 1 && d["bad_option"] == 1
    });
    let c = &s["counters"];
    assert_eq!(c["solicitations_received"], 2, "{c}");
    assert_eq!(c["advertisements_sent"]["solicited_unicast"], 1, "{c}");
    assert_eq!(c["advertisements_sent"]["solicited_multicast"], 1, "{c}");
    assert_eq!(c["send_errors"], 0, "{c}");

    // The same counters in Prometheus text, which promtool accepts.
    let text = lan.router.enter(|| {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", METRICS_PORT)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    });
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(body.contains("radvd_dropped_total{reason=\"hop_limit\"} 1\n"), "{body}");
    assert!(body.contains("radvd_advertisements_sent_total{kind=\"solicited_unicast\"} 1\n"), "{body}");
    runtime::testing::promtool_check(body).unwrap();
}

#[test]
fn solicitations_on_another_interface_are_not_answered() {
    if !testbed::require("solicitations_on_another_interface_are_not_answered", &["rdisc6"]) {
        return;
    }
    let lan = Lan::start("other", Host::Quiet, Some(ROUTER7_LEASE), &["--metrics-port", "0"]);
    veth(&lan.router, "other0", "02:73:53:00:0e:01", &lan.lan, "eth1", "02:73:53:00:0e:02");
    lan.router.wait_for_link_local("other0");
    lan.lan.wait_for_link_local("eth1");
    let out = lan.lan.exec("rdisc6", &["-1", "-r", "2", "-w", "1500", "eth1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "an answer on the other interface:\n{stdout}");
    assert!(!stdout.contains("Prefix"), "{stdout}");
    let c = &lan.status()["counters"];
    assert_eq!(c["solicitations_received"], 0, "{c}");
    // The LAN side still gets answers.
    let out = lan.lan.exec("rdisc6", &["-1", "-w", "3000", "eth0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
