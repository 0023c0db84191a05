//! `routerctl`, the console tool: talks to init's control socket
//! (`<run>/router/init.sock`, see [`crate::control_api`]).
//!
//! ```text
//! routerctl [--run DIR] [--json] status
//! routerctl [--run DIR] logs [-f] [-n LINES] NAME     (a service, init or kernel)
//! routerctl [--run DIR] restart|stop|start NAME
//! routerctl [--run DIR] reboot|poweroff
//! routerctl [--run DIR] events [-f]
//! ```
//!
//! Exit codes: 0 done, 1 init did not answer, 2 usage, 3 refused (unknown
//! service, shutting down).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// The usage text.
pub const USAGE: &str = "\
usage: routerctl [--run DIR] [--json] COMMAND
  status                   init, the system and every service
  logs [-f] [-n N] NAME    a service's log (also init, kernel); -f follows
  restart NAME             restart (or start) a service
  stop NAME                stop a service
  start NAME               start a stopped service
  reboot | poweroff        stop every service, then reboot or power off
  events [-f]              init's events (started, exited, restarted, crashloop)
";

struct Ctl<'a> {
    socket: PathBuf,
    json: bool,
    out: &'a mut dyn Write,
}

#[derive(Debug)]
enum Failure {
    Usage(String),
    Unreachable(String),
    Refused(String),
}

type Outcome = Result<(), Failure>;

