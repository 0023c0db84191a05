//! Arbitrary bytes as interfaces.json, portforwardings.json and config.json:
//! parsing never panics, and whatever validates is planned and encoded into an
//! nftables batch without panicking; the batch parses back as netlink messages.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netconfigd::config::{parse_config, parse_forwardings, validate_interfaces};
use netconfigd::plan::{Inputs, plan};

fuzz_target!(|data: &[u8]| {
    // Three files separated by NUL bytes.
    let mut parts = data.split(|b| *b == 0);
    let interfaces = parts.next().unwrap_or_default();
    let forwardings = parts.next().unwrap_or_default();
    let config = parts.next().unwrap_or_default();
    let Ok(raw) = serde_json::from_slice::<runtime::perm::Interfaces>(interfaces) else { return };
    let Ok((net, _)) = validate_interfaces(Path::new("interfaces.json"), &raw) else { return };
    let forwardings = parse_forwardings(Path::new("pf.json"), forwardings).map(|f| f.0).unwrap_or_default();
    let firewall = parse_config(Path::new("config.json"), config).unwrap_or_default();
    let p = plan(&Inputs {
        net: &net,
        forwardings: &forwardings,
        firewall: &firewall,
        dhcp4: None,
        dhcp6: None,
        uplink: "uplink0",
        lan: "lan0",
    });
    let tables: Vec<&netconfigd::nft::Table> = p.tables.iter().collect();
    let msgs = netconfigd::nft::replace_tables(&tables, &Default::default());
    let batch = netconfigd::nft::encode_batch(&msgs, 1);
    // Every message is framed: lengths add up to the batch.
    let mut rest = &batch[..];
    let mut count = 0;
    while !rest.is_empty() {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        assert!(len >= 20 && len <= rest.len() && len % 4 == 0);
        rest = &rest[len..];
        count += 1;
    }
    assert_eq!(count, msgs.len() + 2);
});
