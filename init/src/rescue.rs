//! The rescue prompt on the serial console.
//!
//! The image ships no shell. A rescue shell exists only when someone puts one
//! on `/perm` on purpose: an executable at `/perm/init/rescue` (for example a
//! static busybox), owned by root and writable by nobody else. Then a key press
//! on the console asks for the router password; the right one starts that
//! program as root on the console (own session, the console as its controlling
//! terminal). Without it, a key press only says how to configure one.
//! Three wrong passwords lock the prompt for a minute, doubling each time.
//!
//! [`Prompt`] is the sans-IO part; [`RescueShell`] does the console IO.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest password accepted.
const MAX_INPUT: usize = 256;
/// Wrong passwords before a lockout.
const MAX_FAILURES: u32 = 3;
/// The first lockout; doubles with each further one.
const LOCKOUT: Duration = Duration::from_secs(60);
/// An unfinished password is dropped after this long.
const INPUT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the "not configured" hint is repeated at most.
const HINT_INTERVAL: Duration = Duration::from_secs(60);

/// What the prompt asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptAction {
    /// Write this to the console.
    Write(String),
    /// Check this password and call [`Prompt::checked`] with the answer.
    Check(String),
    /// Start the rescue shell.
    Spawn,
    /// A line for init's log.
    Note(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PromptState {
    Idle,
    Reading { input: Vec<u8>, since: Instant },
    Running,
}

/// The rescue prompt's state machine.
#[derive(Debug, Clone)]
pub struct Prompt {
    state: PromptState,
    failures: u32,
    lockouts: u32,
    locked_until: Option<Instant>,
    next_hint: Option<Instant>,
}

impl Default for Prompt {
    fn default() -> Self {
        Self::new()
    }
}

impl Prompt {
    /// An idle prompt.
    #[must_use]
    pub fn new() -> Self {
        Self { state: PromptState::Idle, failures: 0, lockouts: 0, locked_until: None, next_hint: None }
    }

    /// Whether the rescue shell runs (the console then belongs to it).
    #[must_use]
    pub fn shell_running(&self) -> bool {
        self.state == PromptState::Running
    }

    /// Bytes typed on the console; `configured` says whether a rescue shell exists.
    pub fn on_input(&mut self, now: Instant, bytes: &[u8], configured: bool) -> Vec<PromptAction> {
        let mut out = Vec::new();
        if let PromptState::Reading { since, .. } = self.state
            && now.saturating_duration_since(since) > INPUT_TIMEOUT
        {
            self.state = PromptState::Idle;
        }
        for &b in bytes {
            match &mut self.state {
                PromptState::Running => return out,
                PromptState::Idle => {
                    if !configured {
                        if self.next_hint.is_none_or(|t| now >= t) {
                            self.next_hint = Some(now + HINT_INTERVAL);
                            out.push(PromptAction::Write(
                                "\r\nrouter7: no rescue shell is configured (an executable /perm/init/rescue, owned by root)\r\n"
                                    .into(),
                            ));
                        }
                        return out;
                    }
                    if let Some(until) = self.locked_until.filter(|&u| now < u) {
                        out.push(PromptAction::Write(format!(
                            "\r\nrouter7: rescue prompt locked for {} s after wrong passwords\r\n",
                            until.saturating_duration_since(now).as_secs() + 1
                        )));
                        return out;
                    }
                    self.state = PromptState::Reading { input: Vec::new(), since: now };
                    out.push(PromptAction::Write("\r\nrouter7 rescue password: ".into()));
                }
                PromptState::Reading { input, .. } => match b {
                    b'\r' | b'\n' => {
                        let password = String::from_utf8_lossy(input).into_owned();
                        self.state = PromptState::Idle;
                        out.push(PromptAction::Write("\r\n".into()));
                        out.push(PromptAction::Check(password));
                        return out;
                    }
                    0x7f | 0x08 => {
                        input.pop();
                    }
                    0x03 | 0x15 | 0x1b => {
                        self.state = PromptState::Idle;
                        out.push(PromptAction::Write("\r\n".into()));
                        return out;
                    }
                    b if input.len() < MAX_INPUT => input.push(b),
                    _ => {}
                },
            }
        }
        out
    }

    /// The answer to a [`PromptAction::Check`].
    pub fn checked(&mut self, now: Instant, right: bool) -> Vec<PromptAction> {
        if right {
            self.failures = 0;
            self.lockouts = 0;
            self.state = PromptState::Running;
            return vec![PromptAction::Note("rescue shell started on the console".into()), PromptAction::Spawn];
        }
        self.failures += 1;
        let mut out = vec![
            PromptAction::Write("wrong password\r\n".into()),
            PromptAction::Note("wrong password at the rescue prompt".into()),
        ];
        if self.failures >= MAX_FAILURES {
            self.failures = 0;
            let lock = LOCKOUT.saturating_mul(1 << self.lockouts.min(6));
            self.lockouts += 1;
            self.locked_until = Some(now + lock);
            out.push(PromptAction::Note(format!("rescue prompt locked for {lock:?}")));
        }
        out
    }

    /// The rescue shell ended.
    pub fn shell_ended(&mut self) {
        self.state = PromptState::Idle;
    }
}

/// Where the rescue prompt reads and what it starts.
#[derive(Debug, Clone)]
pub struct RescueConfig {
    /// The console device (`/dev/console`).
    pub console: PathBuf,
    /// The rescue program (`/perm/init/rescue`).
    pub program: PathBuf,
}

/// Whether `program` may be run as the rescue shell: a regular executable file
/// owned by root that nobody else can change.
#[must_use]
pub fn acceptable(program: &Path) -> bool {
    std::fs::symlink_metadata(program).is_ok_and(|m| {
        m.file_type().is_file()
            && m.uid() == 0
            && m.permissions().mode() & 0o022 == 0
            && m.permissions().mode() & 0o100 != 0
    })
}

/// What happened on a console read.
#[derive(Debug, Default)]
pub struct InputOutcome {
    /// Lines for init's log.
    pub say: Vec<String>,
    /// Starting the shell failed.
    pub spawn_error: Option<String>,
}

/// The console side of the rescue prompt.
#[derive(Debug)]
pub struct RescueShell {
    cfg: RescueConfig,
    password_file: PathBuf,
    input: OwnedFd,
    cooked: rustix::termios::Termios,
    prompt: Prompt,
    child: Option<i32>,
}

impl RescueShell {
    /// Opens the console for reading, key by key without echo.
    pub fn new(cfg: RescueConfig, password_file: PathBuf) -> std::io::Result<Self> {
        use rustix::fs::{Mode, OFlags};
        use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex};
        let input = rustix::fs::open(
            &cfg.console,
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let cooked = rustix::termios::tcgetattr(&input)?;
        let mut raw = cooked.clone();
        raw.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO);
        raw.special_codes[SpecialCodeIndex::VMIN] = 1;
        raw.special_codes[SpecialCodeIndex::VTIME] = 0;
        rustix::termios::tcsetattr(&input, OptionalActions::Now, &raw)?;
        Ok(Self { cfg, password_file, input, cooked, prompt: Prompt::new(), child: None })
    }

    /// The console descriptor to watch for input.
    #[must_use]
    pub fn input(&self) -> BorrowedFd<'_> {
        self.input.as_fd()
    }

    fn write(&self, text: &str) {
        // Best effort: the console may be busy; the prompt is short.
        let _ = rustix::io::write(&self.input, text.as_bytes());
    }

    /// Reads what was typed and acts on it.
    pub fn on_input(&mut self, now: Instant) -> InputOutcome {
        let mut out = InputOutcome::default();
        if self.prompt.shell_running() {
            // The console is the shell's now; leave its input alone.
            return out;
        }
        let mut buf = [0u8; 256];
        let mut actions = Vec::new();
        loop {
            match rustix::io::read(&self.input, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => actions.extend(self.prompt.on_input(now, &buf[..n], acceptable(&self.cfg.program))),
            }
        }
        let mut queue: std::collections::VecDeque<PromptAction> = actions.into();
        while let Some(a) = queue.pop_front() {
            match a {
                PromptAction::Write(t) => self.write(&t),
                PromptAction::Note(t) => out.say.push(t),
                PromptAction::Check(password) => {
                    let right = runtime::http::BasicAuth::from_file(&self.password_file)
                        .is_ok_and(|auth| auth.check_header(Some(&basic(&password))));
                    queue.extend(self.prompt.checked(now, right));
                }
                PromptAction::Spawn => match self.spawn() {
                    Ok(pid) => self.child = Some(pid),
                    Err(e) => {
                        self.prompt.shell_ended();
                        self.raw_again();
                        out.spawn_error = Some(e.to_string());
                    }
                },
            }
        }
        out
    }

    fn spawn(&self) -> std::io::Result<i32> {
        use rustix::termios::OptionalActions;
        rustix::termios::tcsetattr(&self.input, OptionalActions::Now, &self.cooked)?;
        let tty = || std::fs::OpenOptions::new().read(true).write(true).open(&self.cfg.console);
        let mut cmd = std::process::Command::new(&self.cfg.program);
        cmd.env_clear()
            .env("PATH", "/perm/init:/svc:/bin")
            .env("TERM", "linux")
            .env("HOME", "/perm/init")
            .current_dir("/")
            .stdin(tty()?)
            .stdout(tty()?)
            .stderr(tty()?);
        runtime::sys::set_child_setup(
            &mut cmd,
            runtime::sys::ChildSetup { new_session: true, controlling_tty: true, credentials: None },
        );
        let child = cmd.spawn()?;
        i32::try_from(child.id()).map_err(|_| std::io::Error::other("pid out of range"))
    }

    fn raw_again(&self) {
        use rustix::termios::{LocalModes, OptionalActions};
        let mut raw = self.cooked.clone();
        raw.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&self.input, OptionalActions::Now, &raw);
    }

    /// A child exited: true when it was the rescue shell.
    pub fn exited(&mut self, pid: i32) -> bool {
        if self.child != Some(pid) {
            return false;
        }
        self.child = None;
        self.prompt.shell_ended();
        self.raw_again();
        true
    }
}

