//! The HTTP side: requests on private:5022 (on the process's HTTP server
//! thread, through `runtime::http::ListenerSet`), and one thread per
//! streaming client (`runtime::httpd`'s stream threads).
//!
//! A client thread takes batches from the hub, encodes them and writes them
//! to its socket. Only that thread ever blocks on the client: the capture
//! loop appends to the client's bounded queue and moves on, so a slow or
//! stalled reader costs its own packets, never the capture. When the stream
//! is idle the thread writes statistics every [`KEEPALIVE`], which also finds
//! clients that went away without a word; a client that takes nothing for
//! `runtime::httpd`'s stream timeout (60 s) is cut off.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use captured::hub::{BATCH, Hub, Selection, SubscriberId};
use captured::pcapng::StreamEncoder;
use captured::request::{Route, StreamRequest, route};
use captured::ring::Iface;
use runtime::control::Control;
use runtime::http::{BasicAuth, method_not_allowed, reply, reply_text};
use runtime::httpd::{self, Conn, Outcome};
use runtime::metrics::{Encoder, Metrics};
use runtime::{clock, log_info};
use serde_json::json;

/// How long a stream may be silent before statistics are written.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// Counters the HTTP side keeps.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Requests refused for want of the right password.
    pub unauthorized: AtomicU64,
    /// Streams refused because `max_clients` were streaming.
    pub refused: AtomicU64,
    /// Streams served.
    pub streams: AtomicU64,
}

/// What the loop, the listeners and the client threads share.
#[derive(Debug)]
pub struct Shared {
    hub: Mutex<Hub>,
    changed: Condvar,
    /// `None` while `/perm/router/password` is missing or empty.
    pub auth: RwLock<Option<BasicAuth>>,
    /// Interface names (uplink, LAN).
    pub names: [String; 2],
    /// The most streaming clients.
    pub max_clients: AtomicUsize,
    clients: AtomicUsize,
    /// Receive errors per interface ([`Iface::index`]).
    pub receive_errors: [AtomicU64; 2],
    /// Whether each interface's socket is open (1) or not (0).
    pub capturing: [AtomicU64; 2],
    /// HTTP counters.
    pub http: HttpCounters,
    control: Control,
}

impl Shared {
    /// Shares `hub`.
    #[must_use]
    pub fn new(hub: Hub, names: [String; 2], max_clients: usize, control: Control) -> Self {
        Self {
            hub: Mutex::new(hub),
            changed: Condvar::new(),
            auth: RwLock::new(None),
            names,
            max_clients: AtomicUsize::new(max_clients),
            clients: AtomicUsize::new(0),
            receive_errors: [AtomicU64::new(0), AtomicU64::new(0)],
            capturing: [AtomicU64::new(0), AtomicU64::new(0)],
            http: HttpCounters::default(),
            control,
        }
    }

    /// The hub, locked. A panicking client thread cannot leave it half-changed
    /// (every hub method completes or does nothing), so a poisoned lock is used as is.
    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the client threads (new packets, or the hub closed).
    pub fn wake_clients(&self) {
        self.changed.notify_all();
    }

    fn names(&self) -> [&str; 2] {
        [self.names[0].as_str(), self.names[1].as_str()]
    }
}

/// Wall-clock nanoseconds since the Unix epoch (0 before it: a clock that
/// has not been set yet is 1970, never earlier).
#[must_use]
pub fn wall_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Metrics for Shared {
    fn encode(&self, enc: &mut Encoder) {
        let stats = self.hub().stats();
        for iface in Iface::ALL {
            let i = iface.index();
            let l = [("interface", self.names[i].as_str())];
            enc.counter("captured_packets_total", "Packets captured (kept by the filter).", &l, stats.captured[i]);
            enc.counter("captured_bytes_total", "Bytes of captured packets, on the wire.", &l, stats.captured_bytes[i]);
            enc.counter(
                "captured_receive_errors_total",
                "Errors reading the packet socket.",
                &l,
                self.receive_errors[i].load(Ordering::Relaxed),
            );
            enc.gauge(
                "captured_interface_capturing",
                "Whether the interface's packet socket is open.",
                &l,
                self.capturing[i].load(Ordering::Relaxed) as f64,
            );
        }
        enc.counter(
            "captured_ring_evicted_total",
            "Packets dropped from the ring to keep its bounds.",
            &[],
            stats.evicted,
        );
        enc.gauge("captured_ring_packets", "Packets in the ring.", &[], stats.ring_packets as f64);
        enc.gauge(
            "captured_ring_bytes",
            "Bytes in the ring (64 bytes of overhead per packet included).",
            &[],
            stats.ring_bytes as f64,
        );
        enc.gauge("captured_clients", "Streaming clients.", &[], stats.clients as f64);
        enc.counter(
            "captured_client_dropped_packets_total",
            "Packets not delivered to streaming clients that read too slowly.",
            &[],
            stats.client_drops,
        );
        enc.counter("captured_streams_total", "Streams started.", &[], self.http.streams.load(Ordering::Relaxed));
        enc.counter(
            "captured_streams_refused_total",
            "Streams refused because the most clients were streaming.",
            &[],
            self.http.refused.load(Ordering::Relaxed),
        );
        enc.counter(
            "captured_unauthorized_total",
            "Requests refused for a missing or wrong password.",
            &[],
            self.http.unauthorized.load(Ordering::Relaxed),
        );
    }
}

