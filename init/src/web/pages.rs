//! HTML pages. Every value that comes from data (names, log text, addresses,
//! error messages) goes through [`esc`]; the pages have no inline script, so the
//! Content-Security-Policy can forbid it.

use std::fmt::Write as _;

use crate::logs::{LogLine, LogPage};
use crate::status::{Overview, ServiceStatus};

pub use runtime::http::html_escape as esc;

/// Percent-encodes a path segment.
#[must_use]
pub fn url_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=stylesheet href=\"/static/style.css\"></head><body>\n",
        esc(title)
    )
}

const FOOT: &str = "<script src=\"/static/app.js\"></script></body></html>\n";

/// `1.5 GiB`, `300 KiB`, …
#[must_use]
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// `3d 4h`, `5m 12s`, …
#[must_use]
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

fn csrf_field(token: &str) -> String {
    format!("<input type=hidden name=csrf value=\"{}\">", esc(token))
}

fn action_form(action: &str, label: &str, token: &str, confirm: Option<&str>) -> String {
    let confirm = confirm.map(|c| format!(" data-confirm=\"{}\"", esc(c))).unwrap_or_default();
    format!(
        "<form class=inline method=post action=\"{}\"{confirm}>{}<button type=submit>{}</button></form>",
        esc(action),
        csrf_field(token),
        esc(label)
    )
}

fn state_cell(s: &ServiceStatus) -> String {
    let mut cell = format!("<span class=\"state-{}\">{}</span>", esc(&s.state), esc(&s.state));
    if s.crash_loop && s.state != "CrashLoop" {
        cell.push_str(" <span class=state-CrashLoop>crash loop</span>");
    }
    if let Some(next) = s.next_start_in_seconds {
        let _ = write!(cell, " <span class=muted>(restart in {})</span>", duration(next.ceil()));
    }
    cell
}

/// The overview page.
#[must_use]
pub fn overview(o: &Overview, token: &str) -> String {
    let mut h = head(&format!("{} — router7", o.hostname));
    let _ = writeln!(
        h,
        "<h1>{}</h1><p class=muted>{} · kernel {} · up {}</p>",
        esc(&o.hostname),
        esc(&o.version),
        esc(&o.kernel),
        o.uptime_seconds.map_or_else(|| "?".into(), duration)
    );
    if let Some(e) = &o.manifest_error {
        let _ = writeln!(h, "<div class=warn>The service manifest was not used: {}</div>", esc(e));
    }
    if o.perm.state == crate::mounts::PermState::Temporary {
        let _ = writeln!(h, "<div class=warn>/perm is temporary: {}</div>", esc(&o.perm.detail));
    }
    if let Some(s) = &o.shutting_down {
        let _ = writeln!(h, "<div class=warn>Shutting down ({}).</div>", esc(s));
    }
    h.push_str(
        "<h2>Services</h2>\n<table id=services><tr><th>service<th>state<th>pid<th>restarts<th>uptime\
         <th>memory (RSS)<th>phase</tr>\n",
    );
    for s in &o.services {
        let phase = match (&s.status, &s.status_error) {
            (Some(v), _) => v.get("phase").and_then(|p| p.as_str()).map(esc).unwrap_or_default(),
            (None, Some(e)) => format!("<span class=muted>{}</span>", esc(e)),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            h,
            "<tr data-service=\"{name}\"><td><a href=\"/services/{url}\">{name}</a><td>{state}<td class=num>{pid}\
             <td class=num>{restarts}<td class=num>{uptime}<td class=num>{rss}<td>{phase}</tr>",
            name = esc(&s.name),
            url = url_segment(&s.name),
            state = state_cell(s),
            pid = s.pid.map(|p| p.to_string()).unwrap_or_default(),
            restarts = s.restarts,
            uptime = s.uptime_seconds.map(duration).unwrap_or_default(),
            rss = s.rss_bytes.map(bytes).unwrap_or_default(),
        );
    }
    h.push_str("</table>\n<p><a href=\"/services/init\">init's log</a> · <a href=\"/services/kernel\">kernel log</a> · <a href=\"/metrics\">metrics</a></p>\n");
    h.push_str("<h2>System</h2>\n<table>");
    let m = &o.memory;
    let used = m.total_bytes.saturating_sub(m.available_bytes);
    let _ = write!(
        h,
        "<tr><th>memory<td>{} of {} in use {}</tr>",
        bytes(used),
        bytes(m.total_bytes),
        bar(used, m.total_bytes)
    );
    let p = &o.perm;
    let usage = p.usage.map_or_else(String::new, |u| {
        format!("{} of {} in use {}", bytes(u.used_bytes), bytes(u.total_bytes), bar(u.used_bytes, u.total_bytes))
    });
    let _ = write!(
        h,
        "<tr><th>/perm<td>{usage} <span class=muted>{} {}</span></tr>",
        esc(&format!("{:?}", p.state).to_lowercase()),
        esc(&p.device.as_ref().map(|d| d.display().to_string()).unwrap_or_default())
    );
    let _ = write!(
        h,
        "<tr><th>boot<td>root={} slot={} {}</tr>",
        esc(o.boot.root.as_deref().unwrap_or("?")),
        o.boot.slot.map_or("?", |s| if s == crate::cmdline::Slot::A { "a" } else { "b" }),
        if o.boot.trial { "(trial)" } else { "" }
    );
    for (label, private) in [("private addresses", true), ("public addresses", false)] {
        let list: Vec<String> = o
            .addresses
            .iter()
            .filter(|a| a.private == private)
            .map(|a| {
                format!(
                    "{}/{} <span class=muted>{}</span>",
                    esc(&a.address.to_string()),
                    a.prefix_len,
                    esc(&a.interface)
                )
            })
            .collect();
        let _ = write!(h, "<tr><th>{label}<td>{}</tr>", list.join("<br>"));
    }
    h.push_str("</table>\n");
    if let Some(u) = &o.update {
        h.push_str(&update_section(u));
    }
    h.push_str("<h2>Power</h2>\n<p>");
    h.push_str(&action_form("/reboot", "Reboot", token, Some("Reboot the router?")));
    h.push_str(&action_form(
        "/poweroff",
        "Power off",
        token,
        Some("Power the router off? It stays off until someone is there."),
    ));
    h.push_str("</p>\n");
    h.push_str(FOOT);
    h
}

