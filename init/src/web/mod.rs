//! The web interface on private:80: overview, per-service pages with live logs
//! (Server-Sent Events), stop/restart, reboot and power-off, `/metrics`; every
//! page also as JSON with `Accept: application/json`.
//!
//! Every request needs HTTP basic auth as user `router` with the router
//! password (constant-time compare, 401 otherwise) — also the assets and
//! `/metrics`. Changes are POSTs protected against cross-site requests:
//! - a per-boot random token must come either as the form field `csrf` together
//!   with the same value in the `router7_csrf` cookie (set, `SameSite=Strict`
//!   and `HttpOnly`, by every page), or as an `X-CSRF-Token` header (scripts;
//!   the token is in the overview JSON); and
//! - an `Origin` (or, without one, `Referer`) header, when sent, must name this
//!   host.
//!
//! | path | GET | POST |
//! |---|---|---|
//! | `/` | overview (HTML / JSON) | |
//! | `/services/<name>` | one service, its status and log (HTML / JSON); `init` and `kernel` are log-only | |
//! | `/services/<name>/log` | `text/event-stream`: live lines; JSON: `?since=&limit=`; else plain text | |
//! | `/services/<name>/stop` · `restart` · `start` | | act, then 303 to the page (JSON: 202) |
//! | `/reboot` · `/poweroff` | | act |
//! | `/metrics` | Prometheus text | |
//! | `/static/style.css` · `/static/app.js` | assets | |
//! | `/update/…` | features, status | uploads and activation: [`crate::update::web`] (no CSRF token: see there) |
//!
//! Routing ([`Site::route`]) is a function of the request's parts, tested
//! without sockets; [`Site::handle`] does the IO, and streams events on a
//! thread of their own (at most [`MAX_EVENT_STREAMS`] at once).

pub mod assets;
pub mod pages;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};

use runtime::http::BasicAuth;
use runtime::httpd::{self, Conn, Outcome, Response};

use crate::logs::LogPage;
use crate::status::{Refusal, Request, Shared};

/// Server-Sent Event streams served at once; more get 503.
pub const MAX_EVENT_STREAMS: usize = 8;
/// A comment line keeps idle streams alive (and finds closed ones) this often.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// The cookie that carries the CSRF token.
pub const CSRF_COOKIE: &str = "router7_csrf";
/// Largest request body taken (forms; update uploads stream instead): larger
/// ones get 413 unread.
pub const MAX_BODY: usize = 8 * 1024;
/// Lines shown when a page loads.
const PAGE_LINES: usize = 500;

/// The request parts routing looks at.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// `GET`, `POST`, ….
    pub method: String,
    /// Path and query.
    pub url: String,
    /// Headers (names as sent).
    pub headers: Vec<(String, String)>,
    /// The body (POST forms).
    pub body: Vec<u8>,
}

impl Incoming {
    /// The value of header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn accepts(&self, what: &str) -> bool {
        self.header("Accept").is_some_and(|a| a.contains(what))
    }

    /// The value of cookie `name`.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.header("Cookie")?.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }
}

/// What to answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An HTML page (sets the CSRF cookie).
    Page(u16, String),
    /// JSON.
    Json(u16, Value),
    /// Text of some type.
    Text(u16, &'static str, String),
    /// 303 See Other.
    Redirect(String),
    /// 401 with a challenge.
    Unauthorized,
    /// A live stream of `name`'s log lines after `since`.
    Events {
        /// The log.
        name: String,
        /// Lines after this one.
        since: u64,
    },
}

/// The web interface.
#[derive(Debug, Clone)]
pub struct Site {
    shared: Arc<Shared>,
    auth: Arc<RwLock<Option<BasicAuth>>>,
    csrf: String,
    streams: Arc<AtomicUsize>,
}

/// A new random CSRF token (128 bits from getrandom(2), as hex).
#[must_use]
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            // getrandom only fails on bad arguments; if it ever does, a fresh
            // token per boot from the clock is still unknown to other sites.
            Err(_) => {
                let t = runtime::clock::wall_now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                bytes.copy_from_slice(&t.as_nanos().to_le_bytes());
                break;
            }
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes an `application/x-www-form-urlencoded` body.
#[must_use]
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (runtime::http::percent_decode(k), runtime::http::percent_decode(v))
        })
        .collect()
}

