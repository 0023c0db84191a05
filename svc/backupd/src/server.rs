//! HTTP on private:8077: `GET /backup.tar.gz`, `POST /restore`, `GET /metrics`.
//!
//! Requests arrive on the process's HTTP server thread; backups and restores
//! run on stream threads of their own (a few at once), so a long transfer
//! never holds it. A restore excludes backups and other
//! restores (409 while one runs); backups wait for a restore to finish.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use backupd::archive::Backup;
use backupd::restore::{self, Limits, RestoreError};
use flate2::Compression;
use flate2::read::GzEncoder;
use runtime::control::Control;
use runtime::event_loop::Signal;
use runtime::http::{BasicAuth, method_not_allowed, reply, reply_json, reply_text};
use runtime::httpd::{self, Conn, Outcome, StreamWriter};
use runtime::metrics::{Encoder, Metrics};
use runtime::notify::{self, Delivery};
use runtime::{log_info, log_warn};
use serde_json::json;

/// Every service told to re-read its inputs after a restore.
pub const SERVICES: [&str; 8] = ["dhcp4", "dhcp6", "dhcp4d", "dnsd", "radvd", "netconfigd", "diagd", "captured"];
/// Backups and restores at once (each is a thread).
const MAX_TRANSFERS: usize = 4;

/// Counters.
#[derive(Debug, Default)]
pub struct Counters {
    backups_ok: AtomicU64,
    backups_failed: AtomicU64,
    backup_bytes: AtomicU64,
    restores_applied: AtomicU64,
    restores_refused: AtomicU64,
    restores_failed: AtomicU64,
    unauthorized: AtomicU64,
}

/// What the loop and the request threads share.
#[derive(Debug)]
pub struct Shared {
    /// `/perm`.
    pub perm: PathBuf,
    /// `/run`, to find the services to signal.
    pub run: PathBuf,
    /// `None` while `/perm/router/password` is missing or empty.
    pub auth: RwLock<Option<BasicAuth>>,
    /// What a restore accepts.
    pub limits: Limits,
    transfers: AtomicUsize,
    exclusive: RwLock<()>,
    uploads: AtomicU64,
    counters: Counters,
    control: Control,
}

impl Shared {
    /// State for `perm` and `run`.
    #[must_use]
    pub fn new(perm: PathBuf, run: PathBuf, limits: Limits, control: Control) -> Self {
        Self {
            perm,
            run,
            auth: RwLock::new(None),
            limits,
            transfers: AtomicUsize::new(0),
            exclusive: RwLock::new(()),
            uploads: AtomicU64::new(0),
            counters: Counters::default(),
            control,
        }
    }

    /// Reads `/perm/router/password` again; returns the error when it is unusable.
    pub fn load_password(&self) -> Result<(), String> {
        let path = self.perm.join("router/password");
        let (auth, result) = match BasicAuth::from_file(&path) {
            Ok(a) => (Some(a), Ok(())),
            Err(e) => (None, Err(format!("{}: {e}", path.display()))),
        };
        *self.auth.write().unwrap_or_else(PoisonError::into_inner) = auth;
        result
    }

    /// Where restores stage and uploads land: inside `nobackup`, so neither
    /// is ever backed up, and on `/perm`'s filesystem, so renames are atomic.
    #[must_use]
    pub fn scratch(&self) -> PathBuf {
        self.perm.join("backupd/nobackup")
    }
}

impl Metrics for Shared {
    fn encode(&self, enc: &mut Encoder) {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let help = "Backups streamed, by result.";
        enc.counter("backupd_backups_total", help, &[("result", "ok")], get(&c.backups_ok));
        enc.counter("backupd_backups_total", help, &[("result", "failed")], get(&c.backups_failed));
        enc.counter("backupd_backup_bytes_total", "Bytes of backups sent (compressed).", &[], get(&c.backup_bytes));
        let help = "Restores, by result: applied, refused (a bad archive; nothing changed), failed.";
        enc.counter("backupd_restores_total", help, &[("result", "applied")], get(&c.restores_applied));
        enc.counter("backupd_restores_total", help, &[("result", "refused")], get(&c.restores_refused));
        enc.counter("backupd_restores_total", help, &[("result", "failed")], get(&c.restores_failed));
        enc.counter(
            "backupd_unauthorized_total",
            "Requests refused for a missing or wrong password.",
            &[],
            get(&c.unauthorized),
        );
    }
}

