//! DNS over TCP, both ways (RFC 1035 §4.2.2 framing: a two-byte length before
//! each message; RFC 7766):
//!
//! - [`ClientConn`]: a client connected to us. Queries may be pipelined and
//!   are answered as their answers are ready, possibly out of order (RFC 7766
//!   §6.2.1.1). At most [`MAX_IN_FLIGHT`] queries of one connection wait for
//!   upstreams; reading pauses until answers go out. A connection with nothing
//!   in flight and nothing to write is closed after [`IDLE_TIMEOUT`] (RFC 7766
//!   §6.2.3); one whose client does not read its answers is closed once
//!   [`MAX_WRITE_BUFFER`] bytes pile up.
//! - [`UpstreamConn`]: one query to an upstream after a truncated UDP reply:
//!   connect, send, read one reply.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;

/// Queries of one connection waiting for upstreams at once.
pub const MAX_IN_FLIGHT: u32 = 16;
/// Close a connection idle this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Close a connection whose unread answers exceed this.
pub const MAX_WRITE_BUFFER: usize = 256 * 1024;
/// Largest message (the length prefix is 16 bits).
const MAX_MESSAGE: usize = u16::MAX as usize;
/// Bytes read per call.
const CHUNK: usize = 4096;

/// What to do with a connection after I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep it.
    Keep,
    /// Keep it, and come back: data is left to process.
    Again,
    /// Close it.
    Close,
}

