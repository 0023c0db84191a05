//! HTTP on private:7733 (or `--http ADDR:PORT`): `/` (the tree as HTML),
//! `/health.json` (router7's `{"first_error"}` plus the tree; always 200, like
//! router7) and `/metrics`, on the process's HTTP server thread. Handlers only
//! read the last published snapshot, so an answer never waits for a probe
//! (router7 ran the whole tree per request).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use diagd::report::Report;
use runtime::http::{ListenerSet, method_not_allowed, reply, reply_json, reply_text};
use runtime::httpd;
use runtime::metrics::{CONTENT_TYPE, Encoder};
use runtime::{log_warn, netif};

use crate::shell::Counters;

/// diagd's port (router7's).
pub const PORT: u16 = 7733;

/// What the loop publishes for the HTTP threads.
#[derive(Debug, Default)]
pub struct Published {
    /// The latest report (`None` before the loop published one).
    pub report: Option<Report>,
}

/// The listeners.
pub struct Web {
    listen: Option<SocketAddr>,
    pool: Option<ListenerSet>,
}

impl Web {
    /// Listeners on the private addresses, or only on `listen`.
    #[must_use]
    pub fn new(listen: Option<SocketAddr>) -> Self {
        Self { listen, pool: None }
    }

    /// Creates the listeners on `server` (nothing listens until [`Web::refresh`]).
    pub fn start(&mut self, server: &httpd::Server, published: Arc<Mutex<Published>>, counters: Arc<Counters>) {
        let handler: httpd::Handler =
            Arc::new(move |request: &httpd::Request| serve(request, &published, &counters).into());
        let port = self.listen.map_or(PORT, |a| a.port());
        self.pool = Some(ListenerSet::new(server, port, handler));
    }

    /// Listens on the current private addresses (SIGUSR1, SIGHUP: they may have changed).
    pub fn refresh(&mut self, lan: &str) {
        let Some(pool) = self.pool.as_mut() else { return };
        let addrs = match self.listen {
            Some(a) => vec![(a.ip(), 0)],
            None => match netif::private_addrs(lan) {
                Ok(a) => a,
                Err(e) => {
                    log_warn!("http: cannot list addresses: {e}");
                    return;
                }
            },
        };
        for (addr, e) in pool.update(&addrs) {
            log_warn!("http: cannot listen on {addr}: {e} (retried on the next reload)");
        }
    }

    /// Where it listens, for the log.
    #[must_use]
    pub fn describe(&self) -> String {
        let addrs: Vec<String> =
            self.pool.as_ref().map(|p| p.local_addrs().iter().map(ToString::to_string).collect()).unwrap_or_default();
        if addrs.is_empty() { "nothing yet".to_owned() } else { addrs.join(", ") }
    }
}

fn serve(request: &httpd::Request, published: &Mutex<Published>, counters: &Counters) -> httpd::Response {
    if !request.is_get() {
        return method_not_allowed("GET, HEAD");
    }
    let report = published.lock().unwrap_or_else(std::sync::PoisonError::into_inner).report.clone();
    let Some(report) = report else {
        return reply_text(503, "starting");
    };
    match request.path() {
        "/" => reply(200, "text/html; charset=utf-8", report.html()),
        "/health.json" => reply_json(200, &report.health_json()),
        "/metrics" => {
            let mut enc = Encoder::new();
            report.encode(&mut enc);
            counters.encode(&mut enc);
            reply(200, CONTENT_TYPE, enc.finish())
        }
        _ => reply_text(404, "not found"),
    }
}