/// Handles one request (on the server's thread).
pub fn handle(shared: &Arc<Shared>, request: &httpd::Request) -> Outcome {
    let path = request.path();
    let get = request.is_get();
    if path == "/metrics" && get {
        return reply(200, "text/plain; version=0.0.4", runtime::metrics::render(shared.as_ref())).into();
    }
    let allowed = shared.auth.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|a| a.authorizes(request));
    match allowed {
        None => return reply_text(503, "no router password is set (/perm/router/password)").into(),
        Some(false) => {
            shared.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            return BasicAuth::challenge_response().into();
        }
        Some(true) => {}
    }
    match path {
        "/backup.tar.gz" if get => transfer(shared, backup),
        "/restore" if request.is("POST") => transfer(shared, restore),
        "/restore" => method_not_allowed("POST").into(),
        "/backup.tar.gz" | "/metrics" => method_not_allowed("GET").into(),
        _ => reply_text(404, "not found; see GET /backup.tar.gz and POST /restore").into(),
    }
}

/// A running transfer, counted until dropped (also when the server could not
/// start its thread and dropped it unrun).
struct Transfer(Arc<Shared>);

impl Drop for Transfer {
    fn drop(&mut self) {
        self.0.transfers.fetch_sub(1, Ordering::AcqRel);
    }
}

fn transfer(shared: &Arc<Shared>, work: fn(&Shared, httpd::Request, Conn)) -> Outcome {
    if shared.transfers.fetch_add(1, Ordering::AcqRel) >= MAX_TRANSFERS {
        shared.transfers.fetch_sub(1, Ordering::AcqRel);
        return reply_text(503, "too many backups and restores at once").into();
    }
    let running = Transfer(Arc::clone(shared));
    Outcome::stream(move |request, conn| work(&running.0, request, conn))
}

fn backup(shared: &Shared, _request: httpd::Request, conn: Conn) {
    let _shared_lock = shared.exclusive.read().unwrap_or_else(PoisonError::into_inner);
    let remote = conn.peer().to_string();
    let tar = match Backup::new(&shared.perm) {
        Ok(t) => t,
        Err(e) => {
            shared.counters.backups_failed.fetch_add(1, Ordering::Relaxed);
            log_warn!("backup for {remote}: {}: {e}", shared.perm.display());
            let _ = conn.respond(&reply_text(500, &format!("cannot read {}: {e}", shared.perm.display())));
            return;
        }
    };
    let headers = [
        ("Content-Type", "application/gzip"),
        ("Content-Disposition", "attachment; filename=\"backup.tar.gz\""),
        ("Cache-Control", "no-store"),
    ];
    let mut out: StreamWriter = match conn.stream(200, &headers) {
        Ok(Some(out)) => out,
        // HEAD, or the client is gone.
        Ok(None) | Err(_) => return,
    };
    // BestSpeed, as router7: /perm is small and the router's CPU is better spent routing.
    let mut gz = GzEncoder::new(tar, Compression::fast());
    let mut buf = vec![0u8; 64 << 10];
    let result = (|| -> io::Result<()> {
        loop {
            let n = match gz.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
        }
        Ok(())
    })();
    let sent = out.sent();
    let result = result.and_then(|()| out.finish());
    let counts = gz.get_ref().counts();
    shared.counters.backup_bytes.fetch_add(sent, Ordering::Relaxed);
    match result {
        Ok(()) => {
            shared.counters.backups_ok.fetch_add(1, Ordering::Relaxed);
            log_info!(
                "backup for {remote}: {} files, {} folders, {} bytes ({} compressed), {} entries skipped",
                counts.files,
                counts.dirs,
                counts.bytes,
                sent,
                counts.skipped
            );
            shared.control.emit(
                "backupd.backup.served",
                json!({"remote": remote, "files": counts.files, "dirs": counts.dirs, "bytes": counts.bytes, "compressed": sent}),
            );
        }
        Err(e) => {
            // The stream stops without its end: the client sees a cut transfer, never a short backup.
            shared.counters.backups_failed.fetch_add(1, Ordering::Relaxed);
            log_warn!("backup for {remote} failed after {sent} bytes: {e}");
            shared.control.emit("backupd.backup.failed", json!({"remote": remote, "error": e.to_string()}));
        }
    }
}

