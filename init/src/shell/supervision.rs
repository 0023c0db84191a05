//! Carrying out the supervisor's actions: spawning with the pipes and pid
//! file, signalling process groups, reaping every child, telling people
//! (events and log lines), requests from the web and control threads, shutdown.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Init {
    pub(super) fn name(&self, i: usize) -> String {
        self.specs.get(i).map(|s| s.name.clone()).unwrap_or_default()
    }

    pub(super) fn apply(&mut self, registry: &Registry, actions: Vec<Action>, now: Instant) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            self.dirty = true;
            match action {
                Action::Spawn(i) => queue.extend(self.start(registry, i, now)),
                Action::Signal { service, pgid, signal } => {
                    let sig = match signal {
                        Kill::Term => rustix::process::Signal::TERM,
                        Kill::Kill => rustix::process::Signal::KILL,
                    };
                    let Some(pid) = rustix::process::Pid::from_raw(pgid) else { continue };
                    match rustix::process::kill_process_group(pid, sig) {
                        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                        Err(e) => self.say(Some(service), format!("cannot signal process group {pgid}: {e}")),
                    }
                    if signal == Kill::Kill {
                        self.say(
                            Some(service),
                            format!("did not stop within {:?}: SIGKILL", self.sup.policy().stop_timeout),
                        );
                    }
                }
                Action::KillLeftovers { service, pgid } => {
                    if let Some(pid) = rustix::process::Pid::from_raw(pgid)
                        && rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_ok()
                    {
                        self.say(Some(service), "killed processes left in its group".into());
                    }
                }
                Action::Notice(n) => self.notice(n),
            }
        }
    }

    pub(super) fn start(&mut self, registry: &Registry, i: usize, now: Instant) -> Vec<Action> {
        let spec = self.specs[i].clone();
        let started =
            spawn::prepare_home(&spec, &self.spawn_cfg).and_then(|home| spawn::spawn(&spec, &home, &self.spawn_cfg));
        match started {
            Ok(child) => {
                for (fd, stream) in [(child.stdout, Stream::Stdout), (child.stderr, Stream::Stderr)] {
                    self.add_pipe(registry, &spec.name, stream, fd);
                }
                let pid_file = runtime::notify::pid_path(&self.cfg.run, &spec.name);
                if let Err(e) = runtime::statefile::write_atomic(&pid_file, format!("{}\n", child.pid).as_bytes()) {
                    self.say(Some(i), format!("cannot write its pid file: {e}"));
                }
                self.sup.spawned(i, child.pid, now)
            }
            Err(e) => self.sup.spawn_failed(i, format!("{}: {e}", spec.path.display()), now),
        }
    }

    pub(super) fn notice(&mut self, n: Notice) {
        match n {
            Notice::Started { service, pid, attempt, reason } => {
                let name = self.name(service);
                let why = match reason {
                    StartReason::Boot => "boot".to_owned(),
                    StartReason::Manual => "asked for".to_owned(),
                    StartReason::Failure { delay } => format!("after a failure, waited {delay:?}"),
                };
                self.say(Some(service), format!("started, pid {pid}, attempt {attempt} ({why})"));
                self.control.emit("init.service.started", json!({"service": name, "pid": pid, "attempt": attempt}));
                if attempt > 1 {
                    let (reason, delay) = match reason {
                        StartReason::Failure { delay } => ("failure", delay.as_secs_f64()),
                        StartReason::Manual => ("manual", 0.0),
                        StartReason::Boot => ("boot", 0.0),
                    };
                    self.control.emit(
                        "init.service.restarted",
                        json!({"service": name, "pid": pid, "attempt": attempt, "reason": reason, "delay_seconds": delay}),
                    );
                }
            }
            Notice::Exited { service, pid, exit, ran, next } => {
                let name = self.name(service);
                let pid_file = runtime::notify::pid_path(&self.cfg.run, &name);
                if std::fs::read_to_string(&pid_file).is_ok_and(|t| t.trim() == pid.to_string()) {
                    let _ = std::fs::remove_file(&pid_file);
                }
                let mut attrs = json!({"service": name, "pid": pid, "ran_seconds": ran.as_secs_f64()});
                match exit {
                    Exit::Code(c) => attrs["code"] = json!(c),
                    Exit::Signal(s) => attrs["signal"] = json!(s),
                }
                let then = self.describe_next(next, &mut attrs);
                self.say(Some(service), format!("exited ({exit}) after {:.1} s; {then}", ran.as_secs_f64()));
                self.control.emit("init.service.exited", attrs);
            }
            Notice::SpawnFailed { service, error, next } => {
                let name = self.name(service);
                let mut attrs = json!({"service": name, "error": error});
                let then = self.describe_next(next, &mut attrs);
                self.say(Some(service), format!("cannot start: {error}; {then}"));
                self.control.emit("init.service.exited", attrs);
            }
            Notice::CrashLoop { service, failures, window } => {
                let name = self.name(service);
                self.say(
                    Some(service),
                    format!(
                        "CRASH LOOP: {failures} failures within {} minutes; still retrying with backoff",
                        window.as_secs() / 60
                    ),
                );
                self.control.emit(
                    "init.service.crashloop",
                    json!({"service": name, "failures": failures, "window_seconds": window.as_secs()}),
                );
            }
            Notice::Stable { service } => {
                self.say(Some(service), "running stably: backoff and crash-loop state reset".into());
            }
            Notice::Unkillable { service, pid } => {
                self.say(
                    Some(service),
                    format!("pid {pid} survived SIGKILL (stuck in the kernel?); no longer waiting for it"),
                );
            }
        }
    }

    pub(super) fn describe_next(&self, next: Next, attrs: &mut serde_json::Value) -> String {
        match next {
            Next::RestartIn(d) => {
                attrs["next"] = json!("restart");
                attrs["restart_in_seconds"] = json!(d.as_secs_f64());
                format!("restarting in {d:?}")
            }
            Next::RestartNow => {
                attrs["next"] = json!("restart");
                attrs["restart_in_seconds"] = json!(0.0);
                "restarting now".into()
            }
            Next::Stop(why) => {
                attrs["next"] = json!("stop");
                format!("not restarting ({why:?})")
            }
        }
    }

    pub(super) fn reap(&mut self, registry: &Registry, now: Instant) {
        loop {
            match rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    let pid = pid.as_raw_nonzero().get();
                    let exit = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(sig)) => Exit::Signal(sig),
                        (None, None) => continue,
                    };
                    if let Some(actions) = self.sup.exited(pid, exit, now) {
                        self.apply(registry, actions, now);
                    } else if self.rescue.as_mut().is_some_and(|r| r.exited(pid)) {
                        self.say(None, "rescue shell ended".into());
                    } else {
                        self.shared.counters.orphans_reaped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(None) | Err(rustix::io::Errno::CHILD) => return,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    self.say(None, format!("waitpid: {e}"));
                    return;
                }
            }
        }
    }

    pub(super) fn handle_request(&mut self, registry: &Registry, request: Request, now: Instant) {
        let index = |name: &str| self.specs.iter().position(|s| s.name == name);
        let result = match &request {
            Request::Stop(n) => index(n).map(|i| (i, self.sup.stop(i, now))),
            Request::Restart(n) => index(n).map(|i| (i, self.sup.restart(i, now))),
            Request::Start(n) => index(n).map(|i| (i, self.sup.start_one(i, now))),
            Request::Reboot => return self.begin_shutdown(registry, Outcome::Reboot, now),
            Request::Poweroff => return self.begin_shutdown(registry, Outcome::Poweroff, now),
            Request::Kexec => return self.begin_shutdown(registry, Outcome::Kexec, now),
            Request::Refresh => return self.refresh(),
            Request::Note(text) => return self.say(None, text.clone()),
        };
        match result {
            Some((i, Ok(actions))) => {
                let what = match request {
                    Request::Stop(_) => "stop",
                    Request::Start(_) => "start",
                    _ => "restart",
                };
                self.say(Some(i), format!("{what} asked for"));
                self.dirty = true;
                self.apply(registry, actions, now);
            }
            Some((i, Err(e))) => self.say(Some(i), format!("request refused: {e:?}")),
            None => {}
        }
    }

    pub(super) fn begin_shutdown(&mut self, registry: &Registry, outcome: Outcome, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        self.shutdown = Some(outcome);
        self.dirty = true;
        self.say(None, format!("shutting down for {}: stopping every service", outcome.name()));
        self.control.emit("init.shutdown", json!({"kind": outcome.name()}));
        let actions = self.sup.shutdown(now);
        self.apply(registry, actions, now);
    }
}
