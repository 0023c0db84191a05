//! The update endpoints on private:80 (see [`bootslot::api`] for the JSON).
//!
//! Every request needs the web interface's basic auth. Changes (`PUT`,
//! `POST`) also need the header `X-Router-Update: 1` and must carry no
//! `Origin` header: the host tool sends the one and never the other, while a
//! browser sends `Origin` with every cross-site `PUT`/`POST` and cannot add a
//! custom header without a CORS preflight, which init never answers. That
//! replaces the CSRF token of the web interface's forms, which a tool pushing
//! a 30 MB body cannot carry.
//!
//! Uploads and activations run on a stream thread of runtime's httpd (the
//! server's thread never blocks), one upload at a time; the body goes from
//! the connection to the disk in [`super::upload::CHUNK`]s.

use std::sync::Arc;

use serde_json::json;

use bootslot::Slot;
use bootslot::api::{
    DEFAULT_TRIAL_SECONDS, HEADER_BUILD_TIME, HEADER_UPDATE, HEADER_VERSION, ImageVersion, TRIAL_SECONDS_RANGE, Written,
};
use runtime::http::{BasicAuth, method_not_allowed, reply_json};
use runtime::httpd::parse::Framing;
use runtime::httpd::{self, Outcome, Response};

use super::slots::PartKind;
use super::{Activation, Updater};

fn error(status: u16, text: &str) -> Response {
    reply_json(status, &json!({ "error": text }))
}

/// Why a change request is refused before anything happens, if it is.
#[must_use]
pub fn refuse_change(headers: &[(String, String)]) -> Option<&'static str> {
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
    if get("Origin").is_some() {
        return Some("requests with an Origin header are refused (browsers send one; the update tool does not)");
    }
    if get(HEADER_UPDATE) != Some("1") {
        return Some("the header X-Router-Update: 1 is required");
    }
    None
}

/// The query parameters of `/update/activate`.
///
/// # Errors
/// A parameter that is not understood.
pub fn parse_activation(query: &[(String, String)]) -> Result<Activation, String> {
    let mut a = Activation { slot: None, kexec: true, trial_seconds: DEFAULT_TRIAL_SECONDS, kind: "update".into() };
    for (k, v) in query {
        match k.as_str() {
            "slot" => a.slot = Some(Slot::parse(v).ok_or(format!("slot={v}: a or b"))?),
            "kexec" => {
                a.kexec = match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("kexec={v}: true or false")),
                }
            }
            "trial_seconds" => {
                a.trial_seconds = v.parse().ok().filter(|s| TRIAL_SECONDS_RANGE.contains(s)).ok_or(format!(
                    "trial_seconds={v}: {}..={}",
                    TRIAL_SECONDS_RANGE.start(),
                    TRIAL_SECONDS_RANGE.end()
                ))?;
            }
            "kind" => {
                a.kind = match v.as_str() {
                    "update" | "rollback" => v.clone(),
                    _ => return Err(format!("kind={v}: update or rollback")),
                }
            }
            _ => return Err(format!("unknown parameter {k:?}")),
        }
    }
    Ok(a)
}

/// Answers a request under `/update/` (on the HTTP server's thread);
/// `authorized` is the basic auth's verdict. Uploads and activations run on a
/// stream thread: they read the body from the connection as it arrives and
/// write it to the disk, never into memory whole.
#[must_use]
pub fn handle(u: &Arc<Updater>, request: &httpd::Request, authorized: bool) -> Outcome {
    if !authorized {
        return BasicAuth::challenge_response().into();
    }
    let path = request.path();
    match (request.method(), path) {
        ("GET" | "HEAD", "/update/features") => reply_json(200, &json!(u.features())).into(),
        ("GET" | "HEAD", "/update/status") => reply_json(200, &json!(u.status())).into(),
        ("PUT", "/update/root" | "/update/kernel") | ("POST", "/update/activate") => {
            if let Some(why) = refuse_change(request.headers()) {
                return error(403, why).into();
            }
            let u = Arc::clone(u);
            match path {
                "/update/activate" => {
                    // Only the query counts; a body (there should be none) is ignored,
                    // and one too large to have been read first is refused.
                    if !request.body_read() {
                        return error(413, "/update/activate takes no body").into();
                    }
                    match parse_activation(&request.query()) {
                        Ok(ask) => Outcome::stream(move |_, conn| match u.activate(&ask) {
                            Ok(done) => {
                                // The answer first: the reboot would cut it off.
                                let _ = conn.respond(&reply_json(202, &json!(done)));
                                u.launch(&done);
                            }
                            Err(r) => {
                                let _ = conn.respond(&error(r.status, &r.error));
                            }
                        }),
                        Err(e) => error(400, &e).into(),
                    }
                }
                "/update/root" => upload(u, request, PartKind::Root),
                _ => upload(u, request, PartKind::Kernel),
            }
        }
        (_, "/update/features" | "/update/status") => method_not_allowed("GET").into(),
        (_, "/update/root" | "/update/kernel") => method_not_allowed("PUT").into(),
        (_, "/update/activate") => method_not_allowed("POST").into(),
        _ => error(404, "not found").into(),
    }
}

