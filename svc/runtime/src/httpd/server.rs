//! The server's thread: one mio `Poll` with every listener and connection,
//! and the commands other threads send it (listen, close, stop).
//!
//! Sockets are std's, non-blocking, registered through their file
//! descriptors for both directions at once (edge-triggered): each wake-up
//! drives a connection in its current state until the kernel would block.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::conn::{Conn, Socket};
use super::parse::{self, Framing, Head};
use super::{Handler, Limits, Outcome, Peer, Request, Response};

/// Connections open at once per server; at the limit, the oldest unfinished
/// request is dropped to make room, or the new connection when none is.
pub const MAX_CONNECTIONS: usize = 128;
/// Connections handed to stream threads at once per server; beyond, 503.
pub const MAX_STREAMS: usize = 32;

const WAKE: Token = Token(usize::MAX);
/// Bytes read per `read` call.
const READ_CHUNK: usize = 4096;
/// After a response that closes the connection: how long and how much of what
/// the client still sends is read and dropped, so the close does not reset
/// the connection before the client has read the response.
const DRAIN_TIME: Duration = Duration::from_secs(2);
const DRAIN_BYTES: usize = 1 << 20;

/// A listener of a [`Server`], to close it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

enum Listening {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listening {
    fn fd(&self) -> RawFd {
        match self {
            Self::Tcp(l) => l.as_raw_fd(),
            Self::Unix(l) => l.as_raw_fd(),
        }
    }

    fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            Self::Tcp(l) => l.accept().map(|(s, a)| (Socket::Tcp(s), Peer::Tcp(a))),
            Self::Unix(l) => l.accept().map(|(s, _)| (Socket::Unix(s), Peer::Unix)),
        }
    }
}

enum Command {
    Listen(ListenerId, Listening, Handler, Limits),
    Close(ListenerId),
}

#[derive(Default)]
struct Queue {
    commands: Vec<Command>,
    submitted: u64,
    processed: u64,
    stopping: bool,
    /// The thread has ended (stopped, or a handler panicked in a test).
    gone: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    processed: Condvar,
    waker: Waker,
    streams: Arc<AtomicUsize>,
    next_id: AtomicU64,
    thread: OnceLock<ThreadId>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stops the thread when the last [`Server`] handle goes.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.queue().stopping = true;
        let _ = self.0.waker.wake();
    }
}

/// The HTTP server of a process: one thread serving every listener added to
/// it. Cheap to clone; the thread ends when the last clone is dropped
/// (connections handed to stream threads live on).
#[derive(Clone)]
pub struct Server {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("streams", &self.streams()).finish_non_exhaustive()
    }
}

impl Server {
    /// Starts the server's thread (with nothing to serve yet). Create it after
    /// the event loop, so the thread inherits the blocked signals.
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            processed: Condvar::new(),
            waker,
            streams: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(1),
            thread: OnceLock::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new().name("httpd".into()).spawn(move || {
            struct Gone(Arc<Shared>);
            impl Drop for Gone {
                fn drop(&mut self) {
                    self.0.queue().gone = true;
                    self.0.processed.notify_all();
                }
            }
            let gone = Gone(Arc::clone(&thread_shared));
            let mut engine =
                Engine { poll, shared: thread_shared, listeners: HashMap::new(), conns: HashMap::new(), next_token: 0 };
            if let Err(e) = engine.run() {
                crate::log_error!("httpd: the server stopped: {e}");
            }
            drop(engine);
            drop(gone);
        })?;
        let _ = shared.thread.set(handle.thread().id());
        Ok(Self { owner: Arc::new(Owner(shared)) })
    }

    /// Serves `listener` (a bound, listening TCP socket) with `handler`.
    pub fn listen_tcp(&self, listener: TcpListener, handler: Handler, limits: Limits) -> io::Result<ListenerId> {
        listener.set_nonblocking(true)?;
        self.listen(Listening::Tcp(listener), handler, limits)
    }

    /// Serves `listener` (a bound Unix socket) with `handler`.
    pub fn listen_unix(&self, listener: UnixListener, handler: Handler, limits: Limits) -> io::Result<ListenerId> {
        listener.set_nonblocking(true)?;
        self.listen(Listening::Unix(listener), handler, limits)
    }

    fn listen(&self, listening: Listening, handler: Handler, limits: Limits) -> io::Result<ListenerId> {
        let id = ListenerId(self.owner.0.next_id.fetch_add(1, Ordering::Relaxed));
        self.submit(Command::Listen(id, listening, handler, limits))?;
        Ok(id)
    }

    /// Stops listening (connections already accepted are answered). When this
    /// returns, the socket is closed.
    pub fn close(&self, id: ListenerId) {
        // A server that is gone has closed everything already.
        let _ = self.submit(Command::Close(id));
    }

    /// Connections handed to stream threads now.
    #[must_use]
    pub fn streams(&self) -> usize {
        self.owner.0.streams.load(Ordering::Relaxed)
    }

    /// Queues `command` and waits until the thread has carried it out (not
    /// when called from the server's own thread, i.e. from a handler: it
    /// runs after the handler returns).
    fn submit(&self, command: Command) -> io::Result<()> {
        let shared = &self.owner.0;
        let mut q = shared.queue();
        if q.gone {
            return Err(io::Error::other("the HTTP server thread has ended"));
        }
        q.commands.push(command);
        q.submitted += 1;
        let mine = q.submitted;
        shared.waker.wake()?;
        if shared.thread.get() == Some(&std::thread::current().id()) {
            return Ok(());
        }
        // The thread never blocks for long (handlers may not), so this is short.
        let (q, timeout) = shared
            .processed
            .wait_timeout_while(q, Duration::from_secs(30), |q| q.processed < mine && !q.gone)
            .unwrap_or_else(PoisonError::into_inner);
        if q.processed >= mine {
            Ok(())
        } else if timeout.timed_out() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "the HTTP server thread did not answer"))
        } else {
            Err(io::Error::other("the HTTP server thread has ended"))
        }
    }
}