fn basic(password: &str) -> String {
    format!("Basic {}", runtime::base64::encode(format!("{}:{password}", runtime::http::AUTH_USER).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(actions: &[PromptAction]) -> String {
        actions.iter().filter_map(|a| if let PromptAction::Write(t) = a { Some(t.as_str()) } else { None }).collect()
    }

    #[test]
    fn without_a_configured_shell_a_key_press_only_explains() {
        let t0 = runtime::clock::now();
        let mut p = Prompt::new();
        let a = p.on_input(t0, b"x", false);
        assert!(writes(&a).contains("no rescue shell is configured"));
        assert!(!a.iter().any(|a| matches!(a, PromptAction::Check(_) | PromptAction::Spawn)));
        assert!(p.on_input(t0 + Duration::from_secs(1), b"y", false).is_empty(), "the hint is not repeated at once");
        assert!(!p.on_input(t0 + HINT_INTERVAL, b"y", false).is_empty());
    }

    #[test]
    fn the_right_password_starts_the_shell() {
        let t0 = runtime::clock::now();
        let mut p = Prompt::new();
        let a = p.on_input(t0, b"\r", true);
        assert!(writes(&a).contains("rescue password:"));
        let a = p.on_input(t0, b"secrex\x7ft\r", true);
        assert_eq!(a.last(), Some(&PromptAction::Check("secret".into())));
        let a = p.checked(t0, true);
        assert!(a.contains(&PromptAction::Spawn));
        assert!(p.shell_running());
        assert!(p.on_input(t0, b"ls\r", true).is_empty(), "the shell owns the console now");
        p.shell_ended();
        assert!(!p.shell_running());
    }

    #[test]
    fn wrong_passwords_lock_the_prompt_with_growing_lockouts() {
        let t0 = runtime::clock::now();
        let mut p = Prompt::new();
        for _ in 0..3 {
            p.on_input(t0, b"\r", true);
            let a = p.on_input(t0, b"guess\r", true);
            assert_eq!(a.last(), Some(&PromptAction::Check("guess".into())));
            assert!(!p.checked(t0, false).contains(&PromptAction::Spawn));
        }
        let a = p.on_input(t0 + Duration::from_secs(10), b"\r", true);
        assert!(writes(&a).contains("locked"), "{a:?}");
        assert!(!a.iter().any(|x| matches!(x, PromptAction::Check(_))));
        // After the minute, the prompt is back; three more failures lock for two.
        let t1 = t0 + LOCKOUT;
        for _ in 0..3 {
            p.on_input(t1, b"\r", true);
            p.on_input(t1, b"guess\r", true);
            p.checked(t1, false);
        }
        assert!(writes(&p.on_input(t1 + LOCKOUT, b"\r", true)).contains("locked"));
        assert!(writes(&p.on_input(t1 + LOCKOUT * 2, b"\r", true)).contains("password:"));
    }

    #[test]
    fn ctrl_c_cancels_and_long_input_is_bounded() {
        let t0 = runtime::clock::now();
        let mut p = Prompt::new();
        p.on_input(t0, b"\r", true);
        assert!(p.on_input(t0, b"abc\x03", true).iter().all(|a| !matches!(a, PromptAction::Check(_))));
        p.on_input(t0, b"\r", true);
        let long = vec![b'a'; 10_000];
        p.on_input(t0, &long, true);
        let a = p.on_input(t0, b"\r", true);
        assert!(matches!(a.last(), Some(PromptAction::Check(s)) if s.len() == MAX_INPUT));
    }

    #[test]
    fn only_a_root_owned_unwritable_executable_is_a_rescue_shell() {
        let dir = std::env::temp_dir().join(format!("init-rescue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prog = dir.join("rescue");
        std::fs::write(&prog, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = rustix::process::geteuid().is_root();
        assert_eq!(acceptable(&prog), root);
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(!acceptable(&prog), "group-writable");
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!acceptable(&prog), "not executable");
        assert!(!acceptable(&dir.join("missing")));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
