//! init's supervisor, run for real (not as the machine's PID 1, but as PID 1 of
//! its own PID namespace) with shell-script services that crash, hang, exit 0
//! and 125, flood their output and leave orphans behind.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use common::{Init, Options, Svc, wait_for};
use runtime::timefmt::Timestamp;
use serde_json::json;

fn require(test: &str) -> bool {
    testbed::require(test, &["unshare", "sh", "sleep"])
}

fn time_of(event: &serde_json::Value) -> f64 {
    let t: Timestamp = event["time"].as_str().unwrap().parse().unwrap();
    t.secs as f64 + f64::from(t.nanos) / 1e9
}

#[test]
fn a_crashing_service_is_restarted_with_backoff_and_flagged_as_a_crash_loop() {
    if !require("a_crashing_service_is_restarted_with_backoff_and_flagged_as_a_crash_loop") {
        return;
    }
    let init = Init::start("crash", vec![Svc::new("crasher", "echo crashing; exit 3")]);
    // Starts at 0, 1, 3, 7, 15 s: five failures within ten minutes is a crash loop.
    let s = wait_for(Duration::from_secs(40), "a crash loop", || {
        let s = init.service("crasher");
        (s["crash_loop"] == true).then_some(s)
    });
    assert!(s["recent_failures"].as_u64().unwrap() >= 5, "{s}");
    let starts = init.events_of("init.service.started", "crasher");
    assert!(starts.len() >= 5, "{starts:?}");
    let times: Vec<f64> = starts.iter().map(time_of).collect();
    for (k, w) in times.windows(2).take(4).enumerate() {
        let gap = w[1] - w[0];
        let want = f64::from(1u32 << k);
        assert!(
            gap >= want && gap < want + 3.0,
            "start {} came {gap:.2} s after the previous one, not ~{want} s",
            k + 2
        );
    }
    let delays: Vec<f64> = init
        .events_of("init.service.exited", "crasher")
        .iter()
        .take(4)
        .map(|e| e["attributes"]["restart_in_seconds"].as_f64().unwrap())
        .collect();
    assert_eq!(delays, [1.0, 2.0, 4.0, 8.0]);
    let restarted = init.events_of("init.service.restarted", "crasher");
    assert_eq!(restarted[0]["attributes"]["reason"], "failure");
    let loops = init.events_of("init.service.crashloop", "crasher");
    assert_eq!(loops.len(), 1, "announced once: {loops:?}");
    assert!(s["state"] == "CrashLoop" || s["state"] == "Running", "{s}");
    // init's own status says so, for the health gate of updates.
    let st = init.get("/v1/status");
    assert_eq!(st["phase"], "Unhealthy");
    let cond = st["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "ServicesHealthy").unwrap().clone();
    assert_eq!(cond["status"], "False");
    assert!(cond["message"].as_str().unwrap().contains("crasher"));
    // Every line of the service, and init's notes about it, are in its log.
    let logs = init.get("/v1/services/crasher/logs?since=0");
    let texts: Vec<&str> = logs["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(texts.iter().filter(|t| **t == "crashing").count() >= 5, "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("CRASH LOOP")), "{texts:?}");
}

#[test]
fn exit_0_and_125_are_not_restarted_until_started_by_hand() {
    if !require("exit_0_and_125_are_not_restarted_until_started_by_hand") {
        return;
    }
    let init = Init::start(
        "exit",
        vec![Svc::new("done", "echo finished; exit 0"), Svc::new("optout", "echo not today; exit 125")],
    );
    for name in ["done", "optout"] {
        let s = init.wait_state(name, "Stopped", Duration::from_secs(10));
        assert!(s["stop_reason"].as_str().unwrap().contains("exited on its own"), "{s}");
    }
    std::thread::sleep(Duration::from_secs(3));
    for name in ["done", "optout"] {
        assert_eq!(init.events_of("init.service.started", name).len(), 1, "{name} was restarted");
    }
    assert_eq!(init.service("optout")["last_exit"]["code"], 125);
    let (code, _) = init.post("/v1/services/optout/start");
    assert_eq!(code, 202);
    wait_for(Duration::from_secs(10), "a manual start", || {
        (init.events_of("init.service.started", "optout").len() == 2).then_some(())
    });
    let r = init.events_of("init.service.restarted", "optout");
    assert_eq!(r[0]["attributes"]["reason"], "manual");
}

