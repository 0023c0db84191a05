//! The web interface of a real init (supervise-only, in a PID namespace), over
//! TCP: every endpoint, with and without credentials, JSON shapes, CSRF,
//! Server-Sent Events, metrics checked by promtool, listeners on the private
//! addresses only (never uplink*), and a password change picked up on SIGHUP.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Init, Options, PASSWORD, Svc, http, wait_for};

fn require(test: &str, tools: &[&str]) -> bool {
    let mut all = vec!["unshare", "sh", "sleep"];
    all.extend_from_slice(tools);
    testbed::require(test, &all)
}

fn ticker() -> Svc {
    Svc::new("ticker", "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.2; done")
}

fn start(tag: &str) -> Init {
    let init = Init::start(tag, vec![ticker(), Svc::new("idle", "exec sleep 1000")]);
    init.wait_state("ticker", "Running", Duration::from_secs(10));
    init.wait_state("idle", "Running", Duration::from_secs(10));
    wait_for(Duration::from_secs(10), "the web listener", || {
        (init.get("/v1/status")["listeners"].as_array()?.len() == 1).then_some(())
    });
    init
}

#[test]
fn every_endpoint_requires_the_password() {
    if !require("every_endpoint_requires_the_password", &[]) {
        return;
    }
    let init = start("web-auth");
    let addr = init.web_addr();
    let wrong_pw = format!("Basic {}", runtime::base64::encode(b"router:nope"));
    let wrong_user = format!("Basic {}", runtime::base64::encode(format!("admin:{PASSWORD}").as_bytes()));
    let endpoints = [
        ("GET", "/"),
        ("GET", "/services/ticker"),
        ("GET", "/services/ticker/log"),
        ("GET", "/metrics"),
        ("GET", "/static/app.js"),
        ("GET", "/static/style.css"),
        ("POST", "/services/ticker/restart"),
        ("POST", "/services/ticker/stop"),
        ("POST", "/reboot"),
        ("POST", "/poweroff"),
        ("GET", "/does-not-exist"),
    ];
    for (method, path) in endpoints {
        for auth in [None, Some(wrong_pw.as_str()), Some(wrong_user.as_str()), Some("Bearer x")] {
            let headers: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
            let r = http(addr, method, path, &headers, "");
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}");
            assert_eq!(r.header("WWW-Authenticate"), Some("Basic realm=\"router7\", charset=\"UTF-8\""));
        }
    }
    // Nothing was done by those POSTs.
    assert_eq!(init.service("ticker")["restarts"], 0);
    assert_eq!(init.service("ticker")["state"], "Running");
    let auth = init.basic_auth();
    let r = http(addr, "GET", "/", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200);
}