impl Ctl<'_> {
    fn call(&self, method: &str, path: &str, timeout: Duration) -> Result<(u16, Value), Failure> {
        let r = runtime::unix_http::request(&self.socket, method, path, b"", timeout)
            .map_err(|e| Failure::Unreachable(format!("{}: {e}", self.socket.display())))?;
        let v = r.json().unwrap_or(Value::Null);
        Ok((r.status, v))
    }

    fn get(&self, path: &str, timeout: Duration) -> Result<Value, Failure> {
        match self.call("GET", path, timeout)? {
            (200, v) => Ok(v),
            (code, v) => Err(Failure::Refused(format!("{code}: {}", v["error"].as_str().unwrap_or("refused")))),
        }
    }

    fn line(&mut self, text: &str) -> Outcome {
        writeln!(self.out, "{text}").map_err(|e| Failure::Unreachable(format!("output: {e}")))
    }

    fn status(&mut self) -> Outcome {
        let v = self.get("/v1/status", Duration::from_secs(10))?;
        if self.json {
            return self.line(&serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
        self.line(&format!(
            "{} · {} · init {} ({}) · perm {}",
            s(&v, "hostname"),
            s(&v, "version"),
            s(&v, "phase"),
            s(&v, "mode"),
            s(&v["perm"], "state")
        ))?;
        if let Some(e) = v["manifest_error"].as_str() {
            self.line(&format!("MANIFEST NOT USED: {e}"))?;
        }
        self.line(&format!(
            "{:<12} {:<10} {:>7} {:>8} {:>9} {:>9}  {}",
            "SERVICE", "STATE", "PID", "RESTARTS", "UPTIME", "RSS", "PHASE"
        ))?;
        for svc in v["services"].as_array().cloned().unwrap_or_default() {
            let mut state = s(&svc, "state");
            if svc["crash_loop"].as_bool() == Some(true) && state != "CrashLoop" {
                state.push('!');
            }
            let phase = match (svc["status"]["phase"].as_str(), svc["status_error"].as_str()) {
                (Some(p), _) => p.to_owned(),
                (None, Some(e)) => format!("({e})"),
                _ => String::new(),
            };
            self.line(&format!(
                "{:<12} {:<10} {:>7} {:>8} {:>9} {:>9}  {}",
                s(&svc, "name"),
                state,
                svc["pid"].as_i64().map(|p| p.to_string()).unwrap_or_default(),
                svc["restarts"].as_u64().unwrap_or(0),
                svc["uptime_seconds"].as_f64().map(crate::web::pages::duration).unwrap_or_default(),
                svc["rss_bytes"].as_u64().map(crate::web::pages::bytes).unwrap_or_default(),
                phase
            ))?;
        }
        Ok(())
    }

    fn print_lines(&mut self, page: &Value) -> Result<u64, Failure> {
        if page["missed"].as_u64().unwrap_or(0) > 0 {
            self.line(&format!("… {} lines no longer held", page["missed"]))?;
        }
        for l in page["lines"].as_array().cloned().unwrap_or_default() {
            if self.json {
                self.line(&l.to_string())?;
            } else {
                self.line(&format!(
                    "{} {} {}",
                    l["time"].as_str().unwrap_or(""),
                    l["stream"].as_str().unwrap_or(""),
                    l["text"].as_str().unwrap_or("")
                ))?;
            }
        }
        Ok(page["next"].as_u64().unwrap_or(0))
    }

    fn logs(&mut self, name: &str, lines: usize, follow: bool) -> Outcome {
        let name = crate::web::pages::url_segment(name);
        let page = self.get(&format!("/v1/services/{name}/logs?limit={lines}"), Duration::from_secs(10))?;
        let mut next = self.print_lines(&page)?;
        if !follow {
            return Ok(());
        }
        loop {
            let page = self.get(&format!("/v1/services/{name}/logs?since={next}&wait=30"), Duration::from_secs(45))?;
            next = self.print_lines(&page)?;
        }
    }

    fn events(&mut self, follow: bool) -> Outcome {
        let mut since = 0u64;
        loop {
            let wait = if follow && since > 0 { 30 } else { 0 };
            let v = self.get(&format!("/v1/events?since={since}&topic=init.&wait={wait}"), Duration::from_secs(45))?;
            for e in v["events"].as_array().cloned().unwrap_or_default() {
                self.line(&if self.json {
                    e.to_string()
                } else {
                    format!(
                        "{} {} {}",
                        e["time"].as_str().unwrap_or(""),
                        e["topic"].as_str().unwrap_or(""),
                        e["attributes"]
                    )
                })?;
            }
            since = v["next"].as_u64().unwrap_or(since).max(since);
            if !follow {
                return Ok(());
            }
            if since == 0 {
                since = 1;
            }
        }
    }

    fn post(&mut self, path: &str) -> Outcome {
        match self.call("POST", path, Duration::from_secs(10))? {
            (202, _) => self.line("accepted"),
            (code, v) => Err(Failure::Refused(format!("{code}: {}", v["error"].as_str().unwrap_or("refused")))),
        }
    }
}

/// Runs `routerctl` with `args` (without the program name), writing to `out`;
/// returns the exit code.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut run_dir = PathBuf::from("/run");
    let mut json = false;
    let mut follow = false;
    let mut lines = 200usize;
    let mut words: Vec<&str> = Vec::new();
    let mut it = args.iter();
    let mut usage_error = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--run" => match it.next() {
                Some(d) => run_dir = PathBuf::from(d),
                None => usage_error = Some("--run needs a folder".to_owned()),
            },
            "--json" => json = true,
            "-f" | "--follow" => follow = true,
            "-n" | "--lines" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) => lines = n,
                None => usage_error = Some("-n needs a number".to_owned()),
            },
            "-h" | "--help" => {
                let _ = write!(out, "{USAGE}");
                return 0;
            }
            w => words.push(w),
        }
    }
    let mut ctl = Ctl { socket: runtime::control::socket_path(&run_dir, "init"), json, out };
    let result = match (usage_error, words.as_slice()) {
        (Some(e), _) => Err(Failure::Usage(e)),
        (None, ["status"]) => ctl.status(),
        (None, ["logs", name]) => ctl.logs(name, lines, follow),
        (None, ["events"]) => ctl.events(follow),
        (None, [action @ ("restart" | "stop" | "start"), name]) => {
            ctl.post(&format!("/v1/services/{}/{action}", crate::web::pages::url_segment(name)))
        }
        (None, [action @ ("reboot" | "poweroff")]) => ctl.post(&format!("/v1/system/{action}")),
        (None, _) => Err(Failure::Usage("unknown command".into())),
    };
    match result {
        Ok(()) => 0,
        Err(Failure::Usage(m)) => {
            let _ = write!(err, "routerctl: {m}\n{USAGE}");
            2
        }
        Err(Failure::Unreachable(m)) => {
            let _ = writeln!(err, "routerctl: init does not answer: {m}");
            1
        }
        Err(Failure::Refused(m)) => {
            let _ = writeln!(err, "routerctl: refused: {m}");
            3
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(args: &[&str]) -> (u8, String, String) {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut out, &mut err);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        assert_eq!(call(&["frobnicate"]).0, 2);
        assert_eq!(call(&["restart"]).0, 2);
        assert_eq!(call(&["logs", "-n", "x", "dnsd"]).0, 2);
        let (code, out, _) = call(&["--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("routerctl [--run DIR]"));
    }

    #[test]
    fn an_absent_init_is_reported_with_exit_1() {
        let (code, _, err) = call(&["--run", "/nonexistent", "status"]);
        assert_eq!(code, 1);
        assert!(err.contains("init does not answer"), "{err}");
    }
}
