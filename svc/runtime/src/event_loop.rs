//! The one event loop every service runs: mio readiness for its sockets, a
//! [`TimerQueue`], the core's `poll_at` deadline, signals through a `signalfd`,
//! and a [`LoopWaker`] for helper threads (HTTP listeners, the control API).
//!
//! Rules the loop keeps (from mio's `Poll` contract): `EINTR` means poll again;
//! mio is edge-triggered, so a handler drains a readable source until
//! `WouldBlock` or, when it stops early to bound its work, calls
//! [`Context::ready_again`]: mio would not report that source again until new
//! data arrives, so the loop itself hands it back to [`Handler::on_ready`] on
//! the next turn, after timers and signals had their chance.
//!
//! [`EventLoop::new`] blocks the loop's signals for the calling thread; create
//! the loop before spawning any thread so every thread inherits the mask and
//! signals are only ever delivered through the `signalfd`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::control::{Command, Control};
use crate::sys::{self, SignalInfo};
use crate::timer::{TimerId, TimerQueue};

/// Tokens at and above this value are the loop's own; services use smaller ones.
pub const FIRST_RESERVED_TOKEN: usize = usize::MAX - 16;
const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
const WAKE_TOKEN: Token = Token(usize::MAX - 2);

/// The signals a service reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// "Your inputs changed, re-read them."
    Usr1,
    /// dhcp4/dhcp6: release and exit 125; init: power off.
    Usr2,
    /// Clean stop.
    Term,
    /// Clean stop (Ctrl-C when run by hand).
    Int,
    /// init: refresh listeners.
    Hup,
    /// init: a child changed state.
    Chld,
}

impl Signal {
    /// The signal number.
    #[must_use]
    pub fn number(self) -> i32 {
        match self {
            Self::Usr1 => libc::SIGUSR1,
            Self::Usr2 => libc::SIGUSR2,
            Self::Term => libc::SIGTERM,
            Self::Int => libc::SIGINT,
            Self::Hup => libc::SIGHUP,
            Self::Chld => libc::SIGCHLD,
        }
    }

    /// The signal with this number, if it is one of ours.
    #[must_use]
    pub fn from_number(n: i32) -> Option<Self> {
        [Self::Usr1, Self::Usr2, Self::Term, Self::Int, Self::Hup, Self::Chld].into_iter().find(|s| s.number() == n)
    }
}

/// What a readiness event reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    /// Readable (or closed for reading).
    pub readable: bool,
    /// Writable.
    pub writable: bool,
    /// The peer closed or an error is pending.
    pub closed: bool,
}

/// What handlers may do while the loop is dispatching to them.
#[derive(Debug)]
pub struct Context<'a> {
    now: Instant,
    registry: &'a Registry,
    timers: &'a mut TimerQueue,
    stop: &'a mut Option<i32>,
    again: &'a mut Vec<Token>,
}

impl Context<'_> {
    /// The time this loop turn started.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Registers and deregisters sources.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        self.registry
    }

    /// Arms a timer; [`Handler::on_timer`] gets `tag` once `at` has passed.
    pub fn add_timer(&mut self, at: Instant, tag: u64) -> TimerId {
        self.timers.add(at, tag)
    }

    /// Disarms a timer.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// Ends the loop after this turn; [`EventLoop::run`] returns `code`.
    pub fn stop(&mut self, code: i32) {
        self.stop.get_or_insert(code);
    }

    /// Says `token` still has work queued (a bounded drain stopped before
    /// `WouldBlock`): the next turn polls without sleeping and calls
    /// [`Handler::on_ready`] for it again, as readable.
    pub fn ready_again(&mut self, token: Token) {
        if !self.again.contains(&token) {
            self.again.push(token);
        }
    }
}

/// A service's reactions to what the loop sees. Every method has a default, so a
/// handler names only the events it cares about.
pub trait Handler {
    /// The earliest time the core needs [`Handler::on_deadline`] (`poll_at`).
    fn poll_at(&self) -> Option<Instant> {
        None
    }

