//! Proves the harness: two namespaces joined by a veth pair, dnsmasq serving
//! DHCP on one side, and on the other side a DISCOVER sent through the runtime's
//! raw packet socket; the OFFER comes back to that socket (through its BPF
//! filter) and to a plain UDP socket on port 68, and dnsmasq's log shows it.

#![allow(clippy::unwrap_used)] // test code: a failed step panics, which is the report

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use runtime::packet::{ETH_P_IP, Framing, PacketSocket};
use runtime::{bpf, frame, netif};
use testbed::{Netns, TempDir, veth};

const CLIENT_MAC: [u8; 6] = [0x02, 0x73, 0x53, 0x00, 0xca, 0xfe];

fn discover(xid: u32) -> Vec<u8> {
    let mut msg = Message::default();
    msg.set_opcode(Opcode::BootRequest)
        .set_xid(xid)
        .set_chaddr(&CLIENT_MAC)
        .set_flags(Flags::default().set_broadcast());
    msg.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    msg.opts_mut().insert(DhcpOption::ParameterRequestList(vec![OptionCode::SubnetMask, OptionCode::Router]));
    msg.to_vec().unwrap()
}

#[test]
fn dnsmasq_offer_reaches_our_raw_socket() {
    if !testbed::require("dnsmasq_offer_reaches_our_raw_socket", &["dnsmasq"]) {
        return;
    }
    let server = Netns::new("srv");
    let client = Netns::new("cli");
    veth(&server, "srv0", "02:73:53:00:00:01", &client, "cli0", &netif::format_mac(CLIENT_MAC));
    server.addr("srv0", "192.168.77.1/24");

    let dir = TempDir::new("dnsmasq");
    let dnsmasq =
        server.spawn(testbed::dnsmasq_dhcp("srv0", "192.168.77.10,192.168.77.20,20m", dir.path(), &["--no-ping"]));

    let xid = 0x7708_d724;
    let (raw_offer, udp_offer) = client.enter(|| {
        let udp = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).unwrap();
        runtime::sys::bind_to_device(udp.as_fd(), "cli0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

        let filter = bpf::ipv4_udp_to_port(bpf::Link::Cooked, 68).unwrap();
        let raw = PacketSocket::open_named("cli0", ETH_P_IP, Framing::Cooked, Some(&filter)).unwrap();
        let packet = frame::build_udp4_ip(
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68),
            SocketAddrV4::new(Ipv4Addr::BROADCAST, 67),
            64,
            &discover(xid),
        );
        raw.send_to(&packet, frame::BROADCAST_MAC).unwrap();

        let mut buf = [0u8; 1600];
        let deadline = runtime::clock::now() + Duration::from_secs(5);
        let raw_offer = loop {
            match raw.recv(&mut buf) {
                Ok((n, meta)) => {
                    assert_eq!(meta.src_mac, [0x02, 0x73, 0x53, 0x00, 0x00, 0x01]);
                    let udp4 = frame::parse_udp4_ip(&buf[..n]).unwrap();
                    assert_eq!(udp4.dst.port(), 68, "the filter lets only port 68 through");
                    break Message::decode(&mut Decoder::new(udp4.payload)).unwrap();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(runtime::clock::now() < deadline, "no OFFER on the raw socket");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        };
        let n = udp.recv(&mut buf).expect("the OFFER reaches the UDP socket too");
        let udp_offer = Message::decode(&mut Decoder::new(&buf[..n])).unwrap();
        (raw_offer, udp_offer)
    });

    for offer in [&raw_offer, &udp_offer] {
        assert_eq!(offer.xid(), xid);
        assert_eq!(offer.opts().get(OptionCode::MessageType), Some(&DhcpOption::MessageType(MessageType::Offer)));
        let yiaddr = offer.yiaddr();
        assert!((Ipv4Addr::new(192, 168, 77, 10)..=Ipv4Addr::new(192, 168, 77, 20)).contains(&yiaddr), "{yiaddr}");
        assert_eq!(
            offer.opts().get(OptionCode::Router),
            Some(&DhcpOption::Router(vec![Ipv4Addr::new(192, 168, 77, 1)]))
        );
    }
    let offered = raw_offer.yiaddr().to_string();
    dnsmasq.wait_for_log(&format!("DHCPOFFER(srv0) {offered} 02:73:53:00:ca:fe"), Duration::from_secs(5)).unwrap();
}