#[test]
fn a_clean_stop_sends_sigterm_then_sigkill_within_the_bound() {
    if !require("a_clean_stop_sends_sigterm_then_sigkill_within_the_bound") {
        return;
    }
    let init = Init::start_with(
        "stop",
        vec![
            Svc::new("polite", "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"),
            Svc::new("stubborn", "trap 'echo ignoring TERM' TERM; while :; do sleep 0.1; done"),
        ],
        Options { args: vec!["--stop-timeout".into(), "2".into()], ..Options::default() },
    );
    init.wait_state("polite", "Running", Duration::from_secs(10));
    init.wait_state("stubborn", "Running", Duration::from_secs(10));
    // Manual stop of the stubborn one: SIGTERM, then SIGKILL after 2 s.
    let t0 = common::now();
    assert_eq!(init.post("/v1/services/stubborn/stop").0, 202);
    let s = init.wait_state("stubborn", "Stopped", Duration::from_secs(10));
    let took = common::now() - t0;
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(8), "{took:?}");
    assert_eq!(s["last_exit"]["signal"], 9, "{s}");
    let logs = init.get("/v1/services/stubborn/logs?since=0");
    assert!(logs["lines"].as_array().unwrap().iter().any(|l| l["text"] == "ignoring TERM"));
    assert_eq!(init.post("/v1/services/stubborn/start").0, 202);
    init.wait_state("stubborn", "Running", Duration::from_secs(10));
    // The whole of init: every service stops, the stubborn one by SIGKILL, within the bound.
    let (took, status, log, dir) = init.stop_with(libc_sigterm(), Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}\n{log}");
    assert!(log.contains("polite: exited (exit code 0)"), "{log}");
    assert!(log.contains("stubborn: did not stop within"), "{log}");
    assert!(log.contains("every service stopped"), "{log}");
    let persisted = fs::read_to_string(dir.path().join("perm/init/logs/polite.log")).unwrap();
    assert!(persisted.contains("stdout bye"), "{persisted}");
}

fn libc_sigterm() -> i32 {
    rustix::process::Signal::TERM.as_raw()
}

#[test]
fn orphans_are_reaped_and_no_zombie_stays() {
    if !require("orphans_are_reaped_and_no_zombie_stays") {
        return;
    }
    // Each round leaves 10 orphans outside its process group (setsid) that
    // exit a little later, and 5 children inside it, then fails.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do setsid sh -c 'sleep 0.3' & done; \
                  for i in 1 2 3 4 5; do sleep 1000 & done; sleep 0.1; exit 1";
    let init = Init::start("orphans", vec![Svc::new("spawner", script)]);
    wait_for(Duration::from_secs(30), "three rounds", || {
        (init.events_of("init.service.exited", "spawner").len() >= 3).then_some(())
    });
    init.post("/v1/services/spawner/stop");
    init.wait_state("spawner", "Stopped", Duration::from_secs(10));
    let reaped = wait_for(Duration::from_secs(10), "the orphans to be reaped", || {
        let n = init.get("/v1/status")["orphans_reaped"].as_u64().unwrap();
        // 3 rounds × (10 setsid children + the sh's in them + 5 group members).
        (n >= 30).then_some(n)
    });
    assert!(reaped >= 30, "{reaped}");
    wait_for(Duration::from_secs(5), "no zombies", || init.zombies().is_empty().then_some(()));
    let logs = init.get("/v1/services/spawner/logs?since=0");
    assert!(
        logs["lines"].as_array().unwrap().iter().any(|l| l["text"] == "killed processes left in its group"),
        "{logs}"
    );
    // The group members (sleep 1000) were killed with their leader: only init is left.
    wait_for(Duration::from_secs(5), "only init left", || (init.namespace_pids().len() == 1).then_some(()));
}

