//! The control API every service serves on `<run>/router/<name>.sock` (mode 0600),
//! after routerd's v1alpha1 daemon API:
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/healthz` | 200 `{"status":"ok"}` once the event loop answered a ping, 503 if it did not within 2 s |
//! | `GET /v1/status` | `{"name","phase","since","conditions":[…],…service fields}` |
//! | `GET /v1/events?since=SEQ&wait=SECONDS&topic=PREFIX` | `{"events":[…],"next":SEQ}`, long-polling up to `wait` (≤ 60 s) |
//! | `POST /v1/commands/{reload,renew,stop}` | 202 `{"accepted":true,"command":…}`; the loop runs it |
//!
//! Events are `{"seq","time","topic","attributes"}`, kept in a bounded ring and
//! appended to a bounded `events.jsonl` under the service's `/perm` folder, from
//! which the sequence numbers continue after a restart.
//!
//! The loop owns the truth; it publishes phase, conditions and fields here and
//! this module's threads only read them. Commands travel the other way through
//! a queue and the loop's [`LoopWaker`].

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::event_loop::LoopWaker;
use crate::httpd;
use crate::statefile;
use crate::timefmt::Timestamp;

/// A command for the service's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Re-read inputs.
    Reload,
    /// Renew the lease / re-probe.
    Renew,
    /// Clean stop.
    Stop,
}

impl Command {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "reload" => Some(Self::Reload),
            "renew" => Some(Self::Renew),
            "stop" => Some(Self::Stop),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Reload => "reload",
            Self::Renew => "renew",
            Self::Stop => "stop",
        }
    }
}

/// The shared phase vocabulary; clients decide on it, never on log text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for input.
    Pending,
    /// Holds a lease.
    Bound,
    /// Configuration applied.
    Applied,
    /// Running and serving.
    Up,
    /// Installed (routes, files).
    Installed,
    /// Health checks pass.
    Healthy,
    /// Health checks fail.
    Unhealthy,
    /// Something is wrong; see the conditions.
    Error,
}

/// A Kubernetes-style condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// What the condition is about, e.g. `LeaseValid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// When `status` last changed.
    #[serde(rename = "lastTransitionTime")]
    pub last_transition_time: Timestamp,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the service's stream, increasing, never reused.
    pub seq: u64,
    /// Wall time it happened.
    pub time: Timestamp,
    /// Dotted topic, e.g. `dhcp4.lease.bound`.
    pub topic: String,
    /// Topic-specific data.
    pub attributes: Value,
}

/// How many events the ring keeps in memory and the file keeps after trimming.
const RING_CAPACITY: usize = 1000;
/// The file is trimmed back to [`RING_CAPACITY`] lines once it has this many.
const FILE_MAX_LINES: usize = 2 * RING_CAPACITY;
/// Longest long-poll.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long `healthz` waits for the loop to answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct EventLog {
    ring: VecDeque<Event>,
    next_seq: u64,
    file: Option<PathBuf>,
    file_lines: usize,
}

impl EventLog {
    fn open(file: Option<PathBuf>) -> Self {
        let mut log = Self { ring: VecDeque::new(), next_seq: 1, file, file_lines: 0 };
        let Some(path) = log.file.clone() else {
            return log;
        };
        let Ok(f) = fs::File::open(&path) else {
            return log;
        };
        for line in io::BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            log.file_lines += 1;
            // A torn last line (crash mid-append) or a hand-edited one is skipped.
            if let Ok(event) = serde_json::from_str::<Event>(&line) {
                log.next_seq = log.next_seq.max(event.seq + 1);
                log.push_ring(event);
            }
        }
        log
    }

    fn push_ring(&mut self, event: Event) {
        if self.ring.len() == RING_CAPACITY {
            self.ring.pop_front();
        }
        self.ring.push_back(event);
    }

    fn append(&mut self, topic: &str, attributes: Value, time: Timestamp) -> Event {
        let event = Event { seq: self.next_seq, time, topic: topic.to_owned(), attributes };
        self.next_seq += 1;
        self.push_ring(event.clone());
        if let Some(path) = self.file.clone()
            && let Err(e) = self.persist(&path, &event)
        {
            crate::log_warn!("events: cannot write {}: {e}", path.display());
        }
        event
    }

    fn persist(&mut self, path: &Path, event: &Event) -> io::Result<()> {
        if self.file_lines + 1 >= FILE_MAX_LINES {
            let mut text = String::new();
            for e in &self.ring {
                text.push_str(&serde_json::to_string(e).map_err(io::Error::other)?);
                text.push('\n');
            }
            statefile::write_atomic(path, text.as_bytes()).map_err(io::Error::other)?;
            self.file_lines = self.ring.len();
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
        let mut line = serde_json::to_string(event).map_err(io::Error::other)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        self.file_lines += 1;
        Ok(())
    }

    fn after(&self, since: u64, topic: &str) -> Vec<Event> {
        self.ring.iter().filter(|e| e.seq > since && e.topic.starts_with(topic)).cloned().collect()
    }
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Timestamp,
    conditions: Vec<Condition>,
    fields: Map<String, Value>,
    events: EventLog,
    pings_asked: u64,
    pings_answered: u64,
}

