//! The tar format, both ways: ustar headers (POSIX.1-1988) with pax extended
//! headers (POSIX.1-2001) where a value does not fit, for writing backups;
//! and a strict reader for restores that checks every header's checksum and
//! accepts only what a backup of `/perm` can hold.
//!
//! Written by hand rather than with the `tar` crate: the writer is a header
//! encoder, and the reader must refuse far more than a general extractor
//! does (links, devices, sparse files, absolute paths, `..`), so owning those
//! few hundred lines keeps every decision visible and fuzzed (`fuzz/`).
//!
//! Read: regular files (`0`, NUL), directories (`5`), pax headers (`x`, and
//! `g`, whose records are ignored), GNU long names (`L`, what Debian's `tar`
//! writes for long paths). Refused: everything else (hard and symbolic links,
//! devices, FIFOs, sparse files, GNU long link names, volume headers).

use std::fmt;

/// The block size of tar.
pub const BLOCK: usize = 512;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory.
    Dir,
}

/// One entry's metadata, as written or as read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The normalised relative path (`a/b`, no leading `./`, no trailing `/`).
    pub path: String,
    /// File or directory.
    pub kind: Kind,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
}

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarError {
    /// Byte offset in the tar stream (uncompressed) of the header at fault.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tar at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for TarError {}

/// Writes `value` as zero-padded octal into `field`, ending in NUL; `false` if it does not fit.
fn put_octal(field: &mut [u8], value: u64) -> bool {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return false;
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    true
}

/// One pax record: `"<len> <key>=<value>\n"`, where `len` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

fn checksum(header: &[u8; BLOCK]) -> u64 {
    header.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum()
}

fn seal(header: &mut [u8; BLOCK]) {
    let sum = checksum(header);
    // Six octal digits, NUL, space: what every tar writes.
    header[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
    header[154] = 0;
    header[155] = b' ';
}

fn ustar_header(name: &[u8], prefix: &[u8], typeflag: u8, size: u64, e: &Entry) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    put_octal(&mut h[100..108], u64::from(e.mode & 0o7777));
    // Values that overflow are carried by the pax header; the field gets 0.
    for (range, v) in [(108..116, e.uid), (116..124, e.gid), (124..136, size)] {
        if !put_octal(&mut h[range.clone()], v) {
            put_octal(&mut h[range], 0);
        }
    }
    let mtime = u64::try_from(e.mtime.max(0)).unwrap_or(0);
    if !put_octal(&mut h[136..148], mtime) {
        put_octal(&mut h[136..148], 0);
    }
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    h[345..345 + prefix.len()].copy_from_slice(prefix);
    seal(&mut h);
    h
}

/// Splits a path into ustar's prefix (≤ 155 bytes) and name (≤ 100 bytes) at a `/`.
fn split_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((&[], path));
    }
    (0..path.len()).rev().filter(|&i| path[i] == b'/').find_map(|i| {
        let (prefix, name) = (&path[..i], &path[i + 1..]);
        (prefix.len() <= 155 && !name.is_empty() && name.len() <= 100).then_some((prefix, name))
    })
}

/// The header block(s) of `e`: a pax header first when the path, a size,
/// an id or the time does not fit ustar's fields.
#[must_use]
pub fn header(e: &Entry) -> Vec<u8> {
    let (typeflag, size, mut path) = match e.kind {
        Kind::File(size) => (b'0', size, e.path.clone()),
        Kind::Dir => (b'5', 0, format!("{}/", e.path)),
    };
    let mut pax = Vec::new();
    let split = split_path(path.as_bytes()).map(|(p, n)| (p.to_vec(), n.to_vec()));
    let (prefix, name) = match split {
        Some(pn) => pn,
        None => {
            pax_record(&mut pax, "path", &path);
            // A stand-in name for readers without pax support.
            path = format!("pax-long-path-{:x}", e.path.len());
            (Vec::new(), path.into_bytes())
        }
    };
    let limits = [("size", size, 0o77_777_777_777u64), ("uid", e.uid, 0o7_777_777), ("gid", e.gid, 0o7_777_777)];
    for (key, value, max) in limits {
        if value > max {
            pax_record(&mut pax, key, &value.to_string());
        }
    }
    if e.mtime < 0 || e.mtime > 0o77_777_777_777 {
        pax_record(&mut pax, "mtime", &e.mtime.to_string());
    }
    let mut out = Vec::with_capacity(3 * BLOCK);
    if !pax.is_empty() {
        let meta = Entry { mode: 0o644, ..e.clone() };
        out.extend_from_slice(&ustar_header(b"PaxHeader", &[], b'x', pax.len() as u64, &meta));
        let padded = pax.len().next_multiple_of(BLOCK);
        pax.resize(padded, 0);
        out.extend_from_slice(&pax);
    }
    out.extend_from_slice(&ustar_header(&name, &prefix, typeflag, size, e));
    out
}

