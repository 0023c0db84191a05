//! The host side of updates (issue 11): `mkimage update` pushes an image's
//! root and kernel into the router's inactive slot, checks the SHA-256 each
//! upload answers with, activates the slot (kexec by default) and waits for
//! the outcome of the trial boot — "updated to X" once the new slot committed,
//! or "rolled back to Y: why" when the router came back on its old slot.
//! `mkimage rollback` switches to the other slot on request, with the same
//! trial. The protocol is `bootslot::api`; init's side is `init::update`.
//!
//! The HTTP client is a small HTTP/1.1 one over `std::net` (one request per
//! connection, `Content-Length` bodies streamed from the image): init's
//! endpoints are the only server it talks to.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use bootslot::Slot;
use bootslot::api::{
    Activated, Features, HEADER_BUILD_TIME, HEADER_UPDATE, HEADER_VERSION, ImageVersion, PROTOCOL, Part, UpdateOutcome,
    UpdateStatus, Written,
};

use crate::error::{Error, Result};
use crate::mbr::Region;
use crate::progress::Progress;

/// How long a request may take to connect and to answer (uploads: per read/write).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn err(text: impl Into<String>) -> Error {
    Error::Invalid(text.into())
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as `T`, or the router's `{"error"}` as an error.
    ///
    /// # Errors
    /// When the status is not `ok` or the body does not parse.
    pub fn json<T: DeserializeOwned>(&self, ok: u16, what: &str) -> Result<T> {
        if self.status != ok {
            let text = String::from_utf8_lossy(&self.body);
            let why = serde_json::from_slice::<serde_json::Value>(&self.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.trim().to_owned());
            return Err(err(format!("{what}: the router answered {}: {why}", self.status)));
        }
        serde_json::from_slice(&self.body).map_err(|e| err(format!("{what}: unexpected answer ({e})")))
    }
}

/// The router's update endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    host: String,
    auth: String,
}

impl Client {
    /// `host` is `name`, `address` or either with `:port` (default 80).
    #[must_use]
    pub fn new(host: &str, password: &str) -> Self {
        let host = if host.contains(':') && !host.starts_with('[') && host.matches(':').count() > 1 {
            format!("[{host}]:80") // a bare IPv6 address
        } else if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Self { host, auth: format!("Basic {}", runtime::base64::encode(format!("router:{password}").as_bytes())) }
    }

    /// `host:port`.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    fn connect(&self, timeout: Duration) -> Result<TcpStream> {
        let addrs: Vec<_> = self.host.to_socket_addrs().map_err(|e| err(format!("{}: {e}", self.host)))?.collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(timeout)).map_err(|e| err(e.to_string()))?;
                    s.set_write_timeout(Some(timeout)).map_err(|e| err(e.to_string()))?;
                    return Ok(s);
                }
                Err(e) => last = Some(format!("{a}: {e}")),
            }
        }
        Err(err(format!("cannot connect to {}: {}", self.host, last.unwrap_or_else(|| "no address".into()))))
    }

    /// One request; `body` is streamed with its length (`None`: no body).
    ///
    /// # Errors
    /// When the router cannot be reached or the answer is not HTTP.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&mut dyn Read, u64, &indicatif::ProgressBar)>,
        timeout: Duration,
    ) -> Result<Answer> {
        let mut s = self.connect(timeout)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\nUser-Agent: mkimage\r\n",
            self.host, self.auth
        );
        let length = body.as_ref().map_or(0, |(_, n, _)| *n);
        if method != "GET" {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let io = |e: std::io::Error| err(format!("{method} {path} on {}: {e}", self.host));
        s.write_all(head.as_bytes()).map_err(io)?;
        if let Some((src, len, bar)) = body {
            let mut buf = vec![0u8; 256 << 10];
            let mut sent = 0u64;
            while sent < len {
                let want = usize::try_from((len - sent).min(buf.len() as u64)).unwrap_or(buf.len());
                let n = src.read(&mut buf[..want]).map_err(io)?;
                if n == 0 {
                    return Err(err(format!("the local file ended after {sent} of {len} bytes")));
                }
                if let Err(e) = s.write_all(&buf[..n]) {
                    // The router may have refused early and closed: its answer says why.
                    let mut raw = Vec::new();
                    let _ = s.read_to_end(&mut raw);
                    if let Ok(r) = runtime::unix_http::parse_response(&raw) {
                        return Ok(Answer { status: r.status, body: r.body });
                    }
                    return Err(io(e));
                }
                sent += n as u64;
                bar.set_position(sent);
            }
        }
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(io)?;
        let r = runtime::unix_http::parse_response(&raw).map_err(io)?;
        Ok(Answer { status: r.status, body: r.body })
    }

    /// `GET path` as JSON.
    ///
    /// # Errors
    /// When unreachable or not 200 with the JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str, timeout: Duration) -> Result<T> {
        self.request("GET", path, &[("Accept", "application/json")], None, timeout)?.json(200, path)
    }

    /// `POST path` with the update header and no body.
    ///
    /// # Errors
    /// When unreachable.
    pub fn post(&self, path: &str) -> Result<Answer> {
        self.request("POST", path, &[(HEADER_UPDATE, "1")], None, REQUEST_TIMEOUT)
    }
}