fn part_cell(p: &bootslot::api::Part) -> String {
    use bootslot::api::Part;
    match p {
        Part::Installed => "installed by the image build".into(),
        Part::Written { sha256, bytes: n, at } => {
            format!("<span title=\"sha256 {}\">{} · {}</span>", esc(sha256), bytes(*n), esc(at))
        }
        Part::Missing { reason } => format!("<span class=warn>{}</span>", esc(reason)),
    }
}

/// Both slots, the trial and the last update (issue 11).
fn update_section(u: &bootslot::api::UpdateStatus) -> String {
    let mut h = String::from("<h2>Updates</h2>\n");
    if let Some(why) = &u.unavailable {
        let _ = writeln!(h, "<p class=muted>Updates are off: {}</p>", esc(why));
    }
    if let Some(t) = &u.trial {
        let failing: Vec<String> = t.results.iter().filter(|r| !r.ok).map(|r| esc(&r.check.to_string())).collect();
        let _ = writeln!(
            h,
            "<div class=warn>Slot {} is on trial: {:.0} s left to become healthy{}.</div>",
            t.record.to_slot,
            t.remaining_seconds,
            if failing.is_empty() { String::new() } else { format!(" (waiting for {})", failing.join(", ")) }
        );
    }
    if let Some(l) = &u.last_update {
        let what = match l.outcome {
            bootslot::api::UpdateOutcome::Updated => format!("updated to {}", esc(&l.trial.to_version.to_string())),
            bootslot::api::UpdateOutcome::RolledBack => format!(
                "rolled back from {} to {}: {}",
                esc(&l.trial.to_version.to_string()),
                esc(&l.trial.from_version.to_string()),
                esc(l.trial.reason.as_deref().unwrap_or("?"))
            ),
        };
        let _ = writeln!(h, "<p>Last update ({}): {what}</p>", esc(&l.finished_at));
    }
    h.push_str("<table><tr><th>slot<th>version<th>root<th>kernel<th></tr>\n");
    for s in &u.slots {
        let mut tags = Vec::new();
        if s.active {
            tags.push("running".to_owned());
        }
        if s.default {
            tags.push("default".to_owned());
        }
        if let Some(f) = &s.failed {
            tags.push(format!("<span class=warn>trial failed: {}</span>", esc(f)));
        } else if !s.activatable && !s.active {
            tags.push(format!("<span class=muted>not bootable: {}</span>", esc(s.reason.as_deref().unwrap_or(""))));
        }
        let _ = writeln!(
            h,
            "<tr><td>{}<td>{}<td>{}<td>{}<td>{}</tr>",
            s.slot,
            esc(s.version.as_deref().unwrap_or("?")),
            part_cell(&s.root),
            part_cell(&s.kernel),
            tags.join(" · ")
        );
    }
    h.push_str("</table>\n");
    h
}

fn bar(part: u64, whole: u64) -> String {
    let pct = if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    format!("<span class=bar title=\"{pct:.0}%\"><span style=\"width:{pct:.0}%\"></span></span>")
}

