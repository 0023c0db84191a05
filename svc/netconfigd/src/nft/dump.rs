//! Reading nftables back: the tables (with the comment carrying netconfigd's
//! fingerprint), the rules (counted per table) and the counter objects, parsed
//! from the kernel's dump replies with `netlink-packet-core`'s attribute iterator.

use netlink_packet_core::{NlaBuffer, NlasIterator};

use super::wire::{
    NFT_OBJECT_COUNTER, NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS, NFTA_OBJ_DATA, NFTA_OBJ_NAME, NFTA_OBJ_TABLE,
    NFTA_OBJ_TYPE, NFTA_RULE_TABLE, NFTA_TABLE_NAME, NFTA_TABLE_USERDATA,
};
use super::{CounterValue, Family, MsgType, NFNL_SUBSYS_NFTABLES};

/// Reads a table comment back out of its user data.
#[must_use]
pub fn parse_comment_udata(udata: &[u8]) -> Option<String> {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], usize::from(rest[1]));
        let value = rest.get(2..2 + len)?;
        if kind == 0 {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            return String::from_utf8(text.to_vec()).ok();
        }
        rest = &rest[2 + len..];
    }
    None
}

/// What a dump of tables, objects or rules says about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpEntry {
    /// A table and its comment.
    Table {
        /// Family.
        family: Family,
        /// Name.
        name: String,
        /// Its comment (our fingerprint), if any.
        comment: Option<String>,
    },
    /// A counter object.
    Counter {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Name.
        name: String,
        /// Value.
        value: CounterValue,
    },
    /// A rule (only where it lives is kept).
    Rule {
        /// Family.
        family: Family,
        /// Table.
        table: String,
    },
}

fn family_of(nfproto: u8) -> Option<Family> {
    match nfproto {
        2 => Some(Family::Ip),
        10 => Some(Family::Ip6),
        _ => None,
    }
}

fn attr_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

fn attr_u64(v: &[u8]) -> u64 {
    v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

/// Parses the payload of one nftables reply message (after the netlink header):
/// nfgenmsg then attributes. Entries of other families and messages we do not
/// read give `None`; malformed attributes give an error.
pub fn parse_entry(kind: u16, payload: &[u8]) -> Result<Option<DumpEntry>, String> {
    let Some(family) = payload.first().copied().and_then(family_of) else {
        return Ok(None);
    };
    let attrs = payload.get(4..).ok_or("short nfgenmsg")?;
    let mut fields: Vec<(u16, Vec<u8>)> = Vec::new();
    for nla in NlasIterator::new(attrs) {
        let nla: NlaBuffer<&[u8]> = nla.map_err(|e| e.to_string())?;
        fields.push((nla.kind(), nla.value().to_vec()));
    }
    let get = |k: u16| fields.iter().find(|(kind, _)| *kind == k).map(|(_, v)| v.as_slice());
    let sub = kind & 0xff;
    if kind >> 8 != NFNL_SUBSYS_NFTABLES {
        return Ok(None);
    }
    if sub == MsgType::NewTable as u16 {
        let name = attr_str(get(NFTA_TABLE_NAME).ok_or("table without a name")?);
        let comment = get(NFTA_TABLE_USERDATA).and_then(parse_comment_udata);
        return Ok(Some(DumpEntry::Table { family, name, comment }));
    }
    if sub == MsgType::NewObj as u16 {
        let ty = get(NFTA_OBJ_TYPE).and_then(|v| v.get(..4)).and_then(|b| <[u8; 4]>::try_from(b).ok());
        if ty.map(u32::from_be_bytes) != Some(NFT_OBJECT_COUNTER) {
            return Ok(None);
        }
        let table = attr_str(get(NFTA_OBJ_TABLE).ok_or("object without a table")?);
        let name = attr_str(get(NFTA_OBJ_NAME).ok_or("object without a name")?);
        let mut value = CounterValue::default();
        if let Some(data) = get(NFTA_OBJ_DATA) {
            for nla in NlasIterator::new(data) {
                let nla: NlaBuffer<&[u8]> = nla.map_err(|e| e.to_string())?;
                match nla.kind() {
                    NFTA_COUNTER_BYTES => value.bytes = attr_u64(nla.value()),
                    NFTA_COUNTER_PACKETS => value.packets = attr_u64(nla.value()),
                    _ => {}
                }
            }
        }
        return Ok(Some(DumpEntry::Counter { family, table, name, value }));
    }
    if sub == MsgType::NewRule as u16 {
        let table = attr_str(get(NFTA_RULE_TABLE).ok_or("rule without a table")?);
        return Ok(Some(DumpEntry::Rule { family, table }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::wire::Attrs;

    #[test]
    fn parses_a_counter_object_from_a_dump() {
        let mut a = Attrs::default();
        a.str(NFTA_OBJ_TABLE, "router7");
        a.str(NFTA_OBJ_NAME, "fwded");
        a.u32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
        a.nest(NFTA_OBJ_DATA, |d| {
            d.u64(NFTA_COUNTER_BYTES, 42);
            d.u64(NFTA_COUNTER_PACKETS, 23);
        });
        let mut payload = vec![10, 0, 0, 0];
        payload.extend(a.0);
        let entry = parse_entry(MsgType::NewObj.nlmsg_type(), &payload).unwrap();
        assert_eq!(
            entry,
            Some(DumpEntry::Counter {
                family: Family::Ip6,
                table: "router7".into(),
                name: "fwded".into(),
                value: CounterValue { packets: 23, bytes: 42 },
            })
        );
        assert!(parse_entry(MsgType::NewObj.nlmsg_type(), &[10, 0, 0, 0, 200, 0, 1]).is_err(), "garbage is an error");
        assert_eq!(parse_entry(MsgType::NewObj.nlmsg_type(), &[7, 0, 0, 0]).unwrap(), None, "other families");
    }
}
