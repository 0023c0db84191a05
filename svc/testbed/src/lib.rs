//! The integration-test harness: network namespaces, veth pairs with fixed MACs,
//! real peer programs (dnsmasq, kea, dhclient, …) started inside a namespace with
//! a readiness check and a log, and code run inside a namespace from the test.
//!
//! Everything is owned by a guard that tears it down on drop, also when a test
//! panics: a [`Peer`] is killed, a [`Netns`] has its remaining processes killed
//! and is deleted (which deletes its links). Names are unique per process and
//! test (`r7t-<tag>-<pid>-<n>`), so tests run in parallel; namespaces left by a
//! process that died are removed by the next [`Netns::new`].
//!
//! Needs root and iproute2; tests call [`require`] first, which skips (or, with
//! `ROUTER7_STRICT=1` as in CI, fails) when either is missing.
//!
//! Test code: a failed setup step panics with the command and its output.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::fmt::Write as _;
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub use runtime::clock;
pub use runtime::testing::install_executable;

static COUNTER: AtomicU32 = AtomicU32::new(0);
const PREFIX: &str = "r7t-";

/// Whether the test can run: root and every tool in `tools` (see [`runtime::testing`]).
#[must_use]
pub fn require(test: &str, tools: &[&str]) -> bool {
    if !runtime::testing::root(test) {
        return false;
    }
    ["ip"].iter().chain(tools).all(|t| runtime::testing::tool(t, test).is_some())
}

/// Runs a command, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes `contents` to `dest` as an executable (mode 0755) that can be run at
/// once: see [`install_executable`]. The bytes go to a non-executable
/// `<dest>.src` first, which is removed.
pub fn write_executable(dest: &Path, contents: impl AsRef<[u8]>) {
    let mut src = dest.as_os_str().to_owned();
    src.push(".src");
    let src = PathBuf::from(src);
    fs::write(&src, contents).unwrap();
    install_executable(&src, dest);
    fs::remove_file(&src).unwrap();
}

/// A temporary folder removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty folder named after `tag`.
    #[must_use]
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("r7t-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// The folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn netns_pids(name: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

fn kill_all(name: &str) {
    for _ in 0..50 {
        let pids = netns_pids(name);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn delete_netns(name: &str) {
    kill_all(name);
    let _ = Command::new("ip").args(["netns", "del", name]).stderr(Stdio::null()).status();
}

/// Removes namespaces of ours whose creating process is gone.
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        // r7t-<tag>-<pid>-<n>
        let mut parts = rest.rsplitn(3, '-');
        let _n = parts.next();
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !pid_alive(pid) {
            delete_netns(name);
        }
    }
}

/// A network namespace, deleted with everything in it on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with loopback up and IPv6 DAD off (so addresses are
    /// usable at once), named after `tag` (short: letters and digits).
    #[must_use]
    pub fn new(tag: &str) -> Self {
        remove_leftovers();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{tag}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        for key in ["net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"] {
            ns.sysctl(key, "0");
        }
        ns
    }

    /// Its name (for `ip netns exec`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> args…`, checked.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// `ip -j -n <ns> args…` parsed as JSON.
    #[must_use]
    pub fn ip_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["-j"];
        full.extend_from_slice(args);
        let out = self.ip(&full);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `program args…` inside the namespace and returns its output (unchecked).
    #[must_use]
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} in {}: {e}", self.name))
    }

    /// Runs `program args…` inside the namespace, panicking when it fails.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self.exec(program, args);
        assert!(
            out.status.success(),
            "{program} {} in {} failed ({}):\n{}{}",
            args.join(" "),
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec_ok("sysctl", &["-q", "-w", &format!("{key}={value}")]);
    }

    /// Adds an address (`10.0.0.1/24`, `2001:db8::1/64`) to `dev` and sets it up.
    pub fn addr(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev]);
        self.ip(&["link", "set", dev, "up"]);
    }

    /// Waits until `dev` has a usable IPv6 link-local address, which it needs before
    /// sending anything over IPv6.
    pub fn wait_for_link_local(&self, dev: &str) {
        for _ in 0..300 {
            let out = self.ip(&["-6", "addr", "show", "dev", dev, "scope", "link"]);
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("fe80::") && !text.contains("tentative") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{dev} in {} got no link-local address", self.name);
    }

    /// Runs `f` on a thread that has entered this namespace: sockets it opens
    /// belong to the namespace for good.
    pub fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Starts a peer program inside the namespace; see [`PeerSpec`].
    #[must_use]
    pub fn spawn(&self, spec: PeerSpec<'_>) -> Peer {
        Peer::start(Some(self), spec)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_netns(&self.name);
    }
}

/// Creates a veth pair: `a_name` (MAC `a_mac`) in `a`, `b_name` (MAC `b_mac`) in
/// `b`, both up. The pair disappears with either namespace.
pub fn veth(a: &Netns, a_name: &str, a_mac: &str, b: &Netns, b_name: &str, b_mac: &str) {
    a.ip(&[
        "link",
        "add",
        a_name,
        "address",
        a_mac,
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "address",
        b_mac,
        "netns",
        b.name(),
    ]);
    a.ip(&["link", "set", a_name, "up"]);
    b.ip(&["link", "set", b_name, "up"]);
}

/// When a started peer counts as ready.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// Its log (stdout, stderr and `log_file`) contains this text.
    LogLine(String),
    /// This file exists (e.g. a pid file).
    File(PathBuf),
    /// Something listens on this UDP port inside the namespace (`ss -lun`).
    UdpPort(u16),
    /// Something listens on this TCP port inside the namespace (`ss -ltn`).
    TcpPort(u16),
    /// Right away.
    Started,
}

