//! What the integration tests share: a server and a client namespace joined by
//! a veth pair, the real dhcp4 binary started in the client namespace, and
//! helpers for its control API and files.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::perm::Dhcp4Lease;
use runtime::unix_http;
use serde_json::Value;
use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir, veth};

pub const CLIENT_MAC: &str = "02:73:53:00:ca:fe";
pub const SERVER_MAC: &str = "02:73:53:00:00:01";

/// Two namespaces, `srv0` (server side, with `server_cidr`) and `cli0`
/// (client side, no address), and folders for the client's `--perm`/`--run`.
pub struct Setup {
    pub server: Netns,
    pub client: Netns,
    pub dir: TempDir,
}

impl Setup {
    pub fn new(tag: &str, server_cidr: &str) -> Self {
        let server = Netns::new(&format!("{tag}s"));
        let client = Netns::new(&format!("{tag}c"));
        veth(&server, "srv0", SERVER_MAC, &client, "cli0", CLIENT_MAC);
        server.addr("srv0", server_cidr);
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.path().join("perm")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Self { server, client, dir }
    }

    pub fn perm(&self) -> PathBuf {
        self.dir.path().join("perm")
    }

    pub fn socket(&self) -> PathBuf {
        runtime::control::socket_path(&self.dir.path().join("run"), "dhcp4")
    }

    /// Starts our binary on `cli0`; ready once its control socket exists.
    pub fn start_client(&self) -> Peer {
        let perm = self.perm();
        let run = self.dir.path().join("run");
        let _ = std::fs::remove_file(self.socket());
        self.client.spawn(
            PeerSpec::new(
                "dhcp4",
                env!("CARGO_BIN_EXE_dhcp4"),
                &["--perm", perm.to_str().unwrap(), "--run", run.to_str().unwrap(), "--uplink", "cli0", "--debug"],
            )
            .ready_when(Readiness::File(self.socket())),
        )
    }

    pub fn lease(&self) -> Dhcp4Lease {
        runtime::statefile::read_json(&runtime::perm::dhcp4_lease_path(&self.perm())).unwrap().unwrap()
    }

    pub fn ack_path(&self) -> PathBuf {
        self.perm().join("dhcp4/wire/ack")
    }

    /// Puts the leased address on `cli0`, as netconfigd does on the router.
    pub fn configure_address(&self) {
        let lease = self.lease();
        let cidr = format!("{}/{}", lease.client_ip.unwrap(), lease.prefix_len());
        self.client.ip(&["addr", "add", &cidr, "dev", "cli0"]);
    }

    pub fn status(&self) -> Value {
        get(&self.socket(), "/v1/status")
    }

    /// The last event's sequence number (0 when there is none).
    pub fn last_seq(&self) -> u64 {
        get(&self.socket(), "/v1/events?since=0&wait=0")["next"].as_u64().unwrap()
    }

    /// Waits for the first event of `topic` after `since`.
    pub fn wait_event(&self, topic: &str, since: u64, timeout: Duration) -> Value {
        let deadline = runtime::clock::now() + timeout;
        let mut since = since;
        loop {
            let left = deadline.saturating_duration_since(runtime::clock::now());
            assert!(!left.is_zero(), "no {topic} event within {timeout:?}; status: {}", self.status());
            let wait = left.as_secs().clamp(1, 30);
            let page = get(&self.socket(), &format!("/v1/events?since={since}&wait={wait}&topic=dhcp4.lease."));
            for event in page["events"].as_array().unwrap() {
                if event["topic"] == topic {
                    return event.clone();
                }
            }
            since = page["next"].as_u64().unwrap();
        }
    }

    pub fn post(&self, command: &str) {
        let r =
            unix_http::request(&self.socket(), "POST", &format!("/v1/commands/{command}"), b"", Duration::from_secs(5))
                .unwrap();
        assert_eq!(r.status, 202, "{}", r.text());
    }
}

pub fn get(socket: &Path, path: &str) -> Value {
    let r = unix_http::request(socket, "GET", path, b"", Duration::from_secs(40)).unwrap();
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json().unwrap()
}

/// Waits until `f` holds, polling.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = runtime::clock::now() + timeout;
    while !f() {
        assert!(runtime::clock::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the client with SIGTERM and checks it exits 0.
pub fn stop_client(client: &mut Peer) {
    client.signal("TERM");
    let status = client.wait(Duration::from_secs(10)).expect("dhcp4 exits on SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
}

/// Sends SIGUSR2 and checks the exit code is 125 ("do not restart me").
pub fn release_client(client: &mut Peer) {
    client.signal("USR2");
    let status = client.wait(Duration::from_secs(10)).expect("dhcp4 exits on SIGUSR2");
    assert_eq!(status.code(), Some(125), "{status}\n{}", client.log());
}
