//! HTTP/1.1 request heads and chunked bodies (RFC 9112), as pure functions
//! over bytes: no socket, no clock, bounded by the caller's limits. The
//! server feeds them what it has read so far; the fuzz target feeds them
//! anything.

/// A parsed request line and header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method, case-sensitive (`GET`, `POST`, …).
    pub method: String,
    /// The request target as sent (`/path?query`, or absolute-form, or `*`).
    pub target: String,
    /// `HTTP/1.<minor>`: 0 or 1.
    pub minor: u8,
    /// Header fields in order, names as sent, values without surrounding whitespace.
    pub headers: Vec<(String, String)>,
}

/// How the request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a request head was refused; each maps to the status the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The head did not end within the limit: 431.
    TooLarge,
    /// Not HTTP/1.0 or HTTP/1.1: 505.
    Version,
    /// A transfer coding other than `chunked`: 501.
    Coding,
    /// Anything else malformed: 400, with what was wrong.
    Malformed(&'static str),
}

impl HeadError {
    /// The status code to answer with.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::TooLarge => 431,
            Self::Version => 505,
            Self::Coding => 501,
            Self::Malformed(_) => 400,
        }
    }

    /// For the response body and logs.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::TooLarge => "request head too large",
            Self::Version => "only HTTP/1.0 and HTTP/1.1 are spoken here",
            Self::Coding => "only the chunked transfer coding is supported",
            Self::Malformed(why) => why,
        }
    }
}

/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// Empty lines tolerated before the request line (RFC 9112 §2.2).
const MAX_LEADING_EMPTY_LINES: usize = 4;

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Where the request line starts and where the head ends in `buf` (the index
/// just past its empty line), if it does within `max_head` bytes. Lines end in
/// CRLF or a bare LF (RFC 9112 §2.2), and a few empty lines before the request
/// line are ignored (§2.2 again).
fn head_bounds(buf: &[u8], max_head: usize) -> Result<Option<(usize, usize)>, HeadError> {
    let window = &buf[..buf.len().min(max_head)];
    let mut start = 0;
    let mut leading = 0;
    loop {
        let rest = &window[start..];
        let skip = if rest.starts_with(b"\r\n") {
            2
        } else if rest.starts_with(b"\n") {
            1
        } else {
            break;
        };
        start += skip;
        leading += 1;
        if leading > MAX_LEADING_EMPTY_LINES {
            return Err(HeadError::Malformed("empty lines instead of a request"));
        }
    }
    // The first line from `start` is not empty, so the first empty line ends the head.
    let mut line_start = start;
    for (off, &b) in window[start..].iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let lf = start + off;
        let line = &window[line_start..lf];
        if line.is_empty() || line == b"\r" {
            return Ok(Some((start, lf + 1)));
        }
        line_start = lf + 1;
    }
    if buf.len() >= max_head { Err(HeadError::TooLarge) } else { Ok(None) }
}

/// Parses the request head at the start of `buf`. `Ok(None)`: not complete
/// yet (read more); `Ok(Some((head, n)))`: the head took `n` bytes.
pub fn parse_head(buf: &[u8], max_head: usize) -> Result<Option<(Head, usize)>, HeadError> {
    let Some((start, end)) = head_bounds(buf, max_head)? else { return Ok(None) };
    let mut lines = buf[start..end].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let (method, target, minor) = parse_request_line(request_line)?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
        headers.push(parse_field(line)?);
    }
    Ok(Some((Head { method, target, minor, headers }, end)))
}

fn parse_request_line(line: &[u8]) -> Result<(String, String, u8), HeadError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("the request line is not METHOD TARGET VERSION"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::Malformed("bad method"));
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(HeadError::Malformed("bad request target"));
    }
    if !(target[0] == b'/' || target == b"*" || target.starts_with(b"http://") || target.starts_with(b"https://")) {
        return Err(HeadError::Malformed("bad request target"));
    }
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.len() == 8
            && v.starts_with(b"HTTP/")
            && v[5].is_ascii_digit()
            && v[6] == b'.'
            && v[7].is_ascii_digit() =>
        {
            return Err(HeadError::Version);
        }
        _ => return Err(HeadError::Malformed("bad HTTP version")),
    };
    // Both are ASCII by the checks above.
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok((text(method), text(target), minor))
}

