//! Arbitrary HTTP requests through the web interface's router: never a panic,
//! nothing served without the password, nothing changed without the CSRF token.
#![no_main]

use std::sync::{Arc, RwLock};

use init::logs::LogStore;
use init::mounts::PermState;
use init::status::{BootInfo, Mode, PermInfo, Shared, SharedInit};
use init::web::{Incoming, Reply, Site};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    site: Site,
    shared: Arc<Shared>,
    // Never run; it only lends its waker.
    _ev: runtime::EventLoop,
}

fn fixture() -> Fixture {
    let ev = runtime::EventLoop::new().expect("event loop");
    let logs = Arc::new(LogStore::new());
    logs.add("init", 10);
    let shared = Arc::new(Shared::new(
        SharedInit {
            hostname: "fuzz".into(),
            version: "fuzz".into(),
            mode: Mode::SuperviseOnly,
            boot: BootInfo { root: None, slot: None, trial: false, cmdline_ignored: vec![] },
            perm: PermInfo { path: "/nonexistent".into(), state: PermState::Folder, device: None, detail: String::new(), usage: None },
            run_dir: "/nonexistent".into(),
        },
        logs,
        ev.waker(),
        runtime::clock::now(),
    ));
    let auth = Arc::new(RwLock::new(Some(runtime::http::BasicAuth::new("pw"))));
    let site = Site::new(Arc::clone(&shared), auth, "token".into());
    Fixture { site, shared, _ev: ev }
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}

fuzz_target!(|data: &[u8]| FIXTURE.with(|f| one(f, data)));

fn one(f: &Fixture, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let method = match parts.next().unwrap_or("").len() % 3 {
        0 => "GET",
        1 => "POST",
        _ => "PUT",
    };
    let url = format!("/{}", parts.next().unwrap_or(""));
    let authed = parts.next().is_some_and(|l| l.starts_with('a'));
    let mut headers: Vec<(String, String)> = parts
        .by_ref()
        .take(6)
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .filter(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
        .collect();
    if authed {
        headers.push(("Authorization".into(), format!("Basic {}", runtime::base64::encode(b"router:pw"))));
    }
    let body = parts.collect::<Vec<_>>().join("\n").into_bytes();
    let req = Incoming { method: method.into(), url, headers, body };
    let reply = f.site.route(&req);
    if !authed {
        assert_eq!(reply, Reply::Unauthorized);
    }
    // Without the right token nothing reaches the loop.
    let token_given = req.header("X-CSRF-Token") == Some("token")
        || (init::web::form_fields(&req.body).iter().any(|(k, v)| k == "csrf" && v == "token")
            && req.cookie(init::web::CSRF_COOKIE) == Some("token"));
    let queued = f.shared.take_requests();
    if !token_given {
        assert!(queued.is_empty(), "{req:?} queued {queued:?}");
    }
}
