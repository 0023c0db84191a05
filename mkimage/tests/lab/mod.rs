//! The simulated world around a router under test, shared by the QEMU
//! end-to-end test and the test that proves these checks against a stand-in
//! router made of Debian peers:
//!
//! - an "ISP" namespace: dnsmasq as DHCPv4 server and DNS server (with
//!   `www.isp.example`), kea-dhcp6 delegating prefixes, radvd announcing the
//!   ISP as the IPv6 default router, a TCP server on IPv4 and IPv6;
//! - a "LAN" namespace: a client that asks for a lease with dhclient from the
//!   moment the router boots, resolves through the router, takes an IPv6
//!   address by SLAAC and connects out over both families;
//! - the checks of issue #10, each skipped by name (and said so) when a
//!   service it needs is not in the router yet, and a report that fails the
//!   test when any check fails.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testbed::{Netns, Peer, PeerSpec, Readiness, TempDir};

/// The ISP's address on the router's uplink link (gateway and DNS server).
pub const ISP_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// A server on the ISP side, reached by name through the router.
pub const WWW_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
/// Its name, served by the ISP's DNS server only.
pub const WWW_NAME: &str = "www.isp.example";
/// Its TCP port.
pub const WWW_PORT: u16 = 8080;
/// The ISP's IPv6 address on the uplink link (also its TCP server's).
pub const ISP_ADDR6: &str = "2001:db8:1::1/64";
/// [`ISP_ADDR6`] without its prefix length.
pub const ISP_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
/// A TCP port the LAN client listens on, which the ISP side must not reach.
pub const LAN_PORT: u16 = 2222;
/// "The internet" the ISP namespace also plays: diagd's default TCP targets
/// (Google Public DNS on 443, `svc/diagd/README.md`), so the router's health
/// checks can pass without reaching out of the machine.
pub const INTERNET4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), 443);
/// The IPv6 one.
pub const INTERNET6: SocketAddr =
    SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)), 443);
/// Prefixes the ISP delegates: /48s out of this /33.
pub const PD_POOL: &str = "2001:db8:8000::";
/// The router's LAN address (the image's default interfaces.json).
pub const ROUTER_LAN: Ipv4Addr = Ipv4Addr::new(192, 168, 42, 1);
/// Ports nobody may reach on uplink0 (router7-rs's private ports and ssh).
pub const PRIVATE_TCP_PORTS: &[u16] = &[22, 53, 80, 5022, 7733, 8053, 8066, 8067, 8068, 8077];
/// UDP ports nobody may reach on uplink0: DNS, the DHCP server, and the
/// DHCP client's port from anything but a server's port 67.
pub const PRIVATE_UDP_PORTS: &[u16] = &[53, 67, 68];

/// Waits until `f` returns `Some`, polling every 200 ms.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = testbed::clock::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if testbed::clock::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A TCP server that answers one line and remembers who connected.
pub struct TcpServer {
    /// Peer addresses seen, in order.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl TcpServer {
    /// Listens on `addr` inside `ns`.
    pub fn start(ns: &Netns, addr: SocketAddr) -> Self {
        // An IPv6 address stays tentative (bind(2) refuses it) until its link
        // has a carrier, which a tap gets only once QEMU opens it: wait for it.
        let listener = ns.enter(|| {
            let deadline = testbed::clock::now() + Duration::from_secs(60);
            loop {
                match TcpListener::bind(addr) {
                    Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable && testbed::clock::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    r => break r.unwrap_or_else(|e| panic!("bind {addr}: {e}")),
                }
            }
        });
        let peers = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&peers);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let Ok(peer) = s.peer_addr() else { continue };
                seen.lock().unwrap().push(peer);
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut line = String::new();
                let _ = BufReader::new(&s).read_line(&mut line);
                let _ = writeln!(s, "hello {peer} you said {}", line.trim());
            }
        });
        Self { peers }
    }
}

/// The ISP: DHCPv4 + DNS (dnsmasq), DHCPv6 with prefix delegation (kea), a
/// TCP server, all on `iface` in `ns`.
pub struct Isp {
    pub ns: Netns,
    pub iface: String,
    pub dir: TempDir,
    pub dnsmasq: Peer,
    pub kea: Peer,
    pub radvd: Peer,
    pub server: TcpServer,
    pub server6: TcpServer,
    pub internet: [TcpServer; 2],
}

