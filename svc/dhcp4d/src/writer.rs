//! Writes `/perm/dhcp4d/leases.json` on its own thread, so the event loop
//! keeps answering while the file is encoded and synced.
//!
//! The loop sends numbered batches of lease changes and events. The writer
//! keeps its own copy of the table, emits the events, and writes the file
//! when something changed — at once after a quiet spell, then no sooner than
//! `max(interval, 4 × the last write's duration)` after the previous write
//! started, so changes arriving meanwhile share one write and the writer
//! spends at most a fifth of its time writing however large the table grows.
//! After each write dnsd gets SIGUSR1 and the HTTP pages the new table.
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
use std::time::{Duration, Instant};

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

/// What the HTTP pages read: the table as last written.
pub type Published = Arc<RwLock<Arc<Vec<Dhcp4dLease>>>>;

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
    /// Where the written table is published.
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
    server: Ipv4Addr,
    table: BTreeMap<Ipv4Addr, LeaseRecord>,
    dirty: bool,
    failing: Option<bool>,
}

impl Worker {
    fn new(s: Settings, done: Arc<AtomicU64>) -> Self {
        Self { s, done, server: Ipv4Addr::UNSPECIFIED, table: BTreeMap::new(), dirty: false, failing: None }
    }

    /// Applies a job; returns its events and whether it asks to stop.
    fn apply(&mut self, job: Job, seq: &mut u64, events: &mut Vec<LeaseEvent>) -> bool {
        match job {
            Job::Batch { seq: n, changes, events: ev } => {
                for (a, r) in changes {
                    match r {
                        Some(r) => self.table.insert(a, r),
                        None => self.table.remove(&a),
                    };
                    self.dirty = true;
                }
                events.extend(ev);
                *seq = n;
                false
            }
            Job::Reset { seq: n, server, records, write } => {
                self.server = server;
                self.table = records.into_iter().map(|r| (r.addr, r)).collect();
                self.dirty |= write;
                if !write {
                    self.publish(self.snapshot());
                }
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

    fn snapshot(&self) -> Vec<Dhcp4dLease> {
        let (now, wall) = (runtime::clock::now(), runtime::clock::wall_now());
        self.table.values().map(|r| r.to_file(self.server, now, wall)).collect()
    }

    fn publish(&self, leases: Vec<Dhcp4dLease>) {
        let mut p = self.s.published.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *p = Arc::new(leases);
    }

    /// Writes the table; how long it took, or `Err` when it failed.
    fn write(&mut self) -> Result<Duration, ()> {
        let started = runtime::clock::now();
        let leases = self.snapshot();
        let result = runtime::statefile::write_json(&self.s.path, &leases);
        let took = runtime::clock::now().saturating_duration_since(started);
        self.s.stats.write_seconds.observe(took.as_secs_f64());
        match result {
            Ok(()) => {
                self.dirty = false;
                self.s.stats.writes.inc();
                self.publish(leases);
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
                    self.s.control.set_condition("LeasesPersisted", Some(false), "WriteFailed", &e.to_string());
                }
                Err(())
            }
        }
    }
}
