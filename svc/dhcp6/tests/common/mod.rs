//! What the dhcp6 integration tests share: our binary in a namespace, its
//! control API, its lease file.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::perm::Dhcp6Lease;
use serde_json::Value;
use testbed::{Netns, Peer, PeerSpec};

/// Generous: the machine is shared with other builds.
pub const SLOW: Duration = Duration::from_secs(30);

/// Our client's folders.
pub struct Dirs {
    pub perm: PathBuf,
    pub run: PathBuf,
}

impl Dirs {
    pub fn new(root: &Path) -> Self {
        let d = Self { perm: root.join("perm"), run: root.join("run") };
        std::fs::create_dir_all(d.perm.join("dhcp6")).unwrap();
        std::fs::create_dir_all(&d.run).unwrap();
        d
    }

    pub fn socket(&self) -> PathBuf {
        runtime::control::socket_path(&self.run, "dhcp6")
    }

    pub fn lease(&self) -> Option<Dhcp6Lease> {
        runtime::statefile::read_json(&runtime::perm::dhcp6_lease_path(&self.perm)).unwrap()
    }

    pub fn status(&self) -> Value {
        let r = runtime::unix_http::request(&self.socket(), "GET", "/v1/status", b"", Duration::from_secs(5)).unwrap();
        r.json().unwrap()
    }

    /// Waits for the next event under `topic` after `since`; returns it.
    pub fn event_after(&self, since: u64, topic: &str, timeout: Duration) -> Value {
        let deadline = runtime::clock::now() + timeout;
        loop {
            let path = format!("/v1/events?since={since}&wait=5&topic={topic}");
            if let Ok(r) = runtime::unix_http::request(&self.socket(), "GET", &path, b"", Duration::from_secs(10))
                && let Ok(v) = r.json()
                && let Some(e) = v["events"].as_array().and_then(|a| a.first())
            {
                return e.clone();
            }
            assert!(runtime::clock::now() < deadline, "no {topic} event after seq {since} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last event's sequence number (0 when none).
    pub fn last_seq(&self) -> u64 {
        let r = runtime::unix_http::request(&self.socket(), "GET", "/v1/events?since=0", b"", Duration::from_secs(5))
            .unwrap();
        r.json().unwrap()["next"].as_u64().unwrap_or(0)
    }

    /// Waits until the status satisfies `f`.
    pub fn wait_status(&self, what: &str, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = runtime::clock::now() + timeout;
        loop {
            if let Ok(r) = runtime::unix_http::request(&self.socket(), "GET", "/v1/status", b"", Duration::from_secs(5))
                && let Ok(v) = r.json()
                && f(&v)
            {
                return v;
            }
            assert!(runtime::clock::now() < deadline, "status never showed {what} within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Starts our binary in `ns` on `uplink`; ready once its socket is bound.
pub fn start_dhcp6(ns: &Netns, dirs: &Dirs, uplink: &str) -> Peer {
    let perm = dirs.perm.to_str().unwrap().to_owned();
    let run = dirs.run.to_str().unwrap().to_owned();
    ns.spawn(
        PeerSpec::new(
            "dhcp6",
            env!("CARGO_BIN_EXE_dhcp6"),
            &["--perm", &perm, "--run", &run, "--uplink", uplink, "--debug"],
        )
        .ready_on_log("listening on"),
    )
}

/// The prefixes of a lease file as `a::/len` strings.
pub fn prefixes(l: &Dhcp6Lease) -> Vec<String> {
    l.prefixes.iter().map(ToString::to_string).collect()
}
