//! captured against real traffic: dnsmasq and busybox udhcpc make DHCP on the
//! uplink, rdisc6 and radvd make RS/RA on the LAN; the stream, read by curl
//! and decoded by tshark, replays the buffered packets with the right
//! interface names first, then the live ones.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Net, PASSWORD, SLOW, tshark_fields, whole_blocks};

fn wall_secs() -> f64 {
    runtime::clock::wall_now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

const FIELDS: [&str; 6] = [
    "frame.interface_name",
    "frame.time_epoch",
    "dhcp.option.dhcp",
    "icmpv6.type",
    "frame.packet_flags_direction",
    "frame.comment",
];

fn dump(rows: &[&Row]) -> String {
    rows.iter()
        .map(|r| format!("\n{} {} dhcp={} icmpv6={} dir={}", r.iface, r.time, r.dhcp, r.icmpv6, r.direction))
        .collect()
}

struct Row {
    iface: String,
    time: f64,
    dhcp: String,
    icmpv6: String,
    direction: String,
}

fn rows(file: &std::path::Path) -> Vec<Row> {
    tshark_fields(file, &FIELDS)
        .into_iter()
        .map(|f| Row {
            iface: f[0].clone(),
            time: f[1].parse().unwrap(),
            dhcp: f[2].clone(),
            icmpv6: f[3].clone(),
            direction: f[4].clone(),
        })
        .collect()
}

#[test]
fn replays_then_streams_live_dhcp_and_ra_with_interface_names() {
    if !testbed::require(
        "replays_then_streams_live_dhcp_and_ra_with_interface_names",
        &["dnsmasq", "busybox", "rdisc6", "radvd", "curl", "tshark"],
    ) {
        return;
    }
    let net = Net::new("capst");
    let _radvd = net.radvd();
    let captured = net.captured();

    // Before anyone streams: DHCP on the uplink, RS/RA on the LAN.
    net.dhcp_on_uplink();
    net.rs_on_lan();
    net.wait_status("packets on both interfaces", |s| {
        s["captured"]["uplink0"].as_u64() >= Some(4) && s["captured"]["lan0"].as_u64() >= Some(2)
    });
    let stream_start = wall_secs();

    // The README's recipe, with tshark reading a file instead of a live Wireshark.
    let file = net.dir.path().join("stream.pcapng");
    let url = "http://127.0.0.1:5022/capture.pcapng";
    let mut curl = net.router.spawn(testbed::PeerSpec::new(
        "curl",
        "curl",
        &["-sSN", "-u", &format!("router:{PASSWORD}"), "-o", &file.display().to_string(), url],
    ));
    net.wait_status("one streaming client", |s| s["clients"]["streaming"] == 1);
    std::thread::sleep(Duration::from_millis(300));
    let live_start = wall_secs();
    net.dhcp_on_uplink();
    net.rs_on_lan();
    net.wait_status("the live packets", |s| s["captured"]["uplink0"].as_u64() >= Some(8));
    std::thread::sleep(Duration::from_millis(500));
    curl.stop();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, whole_blocks(&bytes)).unwrap();

    let rows = rows(&file);
    let replayed: Vec<&Row> = rows.iter().take_while(|r| r.time < stream_start).collect();
    let after: Vec<&Row> = rows.iter().skip(replayed.len()).collect();
    assert!(after.iter().all(|r| r.time >= stream_start), "every buffered packet is replayed before any live one");
    let live: Vec<&Row> = after.into_iter().filter(|r| r.time >= live_start).collect();
    for (what, part) in [("replayed", &replayed), ("live", &live)] {
        // DHCP on uplink0, both ways: DISCOVER (1) we sent, OFFER (2) we received, REQUEST (3), ACK (5).
        let (inbound, outbound) = ("0x00000001", "0x00000002");
        for (kind, direction) in [("1", outbound), ("2", inbound), ("3", outbound), ("5", inbound)] {
            assert!(
                part.iter().any(|r| r.iface == "uplink0" && r.dhcp == kind && r.direction == direction),
                "{what}: no DHCP message {kind} in direction {direction} on uplink0 in {}",
                dump(part)
            );
        }
        // RS (133) received on lan0, RA (134) sent on lan0.
        assert!(part.iter().any(|r| r.iface == "lan0" && r.icmpv6 == "133" && r.direction == inbound), "{what}: RS");
        assert!(part.iter().any(|r| r.iface == "lan0" && r.icmpv6 == "134" && r.direction == outbound), "{what}: RA");
        assert!(part.iter().all(|r| r.iface == "uplink0" || r.iface == "lan0"));
        assert!(part.iter().all(|r| r.dhcp.is_empty() || r.iface == "uplink0"), "{what}: DHCP only on the uplink");
    }
    let status = net.status();
    assert_eq!(status["phase"], "Up");
    drop(captured);
}

