//! The pcapng stream one client gets: a section header, one interface
//! description block per selected interface (name, Ethernet, nanosecond
//! stamps; from `runtime::pcap`), then enhanced packet blocks, and interface
//! statistics blocks when the stream is idle.
//!
//! The packet blocks carry what runtime's plain writer does not (pcapng spec,
//! draft-ietf-opsawg-pcapng §4.3): `epb_flags` with the direction (so
//! Wireshark shows what the router sent), and for a packet after a gap
//! `epb_dropcount` and an `opt_comment` saying how many packets this client
//! missed (tshark: `frame.drop_count`, `frame.comment`).

use runtime::pcap::{LINKTYPE_ETHERNET, pcapng_interface, pcapng_section_header};

use crate::hub::{ClientCounts, Delivered, Selection};
use crate::ring::Iface;

/// Frames are kept up to this length (a jumbo frame); `orig_len` keeps the real one.
pub const SNAPLEN: u32 = 9216;

const EPB: u32 = 6;
const ISB: u32 = 5;
const OPT_COMMENT: u16 = 1;
const EPB_FLAGS: u16 = 2;
const EPB_DROPCOUNT: u16 = 4;
const ISB_IFRECV: u16 = 4;
const EPB_INBOUND: u32 = 0b01;
const EPB_OUTBOUND: u32 = 0b10;

fn push_option(buf: &mut Vec<u8>, code: u16, value: &[u8]) {
    buf.extend_from_slice(&code.to_le_bytes());
    // Our options are short (a comment of a few dozen bytes, 4 or 8 bytes of number).
    buf.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn push_block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
    let len = u32::try_from(12 + body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_le_bytes());
}

