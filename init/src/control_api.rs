//! init's control socket, `<run>/router/init.sock` (mode 0600, root only): the
//! standard control API of every service (runtime::control), with init's own
//! endpoints added in front of it. `routerctl` speaks this.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/status` | the standard fields (`name`, `phase`, `since`, `conditions`) plus the overview: system facts and every service with its own `/v1/status` (or `status_error`) |
//! | `GET /v1/services` | every service, without asking them |
//! | `GET /v1/update` | both slots (version, build time, hashes), which is active, default and on trial, the last update |
//! | `GET /v1/services/<name>` | one service, with its own status |
//! | `GET /v1/services/<name>/logs?since=SEQ&limit=N&wait=SECONDS` | `{"lines":[{seq,time,stream,text}],"next","missed"}`, long-polling up to `wait` (≤ 60 s); `init` and `kernel` too |
//! | `POST /v1/services/<name>/stop` · `restart` · `start` | 202 `{"accepted":true}`; 404 unknown service; 409 shutting down |
//! | `POST /v1/system/reboot` · `poweroff` | 202; as PID 1 the machine goes down, otherwise init stops everything and exits |
//! | `GET /v1/healthz`, `GET /v1/events`, `POST /v1/commands/reload` | standard (reload = re-read the password, refresh listeners) |
//! | `POST /v1/commands/stop` | as PID 1: 409 (use `/v1/system/…`); otherwise a clean stop |
//!
//! Events: `init.service.started`, `init.service.restarted`, `init.service.exited`,
//! `init.service.crashloop`, `init.shutdown`; updates: `init.update.uploaded`,
//! `init.update.upload_failed`, `init.update.activated`, `init.update.committed`,
//! `init.update.trial_failed`, `init.update.rolled_back`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use runtime::control::{Control, HttpExtension};
use runtime::http::reply_json;
use runtime::httpd::{self, Outcome};

use crate::status::{Mode, Refusal, Request, Shared};

/// Longest long-poll for logs.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

fn respond(code: u16, body: &Value) -> Outcome {
    reply_json(code, body).into()
}

/// Answers on a stream thread: for what may block (asking services for
/// their status, long polls), never on the server's thread.
fn later(f: impl FnOnce() -> (u16, Value) + Send + 'static) -> Outcome {
    Outcome::stream(move |_, conn| {
        let (code, body) = f();
        let _ = conn.respond(&reply_json(code, &body));
    })
}

/// The standard status merged with the overview.
#[must_use]
pub fn status(control: &Control, shared: &Shared) -> Value {
    let mut doc = control.status();
    if let (Some(map), Ok(Value::Object(overview))) = (doc.as_object_mut(), serde_json::to_value(shared.overview(true)))
    {
        for (k, v) in overview {
            map.entry(k).or_insert(v);
        }
    }
    doc
}

fn answer(result: Result<(), Refusal>) -> Outcome {
    match result {
        Ok(()) => respond(202, &json!({"accepted": true})),
        Err(e @ Refusal::UnknownService) => respond(404, &json!({"accepted": false, "error": e.to_string()})),
        Err(e @ Refusal::ShuttingDown) => respond(409, &json!({"accepted": false, "error": e.to_string()})),
    }
}

/// The extension for [`Control::listen_with`]; `None` leaves a request to
/// the standard API.
#[must_use]
pub fn extension(control: Control, shared: Arc<Shared>) -> HttpExtension {
    Arc::new(move |request: &httpd::Request| {
        let (path, query) = (request.path(), request.query());
        let get = request.is("GET");
        let post = request.is("POST");
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let outcome = match (segments.as_slice(), get, post) {
            (["v1", "status"], true, _) => {
                let (control, shared) = (control.clone(), Arc::clone(&shared));
                later(move || (200, status(&control, &shared)))
            }
            (["v1", "services"], true, _) => respond(200, &json!({"services": shared.services(false)})),
            (["v1", "update"], true, _) => match shared.update.get() {
                Some(u) => respond(200, &json!(u.status())),
                None => respond(503, &json!({"error": "updates are not started"})),
            },
            (["v1", "services", name], true, _) => {
                let (name, shared) = ((*name).to_owned(), Arc::clone(&shared));
                later(move || match shared.service(&name) {
                    Some(s) => (200, json!(s)),
                    None => (404, json!({"error": format!("no service {name:?}")})),
                })
            }
            (["v1", "services", name, "logs"], true, _) => {
                let value = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
                let since: Option<u64> = value("since").and_then(|v| v.parse().ok());
                let limit = value("limit").and_then(|v| v.parse().ok()).unwrap_or(1000).min(100_000);
                let wait = value("wait")
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|w| w.is_finite() && *w >= 0.0)
                    .map_or(Duration::ZERO, |w| Duration::from_secs_f64(w.min(MAX_WAIT.as_secs_f64())));
                let (name, shared) = ((*name).to_owned(), Arc::clone(&shared));
                let page = move || {
                    let page = match since {
                        Some(s) => shared.log_after(&name, s, limit, wait),
                        None => shared.logs.tail(&name, limit),
                    };
                    match page {
                        Some(p) => (200, json!(p)),
                        None => (404, json!({"error": format!("no log {name:?}")})),
                    }
                };
                if since.is_some() && !wait.is_zero() {
                    later(page)
                } else {
                    let (code, body) = page();
                    respond(code, &body)
                }
            }
            (["v1", "services", name, action @ ("stop" | "restart" | "start")], _, true) => {
                let name = (*name).to_owned();
                let r = match *action {
                    "stop" => Request::Stop(name),
                    "start" => Request::Start(name),
                    _ => Request::Restart(name),
                };
                answer(shared.request(r))
            }
            (["v1", "system", "reboot"], _, true) => answer(shared.request(Request::Reboot)),
            (["v1", "system", "poweroff"], _, true) => answer(shared.request(Request::Poweroff)),
            (["v1", "commands", "stop"], _, true) if shared.mode == Mode::Pid1 => respond(
                409,
                &json!({"accepted": false, "error": "init is PID 1: use /v1/system/reboot or /v1/system/poweroff"}),
            ),
            (["v1", "services", ..] | ["v1", "system", ..], _, _) => {
                respond(405, &json!({"error": "wrong method or path"}))
            }
            _ => return None,
        };
        Some(outcome)
    })
}
