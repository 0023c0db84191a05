//! The fixture the integration tests share: a server namespace whose `lan0`
//! (192.168.77.1/24) faces a client namespace over a veth pair, with the real
//! dhcp4d binary serving lan0 from a temporary `/perm`.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::perm::Dhcp4dLease;
use runtime::unix_http;
use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir, veth};

pub const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
pub const SERVER_MAC: &str = "02:73:53:00:77:01";

/// A LAN with dhcp4d on it.
pub struct Lan {
    pub srv: Netns,
    pub cli: Netns,
    pub dir: TempDir,
    /// The client side's interface (unique per test: dhcpcd keeps global state by name).
    pub client_if: String,
    pub client_mac: String,
    pub dhcp4d: Option<Peer>,
    pub args: Vec<String>,
}

/// A short interface name unique to this process and `tag`.
pub fn unique_if(tag: &str) -> String {
    format!("{tag}{}", std::process::id() % 100_000)
}

impl Lan {
    /// Namespaces, the veth pair and the /perm files; dhcp4d not yet started.
    /// `config` is written to /perm/dhcp4d/config.json when given.
    pub fn new(tag: &str, client_mac: &str, config: Option<&str>) -> Self {
        let srv = Netns::new(&format!("{tag}s"));
        let cli = Netns::new(&format!("{tag}c"));
        let client_if = unique_if(tag);
        veth(&srv, "lan0", SERVER_MAC, &cli, &client_if, client_mac);
        srv.addr("lan0", "192.168.77.1/24");
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path().join("perm/dhcp4d")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(
            dir.path().join("perm/interfaces.json"),
            "{\"interfaces\":[{\"hardware_addr\":\"02:73:53:00:77:01\",\"name\":\"lan0\",\"addr\":\"192.168.77.1/24\"}]}\n",
        )
        .unwrap();
        if let Some(c) = config {
            std::fs::write(dir.path().join("perm/dhcp4d/config.json"), c).unwrap();
        }
        Self { srv, cli, dir, client_if, client_mac: client_mac.into(), dhcp4d: None, args: Vec::new() }
    }

    pub fn perm(&self) -> PathBuf {
        self.dir.path().join("perm")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("router/dhcp4d.sock")
    }

    /// Starts dhcp4d with `extra` arguments; ready once port 67 is bound.
    pub fn start(&mut self, extra: &[&str]) {
        self.start_with(extra, Readiness::UdpPort(67));
    }

    /// Starts dhcp4d with `extra` arguments; ready when `ready` holds.
    pub fn start_with(&mut self, extra: &[&str], ready: Readiness) {
        let mut args: Vec<String> = vec![
            "--perm".into(),
            self.perm().display().to_string(),
            "--run".into(),
            self.run_dir().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut spec = PeerSpec::new("dhcp4d", env!("CARGO_BIN_EXE_dhcp4d"), &[]).env("RUST_BACKTRACE", "1");
        spec.args.clone_from(&args);
        self.args = args;
        self.dhcp4d = Some(self.srv.spawn(PeerSpec { timeout: Duration::from_secs(30), ready, ..spec }));
    }

    pub fn dhcp4d(&self) -> &Peer {
        self.dhcp4d.as_ref().unwrap()
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let peer = self.dhcp4d.as_mut().unwrap();
        peer.signal("TERM");
        let status = peer.wait(Duration::from_secs(20)).expect("dhcp4d exits on SIGTERM");
        self.dhcp4d = None;
        status
    }

    pub fn leases(&self) -> Vec<Dhcp4dLease> {
        runtime::statefile::read_json(&runtime::perm::dhcp4d_leases_path(&self.perm())).unwrap().unwrap_or_default()
    }

    pub fn lease_of(&self, mac: &str) -> Option<Dhcp4dLease> {
        self.leases().into_iter().find(|l| l.hardware_addr == mac)
    }

    pub fn status(&self) -> serde_json::Value {
        let r = unix_http::request(&self.socket(), "GET", "/v1/status", b"", Duration::from_secs(5)).unwrap();
        r.json().unwrap()
    }

    pub fn events(&self, topic: &str) -> Vec<serde_json::Value> {
        let path = format!("/v1/events?since=0&topic={topic}");
        let r = unix_http::request(&self.socket(), "GET", &path, b"", Duration::from_secs(5)).unwrap();
        r.json().unwrap()["events"].as_array().cloned().unwrap_or_default()
    }

    /// GET `path` from `addr:port` inside the server namespace.
    pub fn http_get(&self, addr: &str, path: &str, accept: Option<&str>) -> unix_http::Response {
        let (addr, path) = (addr.to_owned(), path.to_owned());
        let accept = accept.map(str::to_owned);
        self.srv.enter(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{accept}\r\n").unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).unwrap();
            unix_http::parse_response(&raw).unwrap()
        })
    }

    /// The IPv4 addresses on the client's interface.
    pub fn client_addrs(&self) -> Vec<String> {
        let v = self.cli.ip_json(&["-4", "addr", "show", "dev", &self.client_if]);
        v.as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["local"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = runtime::clock::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if runtime::clock::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client hook script that records `<reason> <address>` and configures the
/// interface itself (dhclient and udhcpc leave that to their script).
pub fn hook_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    testbed::write_executable(&path, format!("#!/bin/sh\n{body}\n"));
    path
}

/// Lines of a file, empty when it does not exist.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}
