//! Writes `/perm/dhcp4d/leases.json` on its own thread, so the event loop
//! keeps answering while the file is encoded and synced.
//!
//! The loop sends numbered batches of lease changes and events. The writer
//! applies every batch waiting for it to its copy of the table and writes the
//! file once for all of them (group commit): under load one write covers
//! hundreds of ACKs, while a lone change is written at once. Two writes start
//! at least `interval` apart. After a write it publishes the table to the HTTP
//! pages, tells dnsd (SIGUSR1), emits the batches' events, and reports the
//! last batch it covered; the loop then sends the ACKs that waited for it
//! (RFC 2131 §3.1 step 4: commit the binding, then ACK).
//!
//! A failed write is reported (log, metrics, the `LeasesPersisted`
//! condition) and retried every few seconds, but the batches still count as
//! done: a LAN without DHCP is worse than a lease that might be forgotten.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use runtime::control::Control;
use runtime::event_loop::{LoopWaker, Signal};
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
        /// Events to emit once the changes are on disk.
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
    /// Wakes the loop when batches are done.
    pub waker: LoopWaker,
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

    /// The last batch number whose changes are on disk.
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
    last_start: Option<std::time::Instant>,
}

impl Worker {
    fn new(s: Settings, done: Arc<AtomicU64>) -> Self {
        Self {
            s,
            done,
            server: Ipv4Addr::UNSPECIFIED,
            table: BTreeMap::new(),
            dirty: false,
            failing: None,
            last_start: None,
        }
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
        loop {
            let first = if self.dirty {
                match rx.recv_timeout(RETRY) {
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
            if let Some(j) = first {
                stop |= self.apply(j, &mut seq, &mut events);
            }
            while let Ok(j) = rx.try_recv() {
                stop |= self.apply(j, &mut seq, &mut events);
            }
            // Keep writes `interval` apart; what arrives meanwhile joins this write.
            if self.dirty && !stop {
                let now = runtime::clock::now();
                if let Some(wait) = self.last_start.map(|t| (t + self.s.interval).saturating_duration_since(now))
                    && !wait.is_zero()
                {
                    std::thread::sleep(wait);
                    while let Ok(j) = rx.try_recv() {
                        stop |= self.apply(j, &mut seq, &mut events);
                    }
                }
            }
            if self.dirty {
                self.write();
            }
            for e in &events {
                self.s.control.emit(e.topic(), e.attributes());
            }
            self.done.store(seq, Ordering::Release);
            self.s.waker.wake();
            if stop {
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

    fn write(&mut self) {
        let started = runtime::clock::now();
        self.last_start = Some(started);
        let leases = self.snapshot();
        let result = runtime::statefile::write_json(&self.s.path, &leases);
        self.s.stats.write_seconds.observe(runtime::clock::now().saturating_duration_since(started).as_secs_f64());
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
            }
            Err(e) => {
                self.s.stats.write_errors.inc();
                runtime::log_error!("cannot write the leases: {e}; retrying every {} s", RETRY.as_secs());
                if self.failing != Some(true) {
                    self.failing = Some(true);
                    self.s.control.set_condition("LeasesPersisted", Some(false), "WriteFailed", &e.to_string());
                }
            }
        }
    }
}