#[test]
fn a_flood_is_captured_in_a_bounded_ring_persisted_and_the_console_never_blocks() {
    if !require("a_flood_is_captured_in_a_bounded_ring_persisted_and_the_console_never_blocks") {
        return;
    }
    let dir = testbed::TempDir::new("flood-console");
    let fifo = dir.path().join("console");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // A console that nobody reads: its pipe fills up after 64 KiB.
    let reader = fs::OpenOptions::new().read(true).custom_flags_nonblock().open(&fifo).unwrap();
    let flood = "i=0; while [ $i -lt 50000 ]; do echo \"line $i of the flood\"; i=$((i+1)); done; echo done >&2; exec sleep 1000";
    let init = Init::start_with(
        "flood",
        vec![Svc::new("flood", flood).with(json!({"log_lines": 1000})), Svc::new("quiet", "exec sleep 1000")],
        Options {
            args: vec!["--console".into(), fifo.display().to_string(), "--log-file-bytes".into(), "200000".into()],
            ..Options::default()
        },
    );
    // init answers while the flood runs.
    for _ in 0..5 {
        let t0 = common::now();
        init.get("/v1/services/quiet");
        assert!(common::now() - t0 < Duration::from_secs(5), "init is slow to answer during a flood");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = wait_for(Duration::from_secs(60), "the whole flood", || {
        let p = init.get("/v1/services/flood/logs?limit=100000");
        p["lines"].as_array().unwrap().iter().any(|l| l["text"] == "done").then_some(p)
    });
    let lines = page["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1000, "the ring holds its configured size");
    let last_stdout = lines.iter().rev().find(|l| l["stream"] == "stdout").unwrap();
    assert_eq!(last_stdout["text"], "line 49999 of the flood");
    let s = init.service("flood");
    assert_eq!(s["log"]["capacity"], 1000);
    assert!(s["log"]["last_seq"].as_u64().unwrap() >= 50_001, "{s}");
    // Sequence numbers are contiguous: nothing was lost on the way into the ring.
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    // Persisted, rotated at the cap.
    let logs = init.perm.join("init/logs");
    wait_for(Duration::from_secs(10), "the persisted tail", || {
        fs::read_to_string(logs.join("flood.log")).ok()?.contains("stderr done").then_some(())
    });
    let cur = fs::metadata(logs.join("flood.log")).unwrap().len();
    let old = fs::metadata(logs.join("flood.log.1")).unwrap().len();
    assert!(cur <= 200_000 && old <= 200_000 && old > 150_000, "{cur} {old}");
    // The console could not keep up: lines were dropped and counted, nothing blocked.
    let st = init.get("/v1/status");
    assert!(st["console_dropped_lines"].as_u64().unwrap() > 1000, "{}", st["console_dropped_lines"]);
    drop(reader);
}

trait NonBlockingOpen {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlockingOpen for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
    }
}

#[test]
fn services_run_unprivileged_with_only_their_capabilities() {
    if !require("services_run_unprivileged_with_only_their_capabilities") {
        return;
    }
    // Proves the shared group can create sockets in /run/router, then becomes sleep.
    let script = "run=\"$4\"; : > \"$run/router/caps.probe\" && echo probe-ok; exec sleep 1000";
    let init = Init::start(
        "caps",
        vec![Svc::new("caps", script).with(json!({"capabilities": ["NET_RAW", "KILL"], "env": {"GREETING": "hi"}}))],
    );
    let s = init.wait_state("caps", "Running", Duration::from_secs(10));
    let ns_pid = s["pid"].as_i64().unwrap();
    let pid = wait_for(Duration::from_secs(10), "the service to exec sleep", || {
        let pid = init.host_pid_of(ns_pid)?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "sleep").then_some(pid)
    });
    let field = |f: &str| common::status_field(pid, f).unwrap();
    assert_eq!(field("Uid:"), "1001\t1001\t1001\t1001");
    assert_eq!(field("Gid:"), "1001\t1001\t1001\t1001");
    assert_eq!(field("Groups:"), "1000");
    let want = format!("{:016x}", (1u64 << 13) | (1u64 << 5));
    for set in ["CapAmb:", "CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(field(set), want, "{set}");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("SigBlk:"), "0000000000000000", "the signal mask is cleared");
    // Own session and process group.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // (/proc numbers them as the reader's namespace does.)
    assert_eq!((after_comm[2], after_comm[3]), (pid.to_string().as_str(), pid.to_string().as_str()), "pgrp, session");
    // Home: /perm/caps, owned by the service, cwd and HOME.
    let home = init.perm.join("caps");
    let meta = fs::metadata(&home).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777), (1001, 1001, 0o755));
    assert_eq!(fs::read_link(format!("/proc/{pid}/cwd")).unwrap(), home);
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env: Vec<String> = environ.split(|b| *b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
    assert!(env.contains(&format!("HOME={}", home.display())), "{env:?}");
    assert!(env.contains(&"GREETING=hi".to_owned()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("CARGO")), "init's environment leaked: {env:?}");
    // Arguments: --perm and --run were added (the probe below used the latter).
    assert_eq!(s["args"], json!(["--perm", init.perm, "--run", init.run]));
    // /run/<name>.pid names it; /run/router is the shared group's, sticky.
    assert_eq!(fs::read_to_string(init.run.join("caps.pid")).unwrap().trim(), ns_pid.to_string());
    let router = fs::metadata(init.run.join("router")).unwrap();
    assert_eq!((router.gid(), router.permissions().mode() & 0o7777), (1000, 0o1770));
    let probe = fs::metadata(init.run.join("router/caps.probe")).unwrap();
    assert_eq!(probe.uid(), 1001);
    // The password for the web, readable by the shared group only.
    let pw = fs::metadata(init.perm.join("router/password")).unwrap();
    assert_eq!((pw.uid(), pw.gid(), pw.permissions().mode() & 0o777), (0, 1000, 0o640));
    assert_eq!(fs::read_to_string(init.perm.join("router/password")).unwrap().trim(), common::PASSWORD);
    // The pid file goes when the service does.
    init.post("/v1/services/caps/stop");
    init.wait_state("caps", "Stopped", Duration::from_secs(15));
    assert!(!init.run.join("caps.pid").exists());
}

