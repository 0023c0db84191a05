//! The web interface's only assets: a style sheet and a small script, served
//! from memory (no external assets, so it works without internet and a strict
//! Content-Security-Policy allows nothing from elsewhere).

/// `/static/style.css`.
pub const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
a { color: #1a5fb4; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: .25em .8em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state-Running { color: #26a269; }
.state-Backoff, .state-Stopping, .state-Starting { color: #c64600; }
.state-CrashLoop { color: #fff; background: #c01c28; padding: 0 .3em; border-radius: 3px; }
.state-Stopped { color: #777; }
.warn { background: #fff3cd; border: 1px solid #e5c365; padding: .5em .8em; margin: .6em 0; }
.muted { color: #777; }
form.inline { display: inline; }
button { margin-right: .4em; }
#log { background: #111; color: #ddd; padding: .6em; font: 12px/1.35 ui-monospace, monospace;
       white-space: pre-wrap; word-break: break-all; min-height: 10em; }
#log .stderr { color: #f6d32d; }
#log .init { color: #99c1f1; }
#log .missed { color: #f66151; }
.bar { display: inline-block; width: 12em; height: .8em; background: #ddd; vertical-align: middle; }
.bar span { display: block; height: 100%; background: #1a5fb4; }
"#;

/// `/static/app.js`: live logs over Server-Sent Events and confirmations.
pub const SCRIPT: &str = r#""use strict";
(function () {
  var log = document.getElementById("log");
  if (log) {
    var name = log.getAttribute("data-service");
    var since = log.getAttribute("data-since") || "0";
    var live = document.getElementById("live");
    var max = 2000;
    var atBottom = function () {
      return window.innerHeight + window.scrollY >= document.body.offsetHeight - 40;
    };
    var add = function (cls, text) {
      var stick = atBottom();
      var row = document.createElement("div");
      row.className = cls;
      row.textContent = text;
      log.appendChild(row);
      while (log.childElementCount > max) { log.removeChild(log.firstElementChild); }
      if (stick) { window.scrollTo(0, document.body.scrollHeight); }
    };
    var url = "/services/" + encodeURIComponent(name) + "/log?since=" + encodeURIComponent(since);
    var source = new EventSource(url);
    source.addEventListener("line", function (e) {
      var line;
      try { line = JSON.parse(e.data); } catch (err) { return; }
      add("line " + line.stream, String(line.time).slice(11, 23) + " " + line.text);
    });
    source.addEventListener("missed", function (e) {
      add("missed", "… " + e.data + " lines not shown (the ring moved on)");
    });
    source.onopen = function () { if (live) { live.textContent = "live"; } };
    source.onerror = function () { if (live) { live.textContent = "reconnecting…"; } };
  }
  var forms = document.querySelectorAll("form[data-confirm]");
  for (var i = 0; i < forms.length; i++) {
    forms[i].addEventListener("submit", function (e) {
      if (!window.confirm(this.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  }
})();
"#;