#[test]
fn iface_and_replay_narrow_the_stream_and_a_wrong_password_is_401() {
    if !testbed::require(
        "iface_and_replay_narrow_the_stream_and_a_wrong_password_is_401",
        &["dnsmasq", "busybox", "rdisc6", "radvd", "curl", "tshark"],
    ) {
        return;
    }
    let net = Net::new("capif");
    let _radvd = net.radvd();
    let _captured = net.captured();
    net.dhcp_on_uplink();
    net.rs_on_lan();
    net.wait_status("packets on both interfaces", |s| s["captured"]["lan0"].as_u64() >= Some(2));

    let code = net.router.exec(
        "curl",
        &["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "router:wrong", "http://127.0.0.1:5022/capture.pcapng"],
    );
    assert_eq!(String::from_utf8_lossy(&code.stdout), "401");
    let code = net
        .router
        .exec("curl", &["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:5022/capture.pcapng"]);
    assert_eq!(String::from_utf8_lossy(&code.stdout), "401");
    let code = net.router.exec(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            &format!("router:{PASSWORD}"),
            "http://127.0.0.1:5022/capture.pcapng?iface=eth9",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&code.stdout), "400");

    // ?iface=uplink0&replay=2: one interface block, the last two uplink packets, with our client library.
    let file = net.dir.path().join("uplink.pcapng");
    let got = net.router.enter(|| {
        let mut out = StopAfter { data: Vec::new(), blocks_wanted: 1 + 1 + 2 };
        let options = captured::client::StreamOptions { iface: Some("uplink0".into()), replay: Some(2) };
        captured::client::stream("127.0.0.1", PASSWORD, &options, &mut out).unwrap();
        out.data
    });
    std::fs::write(&file, &got).unwrap();
    let cap = runtime::pcap::parse(&got).unwrap();
    assert_eq!(cap.interfaces.len(), 1);
    assert_eq!(cap.interfaces[0].name.as_deref(), Some("uplink0"));
    assert_eq!(cap.packets.len(), 2);
    let names = tshark_fields(&file, &["frame.interface_name"]);
    assert_eq!(names, [["uplink0"], ["uplink0"]]);

    let metrics = net.router.exec("curl", &["-s", "http://127.0.0.1:5022/metrics"]);
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(text.contains("captured_packets_total{interface=\"lan0\"}"), "{text}");
    assert!(text.contains("captured_unauthorized_total 2"), "{text}");
}

/// A writer that takes whole pcapng blocks and says "closed" once it has enough,
/// as Wireshark does when it quits.
struct StopAfter {
    data: Vec<u8>,
    blocks_wanted: usize,
}

