//! The lab the integration tests change under diagd's feet:
//!
//! ```text
//!  rtr namespace (diagd)                         isp namespace
//!  lan0 (veth)  192.168.42.1/24 ───────┐
//!               2001:db8:42::1/64      │
//!  uplink0 192.0.2.2/24, SLAAC 2001:db8:1::/64 ══ isp0 192.0.2.1/24, 2001:db8:1::1/64
//!          default via 192.0.2.1 and the RA's router      radvd (prefix 2001:db8:1::/64)
//!                                                lo: targets 198.51.100.1, 2001:db8:ffff::1
//!                                                    TCP listeners on port 8443
//!                                                route 2001:db8:42::/48 via rtr's uplink0
//! ```
//!
//! diagd runs in `rtr` with a config of 1 s rounds, 1 s timeouts and
//! thresholds of 1, so every change shows within a few seconds.
#![allow(dead_code)] // each test file uses its own part of the lab

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::perm::{Dhcp4Lease, Dhcp6Lease, IpNet};
use runtime::timefmt::Timestamp;
use serde_json::{Value, json};
use testbed::{Netns, Peer, PeerSpec, TempDir, veth};

pub const BIN: &str = env!("CARGO_BIN_EXE_diagd");
pub const TARGET4: &str = "198.51.100.1:8443";
pub const TARGET6: &str = "[2001:db8:ffff::1]:8443";
/// Generous: the machine is shared with other builds.
pub const WAIT: Duration = Duration::from_secs(40);

pub struct Lab {
    pub isp: Netns,
    pub rtr: Netns,
    pub dir: TempDir,
    pub perm: PathBuf,
    pub run: PathBuf,
    pub diagd: Option<Peer>,
    pub radvd: Option<Peer>,
    pub target4: Option<TcpListener>,
    pub target6: Option<TcpListener>,
}

pub fn wall_in(secs: i64) -> Timestamp {
    let now = Timestamp::from_system(runtime::clock::wall_now());
    Timestamp { secs: now.secs + secs, nanos: 0 }
}

impl Lab {
    /// The namespaces, addresses and IPv4 routes, with a valid dhcp4 lease; no radvd yet.
    pub fn new(tag: &str) -> Self {
        let isp = Netns::new(&format!("{tag}i"));
        let rtr = Netns::new(&format!("{tag}r"));
        // A router: forwarding on, and RAs still accepted on the uplink (accept_ra=2),
        // set as defaults before the uplink exists so it inherits them.
        for (k, v) in [
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv6.conf.default.accept_ra", "2"),
            ("net.ipv6.conf.default.forwarding", "1"),
        ] {
            rtr.sysctl(k, v);
        }
        isp.sysctl("net.ipv6.conf.all.forwarding", "1");
        isp.sysctl("net.ipv6.conf.default.forwarding", "1");
        veth(&rtr, "uplink0", "02:73:53:00:ca:fe", &isp, "isp0", "02:73:53:00:00:01");
        rtr.addr("uplink0", "192.0.2.2/24");
        rtr.ip(&["route", "add", "default", "via", "192.0.2.1"]);
        // No dummy module on every test machine: a veth pair with both ends here.
        rtr.ip(&["link", "add", "lan0", "type", "veth", "peer", "name", "lanpeer"]);
        rtr.ip(&["link", "set", "lanpeer", "up"]);
        rtr.addr("lan0", "192.168.42.1/24");
        rtr.addr("lan0", "2001:db8:42::1/64");
        isp.addr("isp0", "192.0.2.1/24");
        isp.addr("isp0", "2001:db8:1::1/64");
        isp.addr("lo", "198.51.100.1/32");
        isp.addr("lo", "2001:db8:ffff::1/128");
        rtr.wait_for_link_local("uplink0");
        isp.wait_for_link_local("isp0");
        let rtr_ll = link_local(&rtr, "uplink0");
        isp.ip(&["-6", "route", "add", "2001:db8:42::/48", "via", &rtr_ll, "dev", "isp0"]);

        let dir = TempDir::new(&format!("diagd-{tag}"));
        let perm = dir.path().join("perm");
        let run = dir.path().join("run");
        std::fs::create_dir_all(perm.join("diagd")).unwrap();
        let mut lab = Self { isp, rtr, dir, perm, run, diagd: None, radvd: None, target4: None, target6: None };
        lab.write_lease4(3600);
        lab.start_target4();
        lab.start_target6();
        lab
    }

