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

use runtime::http::{RequestHandler, header, respond, respond_json};
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

/// The request handler for a [`runtime::http::ListenerPool`].
#[must_use]
pub fn handler(state: Arc<PageState>) -> RequestHandler {
    Arc::new(move |request| serve(&state, request))
}

fn private_client(request: &tiny_http::Request) -> bool {
    request.remote_addr().is_some_and(|a| match a.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(runtime::netif::is_private(IpAddr::V6(v6)), |v4| runtime::netif::is_private(IpAddr::V4(v4))),
        ip => runtime::netif::is_private(ip),
    })
}

fn leases_json(leases: &[runtime::perm::Dhcp4dLease]) -> serde_json::Value {
    serde_json::to_value(leases).unwrap_or(serde_json::Value::Null)
}

fn serve(state: &PageState, request: tiny_http::Request) {
    if !private_client(&request) {
        respond(request, 403, "text/plain", "forbidden: not a private address\n".into());
        return;
    }
    if !matches!(request.method(), tiny_http::Method::Get | tiny_http::Method::Head) {
        respond(request, 405, "text/plain", "method not allowed\n".into());
        return;
    }
    let path = request.url().split('?').next().unwrap_or("/").to_owned();
    let now = Timestamp::from_system(runtime::clock::wall_now());
    match path.as_str() {
        "/" if runtime::http::wants_json(&request) => respond_json(request, 200, &leases_json(&state.leases())),
        "/" => {
            let statics = Arc::clone(&state.statics.read().unwrap_or_else(std::sync::PoisonError::into_inner));
            let html = web::render_html(&state.leases(), &statics, now);
            respond(request, 200, "text/html; charset=utf-8", html);
        }
        "/leases.json" => respond_json(request, 200, &leases_json(&state.leases())),
        "/metrics" => {
            respond(request, 200, runtime::metrics::CONTENT_TYPE, runtime::metrics::render(state.stats.as_ref()));
        }
        p if p.starts_with("/lease/") => {
            let name = runtime::http::percent_decode(&p["/lease/".len()..]);
            let leases = state.leases();
            let Some(lease) = web::find_by_hostname(&leases, &name) else {
                respond(request, 404, "text/plain", "no lease found\n".into());
                return;
            };
            let lease_time = *state.lease_time.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let active = web::lease_active(lease, now, lease_time);
            let body = serde_json::to_string(lease).unwrap_or_default();
            let response = tiny_http::Response::from_string(body)
                .with_header(header("Content-Type", "application/json"))
                .with_header(header("X-Lease-Active", if active { "true" } else { "false" }))
                .with_header(header("Cache-Control", "no-store"));
            let _ = request.respond(response);
        }
        _ => respond(request, 404, "text/plain", "not found\n".into()),
    }
}
