//! The kernel log (`/dev/kmsg`) as lines for the `kernel` ring: each read
//! returns one record, `<prio>,<seq>,<usec>,<flags>;<text>` followed by
//! optional ` KEY=value` continuation lines (see the kernel's
//! `Documentation/ABI/testing/dev-kmsg`).

/// `[  12.345678] text` for one record; `None` for a malformed one.
#[must_use]
pub fn format_record(record: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(record);
    let (header, rest) = text.split_once(';')?;
    let mut fields = header.split(',');
    let _prio: u32 = fields.next()?.parse().ok()?;
    let _seq: u64 = fields.next()?.parse().ok()?;
    let usec: u64 = fields.next()?.parse().ok()?;
    let message = rest.split('\n').next().unwrap_or("");
    Some(format!("[{:5}.{:06}] {message}", usec / 1_000_000, usec % 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_records_and_drops_continuation_lines() {
        assert_eq!(
            format_record(b"6,339,5140900,-;NET: Registered PF_PACKET protocol family\n SUBSYSTEM=net\n").as_deref(),
            Some("[    5.140900] NET: Registered PF_PACKET protocol family")
        );
        assert_eq!(format_record(b"garbage"), None);
        assert_eq!(format_record(b"x,1,2,-;y"), None);
    }
}
