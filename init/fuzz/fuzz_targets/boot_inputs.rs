//! What the kernel hands init: its command line, root= values, the first bytes
//! of a partition, kernel log records. None of it may make PID 1 panic.
#![no_main]

use init::cmdline::KernelCmdline;
use init::rootdev::{self, RootSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = KernelCmdline::parse(&text);
    if let Some(root) = &c.root {
        let _ = RootSpec::parse(root);
        let _ = rootdev::perm_from_name(std::path::Path::new(root));
    }
    let _ = rootdev::split_partition_name(&text);
    let _ = rootdev::fs_signature(data);
    let _ = rootdev::mbr_signature(data);
    let _ = init::kmsg::format_record(data);
    let _ = init::console::sanitize(&text);
});
