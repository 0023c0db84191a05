//! Writes `/perm/dhcp4d/leases.json` on its own thread, so the event loop
//! keeps answering while the file is encoded and synced.
//!
//! The loop sends numbered batches of lease changes and events. The writer
//! keeps the table as the file should say it (shared, read-only, with the
//! HTTP pages), emits the events, and writes the file when something changed — at once after a quiet spell, then no sooner than
//! `max(interval, 4 × the last write's duration)` after the previous write
//! started, so changes arriving meanwhile share one write and the writer
//! spends at most a fifth of its time writing however large the table grows.
//! After each write dnsd gets SIGUSR1. The JSON is encoded straight from the
//! shared table, so a large table is held once, plus its encoding.
//!
//! ACKs do not wait for the write (see the crate README for the measurement
//! behind that); a clean stop writes everything pending before the process
//! exits, so no acknowledged lease is lost across it.
//!
//! A failed write is reported (log, metrics, the `LeasesPersisted`
//! condition) and retried every few seconds.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use runtime::control::Control;
use runtime::event_loop::Signal;
use runtime::perm::Dhcp4dLease;

use dhcp4d::LeaseEvent;
use dhcp4d::leases::LeaseRecord;
use dhcp4d::stats::Stats;

/// How often a failed write is retried.
const RETRY: Duration = Duration::from_secs(5);

/// A unit of work for the writer.
#[derive(Debug)]
pub enum Job {
    /// Changes and events of one loop turn.
    Batch {
        /// Batch number, increasing.
        seq: u64,
        /// Addresses changed, with their binding now (`None`: gone).
        changes: Vec<(Ipv4Addr, Option<LeaseRecord>)>,
        /// Events to emit.
        events: Vec<LeaseEvent>,
    },
    /// Replace the whole table (start, reconfiguration).
    Reset {
        /// Batch number.
        seq: u64,
        /// The server address (`num` in the file counts from it).
        server: Ipv4Addr,
        /// Every binding.
        records: Vec<LeaseRecord>,
        /// Whether the file must be rewritten (otherwise it already says this).
        write: bool,
    },
    /// Write what is pending and end.
    Stop {
        /// Batch number.
        seq: u64,
    },
}

/// The leases as the file says them (or is about to).
#[derive(Debug, Default)]
pub struct LeaseFile {
    /// The server address (`num` counts from it).
    pub server: Option<Ipv4Addr>,
    /// The bindings by address.
    pub records: BTreeMap<Ipv4Addr, LeaseRecord>,
    /// A monotonic instant and the wall time it was: expiries (monotonic in
    /// the core) become wall times through it, so every rendering of a lease
    /// says the same time until the wall clock is stepped (NTP), when it is
    /// re-read.
    anchor: Option<(Instant, SystemTime)>,
}

/// How far the wall clock may drift from the anchor before it is re-read.
const ANCHOR_SLACK: Duration = Duration::from_secs(1);

impl LeaseFile {
    fn anchor(&self) -> (Instant, SystemTime) {
        self.anchor.unwrap_or_else(|| (runtime::clock::now(), runtime::clock::wall_now()))
    }

    /// Re-reads the clocks when the wall clock was stepped since the anchor.
    fn refresh_anchor(&mut self) {
        let (now, wall) = (runtime::clock::now(), runtime::clock::wall_now());
        let stepped = self.anchor.is_none_or(|(m, w)| {
            let predicted = dhcp4d::leases::wall_of(now, m, w);
            let off = match wall.duration_since(predicted) {
                Ok(d) => d,
                Err(e) => e.duration(),
            };
            off > ANCHOR_SLACK
        });
        if stepped {
            self.anchor = Some((now, wall));
        }
    }

    /// Every lease in router7's form.
    #[must_use]
    pub fn leases(&self) -> Vec<Dhcp4dLease> {
        let (now, wall) = self.anchor();
        let server = self.server.unwrap_or(Ipv4Addr::UNSPECIFIED);
        self.records.values().map(|r| r.to_file(server, now, wall)).collect()
    }

