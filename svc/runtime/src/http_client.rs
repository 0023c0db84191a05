//! A small blocking HTTP/1.1 client over TCP for the host side: one request
//! with basic auth, the response head, and the body as a stream (length,
//! chunked or until close) so a capture or a backup never has to fit in memory.
//!
//! The host side of captured (`mkimage capture`) and backupd (`mkimage
//! backup`/`restore`) use it; `unix_http` is the Unix-socket client, which
//! reads whole answers.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The response's status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// A header's value.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → (host for the `Host` header, socket address text).
#[must_use]
pub fn authority(addr: &str, default_port: u16) -> (String, String) {
    let has_port = match addr.rfind(']') {
        Some(close) => addr[close..].contains(':'),
        None => addr.matches(':').count() == 1,
    };
    if has_port {
        (addr.to_owned(), addr.to_owned())
    } else if addr.contains(':') && !addr.starts_with('[') {
        // A bare IPv6 address.
        (format!("[{addr}]:{default_port}"), format!("[{addr}]:{default_port}"))
    } else {
        (format!("{addr}:{default_port}"), format!("{addr}:{default_port}"))
    }
}

/// An open request: the answer's head and a reader of its body.
pub struct Exchange {
    /// Status and headers.
    pub head: Head,
    /// The body.
    pub body: Body,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange").field("head", &self.head).finish_non_exhaustive()
    }
}