    /// The `poll_at` deadline has passed.
    fn on_deadline(&mut self, _cx: &mut Context<'_>) {}

    /// A registered source is ready.
    fn on_ready(&mut self, _cx: &mut Context<'_>, _token: Token, _ready: Ready) {}

    /// A timer armed with [`Context::add_timer`] fired.
    fn on_timer(&mut self, _cx: &mut Context<'_>, _tag: u64) {}

    /// A helper thread called [`LoopWaker::wake`].
    fn on_wake(&mut self, _cx: &mut Context<'_>) {}

    /// SIGUSR1 or `POST /v1/commands/reload`: re-read inputs.
    fn on_reload(&mut self, _cx: &mut Context<'_>) {}

    /// `POST /v1/commands/renew`.
    fn on_renew(&mut self, _cx: &mut Context<'_>) {}

    /// SIGUSR2: dhcp4 and dhcp6 release their lease and exit 125.
    fn on_release(&mut self, cx: &mut Context<'_>) {
        cx.stop(0);
    }

    /// SIGTERM, SIGINT or `POST /v1/commands/stop`: clean stop.
    fn on_stop(&mut self, cx: &mut Context<'_>) {
        cx.stop(0);
    }

    /// SIGHUP and SIGCHLD (init).
    fn on_other_signal(&mut self, _cx: &mut Context<'_>, _signal: Signal, _info: SignalInfo) {}

    /// Any signal; the default maps them to the methods above.
    fn on_signal(&mut self, cx: &mut Context<'_>, signal: Signal, info: SignalInfo) {
        match signal {
            Signal::Usr1 => self.on_reload(cx),
            Signal::Usr2 => self.on_release(cx),
            Signal::Term | Signal::Int => self.on_stop(cx),
            Signal::Hup | Signal::Chld => self.on_other_signal(cx, signal, info),
        }
    }

    /// A control-API command; the default maps them to the methods above.
    fn on_command(&mut self, cx: &mut Context<'_>, command: Command) {
        match command {
            Command::Reload => self.on_reload(cx),
            Command::Renew => self.on_renew(cx),
            Command::Stop => self.on_stop(cx),
        }
    }
}

/// Wakes the loop from another thread.
#[derive(Debug, Clone)]
pub struct LoopWaker(Arc<Waker>);

impl LoopWaker {
    /// Makes the loop call [`Handler::on_wake`] soon.
    pub fn wake(&self) {
        // A failed wake means the loop is gone; nothing is left to tell.
        let _ = self.0.wake();
    }
}

/// The loop: see the module docs.
#[derive(Debug)]
pub struct EventLoop {
    poll: Poll,
    events: Events,
    signal_fd: OwnedFd,
    waker: LoopWaker,
    timers: TimerQueue,
    control: Option<Control>,
    stop: Option<i32>,
    again: Vec<Token>,
    release_at: Option<Instant>,
}

/// How long after the loop is made the executable's pages are handed back
/// ([`crate::pages`]): start-up is over by then.
pub const RELEASE_PAGES_AFTER: Duration = Duration::from_secs(15);

impl EventLoop {
    /// The usual service loop: SIGUSR1, SIGUSR2, SIGTERM, SIGINT and SIGHUP.
    pub fn new() -> io::Result<Self> {
        Self::with_signals(&[Signal::Usr1, Signal::Usr2, Signal::Term, Signal::Int, Signal::Hup])
    }

    /// A loop that receives exactly `signals` (init adds SIGCHLD).
    pub fn with_signals(signals: &[Signal]) -> io::Result<Self> {
        let numbers: Vec<i32> = signals.iter().map(|s| s.number()).collect();
        sys::block_signals(&numbers)?;
        let signal_fd = sys::signalfd(&numbers)?;
        let poll = Poll::new()?;
        poll.registry().register(&mut SourceFd(&signal_fd.as_raw_fd()), SIGNAL_TOKEN, Interest::READABLE)?;
        let waker = LoopWaker(Arc::new(Waker::new(poll.registry(), WAKE_TOKEN)?));
        Ok(Self {
            poll,
            events: Events::with_capacity(256),
            signal_fd,
            waker,
            timers: TimerQueue::new(),
            control: None,
            stop: None,
            again: Vec::new(),
            release_at: Some(crate::clock::now() + RELEASE_PAGES_AFTER),
        })
    }

    /// Registers and deregisters sources.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// A waker for helper threads.
    #[must_use]
    pub fn waker(&self) -> LoopWaker {
        self.waker.clone()
    }

    /// Routes this control API's commands to [`Handler::on_command`].
    pub fn attach_control(&mut self, control: Control) {
        self.control = Some(control);
    }

    /// Arms a timer before the loop runs.
    pub fn add_timer(&mut self, at: Instant, tag: u64) -> TimerId {
        self.timers.add(at, tag)
    }

    /// Runs until a handler calls [`Context::stop`]; returns its exit code.
    pub fn run<H: Handler>(&mut self, handler: &mut H) -> io::Result<i32> {
        let mut ready: Vec<(Token, Ready)> = Vec::with_capacity(256);
        loop {
            if let Some(code) = self.stop {
                return Ok(code);
            }
            let now = crate::clock::now();
            if self.release_at.is_some_and(|at| at <= now) {
                self.release_at = None;
                match crate::pages::release_executable() {
                    Ok(bytes) => crate::log_debug!("released {} KiB of start-up code", bytes / 1024),
                    Err(e) => crate::log_debug!("cannot release start-up code: {e}"),
                }
            }
            self.fire_due(handler, now);
            if let Some(code) = self.stop {
                return Ok(code);
            }
            let timeout = if !self.again.is_empty() {
                Some(Duration::ZERO)
            } else {
                let next =
                    [self.timers.next_deadline(), handler.poll_at(), self.release_at].into_iter().flatten().min();
                next.map(|at| at.saturating_duration_since(crate::clock::now()))
            };
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            ready.clear();
            ready.extend(self.events.iter().map(|e| {
                let r = Ready {
                    readable: e.is_readable() || e.is_read_closed(),
                    writable: e.is_writable(),
                    closed: e.is_read_closed() || e.is_write_closed() || e.is_error(),
                };
                (e.token(), r)
            }));
            // Sources whose handler stopped before WouldBlock: mio will not
            // report them again until new data arrives, so hand them back.
            for token in std::mem::take(&mut self.again) {
                match ready.iter_mut().find(|(t, _)| *t == token) {
                    Some((_, r)) => r.readable = true,
                    None => ready.push((token, Ready { readable: true, writable: false, closed: false })),
                }
            }
            let now = crate::clock::now();
            for &(token, r) in &ready {
                match token {
                    SIGNAL_TOKEN => self.drain_signals(handler, now)?,
                    WAKE_TOKEN => self.dispatch_wake(handler, now),
                    _ => {
                        let mut cx = self.context(now);
                        handler.on_ready(&mut cx, token, r);
                    }
                }
            }
        }
    }

    fn context(&mut self, now: Instant) -> Context<'_> {
        Context {
            now,
            registry: self.poll.registry(),
            timers: &mut self.timers,
            stop: &mut self.stop,
            again: &mut self.again,
        }
    }

    fn fire_due<H: Handler>(&mut self, handler: &mut H, now: Instant) {
        while let Some((_, tag)) = self.timers.pop_due(now) {
            let mut cx = self.context(now);
            handler.on_timer(&mut cx, tag);
        }
        if handler.poll_at().is_some_and(|at| at <= now) {
            let mut cx = self.context(now);
            handler.on_deadline(&mut cx);
        }
    }

    fn drain_signals<H: Handler>(&mut self, handler: &mut H, now: Instant) -> io::Result<()> {
        while let Some(info) = sys::read_signal(self.signal_fd.as_fd())? {
            if let Some(signal) = Signal::from_number(info.signo) {
                let mut cx = self.context(now);
                handler.on_signal(&mut cx, signal, info);
            }
        }
        Ok(())
    }

    fn dispatch_wake<H: Handler>(&mut self, handler: &mut H, now: Instant) {
        let commands = self.control.as_ref().map(Control::take_commands).unwrap_or_default();
        for command in commands {
            let mut cx = self.context(now);
            handler.on_command(&mut cx, command);
        }
        let mut cx = self.context(now);
        handler.on_wake(&mut cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket as StdUdp;

    /// Runs `f` on a fresh thread so the signals it blocks stay on that thread.
    fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().expect("test thread panicked")
    }

    struct Recorder {
        log: Vec<String>,
        deadline: Option<Instant>,
        socket: mio::net::UdpSocket,
    }

    impl Handler for Recorder {
        fn poll_at(&self) -> Option<Instant> {
            self.deadline
        }
        fn on_deadline(&mut self, _cx: &mut Context<'_>) {
            self.deadline = None;
            self.log.push("deadline".into());
        }
        fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
            self.log.push(format!("timer {tag}"));
            if tag == 2 {
                cx.stop(7);
            }
        }
        fn on_ready(&mut self, _cx: &mut Context<'_>, token: Token, _ready: Ready) {
            let mut buf = [0u8; 64];
            // Edge-triggered: drain until WouldBlock.
            while let Ok(n) = self.socket.recv(&mut buf) {
                self.log.push(format!("packet {} {}", token.0, String::from_utf8_lossy(&buf[..n])));
            }
        }
        fn on_reload(&mut self, _cx: &mut Context<'_>) {
            self.log.push("reload".into());
        }
    }

    #[test]
    fn dispatches_packets_deadlines_timers_and_stops_with_the_code() {
        let log = on_own_thread(|| {
            let mut ev = EventLoop::new().unwrap();
            let mut socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = socket.local_addr().unwrap();
            ev.registry().register(&mut socket, Token(3), Interest::READABLE).unwrap();
            let sender = StdUdp::bind("127.0.0.1:0").unwrap();
            sender.send_to(b"a", addr).unwrap();
            sender.send_to(b"b", addr).unwrap();
            let t0 = crate::clock::now();
            ev.add_timer(t0 + Duration::from_millis(60), 2);
            ev.add_timer(t0 + Duration::from_millis(30), 1);
            let mut h = Recorder { log: vec![], deadline: Some(t0 + Duration::from_millis(10)), socket };
            let code = ev.run(&mut h).unwrap();
            assert_eq!(code, 7);
            h.log
        });
        assert_eq!(log, vec!["packet 3 a", "packet 3 b", "deadline", "timer 1", "timer 2"]);
    }

    #[test]
    fn delivers_sigusr1_through_the_signalfd_and_sigterm_stops() {
        let log = on_own_thread(|| {
            let mut ev = EventLoop::new().unwrap();
            let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let mut h = Recorder { log: vec![], deadline: None, socket };
            // Thread-directed signals: other test threads do not block SIGUSR1,
            // so a process-wide kill could land on one of them and end the run.
            let send = |sig: i32| sys::signal_thread(sig).unwrap();
            send(libc::SIGUSR1);
            send(libc::SIGTERM);
            assert_eq!(ev.run(&mut h).unwrap(), 0);
            h.log
        });
        assert_eq!(log, vec!["reload"]);
    }

    const GAVE_UP: u64 = 99;

    /// Reads one datagram per turn, as a handler bounding its work would.
    struct OnePerTurn {
        socket: mio::net::UdpSocket,
        got: Vec<u8>,
        timer_turns: u32,
    }

    impl Handler for OnePerTurn {
        fn on_ready(&mut self, cx: &mut Context<'_>, token: Token, _ready: Ready) {
            let mut buf = [0u8; 8];
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    self.got.extend_from_slice(&buf[..n]);
                    cx.ready_again(token);
                }
                Err(_) if self.got.len() == 5 => cx.stop(0),
                Err(_) => {}
            }
        }
        fn on_timer(&mut self, cx: &mut Context<'_>, tag: u64) {
            match tag {
                GAVE_UP => cx.stop(1),
                _ => self.timer_turns += 1,
            }
        }
    }

    #[test]
    fn a_bounded_drain_is_handed_back_without_new_events() {
        let (got, timer_turns) = on_own_thread(|| {
            let mut ev = EventLoop::new().unwrap();
            let mut socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = socket.local_addr().unwrap();
            ev.registry().register(&mut socket, Token(5), Interest::READABLE).unwrap();
            let sender = StdUdp::bind("127.0.0.1:0").unwrap();
            for b in [b"1", b"2", b"3", b"4", b"5"] {
                sender.send_to(b, addr).unwrap();
            }
            // Due at once: it must get its turn between the handed-back reads.
            ev.add_timer(crate::clock::now(), 1);
            // One readiness edge for five datagrams: without the hand-back the
            // loop would sleep after the first read until this gives up.
            ev.add_timer(crate::clock::now() + Duration::from_secs(5), GAVE_UP);
            let mut h = OnePerTurn { socket, got: vec![], timer_turns: 0 };
            assert_eq!(ev.run(&mut h).unwrap(), 0, "gave up waiting; got {:?}", h.got);
            (h.got, h.timer_turns)
        });
        assert_eq!(got, b"12345");
        assert_eq!(timer_turns, 1);
    }

    #[test]
    fn a_helper_thread_wakes_the_loop() {
        struct Woken(u32);
        impl Handler for Woken {
            fn on_wake(&mut self, cx: &mut Context<'_>) {
                self.0 += 1;
                cx.stop(0);
            }
        }
        let woken = on_own_thread(|| {
            let mut ev = EventLoop::new().unwrap();
            let waker = ev.waker();
            let helper = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                waker.wake();
            });
            let mut h = Woken(0);
            ev.run(&mut h).unwrap();
            helper.join().unwrap();
            h.0
        });
        assert_eq!(woken, 1);
    }
}