#[test]
fn pages_answer_in_html_and_json() {
    if !require("pages_answer_in_html_and_json", &[]) {
        return;
    }
    let init = start("web-pages");
    let addr = init.web_addr();
    let auth = init.basic_auth();
    let a = [("Authorization", auth.as_str())];
    let aj = [("Authorization", auth.as_str()), ("Accept", "application/json")];

    let r = http(addr, "GET", "/", &a, "");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    assert!(r.header("Set-Cookie").unwrap().starts_with("router7_csrf="), "{:?}", r.headers);
    assert!(r.header("Set-Cookie").unwrap().contains("SameSite=Strict"));
    assert!(r.header("Content-Security-Policy").unwrap().contains("default-src 'self'"));
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
    assert!(r.body.contains("<table id=services>") && r.body.contains("href=\"/services/ticker\""));
    assert!(r.body.contains("action=\"/reboot\"") && r.body.contains("action=\"/poweroff\""));

    let o = http(addr, "GET", "/", &aj, "").json();
    for key in [
        "hostname",
        "version",
        "kernel",
        "mode",
        "uptime_seconds",
        "boot",
        "memory",
        "perm",
        "addresses",
        "listeners",
        "services",
        "csrf_token",
    ] {
        assert!(o.get(key).is_some(), "overview lacks {key}");
    }
    assert!(o["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(o["perm"]["total_bytes"].as_u64().unwrap() > 0, "{}", o["perm"]);
    let t = o["services"].as_array().unwrap().iter().find(|s| s["name"] == "ticker").unwrap().clone();
    for key in ["state", "pid", "restarts", "uptime_seconds", "rss_bytes", "since", "log", "uid", "capabilities"] {
        assert!(t.get(key).is_some(), "service lacks {key}: {t}");
    }
    assert!(t["rss_bytes"].as_u64().unwrap() > 0);
    assert!(o["addresses"].as_array().unwrap().iter().any(|a| a["address"] == "127.0.0.1"));

    let r = http(addr, "GET", "/services/ticker", &a, "");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("id=log data-service=\"ticker\""));
    assert!(r.body.contains("tick "));
    assert!(r.body.contains("name=csrf value="));
    let s = http(addr, "GET", "/services/ticker", &aj, "").json();
    assert_eq!(s["name"], "ticker");
    assert!(s["log_tail"].as_array().unwrap().iter().any(|l| l["text"].as_str().unwrap().starts_with("tick ")));
    let init_page = http(addr, "GET", "/services/init", &aj, "").json();
    assert!(
        init_page["log_tail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"].as_str().unwrap().contains("ticker: started"))
    );

    wait_for(Duration::from_secs(10), "three lines", || {
        (init.service("ticker")["log"]["last_seq"].as_u64()? >= 3).then_some(())
    });
    let l = http(addr, "GET", "/services/ticker/log?since=0&limit=3", &aj, "").json();
    assert_eq!(l["lines"].as_array().unwrap().len(), 3);
    assert_eq!(l["lines"][0]["seq"], 1);
    assert_eq!(l["next"], 3);
    let text = http(addr, "GET", "/services/ticker/log?limit=2", &a, "");
    assert_eq!(text.body.lines().count(), 2);
    assert!(text.header("Content-Type").unwrap().starts_with("text/plain"));

    assert_eq!(http(addr, "GET", "/services/nope", &aj, "").status, 404);
    assert_eq!(http(addr, "GET", "/services/nope/log", &a, "").status, 404);
    assert_eq!(http(addr, "GET", "/nope", &a, "").status, 404);
    assert_eq!(http(addr, "GET", "/reboot", &a, "").status, 405);
    assert_eq!(http(addr, "POST", "/metrics", &a, "").status, 405);

    let css = http(addr, "GET", "/static/style.css", &a, "");
    assert!(css.header("Content-Type").unwrap().starts_with("text/css"));
    let js = http(addr, "GET", "/static/app.js", &a, "");
    assert!(js.header("Content-Type").unwrap().starts_with("text/javascript"));
    assert!(js.body.contains("EventSource"));
}

fn csrf(init: &Init) -> String {
    let auth = init.basic_auth();
    let o = http(init.web_addr(), "GET", "/", &[("Authorization", &auth), ("Accept", "application/json")], "").json();
    o["csrf_token"].as_str().unwrap().to_owned()
}