fn log_block(name: &str, page: &LogPage) -> String {
    let mut h = format!(
        "<h2>Log <span id=live class=muted>loading…</span></h2>\n<div id=log data-service=\"{}\" data-since=\"{}\">",
        esc(name),
        page.next
    );
    for l in &page.lines {
        h.push_str(&log_row(l));
    }
    h.push_str("</div>\n");
    h
}

fn log_row(l: &LogLine) -> String {
    let time = l.time.to_string();
    let clock = time.get(11..23).unwrap_or(&time);
    format!("<div class=\"line {}\">{} {}</div>", l.stream.name(), esc(clock), esc(&l.text))
}

/// A service's page: state, actions, its own status, and the live log.
#[must_use]
pub fn service(s: &ServiceStatus, log: &LogPage, token: &str) -> String {
    let mut h = head(&format!("{} — router7", s.name));
    let _ = write!(h, "<p><a href=\"/\">← overview</a></p><h1>{}</h1>\n<p>{}", esc(&s.name), state_cell(s));
    if let Some(pid) = s.pid {
        let _ = write!(h, " · pid {pid}");
    }
    if let Some(up) = s.uptime_seconds {
        let _ = write!(h, " · up {}", duration(up));
    }
    let _ = write!(h, " · {} restarts", s.restarts);
    if let Some(rss) = s.rss_bytes {
        let _ = write!(h, " · {} resident", bytes(rss));
    }
    h.push_str("</p>\n<p>");
    let base = format!("/services/{}", url_segment(&s.name));
    if s.pid.is_some() {
        h.push_str(&action_form(&format!("{base}/stop"), "Stop", token, None));
        h.push_str(&action_form(&format!("{base}/restart"), "Restart", token, None));
    } else {
        h.push_str(&action_form(&format!("{base}/restart"), "Start", token, None));
    }
    h.push_str("</p>\n<table>");
    let mut row = |k: &str, v: String| {
        let _ = write!(h, "<tr><th>{}<td>{}</tr>", esc(k), v);
    };
    let mut cmd = vec![s.path.clone()];
    cmd.extend(s.args.iter().cloned());
    row("command", format!("<code>{}</code>", esc(&cmd.join(" "))));
    row("user", format!("uid {} gid {} groups {:?}", s.uid, s.gid, s.groups));
    row("capabilities", esc(&s.capabilities.join(", ")));
    if let Some(e) = &s.last_exit {
        let how = match (e.code, e.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(sig)) => format!("signal {sig}"),
            _ => String::new(),
        };
        row("last exit", format!("{} at {}", esc(&how), esc(&e.time.to_string())));
    }
    if let Some(r) = &s.stop_reason {
        row("stopped", esc(r));
    }
    row("failures", format!("{} in a row, {} in the last 10 minutes", s.consecutive_failures, s.recent_failures));
    match (&s.status, &s.status_error) {
        (Some(v), _) => {
            let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
            row("status", format!("<pre>{}</pre>", esc(&pretty)));
        }
        (None, Some(e)) => row("status", format!("<span class=muted>{}</span>", esc(e))),
        (None, None) => {}
    }
    h.push_str("</table>\n");
    h.push_str(&log_block(&s.name, log));
    h.push_str(FOOT);
    h
}

/// The page of a log that is not a service's (init's own, the kernel's).
#[must_use]
pub fn log_only(name: &str, log: &LogPage) -> String {
    let mut h = head(&format!("{name} log — router7"));
    let _ = writeln!(h, "<p><a href=\"/\">← overview</a></p><h1>{}</h1>", esc(name));
    h.push_str(&log_block(name, log));
    h.push_str(FOOT);
    h
}

/// A short page for a message (after reboot or power-off was asked for).
#[must_use]
pub fn message(title: &str, text: &str) -> String {
    let mut h = head(title);
    let _ = write!(h, "<h1>{}</h1><p>{}</p><p><a href=\"/\">overview</a></p>", esc(title), esc(text));
    h.push_str(FOOT);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(url_segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn formats_sizes_and_durations() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(duration(59.9), "59s");
        assert_eq!(duration(3725.0), "1h 2m");
        assert_eq!(duration(90061.0), "1d 1h");
    }

    #[test]
    fn log_text_is_escaped_in_service_pages() {
        let page = LogPage {
            lines: vec![LogLine {
                seq: 7,
                time: runtime::timefmt::Timestamp { secs: 0, nanos: 0 },
                stream: crate::logs::Stream::Stdout,
                text: "<img src=x onerror=alert(1)>".into(),
            }],
            next: 7,
            missed: 0,
        };
        let html = log_only("init", &page);
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!html.contains("<img"));
        assert!(html.contains("data-since=\"7\""));
        assert!(!html.contains("<script>"), "no inline script");
    }
}
