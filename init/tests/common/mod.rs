//! The harness for init's integration tests: runs the real `init` binary with
//! `--supervise-only` as PID 1 of a fresh PID namespace (`unshare --pid --fork
//! --mount-proc --kill-child`), rooted in a temporary folder, with test
//! services written as shell scripts. Everything dies with the guard: killing
//! the namespace's PID 1 kills every process in it.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use testbed::TempDir;

pub const PASSWORD: &str = "hunter2-test-password";

/// A test service: a shell script and its manifest entry.
pub struct Svc {
    pub name: &'static str,
    pub script: String,
    pub extra: Value,
}

impl Svc {
    pub fn new(name: &'static str, script: &str) -> Self {
        Self { name, script: script.to_owned(), extra: json!({}) }
    }

    pub fn with(mut self, extra: Value) -> Self {
        self.extra = extra;
        self
    }
}

pub fn now() -> Instant {
    testbed::clock::now()
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running init.
pub struct Init {
    pub dir: TempDir,
    pub perm: PathBuf,
    pub run: PathBuf,
    pub port: u16,
    unshare: Option<Child>,
    pub host_pid: i32,
}

#[derive(Default)]
pub struct Options {
    /// More arguments for init.
    pub args: Vec<String>,
    /// The manifest's shared_gid.
    pub shared_gid: Option<u32>,
    /// The manifest's password_gid.
    pub password_gid: Option<u32>,
    /// Run in this network namespace (`ip netns exec`).
    pub netns: Option<String>,
    /// Do not pass --http-addr: listen on the private addresses.
    pub private_addrs: bool,
}

impl Init {
    pub fn start(tag: &str, services: Vec<Svc>) -> Self {
        Self::start_with(tag, services, Options::default())
    }

    pub fn start_with(tag: &str, services: Vec<Svc>, opts: Options) -> Self {
        let dir = TempDir::new(tag);
        Self::start_in(dir, services, opts)
    }

    /// Starts init in `dir` (which may hold a previous run's /perm).
    pub fn start_in(dir: TempDir, services: Vec<Svc>, opts: Options) -> Self {
        let root = dir.path().to_path_buf();
        // Services run as other users: they must be able to reach their scripts.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let (perm, run, svc) = (root.join("perm"), root.join("run"), root.join("svc"));
        for d in [&perm, &run, &svc] {
            fs::create_dir_all(d).unwrap();
        }
        let mut entries = Vec::new();
        for s in &services {
            let path = svc.join(s.name);
            testbed::write_executable(&path, format!("#!/bin/sh\n{}\n", s.script));
            let mut entry = json!({"name": s.name, "path": path, "uid": 1001, "gid": 1001, "groups": [1000]});
            for (k, v) in s.extra.as_object().unwrap() {
                entry[k] = v.clone();
            }
            entries.push(entry);
        }
        let mut manifest = json!({ "services": entries });
        if let Some(g) = opts.shared_gid {
            manifest["shared_gid"] = json!(g);
        }
        if let Some(g) = opts.password_gid {
            manifest["password_gid"] = json!(g);
        }
        fs::write(root.join("services.json"), manifest.to_string()).unwrap();
        fs::write(root.join("image-password"), format!("{PASSWORD}\n")).unwrap();
        fs::write(root.join("version"), "test-version 2025-01-01T00:00:00Z\n").unwrap();
        let port = free_port();
        let log = fs::File::create(root.join("init.stderr")).unwrap();
        let mut cmd = match &opts.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "unshare"]);
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", env!("CARGO_BIN_EXE_init"), "--supervise-only"])
            .arg("--manifest")
            .arg(root.join("services.json"))
            .arg("--perm")
            .arg(&perm)
            .arg("--run")
            .arg(&run)
            .arg("--image-password")
            .arg(root.join("image-password"))
            .arg("--version-file")
            .arg(root.join("version"))
            .args(["--http-port", &port.to_string()])
            .args(if opts.private_addrs { &[][..] } else { &["--http-addr", "127.0.0.1"][..] })
            .args(&opts.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let unshare = cmd.spawn().unwrap();
        let unshare_pid = unshare.id();
        let host_pid = wait_for(Duration::from_secs(10), "init to start in its namespace", || {
            let children = fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).ok()?;
            children.split_whitespace().next()?.parse().ok()
        });
        let init = Self { dir, perm, run, port, unshare: Some(unshare), host_pid };
        wait_for(Duration::from_secs(20), "init's control socket", || init.try_get("/v1/healthz").ok());
        init
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.root().join("init.stderr")).unwrap_or_default()
    }

    pub fn socket(&self) -> PathBuf {
        self.run.join("router/init.sock")
    }

    pub fn try_get(&self, path: &str) -> Result<Value, String> {
        let r = runtime::unix_http::request(&self.socket(), "GET", path, b"", Duration::from_secs(70))
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("{path}: {} {}", r.status, r.text()));
        }
        r.json().map_err(|e| e.to_string())
    }

    pub fn get(&self, path: &str) -> Value {
        self.try_get(path).unwrap_or_else(|e| panic!("GET {path}: {e}\ninit's stderr:\n{}", self.stderr()))
    }

    pub fn post(&self, path: &str) -> (u16, Value) {
        let r = runtime::unix_http::request(&self.socket(), "POST", path, b"", Duration::from_secs(10)).unwrap();
        (r.status, r.json().unwrap_or(Value::Null))
    }

    pub fn service(&self, name: &str) -> Value {
        self.get(&format!("/v1/services/{name}"))
    }

    pub fn events(&self, topic: &str) -> Vec<Value> {
        self.get(&format!("/v1/events?since=0&topic={topic}"))["events"].as_array().cloned().unwrap_or_default()
    }

    /// Events of `topic` about service `name`.
    pub fn events_of(&self, topic: &str, name: &str) -> Vec<Value> {
        self.events(topic).into_iter().filter(|e| e["topic"] == topic && e["attributes"]["service"] == name).collect()
    }

    pub fn wait_state(&self, name: &str, state: &str, timeout: Duration) -> Value {
        wait_for(timeout, &format!("{name} to be {state}"), || {
            let s = self.service(name);
            (s["state"] == state).then_some(s)
        })
    }

    /// Host pids of every process in init's PID namespace (init included).
    pub fn namespace_pids(&self) -> Vec<i32> {
        let ns = fs::read_link(format!("/proc/{}/ns/pid", self.host_pid)).unwrap();
        fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l == ns))
            .collect()
    }

    /// The host pid of the process init knows as `ns_pid`.
    pub fn host_pid_of(&self, ns_pid: i64) -> Option<i32> {
        self.namespace_pids().into_iter().find(|pid| {
            status_field(*pid, "NSpid:").is_some_and(|f| f.split_whitespace().nth(1) == Some(&ns_pid.to_string()))
        })
    }

    /// Zombies in the namespace.
    pub fn zombies(&self) -> Vec<i32> {
        self.namespace_pids()
            .into_iter()
            .filter(|p| status_field(*p, "State:").is_some_and(|s| s.starts_with('Z')))
            .collect()
    }

    /// Sends `signal` to init and waits for the namespace to end; returns how
    /// long it took, how it ended, its log and its folder.
    pub fn stop_with(
        mut self,
        signal: i32,
        timeout: Duration,
    ) -> (Duration, std::process::ExitStatus, String, TempDir) {
        let t0 = now();
        // Signal 0: init is already on its way out; only wait.
        if signal != 0 {
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(self.host_pid).unwrap(),
                rustix::process::Signal::from_named_raw(signal).unwrap(),
            )
            .unwrap();
        }
        let mut child = self.unshare.take().unwrap();
        let status = wait_for(timeout, "init to exit", || child.try_wait().unwrap());
        let took = now() - t0;
        let log = self.stderr();
        let dir = std::mem::replace(&mut self.dir, TempDir::new("moved"));
        (took, status, log, dir)
    }

    /// Stops init, keeping its folder (for a second run on the same /perm).
    pub fn stop_keep(self) -> TempDir {
        self.stop_with(rustix::process::Signal::TERM.as_raw(), Duration::from_secs(30)).3
    }

    pub fn basic_auth(&self) -> String {
        format!("Basic {}", runtime::base64::encode(format!("router:{PASSWORD}").as_bytes()))
    }

    pub fn web_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Some(mut child) = self.unshare.take() {
            // SIGKILL to the namespace's PID 1 ends every process in it.
            if let Some(pid) = rustix::process::Pid::from_raw(self.host_pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().to_owned())
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over TCP (Connection: close).
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Http {
    // init binds its web listener on its own thread after the control socket
    // answers (which is what Init::start waits for): a refusal right after the
    // start is retried.
    let mut s = wait_for(Duration::from_secs(10), "init's web listener", || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()
    });
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    // Read the head, then as much body as Content-Length says (some servers,
    // Chromium's DevTools among them, keep the connection open), else to the end.
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let length =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) => {
            let mut body = vec![0u8; n];
            s.read_exact(&mut body).unwrap();
            raw.extend(body);
        }
        None => {
            s.read_to_end(&mut raw).unwrap();
        }
    }
    let r = runtime::unix_http::parse_response(&raw).unwrap();
    Http { status: r.status, headers: r.headers.clone(), body: r.text() }
}
