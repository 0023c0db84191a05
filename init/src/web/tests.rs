//! Routing tests without sockets: auth, CSRF, shapes, errors.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::logs::{LogStore, Stream};
use crate::manifest::Manifest;
use crate::mounts::PermState;
use crate::status::{BootInfo, Mode, PermInfo, ServiceView, SharedInit, View};
use crate::supervisor::{Policy, Supervisor};

const PASSWORD: &str = "correct horse";

fn site() -> (Site, Arc<Shared>, runtime::EventLoop) {
    let ev = runtime::EventLoop::new().unwrap();
    let logs = Arc::new(LogStore::new());
    let init = SharedInit {
        hostname: "router7".into(),
        version: "test 2025-01-01".into(),
        mode: Mode::SuperviseOnly,
        boot: BootInfo { root: Some("/dev/vda2".into()), slot: None, trial: false, cmdline_ignored: vec![] },
        perm: PermInfo {
            path: std::env::temp_dir(),
            state: PermState::Folder,
            device: None,
            detail: "a folder".into(),
            usage: None,
        },
        run_dir: std::env::temp_dir().join("init-web-test-run"),
    };
    let now = runtime::clock::now();
    let shared = Arc::new(Shared::new(init, Arc::clone(&logs), ev.waker(), now));
    let manifest = Manifest::parse(
        std::path::Path::new("m.json"),
        br#"{"services":[{"name":"dnsd","path":"/svc/dnsd","uid":1004,"gid":1004,"capabilities":["NET_BIND_SERVICE"]}]}"#,
    )
    .unwrap();
    let mut sup = Supervisor::new(Policy::default(), &[true], now);
    sup.start_all(&[true], now);
    sup.spawned(0, i32::try_from(std::process::id()).unwrap(), now);
    logs.add("dnsd", 100);
    logs.add("init", 100);
    logs.push("dnsd", runtime::timefmt::Timestamp { secs: 1, nanos: 0 }, Stream::Stderr, vec!["a <b> line".into()]);
    shared.publish(View {
        services: vec![ServiceView { spec: manifest.services[0].clone(), record: sup.record(0).unwrap().clone() }],
        ..View::default()
    });
    let auth = Arc::new(RwLock::new(Some(BasicAuth::new(PASSWORD))));
    (Site::new(Arc::clone(&shared), auth, "tok123".into()), shared, ev)
}

fn basic(user: &str, password: &str) -> (String, String) {
    ("Authorization".into(), format!("Basic {}", runtime::base64::encode(format!("{user}:{password}").as_bytes())))
}

fn get(url: &str, extra: &[(&str, &str)]) -> Incoming {
    let mut headers = vec![basic("router", PASSWORD), ("Host".into(), "192.168.42.1".into())];
    headers.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Incoming { method: "GET".into(), url: url.into(), headers, body: vec![] }
}

fn post(url: &str, body: &str, extra: &[(&str, &str)]) -> Incoming {
    let mut r = get(url, extra);
    r.method = "POST".into();
    r.body = body.as_bytes().to_vec();
    r
}

#[test]
fn every_path_needs_the_password() {
    let (site, _, _ev) = site();
    for url in ["/", "/metrics", "/static/app.js", "/services/dnsd", "/services/dnsd/log", "/nope"] {
        let mut r = get(url, &[]);
        r.headers.remove(0);
        assert_eq!(site.route(&r), Reply::Unauthorized, "{url} without credentials");
        for (user, pw) in [("router", "wrong"), ("admin", PASSWORD), ("router", "")] {
            let mut r = get(url, &[]);
            r.headers[0] = basic(user, pw);
            assert_eq!(site.route(&r), Reply::Unauthorized, "{url} as {user}:{pw}");
        }
    }
    assert!(matches!(site.route(&get("/", &[])), Reply::Page(200, _)));
    // No password configured: nothing is served.
    let locked = Site::new(Arc::clone(&site.shared), Arc::new(RwLock::new(None)), "t".into());
    assert_eq!(locked.route(&get("/", &[])), Reply::Unauthorized);
}

#[test]
fn pages_come_as_json_when_asked() {
    let (site, _, _ev) = site();
    let Reply::Json(200, o) = site.route(&get("/", &[("Accept", "application/json")])) else { panic!() };
    for key in
        ["hostname", "version", "kernel", "mode", "memory", "perm", "addresses", "services", "boot", "csrf_token"]
    {
        assert!(o.get(key).is_some(), "overview lacks {key}: {o}");
    }
    assert_eq!(o["services"][0]["name"], "dnsd");
    assert_eq!(o["services"][0]["state"], "Running");
    assert_eq!(o["services"][0]["capabilities"][0], "NET_BIND_SERVICE");
    assert!(o["services"][0]["status_error"].as_str().unwrap().starts_with("not answering"));
    let Reply::Json(200, s) = site.route(&get("/services/dnsd", &[("Accept", "application/json")])) else { panic!() };
    assert_eq!(s["log_tail"][0]["text"], "a <b> line");
    assert_eq!(s["log_tail"][0]["stream"], "stderr");
    let Reply::Json(200, l) = site.route(&get("/services/dnsd/log?since=0&limit=5", &[("Accept", "application/json")]))
    else {
        panic!()
    };
    assert_eq!((l["next"].clone(), l["missed"].clone()), (json!(1), json!(0)));
}