/// What an image holds for an update.
#[derive(Debug, Clone)]
pub struct Image {
    /// The root SquashFS (its used bytes, rounded up to 4 KiB).
    pub root: Vec<u8>,
    /// The kernel.
    pub kernel: Vec<u8>,
    /// Its `/etc/router/version`.
    pub version: ImageVersion,
    /// The slot whose root and kernel were taken (the image's default).
    pub slot: Slot,
}

/// The hex SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the default slot's root and kernel and the version out of a disk
/// image made by `mkimage build`.
///
/// # Errors
/// When the file is not such an image.
pub fn read_image(path: &Path) -> Result<Image> {
    let open = || std::fs::File::open(path).map_err(|e| Error::io(path, e));
    let io = |e: std::io::Error| err(format!("{}: {e}", path.display()));
    let mut boot = Region::partition(ReadOnly(open()?), 1)?;
    let (config, slot, kernel) = {
        let fs = fatfs::FileSystem::new(&mut boot, fatfs::FsOptions::new()).map_err(io)?;
        let root = fs.root_dir();
        let mut config = String::new();
        root.open_file(bootslot::loader::CONFIG_FILE).map_err(io)?.read_to_string(&mut config).map_err(io)?;
        let slot = bootslot::loader::default_slot(&config).ok_or_else(|| err("syslinux.cfg names no DEFAULT slot"))?;
        let name = bootslot::loader::kernel(&config, slot).map_err(|e| err(e.to_string()))?;
        let mut kernel = Vec::new();
        root.open_file(&name).map_err(io)?.read_to_end(&mut kernel).map_err(io)?;
        (config, slot, kernel)
    };
    drop(config);
    let part = u8::try_from(slot.partition()).unwrap_or(2);
    let mut region = Region::partition(ReadOnly(open()?), part)?;
    let mut sb = [0u8; 96];
    region.read_exact(&mut sb).map_err(io)?;
    if &sb[..4] != b"hsqs" {
        return Err(err(format!("{}: partition {part} holds no SquashFS", path.display())));
    }
    let mut used = [0u8; 8];
    used.copy_from_slice(&sb[40..48]);
    let used = u64::from_le_bytes(used);
    let len = used.div_ceil(4096) * 4096;
    let mut root = vec![0u8; usize::try_from(len).map_err(|_| err("root too large"))?];
    region.seek(SeekFrom::Start(0)).map_err(io)?;
    region.read_exact(&mut root).map_err(io)?;
    let version = image_version(&root)?;
    Ok(Image { root, kernel, version, slot })
}