/// Zero bytes that pad `size` bytes of data to a whole block.
#[must_use]
pub fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// The end of an archive: two zero blocks.
pub const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

// ---- reading ----

fn field_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// A numeric field: octal (spaces and NULs around it) or GNU base-256.
fn parse_number(field: &[u8]) -> Option<u64> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        if first != 0x80 || field.len() > 12 {
            return None; // negative, or wider than we read
        }
        return field[1..].iter().try_fold(0u64, |acc, &b| acc.checked_mul(256)?.checked_add(u64::from(b)));
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Normalises an archive path: strips leading `./` and a trailing `/`; then
/// every component must be non-empty, not `.` or `..`, and the path relative,
/// at most 4096 bytes, without NUL or control characters. `None` for the root (`.`).
pub fn normalise(raw: &[u8]) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "path is not UTF-8".to_owned())?;
    if text.starts_with('/') {
        return Err(format!("absolute path {text:?}"));
    }
    if text.len() > 4096 {
        return Err("path longer than 4096 bytes".into());
    }
    if text.chars().any(char::is_control) {
        return Err(format!("control character in path {text:?}"));
    }
    let mut rest = text;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest == "." {
        return Ok(None);
    }
    for component in rest.split('/') {
        match component {
            "" => return Err(format!("empty component in {text:?}")),
            "." | ".." => return Err(format!("{component:?} in {text:?}")),
            _ => {}
        }
    }
    Ok(Some(rest.to_owned()))
}

#[derive(Debug, Default, Clone)]
struct Overrides {
    path: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<i64>,
    uid: Option<u64>,
    gid: Option<u64>,
}