struct ListenerEntry {
    id: ListenerId,
    socket: Listening,
    config: Arc<(Handler, Limits)>,
}

/// What a connection is doing.
enum State {
    /// Waiting for (the rest of) a request; `head` once its head is parsed.
    Reading { head: Option<(Head, usize, Framing)>, continue_sent: bool },
    /// Writing a response; then `keep_alive` or close.
    Writing { out: Vec<u8>, pos: usize, keep_alive: bool },
    /// Response sent and the write side shut: reading what the client still sends, until it closes.
    Draining { dropped: usize },
}

struct Connection {
    socket: Socket,
    peer: Peer,
    config: Arc<(Handler, Limits)>,
    input: Vec<u8>,
    state: State,
    deadline: Instant,
    /// Since when the connection waits for its current request.
    waiting_since: Instant,
}

/// What to do with a connection after driving it.
enum Next {
    Keep,
    Close,
    /// Hand it to a stream thread.
    Stream(Request, Box<dyn FnOnce(Request, Conn) + Send>, usize),
}

struct Engine {
    poll: Poll,
    shared: Arc<Shared>,
    listeners: HashMap<Token, ListenerEntry>,
    conns: HashMap<Token, Connection>,
    next_token: usize,
}

impl Engine {
    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            let now = crate::clock::now();
            let timeout = self.conns.values().map(|c| c.deadline).min().map(|d| d.saturating_duration_since(now));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in &events {
                match event.token() {
                    WAKE => {
                        if !self.commands() {
                            return Ok(());
                        }
                    }
                    t if self.listeners.contains_key(&t) => self.accept(t),
                    t => self.drive(t),
                }
            }
            self.expire(crate::clock::now());
        }
    }

    /// Carries out queued commands; false when the server is to stop.
    fn commands(&mut self) -> bool {
        let (commands, stopping, upto) = {
            let mut q = self.shared.queue();
            (std::mem::take(&mut q.commands), q.stopping, q.submitted)
        };
        for command in commands {
            match command {
                Command::Listen(id, socket, handler, limits) => {
                    let token = self.token();
                    match self.poll.registry().register(&mut SourceFd(&socket.fd()), token, Interest::READABLE) {
                        Ok(()) => {
                            let config = Arc::new((handler, limits));
                            self.listeners.insert(token, ListenerEntry { id, socket, config });
                        }
                        Err(e) => crate::log_warn!("httpd: cannot watch a listener: {e}"),
                    }
                }
                Command::Close(id) => {
                    self.listeners.retain(|_, l| {
                        if l.id == id {
                            let _ = self.poll.registry().deregister(&mut SourceFd(&l.socket.fd()));
                        }
                        l.id != id
                    });
                }
            }
        }
        let mut q = self.shared.queue();
        q.processed = q.processed.max(upto);
        drop(q);
        self.shared.processed.notify_all();
        !stopping
    }

    fn accept(&mut self, token: Token) {
        loop {
            let Some(listener) = self.listeners.get(&token) else { return };
            let (socket, peer) = match listener.socket.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or memory: the connection waits in the
                    // backlog; the next one wakes us again.
                    crate::log_warn!("httpd: accept failed: {e}");
                    return;
                }
            };
            let config = Arc::clone(&listener.config);
            if self.conns.len() >= MAX_CONNECTIONS && !self.make_room() {
                continue; // dropped: every slot is busy answering
            }
            if socket.set_nonblocking(true).is_err() {
                continue;
            }
            let conn_token = self.token();
            if self
                .poll
                .registry()
                .register(&mut SourceFd(&socket.fd()), conn_token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            let now = crate::clock::now();
            let conn = Connection {
                socket,
                peer,
                input: Vec::new(),
                state: State::Reading { head: None, continue_sent: false },
                deadline: now + config.1.request_timeout,
                waiting_since: now,
                config,
            };
            self.conns.insert(conn_token, conn);
            self.drive(conn_token);
        }
    }

    /// Closes the connection that has waited longest for its request.
    fn make_room(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Reading { .. } | State::Draining { .. }))
            .min_by_key(|(_, c)| c.waiting_since)
            .map(|(t, _)| *t);
        match oldest {
            Some(t) => {
                self.remove(t);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, token: Token) -> Option<Connection> {
        let conn = self.conns.remove(&token)?;
        let _ = self.poll.registry().deregister(&mut SourceFd(&conn.socket.fd()));
        Some(conn)
    }

    fn drive(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        match conn.drive(&self.shared.streams) {
            Next::Keep => {}
            Next::Close => {
                self.remove(token);
            }
            Next::Stream(request, f, consumed) => {
                if let Some(conn) = self.remove(token) {
                    spawn_stream(conn, request, f, consumed, &self.shared.streams);
                }
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<Token> = self.conns.iter().filter(|(_, c)| c.deadline <= now).map(|(t, _)| *t).collect();
        for token in expired {
            if let Some(mut conn) = self.remove(token)
                && matches!(conn.state, State::Reading { .. })
                && !conn.input.is_empty()
            {
                // Best effort: the client may be too slow to take even this.
                let r = Response::text(408, "request timeout");
                let mut out = r.encode_head(1, Some(r.body.len() as u64), false);
                out.extend_from_slice(&r.body);
                let _ = conn.socket.write(&out);
            }
        }
    }
}

fn spawn_stream(
    conn: Connection,
    request: Request,
    f: Box<dyn FnOnce(Request, Conn) + Send>,
    consumed: usize,
    streams: &Arc<AtomicUsize>,
) {
    let Connection { socket, peer, mut input, .. } = conn;
    input.drain(..consumed);
    let conn = match Conn::new(socket, peer, &request, input) {
        Ok(c) => c,
        Err(e) => {
            crate::log_warn!("httpd: cannot hand over a connection from {peer}: {e}");
            return;
        }
    };
    streams.fetch_add(1, Ordering::AcqRel);
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let counted = Counted(Arc::clone(streams));
    let spawned = std::thread::Builder::new().name("http-stream".into()).spawn(move || {
        let _counted = counted;
        f(request, conn);
    });
    if let Err(e) = spawned {
        crate::log_warn!("httpd: cannot start a stream thread for {peer}: {e}");
    }
}

impl Connection {
    /// Reads, parses, answers and writes until the socket would block.
    fn drive(&mut self, streams: &AtomicUsize) -> Next {
        loop {
            let progressed = match &mut self.state {
                State::Reading { .. } => match self.read_request(streams) {
                    Ok(Some(next)) => return next,
                    // Answered (now writing), or waiting for more.
                    Ok(None) => !matches!(self.state, State::Reading { .. }),
                    Err(()) => return Next::Close,
                },
                State::Writing { out, pos, keep_alive } => {
                    match write_some(&mut self.socket, out, pos) {
                        Ok(true) => {}
                        Ok(false) => return Next::Keep,
                        Err(()) => return Next::Close,
                    }
                    let now = crate::clock::now();
                    if *keep_alive {
                        self.state = State::Reading { head: None, continue_sent: false };
                        self.deadline = now + self.config.1.request_timeout;
                        self.waiting_since = now;
                    } else {
                        let _ = self.socket.shutdown(Shutdown::Write);
                        self.state = State::Draining { dropped: 0 };
                        self.deadline = now + DRAIN_TIME;
                    }
                    true
                }
                State::Draining { dropped } => {
                    let mut buf = [0u8; READ_CHUNK];
                    loop {
                        match self.socket.read(&mut buf) {
                            Ok(0) => return Next::Close,
                            Ok(n) => {
                                *dropped += n;
                                if *dropped > DRAIN_BYTES {
                                    return Next::Close;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                            Err(_) => return Next::Close,
                        }
                    }
                }
            };
            if !progressed {
                return Next::Keep;
            }
        }
    }

    /// In `Reading`: reads what is there and acts on a complete request.
    /// `Ok(None)`: wait for more (or the state changed to Writing: go on).
    fn read_request(&mut self, streams: &AtomicUsize) -> Result<Option<Next>, ()> {
        let limits = self.config.1;
        let cap = limits.max_head + limits.max_body;
        let mut eof = false;
        while self.input.len() < cap {
            let old = self.input.len();
            self.input.resize(old + READ_CHUNK.min(cap - old), 0);
            match self.socket.read(&mut self.input[old..]) {
                Ok(0) => {
                    self.input.truncate(old);
                    eof = true;
                    break;
                }
                Ok(n) => self.input.truncate(old + n),
                Err(e) => {
                    self.input.truncate(old);
                    match e.kind() {
                        io::ErrorKind::Interrupted => {}
                        io::ErrorKind::WouldBlock => break,
                        _ => return Err(()),
                    }
                }
            }
        }
        let State::Reading { head, continue_sent } = &mut self.state else { return Ok(None) };
        if head.is_none() {
            match parse::parse_head(&self.input, limits.max_head) {
                Ok(None) => return if eof { Err(()) } else { Ok(None) },
                Ok(Some((h, n))) => match parse::framing(&h) {
                    Ok(framing) => *head = Some((h, n, framing)),
                    Err(e) => return Ok(self.refuse(e)),
                },
                Err(e) => return Ok(self.refuse(e)),
            }
        }
        let Some((parsed, head_len, framing)) = head.as_ref() else { return Ok(None) };
        let (head_len, framing) = (*head_len, *framing);
        let expects_continue = parsed.minor == 1
            && parsed
                .headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"));
        let (body_end, body_read) = match framing {
            Framing::None => (head_len, true),
            Framing::Length(n) if n <= limits.max_body as u64 => {
                let end = head_len + n as usize;
                if self.input.len() < end {
                    if eof {
                        return Err(());
                    }
                    if expects_continue && !*continue_sent {
                        *continue_sent = true;
                        // A fresh connection's send buffer takes 25 bytes; if it
                        // does not, the client is gone or hostile.
                        match self.socket.write(b"HTTP/1.1 100 Continue\r\n\r\n") {
                            Ok(25) => {}
                            _ => return Err(()),
                        }
                    }
                    return Ok(None);
                }
                (end, true)
            }
            // Larger or chunked: left on the connection for a stream handler.
            _ => (head_len, false),
        };
        let Some((h, _, _)) = head.take() else { return Ok(None) };
        let body = if body_read { self.input[head_len..body_end].to_vec() } else { Vec::new() };
        let request = Request::new(h, framing, body, body_read, self.peer);
        let outcome = (self.config.0)(&request);
        match outcome {
            Outcome::Respond(response) => {
                let keep_alive = request.keep_alive() && body_read && !eof;
                self.input.drain(..body_end);
                self.respond(&request, &response, keep_alive);
                Ok(None)
            }
            Outcome::Stream(f) => {
                if streams.load(Ordering::Acquire) >= MAX_STREAMS {
                    self.input.drain(..body_end);
                    self.respond(&request, &Response::text(503, "too many streams at once"), false);
                    return Ok(None);
                }
                Ok(Some(Next::Stream(request, f, body_end)))
            }
        }
    }

    /// Answers an unparseable request and closes.
    fn refuse(&mut self, e: parse::HeadError) -> Option<Next> {
        let response = Response::text(e.status(), e.reason());
        let mut out = response.encode_head(1, Some(response.body.len() as u64), false);
        out.extend_from_slice(&response.body);
        self.input.clear();
        self.state = State::Writing { out, pos: 0, keep_alive: false };
        self.deadline = crate::clock::now() + self.config.1.response_timeout;
        None
    }

    fn respond(&mut self, request: &Request, response: &Response, keep_alive: bool) {
        let mut out = response.encode_head(request.minor_version(), Some(response.body.len() as u64), keep_alive);
        if !request.is("HEAD") {
            out.extend_from_slice(&response.body);
        }
        self.state = State::Writing { out, pos: 0, keep_alive };
        self.deadline = crate::clock::now() + self.config.1.response_timeout;
    }
}

/// Writes from `out[*pos..]`; `Ok(true)` when all is written, `Ok(false)` when
/// the socket would block.
fn write_some(socket: &mut Socket, out: &[u8], pos: &mut usize) -> Result<bool, ()> {
    while *pos < out.len() {
        match socket.write(&out[*pos..]) {
            Ok(0) => return Err(()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(_) => return Err(()),
        }
    }
    Ok(true)
}

impl Socket {
    fn fd(&self) -> RawFd {
        match self {
            Self::Tcp(s) => s.as_raw_fd(),
            Self::Unix(s) => s.as_raw_fd(),
        }
    }
}