/// `/etc/router/version` of a root SquashFS.
///
/// # Errors
/// When the SquashFS cannot be read or has no version file.
pub fn image_version(root: &[u8]) -> Result<ImageVersion> {
    let fs = backhand::FilesystemReader::from_reader(std::io::Cursor::new(root))
        .map_err(|e| Error::SquashFs(e.to_string()))?;
    for node in fs.files() {
        if node.fullpath.as_os_str() == "/etc/router/version"
            && let backhand::InnerNode::File(f) = &node.inner
        {
            let mut text = String::new();
            fs.file(f).reader().read_to_string(&mut text).map_err(|e| Error::SquashFs(e.to_string()))?;
            return Ok(ImageVersion::parse(&text));
        }
    }
    Err(err("the root has no /etc/router/version"))
}

/// A read-only file that `Region` (made for read-write devices) can wrap.
#[derive(Debug)]
struct ReadOnly(std::fs::File);

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadOnly {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the image is read only here"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for ReadOnly {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(to)
    }
}

/// How to update.
#[derive(Debug, Clone)]
pub struct Options {
    /// Activate through kexec (else a firmware reboot).
    pub kexec: bool,
    /// The trial's deadline on the router.
    pub trial_seconds: u64,
    /// How long to wait for the outcome after the activation.
    pub wait: Duration,
    /// Bars or lines.
    pub progress: Progress,
}

/// How an update (or a rollback on request) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The slot committed: it runs and is the loader's default.
    Updated {
        /// Its version.
        version: ImageVersion,
        /// The slot.
        slot: Slot,
        /// From the activation to the endpoint answering again.
        unreachable: Option<Duration>,
        /// The trial system's time to healthy.
        healthy_after_seconds: Option<f64>,
    },
    /// The router came back on its old slot.
    RolledBack {
        /// What runs again.
        version: ImageVersion,
        /// What failed.
        failed: ImageVersion,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Updated { version, slot, unreachable, healthy_after_seconds } => {
                write!(f, "updated to {version} (slot {slot}, now the default)")?;
                if let Some(d) = unreachable {
                    write!(f, "; the update endpoint was unreachable for {:.1} s", d.as_secs_f64())?;
                }
                if let Some(h) = healthy_after_seconds {
                    write!(f, "; healthy {h:.1} s after init started")?;
                }
                Ok(())
            }
            Self::RolledBack { version, failed, reason } => {
                write!(f, "rolled back to {version}: {failed} did not prove itself: {reason}")
            }
        }
    }
}

fn say(line: &str) {
    eprintln!("mkimage: {line}");
}

/// Checks the router speaks our protocol.
///
/// # Errors
/// When it does not, or cannot be reached.
pub fn features(client: &Client) -> Result<Features> {
    let f: Features = client.get("/update/features", REQUEST_TIMEOUT)?;
    if f.protocol != PROTOCOL {
        return Err(err(format!("the router speaks update protocol {}, this mkimage {PROTOCOL}", f.protocol)));
    }
    for need in ["root", "kernel", "activate", "trial"] {
        if !f.features.iter().any(|x| x == need) {
            return Err(err(format!("the router's update endpoint lacks {need:?}")));
        }
    }
    if f.hash != "sha256" {
        return Err(err(format!("the router answers with {} digests, not sha256", f.hash)));
    }
    Ok(f)
}