/// Parses pax records into `o`.
fn parse_pax(data: &[u8], o: &mut Overrides, global: bool) -> Result<(), String> {
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break; // padding some writers leave
        }
        let space = rest.iter().position(|&b| b == b' ').ok_or("pax record without a length")?;
        let len: usize =
            std::str::from_utf8(&rest[..space]).ok().and_then(|s| s.parse().ok()).ok_or("bad pax record length")?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("pax record length does not match".into());
        }
        let record = &rest[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').ok_or("pax record without '='")?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let key = std::str::from_utf8(key).map_err(|_| "pax key is not UTF-8")?;
        let number = || -> Result<u64, String> {
            std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()).ok_or(format!("bad pax {key}"))
        };
        if !global {
            match key {
                "path" => o.path = Some(value.to_vec()),
                "size" => o.size = Some(number()?),
                "uid" => o.uid = Some(number()?),
                "gid" => o.gid = Some(number()?),
                "mtime" => {
                    // Seconds, maybe with a fraction: keep the whole seconds.
                    let text = std::str::from_utf8(value).map_err(|_| "bad pax mtime")?;
                    let whole = text.split('.').next().unwrap_or("");
                    o.mtime = Some(whole.parse().map_err(|_| format!("bad pax mtime {text:?}"))?);
                }
                "linkpath" => return Err("link entries are not restored".into()),
                k if k.starts_with("GNU.sparse") => return Err("sparse files are not restored".into()),
                // atime, ctime, uname, gname, comments, vendor extensions (SCHILY.*, LIBARCHIVE.*): not kept.
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// What the reader wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An entry; for a file, its `size` bytes and then [`padding`] follow.
    /// An empty path is the archive's root (`./`), which restores nothing.
    Entry(Entry),
    /// Metadata of `len` bytes (pax records or a long name) to pass to
    /// [`Reader::metadata`], padded to a whole block.
    Metadata(u64),
    /// The first zero block of the end-of-archive marker: read on.
    Zero,
    /// The end-of-archive marker (two zero blocks).
    End,
}

/// Reads headers one block at a time, carrying pax and long-name metadata
/// to the entry they describe.
#[derive(Debug, Default)]
pub struct Reader {
    offset: u64,
    pending: Overrides,
    pending_kind: Option<u8>,
    /// The type of the metadata block announced last, until [`Reader::metadata`] takes it.
    announced: Option<u8>,
    seen_meta: bool,
    zero_blocks: u8,
}

/// The largest metadata block we read (pax records, long names).
pub const MAX_METADATA: u64 = 64 << 10;

impl Reader {
    /// A reader at the start of an archive.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, TarError> {
        Err(TarError { offset: self.offset, message: message.into() })
    }

    /// Advances the offset past data the caller consumed (file contents and padding).
    pub fn skip(&mut self, bytes: u64) {
        self.offset += bytes;
    }

    /// The offset of the next block.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads one header block.
    pub fn header(&mut self, block: &[u8; BLOCK]) -> Result<Step, TarError> {
        if block.iter().all(|&b| b == 0) {
            self.zero_blocks += 1;
            self.offset += BLOCK as u64;
            if self.seen_meta {
                return self.err("archive ends after a pax or long-name header");
            }
            return if self.zero_blocks == 2 { Ok(Step::End) } else { Ok(Step::Zero) };
        }
        if self.zero_blocks > 0 {
            return self.err("a header after an end-of-archive block");
        }
        let stored = parse_number(&block[148..156]);
        let unsigned = checksum(block);
        #[allow(clippy::cast_possible_wrap)] // old tars summed signed bytes
        let signed: i64 =
            block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b as i8) }).sum();
        if stored != Some(unsigned) && stored.map(|s| s as i64) != Some(signed) {
            return self.err("header checksum mismatch");
        }
        let magic = &block[257..265];
        if magic != b"ustar\x0000" && magic != b"ustar  \0" {
            return self.err("not a ustar header (pre-POSIX tar is not read)");
        }
        let typeflag = block[156];
        let here = self.offset;
        let number = |range: std::ops::Range<usize>, what: &str| {
            parse_number(&block[range]).ok_or_else(|| TarError { offset: here, message: format!("bad {what} field") })
        };
        let size = number(124..136, "size")?;
        self.offset += BLOCK as u64;
        match typeflag {
            b'x' | b'g' | b'L' => {
                if size > MAX_METADATA {
                    return Err(TarError { offset: here, message: format!("metadata block of {size} bytes") });
                }
                if typeflag != b'g' {
                    if self.pending_kind.is_some_and(|k| k == typeflag) {
                        return Err(TarError {
                            offset: here,
                            message: "two metadata headers of one kind in a row".into(),
                        });
                    }
                    self.pending_kind = Some(typeflag);
                    self.seen_meta = true;
                }
                self.announced = Some(typeflag);
                Ok(Step::Metadata(size))
            }
            b'0' | 0 | b'5' => {
                let mut o = std::mem::take(&mut self.pending);
                self.pending_kind = None;
                self.seen_meta = false;
                let raw_path = match o.path.take() {
                    Some(p) => p,
                    None => {
                        let name = field_str(&block[0..100]);
                        let prefix = if magic == b"ustar\x0000" { field_str(&block[345..500]) } else { &[][..] };
                        if prefix.is_empty() { name.to_vec() } else { [prefix, b"/", name].concat() }
                    }
                };
                let path = match normalise(&raw_path) {
                    Ok(Some(p)) => p,
                    Ok(None) if typeflag == b'5' => String::new(),
                    Ok(None) => return Err(TarError { offset: here, message: "a file without a name".into() }),
                    Err(e) => return Err(TarError { offset: here, message: e }),
                };
                let mode = u32::try_from(number(100..108, "mode")? & 0o7777).unwrap_or(0);
                let uid = o.uid.map_or_else(|| number(108..116, "uid"), Ok)?;
                let gid = o.gid.map_or_else(|| number(116..124, "gid"), Ok)?;
                let mtime = match o.mtime {
                    Some(t) => t,
                    None => i64::try_from(number(136..148, "mtime")?).unwrap_or(i64::MAX),
                };
                let size = o.size.unwrap_or(size);
                let kind = if typeflag == b'5' {
                    if size != 0 {
                        return Err(TarError { offset: here, message: format!("directory {path:?} with data") });
                    }
                    Kind::Dir
                } else {
                    Kind::File(size)
                };
                Ok(Step::Entry(Entry { path, kind, mode, uid, gid, mtime }))
            }
            other => {
                let what = match other {
                    b'1' => "a hard link",
                    b'2' => "a symbolic link",
                    b'3' | b'4' => "a device",
                    b'6' => "a FIFO",
                    b'K' => "a GNU long link name",
                    b'S' => "a sparse file",
                    _ => "an entry of an unknown type",
                };
                let name = String::from_utf8_lossy(field_str(&block[0..100])).into_owned();
                Err(TarError { offset: here, message: format!("{name:?} is {what} (type {:?})", char::from(other)) })
            }
        }
    }

    /// Takes the metadata announced by [`Step::Metadata`] (without padding).
    pub fn metadata(&mut self, data: &[u8]) -> Result<(), TarError> {
        let offset = self.offset;
        let result = match self.announced.take() {
            Some(b'x') => parse_pax(data, &mut self.pending, false),
            Some(b'L') => {
                self.pending.path = Some(field_str(data).to_vec());
                Ok(())
            }
            // A global header: its records change nothing we keep.
            _ => parse_pax(data, &mut Overrides::default(), true),
        };
        self.offset += data.len() as u64 + padding(data.len() as u64) as u64;
        result.map_err(|message| TarError { offset, message })
    }
}

#[cfg(test)]
mod tests;
