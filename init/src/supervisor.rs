//! The supervision core, sans IO: one state machine per service that decides
//! when to start, signal and restart it. The shell spawns, signals and reaps;
//! it reports what happened (`spawned`, `spawn_failed`, `exited`) with the time,
//! carries out the returned [`Action`]s, and calls [`Supervisor::on_deadline`]
//! once [`Supervisor::poll_at`] has passed.
//!
//! The policy, and where it departs from gokrazy (which restarts every second,
//! forever) and procd (fixed delay, then gives up):
//! - A failed run (exit code other than 0 and 125, a signal, or a failed spawn)
//!   is restarted after an exponential backoff: 1 s, 2 s, 4 s … capped at 60 s.
//! - A run that lasted a stable minute resets the backoff and the failure history.
//! - Five failures within ten minutes is a crash loop: shown in status and
//!   announced once (`init.service.crashloop`). A router never gives up on its
//!   services, so it keeps retrying at the backoff; the state clears after a
//!   stable minute or a manual restart.
//! - Exit 0 or 125 ("do not restart me") stops supervision; a manual start runs
//!   it again.
//! - Stop sends SIGTERM to the process group and SIGKILL after `stop_timeout`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The tunable numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The first restart delay.
    pub backoff_initial: Duration,
    /// The longest restart delay.
    pub backoff_max: Duration,
    /// A run this long resets the backoff and clears a crash loop.
    pub stable_after: Duration,
    /// This many failures …
    pub crash_loop_failures: usize,
    /// … within this window are a crash loop.
    pub crash_loop_window: Duration,
    /// SIGTERM, then SIGKILL after this long.
    pub stop_timeout: Duration,
    /// After SIGKILL, give up waiting after this long (a process stuck in the kernel).
    pub kill_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            crash_loop_failures: 5,
            crash_loop_window: Duration::from_secs(600),
            stop_timeout: Duration::from_secs(10),
            kill_timeout: Duration::from_secs(5),
        }
    }
}

impl Policy {
    /// The delay before restart number `failures` (1 = after the first failure).
    #[must_use]
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.backoff_initial.saturating_mul(1 << doublings).min(self.backoff_max)
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

impl Exit {
    /// Exit 0 or 125: the service does not want to be restarted.
    #[must_use]
    pub fn wants_no_restart(self) -> bool {
        matches!(self, Self::Code(0 | runtime::service::EXIT_DO_NOT_RESTART))
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit code {c}"),
            Self::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// The two signals the supervisor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// SIGTERM: please stop.
    Term,
    /// SIGKILL.
    Kill,
}

/// Why a service is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Not started at boot (`"autostart": false`).
    NotStarted,
    /// Stopped by hand.
    Manual,
    /// Exited 0 or 125.
    Exited(Exit),
    /// The system is shutting down.
    Shutdown,
    /// It did not die even after SIGKILL (stuck in the kernel).
    Unkillable,
}

/// What to do once a stopping service has exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Stay stopped.
    Stay,
    /// Start again at once.
    Restart,
    /// Stay stopped: the system is going down.
    Shutdown,
}

/// A service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The shell was asked to spawn it.
    Starting,
    /// Its process runs.
    Running {
        /// Its pid, also its process group.
        pid: i32,
        /// When it started.
        since: Instant,
    },
    /// Signalled to stop, waiting for it to exit.
    Stopping {
        /// Its pid.
        pid: i32,
        /// When the run started.
        since: Instant,
        /// When the next step happens (SIGKILL, then giving up).
        deadline: Instant,
        /// Whether SIGKILL was sent.
        killed: bool,
        /// What then.
        then: AfterStop,
    },
    /// Waiting to restart after a failure.
    Backoff {
        /// When.
        until: Instant,
    },
    /// Waiting to restart, in a crash loop.
    CrashLoop {
        /// When.
        until: Instant,
    },
    /// Not running and not going to be, until asked.
    Stopped {
        /// Why.
        why: StopReason,
    },
}

