//! Reading and writing packet captures: classic libpcap files (both byte
//! orders, micro- and nanosecond stamps) and pcapng (section header, interface
//! descriptions with names, enhanced and simple packet blocks).
//!
//! Enough to replay `../shared/captures/fiber7/*.pcap` and our own `captures/`
//! into cores, and for captured to stream pcapng that Wireshark and tshark read
//! with the right interface names.

use std::fmt;
use std::io::{self, Write};

/// Link type of Ethernet.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// Link type of raw IP.
pub const LINKTYPE_RAW: u16 = 101;

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Index into [`Capture::interfaces`].
    pub interface: u32,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Length on the wire (may exceed `data.len()` when truncated by snaplen).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// An interface of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Link type, e.g. [`LINKTYPE_ETHERNET`].
    pub linktype: u16,
    /// The interface name, if recorded (pcapng `if_name`).
    pub name: Option<String>,
}

/// A whole capture read into memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capture {
    /// Interfaces (a classic pcap file has exactly one).
    pub interfaces: Vec<Interface>,
    /// Packets in file order.
    pub packets: Vec<Packet>,
}

/// Why a capture could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "capture at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for PcapError {}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, PcapError> {
    Err(PcapError { offset, message: message.into() })
}

#[derive(Clone, Copy)]
struct Order(bool); // true = little endian

