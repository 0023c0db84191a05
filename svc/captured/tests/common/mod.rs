//! The captured tests' network: a router namespace with `uplink0` facing an
//! ISP namespace (dnsmasq serves DHCP there) and `lan0` facing a LAN
//! namespace; captured (the real binary) runs in the router namespace.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir, veth};

/// Generous: the machine is shared with other builds.
pub const SLOW: Duration = Duration::from_secs(30);
pub const PASSWORD: &str = "correct horse";

pub struct Net {
    pub isp: Netns,
    pub router: Netns,
    pub lan: Netns,
    pub dir: TempDir,
    pub dnsmasq: Peer,
}

impl Net {
    pub fn new(tag: &str) -> Self {
        let isp = Netns::new(&format!("{tag}i"));
        let router = Netns::new(&format!("{tag}r"));
        let lan = Netns::new(&format!("{tag}l"));
        veth(&isp, "isp0", "02:73:53:00:00:01", &router, "uplink0", "02:73:53:00:00:02");
        veth(&router, "lan0", "02:73:53:00:01:01", &lan, "cli0", "02:73:53:00:01:02");
        isp.addr("isp0", "10.99.0.1/24");
        router.addr("lan0", "192.168.88.1/24");
        router.addr("lan0", "fd00:88::1/64");
        lan.addr("cli0", "192.168.88.2/24");
        router.sysctl("net.ipv6.conf.all.forwarding", "1");
        router.wait_for_link_local("lan0");
        router.wait_for_link_local("uplink0");
        lan.wait_for_link_local("cli0");
        let dir = TempDir::new(tag);
        let dnsmasq = isp.spawn(testbed::dnsmasq_dhcp("isp0", "10.99.0.10,10.99.0.20,20m", dir.path(), &["--no-ping"]));
        let perm = dir.path().join("perm");
        std::fs::create_dir_all(perm.join("router")).unwrap();
        std::fs::write(perm.join("router/password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Self { isp, router, lan, dir, dnsmasq }
    }

    pub fn perm(&self) -> PathBuf {
        self.dir.path().join("perm")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Starts captured in the router namespace; ready once both sockets are open and it listens.
    pub fn captured(&self) -> Peer {
        let mut spec = PeerSpec::new(
            "captured",
            env!("CARGO_BIN_EXE_captured"),
            &["--perm", &self.perm().display().to_string(), "--run", &self.run_dir().display().to_string()],
        )
        .ready_when(Readiness::TcpPort(5022));
        spec.timeout = SLOW;
        let peer = self.router.spawn(spec);
        peer.wait_for_log("capturing on uplink0", SLOW).unwrap();
        peer.wait_for_log("capturing on lan0", SLOW).unwrap();
        peer
    }

    /// One DHCP conversation on the uplink: udhcpc in the router namespace against dnsmasq.
    pub fn dhcp_on_uplink(&self) {
        let out =
            self.router.exec("busybox", &["udhcpc", "-i", "uplink0", "-n", "-q", "-f", "-s", "/bin/true", "-t", "5"]);
        let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("obtained"), "udhcpc: {text}");
    }

    /// A router solicitation from the LAN, answered by radvd on lan0.
    pub fn rs_on_lan(&self) {
        let out = self.lan.exec("rdisc6", &["-1", "-w", "3000", "cli0"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("fd00:88::"), "rdisc6: {text}{}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn radvd(&self) -> Peer {
        let conf = self.dir.path().join("radvd.conf");
        std::fs::write(
            &conf,
            "interface lan0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 30;\n MaxRtrAdvInterval 100;\n prefix fd00:88::/64 {};\n};\n",
        )
        .unwrap();
        let pid = self.dir.path().join("radvd.pid");
        self.router.spawn(
            PeerSpec::new(
                "radvd",
                "radvd",
                &["-n", "-C", &conf.display().to_string(), "-p", &pid.display().to_string(), "-m", "stderr"],
            )
            .ready_when(Readiness::File(pid)),
        )
    }

    pub fn status(&self) -> Value {
        let socket = runtime::control::socket_path(&self.run_dir(), "captured");
        runtime::unix_http::request(&socket, "GET", "/v1/status", b"", Duration::from_secs(5)).unwrap().json().unwrap()
    }

    /// Waits until the status satisfies `f`.
    pub fn wait_status(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = runtime::clock::now() + SLOW;
        loop {
            let v = self.status();
            if f(&v) {
                return v;
            }
            assert!(runtime::clock::now() < deadline, "status never showed {what}: {v:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One line of `tshark -T fields` output, split on tabs.
pub fn fields(line: &str) -> Vec<String> {
    line.split('\t').map(str::to_owned).collect()
}

/// Runs tshark on a capture file with `-T fields` and these fields.
pub fn tshark_fields(file: &Path, fields_wanted: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<String> = vec!["-r".into(), file.display().to_string(), "-T".into(), "fields".into()];
    for f in fields_wanted {
        args.push("-e".into());
        args.push((*f).into());
    }
    let out = std::process::Command::new("tshark").args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.trim().is_empty(), "tshark printed nothing: {}", String::from_utf8_lossy(&out.stderr));
    text.lines().map(fields).collect()
}

/// The complete pcapng blocks at the start of `bytes` (a stream cut anywhere).
pub fn whole_blocks(bytes: &[u8]) -> &[u8] {
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if len < 12 || at + len > bytes.len() {
            break;
        }
        at += len;
    }
    &bytes[..at]
}
