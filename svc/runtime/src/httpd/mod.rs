//! A small HTTP/1.1 server: ONE thread per process serves every listener of
//! it — the control socket (`<run>/router/<name>.sock`) and each private TCP
//! address of the service's pages — with mio, instead of an accept thread
//! and a worker pool per listener.
//!
//! - Requests are read without blocking, bounded by [`Limits`]: the head's
//!   size, the body's size, and the time a client may take to send a request
//!   (slow clients are cut off; when every connection slot is taken, the
//!   oldest unfinished request makes room).
//! - A [`Handler`] runs on the server's thread and must not block: it answers
//!   with a [`Response`] (written without blocking; keep-alive is honoured),
//!   or hands the connection over with [`Outcome::Stream`] to a closure that
//!   runs on a short-lived thread of its own, for whatever may block or last:
//!   streams (pcapng, Server-Sent Events, a backup), long polls, big uploads,
//!   waiting on the event loop. Such threads are bounded ([`MAX_STREAMS`]);
//!   beyond that the client gets 503.
//! - Bodies up to [`Limits::max_body`] with a `Content-Length` are read before
//!   the handler runs ([`Request::body`]); larger or chunked bodies stay on the
//!   connection for a stream handler to read ([`Conn::body`]).
//!
//! What it does not do: TLS, HTTP/2, request pipelining beyond reading the
//! next request after a response, compression. `runtime::http` builds the
//! router's conventions on top: listeners on private addresses that follow
//! address changes, basic auth, response helpers.

mod conn;
pub mod parse;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use conn::{BodyReader, Conn, StreamWriter};
pub use server::{ListenerId, MAX_CONNECTIONS, MAX_STREAMS, Server};

use parse::{Framing, Head};

/// Bounds on what one client may send and how long it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request head (request line and header fields): beyond, 431.
    pub max_head: usize,
    /// Longest body read before the handler runs; longer bodies stay on the
    /// connection for a stream handler.
    pub max_body: usize,
    /// From the connection (or the end of the previous response) to a
    /// complete request; then the connection is closed (408 if a request had begun).
    pub request_timeout: Duration,
    /// To write a response.
    pub response_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head: 16 << 10,
            max_body: 64 << 10,
            request_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
        }
    }
}

/// Who sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Over TCP.
    Tcp(SocketAddr),
    /// Over a Unix socket.
    Unix,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a) => a.fmt(f),
            Self::Unix => f.write_str("unix"),
        }
    }
}

/// One request: its head, its body when it was small enough to read first,
/// and who sent it.
#[derive(Debug, Clone)]
pub struct Request {
    head: Head,
    body: Vec<u8>,
    framing: Framing,
    body_read: bool,
    peer: Peer,
}

impl Request {
    /// A request from its parts: for the server, tests and fuzzing.
    #[must_use]
    pub fn new(head: Head, framing: Framing, body: Vec<u8>, body_read: bool, peer: Peer) -> Self {
        Self { head, body, framing, body_read, peer }
    }

    /// Parses a whole request (head and, if complete, body) from `raw`, as
    /// the server would with default limits.
    pub fn parse(raw: &[u8], peer: Peer) -> Result<Self, parse::HeadError> {
        let limits = Limits::default();
        let (head, n) = parse::parse_head(raw, limits.max_head)?.ok_or(parse::HeadError::Malformed("incomplete"))?;
        let framing = parse::framing(&head)?;
        let rest = &raw[n..];
        let (body, read) = match framing {
            Framing::None => (Vec::new(), true),
            Framing::Length(len) if len <= limits.max_body as u64 && rest.len() as u64 >= len => {
                (rest[..len as usize].to_vec(), true)
            }
            _ => (Vec::new(), false),
        };
        Ok(Self::new(head, framing, body, read, peer))
    }

    /// The method (`GET`, `POST`, …).
    #[must_use]
    pub fn method(&self) -> &str {
        &self.head.method
    }

    /// Whether the method is `method`.
    #[must_use]
    pub fn is(&self, method: &str) -> bool {
        self.head.method == method
    }

    /// GET or HEAD (a HEAD is answered like a GET; the server leaves out the body).
    #[must_use]
    pub fn is_get(&self) -> bool {
        self.is("GET") || self.is("HEAD")
    }

    /// The request target as sent (`/path?query`).
    #[must_use]
    pub fn target(&self) -> &str {
        &self.head.target
    }