/// `scheme://host[:port]` of an Origin or Referer value, lower-cased.
fn authority(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(rest[..end].to_ascii_lowercase())
}

/// Why a POST was refused as a possible cross-site request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfError {
    /// No token, or the wrong one.
    Token,
    /// The form token does not match the cookie.
    Cookie,
    /// `Origin`/`Referer` names another site.
    Origin,
}

/// Checks a POST against cross-site request forgery (see the module docs).
pub fn check_csrf(req: &Incoming, token: &str) -> Result<(), CsrfError> {
    let origin = req.header("Origin");
    // Browsers send "null" from sandboxed frames and data: URLs: never ours.
    if origin == Some("null") {
        return Err(CsrfError::Origin);
    }
    if let Some(source) = origin.or_else(|| req.header("Referer")) {
        let host = req.header("Host").map(str::to_ascii_lowercase);
        if host.is_none() || authority(source) != host {
            return Err(CsrfError::Origin);
        }
    }
    let eq = |given: &str| runtime::http::constant_time_eq(given.as_bytes(), token.as_bytes());
    if let Some(header) = req.header("X-CSRF-Token") {
        return if eq(header) { Ok(()) } else { Err(CsrfError::Token) };
    }
    let fields = form_fields(&req.body);
    let field = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).ok_or(CsrfError::Token)?;
    if !eq(field) {
        return Err(CsrfError::Token);
    }
    match req.cookie(CSRF_COOKIE) {
        Some(c) if eq(c) => Ok(()),
        _ => Err(CsrfError::Cookie),
    }
}

fn not_found(json: bool, what: &str) -> Reply {
    if json {
        Reply::Json(404, json!({"error": what}))
    } else {
        Reply::Text(404, "text/plain; charset=utf-8", format!("{what}\n"))
    }
}

fn parse_query(url: &str) -> (&str, Vec<(String, String)>) {
    runtime::control::split_query(url)
}

impl Site {
    /// A site over `shared` with `auth` (re-read on SIGHUP) and a per-boot token.
    #[must_use]
    pub fn new(shared: Arc<Shared>, auth: Arc<RwLock<Option<BasicAuth>>>, csrf: String) -> Self {
        Self { shared, auth, csrf, streams: Arc::new(AtomicUsize::new(0)) }
    }

    /// The CSRF token.
    #[must_use]
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    fn authorized(&self, req: &Incoming) -> bool {
        let auth = self.auth.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        auth.as_ref().is_some_and(|a| a.check_header(req.header("Authorization")))
    }

    /// Routes a request.
    #[must_use]
    pub fn route(&self, req: &Incoming) -> Reply {
        if !self.authorized(req) {
            return Reply::Unauthorized;
        }
        let json = req.accepts("application/json");
        let (path, query) = parse_query(&req.url);
        let get = req.method == "GET" || req.method == "HEAD";
        let post = req.method == "POST";
        let segments: Vec<String> =
            path.trim_start_matches('/').split('/').map(runtime::http::percent_decode).collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (segs.as_slice(), get, post) {
            ([""], true, _) => self.overview(json),
            (["metrics"], true, _) => Reply::Text(200, runtime::metrics::CONTENT_TYPE, self.shared.metrics()),
            (["static", "style.css"], true, _) => Reply::Text(200, "text/css; charset=utf-8", assets::STYLE.into()),
            (["static", "app.js"], true, _) => {
                Reply::Text(200, "text/javascript; charset=utf-8", assets::SCRIPT.into())
            }
            (["services", name], true, _) => self.service(name, json),
            (["services", name, "log"], true, _) => self.log(name, req, &query, json),
            (["services", name, action @ ("stop" | "restart" | "start")], _, true) => {
                let name = (*name).to_owned();
                let request = match *action {
                    "stop" => Request::Stop(name.clone()),
                    "start" => Request::Start(name.clone()),
                    _ => Request::Restart(name.clone()),
                };
                self.act(req, json, request, &format!("/services/{}", pages::url_segment(&name)))
            }
            (["reboot"], _, true) => self.act(req, json, Request::Reboot, "/"),
            (["poweroff"], _, true) => self.act(req, json, Request::Poweroff, "/"),
            ([""] | ["metrics"] | ["static", _] | ["services", _] | ["services", _, "log"], false, _) => {
                Reply::Json(405, json!({"error": "use GET"}))
            }
            (["services", _, "stop" | "restart" | "start"] | ["reboot"] | ["poweroff"], _, false) => {
                Reply::Json(405, json!({"error": "use POST"}))
            }
            _ => not_found(json, "not found"),
        }
    }