#[test]
fn stop_and_restart_need_a_csrf_token_and_work_with_one() {
    if !require("stop_and_restart_need_a_csrf_token_and_work_with_one", &[]) {
        return;
    }
    let init = start("web-csrf");
    let addr = init.web_addr();
    let auth = init.basic_auth();
    let token = csrf(&init);
    let origin = format!("http://{addr}");
    let cookie = format!("router7_csrf={token}");
    let form = format!("csrf={token}");
    let ctype = ("Content-Type", "application/x-www-form-urlencoded");
    let refused: Vec<(Vec<(&str, &str)>, String)> = vec![
        (vec![("Authorization", &auth), ctype, ("Origin", &origin), ("Cookie", &cookie)], String::new()),
        (vec![("Authorization", &auth), ctype, ("Origin", &origin)], form.clone()),
        (vec![("Authorization", &auth), ctype, ("Origin", "http://evil.example"), ("Cookie", &cookie)], form.clone()),
        (vec![("Authorization", &auth), ctype, ("Cookie", "router7_csrf=forged")], "csrf=forged".into()),
        (vec![("Authorization", &auth), ("X-CSRF-Token", "forged")], String::new()),
    ];
    for (headers, body) in &refused {
        let r = http(addr, "POST", "/services/ticker/restart", headers, body);
        assert_eq!(r.status, 403, "{headers:?} {body}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(init.events_of("init.service.started", "ticker").len(), 1, "a refused POST restarted it");

    // A browser's form post: token in the form and the cookie, same origin.
    let r = http(
        addr,
        "POST",
        "/services/ticker/restart",
        &[("Authorization", &auth), ctype, ("Origin", &origin), ("Cookie", &cookie)],
        &form,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("Location"), Some("/services/ticker"));
    wait_for(Duration::from_secs(10), "the restart", || {
        (init.events_of("init.service.started", "ticker").len() == 2).then_some(())
    });
    // A script: the token in a header, JSON back.
    let r = http(
        addr,
        "POST",
        "/services/idle/stop",
        &[("Authorization", &auth), ("X-CSRF-Token", &token), ("Accept", "application/json")],
        "",
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["accepted"], true);
    init.wait_state("idle", "Stopped", Duration::from_secs(15));
    let r = http(
        addr,
        "POST",
        "/services/idle/start",
        &[("Authorization", &auth), ("X-CSRF-Token", &token), ("Accept", "application/json")],
        "",
    );
    assert_eq!(r.status, 202);
    init.wait_state("idle", "Running", Duration::from_secs(10));
    let r = http(
        addr,
        "POST",
        "/services/nope/stop",
        &[("Authorization", &auth), ("X-CSRF-Token", &token), ("Accept", "application/json")],
        "",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn live_logs_stream_as_server_sent_events() {
    if !require("live_logs_stream_as_server_sent_events", &[]) {
        return;
    }
    let init = start("web-sse");
    let auth = init.basic_auth();
    let mut s = TcpStream::connect(init.web_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /services/ticker/log HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nAccept: text/event-stream\r\nLast-Event-ID: 2\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream"), "{head}");
    // Resumes after id 2, then keeps going live.
    let mut ids = Vec::new();
    let t0 = common::now();
    while ids.len() < 15 {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(id) = line.strip_prefix("id: ") {
            ids.push(id.trim().parse::<u64>().unwrap());
        }
        if let Some(data) = line.strip_prefix("data: ") {
            let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
            assert!(v.get("text").is_some() && v.get("stream").is_some() && v.get("time").is_some(), "{v}");
        }
    }
    assert_eq!(ids[0], 3);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    // Lines written after the request arrived came through: ~5 per second.
    assert!(common::now() - t0 > Duration::from_millis(500), "everything was backlog");
}

#[test]
fn metrics_are_prometheus_text_promtool_accepts() {
    if !require("metrics_are_prometheus_text_promtool_accepts", &["promtool"]) {
        return;
    }
    let init = start("web-metrics");
    let auth = init.basic_auth();
    let r = http(init.web_addr(), "GET", "/metrics", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200);
    for want in [
        "init_service_restarts_total{service=\"ticker\"} 0",
        "init_service_up{service=\"idle\"} 1",
        "init_service_rss_bytes{service=\"ticker\"} ",
        "init_orphans_reaped_total ",
        "init_console_dropped_lines_total 0",
        "init_perm_persistent 1",
    ] {
        assert!(r.body.contains(want), "missing {want}:\n{}", r.body);
    }
    runtime::testing::promtool_check(&r.body).unwrap();
}

#[test]
fn poweroff_from_the_web_stops_every_service_and_ends_init() {
    if !require("poweroff_from_the_web_stops_every_service_and_ends_init", &[]) {
        return;
    }
    let init = start("web-power");
    let auth = init.basic_auth();
    let token = csrf(&init);
    let r = http(init.web_addr(), "POST", "/poweroff", &[("Authorization", &auth), ("X-CSRF-Token", &token)], "");
    assert_eq!(r.status, 202);
    assert!(r.body.contains("Powering off"));
    let (_, status, log, _) = init.stop_with(0, Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert!(log.contains("shutting down for poweroff"), "{log}");
    assert!(log.contains("ticker: exited (signal 15)"), "{log}");
    assert!(log.contains("would now power off"), "{log}");
}

#[test]
fn listens_on_private_addresses_never_on_the_uplink_and_follows_sighup() {
    if !require("listens_on_private_addresses_never_on_the_uplink_and_follows_sighup", &[]) {
        return;
    }
    let router = testbed::Netns::new("webr");
    let outside = testbed::Netns::new("webo");
    testbed::veth(&router, "uplink0", "02:00:00:00:01:01", &outside, "isp0", "02:00:00:00:01:02");
    testbed::veth(&router, "lan0", "02:00:00:00:02:01", &outside, "lan9", "02:00:00:00:02:02");
    // A private address on the uplink too: still never served there.
    router.addr("uplink0", "10.99.0.1/24");
    router.addr("lan0", "192.168.42.1/24");
    let init = Init::start_with(
        "web-private",
        vec![Svc::new("idle", "exec sleep 1000")],
        Options { netns: Some(router.name().to_owned()), private_addrs: true, ..Options::default() },
    );
    let port = init.port;
    let listeners = |init: &Init| -> Vec<String> {
        init.get("/v1/status")["listeners"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    let l = wait_for(Duration::from_secs(10), "listeners", || {
        let l = listeners(&init);
        l.contains(&format!("192.168.42.1:{port}")).then_some(l)
    });
    assert!(l.contains(&format!("127.0.0.1:{port}")), "{l:?}");
    assert!(!l.iter().any(|a| a.starts_with("10.99.0.1")), "listening on the uplink: {l:?}");
    assert!(!l.iter().any(|a| a.starts_with("0.0.0.0") || a.starts_with("[::]")), "{l:?}");
    let auth = init.basic_auth();
    let get = |ip: &str| {
        let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let auth = auth.clone();
        router.enter(move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map(|_| http(addr, "GET", "/", &[("Authorization", &auth)], "").status)
        })
    };
    assert_eq!(get("192.168.42.1").unwrap(), 200);
    assert!(get("10.99.0.1").is_err(), "the uplink address answers");
    // netconfigd adds an address and sends SIGHUP: init listens there too.
    router.ip(&["addr", "add", "192.168.42.2/24", "dev", "lan0"]);
    // A new password takes effect on the same SIGHUP.
    std::fs::write(init.perm.join("router/password"), "changed-password\n").unwrap();
    rustix::process::kill_process(rustix::process::Pid::from_raw(init.host_pid).unwrap(), rustix::process::Signal::HUP)
        .unwrap();
    wait_for(Duration::from_secs(10), "the new address", || {
        listeners(&init).contains(&format!("192.168.42.2:{port}")).then_some(())
    });
    let addr: std::net::SocketAddr = format!("192.168.42.2:{port}").parse().unwrap();
    let new_auth = format!("Basic {}", runtime::base64::encode(b"router:changed-password"));
    let old_auth = init.basic_auth();
    let (new_status, old_status) = router.enter(move || {
        (
            http(addr, "GET", "/", &[("Authorization", &new_auth)], "").status,
            http(addr, "GET", "/", &[("Authorization", &old_auth)], "").status,
        )
    });
    assert_eq!((new_status, old_status), (200, 401));
}
