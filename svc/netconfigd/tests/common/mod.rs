//! What the namespace tests share: router7's golden inputs, starting the real
//! netconfigd binary inside a namespace, waiting for its applies through the
//! control API, and reading the kernel back with `ip -j` and `nft`.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir};

/// router7's TestNetconfig interfaces.json.
pub const GOLDEN_INTERFACES: &str = r#"{
  "interfaces":[
    {"hardware_addr": "02:73:53:00:ca:fe", "name": "uplink0"},
    {"hardware_addr": "02:73:53:00:b0:0c", "spoof_hardware_addr": "02:73:53:00:b0:aa",
     "name": "lan0", "addr": "192.168.42.1/24", "mtu": 1492},
    {"name": "wg0", "addr": "fe80::1/64", "extra_addrs": ["10.22.100.1/24"],
     "extra_routes": [{"destination": "2a02:168:4a00:22::/64", "gateway": "fe80::2"}]}
  ]
}"#;

/// router7's TestNetconfig portforwardings.json plus a "tcp,udp" list.
pub fn golden_forwardings(additional: bool) -> String {
    let add = if additional { r#"{"port": "8045", "dest_addr": "192.168.42.22", "dest_port": "8045"},"# } else { "" };
    format!(
        r#"{{"forwardings":[
    {{"port": "8080", "dest_addr": "192.168.42.23", "dest_port": "9999"}},
    {add}
    {{"port": "8040-8060", "dest_addr": "192.168.42.99", "dest_port": "8040-8060"}},
    {{"proto": "udp", "port": "53", "dest_addr": "192.168.42.99", "dest_port": "53"}},
    {{"proto": "tcp,udp", "port": 5060, "dest_addr": "192.168.42.5"}}
  ]}}"#
    )
}

/// router7's golden fiber7 DHCPv4 lease.
pub const GOLDEN_DHCP4: &str = r#"{
  "valid_until":"2018-05-18T23:46:04.429895261+02:00",
  "client_ip":"85.195.207.62",
  "subnet_mask":"255.255.255.128",
  "router":"85.195.207.1",
  "dns":["77.109.128.2","213.144.129.20"]
}"#;

/// router7's golden DHCPv6 lease (2a02:168:4a00::/48).
pub const GOLDEN_DHCP6: &str = r#"{
  "valid_until":"0001-01-01T00:00:00Z",
  "prefixes":[{"IP":"2a02:168:4a00::","Mask":"////////AAAAAAAAAAAAAA=="}],
  "dns":["2001:1620:2777:1::10","2001:1620:2777:2::20"]
}"#;

/// Our config.json used by the golden ruleset.
pub const GOLDEN_CONFIG: &str = r#"{"firewall":{
  "input":[{"proto":"tcp","port":"22","from":"203.0.113.0/24"},{"proto":"udp","port":"51820"}],
  "forward6":[{"proto":"tcp","port":"443","dest_addr":"2a02:168:4a00::10"}]}}"#;

