//! HTTP on the private addresses, port 8067 (router7's dhcp4d pages):
//!
//! | path | answer |
//! |---|---|
//! | `/` | the lease table as HTML; as JSON with `Accept: application/json` |
//! | `/leases.json` | the lease table as router7's JSON array (what the file says, or is about to) |
//! | `/lease/<hostname>` | that lease as JSON, `X-Lease-Active: true` when renewed within the last third of the lease time |
//! | `/metrics` | Prometheus text |
//!
//! Like router7, the pages answer only clients with private addresses (403
//! otherwise): they show MAC addresses and names of the LAN's devices.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use runtime::http::{method_not_allowed, reply, reply_json, reply_text};
use runtime::httpd::{self, Peer};
use runtime::timefmt::Timestamp;

use dhcp4d::config::StaticLease;
use dhcp4d::stats::Stats;
use dhcp4d::web;

use crate::writer::{LeaseFile, Published};

/// What the pages show, kept current by the loop and the writer.
#[derive(Debug)]
pub struct PageState {
    /// The lease table, shared with the writer.
    pub leases: Published,
    /// Static leases of the configuration.
    pub statics: RwLock<Arc<Vec<StaticLease>>>,
    /// The lease time (for `X-Lease-Active`).
    pub lease_time: RwLock<Duration>,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl PageState {
    /// Empty pages over `stats`.
    #[must_use]
    pub fn new(stats: Arc<Stats>) -> Self {
        Self {
            leases: Arc::new(RwLock::new(LeaseFile::default())),
            statics: RwLock::new(Arc::new(Vec::new())),
            lease_time: RwLock::new(dhcp4d::config::DEFAULT_LEASE),
            stats,
        }
    }

    fn leases(&self) -> Vec<runtime::perm::Dhcp4dLease> {
        self.leases.read().unwrap_or_else(std::sync::PoisonError::into_inner).leases()
    }
}

/// The request handler for a [`runtime::http::ListenerSet`] (runs on the
/// process's HTTP server thread: rendering the table is all it does).
#[must_use]
pub fn handler(state: Arc<PageState>) -> httpd::Handler {
    Arc::new(move |request: &httpd::Request| serve(&state, request).into())
}

fn private_client(request: &httpd::Request) -> bool {
    match request.peer() {
        Peer::Tcp(a) => match a.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(runtime::netif::is_private(IpAddr::V6(v6)), |v4| runtime::netif::is_private(IpAddr::V4(v4))),
            ip => runtime::netif::is_private(ip),
        },
        Peer::Unix => false,
    }
}

fn leases_json(leases: &[runtime::perm::Dhcp4dLease]) -> serde_json::Value {
    serde_json::to_value(leases).unwrap_or(serde_json::Value::Null)
}

fn serve(state: &PageState, request: &httpd::Request) -> httpd::Response {
    if !private_client(request) {
        return reply_text(403, "forbidden: not a private address");
    }
    if !request.is_get() {
        return method_not_allowed("GET, HEAD");
    }
    let now = Timestamp::from_system(runtime::clock::wall_now());
    match request.path() {
        "/" if request.wants_json() => reply_json(200, &leases_json(&state.leases())),
        "/" => {
            let statics = Arc::clone(&state.statics.read().unwrap_or_else(std::sync::PoisonError::into_inner));
            let html = web::render_html(&state.leases(), &statics, now);
            reply(200, "text/html; charset=utf-8", html)
        }
        "/leases.json" => reply_json(200, &leases_json(&state.leases())),
        "/metrics" => reply(200, runtime::metrics::CONTENT_TYPE, runtime::metrics::render(state.stats.as_ref())),
        p if p.starts_with("/lease/") => {
            let name = runtime::http::percent_decode(&p["/lease/".len()..]);
            let leases = state.leases();
            let Some(lease) = web::find_by_hostname(&leases, &name) else {
                return reply_text(404, "no lease found");
            };
            let lease_time = *state.lease_time.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let active = web::lease_active(lease, now, lease_time);
            let body = serde_json::to_string(lease).unwrap_or_default();
            reply(200, "application/json", body).with_header("X-Lease-Active", if active { "true" } else { "false" })
        }
        _ => reply_text(404, "not found"),
    }
}
