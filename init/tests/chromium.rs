//! The web interface in a real browser: headless Chromium, driven over the
//! DevTools protocol (a small WebSocket client below), loads the overview and
//! a service page and sees a log line appear live, written after the page
//! loaded, without a reload.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Init, Svc, wait_for};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium and every process it starts, killed on drop.
struct Browser {
    child: Child,
    port: u16,
    _profile: testbed::TempDir,
}

impl Browser {
    fn start() -> Self {
        let profile = testbed::TempDir::new("chromium-profile");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                    let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(60)).expect("Chromium did not open its DevTools port");
        Self { child, port, _profile: profile }
    }

    /// The WebSocket URL path of the first page target.
    fn page_path(&self) -> String {
        wait_for(Duration::from_secs(30), "a page target", || {
            let r = common::http(([127, 0, 0, 1], self.port).into(), "GET", "/json/list", &[], "");
            let list: Value = serde_json::from_str(&r.body).ok()?;
            let url =
                list.as_array()?.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"].as_str()?.to_owned();
            Some(url.split_once(&format!("127.0.0.1:{}", self.port))?.1.to_owned())
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pgid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

/// A minimal WebSocket client (RFC 6455): text frames, masked as a client must.
struct WebSocket {
    stream: TcpStream,
    next_id: u64,
}

impl WebSocket {
    fn connect(port: u16, path: &str) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let key = runtime::base64::encode(b"router7-init-key");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self { stream, next_id: 1 }
    }

    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    fn receive(&mut self) -> String {
        let mut message = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.stream.read_exact(&mut h).unwrap();
            let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let len = match h[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.stream.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            self.stream.read_exact(&mut payload).unwrap();
            match opcode {
                0x9 => continue, // ping; Chrome does not require the pong
                0x8 => panic!("DevTools closed the connection"),
                _ => message.extend(payload),
            }
            if fin {
                return String::from_utf8(message).unwrap();
            }
        }
    }

    /// Calls a DevTools method and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let v: Value = serde_json::from_str(&self.receive()).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        r["result"]["value"].clone()
    }

    fn wait_eval(&mut self, expression: &str, what: &str) -> Value {
        let deadline = common::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(expression);
            if !v.is_null() && v != false {
                return v;
            }
            assert!(common::now() < deadline, "timed out waiting for {what} ({expression})");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn the_overview_and_a_service_page_show_live_log_lines_in_chromium() {
    if !testbed::require(
        "the_overview_and_a_service_page_show_live_log_lines_in_chromium",
        &["unshare", "sh", "chromium"],
    ) {
        return;
    }
    // The service prints what the test drops into its home folder, when it does.
    let reporter =
        "echo reporter ready; while :; do if [ -f trigger ]; then cat trigger; rm -f trigger; fi; sleep 0.1; done";
    let init = Init::start("chromium", vec![Svc::new("reporter", reporter), Svc::new("idle", "exec sleep 1000")]);
    init.wait_state("reporter", "Running", Duration::from_secs(10));
    wait_for(Duration::from_secs(10), "the web listener", || {
        (init.get("/v1/status")["listeners"].as_array()?.len() == 1).then_some(())
    });
    let browser = Browser::start();
    let mut ws = WebSocket::connect(browser.port, &browser.page_path());
    ws.call("Network.enable", json!({}));
    ws.call("Network.setExtraHTTPHeaders", json!({"headers": {"Authorization": init.basic_auth()}}));
    let base = format!("http://127.0.0.1:{}", init.port);

    ws.call("Page.navigate", json!({"url": format!("{base}/")}));
    let table = ws.wait_eval(
        "(() => { const t = document.getElementById('services'); return t && t.innerText.includes('reporter') ? t.innerText : null; })()",
        "the overview's service table",
    );
    let table = table.as_str().unwrap();
    assert!(table.contains("Running") && table.contains("idle"), "{table}");
    assert_eq!(
        ws.eval("document.title"),
        json!(format!("{} — router7", init.get("/v1/status")["hostname"].as_str().unwrap()))
    );

    ws.call("Page.navigate", json!({"url": format!("{base}/services/reporter")}));
    ws.wait_eval(
        "(() => { const l = document.getElementById('live'); return l && l.textContent === 'live'; })()",
        "the live stream to open",
    );
    let before = ws.eval("document.getElementById('log').innerText");
    assert!(before.as_str().unwrap().contains("reporter ready"), "{before}");
    // Written now, after the page loaded: it must arrive through the stream.
    let marker = format!("marker-{}-{}", std::process::id(), common::now().elapsed().as_nanos());
    assert!(!before.as_str().unwrap().contains(&marker));
    std::fs::write(init.perm.join("reporter/trigger"), format!("{marker}\n")).unwrap();
    let expr = format!("document.getElementById('log').innerText.includes('{marker}')");
    ws.wait_eval(&expr, "the marker line to appear live");
    // No reload happened: the page is the one loaded before the marker existed.
    let navigations = ws.eval("performance.getEntriesByType('navigation').length");
    assert_eq!(navigations, json!(1));
    let rows = ws.eval(&format!(
        "Array.from(document.querySelectorAll('#log .line')).filter(r => r.textContent.includes('{marker}')).map(r => r.className)"
    ));
    assert_eq!(rows, json!(["line stdout"]), "one line, from stdout");
}
