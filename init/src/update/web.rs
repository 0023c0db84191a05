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
//! Uploads run on a thread of their own (a listener thread serves its address
//! one request at a time), one at a time.

use std::sync::Arc;

use serde_json::json;

use bootslot::Slot;
use bootslot::api::{
    DEFAULT_TRIAL_SECONDS, HEADER_BUILD_TIME, HEADER_UPDATE, HEADER_VERSION, ImageVersion, TRIAL_SECONDS_RANGE, Written,
};
use runtime::http::{request_header, respond_json};

use super::slots::PartKind;
use super::{Activation, Updater};

fn error(request: tiny_http::Request, status: u16, text: &str) {
    respond_json(request, status, &json!({ "error": text }));
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

/// Answers a request under `/update/`; `authorized` is the basic auth's verdict.
pub fn handle(u: &Arc<Updater>, request: tiny_http::Request, authorized: bool) {
    if !authorized {
        return runtime::http::BasicAuth::challenge(request);
    }
    let url = request.url().to_owned();
    let (path, query) = runtime::control::split_query(&url);
    let method = request.method().as_str().to_owned();
    match (method.as_str(), path) {
        ("GET" | "HEAD", "/update/features") => respond_json(request, 200, &json!(u.features())),
        ("GET" | "HEAD", "/update/status") => respond_json(request, 200, &json!(u.status())),
        ("PUT", "/update/root" | "/update/kernel") | ("POST", "/update/activate") => {
            let headers: Vec<(String, String)> = request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().as_str().to_owned(), h.value.as_str().to_owned()))
                .collect();
            if let Some(why) = refuse_change(&headers) {
                return error(request, 403, why);
            }
            match path {
                "/update/activate" => match parse_activation(&query) {
                    Ok(ask) => match u.activate(&ask) {
                        Ok(done) => {
                            // The answer first: the reboot would cut it off.
                            respond_json(request, 202, &json!(done));
                            u.launch(&done);
                        }
                        Err(r) => error(request, r.status, &r.error),
                    },
                    Err(e) => error(request, 400, &e),
                },
                "/update/root" => upload(u, request, PartKind::Root),
                _ => upload(u, request, PartKind::Kernel),
            }
        }
        (_, "/update/features" | "/update/status") => error(request, 405, "use GET"),
        (_, "/update/root" | "/update/kernel") => error(request, 405, "use PUT"),
        (_, "/update/activate") => error(request, 405, "use POST"),
        _ => error(request, 404, "not found"),
    }
}

fn claimed_version(request: &tiny_http::Request) -> Option<ImageVersion> {
    let version = request_header(request, HEADER_VERSION)?.trim().to_owned();
    (!version.is_empty()).then(|| ImageVersion {
        version,
        build_time: request_header(request, HEADER_BUILD_TIME).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
    })
}

fn upload(u: &Arc<Updater>, request: tiny_http::Request, part: PartKind) {
    let declared = request.body_length().map(|n| n as u64);
    let claimed = if part == PartKind::Root { claimed_version(&request) } else { None };
    let (slot, length) = match u.begin_upload(part, declared, claimed) {
        Ok(v) => v,
        Err(r) => return error(request, r.status, &r.error),
    };
    let worker = Arc::clone(u);
    let spawned = std::thread::Builder::new().name(format!("update {}", part.name())).spawn(move || {
        let mut request = request;
        let written = match part {
            PartKind::Root => worker.write_root(slot, request.as_reader(), length),
            PartKind::Kernel => worker.write_kernel(slot, request.as_reader(), length),
        };
        let result = written.as_ref().map(|sha| (sha.clone(), length)).map_err(|(_, e)| e.clone());
        worker.finish_upload(slot, part, &result);
        match written {
            Ok(sha256) => {
                respond_json(request, 200, &json!(Written { slot, part: part.name().into(), sha256, bytes: length }))
            }
            Err((status, e)) => error(request, status, &e),
        }
    });
    if let Err(e) = spawned {
        u.finish_upload(slot, part, &Err(format!("cannot start the upload thread: {e}")));
    }
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
