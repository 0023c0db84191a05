//! The namespace fixture the integration tests share: a router namespace whose
//! `lan0` faces a LAN namespace's `eth0` over a veth pair, radvd running in the
//! router namespace on a temporary `/perm` and `/run`.
#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testbed::{Netns, Peer, PeerSpec, TempDir, veth};

pub const ROUTER_MAC: &str = "02:73:53:00:ca:fe";
pub const ROUTER_LL: &str = "fe80::73:53ff:fe00:cafe";
pub const HOST_MAC: &str = "02:73:53:00:be:ef";
pub const HOST_LL: &str = "fe80::73:53ff:fe00:beef";

/// router7's own lease.json format: a /48, no lifetimes.
pub const ROUTER7_LEASE: &str = r#"{"valid_until":"2030-01-01T00:00:00Z","prefixes":[{"IP":"2a02:168:4a00::","Mask":"////////AAAAAAAAAAAAAA=="}],"dns":[]}"#;

/// When radvd counts as started: its socket is open on lan0.
pub const LISTENING: &str = "listening for router solicitations on lan0";

/// A lease delegating the /48 at `ip`, in router7's format.
pub fn lease_for(ip: &str) -> String {
    format!(
        r#"{{"valid_until":"2030-01-01T00:00:00Z","prefixes":[{{"IP":"{ip}","Mask":"////////AAAAAAAAAAAAAA=="}}],"dns":[]}}"#
    )
}

/// How the LAN side behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The kernel's own SLAAC (`accept_ra=1`, forwarding 0).
    Slaac,
    /// Silent: `accept_ra=0`, so the kernel sends no solicitations of its own.
    Quiet,
}

/// Fields drop in order: radvd first, the namespaces last.
pub struct Lan {
    radvd: Option<Peer>,
    pub dir: TempDir,
    pub lan: Netns,
    pub router: Netns,
}

impl Lan {
    /// Starts the namespaces, the link between them, and radvd with `lease` (if any) in place.
    pub fn start(tag: &str, host: Host, lease: Option<&str>, args: &[&str]) -> Self {
        let mut lan = Self::new(tag, host, lease);
        lan.connect();
        lan.spawn(args, LISTENING);
        lan
    }

    /// The namespaces and files, without the link and without radvd.
    pub fn new(tag: &str, host: Host, lease: Option<&str>) -> Self {
        let router = Netns::new(&format!("{tag}r"));
        let lan = Netns::new(&format!("{tag}l"));
        router.sysctl("net.ipv6.conf.all.forwarding", "1");
        router.sysctl("net.ipv6.conf.default.forwarding", "1");
        let accept_ra = if host == Host::Slaac { "1" } else { "0" };
        lan.sysctl("net.ipv6.conf.all.accept_ra", accept_ra);
        lan.sysctl("net.ipv6.conf.default.accept_ra", accept_ra);
        let dir = TempDir::new("radvd");
        if let Some(lease) = lease {
            write(&dir.path().join("perm/dhcp6/wire/lease.json"), lease);
        }
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Self { radvd: None, dir, lan, router }
    }

    /// Creates lan0 ↔ eth0 and waits for their link-local addresses.
    pub fn connect(&self) {
        veth(&self.router, "lan0", ROUTER_MAC, &self.lan, "eth0", HOST_MAC);
        self.router.wait_for_link_local("lan0");
        self.lan.wait_for_link_local("eth0");
    }

    /// Starts radvd (again), ready when its log shows `ready`.
    pub fn spawn(&mut self, args: &[&str], ready: &str) {
        let perm = self.dir.path().join("perm").display().to_string();
        let run = self.dir.path().join("run").display().to_string();
        let mut all = vec!["--perm", &perm, "--run", &run, "--lan", "lan0", "--debug"];
        all.extend_from_slice(args);
        let mut spec = PeerSpec::new("radvd", env!("CARGO_BIN_EXE_radvd"), &all).ready_on_log(ready);
        spec.timeout = Duration::from_secs(30);
        self.radvd = Some(self.router.spawn(spec));
    }

    /// The running radvd.
    pub fn radvd(&mut self) -> &mut Peer {
        self.radvd.as_mut().expect("radvd was started")
    }

    fn log(&self) -> String {
        self.radvd.as_ref().map(Peer::log).unwrap_or_default()
    }

    pub fn perm(&self) -> PathBuf {
        self.dir.path().join("perm")
    }

    pub fn write_lease(&self, text: &str) {
        write(&self.perm().join("dhcp6/wire/lease.json"), text);
    }

    /// Writes `<perm>/radvd/<name>`.
    pub fn write_own(&self, name: &str, text: &str) {
        write(&self.perm().join("radvd").join(name), text);
    }

    /// What dhcp6 and netconfigd do after a change.
    pub fn sigusr1(&mut self) {
        self.radvd().signal("USR1");
    }

    fn control(&self, method: &str, path: &str) -> Value {
        let socket = self.dir.path().join("run/router/radvd.sock");
        let r = runtime::unix_http::request(&socket, method, path, b"", Duration::from_secs(10)).unwrap();
        r.json().unwrap()
    }

    pub fn status(&self) -> Value {
        self.control("GET", "/v1/status")
    }

    pub fn event_topics(&self) -> Vec<String> {
        let events = self.control("GET", "/v1/events?since=0");
        events["events"].as_array().unwrap().iter().map(|e| e["topic"].as_str().unwrap().to_owned()).collect()
    }

    /// Polls the control API's status until `check` holds.
    pub fn wait_status(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = runtime::clock::now() + Duration::from_secs(30);
        loop {
            let s = self.status();
            if check(&s) {
                return s;
            }
            assert!(runtime::clock::now() < deadline, "{what}: {s}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// rdisc6's report of the RA it gets on `ifname` (it solicits one).
    pub fn rdisc6(&self, ifname: &str) -> String {
        let out = self.lan.exec("rdisc6", &["-1", "-w", "3000", ifname]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "rdisc6 failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }

    /// Waits until `check` holds for the LAN's `ip -6 addr`/`route` text, or panics with it.
    pub fn wait_lan(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = runtime::clock::now() + timeout;
        loop {
            let addrs =
                String::from_utf8_lossy(&self.lan.ip(&["-6", "addr", "show", "dev", "eth0"]).stdout).into_owned();
            let routes = String::from_utf8_lossy(&self.lan.ip(&["-6", "route", "show"]).stdout).into_owned();
            let text = format!("{addrs}{routes}");
            if check(&text) {
                return text;
            }
            assert!(runtime::clock::now() < deadline, "{what}: not after {timeout:?}:\n{text}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The address block of `addr` in `ip -6 addr` text (its line and the lifetimes line).
pub fn addr_block<'a>(text: &'a str, addr: &str) -> Option<&'a str> {
    let start = text.find(&format!("inet6 {addr}/"))?;
    let rest = &text[start..];
    let end = rest.find("lft").and_then(|i| rest[i + 3..].find("lft").map(|j| i + 3 + j + 3)).unwrap_or(rest.len());
    let line_end = rest[end..].find('\n').map_or(rest.len(), |k| end + k);
    Some(&rest[..line_end])
}
