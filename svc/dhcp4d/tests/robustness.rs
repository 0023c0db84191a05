//! Bad packets and a flood: a burst of garbage of every kind the server drops,
//! and a flood of DISCOVERs from one MAC, while a real client (busybox
//! udhcpc) asks for a lease. The client must be served, every kind of garbage
//! counted under its reason, and the server still healthy.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::{Lan, wait_for};
use runtime::frame;
use runtime::packet::{ETH_P_IP, Framing, PacketSocket};
use testbed::PeerSpec;

const FLOOD_MAC: [u8; 6] = [0x02, 0xf1, 0x00, 0x0d, 0x00, 0x01];

fn header(op: u8, mac: [u8; 6]) -> Vec<u8> {
    let mut b = vec![0u8; 240];
    b[0] = op;
    b[1] = 1;
    b[2] = 6;
    b[4..8].copy_from_slice(&0x0bad_f00du32.to_be_bytes());
    b[28..34].copy_from_slice(&mac);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b
}

fn discover(mac: [u8; 6]) -> Vec<u8> {
    let mut b = header(1, mac);
    b.extend_from_slice(&[53, 1, 1, 255]);
    b
}

/// Garbage of each kind, each from its own MAC so the rate limit does not hide it.
fn garbage() -> Vec<(&'static str, Vec<u8>)> {
    let mac = |n: u8| [0x02, 0xba, 0xd0, 0, 0, n];
    let mut out = Vec::new();
    // Random bytes of random lengths (xorshift; no crate needed).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..500 {
        let len = (next() % 239) as usize;
        out.push(("short", (0..len).map(|_| next() as u8).collect()));
    }
    for i in 0..50 {
        let mut b = discover(mac(1));
        b[0] = 2;
        b[33] = i;
        out.push(("wrong_op", b));
    }
    for i in 0..50 {
        let mut b = header(1, mac(2));
        b[33] = i;
        b.extend_from_slice(&[53, 1, 1, 12, 200, b'x']);
        out.push(("bad_options", b));
    }
    for i in 0..50 {
        let mut b = header(1, mac(3));
        b[33] = i;
        b.extend_from_slice(&[53, 1, 1]);
        for _ in 0..3 {
            b.extend_from_slice(&[12, 150]);
            b.extend_from_slice(&[b'h'; 150]);
        }
        b.push(255);
        out.push(("huge_hostname", b));
    }
    for i in 0..50 {
        let mut b = discover(mac(4));
        b[33] = i;
        b[236] = 0;
        out.push(("bad_header", b));
    }
    out
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn garbage_and_a_flood_from_one_mac_do_not_stop_a_real_client() {
    if !testbed::require("garbage_and_a_flood_from_one_mac_do_not_stop_a_real_client", &["busybox"]) {
        return;
    }
    let mut lan = Lan::new("flood", "02:73:53:00:f1:02", None);
    lan.start(&["--http", "127.0.0.1:8067"]);
    let iface = lan.client_if.clone();

    let flood_sent = std::sync::atomic::AtomicU64::new(0);
    let bad = garbage();
    std::thread::scope(|s| {
        let flooder = s.spawn(|| {
            lan.cli.enter(|| {
                let sock = PacketSocket::open_named(&iface, ETH_P_IP, Framing::Cooked, None).unwrap();
                let send = |payload: &[u8]| {
                    let pkt = frame::build_udp4_ip(
                        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
                        SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
                        64,
                        payload,
                    );
                    // A full send queue under the flood is fine: retry once, then move on.
                    if sock.send_to(&pkt, frame::BROADCAST_MAC).is_err() {
                        std::thread::sleep(Duration::from_micros(200));
                        let _ = sock.send_to(&pkt, frame::BROADCAST_MAC);
                    }
                };
                for (_, g) in &bad {
                    send(g);
                }
                let flood = discover(FLOOD_MAC);
                let deadline = runtime::clock::now() + Duration::from_secs(8);
                while runtime::clock::now() < deadline {
                    for _ in 0..100 {
                        send(&flood);
                    }
                    flood_sent.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
                }
            });
        });
        // The real client starts once the flood is under way.
        std::thread::sleep(Duration::from_millis(500));
        let client = lan.cli.spawn(
            PeerSpec {
                timeout: Duration::from_secs(30),
                ..PeerSpec::new(
                    "udhcpc",
                    "busybox",
                    &["udhcpc", "-f", "-q", "-n", "-i", &iface, "-s", "/bin/true", "-t", "10", "-T", "2"],
                )
            }
            .ready_on_log("obtained"),
        );
        let out = client.log();
        assert!(
            flooder.is_finished() || flood_sent.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "the client was served while the flood ran"
        );
        let addr = out.split("lease of ").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_owned();
        let lease = wait_for(Duration::from_secs(10), || lan.lease_of("02:73:53:00:f1:02")).unwrap();
        assert_eq!(lease.addr.unwrap().to_string(), addr);
        flooder.join().unwrap();
    });

    let sent = flood_sent.load(std::sync::atomic::Ordering::Relaxed);
    let metrics = lan.http_get("127.0.0.1:8067", "/metrics", None).text();
    let drops = |r: &str| metric(&metrics, &format!("dhcp4d_drops_total{{reason=\"{r}\"}}"));
    for (reason, _) in garbage() {
        assert!(drops(reason) > 0, "no {reason} drop counted:\n{metrics}");
    }
    // What the server read of the flood was dropped by the rate limit (the
    // rest the kernel dropped from the full socket queue), and the flooder got
    // only a trickle of offers: a burst of 20, then 5 a second.
    assert!(sent > 10_000, "the flood was a flood: {sent}");
    let offers = metric(&metrics, "dhcp4d_offers_total");
    assert!(offers < 100, "offers: {offers}\n{metrics}");
    assert!(drops("rate_limited") > 1_000, "rate limited {} of {sent}", drops("rate_limited"));
    // Still alive and serving.
    assert_eq!(lan.status()["phase"], "Up");
    let r = runtime::unix_http::request(&lan.socket(), "GET", "/v1/healthz", b"", Duration::from_secs(5)).unwrap();
    assert_eq!(r.status, 200);
}
