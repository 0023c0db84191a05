use super::*;
use etherparse::PacketBuilder;
use runtime::bpf::run;

const SRC: [u8; 6] = [0x02, 0x73, 0x53, 0, 0, 1];
const DST: [u8; 6] = [0x33, 0x33, 0, 0, 0, 2];
const V6A: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6B: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn udp4(sport: u16, dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(sport, dport)
        .write(&mut out, b"x")
        .unwrap();
    out
}

fn tcp4(sport: u16, dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(sport, dport, 1, 1000)
        .write(&mut out, b"x")
        .unwrap();
    out
}

fn udp6(sport: u16, dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(SRC, DST).ipv6(V6A, V6B, 1).udp(sport, dport).write(&mut out, b"x").unwrap();
    out
}

fn tcp6(sport: u16, dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(SRC, DST).ipv6(V6A, V6B, 64).tcp(sport, dport, 1, 1000).write(&mut out, b"x").unwrap();
    out
}

fn icmp6(kind: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv6(V6A, V6B, 255)
        .icmpv6_raw(kind, 0, [0; 4])
        .write(&mut out, &[0; 16])
        .unwrap();
    out
}

/// An MLDv2 report as the kernel sends it: a hop-by-hop header with the router
/// alert option (RFC 2711) before ICMPv6 type 143.
fn mld_report() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 0x16]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 36, 0, 1]); // payload 8 + 28, next header 0, hop limit 1
    f.extend_from_slice(&V6A);
    f.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);
    f.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]); // next 58, len 0, router alert, PadN
    f.extend_from_slice(&[143, 0, 0, 0, 0, 0, 0, 1]); // MLDv2 report, one record
    f.extend_from_slice(&[4, 0, 0, 0, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1]);
    f
}

fn arp() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    f
}

fn kept(prog: &[SockFilter], frame: &[u8]) -> bool {
    run(prog, frame) == ACCEPT_ALL
}

#[test]
fn keeps_dhcp_icmpv6_and_arp() {
    let p = program(&Extra::default()).unwrap();
    for (what, frame) in [
        ("DHCPv4 to the server", udp4(68, 67)),
        ("DHCPv4 to the client", udp4(67, 68)),
        ("DHCPv6 to the server", udp6(546, 547)),
        ("DHCPv6 to the client", udp6(547, 546)),
        ("router solicitation", icmp6(133)),
        ("router advertisement", icmp6(134)),
        ("neighbor solicitation", icmp6(135)),
        ("neighbor advertisement", icmp6(136)),
        ("echo request", icmp6(128)),
        ("MLDv2 report behind hop-by-hop", mld_report()),
        ("ARP", arp()),
    ] {
        assert!(kept(&p, &frame), "{what} must be kept");
    }
}

#[test]
fn drops_everything_else() {
    let p = program(&Extra::default()).unwrap();
    let mut hbh_udp = mld_report();
    hbh_udp[14 + 40] = 17; // hop-by-hop followed by UDP: not a configuration protocol
    let mut vlan = udp4(68, 67);
    vlan[12..14].copy_from_slice(&[0x81, 0x00]);
    for (what, frame) in [
        ("DNS over UDP", udp4(5353, 53)),
        ("DHCPv6 ports over IPv4", udp4(546, 547)),
        ("DHCPv4 ports over IPv6", udp6(68, 67)),
        ("TCP to 67", tcp4(1234, 67)),
        ("TCP over IPv6", tcp6(1234, 547)),
        ("hop-by-hop then UDP", hbh_udp),
        ("an unknown ethertype", vlan),
    ] {
        assert!(!kept(&p, &frame), "{what} must be dropped");
    }
}

#[test]
fn keeps_first_fragments_only_and_reads_ports_past_ipv4_options() {
    let p = program(&Extra::default()).unwrap();
    let mut first = udp4(68, 67);
    first[14 + 6] = 0x20; // more fragments, offset 0
    assert!(kept(&p, &first));
    let mut later = udp4(68, 67);
    later[14 + 7] = 0x10; // offset 16: no UDP header here
    assert!(!kept(&p, &later));
    // An IPv4 header with 4 bytes of options (IHL 6): the ports move.
    let plain = udp4(68, 67);
    let mut with_options = plain[..14 + 20].to_vec();
    with_options[14] = 0x46;
    with_options.extend_from_slice(&[1, 1, 1, 0]); // NOPs and end of options
    with_options.extend_from_slice(&plain[14 + 20..]);
    assert!(kept(&p, &with_options));
}

