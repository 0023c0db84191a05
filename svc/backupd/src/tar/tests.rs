use super::*;

fn file(path: &str, size: u64) -> Entry {
    Entry { path: path.into(), kind: Kind::File(size), mode: 0o640, uid: 1000, gid: 100, mtime: 1_764_000_000 }
}

/// Reads headers (and metadata) until the entry.
fn read_entry(bytes: &[u8]) -> Result<Entry, TarError> {
    let mut r = Reader::new();
    let mut at = 0;
    loop {
        let block: &[u8; BLOCK] = bytes[at..at + BLOCK].try_into().unwrap();
        at += BLOCK;
        match r.header(block)? {
            Step::Entry(e) => return Ok(e),
            Step::Metadata(len) => {
                let len = len as usize;
                r.metadata(&bytes[at..at + len])?;
                at += len.next_multiple_of(BLOCK);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn short_entries_are_plain_ustar_and_read_back() {
    let e = file("dhcp4d/leases.json", 1234);
    let h = header(&e);
    assert_eq!(h.len(), BLOCK);
    assert_eq!(&h[257..265], b"ustar\x0000");
    assert_eq!(&h[0..18], b"dhcp4d/leases.json");
    assert_eq!(&h[124..136], b"00000002322\0");
    assert_eq!(read_entry(&h).unwrap(), e);
    let d = Entry { kind: Kind::Dir, mode: 0o755, ..file("dhcp4d", 0) };
    let h = header(&d);
    assert_eq!(&h[0..7], b"dhcp4d/");
    assert_eq!(h[156], b'5');
    assert_eq!(read_entry(&h).unwrap(), d);
}

#[test]
fn long_paths_use_the_prefix_field_then_pax() {
    let mid = format!("{}/{}", "a".repeat(120), "b".repeat(90));
    let h = header(&file(&mid, 1));
    assert_eq!(h.len(), BLOCK, "fits prefix + name");
    assert_eq!(read_entry(&h).unwrap().path, mid);
    let long = format!("{}/{}", "c".repeat(300), "d".repeat(150));
    let h = header(&file(&long, 1));
    assert_eq!(h[156], b'x');
    assert_eq!(read_entry(&h).unwrap().path, long);
}

#[test]
fn huge_values_go_to_pax() {
    let e = Entry { uid: 1 << 40, gid: 3, mtime: -5, ..file("big", 20 << 30) };
    assert_eq!(read_entry(&header(&e)).unwrap(), e);
}

#[test]
fn pax_record_lengths_count_themselves() {
    for n in [1, 5, 90, 95, 96, 97, 990, 995] {
        let mut out = Vec::new();
        pax_record(&mut out, "path", &"x".repeat(n));
        let len: usize = std::str::from_utf8(&out).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, out.len(), "{n}");
    }
}

#[test]
fn a_changed_byte_fails_the_checksum() {
    let mut h = header(&file("a", 1));
    h[10] ^= 1;
    let block: &[u8; BLOCK] = h[..BLOCK].try_into().unwrap();
    assert!(Reader::new().header(block).unwrap_err().message.contains("checksum"));
}

#[test]
fn paths_are_normalised_or_refused() {
    assert_eq!(normalise(b"./a/b/").unwrap(), Some("a/b".into()));
    assert_eq!(normalise(b"././a").unwrap(), Some("a".into()));
    assert_eq!(normalise(b"./").unwrap(), None);
    assert_eq!(normalise(b".").unwrap(), None);
    for bad in [&b"/etc/x"[..], b"../x", b"a/../b", b"a//b", b"a/./b", b"a/..", b"\xff", b"a\nb"] {
        assert!(normalise(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

fn raw_header(name: &[u8], typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[257..265].copy_from_slice(b"ustar  \0"); // GNU
    seal(&mut h);
    h
}

#[test]
fn links_devices_and_unknown_types_are_refused() {
    for (t, what) in [
        (b'1', "hard link"),
        (b'2', "symbolic link"),
        (b'3', "device"),
        (b'4', "device"),
        (b'6', "FIFO"),
        (b'S', "sparse"),
        (b'V', "unknown"),
    ] {
        let e = Reader::new().header(&raw_header(b"x", t)).unwrap_err();
        assert!(e.message.contains(what), "{}: {}", char::from(t), e.message);
    }
    // A pax link path is refused too.
    let mut r = Reader::new();
    assert_eq!(r.header(&raw_header(b"PaxHeader", b'x')).unwrap(), Step::Metadata(0));
    assert!(r.metadata(b"16 linkpath=/x\n").is_err());
}

#[test]
fn gnu_long_names_and_base256_numbers_are_read() {
    let mut r = Reader::new();
    let mut long = raw_header(b"././@LongLink", b'L');
    long[124..136].copy_from_slice(b"00000000012\0");
    seal(&mut long);
    assert_eq!(r.header(&long).unwrap(), Step::Metadata(10));
    r.metadata(b"some/path\0").unwrap();
    let mut h = raw_header(b"some/pa", b'0');
    h[124] = 0x80;
    h[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    seal(&mut h);
    let Step::Entry(e) = r.header(&h).unwrap() else { panic!() };
    assert_eq!((e.path.as_str(), e.kind), ("some/path", Kind::File(256)));
}

#[test]
fn the_end_needs_two_zero_blocks_and_nothing_after_metadata() {
    let mut r = Reader::new();
    assert_eq!(r.header(&[0; BLOCK]).unwrap(), Step::Zero);
    assert_eq!(r.header(&[0; BLOCK]).unwrap(), Step::End);
    let mut r = Reader::new();
    assert_eq!(r.header(&[0; BLOCK]).unwrap(), Step::Zero);
    assert!(r.header(&raw_header(b"a", b'0')).is_err(), "a header after an end block");
    let mut r = Reader::new();
    assert!(matches!(r.header(&raw_header(b"PaxHeader", b'x')), Ok(Step::Metadata(0))));
    r.metadata(b"").unwrap();
    assert!(r.header(&[0; BLOCK]).is_err(), "pax header without its entry");
}