impl Order {
    fn u16(self, b: &[u8], at: usize) -> Result<u16, PcapError> {
        let s: [u8; 2] = b
            .get(at..at + 2)
            .and_then(|s| s.try_into().ok())
            .ok_or(PcapError { offset: at, message: "truncated".into() })?;
        Ok(if self.0 { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    }
    fn u32(self, b: &[u8], at: usize) -> Result<u32, PcapError> {
        let s: [u8; 4] = b
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or(PcapError { offset: at, message: "truncated".into() })?;
        Ok(if self.0 { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    }
}

/// Reads a classic pcap or a pcapng capture.
pub fn parse(bytes: &[u8]) -> Result<Capture, PcapError> {
    match bytes.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => parse_pcapng(bytes),
        Some(_) => parse_classic(bytes),
        None => err(0, "too short for a capture"),
    }
}

fn parse_classic(b: &[u8]) -> Result<Capture, PcapError> {
    let magic = Order(true).u32(b, 0)?;
    let (order, nanos) = match magic {
        0xa1b2_c3d4 => (Order(true), false),
        0xa1b2_3c4d => (Order(true), true),
        0xd4c3_b2a1 => (Order(false), false),
        0x4d3c_b2a1 => (Order(false), true),
        _ => return err(0, format!("not a capture (magic {magic:#010x})")),
    };
    let linktype = u16::try_from(order.u32(b, 20)? & 0xffff).unwrap_or(0);
    let mut cap = Capture { interfaces: vec![Interface { linktype, name: None }], packets: Vec::new() };
    let mut at = 24;
    while at < b.len() {
        let secs = u64::from(order.u32(b, at)?);
        let frac = u64::from(order.u32(b, at + 4)?);
        let incl = order.u32(b, at + 8)? as usize;
        let orig = order.u32(b, at + 12)?;
        let data = b
            .get(at + 16..at + 16 + incl)
            .ok_or(PcapError { offset: at, message: format!("record of {incl} bytes is truncated") })?;
        let sub = if nanos { frac } else { frac * 1000 };
        cap.packets.push(Packet {
            interface: 0,
            timestamp_ns: secs * 1_000_000_000 + sub,
            orig_len: orig,
            data: data.to_vec(),
        });
        at += 16 + incl;
    }
    Ok(cap)
}

struct IfState {
    tsresol_ns: u64, // nanoseconds per unit; 0 means "finer than a nanosecond"
    tsresol_div: u64,
}

fn parse_pcapng(b: &[u8]) -> Result<Capture, PcapError> {
    let mut cap = Capture::default();
    let mut ifs: Vec<IfState> = Vec::new();
    let mut order = Order(true);
    let mut at = 0;
    while at < b.len() {
        if at + 12 > b.len() {
            return err(at, "truncated block header");
        }
        // The section header's byte-order magic decides how to read its length.
        let block_type = Order(true).u32(b, at)?;
        if block_type == 0x0a0d_0d0a {
            order = match Order(true).u32(b, at + 8)? {
                0x1a2b_3c4d => Order(true),
                0x4d3c_2b1a => Order(false),
                m => return err(at + 8, format!("bad byte-order magic {m:#010x}")),
            };
            ifs.clear();
            cap.interfaces.clear();
        }
        let block_type = order.u32(b, at)?;
        let len = order.u32(b, at + 4)? as usize;
        if len < 12 || !len.is_multiple_of(4) || at + len > b.len() {
            return err(at, format!("bad block length {len}"));
        }
        let body = &b[at + 8..at + len - 4];
        match block_type {
            1 => {
                let linktype = order.u16(body, 0)?;
                let mut iface = Interface { linktype, name: None };
                let mut st = IfState { tsresol_ns: 1000, tsresol_div: 1 };
                for (code, value) in options(order, body, 8)? {
                    match code {
                        2 => iface.name = Some(String::from_utf8_lossy(value).trim_end_matches('\0').to_owned()),
                        9 => {
                            let r = value.first().copied().unwrap_or(6);
                            st = tsresol(r);
                        }
                        _ => {}
                    }
                }
                cap.interfaces.push(iface);
                ifs.push(st);
            }
            6 => {
                let interface = order.u32(body, 0)?;
                let st = ifs
                    .get(interface as usize)
                    .ok_or(PcapError { offset: at, message: format!("packet for unknown interface {interface}") })?;
                let ts = (u64::from(order.u32(body, 4)?) << 32) | u64::from(order.u32(body, 8)?);
                let cap_len = order.u32(body, 12)? as usize;
                let orig_len = order.u32(body, 16)?;
                let data = body
                    .get(20..20 + cap_len)
                    .ok_or(PcapError { offset: at, message: "packet data truncated".into() })?;
                let timestamp_ns =
                    if st.tsresol_ns > 0 { ts.saturating_mul(st.tsresol_ns) } else { ts / st.tsresol_div };
                cap.packets.push(Packet { interface, timestamp_ns, orig_len, data: data.to_vec() });
            }
            3 => {
                let orig_len = order.u32(body, 0)?;
                let n = (orig_len as usize).min(body.len().saturating_sub(4));
                cap.packets.push(Packet { interface: 0, timestamp_ns: 0, orig_len, data: body[4..4 + n].to_vec() });
            }
            _ => {}
        }
        at += len;
    }
    Ok(cap)
}

fn tsresol(r: u8) -> IfState {
    let exp = u32::from(r & 0x7f);
    if r & 0x80 != 0 {
        // 2^-exp seconds per unit.
        let units_per_sec = 1u64.checked_shl(exp).unwrap_or(u64::MAX);
        if units_per_sec <= 1_000_000_000 {
            IfState { tsresol_ns: 1_000_000_000 / units_per_sec, tsresol_div: 1 }
        } else {
            IfState { tsresol_ns: 0, tsresol_div: units_per_sec / 1_000_000_000 }
        }
    } else if exp <= 9 {
        IfState { tsresol_ns: 10u64.pow(9 - exp), tsresol_div: 1 }
    } else {
        IfState { tsresol_ns: 0, tsresol_div: 10u64.checked_pow(exp - 9).unwrap_or(u64::MAX) }
    }
}

fn options(order: Order, body: &[u8], mut at: usize) -> Result<Vec<(u16, &[u8])>, PcapError> {
    let mut out = Vec::new();
    while at + 4 <= body.len() {
        let code = order.u16(body, at)?;
        let len = order.u16(body, at + 2)? as usize;
        if code == 0 {
            break;
        }
        let value =
            body.get(at + 4..at + 4 + len).ok_or(PcapError { offset: at, message: "option truncated".into() })?;
        out.push((code, value));
        at += 4 + len.div_ceil(4) * 4;
    }
    Ok(out)
}

/// Writes a classic pcap file (little endian, nanosecond stamps).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, linktype: u16, snaplen: u32) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&u32::from(linktype).to_le_bytes());
        out.write_all(&h)?;
        Ok(Self { out, snaplen })
    }

    /// Writes one packet (truncated to the snaplen).
    pub fn write_packet(&mut self, timestamp_ns: u64, data: &[u8]) -> io::Result<()> {
        let incl = data.len().min(self.snaplen as usize);
        let mut r = Vec::with_capacity(16 + incl);
        r.extend_from_slice(&u32::try_from(timestamp_ns / 1_000_000_000).unwrap_or(u32::MAX).to_le_bytes());
        r.extend_from_slice(&u32::try_from(timestamp_ns % 1_000_000_000).unwrap_or(0).to_le_bytes());
        r.extend_from_slice(&u32::try_from(incl).unwrap_or(u32::MAX).to_le_bytes());
        r.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
        r.extend_from_slice(&data[..incl]);
        self.out.write_all(&r)
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    buf.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(12 + body.len()).unwrap_or(u32::MAX);
    let mut b = Vec::with_capacity(12 + body.len());
    b.extend_from_slice(&block_type.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// The pcapng section header block (little endian, unknown section length).
#[must_use]
pub fn pcapng_section_header() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    block(0x0a0d_0d0a, &body)
}

/// A pcapng interface description block with `if_name` and nanosecond `if_tsresol`.
#[must_use]
pub fn pcapng_interface(name: &str, linktype: u16, snaplen: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&linktype.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&snaplen.to_le_bytes());
    push_option(&mut body, 2, name.as_bytes());
    push_option(&mut body, 9, &[9]);
    body.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
    block(1, &body)
}

/// A pcapng enhanced packet block, optionally with a comment (`opt_comment`).
#[must_use]
pub fn pcapng_packet(interface: u32, timestamp_ns: u64, data: &[u8], orig_len: u32, comment: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(20 + data.len() + 8);
    body.extend_from_slice(&interface.to_le_bytes());
    body.extend_from_slice(&u32::try_from(timestamp_ns >> 32).unwrap_or(0).to_le_bytes());
    body.extend_from_slice(&u32::try_from(timestamp_ns & 0xffff_ffff).unwrap_or(0).to_le_bytes());
    body.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
    body.extend_from_slice(&orig_len.to_le_bytes());
    body.extend_from_slice(data);
    body.resize(body.len().next_multiple_of(4), 0);
    if let Some(text) = comment {
        push_option(&mut body, 1, text.as_bytes());
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(6, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_capture(name: &str) -> Option<std::path::PathBuf> {
        crate::testing::shared_capture(&format!("fiber7/{name}"), "pcap tests")
    }

    #[test]
    fn reads_the_fiber7_dhcpv4_capture() {
        let Some(path) = shared_capture("dhcp4-offer-ack-2018-05-18.pcap") else {
            return;
        };
        let cap = parse(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(cap.interfaces, vec![Interface { linktype: LINKTYPE_ETHERNET, name: None }]);
        assert_eq!(cap.packets.len(), 2);
        for p in &cap.packets {
            let udp = crate::frame::parse_udp4_ethernet(&p.data).unwrap();
            assert_eq!(udp.src.port(), 67);
            assert_eq!(udp.src_mac, Some([0x00, 0x24, 0x14, 0xef, 0x72, 0xff]));
            // BOOTP reply with xid 7708d724.
            assert_eq!(udp.payload[0], 2);
            assert_eq!(&udp.payload[4..8], &[0x77, 0x08, 0xd7, 0x24]);
        }
    }

    #[test]
    fn reads_the_fiber7_dhcpv6_capture() {
        let Some(path) = shared_capture("dhcp6-advertise-reply-2018-05-14.pcap") else {
            return;
        };
        let cap = parse(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(cap.packets.len(), 2);
        // IPv6, UDP 547 -> 546, message types ADVERTISE (2) then REPLY (7).
        let types: Vec<u8> = cap.packets.iter().map(|p| p.data[14 + 40 + 8]).collect();
        assert_eq!(types, vec![2, 7]);
    }

    #[test]
    fn pcapng_round_trips_names_and_nanoseconds() {
        let mut out = pcapng_section_header();
        out.extend(pcapng_interface("uplink0", LINKTYPE_ETHERNET, 1600));
        out.extend(pcapng_interface("lan0", LINKTYPE_ETHERNET, 1600));
        out.extend(pcapng_packet(1, 1_526_639_696_123_456_789, b"abcde", 5, None));
        out.extend(pcapng_packet(0, 7, b"xyz", 60, Some("dropped 3 packets before this one")));
        let cap = parse(&out).unwrap();
        assert_eq!(cap.interfaces[0].name.as_deref(), Some("uplink0"));
        assert_eq!(cap.interfaces[1].name.as_deref(), Some("lan0"));
        assert_eq!(
            cap.packets[0],
            Packet { interface: 1, timestamp_ns: 1_526_639_696_123_456_789, orig_len: 5, data: b"abcde".to_vec() }
        );
        assert_eq!(cap.packets[1].orig_len, 60);
        assert_eq!(cap.packets[1].data, b"xyz");
    }

    #[test]
    fn classic_writer_round_trips() {
        let mut w = PcapWriter::new(Vec::new(), LINKTYPE_ETHERNET, 4).unwrap();
        w.write_packet(1_000_000_123, b"abcdef").unwrap();
        let cap = parse(&w.into_inner()).unwrap();
        assert_eq!(
            cap.packets,
            vec![Packet { interface: 0, timestamp_ns: 1_000_000_123, orig_len: 6, data: b"abcd".to_vec() }]
        );
    }

    #[test]
    fn microsecond_and_big_endian_files_are_read() {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_c3d4u32.to_be_bytes());
        b.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1]);
        b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa]);
        let cap = parse(&b).unwrap();
        assert_eq!(cap.packets[0].timestamp_ns, 2_000_005_000);
        assert_eq!(cap.packets[0].data, vec![0xaa]);
    }

    #[test]
    fn truncated_captures_are_errors_not_panics() {
        let mut out = pcapng_section_header();
        out.extend(pcapng_interface("lan0", LINKTYPE_ETHERNET, 1600));
        out.extend(pcapng_packet(0, 1, b"abcdefgh", 8, None));
        for len in 0..out.len() {
            let _ = parse(&out[..len]);
        }
        assert!(parse(&out[..out.len() - 1]).is_err());
        assert!(parse(b"\xd4\xc3\xb2\xa1").is_err());
    }
}