fn parse_field(line: &[u8]) -> Result<(String, String), HeadError> {
    if line[0] == b' ' || line[0] == b'\t' {
        // RFC 9112 §5.2: obsolete line folding may be rejected.
        return Err(HeadError::Malformed("folded header line"));
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(HeadError::Malformed("header line without a colon"))?;
    let name = &line[..colon];
    // RFC 9112 §5.1: no whitespace between the name and the colon.
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::Malformed("bad header name"));
    }
    let value = line[colon + 1..].trim_ascii();
    // Field values are visible characters, spaces, tabs and obs-text; never CR, LF or NUL.
    if value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(HeadError::Malformed("control character in a header value"));
    }
    Ok((String::from_utf8_lossy(name).into_owned(), String::from_utf8_lossy(value).into_owned()))
}

/// The body's framing from the head (RFC 9112 §6.1–6.3): `Transfer-Encoding`
/// must be exactly `chunked` and never comes with `Content-Length`; several
/// `Content-Length` values must agree.
pub fn framing(head: &Head) -> Result<Framing, HeadError> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("content-length") {
            for item in value.split(',') {
                let item = item.trim();
                if item.is_empty() || item.len() > 19 || !item.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HeadError::Malformed("bad Content-Length"));
                }
                let n: u64 = item.parse().map_err(|_| HeadError::Malformed("bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::Malformed("conflicting Content-Length values"));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if head.minor == 0 {
                return Err(HeadError::Malformed("Transfer-Encoding in an HTTP/1.0 request"));
            }
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if chunked {
                    // Anything after chunked: the body's end cannot be found (§6.3 item 4).
                    return Err(HeadError::Malformed("chunked is not the last transfer coding"));
                }
                if !coding.eq_ignore_ascii_case("chunked") {
                    return Err(HeadError::Coding);
                }
                chunked = true;
            }
            if !chunked {
                return Err(HeadError::Malformed("empty Transfer-Encoding"));
            }
        }
    }
    match (chunked, length) {
        (true, Some(_)) => Err(HeadError::Malformed("both Transfer-Encoding and Content-Length")),
        (true, None) => Ok(Framing::Chunked),
        (false, Some(0) | None) => Ok(Framing::None),
        (false, Some(n)) => Ok(Framing::Length(n)),
    }
}

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad chunked body: {}", self.0)
    }
}

impl std::error::Error for ChunkError {}

/// Longest chunk-size line with its extensions, and longest trailer section.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_TRAILERS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size; `digits` so far, then extensions until LF.
    Size { size: u64, digits: u8, in_ext: bool, line: usize },
    /// Chunk data still to come.
    Data(u64),
    /// The CRLF after the data; `cr` once the CR was seen.
    DataEnd { cr: bool },
    /// Trailer lines after the last chunk; `line` bytes in the current one.
    Trailer { line: usize, total: usize },
    /// The whole body was read.
    Done,
}

/// Decodes a chunked body incrementally (RFC 9112 §7.1): sizes, extensions
/// (ignored), data, trailers (ignored). Bounded: size lines and trailers
/// have limits, sizes cannot overflow.
#[derive(Debug, Clone)]
pub struct Dechunker {
    state: ChunkState,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

impl Dechunker {
    /// At the start of a body.
    #[must_use]
    pub fn new() -> Self {
        Self { state: ChunkState::Size { size: 0, digits: 0, in_ext: false, line: 0 } }
    }