fn claimed_version(request: &httpd::Request) -> Option<ImageVersion> {
    let version = request.header(HEADER_VERSION)?.trim().to_owned();
    (!version.is_empty()).then(|| ImageVersion {
        version,
        build_time: request.header(HEADER_BUILD_TIME).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
    })
}

/// An upload begun ([`Updater::begin_upload`]) and not yet finished: dropping
/// it unfinished (the stream thread never ran, or panicked) records the
/// upload as failed, so the updater is never left busy.
struct Begun {
    u: Arc<Updater>,
    slot: Slot,
    part: PartKind,
    done: bool,
}

impl Begun {
    fn finish(mut self, result: &Result<(String, u64), String>) {
        self.done = true;
        self.u.finish_upload(self.slot, self.part, result);
    }
}

impl Drop for Begun {
    fn drop(&mut self) {
        if !self.done {
            self.u.finish_upload(self.slot, self.part, &Err("the upload never ran (too many connections)".into()));
        }
    }
}

fn upload(u: Arc<Updater>, request: &httpd::Request, part: PartKind) -> Outcome {
    // Chunked bodies have no length: check_length refuses them (411).
    let declared = match request.framing() {
        Framing::Length(n) => Some(n),
        Framing::None if request.header("Content-Length").is_some() => Some(0),
        _ => None,
    };
    let claimed = if part == PartKind::Root { claimed_version(request) } else { None };
    let (slot, length) = match u.begin_upload(part, declared, claimed) {
        Ok(v) => v,
        Err(r) => return error(r.status, &r.error).into(),
    };
    let begun = Begun { u, slot, part, done: false };
    Outcome::stream(move |_, mut conn| {
        let written = {
            let mut body = conn.body();
            match part {
                PartKind::Root => begun.u.write_root(slot, &mut body, length),
                PartKind::Kernel => begun.u.write_kernel(slot, &mut body, length),
            }
        };
        let result = written.as_ref().map(|sha| (sha.clone(), length)).map_err(|(_, e)| e.clone());
        begun.finish(&result);
        let response = match written {
            Ok(sha256) => reply_json(200, &json!(Written { slot, part: part.name().into(), sha256, bytes: length })),
            Err((status, e)) => error(status, &e),
        };
        let _ = conn.respond(&response);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn changes_need_the_update_header_and_no_origin() {
        assert!(refuse_change(&h(&[])).is_some());
        assert!(refuse_change(&h(&[("x-router-update", "0")])).is_some());
        assert_eq!(refuse_change(&h(&[("X-Router-Update", "1")])), None);
        let why = refuse_change(&h(&[("X-Router-Update", "1"), ("Origin", "http://192.168.42.1")])).unwrap();
        assert!(why.contains("Origin"));
    }

    #[test]
    fn activation_parameters_are_checked() {
        let q = |pairs: &[(&str, &str)]| h(pairs);
        let a = parse_activation(&q(&[])).unwrap();
        assert_eq!((a.slot, a.kexec, a.trial_seconds, a.kind.as_str()), (None, true, DEFAULT_TRIAL_SECONDS, "update"));
        let a =
            parse_activation(&q(&[("slot", "b"), ("kexec", "false"), ("trial_seconds", "60"), ("kind", "rollback")]))
                .unwrap();
        assert_eq!((a.slot, a.kexec, a.trial_seconds, a.kind.as_str()), (Some(Slot::B), false, 60, "rollback"));
        for bad in [
            ("slot", "c"),
            ("kexec", "maybe"),
            ("trial_seconds", "5"),
            ("trial_seconds", "x"),
            ("kind", "x"),
            ("y", "1"),
        ] {
            assert!(parse_activation(&q(&[bad])).is_err(), "{bad:?}");
        }
    }
}
