//! A connection handed to a stream thread ([`super::Outcome::Stream`]): a
//! blocking socket with timeouts, the request's body to read, and a response
//! to write whole or as a stream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::parse::{Dechunker, Framing};
use super::{Peer, Request, Response};

/// How long a stream thread's reads and writes may block by default; a
/// client that takes nothing for this long is cut off.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// After a response, what a client still sends is read and dropped for at
/// most this long and this much, so the close does not reset the connection
/// before the client has read the response.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: u64 = 256 << 10;

/// A TCP or Unix stream socket.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_nonblocking(on),
            Self::Unix(s) => s.set_nonblocking(on),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown(how),
            Self::Unix(s) => s.shutdown(how),
        }
    }

    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            Self::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
enum BodyLeft {
    Length(u64),
    Chunked(Dechunker),
}

/// A connection of its own, blocking, with [`STREAM_TIMEOUT`] on reads and
/// writes. Dropping it closes the connection.
#[derive(Debug)]
pub struct Conn {
    socket: Socket,
    peer: Peer,
    minor: u8,
    head_only: bool,
    /// Bytes read past the head (the body's start).
    pending: Vec<u8>,
    pending_pos: usize,
    body: BodyLeft,
    continue_due: bool,
}

impl Conn {
    pub(crate) fn new(socket: Socket, peer: Peer, request: &Request, pending: Vec<u8>) -> io::Result<Self> {
        socket.set_nonblocking(false)?;
        socket.set_timeouts(Some(STREAM_TIMEOUT), Some(STREAM_TIMEOUT))?;
        let (pending, body, continue_due) = if request.body_read() {
            // Read already: served from the request's copy.
            (request.body().to_vec(), BodyLeft::Length(request.body().len() as u64), false)
        } else {
            let body = match request.framing() {
                Framing::Chunked => BodyLeft::Chunked(Dechunker::new()),
                Framing::Length(n) => BodyLeft::Length(n),
                Framing::None => BodyLeft::Length(0),
            };
            (pending, body, request.expects_continue())
        };
        Ok(Self {
            socket,
            peer,
            minor: request.minor_version(),
            head_only: request.is("HEAD"),
            pending,
            pending_pos: 0,
            body,
            continue_due,
        })
    }

    /// Who is connected.
    #[must_use]
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// Whether the request was a HEAD (send the head only).
    #[must_use]
    pub fn head_only(&self) -> bool {
        self.head_only
    }

    /// Changes how long a write may block (`None`: forever).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => s.set_write_timeout(timeout),
            Socket::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    /// Changes how long a read may block (`None`: forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => s.set_read_timeout(timeout),
            Socket::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    /// The request's whole body, de-chunked, whether the server read it
    /// before the handler ran ([`Request::body_read`]) or it is still on the
    /// connection. `Expect: 100-continue` is answered on the first read.
    pub fn body(&mut self) -> BodyReader<'_> {
        BodyReader { conn: self }
    }

    /// Answers with `response` and closes the connection.
    pub fn respond(mut self, response: &Response) -> io::Result<()> {
        let mut out = response.encode_head(self.minor, Some(response.body.len() as u64), false);
        if !self.head_only {
            out.extend_from_slice(&response.body);
        }
        self.socket.write_all(&out)?;
        self.linger();
        Ok(())
    }

    /// Starts a response whose body follows as a stream: chunked for
    /// HTTP/1.1 (a client can tell the end from a cut connection), until
    /// close for HTTP/1.0. `None` for a HEAD request, after the head.
    pub fn stream(mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<Option<StreamWriter>> {
        let mut response = Response::new(status);
        for (k, v) in headers {
            response = response.with_header(k, v);
        }
        self.socket.write_all(&response.encode_head(self.minor, None, false))?;
        if self.head_only {
            self.linger();
            return Ok(None);
        }
        Ok(Some(StreamWriter { socket: self.socket, chunked: self.minor >= 1, sent: 0 }))
    }

    /// Reads and drops what the client still sends, briefly, then closes
    /// (see [`LINGER_TIME`]).
    fn linger(&mut self) {
        let _ = self.socket.shutdown(Shutdown::Write);
        if self.socket.set_timeouts(Some(LINGER_TIME), None).is_ok() {
            let _ = io::copy(&mut (&mut self.socket).take(LINGER_BYTES), &mut io::sink());
        }
    }

    fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending_pos < self.pending.len() {
            let n = buf.len().min(self.pending.len() - self.pending_pos);
            buf[..n].copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
            self.pending_pos += n;
            return Ok(n);
        }
        self.socket.read(buf)
    }
}

/// The request body of a [`Conn`].
#[derive(Debug)]
pub struct BodyReader<'a> {
    conn: &'a mut Conn,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let conn = &mut *self.conn;
        if conn.continue_due {
            conn.continue_due = false;
            conn.socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut conn.body {
            BodyLeft::Length(0) => Ok(0),
            BodyLeft::Length(left) => {
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = conn.read_raw(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed before the whole body",
                    ));
                }
                if let BodyLeft::Length(left) = &mut conn.body {
                    *left -= n as u64;
                }
                Ok(n)
            }
            BodyLeft::Chunked(d) if d.is_done() => Ok(0),
            BodyLeft::Chunked(_) => loop {
                if conn.pending_pos == conn.pending.len() {
                    conn.pending.resize(16 << 10, 0);
                    conn.pending_pos = 0;
                    let n = conn.socket.read(&mut conn.pending)?;
                    conn.pending.truncate(n);
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the client closed inside a chunked body",
                        ));
                    }
                }
                let BodyLeft::Chunked(d) = &mut conn.body else { return Ok(0) };
                if d.is_done() {
                    return Ok(0);
                }
                let (used, made) = d
                    .decode(&conn.pending[conn.pending_pos..], buf)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                conn.pending_pos += used;
                if made > 0 || d.is_done() {
                    return Ok(made);
                }
            },
        }
    }
}

/// The body of a streamed response: every `write` is sent at once (one chunk
/// for HTTP/1.1). [`StreamWriter::finish`] ends it properly; dropping it
/// without cuts the connection, which the client sees as incomplete.
#[derive(Debug)]
pub struct StreamWriter {
    socket: Socket,
    chunked: bool,
    sent: u64,
}

impl StreamWriter {
    /// Body bytes sent so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Ends the body (the last chunk) and closes.
    pub fn finish(mut self) -> io::Result<()> {
        if self.chunked {
            self.socket.write_all(b"0\r\n\r\n")?;
        }
        let _ = self.socket.shutdown(Shutdown::Write);
        Ok(())
    }
}

impl Write for StreamWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.chunked {
            let mut frame = Vec::with_capacity(data.len() + 12);
            frame.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            frame.extend_from_slice(data);
            frame.extend_from_slice(b"\r\n");
            self.socket.write_all(&frame)?;
        } else {
            self.socket.write_all(data)?;
        }
        self.sent += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