fn upload(
    client: &Client,
    path: &str,
    data: &[u8],
    version: Option<&ImageVersion>,
    progress: &Progress,
) -> Result<Written> {
    let bar = progress.bytes(path.trim_start_matches("/update/"), data.len() as u64);
    let mut headers = vec![(HEADER_UPDATE, "1".to_owned())];
    if let Some(v) = version {
        headers.push((HEADER_VERSION, v.version.clone()));
        if let Some(t) = &v.build_time {
            headers.push((HEADER_BUILD_TIME, t.clone()));
        }
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = runtime::clock::now();
    let mut src = data;
    let answer =
        client.request("PUT", path, &headers, Some((&mut src, data.len() as u64, &bar)), Duration::from_secs(120))?;
    bar.finish_and_clear();
    let written: Written = answer.json(200, path)?;
    let want = sha256(data);
    if written.sha256 != want || written.bytes != data.len() as u64 {
        return Err(err(format!(
            "{path}: the router wrote {} bytes with sha256 {}, but {} bytes with sha256 {want} were sent",
            written.bytes,
            written.sha256,
            data.len()
        )));
    }
    let secs = (runtime::clock::now() - started).as_secs_f64().max(0.001);
    say(&format!(
        "{} of slot {} written: {} bytes in {secs:.1} s ({:.1} MiB/s), sha256 {} matches",
        written.part,
        written.slot,
        written.bytes,
        written.bytes as f64 / secs / 1048576.0,
        written.sha256
    ));
    Ok(written)
}

/// Pushes `image` into the inactive slot, activates it and waits for the outcome.
///
/// # Errors
/// When a step fails (nothing is activated unless both uploads matched).
pub fn update(client: &Client, image: &Image, opts: &Options) -> Result<Outcome> {
    let f = features(client)?;
    let st: UpdateStatus = client.get("/update/status", REQUEST_TIMEOUT)?;
    let target = st.inactive.ok_or_else(|| err("the router does not know which slot it runs"))?;
    say(&format!(
        "{} runs {} on slot {}; writing {} into slot {target}",
        f.hostname,
        f.running,
        f.active.map_or("?", Slot::label),
        image.version
    ));
    if image.root.len() as u64 > f.max_root_bytes {
        return Err(err(format!(
            "the root ({} bytes) does not fit slot {target} ({} bytes)",
            image.root.len(),
            f.max_root_bytes
        )));
    }
    upload(client, "/update/root", &image.root, Some(&image.version), &opts.progress)?;
    upload(client, "/update/kernel", &image.kernel, None, &opts.progress)?;
    activate(client, target, "update", &f.running, opts)
}

/// Switches to the other slot on request (only when the router says it may
/// be activated), with the same trial as an update.
///
/// # Errors
/// When the other slot may not be activated, or a step fails.
pub fn rollback(client: &Client, opts: &Options) -> Result<Outcome> {
    let f = features(client)?;
    let st: UpdateStatus = client.get("/update/status", REQUEST_TIMEOUT)?;
    let target = st.inactive.ok_or_else(|| err("the router does not know which slot it runs"))?;
    let other = st.slots.iter().find(|s| s.slot == target).ok_or_else(|| err("the router lists no other slot"))?;
    if !other.activatable {
        return Err(err(format!(
            "slot {target} cannot be activated: {}",
            other.reason.as_deref().unwrap_or("the router says no")
        )));
    }
    let describe = |p: &Part| match p {
        Part::Installed => "installed by the image build".to_owned(),
        Part::Written { sha256, .. } => format!("sha256 {sha256}"),
        Part::Missing { reason } => reason.clone(),
    };
    say(&format!(
        "{} runs {} on slot {}; switching to slot {target} ({}; root {}, kernel {})",
        f.hostname,
        f.running,
        f.active.map_or("?", Slot::label),
        other.version.as_deref().unwrap_or("unknown version"),
        describe(&other.root),
        describe(&other.kernel)
    ));
    activate(client, target, "rollback", &f.running, opts)
}

fn activate(client: &Client, slot: Slot, kind: &str, running: &ImageVersion, opts: &Options) -> Result<Outcome> {
    let path =
        format!("/update/activate?slot={slot}&kexec={}&trial_seconds={}&kind={kind}", opts.kexec, opts.trial_seconds);
    let done: Activated = client.post(&path)?.json(202, "/update/activate")?;
    say(&format!(
        "activated slot {} through {} at {} (trial of {} s){}",
        done.slot,
        done.method.name(),
        done.activated_at,
        done.trial_seconds,
        done.note.as_ref().map_or(String::new(), |n| format!("; note: {n}"))
    ));
    wait(client, &done, running, opts.wait)
}

/// Waits for the outcome of the activation `done`: polls `/update/status`
/// until its `last_update` is this activation's.
///
/// # Errors
/// When no outcome comes within `limit`.
pub fn wait(client: &Client, done: &Activated, running: &ImageVersion, limit: Duration) -> Result<Outcome> {
    let started = runtime::clock::now();
    let deadline = started + limit;
    let mut down_at: Option<Instant> = None;
    let mut unreachable = None;
    let mut said_trial = false;
    let mut last_seen = String::from("nothing yet");
    while runtime::clock::now() < deadline {
        match client.get::<UpdateStatus>("/update/status", Duration::from_secs(3)) {
            Err(e) => {
                if down_at.is_none() {
                    say("the router went down (rebooting)");
                    down_at = Some(runtime::clock::now());
                }
                last_seen = e.to_string();
            }
            Ok(st) => {
                if down_at.is_some() && unreachable.is_none() {
                    let d = runtime::clock::now() - started;
                    unreachable = Some(d);
                    say(&format!(
                        "the router answers again after {:.1} s, running {} on slot {}",
                        d.as_secs_f64(),
                        st.running,
                        st.active.map_or("?", Slot::label)
                    ));
                }
                if let Some(l) = st.last_update.as_ref().filter(|l| l.trial.activated_at == done.activated_at) {
                    return Ok(match l.outcome {
                        UpdateOutcome::Updated => Outcome::Updated {
                            version: l.trial.to_version.clone(),
                            slot: l.trial.to_slot,
                            unreachable,
                            healthy_after_seconds: l.healthy_after_seconds,
                        },
                        UpdateOutcome::RolledBack => Outcome::RolledBack {
                            version: l.trial.from_version.clone(),
                            failed: l.trial.to_version.clone(),
                            reason: l.trial.reason.clone().unwrap_or_else(|| "no reason recorded".into()),
                        },
                    });
                }
                if let Some(t) = st.trial.as_ref().filter(|t| t.record.activated_at == done.activated_at) {
                    if !said_trial {
                        say(&format!(
                            "slot {} is up and on trial ({:.0} s left); waiting for it to prove itself",
                            t.record.to_slot, t.remaining_seconds
                        ));
                        said_trial = true;
                    }
                    let failing: Vec<String> =
                        t.results.iter().filter(|r| !r.ok).map(|r| format!("{} (saw {})", r.check, r.seen)).collect();
                    last_seen = format!("on trial, waiting for: {}", failing.join("; "));
                } else {
                    last_seen = format!("{} runs {}", client.host(), st.running);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(err(format!(
        "no outcome within {} s of the activation (the router ran {running} before); last seen: {last_seen}",
        limit.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_get_port_80_unless_they_name_one() {
        assert_eq!(Client::new("192.168.42.1", "x").host(), "192.168.42.1:80");
        assert_eq!(Client::new("router7:8080", "x").host(), "router7:8080");
        assert_eq!(Client::new("fd00::1", "x").host(), "[fd00::1]:80");
        assert_eq!(Client::new("[fd00::1]:81", "x").host(), "[fd00::1]:81");
    }

    #[test]
    fn router_errors_come_back_as_their_text() {
        let a = Answer { status: 409, body: br#"{"error":"slot b: its last trial failed"}"#.to_vec() };
        let e = a.json::<serde_json::Value>(202, "/update/activate").unwrap_err().to_string();
        assert!(e.contains("answered 409: slot b: its last trial failed"), "{e}");
        let ok = Answer { status: 200, body: b"{\"a\":1}".to_vec() };
        assert_eq!(ok.json::<serde_json::Value>(200, "x").unwrap()["a"], 1);
    }

    #[test]
    fn outcomes_read_as_the_issue_asks() {
        let v = |s: &str| ImageVersion { version: s.into(), build_time: None };
        let up = Outcome::Updated {
            version: v("2.0"),
            slot: Slot::B,
            unreachable: Some(Duration::from_millis(4200)),
            healthy_after_seconds: None,
        };
        assert_eq!(
            up.to_string(),
            "updated to 2.0 (slot b, now the default); the update endpoint was unreachable for 4.2 s"
        );
        let back = Outcome::RolledBack { version: v("1.0"), failed: v("2.0"), reason: "dhcp4 not Bound".into() };
        assert_eq!(back.to_string(), "rolled back to 1.0: 2.0 did not prove itself: dhcp4 not Bound");
    }
}