/// Writes `text` to `<perm>/<rel>`, creating folders.
pub fn write(perm: &Path, rel: &str, text: &str) {
    let path = perm.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A running netconfigd with its folders.
pub struct Daemon {
    pub peer: Peer,
    pub dir: TempDir,
    pub perm: PathBuf,
    pub run: PathBuf,
    pub resolv: PathBuf,
}

impl Daemon {
    /// Starts netconfigd inside `ns` with `perm` already filled; ready once its
    /// control socket exists.
    pub fn start(ns: &Netns, dir: TempDir, extra: &[&str]) -> Self {
        let perm = dir.path().join("perm");
        let run = dir.path().join("run");
        let resolv = dir.path().join("resolv.conf");
        std::fs::create_dir_all(&perm).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        let socket = run.join("router/netconfigd.sock");
        let mut args: Vec<String> = [
            "--perm",
            perm.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
            "--resolv-conf",
            resolv.to_str().unwrap(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let peer = ns.spawn(
            PeerSpec::new("netconfigd", env!("CARGO_BIN_EXE_netconfigd"), &args)
                .ready_when(Readiness::File(socket))
                .env("RUST_BACKTRACE", "1"),
        );
        Self { peer, dir, perm, run, resolv }
    }

    /// The control API's status document.
    pub fn status(&self) -> Value {
        let socket = self.run.join("router/netconfigd.sock");
        let resp = runtime::unix_http::request(&socket, "GET", "/v1/status", b"", Duration::from_secs(10)).unwrap();
        resp.json().unwrap()
    }

    /// Number of applies so far.
    pub fn applies(&self) -> u64 {
        self.status()["applies"].as_u64().unwrap_or(0)
    }

    /// Asks for a reload through the control API.
    pub fn reload(&self) {
        let socket = self.run.join("router/netconfigd.sock");
        let resp =
            runtime::unix_http::request(&socket, "POST", "/v1/commands/reload", b"", Duration::from_secs(10)).unwrap();
        assert_eq!(resp.status, 202, "{}", resp.text());
    }

    /// Waits until `check` holds for the status document; panics with the last one.
    pub fn wait_status(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = runtime::clock::now() + Duration::from_secs(30);
        loop {
            let s = self.status();
            if check(&s) {
                return s;
            }
            assert!(
                runtime::clock::now() < deadline,
                "timed out waiting for {what}; status:\n{s:#}\nlog:\n{}",
                self.peer.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for an apply after the `before`th to finish, with phase `phase`.
    pub fn wait_apply(&self, before: u64, phase: &str) -> Value {
        self.wait_status(&format!("apply #{} with phase {phase}", before + 1), |s| {
            s["applies"].as_u64().unwrap_or(0) > before && s["phase"] == phase
        })
    }

    /// A condition of the status.
    pub fn condition(status: &Value, kind: &str) -> Value {
        status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == kind).cloned().unwrap_or(Value::Null)
    }
}

/// `nft list table <family> router7` inside `ns`, counters zeroed.
pub fn nft_table(ns: &Netns, family: &str) -> String {
    let out = ns.exec_ok("nft", &["list", "table", family, "router7"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut normalized = String::new();
    for line in text.lines() {
        let l = match line.trim_start().strip_prefix("packets ") {
            Some(_) => line.split("packets").next().unwrap().to_owned() + "packets 0 bytes 0",
            None => line.to_owned(),
        };
        normalized.push_str(&l);
        normalized.push('\n');
    }
    normalized
}

/// `nft -j list ruleset` inside `ns`.
pub fn nft_json(ns: &Netns) -> Value {
    let out = ns.exec_ok("nft", &["-j", "list", "ruleset"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The counter `name` of `family`'s router7 table, from `nft -j`.
pub fn counter(ns: &Netns, family: &str, name: &str) -> (u64, u64) {
    let j = nft_json(ns);
    for item in j["nftables"].as_array().unwrap() {
        let c = &item["counter"];
        if c["family"] == family && c["table"] == "router7" && c["name"] == name {
            return (c["packets"].as_u64().unwrap(), c["bytes"].as_u64().unwrap());
        }
    }
    panic!("no counter {family} {name} in {j:#}");
}

/// The golden ruleset, split per table.
pub fn golden_table(family: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ruleset.nft")).unwrap();
    let start = text.find(&format!("table {family} router7 {{")).unwrap();
    let rest = &text[start..];
    let end = rest.find("\n}\n").unwrap() + 3;
    rest[..end].to_owned()
}

/// Creates a veth named `name` with `mac` in `ns`, its peer parked in `other`.
pub fn veth_link(ns: &Netns, name: &str, mac: &str, other: &Netns, peer: &str) {
    testbed::veth(ns, name, mac, other, peer, &random_mac(name));
    // The test wants links down before netconfigd, as after boot.
    ns.ip(&["link", "set", name, "down"]);
}

fn random_mac(seed: &str) -> String {
    let h = seed.bytes().fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    format!("02:99:00:00:{h:02x}:01")
}

/// `ip -j <args>` in `ns`.
pub fn ip_json(ns: &Netns, args: &[&str]) -> Value {
    ns.ip_json(args)
}