impl Isp {
    /// Configures `iface` (already in `ns`) and starts the ISP's servers.
    pub fn start(ns: Netns, iface: &str) -> Self {
        // The ISP routes (and Debian's radvd wants forwarding on).
        ns.sysctl("net.ipv6.conf.all.forwarding", "1");
        ns.addr(iface, &format!("{ISP_ADDR}/24"));
        ns.ip(&["addr", "add", &format!("{WWW_ADDR}/24"), "dev", iface]);
        // nodad: the servers below bind it at once (no duplicate can exist on this link).
        ns.ip(&["-6", "addr", "add", ISP_ADDR6, "dev", iface, "nodad"]);
        ns.wait_for_link_local(iface);
        let dir = TempDir::new("isp");
        let log = dir.path().join("dnsmasq.log");
        let leases = dir.path().join("dnsmasq.leases");
        let dnsmasq = ns.spawn(
            PeerSpec::new(
                "isp-dnsmasq",
                "dnsmasq",
                &[
                    "-k",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    &format!("--interface={iface}"),
                    &format!("--listen-address={ISP_ADDR}"),
                    "--port=53",
                    "--dhcp-range=203.0.113.10,203.0.113.50,255.255.255.0,20m",
                    &format!("--dhcp-option=option:router,{ISP_ADDR}"),
                    &format!("--dhcp-option=option:dns-server,{ISP_ADDR}"),
                    &format!("--dhcp-leasefile={}", leases.display()),
                    "--dhcp-authoritative",
                    "--no-ping",
                    &format!("--address=/{WWW_NAME}/{WWW_ADDR}"),
                    "--local-ttl=300",
                    "--log-queries",
                    "--log-dhcp",
                    &format!("--log-facility={}", log.display()),
                    "--pid-file=",
                    "--user=root",
                ],
            )
            .log_file(&log)
            .ready_on_log("DHCP, IP range 203.0.113.10"),
        );
        let kea_conf = dir.path().join(format!("kea6-{}.json", std::process::id()));
        let kea_leases = dir.path().join("kea6-leases.csv");
        let kea_log = dir.path().join("kea6.log");
        let conf = serde_json::json!({"Dhcp6": {
            "interfaces-config": {"interfaces": [iface]},
            "server-id": {"type": "LL", "persist": false},
            "lease-database": {"type": "memfile", "persist": true, "name": kea_leases, "lfc-interval": 0},
            "preferred-lifetime": 3000, "valid-lifetime": 4000, "renew-timer": 1000, "rebind-timer": 2000,
            "subnet6": [{"id": 1, "subnet": "2001:db8:1::/64", "interface": iface,
                "pools": [{"pool": "2001:db8:1::100-2001:db8:1::1ff"}],
                "pd-pools": [{"prefix": PD_POOL, "prefix-len": 33, "delegated-len": 48}]}],
            "loggers": [{"name": "kea-dhcp6", "output_options": [{"output": kea_log}], "severity": "INFO"}]
        }});
        std::fs::write(&kea_conf, conf.to_string()).unwrap();
        std::fs::create_dir_all("/run/kea").unwrap();
        let kea = ns.spawn(
            PeerSpec::new("isp-kea6", "kea-dhcp6", &["-c", kea_conf.to_str().unwrap()])
                .env("KEA_PIDFILE_DIR", dir.path().to_str().unwrap())
                .env("KEA_LOCKFILE_DIR", dir.path().to_str().unwrap())
                .log_file(&kea_log)
                .ready_when(Readiness::UdpPort(547)),
        );
        // The ISP's routers announce themselves as the IPv6 default router and
        // the link's prefix for SLAAC, as fiber7's do.
        let radvd_conf = dir.path().join("isp-radvd.conf");
        let radvd_pid = dir.path().join("isp-radvd.pid");
        std::fs::write(
            &radvd_conf,
            format!(
                "interface {iface} {{\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 4;\n AdvDefaultLifetime 1800;\n prefix 2001:db8:1::/64 {{ AdvOnLink on; AdvAutonomous on; }};\n}};\n"
            ),
        )
        .unwrap();
        let radvd = ns.spawn(
            PeerSpec::new(
                "isp-radvd",
                "radvd",
                &["-n", "-C", radvd_conf.to_str().unwrap(), "-p", radvd_pid.to_str().unwrap(), "-m", "stderr"],
            )
            .ready_when(Readiness::File(radvd_pid.clone())),
        );
        let server = TcpServer::start(&ns, SocketAddr::new(IpAddr::V4(WWW_ADDR), WWW_PORT));
        let server6 = TcpServer::start(&ns, SocketAddr::new(IpAddr::V6(ISP_IP6), WWW_PORT));
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["addr", "add", &format!("{}/32", INTERNET4.ip()), "dev", "lo"]);
        ns.ip(&["-6", "addr", "add", &format!("{}/128", INTERNET6.ip()), "dev", "lo"]);
        let internet = [TcpServer::start(&ns, INTERNET4), TcpServer::start(&ns, INTERNET6)];
        Self { ns, iface: iface.to_owned(), dir, dnsmasq, kea, radvd, server, server6, internet }
    }

    /// Routes a delegated `prefix` to the router at `via` (its link-local
    /// address on the uplink), as an ISP's router does after delegating it
    /// (kea only hands it out).
    pub fn route_delegated(&self, prefix: &str, via: Ipv6Addr) {
        self.ns.ip(&["-6", "route", "replace", prefix, "via", &via.to_string(), "dev", &self.iface]);
    }

    /// The IPv4 address dnsmasq leased to `mac`.
    pub fn lease_of(&self, mac: &str) -> Option<Ipv4Addr> {
        let text = std::fs::read_to_string(self.dir.path().join("dnsmasq.leases")).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[1].eq_ignore_ascii_case(mac)).then(|| f[2].parse().ok()).flatten()
        })
    }

    /// A prefix kea delegated (`prefix/len`), from its lease file.
    pub fn delegated_prefix(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.path().join("kea6-leases.csv")).ok()?;
        // address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,…
        text.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() > 8 && f[6] == "2" && f[2] != "0").then(|| format!("{}/{}", f[0], f[8]))
        })
    }

    /// Whether the ISP's DNS server logged a query for `name` from `from`.
    pub fn dns_query_logged(&self, name: &str, from: Ipv4Addr) -> bool {
        self.dnsmasq.log().lines().any(|l| l.contains(&format!("query[A] {name} from {from}")))
    }
}