impl State {
    /// The name shown in status: `Starting`, `Running`, `Stopping`, `Backoff`, `CrashLoop`, `Stopped`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting => "Starting",
            Self::Running { .. } => "Running",
            Self::Stopping { .. } => "Stopping",
            Self::Backoff { .. } => "Backoff",
            Self::CrashLoop { .. } => "CrashLoop",
            Self::Stopped { .. } => "Stopped",
        }
    }

    /// The pid of the running process.
    #[must_use]
    pub fn pid(&self) -> Option<i32> {
        match *self {
            Self::Running { pid, .. } | Self::Stopping { pid, .. } => Some(pid),
            _ => None,
        }
    }
}

/// Why a start happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartReason {
    /// At boot.
    Boot,
    /// After a failure, following this backoff delay.
    Failure {
        /// The delay waited.
        delay: Duration,
    },
    /// Asked for (restart, start).
    Manual,
}

/// What the shell should tell people (events, log lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A process was started.
    Started {
        /// The service.
        service: usize,
        /// Its pid.
        pid: i32,
        /// 1 for the first start since boot.
        attempt: u64,
        /// Why.
        reason: StartReason,
    },
    /// The process exited.
    Exited {
        /// The service.
        service: usize,
        /// Its pid.
        pid: i32,
        /// How.
        exit: Exit,
        /// How long it ran.
        ran: Duration,
        /// What happens next.
        next: Next,
    },
    /// The binary could not be started.
    SpawnFailed {
        /// The service.
        service: usize,
        /// Why.
        error: String,
        /// What happens next.
        next: Next,
    },
    /// The service entered a crash loop.
    CrashLoop {
        /// The service.
        service: usize,
        /// Failures within the window.
        failures: usize,
        /// The window.
        window: Duration,
    },
    /// A run lasted long enough: backoff and crash-loop state were reset.
    Stable {
        /// The service.
        service: usize,
    },
    /// SIGKILL did not end it; init stopped waiting.
    Unkillable {
        /// The service.
        service: usize,
        /// Its pid.
        pid: i32,
    },
}

/// What follows an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Restart after this delay.
    RestartIn(Duration),
    /// Restart now (asked for).
    RestartNow,
    /// Stay stopped.
    Stop(StopReason),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn service `.0`, then report `spawned` or `spawn_failed`.
    Spawn(usize),
    /// Signal a service's process group.
    Signal {
        /// The service.
        service: usize,
        /// Its process group.
        pgid: i32,
        /// Which signal.
        signal: Kill,
    },
    /// The main process has exited: SIGKILL whatever is left of its process
    /// group, so a restart does not meet a leftover child holding its sockets.
    KillLeftovers {
        /// The service.
        service: usize,
        /// The process group.
        pgid: i32,
    },
    /// Tell people.
    Notice(Notice),
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No such service.
    Unknown,
    /// The system is shutting down.
    ShuttingDown,
}

/// One service's bookkeeping.
#[derive(Debug, Clone)]
pub struct Record {
    state: State,
    changed: Instant,
    starts: u64,
    consecutive: u32,
    failures: VecDeque<Instant>,
    crash_loop: bool,
    last_exit: Option<(Exit, Instant)>,
    next_reason: StartReason,
}

impl Record {
    /// The current state.
    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    /// When the state last changed.
    #[must_use]
    pub fn changed(&self) -> Instant {
        self.changed
    }

    /// Successful starts since boot.
    #[must_use]
    pub fn starts(&self) -> u64 {
        self.starts
    }

    /// Starts after the first one.
    #[must_use]
    pub fn restarts(&self) -> u64 {
        self.starts.saturating_sub(1)
    }

    /// Failures since the last stable run (the backoff exponent).
    #[must_use]
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// Failures within the crash-loop window.
    #[must_use]
    pub fn recent_failures(&self) -> usize {
        self.failures.len()
    }

    /// Whether it is in a crash loop.
    #[must_use]
    pub fn crash_loop(&self) -> bool {
        self.crash_loop
    }

    /// The last exit and when it happened.
    #[must_use]
    pub fn last_exit(&self) -> Option<(Exit, Instant)> {
        self.last_exit
    }

    /// When it will be started next, if a restart is scheduled.
    #[must_use]
    pub fn next_start(&self) -> Option<Instant> {
        match self.state {
            State::Backoff { until } | State::CrashLoop { until } => Some(until),
            _ => None,
        }
    }
}