#[test]
fn status_aggregates_what_services_answer_on_their_sockets() {
    if !require("status_aggregates_what_services_answer_on_their_sockets") {
        return;
    }
    let init = Init::start(
        "aggregate",
        vec![
            Svc::new("answering", "exec sleep 1000"),
            Svc::new("silent", "exec sleep 1000"),
            Svc::new("absent", "exec sleep 1000"),
        ],
    );
    // Stand-ins for the services' control sockets: one answers, one accepts and never replies.
    let ev = runtime::EventLoop::new().unwrap();
    let control = runtime::control::Control::new("answering", None, ev.waker());
    control.set_phase(runtime::control::Phase::Bound);
    control.set_field("lease", json!({"ip": "192.0.2.9"}));
    let server = runtime::httpd::Server::new().unwrap();
    control.listen(&server, &runtime::control::socket_path(&init.run, "answering")).unwrap();
    let _silent = std::os::unix::net::UnixListener::bind(runtime::control::socket_path(&init.run, "silent")).unwrap();
    for n in ["answering", "silent", "absent"] {
        init.wait_state(n, "Running", Duration::from_secs(10));
    }
    let t0 = common::now();
    let st = init.get("/v1/status");
    assert!(common::now() - t0 < Duration::from_secs(5), "a silent service must not hold status up");
    assert_eq!(st["name"], "init");
    let svc = |n: &str| st["services"].as_array().unwrap().iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!(svc("answering")["status"]["phase"], "Bound");
    assert_eq!(svc("answering")["status"]["lease"]["ip"], "192.0.2.9");
    assert!(svc("silent")["status_error"].as_str().unwrap().starts_with("not answering"), "{}", svc("silent"));
    assert!(svc("absent")["status_error"].as_str().unwrap().starts_with("not answering"));
    for key in ["hostname", "version", "mode", "memory", "perm", "boot", "addresses", "conditions", "phase"] {
        assert!(st.get(key).is_some(), "status lacks {key}");
    }
    assert_eq!(st["version"], "test-version 2025-01-01T00:00:00Z");
    assert_eq!(st["mode"], "supervise-only");
    assert!(svc("answering")["rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn routerctl_shows_status_and_logs_and_restarts_and_stops() {
    if !require("routerctl_shows_status_and_logs_and_restarts_and_stops") {
        return;
    }
    let init = Init::start("ctl", vec![Svc::new("talker", "echo hello from talker; exec sleep 1000")]);
    init.wait_state("talker", "Running", Duration::from_secs(10));
    let ctl = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_routerctl"))
            .arg("--run")
            .arg(&init.run)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = ctl(&["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("talker") && out.contains("Running"), "{out}");
    let (code, out, _) = wait_for(Duration::from_secs(10), "the greeting", || {
        let r = ctl(&["logs", "talker"]);
        r.1.contains("hello from talker").then_some(r)
    });
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = ctl(&["restart", "talker"]);
    assert_eq!((code, out.trim()), (0, "accepted"));
    wait_for(Duration::from_secs(10), "the restart", || {
        (init.events_of("init.service.started", "talker").len() == 2).then_some(())
    });
    assert_eq!(ctl(&["stop", "talker"]).0, 0);
    init.wait_state("talker", "Stopped", Duration::from_secs(15));
    let (code, _, err) = ctl(&["stop", "nonexistent"]);
    assert_eq!(code, 3, "{err}");
    let (code, out, _) = ctl(&["events"]);
    assert_eq!(code, 0);
    assert!(out.contains("init.service.started") && out.contains("init.service.exited"), "{out}");
    let (code, out, _) = ctl(&["logs", "init"]);
    assert_eq!(code, 0);
    assert!(out.contains("talker: stop asked for"), "{out}");
}

#[test]
fn logs_survive_a_restart_of_init() {
    if !require("logs_survive_a_restart_of_init") {
        return;
    }
    let first = Init::start("persist", vec![Svc::new("diary", "echo \"entry $$\"; exec sleep 1000")]);
    first.wait_state("diary", "Running", Duration::from_secs(10));
    wait_for(Duration::from_secs(10), "the first entry", || {
        fs::read_to_string(first.perm.join("init/logs/diary.log")).ok()?.contains("stdout entry").then_some(())
    });
    let dir = first.stop_keep();
    let second = Init::start_in(dir, vec![Svc::new("diary", "echo \"entry $$\"; exec sleep 1000")], Options::default());
    let text = wait_for(Duration::from_secs(10), "the second entry", || {
        let t = fs::read_to_string(second.perm.join("init/logs/diary.log")).ok()?;
        (t.matches("stdout entry").count() == 2).then_some(t)
    });
    assert!(text.contains("init shutdown") || text.contains("Shutdown"), "the first run's end is there too:\n{text}");
    // The event sequence continues too.
    let events = second.events("init.service.started");
    assert!(events.len() >= 2, "{events:?}");
}

/// Peers send SIGUSR1 through the pid file, which init writes at once: a
/// service that has not set up its signal handling yet must survive it
/// (on the image, backupd died of netconfigd's first SIGUSR1). The script
/// stands for a service still starting: it never handles SIGUSR1.
#[test]
fn a_reload_signal_before_the_service_is_ready_does_not_kill_it() {
    if !require("a_reload_signal_before_the_service_is_ready_does_not_kill_it") {
        return;
    }
    let init = Init::start("earlyusr1", vec![Svc::new("slow", "sleep 2; echo survived; exec sleep 1000")]);
    let s = init.wait_state("slow", "Running", Duration::from_secs(10));
    let pid = init.host_pid_of(s["pid"].as_i64().unwrap()).unwrap();
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::USR1).unwrap();
    wait_for(Duration::from_secs(15), "the service to go on after SIGUSR1", || {
        fs::read_to_string(init.perm.join("init/logs/slow.log")).ok()?.contains("stdout survived").then_some(())
    });
    let s = init.wait_state("slow", "Running", Duration::from_secs(5));
    assert_eq!(s["restarts"], 0, "{s}");
    let ignored = u64::from_str_radix(&common::status_field(pid, "SigIgn:").unwrap(), 16).unwrap();
    assert_ne!(ignored & (1 << 9), 0, "SIGUSR1 starts ignored: {ignored:016x}");
}

/// Every service is in the shared group (its socket in /run/router); with
/// `password_gid` only that group reads the password, also on a /perm whose
/// password an older init gave to the shared group.
#[test]
fn only_the_password_group_reads_the_password() {
    if !require("only_the_password_group_reads_the_password") {
        return;
    }
    let first = Init::start("pwgroup", vec![Svc::new("idle", "exec sleep 1000")]);
    let meta = fs::metadata(first.perm.join("router/password")).unwrap();
    assert_eq!((meta.gid(), meta.permissions().mode() & 0o777), (1000, 0o640), "the default: the shared group");
    let dir = first.stop_keep();
    // $2 is the --perm folder init appends.
    let probe =
        "if cat \"$2/router/password\" >/dev/null; then echo can-read; else echo cannot-read; fi; exec sleep 1000";
    let second = Init::start_in(
        dir,
        vec![Svc::new("plain", probe), Svc::new("checker", probe).with(json!({"groups": [1000, 1010]}))],
        Options { password_gid: Some(1010), ..Options::default() },
    );
    for (name, want) in [("plain", "stdout cannot-read"), ("checker", "stdout can-read")] {
        second.wait_state(name, "Running", Duration::from_secs(10));
        wait_for(Duration::from_secs(10), want, || {
            fs::read_to_string(second.perm.join(format!("init/logs/{name}.log"))).ok()?.contains(want).then_some(())
        });
    }
    for (path, mode) in [("router", 0o750), ("router/password", 0o640)] {
        let meta = fs::metadata(second.perm.join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o777), (0, 1010, mode), "{path}");
    }
    let run = fs::metadata(second.run.join("router")).unwrap();
    assert_eq!((run.gid(), run.permissions().mode() & 0o7777), (1000, 0o1770), "/run/router stays the shared group's");
}

#[test]
fn a_bad_manifest_runs_no_service_and_says_why() {
    if !require("a_bad_manifest_runs_no_service_and_says_why") {
        return;
    }
    let init =
        Init::start("badmanifest", vec![Svc::new("typo", "exec sleep 1000").with(json!({"capabilties": ["NET_RAW"]}))]);
    let st = init.get("/v1/status");
    assert_eq!(st["phase"], "Error");
    assert!(st["manifest_error"].as_str().unwrap().contains("unknown field `capabilties`"), "{}", st["manifest_error"]);
    assert_eq!(st["services"], json!([]));
    let cond = st["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "ManifestValid").unwrap().clone();
    assert_eq!(cond["status"], "False");
    // init itself keeps serving: the web interface says what is wrong.
    let auth = init.basic_auth();
    let page = common::http(init.web_addr(), "GET", "/", &[("Authorization", &auth)], "");
    assert!(page.body.contains("The service manifest was not used"), "{}", page.body);
}

#[test]
fn check_manifest_validates_for_mkimage() {
    let dir = testbed::TempDir::new("checkmanifest");
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    fs::write(&good, r#"{"services":[{"name":"dnsd","path":"/svc/dnsd","uid":1004,"gid":1004,"capabilities":["NET_BIND_SERVICE"]}]}"#)
        .unwrap();
    fs::write(&bad, r#"{"services":[{"name":"dnsd","path":"/svc/dnsd","uid":0,"gid":0}]}"#).unwrap();
    let run = |f: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_init")).arg("--check-manifest").arg(f).output().unwrap()
    };
    let ok = run(&good);
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 service(s), valid"));
    let refused = run(&bad);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("run_as_root"), "{refused:?}");
}