/// An IPv4 lease as dhclient wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease4 {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

fn option_value<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    block.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().trim_end_matches(';').trim()))
}

/// The last lease in a dhclient lease file.
pub fn parse_dhclient_lease(text: &str) -> Option<Lease4> {
    let block = text.rsplit("lease {").next()?;
    let addr = option_value(block, "fixed-address ")?.parse().ok()?;
    let mask: Ipv4Addr = option_value(block, "option subnet-mask ")
        .and_then(|m| m.parse().ok())
        .unwrap_or(Ipv4Addr::new(255, 255, 255, 0));
    let prefix_len = u8::try_from(u32::from(mask).count_ones()).unwrap_or(24);
    let router = option_value(block, "option routers ").and_then(|r| r.split(',').next()?.trim().parse().ok());
    let dns = option_value(block, "option domain-name-servers ")
        .map(|d| d.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_default();
    Some(Lease4 { addr, prefix_len, router, dns })
}

/// The delegated prefix in a `dhclient -6 -P` lease file.
pub fn parse_dhclient6_prefix(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("iaprefix ").map(|r| r.split_whitespace().next().unwrap_or("").to_owned()))
}

/// Runs dhclient once on `iface` in `ns` (no system changes), applies the
/// lease (address and default route) and returns it (the stand-in router's
/// uplink).
pub fn dhcp4(ns: &Netns, iface: &str, dir: &Path, timeout: Duration) -> Result<Lease4, String> {
    let leases = dir.join(format!("dhclient-{iface}.leases"));
    let pid = dir.join(format!("dhclient-{iface}.pid"));
    let out = ns.exec(
        "timeout",
        &[
            &timeout.as_secs().to_string(),
            "dhclient",
            "-1",
            "-v",
            "-lf",
            leases.to_str().unwrap(),
            "-pf",
            pid.to_str().unwrap(),
            "-sf",
            "/bin/true",
            iface,
        ],
    );
    let text = std::fs::read_to_string(&leases).unwrap_or_default();
    let lease = parse_dhclient_lease(&text).ok_or_else(|| {
        format!(
            "dhclient on {iface} got no lease ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).lines().rev().take(8).collect::<Vec<_>>().join("\n")
        )
    })?;
    ns.ip(&["addr", "add", &format!("{}/{}", lease.addr, lease.prefix_len), "dev", iface]);
    if let Some(r) = lease.router {
        ns.ip(&["route", "replace", "default", "via", &r.to_string(), "dev", iface]);
    }
    Ok(lease)
}