/// Every service's state machine.
#[derive(Debug, Clone)]
pub struct Supervisor {
    policy: Policy,
    records: Vec<Record>,
    shutting_down: bool,
}

impl Supervisor {
    /// One record per service; `autostart[i]` says whether service `i` starts at boot.
    #[must_use]
    pub fn new(policy: Policy, autostart: &[bool], now: Instant) -> Self {
        let records = autostart
            .iter()
            .map(|_| Record {
                state: State::Stopped { why: StopReason::NotStarted },
                changed: now,
                starts: 0,
                consecutive: 0,
                failures: VecDeque::new(),
                crash_loop: false,
                last_exit: None,
                next_reason: StartReason::Boot,
            })
            .collect();
        // Boot starts happen in start_all; until then every service is NotStarted.
        Self { policy, records, shutting_down: false }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Service `i`'s record.
    #[must_use]
    pub fn record(&self, i: usize) -> Option<&Record> {
        self.records.get(i)
    }

    /// How many services.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether a shutdown is under way.
    #[must_use]
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The service whose main process is `pid`.
    #[must_use]
    pub fn service_of(&self, pid: i32) -> Option<usize> {
        self.records.iter().position(|r| r.state.pid() == Some(pid))
    }

    fn set(&mut self, i: usize, state: State, now: Instant) {
        self.records[i].state = state;
        self.records[i].changed = now;
    }

    fn start(&mut self, i: usize, reason: StartReason, now: Instant) -> Action {
        self.records[i].next_reason = reason;
        self.set(i, State::Starting, now);
        Action::Spawn(i)
    }

    /// Boot: starts every service marked autostart.
    pub fn start_all(&mut self, autostart: &[bool], now: Instant) -> Vec<Action> {
        (0..self.records.len())
            .filter(|&i| autostart.get(i).copied().unwrap_or(false))
            .map(|i| self.start(i, StartReason::Boot, now))
            .collect()
    }

    /// The shell started service `i` as `pid`.
    pub fn spawned(&mut self, i: usize, pid: i32, now: Instant) -> Vec<Action> {
        let Some(r) = self.records.get_mut(i) else { return Vec::new() };
        r.starts += 1;
        let attempt = r.starts;
        let reason = r.next_reason;
        self.set(i, State::Running { pid, since: now }, now);
        vec![Action::Notice(Notice::Started { service: i, pid, attempt, reason })]
    }

    /// The shell could not start service `i`; counts as a failure.
    pub fn spawn_failed(&mut self, i: usize, error: String, now: Instant) -> Vec<Action> {
        if i >= self.records.len() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let next = if self.shutting_down {
            self.set(i, State::Stopped { why: StopReason::Shutdown }, now);
            Next::Stop(StopReason::Shutdown)
        } else {
            self.fail(i, None, now, &mut actions)
        };
        actions.insert(0, Action::Notice(Notice::SpawnFailed { service: i, error, next }));
        actions
    }

    /// Records a failure of service `i` and schedules its restart.
    fn fail(&mut self, i: usize, ran: Option<Duration>, now: Instant, actions: &mut Vec<Action>) -> Next {
        let policy = self.policy;
        let r = &mut self.records[i];
        if ran.is_some_and(|d| d >= policy.stable_after) {
            r.consecutive = 0;
            r.failures.clear();
            r.crash_loop = false;
        }
        r.consecutive = r.consecutive.saturating_add(1);
        r.failures.push_back(now);
        while r.failures.front().is_some_and(|&t| now.saturating_duration_since(t) > policy.crash_loop_window) {
            r.failures.pop_front();
        }
        let delay = policy.backoff(r.consecutive);
        if !r.crash_loop && r.failures.len() >= policy.crash_loop_failures {
            r.crash_loop = true;
            actions.push(Action::Notice(Notice::CrashLoop {
                service: i,
                failures: r.failures.len(),
                window: policy.crash_loop_window,
            }));
        }
        r.next_reason = StartReason::Failure { delay };
        let until = now + delay;
        let state = if r.crash_loop { State::CrashLoop { until } } else { State::Backoff { until } };
        self.set(i, state, now);
        Next::RestartIn(delay)
    }

    /// A child exited. `None` when `pid` is not a service's main process (an
    /// orphan the shell reaped).
    pub fn exited(&mut self, pid: i32, exit: Exit, now: Instant) -> Option<Vec<Action>> {
        let i = self.service_of(pid)?;
        let mut actions = vec![Action::KillLeftovers { service: i, pgid: pid }];
        let (since, then) = match self.records[i].state {
            State::Running { since, .. } => (since, None),
            State::Stopping { since, then, .. } => (since, Some(then)),
            _ => return None,
        };
        let ran = now.saturating_duration_since(since);
        self.records[i].last_exit = Some((exit, now));
        let next = match then {
            None if self.shutting_down => {
                self.set(i, State::Stopped { why: StopReason::Shutdown }, now);
                Next::Stop(StopReason::Shutdown)
            }
            None if exit.wants_no_restart() => {
                let why = StopReason::Exited(exit);
                self.set(i, State::Stopped { why }, now);
                Next::Stop(why)
            }
            None => self.fail(i, Some(ran), now, &mut actions),
            Some(AfterStop::Stay) => {
                self.set(i, State::Stopped { why: StopReason::Manual }, now);
                Next::Stop(StopReason::Manual)
            }
            Some(AfterStop::Shutdown) => {
                self.set(i, State::Stopped { why: StopReason::Shutdown }, now);
                Next::Stop(StopReason::Shutdown)
            }
            Some(AfterStop::Restart) => {
                self.reset(i);
                actions.push(self.start(i, StartReason::Manual, now));
                Next::RestartNow
            }
        };
        // The notice goes first: it explains the actions after it.
        actions.insert(1, Action::Notice(Notice::Exited { service: i, pid, exit, ran, next }));
        Some(actions)
    }

    fn reset(&mut self, i: usize) {
        let r = &mut self.records[i];
        r.consecutive = 0;
        r.failures.clear();
        r.crash_loop = false;
    }

    fn begin_stop(&mut self, i: usize, then: AfterStop, now: Instant) -> Vec<Action> {
        match self.records[i].state {
            State::Running { pid, since } => {
                let deadline = now + self.policy.stop_timeout;
                self.set(i, State::Stopping { pid, since, deadline, killed: false, then }, now);
                vec![Action::Signal { service: i, pgid: pid, signal: Kill::Term }]
            }
            State::Stopping { pid, since, deadline, killed, then: old } => {
                // A shutdown is never downgraded by a later stop or restart.
                let then = if old == AfterStop::Shutdown { old } else { then };
                self.records[i].state = State::Stopping { pid, since, deadline, killed, then };
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Stop service `i` (by hand).
    pub fn stop(&mut self, i: usize, now: Instant) -> Result<Vec<Action>, Refused> {
        self.check(i)?;
        match self.records[i].state {
            State::Running { .. } | State::Stopping { .. } => Ok(self.begin_stop(i, AfterStop::Stay, now)),
            State::Starting | State::Backoff { .. } | State::CrashLoop { .. } => {
                self.set(i, State::Stopped { why: StopReason::Manual }, now);
                Ok(Vec::new())
            }
            State::Stopped { .. } => Ok(Vec::new()),
        }
    }

    /// Restart service `i`: stop it if it runs, then start it at once, with
    /// backoff and crash-loop state reset. A stopped service is started.
    pub fn restart(&mut self, i: usize, now: Instant) -> Result<Vec<Action>, Refused> {
        self.check(i)?;
        match self.records[i].state {
            State::Running { .. } | State::Stopping { .. } => Ok(self.begin_stop(i, AfterStop::Restart, now)),
            State::Starting => Ok(Vec::new()),
            State::Backoff { .. } | State::CrashLoop { .. } | State::Stopped { .. } => {
                self.reset(i);
                Ok(vec![self.start(i, StartReason::Manual, now)])
            }
        }
    }

    /// Start service `i` unless it runs.
    pub fn start_one(&mut self, i: usize, now: Instant) -> Result<Vec<Action>, Refused> {
        self.check(i)?;
        match self.records[i].state {
            State::Running { .. } | State::Starting => Ok(Vec::new()),
            _ => self.restart(i, now),
        }
    }

    fn check(&self, i: usize) -> Result<(), Refused> {
        if i >= self.records.len() {
            return Err(Refused::Unknown);
        }
        if self.shutting_down {
            return Err(Refused::ShuttingDown);
        }
        Ok(())
    }

    /// Stop everything for a reboot or power-off; no restart happens after this.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Action> {
        self.shutting_down = true;
        let mut actions = Vec::new();
        for i in 0..self.records.len() {
            match self.records[i].state {
                State::Running { .. } | State::Stopping { .. } => {
                    actions.extend(self.begin_stop(i, AfterStop::Shutdown, now));
                }
                State::Starting | State::Backoff { .. } | State::CrashLoop { .. } => {
                    self.set(i, State::Stopped { why: StopReason::Shutdown }, now);
                }
                State::Stopped { .. } => {}
            }
        }
        actions
    }

    /// Whether no service process is left (running, starting or stopping).
    #[must_use]
    pub fn all_stopped(&self) -> bool {
        self.records
            .iter()
            .all(|r| matches!(r.state, State::Stopped { .. } | State::Backoff { .. } | State::CrashLoop { .. }))
    }

    fn deadline_of(&self, r: &Record) -> Option<Instant> {
        match r.state {
            State::Backoff { until } | State::CrashLoop { until } if !self.shutting_down => Some(until),
            State::Stopping { deadline, .. } => Some(deadline),
            State::Running { since, .. } if r.consecutive > 0 || r.crash_loop => Some(since + self.policy.stable_after),
            _ => None,
        }
    }

    /// The earliest time [`Supervisor::on_deadline`] has work.
    #[must_use]
    pub fn poll_at(&self) -> Option<Instant> {
        self.records.iter().filter_map(|r| self.deadline_of(r)).min()
    }

    /// Does what is due: restarts after backoff, SIGKILL after the stop
    /// timeout, giving up after the kill timeout, resetting after a stable run.
    pub fn on_deadline(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for i in 0..self.records.len() {
            if self.deadline_of(&self.records[i]).is_none_or(|d| d > now) {
                continue;
            }
            match self.records[i].state {
                State::Backoff { .. } | State::CrashLoop { .. } => {
                    let reason = self.records[i].next_reason;
                    actions.push(self.start(i, reason, now));
                }
                State::Stopping { pid, since, killed: false, then, .. } => {
                    let deadline = now + self.policy.kill_timeout;
                    self.records[i].state = State::Stopping { pid, since, deadline, killed: true, then };
                    actions.push(Action::Signal { service: i, pgid: pid, signal: Kill::Kill });
                }
                State::Stopping { pid, killed: true, .. } => {
                    self.set(i, State::Stopped { why: StopReason::Unkillable }, now);
                    actions.push(Action::Notice(Notice::Unkillable { service: i, pid }));
                }
                State::Running { .. } => {
                    self.reset(i);
                    actions.push(Action::Notice(Notice::Stable { service: i }));
                }
                State::Starting | State::Stopped { .. } => {}
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A supervisor with one service, started at t0, and a fake pid counter.
    struct Sim {
        sup: Supervisor,
        t0: Instant,
        next_pid: i32,
    }

    impl Sim {
        fn new(n: usize) -> Self {
            Self::with_policy(n, Policy::default())
        }

        fn with_policy(n: usize, policy: Policy) -> Self {
            let t0 = runtime::clock::now();
            let auto = vec![true; n];
            let mut sim = Self { sup: Supervisor::new(policy, &auto, t0), t0, next_pid: 100 };
            let actions = sim.sup.start_all(&auto, t0);
            sim.run(actions, 0);
            sim
        }

        fn at(&self, s: f64) -> Instant {
            self.t0 + Duration::from_secs_f64(s)
        }

        /// Carries out spawns the way the shell does (they succeed).
        fn run(&mut self, actions: Vec<Action>, at_ms: u64) -> Vec<Action> {
            let now = self.t0 + Duration::from_millis(at_ms);
            let mut out = Vec::new();
            for a in actions {
                if let Action::Spawn(i) = a {
                    self.next_pid += 1;
                    let more = self.sup.spawned(i, self.next_pid, now);
                    out.extend(more);
                } else {
                    out.push(a);
                }
            }
            out
        }

        fn pid(&self, i: usize) -> i32 {
            self.sup.record(i).unwrap().state().pid().unwrap()
        }

        fn crash(&mut self, i: usize, at_ms: u64) -> Vec<Action> {
            let pid = self.pid(i);
            let a = self.sup.exited(pid, Exit::Code(1), self.t0 + Duration::from_millis(at_ms)).unwrap();
            self.run(a, at_ms)
        }

        fn deadline(&mut self) -> (u64, Vec<Action>) {
            let at = self.sup.poll_at().unwrap();
            let ms = u64::try_from(at.duration_since(self.t0).as_millis()).unwrap();
            let a = self.sup.on_deadline(at);
            (ms, self.run(a, ms))
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let p = Policy::default();
        let got: Vec<u64> = (1..=9).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.backoff(u32::MAX), secs(60));
    }

    #[test]
    fn a_crashing_service_restarts_with_growing_delays() {
        let mut sim = Sim::new(1);
        let mut starts = vec![0u64];
        let mut t = 0;
        for _ in 0..7 {
            t += 100; // each run lasts 100 ms
            sim.crash(0, t);
            let (at, actions) = sim.deadline();
            assert!(actions.iter().any(|a| matches!(a, Action::Notice(Notice::Started { .. }))));
            starts.push(at);
            t = at;
        }
        let gaps: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0] - 100).collect();
        assert_eq!(gaps, [1000, 2000, 4000, 8000, 16000, 32000, 60000]);
        assert_eq!(sim.sup.record(0).unwrap().restarts(), 7);
    }

    #[test]
    fn five_failures_in_ten_minutes_is_a_crash_loop_announced_once() {
        let mut sim = Sim::new(1);
        let mut t = 0;
        let mut loops = 0;
        for n in 1..=7 {
            let actions = sim.crash(0, t + 10);
            loops += actions.iter().filter(|a| matches!(a, Action::Notice(Notice::CrashLoop { .. }))).count();
            let state = sim.sup.record(0).unwrap().state();
            if n < 5 {
                assert!(matches!(state, State::Backoff { .. }), "{n}: {state:?}");
            } else {
                assert!(matches!(state, State::CrashLoop { .. }), "{n}: {state:?}");
                assert!(sim.sup.record(0).unwrap().crash_loop());
            }
            t = sim.deadline().0;
        }
        assert_eq!(loops, 1, "announced once");
        // Still retrying, at the capped backoff: a router never gives up.
        assert!(matches!(sim.sup.record(0).unwrap().state(), State::Running { .. }));
    }

    #[test]
    fn failures_spread_over_more_than_ten_minutes_are_no_crash_loop() {
        // With an hour to become stable, runs of 200 s keep failing without a reset,
        // but only three fit in any ten-minute window.
        let policy = Policy { stable_after: secs(3600), ..Policy::default() };
        let mut sim = Sim::with_policy(1, policy);
        let mut t = 0;
        for _ in 0..12 {
            sim.crash(0, t + 200_000);
            t = sim.deadline().0;
        }
        let r = sim.sup.record(0).unwrap();
        assert_eq!(r.consecutive_failures(), 12);
        assert!(r.recent_failures() < 5, "{}", r.recent_failures());
        assert!(!r.crash_loop());
        // … while three more quick failures make five within the window.
        for _ in 0..3 {
            assert!(!sim.sup.record(0).unwrap().crash_loop());
            sim.crash(0, t + 10);
            t = sim.deadline().0;
        }
        assert!(sim.sup.record(0).unwrap().crash_loop());
    }

    #[test]
    fn a_stable_minute_resets_backoff_and_crash_loop() {
        let mut sim = Sim::new(1);
        let mut t = 0;
        for _ in 0..6 {
            sim.crash(0, t + 10);
            t = sim.deadline().0;
        }
        assert!(sim.sup.record(0).unwrap().crash_loop());
        // Running now; after a minute the deadline resets everything.
        let (at, actions) = sim.deadline();
        assert_eq!(at, t + 60_000);
        assert!(actions.contains(&Action::Notice(Notice::Stable { service: 0 })));
        let r = sim.sup.record(0).unwrap();
        assert_eq!((r.consecutive_failures(), r.recent_failures(), r.crash_loop()), (0, 0, false));
        // The next crash waits the initial second again.
        let t2 = at + 5_000;
        sim.crash(0, t2);
        assert_eq!(sim.sup.record(0).unwrap().next_start(), Some(sim.at(t2 as f64 / 1000.0 + 1.0)));
    }

    #[test]
    fn a_long_run_resets_backoff_even_without_a_deadline_turn() {
        let mut sim = Sim::new(1);
        sim.crash(0, 10);
        let (t, _) = sim.deadline();
        // The shell missed the stable deadline; the exit after 2 minutes still counts as stable.
        let actions = sim.crash(0, t + 120_000);
        assert!(actions.iter().any(|a| matches!(
            a,
            Action::Notice(Notice::Exited { next: Next::RestartIn(d), .. }) if *d == secs(1)
        )));
    }

    #[test]
    fn exit_zero_and_125_stop_supervision() {
        for code in [0, 125] {
            let mut sim = Sim::new(1);
            let pid = sim.pid(0);
            let actions = sim.sup.exited(pid, Exit::Code(code), sim.at(3.0)).unwrap();
            assert_eq!(actions[0], Action::KillLeftovers { service: 0, pgid: pid });
            assert!(matches!(
                actions[1],
                Action::Notice(Notice::Exited { next: Next::Stop(StopReason::Exited(Exit::Code(c))), .. }) if c == code
            ));
            assert_eq!(sim.sup.poll_at(), None, "nothing scheduled");
            // A manual start runs it again.
            let a = sim.sup.start_one(0, sim.at(10.0)).unwrap();
            assert_eq!(a, [Action::Spawn(0)]);
        }
        let mut sim = Sim::new(1);
        let pid = sim.pid(0);
        let a = sim.sup.exited(pid, Exit::Signal(9), sim.at(1.0)).unwrap();
        assert!(matches!(a[1], Action::Notice(Notice::Exited { next: Next::RestartIn(_), .. })));
    }

    #[test]
    fn stop_sends_term_then_kill_after_the_timeout() {
        let mut sim = Sim::new(1);
        let pid = sim.pid(0);
        let a = sim.sup.stop(0, sim.at(1.0)).unwrap();
        assert_eq!(a, [Action::Signal { service: 0, pgid: pid, signal: Kill::Term }]);
        assert_eq!(sim.sup.poll_at(), Some(sim.at(11.0)));
        let a = sim.sup.on_deadline(sim.at(11.0));
        assert_eq!(a, [Action::Signal { service: 0, pgid: pid, signal: Kill::Kill }]);
        let a = sim.sup.exited(pid, Exit::Signal(9), sim.at(11.1)).unwrap();
        assert!(matches!(a[1], Action::Notice(Notice::Exited { next: Next::Stop(StopReason::Manual), .. })));
        assert_eq!(sim.sup.record(0).unwrap().state(), State::Stopped { why: StopReason::Manual });
        assert_eq!(sim.sup.poll_at(), None);
    }

    #[test]
    fn a_process_that_survives_sigkill_is_given_up_on() {
        let mut sim = Sim::new(1);
        let pid = sim.pid(0);
        sim.sup.stop(0, sim.at(0.0)).unwrap();
        sim.sup.on_deadline(sim.at(10.0));
        let a = sim.sup.on_deadline(sim.at(15.0));
        assert_eq!(a, [Action::Notice(Notice::Unkillable { service: 0, pid })]);
        assert!(sim.sup.all_stopped());
    }

    #[test]
    fn restart_stops_then_starts_at_once_and_resets_the_backoff() {
        let mut sim = Sim::new(1);
        for t in [10, 2000, 5000] {
            sim.crash(0, t);
            sim.deadline();
        }
        assert_eq!(sim.sup.record(0).unwrap().consecutive_failures(), 3);
        let pid = sim.pid(0);
        let a = sim.sup.restart(0, sim.at(20.0)).unwrap();
        assert_eq!(a, [Action::Signal { service: 0, pgid: pid, signal: Kill::Term }]);
        let a = sim.sup.exited(pid, Exit::Signal(15), sim.at(20.5)).unwrap();
        assert!(a.contains(&Action::Spawn(0)));
        let a = sim.run(a, 20_500);
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::Notice(Notice::Started { reason: StartReason::Manual, attempt: 5, .. })))
        );
        assert_eq!(sim.sup.record(0).unwrap().consecutive_failures(), 0);
        // Restart of a stopped service starts it.
        let pid = sim.pid(0);
        sim.sup.stop(0, sim.at(30.0)).unwrap();
        sim.sup.exited(pid, Exit::Signal(15), sim.at(30.1)).unwrap();
        assert_eq!(sim.sup.restart(0, sim.at(31.0)).unwrap(), [Action::Spawn(0)]);
    }

    #[test]
    fn stopping_a_service_waiting_in_backoff_cancels_the_restart() {
        let mut sim = Sim::new(1);
        sim.crash(0, 10);
        assert!(sim.sup.stop(0, sim.at(0.5)).unwrap().is_empty());
        assert_eq!(sim.sup.poll_at(), None);
        assert_eq!(sim.sup.record(0).unwrap().state(), State::Stopped { why: StopReason::Manual });
    }

    #[test]
    fn spawn_failures_back_off_like_crashes() {
        let t0 = runtime::clock::now();
        let mut sup = Supervisor::new(Policy::default(), &[true], t0);
        assert_eq!(sup.start_all(&[true], t0), [Action::Spawn(0)]);
        let a = sup.spawn_failed(0, "No such file".into(), t0);
        assert!(matches!(&a[0], Action::Notice(Notice::SpawnFailed { next: Next::RestartIn(d), .. }) if *d == secs(1)));
        assert_eq!(sup.on_deadline(t0 + secs(1)), [Action::Spawn(0)]);
        sup.spawn_failed(0, "No such file".into(), t0 + secs(1));
        assert_eq!(sup.poll_at(), Some(t0 + secs(3)));
    }

    #[test]
    fn shutdown_stops_everything_and_restarts_nothing() {
        let mut sim = Sim::new(3);
        sim.crash(1, 100); // service 1 waits in backoff
        let (p0, p2) = (sim.pid(0), sim.pid(2));
        let a = sim.sup.shutdown(sim.at(1.0));
        assert_eq!(
            a,
            [
                Action::Signal { service: 0, pgid: p0, signal: Kill::Term },
                Action::Signal { service: 2, pgid: p2, signal: Kill::Term }
            ]
        );
        assert_eq!(sim.sup.record(1).unwrap().state(), State::Stopped { why: StopReason::Shutdown });
        assert!(!sim.sup.all_stopped());
        // A restart asked for now is refused; a crash is not restarted.
        assert_eq!(sim.sup.restart(0, sim.at(1.1)), Err(Refused::ShuttingDown));
        let a = sim.sup.exited(p0, Exit::Code(1), sim.at(1.2)).unwrap();
        assert!(!a.contains(&Action::Spawn(0)));
        assert_eq!(sim.sup.on_deadline(sim.at(11.0)), [Action::Signal { service: 2, pgid: p2, signal: Kill::Kill }]);
        sim.sup.exited(p2, Exit::Signal(9), sim.at(11.1)).unwrap();
        assert!(sim.sup.all_stopped());
        assert_eq!(sim.sup.poll_at(), None);
    }

    #[test]
    fn unknown_pids_are_orphans() {
        let mut sim = Sim::new(1);
        assert!(sim.sup.exited(4242, Exit::Code(0), sim.at(1.0)).is_none());
        assert_eq!(sim.sup.stop(7, sim.at(1.0)), Err(Refused::Unknown));
    }

    #[test]
    fn services_not_marked_autostart_wait_to_be_started() {
        let t0 = runtime::clock::now();
        let auto = [true, false];
        let mut sup = Supervisor::new(Policy::default(), &auto, t0);
        assert_eq!(sup.start_all(&auto, t0), [Action::Spawn(0)]);
        assert_eq!(sup.record(1).unwrap().state(), State::Stopped { why: StopReason::NotStarted });
        assert_eq!(sup.start_one(1, t0).unwrap(), [Action::Spawn(1)]);
    }
}
