//! dnsd in network namespaces, against real peers: dnsmasq as the upstream
//! (an "ISP" namespace behind `uplink0`), dig and kdig as clients on the LAN
//! side. Each test asserts on what the clients got, on dnsmasq's own query
//! log, and on dnsd's control API and metrics.
//!
//! Topology: dnsd runs in namespace `lan` (the router), with `lan0`
//! (10.0.0.1/24) joined to `eth0` (10.0.0.100/24) in namespace `cli` where the
//! clients run, and `uplink0` (192.0.2.2/24) joined to `isp0` (192.0.2.53/24,
//! plus 192.0.2.99/32 where nothing listens: a dead server) in namespace `isp`.

#![allow(clippy::unwrap_used)] // test code: a failed step panics, which is the report

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use runtime::clock;
use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir, veth};

const DNSD: &str = env!("CARGO_BIN_EXE_dnsd");
const LAN_IP: &str = "10.0.0.1";
const UPSTREAM: &str = "192.0.2.53";
const DEAD: &str = "192.0.2.99";

struct Lab {
    lan: Netns,
    isp: Netns,
    cli: Netns,
    dir: TempDir,
    dnsmasq: Option<Peer>,
    dnsd: Option<Peer>,
}

impl Lab {
    /// The namespaces, `/perm` and `/run` folders, and dnsmasq upstream with `extra` arguments.
    fn new(tag: &str, extra: &[String]) -> Self {
        let lan = Netns::new(&format!("{tag}l"));
        let isp = Netns::new(&format!("{tag}i"));
        let cli = Netns::new(&format!("{tag}c"));
        veth(&lan, "uplink0", "02:73:53:00:00:02", &isp, "isp0", "02:73:53:00:00:53");
        lan.addr("uplink0", "192.0.2.2/24");
        isp.addr("isp0", &format!("{UPSTREAM}/24"));
        isp.ip(&["addr", "add", &format!("{DEAD}/32"), "dev", "isp0"]);
        veth(&lan, "lan0", "02:73:53:00:01:01", &cli, "eth0", "02:73:53:00:01:64");
        lan.addr("lan0", &format!("{LAN_IP}/24"));
        cli.addr("eth0", "10.0.0.100/24");
        let dir = TempDir::new(&format!("dnsd-{tag}"));
        for sub in ["perm/dnsd", "perm/dhcp4/wire", "perm/dhcp4d", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let mut lab = Self { lan, isp, cli, dir, dnsmasq: None, dnsd: None };
        lab.start_dnsmasq(extra);
        lab
    }

    fn perm(&self) -> PathBuf {
        self.dir.path().join("perm")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn dnsmasq_log(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.log")
    }

    fn start_dnsmasq(&mut self, extra: &[String]) {
        let log = self.dnsmasq_log();
        let mut args: Vec<String> = [
            "-k",
            "--no-resolv",
            "--no-hosts",
            &format!("--listen-address={UPSTREAM}"),
            "--bind-interfaces",
            "--address=/zone.example/203.0.113.7",
            "--address=/nx.example/",
            "--local-ttl=300",
            "--log-queries",
            &format!("--log-facility={}", log.display()),
            // No pid file: concurrent dnsmasqs race on /run/dnsmasq.pid, and the
            // loser exits after binding port 53 (ready, then gone, no log).
            "--pid-file=",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend_from_slice(extra);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let spec = PeerSpec::new("dnsmasq", "dnsmasq", &argv).log_file(&log).ready_when(Readiness::UdpPort(53));
        self.dnsmasq = Some(self.isp.spawn(spec));
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.perm().join(rel);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// The DHCPv4 lease naming the upstream as DNS server, as dhcp4 writes it.
    fn lease_with_dns(&self, dns: &[&str]) {
        let dns: Vec<String> = dns.iter().map(|d| format!("\"{d}\"")).collect();
        self.write(
            "dhcp4/wire/lease.json",
            &format!(
                r#"{{"valid_until":"2999-01-01T00:00:00Z","client_ip":"192.0.2.2","subnet_mask":"255.255.255.0","router":"192.0.2.53","dns":[{}]}}"#,
                dns.join(",")
            ),
        );
    }

    fn start_dnsd(&mut self, extra: &[&str]) {
        let perm = self.perm();
        let run = self.run_dir();
        let mut args = vec!["--perm", perm.to_str().unwrap(), "--run", run.to_str().unwrap(), "--lan", "lan0"];
        args.extend_from_slice(extra);
        let spec = PeerSpec::new("dnsd", DNSD, &args).ready_on_log(&format!("listening on udp {LAN_IP}:53"));
        self.dnsd = Some(self.lan.spawn(spec));
        // Ready once the upstreams are loaded too.
        self.dnsd().wait_for_log("info: loaded:", Duration::from_secs(10)).unwrap();
    }

    fn dnsd(&self) -> &Peer {
        self.dnsd.as_ref().unwrap()
    }

    /// Runs a client in the client namespace.
    fn client(&self, program: &str, args: &[&str]) -> String {
        let out: Output = self.cli.exec(program, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dig(&self, args: &[&str]) -> String {
        let mut full = vec!["@10.0.0.1", "+tries=1", "+time=5"];
        full.extend_from_slice(args);
        self.client("dig", &full)
    }

    /// How often dnsmasq logged `query[TYPE] name`.
    fn upstream_queries(&self, qtype: &str, name: &str) -> usize {
        let needle = format!("query[{qtype}] {name} ");
        std::fs::read_to_string(self.dnsmasq_log()).unwrap_or_default().lines().filter(|l| l.contains(&needle)).count()
    }

    fn status(&self) -> serde_json::Value {
        let socket = self.run_dir().join("router/dnsd.sock");
        runtime::unix_http::request(&socket, "GET", "/v1/status", b"", Duration::from_secs(5)).unwrap().json().unwrap()
    }

    fn events(&self, topic: &str) -> serde_json::Value {
        let socket = self.run_dir().join("router/dnsd.sock");
        let path = format!("/v1/events?since=0&topic={topic}");
        runtime::unix_http::request(&socket, "GET", &path, b"", Duration::from_secs(5)).unwrap().json().unwrap()
    }

    fn metrics(&self) -> String {
        self.client("curl", &["-sS", "--max-time", "5", "http://10.0.0.1:8053/metrics"])
    }

    fn reload(&self) {
        // The reload logs a fresh "loaded:" line; wait for the count to grow.
        let before = self.dnsd().log().matches("info: loaded:").count();
        self.dnsd().signal("USR1");
        let deadline = clock::now() + Duration::from_secs(10);
        while self.dnsd().log().matches("info: loaded:").count() <= before {
            assert!(clock::now() < deadline, "no reload:\n{}", self.dnsd().log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn answer_section(dig_out: &str) -> Vec<String> {
    dig_out
        .lines()
        .skip_while(|l| !l.starts_with(";; ANSWER SECTION"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn status_of(dig_out: &str) -> &str {
    dig_out.split("status: ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("")
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{text}"))
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = clock::now() + timeout;
    while !ok() {
        assert!(clock::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forwards_to_the_leases_dns_server_and_caches() {
    if !testbed::require(
        "forwards_to_the_leases_dns_server_and_caches",
        &["dnsmasq", "dig", "kdig", "curl", "promtool"],
    ) {
        return;
    }
    let mut lab = Lab::new("fwd", &[]);
    lab.lease_with_dns(&[UPSTREAM]);
    lab.start_dnsd(&[]);

    let first = lab.dig(&["www.zone.example", "A"]);
    assert_eq!(status_of(&first), "NOERROR", "{first}");
    assert_eq!(answer_section(&first), ["www.zone.example. 300 IN A 203.0.113.7"], "{first}");
    // The second answer comes from the cache: dnsmasq saw one query.
    std::thread::sleep(Duration::from_millis(1100));
    let second = lab.dig(&["WWW.zone.example", "A"]);
    let answer = answer_section(&second);
    assert_eq!(answer.len(), 1, "{second}");
    let ttl: u32 = answer[0].split(' ').nth(1).unwrap().parse().unwrap();
    assert!((290..300).contains(&ttl), "the TTL counts down: {ttl}");
    assert!(answer[0].starts_with("WWW.zone.example."), "the client's spelling: {second}");
    assert_eq!(lab.upstream_queries("A", "www.zone.example"), 1);
    // kdig over TCP, from the cache too.
    let tcp = lab.client("kdig", &["@10.0.0.1", "+tcp", "+timeout=5", "www.zone.example", "A"]);
    assert!(tcp.contains("203.0.113.7"), "{tcp}");
    assert_eq!(lab.upstream_queries("A", "www.zone.example"), 1);
    // An NXDOMAIN from upstream passes through.
    let nx = lab.dig(&["nothing.nx.example", "A"]);
    assert_eq!(status_of(&nx), "NXDOMAIN", "{nx}");

    // Never on the uplink: from the ISP side, port 53 of 192.0.2.2 does not answer.
    let out = lab.isp.exec("dig", &["@192.0.2.2", "+tries=1", "+time=1", "www.zone.example"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("status: NOERROR"), "dnsd answered on the uplink:\n{text}");

    // Metrics on private:8053, accepted by promtool.
    let metrics = lab.metrics();
    assert_eq!(metric(&metrics, "dnsd_cache_lookups_total{result=\"hit\"}"), 2.0, "{metrics}");
    assert!(metric(&metrics, "dnsd_queries_total{proto=\"tcp\",type=\"A\"}") >= 1.0);
    assert!(metric(&metrics, "dnsd_upstream_latency_seconds_count{upstream=\"192.0.2.53:53\"}") >= 2.0);
    let check = std::process::Command::new("sh")
        .arg("-c")
        .arg("promtool check metrics")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        check.stdin.as_ref().unwrap().write_all(metrics.as_bytes()).unwrap();
    }
    let check = check.wait_with_output().unwrap();
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // The control API.
    let status = lab.status();
    assert_eq!(status["phase"], "Up", "{status}");
    assert_eq!(status["upstreams"][0]["addr"], "192.0.2.53:53", "{status}");
    assert_eq!(status["upstreams"][0]["source"], "dhcp4", "{status}");
    let cond = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "UpstreamsAvailable").unwrap();
    assert_eq!(cond["status"], "True", "{status}");
}

#[test]
fn retries_over_tcp_when_the_upstream_truncates() {
    if !testbed::require("retries_over_tcp_when_the_upstream_truncates", &["dnsmasq", "dig", "kdig", "curl"]) {
        return;
    }
    // Ten 200-byte TXT records: over 2 kB, more than fits our 1232-byte EDNS
    // size, so dnsmasq answers UDP with TC set and the whole set over TCP.
    let long = "x".repeat(200);
    let extra: Vec<String> = (0..10).map(|i| format!("--txt-record=big.zone.example,\"{i}{long}\"")).collect();
    let mut lab = Lab::new("tc", &extra);
    lab.write("dnsd/config.json", &format!(r#"{{"upstreams": ["{UPSTREAM}"]}}"#));
    lab.start_dnsd(&[]);

    let tcp = lab.client("kdig", &["@10.0.0.1", "+tcp", "+timeout=5", "big.zone.example", "TXT"]);
    assert_eq!(tcp.matches("\tTXT\t").count() + tcp.matches(" TXT ").count(), 10, "{tcp}");
    let metrics = lab.metrics();
    assert_eq!(metric(&metrics, "dnsd_tcp_retries_total"), 1.0, "{metrics}");
    // dnsmasq answered over UDP (truncated) and then over TCP.
    assert_eq!(lab.upstream_queries("TXT", "big.zone.example"), 2);
    // A UDP client without EDNS gets TC from our cache and retries over TCP itself.
    let udp = lab.dig(&["+noedns", "big.zone.example", "TXT"]);
    assert!(udp.contains(";; Truncated, retrying in TCP mode."), "{udp}");
    assert_eq!(answer_section(&udp).len(), 10, "{udp}");
    assert_eq!(lab.upstream_queries("TXT", "big.zone.example"), 2, "served from the cache");
}

#[test]
fn fails_over_when_the_first_upstream_is_dead() {
    if !testbed::require("fails_over_when_the_first_upstream_is_dead", &["dnsmasq", "dig"]) {
        return;
    }
    let mut lab = Lab::new("fo", &[]);
    lab.write("dnsd/config.json", &format!(r#"{{"upstreams": ["{DEAD}", "{UPSTREAM}"]}}"#));
    lab.start_dnsd(&[]);
    let t = clock::now();
    let out = lab.dig(&["a.zone.example", "A"]);
    let took = t.elapsed_since_start();
    assert_eq!(answer_section(&out), ["a.zone.example. 300 IN A 203.0.113.7"], "{out}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(lab.upstream_queries("A", "a.zone.example"), 1);
    // The dead one is marked down: the next query goes straight to the live one.
    let t = clock::now();
    let out = lab.dig(&["b.zone.example", "A"]);
    assert_eq!(status_of(&out), "NOERROR", "{out}");
    assert!(t.elapsed_since_start() < Duration::from_millis(900), "no second wait for the dead upstream");
    wait_until("the down event", Duration::from_secs(5), || {
        lab.events("dnsd.upstream.down")["events"].as_array().is_some_and(|e| !e.is_empty())
    });
    let status = lab.status();
    let dead = status["upstreams"].as_array().unwrap().iter().find(|u| u["addr"] == "192.0.2.99:53").unwrap();
    assert_eq!(dead["up"], false, "{status}");
    let cond = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "UpstreamsAvailable").unwrap();
    assert_eq!(cond["reason"], "SomeDown", "{status}");
}

#[test]
fn servfail_quickly_when_every_upstream_is_dead() {
    if !testbed::require("servfail_quickly_when_every_upstream_is_dead", &["dnsmasq", "dig"]) {
        return;
    }
    let mut lab = Lab::new("sf", &[]);
    lab.write("dnsd/config.json", &format!(r#"{{"upstreams": ["{DEAD}", "192.0.2.98"]}}"#));
    lab.start_dnsd(&[]);
    let t = clock::now();
    let out = lab.dig(&["c.zone.example", "A"]);
    let took = t.elapsed_since_start();
    assert_eq!(status_of(&out), "SERVFAIL", "{out}");
    // The budget is 2.5 s (the unit tests pin it); the margin is for a loaded machine.
    assert!(took < Duration::from_millis(3500), "took {took:?}");
    // Now every upstream is down: the next failure comes within about a second.
    let t = clock::now();
    let out = lab.dig(&["d.zone.example", "A"]);
    assert_eq!(status_of(&out), "SERVFAIL", "{out}");
    assert!(t.elapsed_since_start() < Duration::from_millis(2000), "took {:?}", t.elapsed_since_start());
    let status = lab.status();
    let cond = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "UpstreamsAvailable").unwrap();
    assert_eq!((cond["status"].as_str(), cond["reason"].as_str()), (Some("False"), Some("AllDown")), "{status}");
}

fn leases_json(entries: &[(&str, &str)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, (name, addr))| {
            format!(
                r#"{{"num":{i},"addr":"{addr}","hardware_addr":"02:00:00:00:00:{i:02x}","hostname":"{name}","hostname_override":"","expiry":"2999-01-01T00:00:00Z","last_ack":"2024-01-01T00:00:00Z"}}"#
            )
        })
        .collect();
    format!("[\n\t{}\n]\n", items.join(",\n\t"))
}

#[test]
fn answers_local_names_from_the_leases_and_reloads_on_sigusr1() {
    if !testbed::require("answers_local_names_from_the_leases_and_reloads_on_sigusr1", &["dnsmasq", "dig", "kdig"]) {
        return;
    }
    let mut lab = Lab::new("ln", &[]);
    lab.lease_with_dns(&[UPSTREAM]);
    lab.write("interfaces.json", r#"{"interfaces":[{"name":"lan0","addr":"10.0.0.1/24"}]}"#);
    lab.write("dhcp4d/leases.json", &leases_json(&[("xps", "10.0.0.23"), ("Printer", "10.0.0.4")]));
    lab.start_dnsd(&[]);

    let a = lab.dig(&["xps.lan", "A"]);
    assert_eq!(answer_section(&a), ["xps.lan. 60 IN A 10.0.0.23"], "{a}");
    assert!(a.contains(" aa "), "authoritative: {a}");
    let short = lab.dig(&["PRINTER", "A"]);
    assert_eq!(answer_section(&short), ["PRINTER. 60 IN A 10.0.0.4"], "{short}");
    let ptr = lab.client("kdig", &["@10.0.0.1", "+timeout=5", "-x", "10.0.0.23"]);
    assert!(ptr.contains("xps.lan."), "{ptr}");
    // The router's own name: uname's nodename, lan0's address from interfaces.json.
    let hostname = rustix::system::uname().nodename().to_str().unwrap().to_owned();
    let own = lab.dig(&[&format!("{hostname}.lan"), "A"]);
    assert_eq!(answer_section(&own), [format!("{hostname}.lan. 60 IN A 10.0.0.1")], "{own}");
    let nx = lab.dig(&["nosuch.lan", "A"]);
    assert_eq!(status_of(&nx), "NXDOMAIN", "{nx}");
    let private = lab.dig(&["-x", "192.168.1.77"]);
    assert_eq!(status_of(&private), "NXDOMAIN", "{private}");
    let localhost = lab.dig(&["localhost", "AAAA"]);
    assert_eq!(answer_section(&localhost), ["localhost. 60 IN AAAA ::1"], "{localhost}");

    // A new leases file and SIGUSR1 (as dhcp4d sends): xps moved, a new host.
    lab.write("dhcp4d/leases.json", &leases_json(&[("xps", "10.0.0.42"), ("pad", "10.0.0.50")]));
    lab.reload();
    let a = lab.dig(&["xps.lan", "A"]);
    assert_eq!(answer_section(&a), ["xps.lan. 60 IN A 10.0.0.42"], "{a}");
    let pad = lab.dig(&["pad.lan", "A"]);
    assert_eq!(answer_section(&pad), ["pad.lan. 60 IN A 10.0.0.50"], "{pad}");
    let gone = lab.dig(&["printer.lan", "A"]);
    assert_eq!(status_of(&gone), "NXDOMAIN", "{gone}");

    // None of it went upstream.
    let log = std::fs::read_to_string(lab.dnsmasq_log()).unwrap();
    for leaked in ["lan", "printer", "in-addr.arpa", "localhost"] {
        assert!(
            !log.to_lowercase().contains(&format!("] {leaked}")) && !log.contains(&format!(".{leaked} ")),
            "{leaked} went upstream:\n{log}"
        );
    }
    assert!(!log.contains("query["), "nothing was forwarded:\n{log}");
}

#[test]
fn follows_address_changes_on_sigusr1() {
    if !testbed::require("follows_address_changes_on_sigusr1", &["dnsmasq", "dig"]) {
        return;
    }
    let mut lab = Lab::new("rb", &[]);
    lab.lease_with_dns(&[UPSTREAM]);
    lab.start_dnsd(&[]);
    let out = lab.lan.exec("dig", &["@127.0.0.1", "+tries=1", "+time=3", "localhost", "A"]);
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status_of(&out), "NOERROR", "loopback is private: {out}");
    // netconfigd adds an address to lan0, then signals.
    lab.lan.ip(&["addr", "add", "10.0.1.1/24", "dev", "lan0"]);
    lab.cli.ip(&["addr", "add", "10.0.1.100/24", "dev", "eth0"]);
    lab.reload();
    let out = lab.client("dig", &["@10.0.1.1", "+tries=1", "+time=3", "e.zone.example", "A"]);
    assert_eq!(answer_section(&out), ["e.zone.example. 300 IN A 203.0.113.7"], "{out}");
    // And removes one; this time the reload comes through the control API.
    lab.lan.ip(&["addr", "del", "10.0.1.1/24", "dev", "lan0"]);
    let before = lab.dnsd().log().matches("info: loaded:").count();
    let socket = lab.run_dir().join("router/dnsd.sock");
    let reply =
        runtime::unix_http::request(&socket, "POST", "/v1/commands/reload", b"", Duration::from_secs(5)).unwrap();
    assert_eq!(reply.json().unwrap()["accepted"], true);
    wait_until("the reload", Duration::from_secs(10), || lab.dnsd().log().matches("info: loaded:").count() > before);
    assert!(lab.dnsd().log().contains("no longer listening on udp 10.0.1.1:53"), "{}", lab.dnsd().log());
}

/// `Instant::elapsed` reads the clock, which only `runtime::clock` may do.
trait Elapsed {
    fn elapsed_since_start(&self) -> Duration;
}

impl Elapsed for Instant {
    fn elapsed_since_start(&self) -> Duration {
        clock::now().saturating_duration_since(*self)
    }
}

#[test]
fn keeps_answering_every_query_under_load() {
    if !testbed::require("keeps_answering_every_query_under_load", &["dnsmasq", "dnsperf", "curl"]) {
        return;
    }
    let mut lab = Lab::new("ld", &[]);
    lab.write("dnsd/config.json", &format!(r#"{{"upstreams": ["{UPSTREAM}"]}}"#));
    lab.start_dnsd(&[]);
    // 100 names, each asked many times: mostly cache hits, at a rate that
    // turns moderation on (over 4000/s for a second) and off again after.
    let names: String = (0..100).map(|i| format!("n{i}.zone.example A\n")).collect();
    let file = lab.dir.path().join("names.txt");
    std::fs::write(&file, names).unwrap();
    let out = lab.client("dnsperf", &["-s", "10.0.0.1", "-d", file.to_str().unwrap(), "-l", "4", "-Q", "6000"]);
    let completed = out.lines().find(|l| l.contains("Queries completed:")).unwrap_or_default().to_owned();
    let lost = out.lines().find(|l| l.contains("Queries lost:")).unwrap_or_default().to_owned();
    assert!(lost.contains(" 0 (0.00%)"), "{out}");
    assert!(completed.contains("(100.00%)"), "{out}");
    assert!(out.contains("NOERROR"), "{out}");
    lab.dnsd().wait_for_log("reading busy listeners every", Duration::from_secs(5)).unwrap();
    // Off again within a window or two of reads (the message about it waits
    // out moderation::REPORT_EVERY, so the gauge says it).
    wait_until("moderation off", Duration::from_secs(5), || metric(&lab.metrics(), "dnsd_udp_moderated") == 0.0);
    assert_eq!(lab.upstream_queries("A", "n7.zone.example"), 1, "one upstream query per name");
    // Still prompt one by one afterwards.
    let t = clock::now();
    let one = lab.dig(&["n7.zone.example", "A"]);
    assert_eq!(status_of(&one), "NOERROR", "{one}");
    assert!(t.elapsed_since_start() < Duration::from_secs(1));
}
