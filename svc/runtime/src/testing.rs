//! The skip policy for tests that need root or an external tool.
//!
//! Such a test calls [`tool`] or [`root`] first. When the requirement is not met
//! it prints `SKIPPED <test>: <why>` and returns `None`/`false` — unless
//! `ROUTER7_STRICT=1` is set (CI sets it), in which case it panics, so a CI run
//! can never pass by quietly skipping what it was meant to check.
//!
//! Also small helpers that tests in several crates share.

use std::path::PathBuf;

/// Whether skipping is forbidden (`ROUTER7_STRICT=1`).
#[must_use]
pub fn strict() -> bool {
    std::env::var("ROUTER7_STRICT").is_ok_and(|v| v == "1")
}

fn skip(test: &str, why: &str) {
    assert!(!strict(), "{test} cannot run: {why} (ROUTER7_STRICT=1 forbids skipping)");
    eprintln!("SKIPPED {test}: {why}");
}

/// The path of `program` on `PATH` (or `/sbin`, `/usr/sbin`), or a skip.
#[must_use]
pub fn tool(program: &str, test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file());
    if found.is_none() {
        skip(test, &format!("{program} is not installed"));
    }
    found
}

/// Whether we run as root, or a skip.
#[must_use]
pub fn root(test: &str) -> bool {
    let is_root = rustix::process::geteuid().is_root();
    if !is_root {
        skip(test, "needs root");
    }
    is_root
}

/// A file under the project's sibling `shared/captures/` folder (found from
/// `ROUTER7_SHARED`, else by walking up from the crate), or `None` with a note:
/// the shared captures are not part of the repository, and where they are
/// absent the tests that replay them say so and skip (even in strict mode).
#[must_use]
pub fn shared_capture(relative: &str, test: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os("ROUTER7_SHARED").map(|d| PathBuf::from(d).join("captures").join(relative));
    let found = from_env.into_iter().find(|p| p.is_file()).or_else(|| {
        let start = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        start.ancestors().map(|dir| dir.join("shared/captures").join(relative)).find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("SKIPPED {test}: shared/captures/{relative} is absent");
    }
    found
}

/// Copies `src` to `dest` as an executable (mode 0755) that can be run at once.
///
/// The copy is made by `install` in a child process, never through a file
/// descriptor of this process: tests run in threads, and a thread forking while
/// another one holds the new file open for writing gives the child that
/// descriptor until it execs. Running the file in that window fails with
/// ETXTBSY ("Text file busy"), so a test that copied a program and started it
/// failed now and then.
///
/// # Panics
/// When `install` cannot run or fails (test code: a failed setup step).
pub fn install_executable(src: &std::path::Path, dest: &std::path::Path) {
    let out = std::process::Command::new("install")
        .arg("-m")
        .arg("0755")
        .arg(src)
        .arg(dest)
        .output()
        .unwrap_or_else(|e| panic!("cannot run install: {e}"));
    assert!(
        out.status.success(),
        "install {} {} failed: {}",
        src.display(),
        dest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `promtool check metrics` on `text` (the test has already made sure with
/// [`tool`] that promtool is there): `Err` with promtool's own words when it
/// rejects the exposition or cannot be run.
///
/// # Errors
/// promtool's output when it rejects `text`, or why it could not run.
pub fn promtool_check(text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).map_err(|e| format!("promtool's input: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("promtool: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("promtool: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}