#[derive(Debug)]
struct Shared {
    name: String,
    state: Mutex<State>,
    changed: Condvar,
    commands: Mutex<Vec<Command>>,
    waker: LoopWaker,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock aborts the process (panic = "abort"), so a
        // poisoned lock only happens in tests; the data is still consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The loop's handle on its control API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

/// Where a service's control socket and event file go.
#[must_use]
pub fn socket_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join("router").join(format!("{name}.sock"))
}

impl Control {
    /// A control API not yet listening: `events_file` is where events persist
    /// (usually `<perm>/<name>/events.jsonl`), `None` keeps them in memory only.
    #[must_use]
    pub fn new(name: &str, events_file: Option<PathBuf>, waker: LoopWaker) -> Self {
        let state = State {
            phase: Phase::Pending,
            since: Timestamp::from_system(crate::clock::wall_now()),
            conditions: Vec::new(),
            fields: Map::new(),
            events: EventLog::open(events_file),
            pings_asked: 0,
            pings_answered: 0,
        };
        Self {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                state: Mutex::new(state),
                changed: Condvar::new(),
                commands: Mutex::new(Vec::new()),
                waker,
            }),
        }
    }

    /// Starts serving on `socket` (removing a stale one; mode 0600) with
    /// `server`'s thread.
    pub fn listen(&self, server: &httpd::Server, socket: &Path) -> io::Result<()> {
        self.listen_with(server, socket, None)
    }

    /// Like [`Control::listen`], but `extension` sees every request first (on
    /// the server's thread: it must not block; it hands blocking work to a
    /// stream thread with [`httpd::Outcome::Stream`]) and answers the ones it
    /// owns; `None` leaves the request to the standard API. init adds its own
    /// endpoints and its aggregated `/v1/status` this way.
    pub fn listen_with(
        &self,
        server: &httpd::Server,
        socket: &Path,
        extension: Option<HttpExtension>,
    ) -> io::Result<()> {
        let listener = bind_socket(socket)?;
        let control = self.clone();
        let handler: httpd::Handler = Arc::new(move |request: &httpd::Request| {
            // No endpoint takes a body: one too large to have been read
            // first is refused unread, never ignored by a command.
            if !request.body_read() {
                return httpd::Response::json(413, &json!({"error": "request bodies are not taken here"})).into();
            }
            if let Some(outcome) = extension.as_ref().and_then(|e| e(request)) {
                return outcome;
            }
            control.handle(request)
        });
        server.listen_unix(listener, handler, httpd::Limits::default())?;
        Ok(())
    }

    /// The standard API's answer to `request` (what [`Control::listen`] serves).
    #[must_use]
    pub fn handle(&self, request: &httpd::Request) -> httpd::Outcome {
        route(&self.shared, request)
    }

    /// The status for one publish: everything set through it is seen by
    /// `/v1/status` readers at once or not at all, so no reader finds a new
    /// phase beside the old fields. Holds the status lock until dropped: do
    /// not call other [`Control`] methods while it lives.
    #[must_use]
    pub fn update(&self) -> StatusUpdate<'_> {
        StatusUpdate { st: self.shared.state() }
    }

    /// Sets the phase (and `since`, when it changes).
    pub fn set_phase(&self, phase: Phase) {
        self.update().set_phase(phase);
    }

    /// The current phase.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.shared.state().phase
    }

    /// Sets a condition; `lastTransitionTime` moves only when `status` changes.
    pub fn set_condition(&self, kind: &str, status: Option<bool>, reason: &str, message: &str) {
        self.update().set_condition(kind, status, reason, message);
    }

    /// Sets a service-specific status field (`lease`, `counters`, …).
    pub fn set_field(&self, key: &str, value: Value) {
        self.update().set_field(key, value);
    }

    /// Records an event and wakes long-polling readers.
    pub fn emit(&self, topic: &str, attributes: Value) -> u64 {
        let now = Timestamp::from_system(crate::clock::wall_now());
        let seq = self.shared.state().events.append(topic, attributes, now).seq;
        self.shared.changed.notify_all();
        seq
    }

    /// The status document as served.
    #[must_use]
    pub fn status(&self) -> Value {
        status_json(&self.shared)
    }

    /// Events after `since` whose topic starts with `topic`.
    #[must_use]
    pub fn events_after(&self, since: u64, topic: &str) -> Vec<Event> {
        self.shared.state().events.after(since, topic)
    }

    /// Commands that arrived since the last call; also answers health pings,
    /// which proves the loop is turning. The event loop calls this on every wake.
    pub fn take_commands(&self) -> Vec<Command> {
        {
            let mut st = self.shared.state();
            if st.pings_answered != st.pings_asked {
                st.pings_answered = st.pings_asked;
                self.shared.changed.notify_all();
            }
        }
        std::mem::take(&mut *self.shared.commands.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// One publish of a service's status, under the status lock (see
/// [`Control::update`]).
#[derive(Debug)]
pub struct StatusUpdate<'a> {
    st: MutexGuard<'a, State>,
}

impl StatusUpdate<'_> {
    /// Sets the phase (and `since`, when it changes).
    pub fn set_phase(&mut self, phase: Phase) {
        if self.st.phase != phase {
            self.st.phase = phase;
            self.st.since = Timestamp::from_system(crate::clock::wall_now());
        }
    }

    /// The phase as set so far.
    #[must_use]
    pub fn phase(&self) -> Phase {
        self.st.phase
    }

    /// Sets a condition; `lastTransitionTime` moves only when `status` changes.
    pub fn set_condition(&mut self, kind: &str, status: Option<bool>, reason: &str, message: &str) {
        let status = match status {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        };
        let now = Timestamp::from_system(crate::clock::wall_now());
        match self.st.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                if c.status != status {
                    c.status = status.to_owned();
                    c.last_transition_time = now;
                }
                reason.clone_into(&mut c.reason);
                message.clone_into(&mut c.message);
            }
            None => self.st.conditions.push(Condition {
                kind: kind.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                last_transition_time: now,
            }),
        }
    }

    /// Sets a service-specific status field (`lease`, `counters`, …).
    pub fn set_field(&mut self, key: &str, value: Value) {
        self.st.fields.insert(key.to_owned(), value);
    }
}