#[test]
fn html_pages_escape_log_text_and_carry_the_token() {
    let (site, _, _ev) = site();
    let Reply::Page(200, html) = site.route(&get("/services/dnsd", &[])) else { panic!() };
    assert!(html.contains("a &lt;b&gt; line"));
    assert!(html.contains("name=csrf value=\"tok123\""));
    assert!(html.contains("data-service=\"dnsd\""));
}

#[test]
fn event_streams_resume_from_last_event_id() {
    let (site, _, _ev) = site();
    let r = site.route(&get("/services/dnsd/log", &[("Accept", "text/event-stream"), ("Last-Event-ID", "0")]));
    assert_eq!(r, Reply::Events { name: "dnsd".into(), since: 0 });
    let r = site.route(&get("/services/dnsd/log", &[("Accept", "text/event-stream")]));
    assert_eq!(r, Reply::Events { name: "dnsd".into(), since: 1 }, "a new stream starts at the end");
    let r = site.route(&get("/services/init/log?since=0", &[("Accept", "text/event-stream")]));
    assert_eq!(r, Reply::Events { name: "init".into(), since: 0 });
}

#[test]
fn posts_need_token_cookie_and_a_same_site_origin() {
    let (site, shared, _ev) = site();
    let good_cookie = ("Cookie", "theme=x; router7_csrf=tok123");
    let origin = ("Origin", "http://192.168.42.1");
    let refused = [
        post("/services/dnsd/restart", "", &[good_cookie, origin]),
        post("/services/dnsd/restart", "csrf=wrong", &[good_cookie, origin]),
        post("/services/dnsd/restart", "csrf=tok123", &[origin]),
        post("/services/dnsd/restart", "csrf=tok123", &[("Cookie", "router7_csrf=other"), origin]),
        post("/services/dnsd/restart", "csrf=tok123", &[good_cookie, ("Origin", "http://evil.example")]),
        post("/services/dnsd/restart", "csrf=tok123", &[good_cookie, ("Origin", "null")]),
        post("/services/dnsd/restart", "csrf=tok123", &[good_cookie, ("Referer", "http://evil.example/x")]),
        post("/reboot", "", &[("X-CSRF-Token", "nope")]),
    ];
    for r in &refused {
        assert!(matches!(site.route(r), Reply::Json(403, _)), "{r:?}");
    }
    assert!(shared.take_requests().is_empty(), "nothing refused reached the loop");
    let ok = post("/services/dnsd/restart", "csrf=tok123", &[good_cookie, origin]);
    assert_eq!(site.route(&ok), Reply::Redirect("/services/dnsd".into()));
    let ok =
        post("/services/dnsd/stop", "csrf=tok123", &[good_cookie, ("Referer", "http://192.168.42.1/services/dnsd")]);
    assert_eq!(site.route(&ok), Reply::Redirect("/services/dnsd".into()));
    let scripted = post("/services/dnsd/start", "", &[("X-CSRF-Token", "tok123"), ("Accept", "application/json")]);
    assert!(matches!(site.route(&scripted), Reply::Json(202, _)));
    assert_eq!(
        shared.take_requests(),
        [Request::Restart("dnsd".into()), Request::Stop("dnsd".into()), Request::Start("dnsd".into())]
    );
}

#[test]
fn unknown_things_and_wrong_methods() {
    let (site, shared, _ev) = site();
    assert!(matches!(site.route(&get("/services/nope", &[])), Reply::Text(404, _, _)));
    assert!(matches!(site.route(&get("/services/nope", &[("Accept", "application/json")])), Reply::Json(404, _)));
    assert!(matches!(site.route(&get("/services/nope/log", &[])), Reply::Text(404, _, _)));
    assert!(matches!(site.route(&get("/etc/passwd", &[])), Reply::Text(404, _, _)));
    assert!(matches!(site.route(&get("/reboot", &[])), Reply::Json(405, _)));
    assert!(matches!(site.route(&post("/", "", &[])), Reply::Json(405, _)));
    let r = post("/services/nope/stop", "", &[("X-CSRF-Token", "tok123")]);
    assert!(matches!(site.route(&r), Reply::Text(404, _, _)));
    assert!(shared.take_requests().is_empty());
}

#[test]
fn metrics_name_every_service() {
    let (site, _, _ev) = site();
    let Reply::Text(200, ctype, text) = site.route(&get("/metrics", &[])) else { panic!() };
    assert_eq!(ctype, runtime::metrics::CONTENT_TYPE);
    assert!(text.contains("init_service_restarts_total{service=\"dnsd\"} 0"), "{text}");
    assert!(text.contains("init_service_rss_bytes{service=\"dnsd\"}"), "{text}");
    assert!(text.contains("init_service_up{service=\"dnsd\"} 1"), "{text}");
}