#[test]
fn extra_ports_add_udp_and_tcp_in_both_directions() {
    let extra = Extra { udp_ports: vec![53, 123], tcp_ports: vec![179] };
    let p = program(&extra).unwrap();
    for frame in [udp4(40000, 53), udp4(123, 123), udp6(53, 40000), tcp4(179, 40000), tcp6(40000, 179)] {
        assert!(kept(&p, &frame));
    }
    for frame in [udp4(40000, 54), tcp4(53, 40000), tcp6(40000, 123), udp6(179, 40000)] {
        assert!(!kept(&p, &frame));
    }
    // The fixed set is still there.
    for frame in [udp4(68, 67), udp6(546, 547), icmp6(134), mld_report(), arp()] {
        assert!(kept(&p, &frame));
    }
}

#[test]
fn the_largest_allowed_configuration_assembles_and_one_more_port_is_refused() {
    let ports: Vec<u16> = (1000..1000 + MAX_EXTRA_PORTS as u16).collect();
    let extra = Extra { udp_ports: ports.clone(), tcp_ports: ports.clone() };
    let p = program(&extra).unwrap();
    assert!(kept(&p, &tcp6(40000, *ports.last().unwrap())));
    assert!(kept(&p, &udp4(*ports.last().unwrap(), 40000)));
    assert!(kept(&p, &arp()));
    let mut too_many = extra;
    too_many.udp_ports.push(7);
    assert_eq!(program(&too_many), Err(FilterError::TooManyPorts));
}

#[test]
fn truncated_frames_are_dropped_without_reading_out_of_bounds() {
    let p = program(&Extra { udp_ports: vec![53], tcp_ports: vec![80] }).unwrap();
    for frame in [udp4(68, 67), udp6(546, 547), mld_report(), tcp4(80, 1)] {
        // Cut before the port or next-header bytes the decision needs.
        for len in 0..34 {
            assert!(!kept(&p, &frame[..len]), "len {len}");
        }
    }
}

/// Every frame of our recorded DHCP conversations passes the filter.
#[test]
fn keeps_every_frame_of_the_recorded_dhcp_captures() {
    let p = program(&Extra::default()).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../captures");
    for name in ["dhcp4-client-dnsmasq.pcapng", "dhcp4-client-kea.pcapng", "dhcp6-client-kea.pcap"] {
        let cap = runtime::pcap::parse(&std::fs::read(dir.join(name)).unwrap()).unwrap();
        assert!(!cap.packets.is_empty(), "{name}");
        for (i, packet) in cap.packets.iter().enumerate() {
            assert_eq!(cap.interfaces[packet.interface as usize].linktype, runtime::pcap::LINKTYPE_ETHERNET);
            assert!(kept(&p, &packet.data), "{name} packet {i}");
        }
    }
}

/// What the filter should decide, classified independently with etherparse
/// (which walks IPv6 extension headers itself).
fn expected(frame: &[u8]) -> bool {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    if frame.get(12..14) == Some(&[0x08, 0x06]) {
        return true;
    }
    let Ok(p) = SlicedPacket::from_ethernet(frame) else { return false };
    match (&p.net, &p.transport) {
        (Some(NetSlice::Ipv6(_)), Some(TransportSlice::Icmpv6(_))) => true,
        (Some(NetSlice::Ipv4(_)), Some(TransportSlice::Udp(u))) => {
            [u.source_port(), u.destination_port()].iter().any(|p| DHCP4_PORTS.contains(p))
        }
        (Some(NetSlice::Ipv6(_)), Some(TransportSlice::Udp(u))) => {
            [u.source_port(), u.destination_port()].iter().any(|p| DHCP6_PORTS.contains(p))
        }
        _ => false,
    }
}

/// Real traffic recorded unfiltered (MLD behind hop-by-hop, RS/RA/NS/NA, ARP,
/// DHCP, and ICMPv4 that must go): the filter agrees with the classification
/// on every frame, and the capture has frames of both kinds.
#[test]
fn agrees_with_an_independent_classification_of_recorded_traffic() {
    let p = program(&Extra::default()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../captures/captured-filter-mix.pcapng");
    let cap = runtime::pcap::parse(&std::fs::read(path).unwrap()).unwrap();
    let (mut kept_n, mut dropped_n, mut mld) = (0, 0, 0);
    for (i, packet) in cap.packets.iter().enumerate() {
        let want = expected(&packet.data);
        assert_eq!(kept(&p, &packet.data), want, "frame {}", i + 1);
        if want {
            kept_n += 1
        } else {
            dropped_n += 1
        }
        // Ethernet + IPv6 with next header 0, then ICMPv6 143.
        if packet.data.get(20) == Some(&0) && packet.data.get(54) == Some(&58) && packet.data.get(62) == Some(&143) {
            mld += 1;
        }
    }
    assert!(kept_n >= 30 && dropped_n >= 4 && mld >= 6, "kept {kept_n}, dropped {dropped_n}, MLD {mld}");
}