/// Sends `method path` to `addr` (default port `default_port`) as user
/// `router` with `password`, with a body of `body_len` bytes read from `body`,
/// and reads the answer's head. `timeout` bounds connecting and each read or write.
pub fn request(
    addr: &str,
    default_port: u16,
    password: &str,
    method: &str,
    path: &str,
    body: Option<(&mut dyn Read, u64)>,
    timeout: Duration,
) -> io::Result<Exchange> {
    let (host, target) = authority(addr, default_port);
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{target}: no address"));
    let mut stream = None;
    for sa in target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = io::Error::new(e.kind(), format!("{sa}: {e}")),
        }
    }
    let stream = stream.ok_or(last)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let auth = crate::base64::encode(format!("{}:{password}", crate::http::AUTH_USER).as_bytes());
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\nUser-Agent: router7-rs\r\n"
    );
    if let Some((_, len)) = &body {
        // Expect: 100-continue lets the server refuse (401, 413) before the body is sent.
        head.push_str(&format!(
            "Content-Length: {len}\r\nContent-Type: application/octet-stream\r\nExpect: 100-continue\r\n"
        ));
    }
    head.push_str("\r\n");
    let mut reader = BufReader::with_capacity(64 << 10, stream.try_clone()?);
    let mut writer = io::BufWriter::with_capacity(64 << 10, &stream);
    writer.write_all(head.as_bytes())?;
    writer.flush()?;
    if let Some((body, len)) = body {
        match read_interim(&mut reader)? {
            Some(final_head) => {
                // Refused before the body: the answer is final.
                let body = Body::new(reader, &final_head, method == "HEAD");
                return Ok(Exchange { head: final_head, body });
            }
            None => {
                let sent = io::copy(&mut body.take(len), &mut writer).and_then(|n| writer.flush().map(|()| n));
                match sent {
                    Ok(n) if n == len => {}
                    Ok(n) => {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("body: {n} of {len} bytes")));
                    }
                    // The server may have answered and closed (e.g. 413 part way): read that answer.
                    Err(e) => {
                        return match read_head(&mut reader) {
                            Ok(h) if h.status >= 400 => {
                                let body = Body::new(reader, &h, false);
                                Ok(Exchange { head: h, body })
                            }
                            _ => Err(e),
                        };
                    }
                }
            }
        }
    }
    drop(writer);
    let head = read_head(&mut reader)?;
    let body = Body::new(reader, &head, method == "HEAD");
    Ok(Exchange { head, body })
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    // A header line longer than 16 KiB is not from our services.
    let n = r.by_ref().take(16 << 10).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the answer"));
    }
    if !line.ends_with(b"\n") {
        return Err(bad("header line too long"));
    }
    let text = String::from_utf8(line).map_err(|_| bad("header is not UTF-8"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// After `Expect: 100-continue`: `None` on `100 Continue` (send the body),
/// the final head when the server answered at once.
fn read_interim(r: &mut BufReader<TcpStream>) -> io::Result<Option<Head>> {
    let status_line = read_line(r)?;
    let status: Option<u16> = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
    if status_line.starts_with("HTTP/1.") && status == Some(100) {
        while !read_line(r)?.is_empty() {}
        return Ok(None);
    }
    // Not a 100: the final answer.
    head_from(&status_line, r).map(Some)
}

/// Reads a status line and headers (skipping `100 Continue` answers).
pub fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    loop {
        let status_line = read_line(r)?;
        let head = head_from(&status_line, r)?;
        if head.status != 100 {
            return Ok(head);
        }
    }
}

fn head_from(status_line: &str, r: &mut impl BufRead) -> io::Result<Head> {
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP answer: {status_line:?}")));
    }
    let status: u16 =
        parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        if headers.len() >= 100 {
            return Err(bad("too many headers"));
        }
        let (k, v) = line.split_once(':').ok_or_else(|| bad(format!("bad header {line:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    Ok(Head { status, headers })
}

enum Framing {
    Length(u64),
    /// Bytes left in the current chunk; `None` before a chunk's size line.
    Chunked(Option<u64>),
    Close,
    Done,
}

/// A response body, de-framed.
pub struct Body {
    reader: BufReader<TcpStream>,
    framing: Framing,
}

impl Body {
    fn new(reader: BufReader<TcpStream>, head: &Head, no_body: bool) -> Self {
        let chunked = head.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let framing = if no_body || head.status == 204 || head.status == 304 {
            Framing::Done
        } else if chunked {
            Framing::Chunked(None)
        } else if let Some(len) = head.header("content-length").and_then(|v| v.parse().ok()) {
            Framing::Length(len)
        } else {
            Framing::Close
        };
        Self { reader, framing }
    }

    /// Reads the whole body as text, at most `max` bytes (for error answers and JSON).
    pub fn text(&mut self, max: u64) -> io::Result<String> {
        let mut buf = Vec::new();
        self.take(max).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Close => return self.reader.read(buf),
                Framing::Length(0) => {
                    self.framing = Framing::Done;
                    return Ok(0);
                }
                Framing::Length(left) => {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.reader.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("body cut short by {left} bytes"),
                        ));
                    }
                    self.framing = Framing::Length(left - n as u64);
                    return Ok(n);
                }
                Framing::Chunked(None) => {
                    let line = read_line(&mut self.reader)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                    if size == 0 {
                        // Trailers, then the empty line.
                        while !read_line(&mut self.reader)?.is_empty() {}
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked(Some(size));
                }
                Framing::Chunked(Some(0)) => {
                    if !read_line(&mut self.reader)?.is_empty() {
                        return Err(bad("chunk not followed by CRLF"));
                    }
                    self.framing = Framing::Chunked(None);
                }
                Framing::Chunked(Some(left)) => {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = self.reader.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body cut short"));
                    }
                    self.framing = Framing::Chunked(Some(left - n as u64));
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn authority_adds_the_default_port() {
        assert_eq!(authority("router7", 5022).1, "router7:5022");
        assert_eq!(authority("10.0.0.1:8080", 5022).1, "10.0.0.1:8080");
        assert_eq!(authority("[::1]:9", 5022).1, "[::1]:9");
        assert_eq!(authority("[::1]", 5022).1, "[::1]:5022");
        assert_eq!(authority("fd00::1", 5022).1, "[fd00::1]:5022");
    }

    /// Serves one canned answer and returns what the client sent.
    fn serve_once(answer: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer).unwrap();
            got
        });
        (addr, t)
    }

    #[test]
    fn reads_chunked_bodies_and_sends_basic_auth() {
        let (addr, t) = serve_once(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n",
        );
        let mut ex = request(&addr, 1, "pw", "GET", "/x", None, Duration::from_secs(5)).unwrap();
        assert_eq!(ex.head.status, 200);
        assert_eq!(ex.body.text(100).unwrap(), "abcde");
        let sent = String::from_utf8(t.join().unwrap()).unwrap();
        assert!(sent.starts_with("GET /x HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains(&format!("Authorization: Basic {}\r\n", crate::base64::encode(b"router:pw"))));
    }

    #[test]
    fn a_body_cut_short_is_an_error() {
        let (addr, _t) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        let mut ex = request(&addr, 1, "pw", "GET", "/", None, Duration::from_secs(5)).unwrap();
        assert_eq!(ex.body.text(100).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let (addr, _t) = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
        let mut ex = request(&addr, 1, "pw", "GET", "/", None, Duration::from_secs(5)).unwrap();
        assert!(ex.body.text(100).is_err());
    }

    #[test]
    fn a_close_delimited_body_ends_at_close() {
        let (addr, _t) = serve_once(b"HTTP/1.0 200 OK\r\n\r\nall of it");
        let mut ex = request(&addr, 1, "pw", "GET", "/", None, Duration::from_secs(5)).unwrap();
        assert_eq!(ex.body.text(100).unwrap(), "all of it");
    }
}