    pub fn config(&self, extra: Value) {
        let mut c = json!({
            "tcp4_target": TARGET4,
            "tcp6_target": TARGET6,
            "interval_seconds": 1,
            "retry_seconds": 1,
            "ping_timeout_ms": 1000,
            "tcp_timeout_ms": 1000,
            "unhealthy_after": 1,
            "healthy_after": 1,
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        std::fs::write(self.perm.join("diagd/config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    pub fn write_lease4(&self, valid_for_secs: i64) {
        let lease = Dhcp4Lease {
            valid_until: wall_in(valid_for_secs),
            client_ip: Some("192.0.2.2".parse().unwrap()),
            subnet_mask: Some("255.255.255.0".parse().unwrap()),
            router: Some("192.0.2.1".parse().unwrap()),
            dns: vec![],
            renew_after: None,
            rebind_after: None,
            lease_seconds: None,
            server_id: None,
            mtu: None,
            classless_routes: vec![],
            domain_name: None,
        };
        runtime::statefile::write_json(&runtime::perm::dhcp4_lease_path(&self.perm), &lease).unwrap();
    }

    pub fn write_lease6(&self, valid_for_secs: i64) {
        let lease = Dhcp6Lease {
            valid_until: wall_in(valid_for_secs),
            prefixes: vec![IpNet { ip: "2001:db8:42::".parse().unwrap(), prefix_len: 48 }],
            dns: vec![],
            delegations: vec![],
            renew_after: None,
            rebind_after: None,
            server_duid: None,
            address: None,
        };
        runtime::statefile::write_json(&runtime::perm::dhcp6_lease_path(&self.perm), &lease).unwrap();
    }

    pub fn remove_lease4(&self) {
        std::fs::remove_file(runtime::perm::dhcp4_lease_path(&self.perm)).unwrap();
    }

    /// A listener is enough: the kernel completes handshakes into its backlog.
    pub fn start_target4(&mut self) {
        self.target4 = Some(self.isp.enter(|| TcpListener::bind(TARGET4).unwrap()));
    }

    pub fn start_target6(&mut self) {
        self.target6 = Some(self.isp.enter(|| TcpListener::bind(TARGET6).unwrap()));
    }

    /// Router advertisements from the ISP. Rarely repeated, so a flushed SLAAC
    /// address stays gone until radvd is started again (its first RA comes at once).
    pub fn start_radvd(&mut self) {
        let conf = self.dir.path().join("radvd.conf");
        std::fs::write(
            &conf,
            "interface isp0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 200;\n  MaxRtrAdvInterval 600;\n  \
             AdvDefaultLifetime 1800;\n  prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n",
        )
        .unwrap();
        let pid = self.dir.path().join("radvd.pid");
        let _ = std::fs::remove_file(&pid);
        let spec = PeerSpec::new(
            "radvd",
            "radvd",
            &["-n", "-m", "stderr", "-d", "1", "-C", conf.to_str().unwrap(), "-p", pid.to_str().unwrap()],
        )
        .ready_when(testbed::Readiness::File(pid));
        self.radvd = Some(self.isp.spawn(spec));
    }

    /// Stops radvd without its goodbye RA (which would drop our default route).
    pub fn kill_radvd(&mut self) {
        if let Some(r) = self.radvd.take() {
            r.signal("KILL");
            drop(r);
        }
    }

    pub fn wait_for_slaac(&self) {
        let deadline = runtime::clock::now() + WAIT;
        loop {
            let out = self.rtr.ip(&["-6", "addr", "show", "dev", "uplink0", "scope", "global"]);
            if String::from_utf8_lossy(&out.stdout).contains("2001:db8:1:") {
                return;
            }
            assert!(runtime::clock::now() < deadline, "no SLAAC address on uplink0");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn start_diagd(&mut self, args: &[&str]) {
        let mut all = vec![
            "--perm",
            self.perm.to_str().unwrap(),
            "--run",
            self.run.to_str().unwrap(),
            "--uplink",
            "uplink0",
            "--lan",
            "lan0",
        ];
        all.extend_from_slice(args);
        let spec = PeerSpec::new("diagd", BIN, &all).ready_on_log("serving on");
        self.diagd = Some(self.rtr.spawn(spec));
    }

    pub fn log(&self) -> String {
        self.diagd.as_ref().map(Peer::log).unwrap_or_default()
    }

    pub fn socket(&self) -> PathBuf {
        self.run.join("router/diagd.sock")
    }

    pub fn status(&self) -> Value {
        runtime::unix_http::request(&self.socket(), "GET", "/v1/status", b"", Duration::from_secs(5))
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn command(&self, name: &str) -> u16 {
        runtime::unix_http::request(
            &self.socket(),
            "POST",
            &format!("/v1/commands/{name}"),
            b"",
            Duration::from_secs(5),
        )
        .unwrap()
        .status
    }

    pub fn events(&self, topic: &str) -> Vec<Value> {
        let r = runtime::unix_http::request(
            &self.socket(),
            "GET",
            &format!("/v1/events?since=0&topic={topic}"),
            b"",
            Duration::from_secs(5),
        )
        .unwrap();
        r.json().unwrap()["events"].as_array().cloned().unwrap_or_default()
    }

    /// An HTTP GET from inside the router's namespace: (status code, body).
    pub fn http(&self, addr: &str, path: &str) -> std::io::Result<(u16, String)> {
        let addr: SocketAddr = addr.parse().unwrap();
        let path = path.to_owned();
        self.rtr.enter(move || {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut raw = String::new();
            s.read_to_string(&mut raw)?;
            let code = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
            Ok((code, body))
        })
    }

    pub fn health(&self) -> Value {
        let (code, body) = self.http("127.0.0.1:7733", "/health.json").unwrap();
        assert_eq!(code, 200, "health.json answers 200 whatever the health, like router7");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until the control API's phase is `phase` and health.json's
    /// first_error starts with `first_error` (empty: healthy). Returns health.json.
    pub fn expect(&self, phase: &str, first_error: &str) -> Value {
        let deadline = runtime::clock::now() + WAIT;
        loop {
            let status = self.status();
            let health = self.health();
            let fe = health["first_error"].as_str().unwrap_or("?").to_owned();
            let matches = if first_error.is_empty() { fe.is_empty() } else { fe.starts_with(first_error) };
            if status["phase"] == phase && matches && health["phase"] == phase {
                assert_eq!(status["first_error"], health["first_error"], "control API and health.json agree");
                return health;
            }
            assert!(
                runtime::clock::now() < deadline,
                "waited {WAIT:?} for {phase} / {first_error:?}; phase {}, first_error {fe:?}\n{}",
                status["phase"],
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn nft(&self, rules: &str) {
        let path = self.dir.path().join("rules.nft");
        std::fs::write(&path, rules).unwrap();
        self.isp.exec_ok("nft", &["-f", path.to_str().unwrap()]);
    }

    pub fn nft_flush(&self) {
        self.isp.exec_ok("nft", &["flush", "ruleset"]);
    }
}

pub fn link_local(ns: &Netns, dev: &str) -> String {
    let j = ns.ip_json(&["-6", "addr", "show", "dev", dev, "scope", "link"]);
    // iproute2 sometimes lists an empty `{}` among the addresses.
    j[0]["addr_info"]
        .as_array()
        .and_then(|a| a.iter().find_map(|e| e["local"].as_str()))
        .unwrap_or_else(|| panic!("no link-local address on {dev}: {j}"))
        .to_owned()
}

/// The one node named `name` anywhere in health.json's tree.
pub fn node<'a>(health: &'a Value, id: &str) -> &'a Value {
    fn find<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
        if v["id"] == id {
            return Some(v);
        }
        v["children"].as_array()?.iter().find_map(|c| find(c, id))
    }
    find(&health["checks"][0], id).unwrap_or_else(|| panic!("no check {id} in {health}"))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}
