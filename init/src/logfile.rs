//! Service logs persisted under `/perm/init/logs/<name>.log`, so they survive a
//! reboot (gokrazy's users lost theirs at every update). Each file is capped:
//! when the next line would pass the cap, `<name>.log` becomes `<name>.log.1`
//! (replacing the older one) and a new file starts, so a service never uses more
//! than twice the cap on disk.
//!
//! Lines are `<RFC 3339 time> <stream> <text>`. Writes are buffered and flushed
//! once per loop turn, never fsynced line by line (that would wear the SSD); a
//! clean shutdown syncs. A write error (a full or missing `/perm`) is counted,
//! the file is dropped and reopened at the next flush.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::logs::LogLine;

/// The default cap per file.
pub const DEFAULT_CAP: u64 = 1 << 20;

/// One service's persisted log.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    cap: u64,
    file: Option<BufWriter<File>>,
    size: u64,
    errors: u64,
    last_error: Option<String>,
}

impl LogFile {
    /// The log at `path`, capped at `cap` bytes per file. Nothing is opened yet.
    #[must_use]
    pub fn new(path: PathBuf, cap: u64) -> Self {
        Self { path, cap: cap.max(1024), file: None, size: 0, errors: 0, last_error: None }
    }

    /// The current file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rotated file.
    #[must_use]
    pub fn rotated_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Write errors so far.
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The last write error.
    #[must_use]
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    fn open(&mut self) -> io::Result<&mut BufWriter<File>> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new().create(true).append(true).mode(0o640).open(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(BufWriter::with_capacity(16 * 1024, f));
        }
        // Just opened above when it was missing.
        Ok(self.file.as_mut().expect("the file is open"))
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
        }
        fs::rename(&self.path, self.rotated_path())?;
        self.size = 0;
        Ok(())
    }

    fn try_write(&mut self, text: &[u8]) -> io::Result<()> {
        let len = text.len() as u64;
        self.open()?;
        if self.size > 0 && self.size + len > self.cap {
            self.rotate()?;
        }
        self.open()?.write_all(text)?;
        self.size += len;
        Ok(())
    }

    fn failed(&mut self, e: &io::Error) {
        self.errors += 1;
        self.last_error = Some(e.to_string());
        self.file = None;
    }

    /// Appends `line` (buffered). Returns false when it could not be written.
    pub fn write(&mut self, line: &LogLine) -> bool {
        let text = format!("{} {} {}\n", line.time, line.stream.name(), line.text);
        match self.try_write(text.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }

    /// Writes out the buffer.
    pub fn flush(&mut self) {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush()
        {
            self.failed(&e);
        }
    }

    /// Reads back the last `n` lines of the rotated and current files, for
    /// showing the previous boot's log.
    #[must_use]
    pub fn read_tail(&self, n: usize) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for p in [self.rotated_path(), self.path.clone()] {
            if let Ok(text) = fs::read(&p) {
                lines.extend(String::from_utf8_lossy(&text).lines().map(str::to_owned));
            }
        }
        let skip = lines.len().saturating_sub(n);
        lines.split_off(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::Stream;
    use runtime::timefmt::Timestamp;

    fn line(seq: u64, text: &str) -> LogLine {
        LogLine { seq, time: Timestamp { secs: 1_700_000_000, nanos: 5 }, stream: Stream::Stderr, text: text.into() }
    }

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("init-logfile-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn rotates_at_the_cap_and_keeps_one_older_file() {
        let dir = tmp("rotate");
        let mut log = LogFile::new(dir.join("logs/svc.log"), 1024);
        let text = "x".repeat(90); // ~130 bytes per line with time and stream
        for i in 0..40 {
            assert!(log.write(&line(i, &format!("{i:03} {text}"))));
            log.flush();
        }
        let cur = fs::metadata(log.path()).unwrap().len();
        let old = fs::metadata(log.rotated_path()).unwrap().len();
        assert!(cur <= 1024 && old <= 1024, "{cur} {old}");
        assert!(!dir.join("logs/svc.log.2").exists());
        // The newest lines survive, in order, across both files.
        let tail = log.read_tail(3);
        assert!(tail[2].contains("039 "), "{tail:?}");
        assert!(tail[0].contains("037 "), "{tail:?}");
        assert!(tail[2].starts_with("2023-11-14T22:13:20.000000005Z stderr 039"), "{}", tail[2]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn continues_an_existing_file_after_a_reboot() {
        let dir = tmp("reopen");
        let path = dir.join("svc.log");
        {
            let mut log = LogFile::new(path.clone(), 1 << 20);
            log.write(&line(1, "before reboot"));
            log.flush();
        }
        let mut log = LogFile::new(path.clone(), 1 << 20);
        log.write(&line(1, "after reboot"));
        log.flush();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("before reboot") && text.contains("after reboot"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_write_error_is_counted_and_retried() {
        let dir = tmp("error");
        fs::create_dir_all(&dir).unwrap();
        // A file where the folder should be: every open fails.
        fs::write(dir.join("logs"), b"").unwrap();
        let mut log = LogFile::new(dir.join("logs/svc.log"), 1 << 20);
        assert!(!log.write(&line(1, "lost")));
        assert_eq!(log.errors(), 1);
        assert!(log.last_error().is_some());
        fs::remove_file(dir.join("logs")).unwrap();
        assert!(log.write(&line(2, "kept")));
        log.flush();
        assert!(fs::read_to_string(dir.join("logs/svc.log")).unwrap().contains("kept"));
        fs::remove_dir_all(dir).unwrap();
    }
}