    /// Whether the final chunk and the trailers were read.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from `input` into `out`; returns (bytes of `input` consumed,
    /// bytes written to `out`). Stops when `out` is full, `input` is used up
    /// or the body is done.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), ChunkError> {
        let (mut i, mut o) = (0, 0);
        while i < input.len() {
            match &mut self.state {
                ChunkState::Done => break,
                ChunkState::Data(left) => {
                    if o == out.len() {
                        break;
                    }
                    let n = (input.len() - i).min(out.len() - o).min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out[o..o + n].copy_from_slice(&input[i..i + n]);
                    (i, o) = (i + n, o + n);
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = ChunkState::DataEnd { cr: false };
                    }
                }
                ChunkState::DataEnd { cr } => {
                    match (input[i], *cr) {
                        (b'\r', false) => *cr = true,
                        (b'\n', _) => self.state = ChunkState::Size { size: 0, digits: 0, in_ext: false, line: 0 },
                        _ => return Err(ChunkError("no CRLF after chunk data")),
                    }
                    i += 1;
                }
                ChunkState::Size { size, digits, in_ext, line } => {
                    let b = input[i];
                    i += 1;
                    *line += 1;
                    if *line > MAX_CHUNK_LINE {
                        return Err(ChunkError("chunk size line too long"));
                    }
                    if b == b'\n' {
                        if *digits == 0 {
                            return Err(ChunkError("no chunk size"));
                        }
                        self.state = if *size == 0 {
                            ChunkState::Trailer { line: 0, total: 0 }
                        } else {
                            ChunkState::Data(*size)
                        };
                    } else if *in_ext {
                        // chunk-ext: ignored, but no bare control characters.
                        if b < 0x20 && b != b'\t' && b != b'\r' {
                            return Err(ChunkError("control character in a chunk extension"));
                        }
                    } else if let Some(d) = (b as char).to_digit(16) {
                        if *digits == 16 {
                            return Err(ChunkError("chunk size too large"));
                        }
                        *size = (*size << 4) | u64::from(d);
                        *digits += 1;
                    } else if matches!(b, b';' | b' ' | b'\t' | b'\r') && *digits > 0 {
                        *in_ext = true;
                    } else {
                        return Err(ChunkError("bad chunk size"));
                    }
                }
                ChunkState::Trailer { line, total } => {
                    let b = input[i];
                    i += 1;
                    *total += 1;
                    if *total > MAX_TRAILERS {
                        return Err(ChunkError("trailers too long"));
                    }
                    match b {
                        b'\n' if *line == 0 => self.state = ChunkState::Done,
                        b'\n' => *line = 0,
                        b'\r' if *line == 0 => {}
                        _ => *line += 1,
                    }
                }
            }
        }
        Ok((i, o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
        parse_head(raw, 8192)
    }

    #[test]
    fn parses_a_request_head_with_crlf_or_bare_lf() {
        let raw = b"GET /v1/events?since=3 HTTP/1.1\r\nHost: x\r\nAccept:  application/json \r\n\r\nBODY";
        let (h, n) = head(raw).unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str(), h.minor), ("GET", "/v1/events?since=3", 1));
        assert_eq!(h.headers, [("Host".into(), "x".into()), ("Accept".into(), "application/json".into())]);
        assert_eq!(&raw[n..], b"BODY");
        let (h, n) = head(b"\r\nPOST / HTTP/1.0\nContent-Length: 2\n\nab").unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.minor, n), ("POST", 0, 37));
    }

    #[test]
    fn an_unfinished_head_asks_for_more_and_a_long_one_is_refused() {
        assert_eq!(head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(head(b""), Ok(None));
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 9000]].concat();
        assert_eq!(head(&long), Err(HeadError::TooLarge));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\n\r\n", 10), Err(HeadError::TooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(), 1 << 20), Err(HeadError::TooLarge));
    }

    #[test]
    fn refuses_malformed_heads_with_the_right_status() {
        for (raw, status) in [
            (&b"GET /\r\n\r\n"[..], 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
            (b"GET  / HTTP/1.1\r\n\r\n", 400),
            (b"G(T / HTTP/1.1\r\n\r\n", 400),
            (b"GET nopath HTTP/1.1\r\n\r\n", 400),
            (b"GET /\x01 HTTP/1.1\r\n\r\n", 400),
            (b"GET / http/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nnocolon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
            (b"\r\n\r\n\r\n\r\n\r\n\r\n", 400),
        ] {
            let got = head(raw).map_err(HeadError::status);
            assert_eq!(got.err(), Some(status), "{:?}", String::from_utf8_lossy(raw));
        }
    }

    fn framing_of(headers: &[(&str, &str)], minor: u8) -> Result<Framing, HeadError> {
        let h = Head {
            method: "POST".into(),
            target: "/".into(),
            minor,
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        };
        framing(&h)
    }

    #[test]
    fn body_framing_follows_rfc_9112() {
        assert_eq!(framing_of(&[], 1), Ok(Framing::None));
        assert_eq!(framing_of(&[("Content-Length", "0")], 1), Ok(Framing::None));
        assert_eq!(framing_of(&[("content-length", "12")], 1), Ok(Framing::Length(12)));
        assert_eq!(framing_of(&[("Content-Length", "5, 5"), ("Content-Length", "5")], 1), Ok(Framing::Length(5)));
        assert_eq!(framing_of(&[("Transfer-Encoding", "Chunked")], 1), Ok(Framing::Chunked));
        for bad in [
            vec![("Content-Length", "5"), ("Content-Length", "6")],
            vec![("Content-Length", "-1")],
            vec![("Content-Length", "+5")],
            vec![("Content-Length", "")],
            vec![("Content-Length", "99999999999999999999")],
            vec![("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            vec![("Transfer-Encoding", "chunked, chunked")],
            vec![("Transfer-Encoding", "")],
        ] {
            assert_eq!(framing_of(&bad, 1).map_err(HeadError::status), Err(400), "{bad:?}");
        }
        assert_eq!(framing_of(&[("Transfer-Encoding", "gzip, chunked")], 1), Err(HeadError::Coding));
        assert!(framing_of(&[("Transfer-Encoding", "chunked")], 0).is_err());
    }

    fn dechunk_in_pieces(raw: &[u8], piece: usize, out_cap: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = Dechunker::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut buf = vec![0; out_cap];
        while pos < raw.len() && !d.is_done() {
            let end = (pos + piece).min(raw.len());
            let (used, made) = d.decode(&raw[pos..end], &mut buf)?;
            out.extend_from_slice(&buf[..made]);
            pos += used;
        }
        assert!(d.is_done(), "not done after {pos} bytes");
        Ok((out, pos))
    }

    #[test]
    fn decodes_chunked_bodies_in_any_pieces() {
        let raw = b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, 1000] {
            for cap in [1, 3, 64] {
                let (body, used) = dechunk_in_pieces(raw, piece, cap).unwrap();
                assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
                assert_eq!(&raw[used..], b"NEXT");
            }
        }
        let (body, _) = dechunk_in_pieces(b"0\n\n", 1, 1).unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn refuses_bad_chunked_bodies() {
        for bad in [&b"x\r\n"[..], b"\r\n", b"4\r\nWikiX", b"11111111111111111\r\n", b"4\x01\r\n", b"-4\r\n"] {
            let mut d = Dechunker::new();
            let mut out = [0u8; 64];
            assert!(d.decode(bad, &mut out).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut d = Dechunker::new();
        let long = [b"1;".as_slice(), &[b'a'; 2000]].concat();
        assert!(d.decode(&long, &mut [0u8; 8]).is_err());
        let mut d = Dechunker::new();
        let trailers = [b"0\r\n".as_slice(), &[b'a'; 9000]].concat();
        assert!(d.decode(&trailers, &mut [0u8; 8]).is_err());
    }
}