impl Write for StopAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if count_blocks(&self.data) >= self.blocks_wanted {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn count_blocks(bytes: &[u8]) -> usize {
    let whole = whole_blocks(bytes);
    let mut n = 0;
    let mut at = 0;
    while at < whole.len() {
        at += u32::from_le_bytes(whole[at + 4..at + 8].try_into().unwrap()) as usize;
        n += 1;
    }
    n
}

/// A client that reads nothing while a flood passes: capture goes on (a second
/// client gets every packet), the stalled client's queue overflows, and when it
/// reads again the first packet after the gap says how many it missed.
#[test]
fn a_stalled_reader_never_blocks_capture_and_is_told_what_it_missed() {
    if !testbed::require("a_stalled_reader_never_blocks_capture_and_is_told_what_it_missed", &["dnsmasq", "tshark"]) {
        return;
    }
    let net = Net::new("capsl");
    let _captured = net.captured();
    let auth = runtime::base64::encode(format!("router:{PASSWORD}").as_bytes());
    let request =
        format!("GET /capture.pcapng?iface=lan0&replay=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n");

    let (stalled_bytes, dropped_total) = net.router.enter(|| {
        // A small receive buffer, so the kernel cannot absorb the flood for us.
        let stalled = connect_with_small_buffer();
        let mut stalled = stalled;
        stalled.write_all(request.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(500));

        net.lan.enter(|| {
            let udp = std::net::UdpSocket::bind("192.168.88.2:40000").unwrap();
            let payload = [0u8; 200];
            for i in 0..30_000 {
                // DHCP's server port: kept by the filter.
                udp.send_to(&payload, "192.168.88.1:67").unwrap();
                if i % 100 == 99 {
                    // Paced, so the packet socket's buffer is not what overflows.
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        let v = net.wait_status("the flood captured", |s| s["captured"]["lan0"].as_u64() >= Some(20_000));
        let dropped = v["clients"]["dropped"].as_u64().unwrap();
        assert!(dropped > 0, "the stalled client's queue overflowed: {v:#}");

        // Now read: the backlog, then packets sent after the gap; the first
        // one that gets through carries the note.
        stalled.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let deadline = runtime::clock::now() + SLOW;
        let poke = net.lan.enter(|| std::net::UdpSocket::bind("192.168.88.2:40001").unwrap());
        let mut poked = false;
        loop {
            assert!(runtime::clock::now() < deadline, "no packet sent after the gap arrived");
            match stalled.read(&mut buf) {
                Ok(0) => panic!("the stream ended"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    poke.send_to(b"after the gap", "192.168.88.1:67").unwrap();
                    poked = true;
                }
                Err(e) => panic!("{e}"),
            }
            // The note follows the packet's data: wait for the whole block.
            if poked && let Some(start) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let body = dechunk(&got[start + 4..]);
                if whole_blocks(&body).windows(13).any(|w| w == b"after the gap") {
                    break;
                }
            }
        }
        (got, dropped)
    });
    let body_start = stalled_bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = dechunk(&stalled_bytes[body_start..]);
    let file = net.dir.path().join("stalled.pcapng");
    std::fs::write(&file, whole_blocks(&body)).unwrap();
    let rows = tshark_fields(&file, &["frame.drop_count", "frame.comment"]);
    let notes: Vec<&Vec<String>> = rows.iter().filter(|r| !r[0].is_empty()).collect();
    assert!(!notes.is_empty(), "no packet says what was dropped");
    let noted: u64 = notes.iter().map(|r| r[0].parse::<u64>().unwrap()).sum();
    assert!(notes.iter().all(|r| r[1].contains("dropped for this client")), "{notes:?}");
    // Every drop was told (pokes lost while the queue was still full are told too).
    let metrics = net.router.exec("curl", &["-s", "http://127.0.0.1:5022/metrics"]);
    let text = String::from_utf8_lossy(&metrics.stdout);
    let counted: u64 =
        text.lines().find_map(|l| l.strip_prefix("captured_client_dropped_packets_total ")).unwrap().parse().unwrap();
    assert!(
        noted >= dropped_total && noted == counted,
        "noted {noted}, counted {counted}, at the flood {dropped_total}"
    );
}

fn connect_with_small_buffer() -> TcpStream {
    use std::os::fd::AsFd;
    let sock = rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::STREAM, None).unwrap();
    rustix::net::sockopt::set_socket_recv_buffer_size(sock.as_fd(), 4096).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:5022".parse().unwrap();
    rustix::net::connect(sock.as_fd(), &addr).unwrap();
    TcpStream::from(sock)
}

/// Undoes chunked framing as far as the data goes (the stream was cut).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16).unwrap();
        data = &data[line_end + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || size == 0 {
            break;
        }
        data = &data[(size + 2).min(data.len())..];
    }
    out
}