    fn overview(&self, json: bool) -> Reply {
        let o = self.shared.overview(true);
        if json {
            let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
            if let Some(map) = v.as_object_mut() {
                map.insert("csrf_token".into(), json!(self.csrf));
            }
            Reply::Json(200, v)
        } else {
            Reply::Page(200, pages::overview(&o, &self.csrf))
        }
    }

    fn service(&self, name: &str, json: bool) -> Reply {
        let tail = |n| self.shared.logs.tail(name, n).unwrap_or(LogPage { lines: vec![], next: 0, missed: 0 });
        match self.shared.service(name) {
            Some(s) if json => {
                let mut v = serde_json::to_value(&s).unwrap_or(Value::Null);
                if let Some(map) = v.as_object_mut() {
                    map.insert("log_tail".into(), json!(tail(100).lines));
                }
                Reply::Json(200, v)
            }
            Some(s) => Reply::Page(200, pages::service(&s, &tail(PAGE_LINES), &self.csrf)),
            None if self.shared.has_log(name) => {
                if json {
                    Reply::Json(200, json!({"name": name, "log_tail": tail(100).lines}))
                } else {
                    Reply::Page(200, pages::log_only(name, &tail(PAGE_LINES)))
                }
            }
            None => not_found(json, &format!("no service {name:?}")),
        }
    }

    fn log(&self, name: &str, req: &Incoming, query: &[(String, String)], json: bool) -> Reply {
        if !self.shared.has_log(name) {
            return not_found(json, &format!("no log {name:?}"));
        }
        let value = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let since = req.header("Last-Event-ID").or_else(|| value("since")).and_then(|v| v.parse().ok());
        if req.accepts("text/event-stream") {
            let since = since.unwrap_or_else(|| self.shared.logs.stats(name).map_or(0, |(_, _, last)| last));
            return Reply::Events { name: name.to_owned(), since };
        }
        let limit = value("limit").and_then(|v| v.parse().ok()).unwrap_or(1000).min(100_000);
        let page = match since {
            Some(s) => self.shared.logs.after(name, s, limit),
            None => self.shared.logs.tail(name, limit),
        };
        let Some(page) = page else { return not_found(json, "no log") };
        if json {
            Reply::Json(200, serde_json::to_value(&page).unwrap_or(Value::Null))
        } else {
            let text: String =
                page.lines.iter().map(|l| format!("{} {} {}\n", l.time, l.stream.name(), l.text)).collect();
            Reply::Text(200, "text/plain; charset=utf-8", text)
        }
    }

    fn act(&self, req: &Incoming, json: bool, request: Request, back: &str) -> Reply {
        if let Err(e) = check_csrf(req, &self.csrf) {
            let why = match e {
                CsrfError::Token => "missing or wrong CSRF token",
                CsrfError::Cookie => "the CSRF cookie does not match",
                CsrfError::Origin => "cross-site request refused",
            };
            return Reply::Json(403, json!({"error": why}));
        }
        let power = match &request {
            Request::Reboot => Some("Rebooting"),
            Request::Poweroff => Some("Powering off"),
            _ => None,
        };
        match self.shared.request(request) {
            Ok(()) if json => Reply::Json(202, json!({"accepted": true})),
            Ok(()) => match power {
                Some(title) => Reply::Page(
                    202,
                    pages::message(title, "Services are being stopped; the router will be back in a moment."),
                ),
                None => Reply::Redirect(back.to_owned()),
            },
            Err(Refusal::UnknownService) => not_found(json, "no such service"),
            Err(e @ Refusal::ShuttingDown) => Reply::Json(409, json!({"accepted": false, "error": e.to_string()})),
        }
    }