/// The EUI-64 link-local address the kernel gives an interface with `mac`.
pub fn eui64_link_local(mac: &str) -> Ipv6Addr {
    let b: Vec<u8> = mac.split(':').map(|x| u8::from_str_radix(x, 16).unwrap()).collect();
    assert_eq!(b.len(), 6, "{mac}");
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([b[0] ^ 2, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
    )
}

/// A LAN device running dhclient from the moment it is plugged in (usually
/// before the router boots), retrying every one to two seconds, as a device
/// that keeps asking. It configures nothing itself (`-sf /bin/true`); the
/// lease check applies the lease.
pub struct LanClient {
    peer: Peer,
    /// The first lease and when it was seen, filled by a watcher thread that
    /// polls dhclient's lease file every 50 ms from the start.
    first: Arc<Mutex<Option<(Lease4, Instant)>>>,
    /// When it started asking.
    pub started: Instant,
}

impl LanClient {
    /// Starts dhclient on `iface` in `ns`, its files in `dir`.
    pub fn start(ns: &Netns, iface: &str, dir: &Path) -> Self {
        let conf = dir.join("lan-dhclient.conf");
        std::fs::write(
            &conf,
            "initial-interval 1;\nbackoff-cutoff 2;\ntimeout 600;\n\
             request subnet-mask, routers, domain-name-servers, domain-name, domain-search, interface-mtu;\n",
        )
        .unwrap();
        let leases = dir.join(format!("lan-dhclient-{iface}.leases"));
        let pid = dir.join(format!("lan-dhclient-{iface}.pid"));
        let started = testbed::clock::now();
        let peer = ns.spawn(PeerSpec::new(
            "lan-dhclient",
            "dhclient",
            &[
                "-d",
                "-v",
                "-cf",
                conf.to_str().unwrap(),
                "-lf",
                leases.to_str().unwrap(),
                "-pf",
                pid.to_str().unwrap(),
                "-sf",
                "/bin/true",
                iface,
            ],
        ));
        let first: Arc<Mutex<Option<(Lease4, Instant)>>> = Arc::default();
        let watch = Arc::clone(&first);
        std::thread::spawn(move || {
            // Until the lease is there or the client is gone.
            while Arc::strong_count(&watch) > 1 {
                if let Some(l) = std::fs::read_to_string(&leases).ok().and_then(|t| parse_dhclient_lease(&t)) {
                    *watch.lock().unwrap() = Some((l, testbed::clock::now()));
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { peer, first, started }
    }

    /// Waits up to `timeout` for the first lease; returns it with the moment
    /// it appeared (within 50 ms), however long before this call that was.
    pub fn lease(&self, timeout: Duration) -> Result<(Lease4, Instant), String> {
        let deadline = testbed::clock::now() + timeout;
        loop {
            if let Some(first) = self.first.lock().unwrap().clone() {
                return Ok(first);
            }
            if testbed::clock::now() >= deadline {
                let log = self.peer.log();
                return Err(format!(
                    "dhclient got no lease in {timeout:?}:\n{}",
                    log.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A global IPv6 address of `iface` inside `prefix` (`2001:db8:8000::/33`).
pub fn global_v6_in(ns: &Netns, iface: &str, prefix: &str) -> Option<Ipv6Addr> {
    let (net, len) = prefix.split_once('/')?;
    let net: Ipv6Addr = net.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    let v = ns.ip_json(&["-6", "addr", "show", "dev", iface, "scope", "global"]);
    v.as_array()?.iter().flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default()).find_map(|a| {
        let ip: Ipv6Addr = a["local"].as_str()?.parse().ok()?;
        (u128::from(ip) & mask == u128::from(net) & mask && a["tentative"].is_null()).then_some(ip)
    })
}

/// Resolves `name` at `server` with dig from `ns`.
pub fn resolve(ns: &Netns, server: Ipv4Addr, name: &str) -> Result<Vec<String>, String> {
    let out = ns.exec("dig", &["+short", "+time=2", "+tries=3", &format!("@{server}"), name, "A"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("dig @{server} {name} failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(text.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
}

/// Opens a TCP connection from `ns`, says hello and returns the answer line.
pub fn tcp_hello(ns: &Netns, to: SocketAddr) -> Result<String, String> {
    ns.enter(|| {
        let mut s =
            TcpStream::connect_timeout(&to, Duration::from_secs(10)).map_err(|e| format!("connect {to}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        writeln!(s, "router7-rs e2e").map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).map_err(|e| format!("read from {to}: {e}"))?;
        Ok(line.trim().to_owned())
    })
}

/// `GET /` on `addr:80` from `ns`, with basic auth when given; the status code.
pub fn http_status(ns: &Netns, addr: Ipv4Addr, auth: Option<(&str, &str)>) -> Result<u16, String> {
    ns.enter(|| {
        let to = SocketAddr::new(IpAddr::V4(addr), 80);
        let mut s =
            TcpStream::connect_timeout(&to, Duration::from_secs(10)).map_err(|e| format!("connect {to}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(15))).map_err(|e| e.to_string())?;
        let mut req = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n");
        if let Some((user, pw)) = auth {
            let _ =
                write!(req, "Authorization: Basic {}\r\n", runtime::base64::encode(format!("{user}:{pw}").as_bytes()));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        // The status line, however the server's writes split it.
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).map_err(|e| format!("read from {to}: {e}"))?;
        line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not HTTP: {line:?}"))
    })
}

/// What a TCP probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The connection was accepted.
    Open,
    /// A reset came back: something answered.
    Refused,
    /// Nothing came back: dropped.
    Silent,
}

/// Probes `addr:port` over TCP from `ns`.
pub fn probe_tcp(ns: &Netns, addr: impl Into<IpAddr>, port: u16) -> Probe {
    let addr = addr.into();
    ns.enter(|| match TcpStream::connect_timeout(&SocketAddr::new(addr, port), Duration::from_secs(2)) {
        Ok(_) => Probe::Open,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        Err(_) => Probe::Silent,
    })
}

/// Whether a datagram to `addr:port` over UDP from `ns` gets any answer (an
/// ICMP port unreachable counts as an answer too). Port 53 gets a DNS query,
/// others a few bytes.
pub fn udp_answers(ns: &Netns, addr: Ipv4Addr, port: u16) -> bool {
    ns.enter(|| {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.connect(SocketAddr::new(IpAddr::V4(addr), port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // A query for "isp.example" A, id 0x7237.
        let q: &[u8] = if port == 53 {
            b"\x72\x37\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03isp\x07example\x00\x00\x01\x00\x01"
        } else {
            b"router7-rs probe"
        };
        if s.send(q).is_err() {
            return true;
        }
        let mut buf = [0u8; 512];
        match s.recv(&mut buf) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        }
    })
}

/// Whether a DNS query to `addr:53` over UDP gets any answer (kept for
/// callers of the first version of this module; [`udp_answers`] probes any port).
pub fn udp_dns_answers(ns: &Netns, addr: Ipv4Addr) -> bool {
    udp_answers(ns, addr, 53)
}

/// Whether `addr` answers ICMP or ICMPv6 echo requests from `ns` (three
/// tries; one answer is enough).
pub fn ping_answers(ns: &Netns, addr: impl Into<IpAddr>) -> bool {
    ns.exec("ping", &["-n", "-c", "3", "-i", "0.5", "-W", "2", &addr.into().to_string()]).status.success()
}

/// The result of one check.
#[derive(Debug, Clone)]
pub enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

/// The checks of one run, printed as a table; failures fail the test.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<(String, Outcome)>,
    pub figures: Vec<(String, String)>,
}

impl Report {
    /// Runs check `name` unless `skip` says why not.
    pub fn check(&mut self, name: &str, skip: Option<String>, f: impl FnOnce() -> Result<String, String>) -> bool {
        let outcome = match skip {
            Some(why) => {
                eprintln!("SKIPPED e2e check \"{name}\": {why}");
                Outcome::Skip(why)
            }
            None => match f() {
                Ok(detail) => {
                    eprintln!("PASS e2e check \"{name}\": {detail}");
                    Outcome::Pass(detail)
                }
                Err(why) => {
                    eprintln!("FAIL e2e check \"{name}\": {why}");
                    Outcome::Fail(why)
                }
            },
        };
        let passed = matches!(outcome, Outcome::Pass(_));
        self.rows.push((name.to_owned(), outcome));
        passed
    }

    /// Records a measured figure.
    pub fn figure(&mut self, name: &str, value: String) {
        eprintln!("FIGURE {name}: {value}");
        self.figures.push((name.to_owned(), value));
    }

    /// The table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (name, o) in &self.rows {
            let (tag, text) = match o {
                Outcome::Pass(d) => ("PASS", d),
                Outcome::Fail(d) => ("FAIL", d),
                Outcome::Skip(d) => ("SKIPPED", d),
            };
            let _ = writeln!(out, "  {tag:<8} {name}: {}", text.lines().next().unwrap_or(""));
        }
        for (name, value) in &self.figures {
            let _ = writeln!(out, "  FIGURE   {name}: {value}");
        }
        out
    }

    /// Prints the table and panics when a check failed. The table goes
    /// straight to the process's stderr, past the test harness's capture, so
    /// a passing run in CI still shows what was skipped and the figures.
    pub fn finish(&self, title: &str) {
        let failed = self.rows.iter().filter(|(_, o)| matches!(o, Outcome::Fail(_))).count();
        let skipped = self.rows.iter().filter(|(_, o)| matches!(o, Outcome::Skip(_))).count();
        let passed = self.rows.len() - failed - skipped;
        let text = format!("\n{title}: {passed} passed, {failed} failed, {skipped} skipped\n{}", self.table());
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        assert_eq!(failed, 0, "{title}: {failed} checks failed:\n{}", self.table());
    }
}

/// What the checks know about the router under test.
pub struct RouterUnderTest<'a> {
    /// MAC of its uplink NIC (the ISP's DHCP lease is looked up by it).
    pub uplink_mac: &'a str,
    /// The password of its web interface (user `router`).
    pub password: &'a str,
    /// Why a check needing `service` must be skipped (`None`: it is there).
    pub missing: &'a dyn Fn(&str) -> Option<String>,
}

impl RouterUnderTest<'_> {
    fn skip(&self, needs: &[&str]) -> Option<String> {
        let mut why: Vec<String> = Vec::new();
        for reason in needs.iter().filter_map(|s| (self.missing)(s)) {
            if !why.contains(&reason) {
                why.push(reason);
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// A TCP connection from the LAN to the ISP's server arrives from the
/// router's uplink address (masquerade).
pub fn nat_reaches_isp(isp: &Isp, lan: &Netns, uplink: Ipv4Addr, wait: Duration) -> Result<String, String> {
    let answer = wait_for(wait, || tcp_hello(lan, SocketAddr::new(IpAddr::V4(WWW_ADDR), WWW_PORT)).ok())
        .ok_or("no TCP connection to the ISP server")?;
    let peer = isp.server.peers.lock().unwrap().last().copied().ok_or("the server saw no connection")?;
    if peer.ip() != IpAddr::V4(uplink) {
        return Err(format!("the server saw {peer}, not the router's uplink address {uplink}: no masquerade"));
    }
    Ok(format!("server saw {peer}; answered {answer:?}"))
}

/// From the ISP side, the router's private TCP and UDP ports on `uplink` get
/// no answer at all (dropped, not refused).
pub fn uplink_is_closed(isp: &Isp, uplink: Ipv4Addr) -> Result<String, String> {
    // In parallel: each silent probe waits for its timeout.
    let open: Vec<String> = std::thread::scope(|s| {
        let tcp: Vec<_> =
            PRIVATE_TCP_PORTS.iter().map(|&port| s.spawn(move || (port, probe_tcp(&isp.ns, uplink, port)))).collect();
        let udp: Vec<_> =
            PRIVATE_UDP_PORTS.iter().map(|&port| s.spawn(move || (port, udp_answers(&isp.ns, uplink, port)))).collect();
        let mut open = Vec::new();
        for h in tcp {
            match h.join().unwrap() {
                (_, Probe::Silent) => {}
                (port, p) => open.push(format!("tcp/{port}: {p:?}")),
            }
        }
        for h in udp {
            if let (port, true) = h.join().unwrap() {
                open.push(format!("udp/{port} answered"));
            }
        }
        open
    });
    if !open.is_empty() {
        return Err(format!("{uplink} answers from the ISP side: {}", open.join(", ")));
    }
    Ok(format!("{uplink}: tcp {PRIVATE_TCP_PORTS:?} and udp {PRIVATE_UDP_PORTS:?} dropped"))
}

/// Runs the network checks of issue #10 against a booted router whose
/// uplink faces `isp` and whose LAN faces `lan` (interface `lan_iface`,
/// where `client` asks for a lease); `after_lease` runs once the LAN client
/// is configured (or has failed to be). Returns the moment the LAN client
/// held its lease.
#[allow(clippy::too_many_arguments)]
pub fn run_checks(
    report: &mut Report,
    router: &RouterUnderTest<'_>,
    isp: &Isp,
    lan: &Netns,
    lan_iface: &str,
    client: &LanClient,
    wait: Duration,
    after_lease: &mut dyn FnMut(&mut Report),
) -> Option<Instant> {
    let mut uplink_addr = None;
    report.check("uplink0 gets an IPv4 lease from the ISP", router.skip(&["netconfigd", "dhcp4"]), || {
        let a = wait_for(wait, || isp.lease_of(router.uplink_mac))
            .ok_or("no lease for the uplink's MAC in dnsmasq's lease file")?;
        uplink_addr = Some(a);
        Ok(format!("{a}"))
    });
    let mut delegated = None;
    report.check("uplink0 gets a delegated prefix", router.skip(&["netconfigd", "dhcp6"]), || {
        let p = wait_for(wait, || isp.delegated_prefix()).ok_or("no prefix delegation in kea's lease file")?;
        // As an ISP's router does once it has delegated the prefix.
        isp.route_delegated(&p, eui64_link_local(router.uplink_mac));
        delegated = Some(p.clone());
        Ok(p)
    });

    let mut client_dns = vec![ROUTER_LAN];
    let mut lease_at = None;
    let have_lease =
        report.check("LAN client gets an address from dhcp4d", router.skip(&["netconfigd", "dhcp4d"]), || {
            let (lease, at) = client.lease(wait)?;
            lease_at = Some(at);
            lan.ip(&["addr", "add", &format!("{}/{}", lease.addr, lease.prefix_len), "dev", lan_iface]);
            if let Some(r) = lease.router {
                lan.ip(&["route", "replace", "default", "via", &r.to_string(), "dev", lan_iface]);
            }
            if !lease.dns.is_empty() {
                client_dns.clone_from(&lease.dns);
            }
            Ok(format!("{}/{} via {:?}, DNS {:?}", lease.addr, lease.prefix_len, lease.router, lease.dns))
        });
    if !have_lease && router.skip(&["netconfigd"]).is_none() {
        // Without dhcp4d the later checks still run, from a fixed address.
        lan.ip(&["addr", "add", "192.168.42.200/24", "dev", lan_iface]);
        lan.ip(&["route", "replace", "default", "via", &ROUTER_LAN.to_string()]);
        eprintln!("note: the LAN client uses 192.168.42.200 (fixed) for the checks below");
    }
    after_lease(report);

    report.check("LAN client resolves an ISP name through dnsd", router.skip(&["netconfigd", "dnsd", "dhcp4"]), || {
        let server = client_dns[0];
        let answers = wait_for(wait, || {
            resolve(lan, server, WWW_NAME).ok().filter(|a| a.iter().any(|x| x == &WWW_ADDR.to_string()))
        })
        .ok_or_else(|| {
            format!("{WWW_NAME} did not resolve to {WWW_ADDR} at {server}: {:?}", resolve(lan, server, WWW_NAME))
        })?;
        let from = uplink_addr.ok_or("no uplink address known")?;
        if !isp.dns_query_logged(WWW_NAME, from) {
            return Err(format!("the ISP's DNS server did not see the query from the router's uplink address {from}"));
        }
        Ok(format!("{WWW_NAME} = {} via {server}, forwarded from {from}", answers.join(",")))
    });

    let mut slaac = None;
    report.check(
        "LAN client gets an IPv6 address by SLAAC from radvd",
        router.skip(&["netconfigd", "dhcp6", "radvd"]),
        || {
            let prefix = delegated.clone().ok_or("no delegated prefix")?;
            let a = wait_for(wait, || global_v6_in(lan, lan_iface, &prefix))
                .ok_or_else(|| format!("no global address in {prefix}"))?;
            slaac = Some(a);
            Ok(format!("{a} (in {prefix})"))
        },
    );

    report.check(
        "LAN client reaches an ISP-side server over IPv6 (routed, not translated)",
        router.skip(&["netconfigd", "dhcp6", "radvd"]),
        || {
            let from = slaac.ok_or("the LAN client has no global IPv6 address")?;
            let to = SocketAddr::new(IpAddr::V6(ISP_IP6), WWW_PORT);
            // The router's own default route comes from the ISP's RAs.
            let answer = wait_for(wait, || tcp_hello(lan, to).ok())
                .ok_or_else(|| format!("no TCP connection to {to}: {:?}", tcp_hello(lan, to)))?;
            let peer = isp.server6.peers.lock().unwrap().last().copied().ok_or("the server saw no connection")?;
            if peer.ip() != IpAddr::V6(from) {
                return Err(format!("the server saw {peer}, not the LAN client's {from}"));
            }
            Ok(format!("server saw {peer}; answered {answer:?}"))
        },
    );

    report.check(
        "from the ISP side a LAN host's IPv6 TCP port is dropped, echo requests pass",
        router.skip(&["netconfigd", "dhcp6", "radvd"]),
        || {
            let host = slaac.ok_or("the LAN client has no global IPv6 address")?;
            let listener = lan
                .enter(|| TcpListener::bind(SocketAddr::new(IpAddr::V6(host), LAN_PORT)))
                .map_err(|e| format!("listen on [{host}]:{LAN_PORT} in the LAN: {e}"))?;
            let tcp = probe_tcp(&isp.ns, host, LAN_PORT);
            drop(listener);
            if tcp != Probe::Silent {
                return Err(format!("[{host}]:{LAN_PORT} from the ISP side: {tcp:?}, want no answer"));
            }
            if !ping_answers(&isp.ns, host) {
                return Err(format!("{host} does not answer ping from the ISP side (RFC 4890 §4.3.1)"));
            }
            Ok(format!("[{host}]:{LAN_PORT} dropped; echo answered"))
        },
    );

    report.check("LAN client reaches an ISP-side server through NAT", router.skip(&["netconfigd", "dhcp4"]), || {
        nat_reaches_isp(isp, lan, uplink_addr.ok_or("no uplink address known")?, wait)
    });

    report.check(
        "web interface answers on lan0 with auth and refuses without",
        router.skip(&["netconfigd", "init"]),
        || {
            let without =
                wait_for(wait, || http_status(lan, ROUTER_LAN, None).ok()).ok_or("nothing answers on port 80")?;
            let wrong = http_status(lan, ROUTER_LAN, Some(("router", "wrong-password")))?;
            let with = http_status(lan, ROUTER_LAN, Some(("router", router.password)))?;
            if without != 401 || wrong != 401 || with != 200 {
                return Err(format!(
                    "without auth {without}, wrong password {wrong}, right password {with} (want 401, 401, 200)"
                ));
            }
            Ok("401 without, 401 with a wrong password, 200 with the password".into())
        },
    );

    report.check("nothing answers on uplink0 except what is allowed", router.skip(&["netconfigd", "dhcp4"]), || {
        uplink_is_closed(isp, uplink_addr.ok_or("no uplink address known")?)
    });

    report.check(
        "the router answers ping on uplink0 (allowed, rate limited)",
        router.skip(&["netconfigd", "dhcp4"]),
        || {
            let a = uplink_addr.ok_or("no uplink address known")?;
            if !ping_answers(&isp.ns, a) {
                return Err(format!("{a} does not answer ping from the ISP side"));
            }
            Ok(format!("{a} answers echo requests"))
        },
    );
    lease_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dhclient_leases() {
        let text = "lease {\n  interface \"eth0\";\n  fixed-address 10.0.0.5;\n}\nlease {\n  interface \"eth0\";\n  fixed-address 192.168.42.100;\n  option subnet-mask 255.255.255.0;\n  option routers 192.168.42.1;\n  option domain-name-servers 192.168.42.1,1.1.1.1;\n}\n";
        let l = parse_dhclient_lease(text).unwrap();
        assert_eq!(l.addr, Ipv4Addr::new(192, 168, 42, 100));
        assert_eq!(l.prefix_len, 24);
        assert_eq!(l.router, Some(ROUTER_LAN));
        assert_eq!(l.dns, vec![ROUTER_LAN, Ipv4Addr::new(1, 1, 1, 1)]);
        let v6 = "lease6 {\n  ia-pd 1 {\n    iaprefix 2001:db8:8000::/48 {\n      starts 1;\n    }\n  }\n}\n";
        assert_eq!(parse_dhclient6_prefix(v6).as_deref(), Some("2001:db8:8000::/48"));
    }
}