/// How to start a peer.
#[derive(Debug, Clone)]
pub struct PeerSpec<'a> {
    /// A short name for messages.
    pub name: &'a str,
    /// The program.
    pub program: &'a str,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// A log file the program writes itself (read together with its output).
    pub log_file: Option<PathBuf>,
    /// When it is ready.
    pub ready: Readiness,
    /// How long readiness may take.
    pub timeout: Duration,
}

impl<'a> PeerSpec<'a> {
    /// A spec that is ready when started, with a 10 s timeout.
    #[must_use]
    pub fn new(name: &'a str, program: &'a str, args: &[&str]) -> Self {
        Self {
            name,
            program,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            log_file: None,
            ready: Readiness::Started,
            timeout: Duration::from_secs(10),
        }
    }

    /// Ready when the log contains `text`.
    #[must_use]
    pub fn ready_on_log(mut self, text: &str) -> Self {
        self.ready = Readiness::LogLine(text.to_owned());
        self
    }

    /// Ready when `r` holds.
    #[must_use]
    pub fn ready_when(mut self, r: Readiness) -> Self {
        self.ready = r;
        self
    }

    /// The program also writes this log file.
    #[must_use]
    pub fn log_file(mut self, path: &Path) -> Self {
        self.log_file = Some(path.to_owned());
        self
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A running peer program, killed on drop. Its output goes to a file, not a
/// pipe: programs such as dhcpcd fork helpers that keep a pipe open forever.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Option<Child>,
    output: PathBuf,
    log_file: Option<PathBuf>,
    ns: Option<String>,
    _dir: TempDir,
}

impl Peer {
    fn start(ns: Option<&Netns>, spec: PeerSpec<'_>) -> Self {
        let dir = TempDir::new(&format!("peer-{}", spec.name));
        let output = dir.path().join("output.log");
        let out = fs::File::create(&output).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.name(), spec.program]);
                c
            }
            None => Command::new(spec.program),
        };
        cmd.args(&spec.args).stdin(Stdio::null()).stdout(out).stderr(err);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", spec.program));
        let mut peer = Self {
            name: spec.name.to_owned(),
            child: Some(child),
            output,
            log_file: spec.log_file.clone(),
            ns: ns.map(|n| n.name().to_owned()),
            _dir: dir,
        };
        peer.await_ready(&spec);
        peer
    }

    fn await_ready(&mut self, spec: &PeerSpec<'_>) {
        let deadline = clock::now() + spec.timeout;
        loop {
            let ready = match &spec.ready {
                Readiness::Started => true,
                Readiness::LogLine(text) => self.log().contains(text.as_str()),
                Readiness::File(p) => p.exists(),
                Readiness::UdpPort(port) => self.listening("-lun", *port),
                Readiness::TcpPort(port) => self.listening("-ltn", *port),
            };
            if ready {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited before it was ready ({status}):\n{}", self.name, self.log());
            }
            assert!(
                clock::now() < deadline,
                "{} not ready after {:?} ({:?}):\n{}",
                self.name,
                spec.timeout,
                spec.ready,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn listening(&self, flags: &str, port: u16) -> bool {
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "ss", flags]);
                c
            }
            None => {
                let mut c = Command::new("ss");
                c.arg(flags);
                c
            }
        };
        let Ok(out) = cmd.output() else { return false };
        let needle = format!(":{port} ");
        String::from_utf8_lossy(&out.stdout).lines().any(|l| l.contains(&needle))
    }

    /// Everything the program printed, then its own log file.
    #[must_use]
    pub fn log(&self) -> String {
        let mut text = fs::read_to_string(&self.output).unwrap_or_default();
        if let Some(f) = &self.log_file {
            let _ = write!(text, "{}", fs::read_to_string(f).unwrap_or_default());
        }
        text
    }

    /// Waits until the log contains `text`; returns the log or an error naming what was seen.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) -> Result<String, String> {
        let deadline = clock::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(text) {
                return Ok(log);
            }
            if clock::now() >= deadline {
                return Err(format!("{}: {text:?} not in the log after {timeout:?}:\n{log}", self.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id (of the program itself: `ip netns exec` execs it).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status();
    }

    /// Waits for the program to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = clock::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if clock::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the program: SIGTERM, then SIGKILL after two seconds.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = clock::now() + Duration::from_secs(2);
            while clock::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- log of {} ----\n{}---- end of log of {} ----", self.name, self.log(), self.name);
        }
    }
}

/// dnsmasq as a DHCP server peer: in the foreground, no DNS (`--port=0`),
/// bound to `interface` only, authoritative, its lease file `dir/leases` and
/// its log `dir/dnsmasq.log`, and no pid file — concurrent dnsmasqs race on
/// `/run/dnsmasq.pid` and the loser exits. `range` is its `--dhcp-range`
/// (IPv4 or IPv6); `extra` adds options. Ready once it logs the range.
#[must_use]
pub fn dnsmasq_dhcp(interface: &str, range: &str, dir: &Path, extra: &[&str]) -> PeerSpec<'static> {
    let log = dir.join("dnsmasq.log");
    let mut args = vec![
        "-k".to_owned(),
        "--no-resolv".to_owned(),
        "--port=0".to_owned(),
        "--pid-file=".to_owned(),
        "--bind-interfaces".to_owned(),
        format!("--interface={interface}"),
        format!("--dhcp-range={range}"),
        format!("--dhcp-leasefile={}", dir.join("leases").display()),
        "--dhcp-authoritative".to_owned(),
        format!("--log-facility={}", log.display()),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let first = range.split(',').next().unwrap_or(range);
    let mut spec = PeerSpec::new("dnsmasq", "dnsmasq", &[]).log_file(&log).ready_on_log(&format!("IP range {first}"));
    spec.args = args;
    spec
}