/// The upload, removed when dropped.
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn refuse(shared: &Shared, conn: Conn, remote: &str, e: &RestoreError) {
    let applied_nothing = !matches!(e, RestoreError::Io(_));
    if applied_nothing {
        shared.counters.restores_refused.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.counters.restores_failed.fetch_add(1, Ordering::Relaxed);
    }
    log_warn!("restore from {remote} {}: {e}", if applied_nothing { "refused" } else { "failed" });
    shared.control.emit(
        if applied_nothing { "backupd.restore.refused" } else { "backupd.restore.failed" },
        json!({"remote": remote, "error": e.to_string(), "status": e.status()}),
    );
    let _ = conn.respond(&reply_json(e.status(), &json!({"error": e.to_string()})));
}

fn restore(shared: &Shared, request: httpd::Request, mut conn: Conn) {
    let remote = conn.peer().to_string();
    let Ok(_exclusive) = shared.exclusive.try_write() else {
        let _ = conn.respond(&reply_text(409, "a backup or restore is in progress"));
        return;
    };
    let max = shared.limits.max_upload;
    if request.content_length().is_some_and(|len| len > max) {
        let e = RestoreError::TooLarge(format!("the archive is larger than {max} bytes"));
        return refuse(shared, conn, &remote, &e);
    }
    let scratch = shared.scratch();
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        let e = RestoreError::Io(format!("{}: {e}", scratch.display()));
        return refuse(shared, conn, &remote, &e);
    }
    let n = shared.uploads.fetch_add(1, Ordering::Relaxed);
    let upload = Upload(scratch.join(format!("upload-{}-{n}.tar.gz", std::process::id())));
    let received = (|| -> io::Result<u64> {
        let mut file = File::create(&upload.0)?;
        let got = io::copy(&mut conn.body().take(max + 1), &mut file)?;
        file.sync_all()?;
        Ok(got)
    })();
    let received = match received {
        Ok(n) if n > max => {
            let e = RestoreError::TooLarge(format!("the archive is larger than {max} bytes"));
            return refuse(shared, conn, &remote, &e);
        }
        Ok(n) => n,
        Err(e) => {
            let e = RestoreError::Invalid(format!("receiving the archive: {e}"));
            return refuse(shared, conn, &remote, &e);
        }
    };
    // apply checks the whole archive before it changes anything.
    let staging = scratch.join(format!("restore-{}-{n}", std::process::id()));
    let applied = match restore::apply(&shared.perm, &upload.0, &staging, &shared.limits) {
        Ok(a) => a,
        Err(e) => return refuse(shared, conn, &remote, &e),
    };
    drop(upload);
    shared.counters.restores_applied.fetch_add(1, Ordering::Relaxed);
    log_info!(
        "restored {received} bytes from {remote}: {} files, {} folders, {} bytes; removed {} files and {} folders",
        applied.files,
        applied.dirs,
        applied.bytes,
        applied.removed_files,
        applied.removed_dirs
    );
    if let Err(e) = shared.load_password() {
        log_warn!("after the restore: {e}");
    }
    let mut signalled = Vec::new();
    for name in SERVICES {
        match notify::notify(&shared.run, name, Signal::Usr1) {
            Ok(Delivery::Sent(_)) => signalled.push(name),
            Ok(Delivery::NotRunning) => {}
            Err(e) => log_warn!("after the restore: {e}"),
        }
    }
    let summary = json!({"restored": applied, "signalled": signalled});
    shared.control.emit("backupd.restore.applied", json!({"remote": remote, "summary": summary}));
    let _ = conn.respond(&reply_json(200, &summary));
}