/// Reads until `WouldBlock` (or `limit` bytes are buffered); returns whether the peer closed.
fn read_into(stream: &mut TcpStream, buf: &mut Vec<u8>, limit: usize) -> io::Result<(bool, bool)> {
    let mut chunk = [0u8; CHUNK];
    loop {
        if buf.len() >= limit {
            return Ok((false, true));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok((true, false)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((false, false)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes what it can of `buf[*pos..]`.
fn write_from(stream: &mut TcpStream, buf: &mut Vec<u8>, pos: &mut usize) -> io::Result<()> {
    while *pos < buf.len() {
        match stream.write(&buf[*pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if *pos == buf.len() {
        buf.clear();
        *pos = 0;
    } else if *pos > 64 * 1024 {
        buf.drain(..*pos);
        *pos = 0;
    }
    Ok(())
}

/// A client's TCP connection.
#[derive(Debug)]
pub struct ClientConn {
    /// The stream.
    pub stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    /// Queries waiting for upstreams.
    pub in_flight: u32,
    /// Last time anything happened.
    pub last_active: Instant,
    eof: bool,
}

impl ClientConn {
    /// A new connection.
    #[must_use]
    pub fn new(stream: TcpStream, now: Instant) -> Self {
        Self { stream, rbuf: Vec::new(), wbuf: Vec::new(), wpos: 0, in_flight: 0, last_active: now, eof: false }
    }

    /// Whether it has nothing in flight and nothing to write.
    #[must_use]
    pub fn idle(&self) -> bool {
        self.in_flight == 0 && self.wbuf.is_empty()
    }

    /// Queues an answer (framed) and writes what it can.
    pub fn send(&mut self, msg: &[u8], now: Instant) -> Next {
        let Ok(len) = u16::try_from(msg.len()) else { return Next::Keep };
        self.wbuf.extend_from_slice(&len.to_be_bytes());
        self.wbuf.extend_from_slice(msg);
        self.last_active = now;
        self.flush()
    }

    /// Writes what it can; decides whether the connection stays.
    pub fn flush(&mut self) -> Next {
        if write_from(&mut self.stream, &mut self.wbuf, &mut self.wpos).is_err() {
            return Next::Close;
        }
        if self.wbuf.len() - self.wpos > MAX_WRITE_BUFFER {
            return Next::Close;
        }
        if self.eof && self.idle() && self.rbuf.len() < 2 {
            return Next::Close;
        }
        Next::Keep
    }

    /// Reads and hands each complete query to `on_query` (which returns the
    /// answer to write, if there is one now, and whether it is now in flight),
    /// at most `budget` of them.
    pub fn on_readable(
        &mut self,
        now: Instant,
        budget: usize,
        mut on_query: impl FnMut(&[u8], &mut Vec<u8>) -> QueryResult,
        out: &mut Vec<u8>,
    ) -> Next {
        let mut again = false;
        if !self.eof {
            match read_into(&mut self.stream, &mut self.rbuf, 2 + MAX_MESSAGE) {
                Ok((eof, full)) => {
                    self.eof |= eof;
                    again |= full;
                }
                Err(_) => return Next::Close,
            }
        }
        let mut pos = 0;
        let mut handled = 0;
        while self.rbuf.len() - pos >= 2 {
            if self.in_flight >= MAX_IN_FLIGHT || handled >= budget {
                again = self.in_flight < MAX_IN_FLIGHT;
                break;
            }
            let len = usize::from(u16::from_be_bytes([self.rbuf[pos], self.rbuf[pos + 1]]));
            if len == 0 {
                return Next::Close;
            }
            if self.rbuf.len() - pos < 2 + len {
                break;
            }
            self.last_active = now;
            handled += 1;
            match on_query(&self.rbuf[pos + 2..pos + 2 + len], out) {
                QueryResult::Answer => {
                    if let Ok(l) = u16::try_from(out.len()) {
                        self.wbuf.extend_from_slice(&l.to_be_bytes());
                        self.wbuf.extend_from_slice(out);
                    }
                }
                QueryResult::InFlight => self.in_flight += 1,
                QueryResult::Nothing => {}
            }
            pos += 2 + len;
        }
        self.rbuf.drain(..pos);
        match self.flush() {
            Next::Close => Next::Close,
            _ if again => Next::Again,
            n => n,
        }
    }
}

/// What became of one query read from a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryResult {
    /// Its answer is in the output buffer.
    Answer,
    /// It waits for an upstream.
    InFlight,
    /// Dropped.
    Nothing,
}

/// One query to an upstream over TCP.
#[derive(Debug)]
pub struct UpstreamConn {
    /// The stream.
    pub stream: TcpStream,
    wbuf: Vec<u8>,
    wpos: usize,
    rbuf: Vec<u8>,
}

/// What an upstream connection produced.
#[derive(Debug, PartialEq, Eq)]
pub enum UpstreamIo {
    /// Nothing yet.
    Waiting,
    /// The reply.
    Reply(Vec<u8>),
    /// It failed or closed before the reply.
    Failed,
}

impl UpstreamConn {
    /// A connection that will send `msg` once connected.
    #[must_use]
    pub fn new(stream: TcpStream, msg: &[u8]) -> Self {
        let mut wbuf = Vec::with_capacity(msg.len() + 2);
        wbuf.extend_from_slice(&u16::try_from(msg.len()).unwrap_or(0).to_be_bytes());
        wbuf.extend_from_slice(msg);
        Self { stream, wbuf, wpos: 0, rbuf: Vec::new() }
    }

    /// Does the I/O the readiness allows.
    pub fn on_ready(&mut self, writable: bool, readable: bool) -> UpstreamIo {
        if writable && !self.wbuf.is_empty() {
            // The first writable event completes the connect, or reports its error.
            if let Ok(Some(_)) | Err(_) = self.stream.take_error() {
                return UpstreamIo::Failed;
            }
            if write_from(&mut self.stream, &mut self.wbuf, &mut self.wpos).is_err() {
                return UpstreamIo::Failed;
            }
        }
        if readable {
            let eof = match read_into(&mut self.stream, &mut self.rbuf, 2 + MAX_MESSAGE) {
                Ok((eof, _)) => eof,
                Err(_) => return UpstreamIo::Failed,
            };
            if self.rbuf.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([self.rbuf[0], self.rbuf[1]]));
                if self.rbuf.len() >= 2 + len {
                    return UpstreamIo::Reply(self.rbuf[2..2 + len].to_vec());
                }
            }
            if eof {
                return UpstreamIo::Failed;
            }
        }
        UpstreamIo::Waiting
    }
}