    /// The file's bytes: router7's tab-indented JSON array and a newline, as
    /// `statefile::write_json` writes it, encoded without an intermediate copy.
    fn encode(&self) -> serde_json::Result<Vec<u8>> {
        let (now, wall) = self.anchor();
        let server = self.server.unwrap_or(Ipv4Addr::UNSPECIFIED);
        // About 230 bytes per lease.
        let mut out = Vec::with_capacity(64 + 240 * self.records.len());
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        serde::Serializer::collect_seq(&mut ser, self.records.values().map(|r| r.to_file(server, now, wall)))?;
        out.push(b'\n');
        Ok(out)
    }
}

/// The table the writer and the HTTP pages share.
pub type Published = Arc<RwLock<LeaseFile>>;

/// The loop's handle on the writer thread.
#[derive(Debug)]
pub struct LeaseWriter {
    tx: Sender<Job>,
    done: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Everything the writer thread needs.
#[derive(Debug)]
pub struct Settings {
    /// The lease file.
    pub path: PathBuf,
    /// The runtime folder (for dnsd's pid file).
    pub run: PathBuf,
    /// Shortest time between the starts of two writes.
    pub interval: Duration,
    /// For events and the `LeasesPersisted` condition.
    pub control: Control,
    /// Write counters.
    pub stats: Arc<Stats>,
    /// The table, shared with the HTTP pages.
    pub published: Published,
}

impl LeaseWriter {
    /// Starts the thread.
    pub fn start(settings: Settings) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicU64::new(0));
        let thread_done = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("lease-writer".into())
            .spawn(move || Worker::new(settings, thread_done).run(&rx))?;
        Ok(Self { tx, done, thread: Some(thread) })
    }

    /// Queues a job (a writer that is gone has nothing left to do with it).
    pub fn send(&self, job: Job) {
        let _ = self.tx.send(job);
    }

    /// The last batch number whose changes are on disk (or failed to be written).
    #[must_use]
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    /// Writes everything pending and stops the thread, waiting at most `limit`.
    /// Whether it finished.
    pub fn stop(&mut self, seq: u64, limit: Duration) -> bool {
        self.send(Job::Stop { seq });
        let deadline = runtime::clock::now() + limit;
        while self.done() < seq {
            if runtime::clock::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        true
    }
}

struct Worker {
    s: Settings,
    done: Arc<AtomicU64>,
    dirty: bool,
    failing: Option<bool>,
}

impl Worker {
    fn new(s: Settings, done: Arc<AtomicU64>) -> Self {
        Self { s, done, dirty: false, failing: None }
    }

    /// Applies a job; returns its events and whether it asks to stop.
    fn apply(&mut self, job: Job, seq: &mut u64, events: &mut Vec<LeaseEvent>) -> bool {
        match job {
            Job::Batch { seq: n, changes, events: ev } => {
                if !changes.is_empty() {
                    let mut file = self.file_mut();
                    for (a, r) in changes {
                        match r {
                            Some(r) => file.records.insert(a, r),
                            None => file.records.remove(&a),
                        };
                    }
                    drop(file);
                    self.dirty = true;
                }
                events.extend(ev);
                *seq = n;
                false
            }
            Job::Reset { seq: n, server, records, write } => {
                let mut file = self.file_mut();
                file.server = Some(server);
                file.records = records.into_iter().map(|r| (r.addr, r)).collect();
                file.refresh_anchor();
                drop(file);
                self.dirty |= write;
                *seq = n;
                false
            }
            Job::Stop { seq: n } => {
                *seq = n;
                true
            }
        }
    }

    fn run(mut self, rx: &Receiver<Job>) {
        let mut seq = 0;
        let mut next_write: Option<Instant> = None;
        loop {
            let job = if self.dirty {
                let wait = next_write.map_or(Duration::ZERO, |t| t.saturating_duration_since(runtime::clock::now()));
                match rx.recv_timeout(wait) {
                    Ok(j) => Some(j),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(j) => Some(j),
                    Err(_) => return,
                }
            };
            let mut events = Vec::new();
            let mut stop = false;
            if let Some(j) = job {
                stop |= self.apply(j, &mut seq, &mut events);
            }
            while let Ok(j) = rx.try_recv() {
                stop |= self.apply(j, &mut seq, &mut events);
            }
            for e in &events {
                self.s.control.emit(e.topic(), e.attributes());
            }
            let now = runtime::clock::now();
            if self.dirty && (stop || next_write.is_none_or(|t| now >= t)) {
                next_write = Some(match self.write() {
                    Ok(took) => now + self.s.interval.max(took * 4),
                    Err(()) => now + RETRY,
                });
            }
            if !self.dirty {
                self.done.store(seq, Ordering::Release);
            }
            if stop {
                self.done.store(seq, Ordering::Release);
                return;
            }
        }
    }