    /// Answers one request, on the HTTP server's thread: what may block
    /// (pages that ask every service for its status, live logs, uploads)
    /// goes to a stream thread.
    #[must_use]
    pub fn handle(&self, request: &httpd::Request) -> Outcome {
        if request.path().starts_with("/update/")
            && let Some(updater) = self.shared.update.get()
        {
            // Update bodies are streamed to the disk, never read into memory here.
            let authorized = self
                .auth
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .is_some_and(|a| a.authorizes(request));
            return crate::update::web::handle(updater, request, authorized);
        }
        // Every other body is a small form: one the server did not read
        // whole (it is larger than the listener's limit, or chunked) is refused
        // unread, before anything looks at it.
        if !request.body_read() || request.body().len() > MAX_BODY {
            return reply(
                Reply::Json(413, json!({"error": format!("request bodies are limited to {MAX_BODY} bytes")})),
                "",
            )
            .into();
        }
        let incoming = Incoming {
            method: request.method().to_owned(),
            url: request.target().to_owned(),
            headers: request.headers().to_vec(),
            body: if request.is("POST") { request.body().to_vec() } else { Vec::new() },
        };
        if !asks_services(&incoming) {
            return match self.route(&incoming) {
                Reply::Events { name, since } => self.stream(name, since),
                r => reply(r, &self.csrf).into(),
            };
        }
        let site = self.clone();
        Outcome::stream(move |_, conn| {
            let _ = conn.respond(&reply(site.route(&incoming), &site.csrf));
        })
    }

    fn stream(&self, name: String, since: u64) -> Outcome {
        if self.streams.fetch_add(1, Ordering::AcqRel) >= MAX_EVENT_STREAMS {
            self.streams.fetch_sub(1, Ordering::AcqRel);
            return reply(Reply::Json(503, json!({"error": "too many live log streams"})), &self.csrf).into();
        }
        // Counted until dropped: also when the server drops the stream unrun.
        let slot = StreamSlot(Arc::clone(&self.streams));
        let shared = Arc::clone(&self.shared);
        Outcome::stream(move |_, conn| {
            let _slot = slot;
            let _ = stream_events(conn, &shared, &name, since);
        })
    }
}

/// Whether answering may block on the services (each asked for its status).
fn asks_services(req: &Incoming) -> bool {
    let (path, _) = parse_query(&req.url);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(segments.as_slice(), [""] | ["services", _])
}

/// A live log stream, counted in [`Site`]'s streams while it exists.
struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn stream_events(conn: Conn, shared: &Shared, name: &str, mut since: u64) -> std::io::Result<()> {
    let headers =
        [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")];
    let Some(mut w) = conn.stream(200, &headers)? else { return Ok(()) };
    w.write_all(b"retry: 2000\n\n")?;
    loop {
        let Some(page) = shared.log_after(name, since, 500, KEEPALIVE) else { return w.finish() };
        let mut out = String::new();
        if page.missed > 0 {
            out.push_str(&format!("event: missed\ndata: {}\n\n", page.missed));
        }
        for line in &page.lines {
            let data = serde_json::to_string(line).unwrap_or_default();
            out.push_str(&format!("id: {}\nevent: line\ndata: {data}\n\n", line.seq));
        }
        if out.is_empty() {
            out.push_str(": keepalive\n\n");
        }
        since = page.next;
        w.write_all(out.as_bytes())?;
    }
}

/// The response for `reply`, with the security headers every answer carries
/// (HTML pages also set the CSRF cookie).
fn reply(reply: Reply, csrf: &str) -> Response {
    let security = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        (
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
        ),
        ("Cache-Control", "no-store"),
    ];
    let (code, ctype, body, extra): (u16, &str, String, Vec<(&str, String)>) = match reply {
        Reply::Page(code, html) => (
            code,
            "text/html; charset=utf-8",
            html,
            vec![("Set-Cookie", format!("{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict"))],
        ),
        Reply::Json(code, v) => {
            let mut text = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "null".into());
            text.push('\n');
            (code, "application/json", text, vec![])
        }
        Reply::Text(code, ctype, text) => (code, ctype, text, vec![]),
        Reply::Redirect(to) => (303, "text/plain; charset=utf-8", format!("see {to}\n"), vec![("Location", to)]),
        Reply::Unauthorized => (
            401,
            "text/plain; charset=utf-8",
            "authentication required\n".into(),
            vec![("WWW-Authenticate", "Basic realm=\"router7\", charset=\"UTF-8\"".into())],
        ),
        Reply::Events { .. } => (500, "text/plain", "internal error\n".into(), vec![]),
    };
    let mut response = Response::with_body(code, ctype, body);
    for (k, v) in security {
        response = response.with_header(k, v);
    }
    for (k, v) in extra {
        response = response.with_header(k, &v);
    }
    response
}

#[cfg(test)]
mod tests;