/// Binds the control socket: its folder made, a stale socket removed, mode 0600.
fn bind_socket(socket: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        fs::create_dir_all(dir)?;
    }
    match fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(socket)?;
    fs::set_permissions(socket, fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// A handler that sees control requests before the standard API and answers
/// the ones it owns (see [`Control::listen_with`]).
pub type HttpExtension = Arc<dyn Fn(&httpd::Request) -> Option<httpd::Outcome> + Send + Sync>;

/// The standard API. Whatever waits (the loop's answer to a health ping, a
/// long poll) runs on a stream thread, never on the server's.
fn route(shared: &Arc<Shared>, request: &httpd::Request) -> httpd::Outcome {
    use httpd::{Outcome, Response};
    let path = request.path();
    let get = request.is_get();
    match path {
        "/v1/healthz" if get => {
            let shared = Arc::clone(shared);
            Outcome::stream(move |_, conn| {
                let response = if loop_answers(&shared) {
                    Response::json(200, &json!({"status": "ok"}))
                } else {
                    Response::json(503, &json!({"status": "failed", "reason": "event loop did not answer"}))
                };
                let _ = conn.respond(&response);
            })
        }
        "/v1/status" if get => Response::json(200, &status_json(shared)).into(),
        "/v1/events" if get => {
            let (since, wait, topic) = match events_query(&request.query()) {
                Ok(q) => q,
                Err(e) => return Response::json(400, &json!({"error": e})).into(),
            };
            let now = shared.state().events.after(since, &topic);
            if !now.is_empty() || wait.is_zero() {
                let next = now.last().map_or(since, |e| e.seq);
                return Response::json(200, &json!({"events": now, "next": next})).into();
            }
            let shared = Arc::clone(shared);
            Outcome::stream(move |_, conn| {
                let events = wait_for_events(&shared, since, &topic, wait);
                let next = events.last().map_or(since, |e| e.seq);
                let _ = conn.respond(&Response::json(200, &json!({"events": events, "next": next})));
            })
        }
        _ if path.starts_with("/v1/commands/") => {
            if !request.is("POST") {
                return Response::json(405, &json!({"error": "use POST"})).with_header("Allow", "POST").into();
            }
            let name = &path["/v1/commands/".len()..];
            match Command::parse(name) {
                Some(command) => {
                    shared.commands.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(command);
                    shared.waker.wake();
                    Response::json(202, &json!({"accepted": true, "command": command.name()})).into()
                }
                None => Response::json(404, &json!({"accepted": false, "error": format!("unknown command {name:?}")}))
                    .into(),
            }
        }
        "/v1/healthz" | "/v1/status" | "/v1/events" => {
            Response::json(405, &json!({"error": "use GET"})).with_header("Allow", "GET, HEAD").into()
        }
        _ => Response::json(404, &json!({"error": format!("no such endpoint {path:?}")})).into(),
    }
}

/// `since`, `wait` (at most [`MAX_WAIT`]) and `topic` of an events request.
fn events_query(query: &[(String, String)]) -> Result<(u64, Duration, String), String> {
    let mut since = 0u64;
    let mut wait = Duration::ZERO;
    let mut topic = String::new();
    for (k, v) in query {
        let bad = match k.as_str() {
            "since" => v.parse().map(|n| since = n).is_err(),
            "wait" => v
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .map(|w| wait = Duration::from_secs_f64(w.min(MAX_WAIT.as_secs_f64())))
                .is_none(),
            "topic" => {
                topic.clone_from(v);
                false
            }
            _ => false,
        };
        if bad {
            return Err(format!("invalid value for {k}"));
        }
    }
    Ok((since, wait, topic))
}

fn status_json(shared: &Shared) -> Value {
    let st = shared.state();
    let mut doc = Map::new();
    doc.insert("name".into(), json!(shared.name));
    doc.insert("phase".into(), json!(st.phase));
    doc.insert("since".into(), json!(st.since));
    doc.insert("conditions".into(), json!(st.conditions));
    for (k, v) in &st.fields {
        doc.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(doc)
}

/// Splits `path?query` and decodes the query's `key=value` pairs (see
/// [`crate::http::split_query`]).
#[must_use]
pub fn split_query(url: &str) -> (&str, Vec<(String, String)>) {
    crate::http::split_query(url)
}

fn loop_answers(shared: &Shared) -> bool {
    let target = {
        let mut st = shared.state();
        st.pings_asked += 1;
        st.pings_asked
    };
    shared.waker.wake();
    let st = shared.state();
    let (st, _) = shared
        .changed
        .wait_timeout_while(st, HEALTH_TIMEOUT, |st| st.pings_answered < target)
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    st.pings_answered >= target
}

fn wait_for_events(shared: &Shared, since: u64, topic: &str, wait: Duration) -> Vec<Event> {
    let st = shared.state();
    let (st, _) = shared
        .changed
        .wait_timeout_while(st, wait, |st| st.events.after(since, topic).is_empty())
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    st.events.after(since, topic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::{Context, EventLoop, Handler};
    use crate::unix_http;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmpdir(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("rt-control-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    #[test]
    fn event_sequence_continues_from_the_file_after_a_restart() {
        let dir = tmpdir("seq");
        let file = dir.0.join("svc/events.jsonl");
        let ev = EventLoop::new().unwrap();
        let a = Control::new("svc", Some(file.clone()), ev.waker());
        assert_eq!(a.emit("svc.lease.bound", json!({"ip": "10.0.0.2"})), 1);
        assert_eq!(a.emit("svc.lease.renewed", json!({})), 2);
        // A torn line from a crash mid-append must not stop the reload.
        OpenOptions::new().append(true).open(&file).unwrap().write_all(b"{\"seq\":").unwrap();
        let b = Control::new("svc", Some(file.clone()), ev.waker());
        assert_eq!(b.emit("svc.lease.lost", json!({})), 3);
        let topics: Vec<String> = b.events_after(0, "svc.lease").into_iter().map(|e| e.topic).collect();
        assert_eq!(topics, ["svc.lease.bound", "svc.lease.renewed", "svc.lease.lost"]);
        assert_eq!(b.events_after(1, "svc.lease.re").len(), 1, "topic is a prefix filter, since is exclusive");
    }

    #[test]
    fn the_event_file_stays_bounded() {
        let dir = tmpdir("bound");
        let file = dir.0.join("events.jsonl");
        let ev = EventLoop::new().unwrap();
        let c = Control::new("svc", Some(file.clone()), ev.waker());
        for i in 0..(FILE_MAX_LINES + 10) {
            c.emit("svc.tick", json!({ "i": i }));
        }
        let lines = fs::read_to_string(&file).unwrap().lines().count();
        assert!(lines < FILE_MAX_LINES, "{lines} lines");
        let reopened = Control::new("svc", Some(file), ev.waker());
        assert_eq!(reopened.emit("svc.tick", json!({})), (FILE_MAX_LINES + 11) as u64);
    }

    #[test]
    fn conditions_keep_their_transition_time_until_status_changes() {
        let ev = EventLoop::new().unwrap();
        let c = Control::new("svc", None, ev.waker());
        c.set_condition("LeaseValid", Some(true), "Bound", "ok");
        let first = c.status()["conditions"][0]["lastTransitionTime"].clone();
        std::thread::sleep(Duration::from_millis(5));
        c.set_condition("LeaseValid", Some(true), "Renewed", "still ok");
        let status = c.status();
        assert_eq!(status["conditions"][0]["lastTransitionTime"], first);
        assert_eq!(status["conditions"][0]["reason"], "Renewed");
        std::thread::sleep(Duration::from_millis(5));
        c.set_condition("LeaseValid", Some(false), "Expired", "gone");
        assert_ne!(c.status()["conditions"][0]["lastTransitionTime"], first);
        assert_eq!(c.status()["conditions"][0]["status"], "False");
    }

    #[test]
    fn a_reader_sees_a_whole_update_or_none_of_it() {
        let ev = EventLoop::new().unwrap();
        let c = Control::new("svc", None, ev.waker());
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let healthy = i % 2 == 0;
                    let mut u = c.update();
                    u.set_phase(if healthy { Phase::Healthy } else { Phase::Unhealthy });
                    u.set_condition("Checks", Some(healthy), "Round", "");
                    u.set_field("first_error", json!(if healthy { "" } else { "tcp4: refused" }));
                }
            })
        };
        let mut seen = 0u32;
        while !writer.is_finished() {
            let s = c.status();
            if s["first_error"].is_null() {
                continue;
            }
            let healthy = s["phase"] == "Healthy";
            assert_eq!(s["first_error"] == "", healthy, "torn status: {s}");
            assert_eq!(s["conditions"][0]["status"] == "True", healthy, "torn status: {s}");
            seen += 1;
        }
        writer.join().unwrap();
        assert!(seen > 0, "the reader never ran while the writer did");
    }

    struct Svc {
        control: Control,
        reloads: u32,
    }
    impl Handler for Svc {
        fn on_reload(&mut self, _cx: &mut Context<'_>) {
            self.reloads += 1;
            self.control.emit("svc.reloaded", json!({ "n": self.reloads }));
            self.control.set_phase(Phase::Applied);
        }
    }

    #[test]
    fn an_http_extension_answers_its_own_paths_and_leaves_the_rest() {
        let dir = tmpdir("httpext");
        let sock = socket_path(&dir.0, "init");
        let ev = EventLoop::new().unwrap();
        let control = Control::new("init", None, ev.waker());
        control.set_field("standard", json!(true));
        let extension: HttpExtension = Arc::new(|request: &httpd::Request| {
            (request.path() == "/v1/services")
                .then(|| httpd::Response::json(200, &json!({"services": ["dhcp4"]})).into())
        });
        let server = httpd::Server::new().unwrap();
        control.listen_with(&server, &sock, Some(extension)).unwrap();
        let get = |p: &str| unix_http::request(&sock, "GET", p, b"", Duration::from_secs(5)).unwrap();
        assert_eq!(get("/v1/services").json().unwrap()["services"][0], "dhcp4");
        let status = get("/v1/status").json().unwrap();
        assert_eq!((status["name"].clone(), status["standard"].clone()), (json!("init"), json!(true)));
        assert_eq!(get("/v1/other").status, 404);
    }

    #[test]
    fn many_long_polls_wait_without_holding_up_other_requests() {
        let dir = tmpdir("polls");
        let sock = socket_path(&dir.0, "svc");
        let ev = EventLoop::new().unwrap();
        let control = Control::new("svc", None, ev.waker());
        let server = httpd::Server::new().unwrap();
        control.listen(&server, &sock).unwrap();
        let pollers: Vec<_> = (0..10)
            .map(|_| {
                let sock = sock.clone();
                std::thread::spawn(move || {
                    unix_http::request(&sock, "GET", "/v1/events?since=0&wait=20", b"", Duration::from_secs(30))
                        .unwrap()
                        .json()
                        .unwrap()
                })
            })
            .collect();
        let deadline = crate::clock::now() + Duration::from_secs(20);
        while server.streams() < 10 {
            assert!(crate::clock::now() < deadline, "the long polls did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Status is answered at once while ten clients wait.
        let t0 = crate::clock::now();
        let r = unix_http::request(&sock, "GET", "/v1/status", b"", Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 200);
        assert!(crate::clock::now() - t0 < Duration::from_secs(2));
        control.emit("svc.thing", json!({}));
        for p in pollers {
            assert_eq!(p.join().unwrap()["events"][0]["topic"], "svc.thing");
        }
    }

    #[test]
    fn serves_healthz_status_events_and_commands_over_the_socket() {
        let dir = tmpdir("http");
        let sock = socket_path(&dir.0, "svc");
        let (tx, rx) = std::sync::mpsc::channel();
        let sock2 = sock.clone();
        // Outlives the service's loop, to ask healthz once the loop is gone.
        let server = httpd::Server::new().unwrap();
        let server2 = server.clone();
        let service = std::thread::spawn(move || {
            let mut ev = EventLoop::new().unwrap();
            let control = Control::new("svc", None, ev.waker());
            control.set_field("lease", json!({"ip": "192.0.2.7"}));
            control.listen(&server2, &sock2).unwrap();
            ev.attach_control(control.clone());
            tx.send(()).unwrap();
            let mut svc = Svc { control, reloads: 0 };
            ev.run(&mut svc).unwrap()
        });
        rx.recv().unwrap();
        let mode = fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let get = |p: &str| unix_http::request(&sock, "GET", p, b"", Duration::from_secs(70)).unwrap();
        let post = |p: &str| unix_http::request(&sock, "POST", p, b"", Duration::from_secs(5)).unwrap();

        let r = get("/v1/healthz");
        assert_eq!((r.status, r.json().unwrap()["status"].clone()), (200, json!("ok")));
        let s = get("/v1/status").json().unwrap();
        assert_eq!(
            (s["name"].clone(), s["phase"].clone(), s["lease"]["ip"].clone()),
            (json!("svc"), json!("Pending"), json!("192.0.2.7"))
        );

        // A long-poll that is answered by the reload we trigger meanwhile.
        let sock3 = sock.clone();
        let poller = std::thread::spawn(move || {
            unix_http::request(&sock3, "GET", "/v1/events?since=0&wait=30&topic=svc.", b"", Duration::from_secs(40))
                .unwrap()
        });
        std::thread::sleep(Duration::from_millis(100));
        let r = post("/v1/commands/reload");
        assert_eq!(r.status, 202);
        let polled = poller.join().unwrap().json().unwrap();
        assert_eq!(polled["events"][0]["topic"], "svc.reloaded");
        assert_eq!(polled["next"], 1);
        assert_eq!(get("/v1/status").json().unwrap()["phase"], "Applied");

        // Nothing newer: an immediate empty answer.
        let empty = get("/v1/events?since=1&wait=0").json().unwrap();
        assert_eq!(empty["events"], json!([]));
        assert_eq!(empty["next"], 1);

        assert_eq!(post("/v1/commands/explode").status, 404);
        assert_eq!(get("/v1/commands/reload").status, 405);
        assert_eq!(post("/v1/status").status, 405);
        assert_eq!(get("/v1/events?since=abc").status, 400);
        assert_eq!(get("/nope").status, 404);

        assert_eq!(post("/v1/commands/stop").status, 202);
        assert_eq!(service.join().unwrap(), 0);
        // The loop is gone: healthz must not claim it is alive.
        assert_eq!(get("/v1/healthz").status, 503);
    }
}