    fn file_mut(&self) -> std::sync::RwLockWriteGuard<'_, LeaseFile> {
        self.s.published.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the table; how long it took, or `Err` when it failed.
    fn write(&mut self) -> Result<Duration, ()> {
        let started = runtime::clock::now();
        self.file_mut().refresh_anchor();
        let encoded = self.s.published.read().unwrap_or_else(std::sync::PoisonError::into_inner).encode();
        let result = match encoded {
            Ok(bytes) => runtime::statefile::write_atomic(&self.s.path, &bytes).map_err(|e| e.to_string()),
            Err(e) => Err(format!("encoding the leases: {e}")),
        };
        let took = runtime::clock::now().saturating_duration_since(started);
        self.s.stats.write_seconds.observe(took.as_secs_f64());
        match result {
            Ok(()) => {
                self.dirty = false;
                self.s.stats.writes.inc();
                runtime::notify::notify_all(&self.s.run, &["dnsd"], Signal::Usr1);
                if self.failing != Some(false) {
                    self.failing = Some(false);
                    self.s.control.set_condition("LeasesPersisted", Some(true), "Written", "leases.json is up to date");
                }
                Ok(took)
            }
            Err(e) => {
                self.s.stats.write_errors.inc();
                runtime::log_error!("cannot write the leases: {e}; retrying every {} s", RETRY.as_secs());
                if self.failing != Some(true) {
                    self.failing = Some(true);
                    self.s.control.set_condition("LeasesPersisted", Some(false), "WriteFailed", &e);
                }
                Err(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcp4d::leases::{Binding, Expiry};
    use runtime::timefmt::Timestamp;

    fn file() -> LeaseFile {
        let now = runtime::clock::now();
        let mut f = LeaseFile { server: Some(Ipv4Addr::new(192, 168, 42, 1)), ..LeaseFile::default() };
        for (last, expiry) in [(2u8, Expiry::Never), (30, Expiry::At(now + Duration::from_secs(600)))] {
            let addr = Ipv4Addr::new(192, 168, 42, last);
            let binding = Binding {
                mac: [2, 0, 0, 0, 0, last],
                expiry,
                hostname: format!("host{last}"),
                hostname_override: String::new(),
                last_ack: Timestamp::from_system(runtime::clock::wall_now()),
                ended: false,
            };
            f.records.insert(addr, LeaseRecord { addr, binding });
        }
        f.refresh_anchor();
        f
    }

    #[test]
    fn encodes_exactly_what_statefile_write_json_would() {
        let f = file();
        let dir = std::env::temp_dir().join(format!("dhcp4d-writer-{}", std::process::id()));
        let path = dir.join("leases.json");
        runtime::statefile::write_json(&path, &f.leases()).unwrap();
        assert_eq!(f.encode().unwrap(), std::fs::read(&path).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn renderings_agree_until_the_wall_clock_steps() {
        let mut f = file();
        let first = f.leases();
        std::thread::sleep(Duration::from_millis(20));
        f.refresh_anchor();
        assert_eq!(f.leases(), first, "the same expiry every time");
        assert_eq!(first[0].expiry, Timestamp::GO_ZERO, "static stays zero");
        assert_eq!(first[1].num, 28);
        // A wall clock stepped by an hour since the anchor (NTP) is noticed.
        let (m, w) = f.anchor();
        f.anchor = Some((m, w - Duration::from_secs(3600)));
        assert_eq!(f.leases()[1].expiry.plus(Duration::from_secs(3600)), first[1].expiry);
        f.refresh_anchor();
        let off = first[1].expiry.until(f.leases()[1].expiry) + f.leases()[1].expiry.until(first[1].expiry);
        assert!(off < Duration::from_secs(1), "{off:?}");
    }
}