    /// The path without the query (and without scheme and authority when the
    /// target was in absolute form).
    #[must_use]
    pub fn path(&self) -> &str {
        let t = self.head.target.as_str();
        let t = match t.split_once("://") {
            Some((_, rest)) if !t.starts_with('/') => rest.find('/').map_or("/", |i| &rest[i..]),
            _ => t,
        };
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The query's `key=value` pairs, percent-decoded.
    #[must_use]
    pub fn query(&self) -> Vec<(String, String)> {
        crate::http::split_query(&self.head.target).1
    }

    /// `HTTP/1.<minor>`.
    #[must_use]
    pub fn minor_version(&self) -> u8 {
        self.head.minor
    }

    /// The first header field named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header field, in order.
    #[must_use]
    pub fn headers(&self) -> &[(String, String)] {
        &self.head.headers
    }

    /// Whether the client asked for JSON (`Accept: application/json`).
    #[must_use]
    pub fn wants_json(&self) -> bool {
        self.header("Accept").is_some_and(|a| a.contains("application/json"))
    }

    /// The body, when it was read before the handler ran (see [`Request::body_read`]).
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Whether [`Request::body`] is the whole body. If not (larger than
    /// [`Limits::max_body`], or chunked), it waits on the connection for a
    /// stream handler ([`Conn::body`]); a plain response closes the connection.
    #[must_use]
    pub fn body_read(&self) -> bool {
        self.body_read
    }

    /// The declared body length (`None`: no body, or chunked).
    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        }
    }

    /// How the body is delimited.
    #[must_use]
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Who sent it.
    #[must_use]
    pub fn peer(&self) -> Peer {
        self.peer
    }

    fn keep_alive(&self) -> bool {
        let connection = self.header("Connection").map(str::to_ascii_lowercase);
        let says = |word: &str| connection.as_deref().is_some_and(|c| c.split(',').any(|t| t.trim() == word));
        if self.head.minor == 0 { says("keep-alive") } else { !says("close") }
    }

    fn expects_continue(&self) -> bool {
        self.head.minor == 1 && self.header("Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    }
}

/// A response: status, header fields and a body. Framing headers
/// (`Content-Length`, `Transfer-Encoding`, `Connection`) are the server's:
/// any set here are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// An empty response.
    #[must_use]
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    /// A body of `content_type`.
    #[must_use]
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status).with_header("Content-Type", content_type).body(body)
    }

    /// `text/plain` with a final newline added when missing.
    #[must_use]
    pub fn text(status: u16, text: &str) -> Self {
        let mut body = text.to_owned();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Self::with_body(status, "text/plain; charset=utf-8", body)
    }

    /// Compact JSON and a newline.
    #[must_use]
    pub fn json(status: u16, value: &Value) -> Self {
        let mut body = value.to_string();
        body.push('\n');
        Self::with_body(status, "application/json", body)
    }

    /// Indented JSON and a newline, for pages people read.
    #[must_use]
    pub fn json_pretty(status: u16, value: &Value) -> Self {
        let mut body = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        body.push('\n');
        Self::with_body(status, "application/json", body)
    }

    /// Adds a header field. A name that is not a token, or a value with
    /// control characters (from data), is replaced by an empty
    /// `X-Invalid-Header` rather than letting it split the response.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let name_ok =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let value_ok = value.bytes().all(|b| b >= 0x20 && b != 0x7f || b == b'\t');
        let framing =
            ["content-length", "transfer-encoding", "connection"].iter().any(|f| name.eq_ignore_ascii_case(f));
        if framing {
            return self;
        }
        if name_ok && value_ok {
            self.headers.push((name.to_owned(), value.to_owned()));
        } else {
            self.headers.push(("X-Invalid-Header".to_owned(), String::new()));
        }
        self
    }

    /// Replaces the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header field named `name`.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body.
    #[must_use]
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Status line and header fields; `length` is the Content-Length to
    /// announce (`None`: chunked for HTTP/1.1, until close for HTTP/1.0).
    fn encode_head(&self, minor: u8, length: Option<u64>, keep_alive: bool) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut h = String::with_capacity(160);
        let _ = write!(h, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let _ = write!(h, "Date: {}\r\n", crate::timefmt::http_date(crate::clock::wall_now()));
        for (k, v) in &self.headers {
            let _ = write!(h, "{k}: {v}\r\n");
        }
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        match length {
            _ if bodiless => {}
            Some(n) => {
                let _ = write!(h, "Content-Length: {n}\r\n");
            }
            None if minor >= 1 => h.push_str("Transfer-Encoding: chunked\r\n"),
            None => {}
        }
        match (keep_alive, minor) {
            (true, 0) => h.push_str("Connection: keep-alive\r\n"),
            (true, _) => {}
            (false, _) => h.push_str("Connection: close\r\n"),
        }
        h.push_str("\r\n");
        h.into_bytes()
    }
}

/// The reason phrase of the codes we send.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// What a handler does with a request.
pub enum Outcome {
    /// Answer now (written by the server without blocking).
    Respond(Response),
    /// Hand the connection to this closure, on a thread of its own.
    Stream(Box<dyn FnOnce(Request, Conn) + Send>),
}

impl Outcome {
    /// Hands the connection to `f` on a thread of its own.
    pub fn stream(f: impl FnOnce(Request, Conn) + Send + 'static) -> Self {
        Self::Stream(Box::new(f))
    }
}

impl From<Response> for Outcome {
    fn from(r: Response) -> Self {
        Self::Respond(r)
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Respond(r) => f.debug_tuple("Respond").field(r).finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// What a listener calls for each request, on the server's thread: it must
/// not block (hand blocking work over with [`Outcome::Stream`]).
pub type Handler = Arc<dyn Fn(&Request) -> Outcome + Send + Sync>;

#[cfg(test)]
mod tests;