fn push_timestamp(body: &mut Vec<u8>, timestamp_ns: u64) {
    // Two 32-bit halves of the 64-bit count, high first, each little endian.
    body.extend_from_slice(&((timestamp_ns >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&((timestamp_ns & 0xffff_ffff) as u32).to_le_bytes());
}

/// The text of the note on a packet that follows a gap.
#[must_use]
pub fn drop_note(dropped: u64) -> String {
    format!("captured: {dropped} packets dropped for this client before this one (it read too slowly)")
}

/// Encodes one client's stream.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    ifaces: Vec<Iface>,
    names: [String; 2],
}

impl StreamEncoder {
    /// A stream of `selection`'s interfaces, called `names` (uplink, LAN).
    #[must_use]
    pub fn new(selection: Selection, names: [&str; 2]) -> Self {
        Self { ifaces: selection.ifaces(), names: names.map(str::to_owned) }
    }

    /// The section header and the interface descriptions.
    #[must_use]
    pub fn header(&self) -> Vec<u8> {
        let mut out = pcapng_section_header();
        for iface in &self.ifaces {
            out.extend(pcapng_interface(&self.names[iface.index()], LINKTYPE_ETHERNET, SNAPLEN));
        }
        out
    }

    fn interface_id(&self, iface: Iface) -> Option<u32> {
        self.ifaces.iter().position(|i| *i == iface).and_then(|p| u32::try_from(p).ok())
    }

    /// Appends the packet block for `d` (nothing when its interface is not in the stream).
    pub fn packet(&self, out: &mut Vec<u8>, d: &Delivered) {
        let Some(id) = self.interface_id(d.packet.iface) else { return };
        let p = &d.packet;
        let data = &p.data[..p.data.len().min(SNAPLEN as usize)];
        let mut body = Vec::with_capacity(20 + data.len() + 96);
        body.extend_from_slice(&id.to_le_bytes());
        push_timestamp(&mut body, p.timestamp_ns);
        body.extend_from_slice(&u32::try_from(data.len()).unwrap_or(SNAPLEN).to_le_bytes());
        body.extend_from_slice(&p.orig_len.to_le_bytes());
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        let direction = if p.outgoing { EPB_OUTBOUND } else { EPB_INBOUND };
        push_option(&mut body, EPB_FLAGS, &direction.to_le_bytes());
        if d.dropped_before > 0 {
            push_option(&mut body, EPB_DROPCOUNT, &d.dropped_before.to_le_bytes());
            push_option(&mut body, OPT_COMMENT, drop_note(d.dropped_before).as_bytes());
        }
        push_option(&mut body, 0, &[]);
        push_block(out, EPB, &body);
    }

    /// Appends one statistics block per interface: packets captured on it
    /// since captured started (`isb_ifrecv`), and on the first, a comment with
    /// what this client got and missed. Sent when the stream is idle, which
    /// also shows a client is still there (a write to a gone client fails).
    pub fn statistics(&self, out: &mut Vec<u8>, timestamp_ns: u64, captured: [u64; 2], client: ClientCounts) {
        for (n, iface) in self.ifaces.iter().enumerate() {
            let mut body = Vec::with_capacity(96);
            body.extend_from_slice(&u32::try_from(n).unwrap_or(0).to_le_bytes());
            push_timestamp(&mut body, timestamp_ns);
            if n == 0 {
                let text = format!(
                    "captured: {} packets delivered to this client, {} dropped for it",
                    client.delivered, client.dropped
                );
                push_option(&mut body, OPT_COMMENT, text.as_bytes());
            }
            push_option(&mut body, ISB_IFRECV, &captured[iface.index()].to_le_bytes());
            push_option(&mut body, 0, &[]);
            push_block(out, ISB, &body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Captured;
    use std::sync::Arc;

    fn delivered(iface: Iface, outgoing: bool, dropped_before: u64, data: &[u8]) -> Delivered {
        Delivered {
            packet: Arc::new(Captured {
                seq: 0,
                iface,
                timestamp_ns: 1_764_000_000_123_456_789,
                orig_len: u32::try_from(data.len()).unwrap() + 1000,
                outgoing,
                data: data.into(),
            }),
            dropped_before,
        }
    }

    #[test]
    fn runtime_reads_back_names_stamps_and_data() {
        let enc = StreamEncoder::new(Selection::ALL, ["uplink0", "lan0"]);
        let mut out = enc.header();
        enc.packet(&mut out, &delivered(Iface::Lan, false, 0, b"abcde"));
        enc.packet(&mut out, &delivered(Iface::Uplink, true, 7, b"xyz"));
        enc.statistics(&mut out, 1_764_000_001_000_000_000, [5, 6], ClientCounts { delivered: 2, dropped: 7 });
        let cap = runtime::pcap::parse(&out).unwrap();
        let names: Vec<_> = cap.interfaces.iter().map(|i| i.name.clone().unwrap()).collect();
        assert_eq!(names, ["uplink0", "lan0"]);
        assert_eq!(cap.packets.len(), 2);
        assert_eq!(cap.packets[0].interface, 1);
        assert_eq!(cap.packets[0].data, b"abcde");
        assert_eq!(cap.packets[0].orig_len, 1005);
        assert_eq!(cap.packets[0].timestamp_ns, 1_764_000_000_123_456_789);
        assert_eq!(cap.packets[1].interface, 0);
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn a_selected_interface_gets_id_zero_and_others_are_skipped() {
        let enc = StreamEncoder::new(Selection::of(&[Iface::Lan]), ["uplink0", "lan0"]);
        let mut out = enc.header();
        enc.packet(&mut out, &delivered(Iface::Uplink, false, 0, b"no"));
        enc.packet(&mut out, &delivered(Iface::Lan, false, 0, b"yes"));
        let cap = runtime::pcap::parse(&out).unwrap();
        assert_eq!(cap.interfaces.len(), 1);
        assert_eq!(cap.interfaces[0].name.as_deref(), Some("lan0"));
        assert_eq!(cap.packets.len(), 1);
        assert_eq!((cap.packets[0].interface, cap.packets[0].data.as_slice()), (0, &b"yes"[..]));
    }

    #[test]
    fn the_drop_note_and_direction_are_options_of_the_packet() {
        let enc = StreamEncoder::new(Selection::ALL, ["uplink0", "lan0"]);
        let mut plain = Vec::new();
        enc.packet(&mut plain, &delivered(Iface::Lan, false, 0, b"abcd"));
        let mut noted = Vec::new();
        enc.packet(&mut noted, &delivered(Iface::Lan, true, 42, b"abcd"));
        // Block: type, length, interface, 2 stamps, 2 lengths, 4 data bytes, then options.
        let opts = |b: &[u8]| b[8 + 20 + 4..b.len() - 4].to_vec();
        assert_eq!(opts(&plain), [2, 0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        let o = opts(&noted);
        assert_eq!(&o[..8], &[2, 0, 4, 0, 2, 0, 0, 0]);
        assert_eq!(&o[8..20], &[4, 0, 8, 0, 42, 0, 0, 0, 0, 0, 0, 0]);
        let text = drop_note(42);
        assert_eq!(&o[20..24], &[1, 0, u8::try_from(text.len()).unwrap(), 0]);
        assert_eq!(&o[24..24 + text.len()], text.as_bytes());
    }
}