/// Handles one request (on the server's thread; streams get their own).
pub fn handle(shared: &Arc<Shared>, request: &httpd::Request) -> Outcome {
    let route = route(request.method(), request.target(), shared.names());
    if route != Route::Metrics {
        let auth = shared.auth.read().unwrap_or_else(PoisonError::into_inner);
        match auth.as_ref().map(|a| a.authorizes(request)) {
            None => return reply_text(503, "no router password is set (/perm/router/password)").into(),
            Some(false) => {
                shared.http.unauthorized.fetch_add(1, Ordering::Relaxed);
                return BasicAuth::challenge_response().into();
            }
            Some(true) => {}
        }
    }
    match route {
        Route::Metrics => reply(200, "text/plain; version=0.0.4", runtime::metrics::render(shared.as_ref())).into(),
        Route::Capture(r) => start_stream(shared, r),
        Route::BadRequest(why) => reply_text(400, &why).into(),
        Route::NotFound => reply_text(404, "not found; the stream is GET /capture.pcapng").into(),
        Route::MethodNotAllowed(allow) => method_not_allowed(allow).into(),
    }
}

/// A client's place in the hub, given back when dropped (also when the
/// server could not start its thread and dropped the stream unrun).
struct Subscription {
    shared: Arc<Shared>,
    id: SubscriberId,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.hub().unsubscribe(self.id);
        self.shared.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

fn start_stream(shared: &Arc<Shared>, r: StreamRequest) -> Outcome {
    let max = shared.max_clients.load(Ordering::Relaxed);
    if shared.clients.fetch_add(1, Ordering::AcqRel) >= max {
        shared.clients.fetch_sub(1, Ordering::AcqRel);
        shared.http.refused.fetch_add(1, Ordering::Relaxed);
        return reply_text(503, &format!("{max} clients are streaming already")).into();
    }
    // Subscribed now, so the stream starts from this moment's ring.
    let subscription = Subscription { shared: Arc::clone(shared), id: shared.hub().subscribe(r.selection, r.replay) };
    Outcome::stream(move |_, conn| stream(&subscription, conn, r.selection))
}

enum Next {
    Packets(Vec<captured::hub::Delivered>),
    Idle,
    End,
}

fn stream(subscription: &Subscription, conn: Conn, selection: Selection) {
    let (shared, id) = (subscription.shared.as_ref(), subscription.id);
    let remote = conn.peer().to_string();
    let iface_names: Vec<&str> = selection.ifaces().iter().map(|i| shared.names[i.index()].as_str()).collect();
    let headers = [("Content-Type", "application/x-pcapng"), ("Cache-Control", "no-store")];
    let mut out = match conn.stream(200, &headers) {
        Ok(Some(out)) => out,
        // HEAD, or the client is gone.
        Ok(None) | Err(_) => return,
    };
    shared.http.streams.fetch_add(1, Ordering::Relaxed);
    log_info!("streaming {} to {remote}", iface_names.join(" and "));
    shared.control.emit("captured.client.connected", json!({"remote": remote, "interfaces": iface_names}));
    let encoder = StreamEncoder::new(selection, shared.names());
    let mut result = out.write_all(&encoder.header());
    let mut buf = Vec::with_capacity(64 << 10);
    let mut ended = false;
    while result.is_ok() {
        buf.clear();
        match next(shared, id) {
            Next::End => {
                ended = true;
                break;
            }
            Next::Idle => {
                let (captured, counts) = {
                    let hub = shared.hub();
                    (hub.stats().captured, hub.counts(id).unwrap_or_default())
                };
                encoder.statistics(&mut buf, wall_ns(clock::wall_now()), captured, counts);
            }
            Next::Packets(batch) => {
                for d in &batch {
                    encoder.packet(&mut buf, d);
                }
            }
        }
        result = out.write_all(&buf);
    }
    if ended {
        result = out.finish();
    }
    let counts = shared.hub().counts(id).unwrap_or_default();
    let why = match &result {
        Ok(()) => "the service is stopping".to_owned(),
        Err(e) => e.to_string(),
    };
    log_info!(
        "stream to {remote} ended ({why}): {} packets delivered, {} dropped for it",
        counts.delivered,
        counts.dropped
    );
    shared.control.emit(
        "captured.client.disconnected",
        json!({"remote": remote, "delivered": counts.delivered, "dropped": counts.dropped}),
    );
}

/// Waits for the next batch, at most [`KEEPALIVE`].
fn next(shared: &Shared, id: SubscriberId) -> Next {
    let deadline = clock::now() + KEEPALIVE;
    let mut hub = shared.hub();
    loop {
        match hub.next(id, BATCH) {
            None => return Next::End,
            Some(batch) if !batch.is_empty() => return Next::Packets(batch),
            Some(_) => {}
        }
        let left = deadline.saturating_duration_since(clock::now());
        if left.is_zero() {
            return Next::Idle;
        }
        hub = shared.changed.wait_timeout(hub, left).unwrap_or_else(PoisonError::into_inner).0;
    }
}
