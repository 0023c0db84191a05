//! What every HTTP endpoint of ours shares: listeners on the router's
//! private addresses, served by the process's [`httpd::Server`] and kept in
//! step with the addresses ([`ListenerSet`]), HTTP basic auth against the
//! router password, and small response helpers.
//!
//! Private means the addresses [`crate::netif::private_addrs`] returns: loopback
//! and every address of an up interface not named `uplink*`. Listeners never
//! bind a wildcard address, so nothing is reachable from the uplink even before
//! the firewall is in place.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, TcpListener};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::httpd;

/// Escapes text for HTML element content and quoted attribute values (the
/// status pages of init, dhcp4d and diagd show names clients chose).
#[must_use]
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as space) in a query component.
#[must_use]
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user name of HTTP basic auth on every private endpoint.
pub const AUTH_USER: &str = "router";

/// HTTP basic auth with the router password.
#[derive(Clone)]
pub struct BasicAuth {
    expected: Vec<u8>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth { .. }")
    }
}

/// Compares without an early exit, so timing does not tell how much matched.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

impl BasicAuth {
    /// Auth for user [`AUTH_USER`] with `password`.
    #[must_use]
    pub fn new(password: &str) -> Self {
        Self { expected: format!("{AUTH_USER}:{password}").into_bytes() }
    }

    /// Reads the password file (first line, trimmed); an empty file is an error.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        let text = fs::read_to_string(path)?;
        let password = text.lines().next().unwrap_or("").trim();
        if password.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: empty password", path.display())));
        }
        Ok(Self::new(password))
    }

    /// Whether an `Authorization` header value carries the right credentials.
    #[must_use]
    pub fn check_header(&self, value: Option<&str>) -> bool {
        let Some(value) = value else { return false };
        let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else {
            return false;
        };
        match crate::base64::decode(encoded.trim()) {
            Ok(given) => constant_time_eq(&given, &self.expected),
            Err(_) => false,
        }
    }
}

/// A TCP listener on `addr` with `IP_FREEBIND`/`IPV6_FREEBIND`: the bind
/// succeeds while the address is still tentative (IPv6 duplicate address
/// detection holds a new address back for about a second, and the SIGUSR1
/// that announces it comes right away), and the listener serves as soon as
/// the kernel takes the address. Without it, a new LAN address was not
/// listened on until the next change of addresses. Only addresses that
/// [`crate::netif::private_addrs`] found are ever bound.
fn bind_freely(addr: SocketAddr) -> io::Result<TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
    let family = if addr.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
    let fd = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if addr.is_ipv4() {
        sockopt::set_ip_freebind(&fd, true)?;
    } else {
        sockopt::set_ipv6_freebind(&fd, true)?;
        // Like std: an IPv6 listener is never also an IPv4 one.
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, 128)?;
    Ok(TcpListener::from(fd))
}

/// Splits `path?query` and decodes the query's `key=value` pairs.
#[must_use]
pub fn split_query(url: &str) -> (&str, Vec<(String, String)>) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    (path, pairs)
}

/// A response of `content_type` that no cache keeps (every page of ours
/// shows live state).
#[must_use]
pub fn reply(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> httpd::Response {
    httpd::Response::with_body(status, content_type, body).with_header("Cache-Control", "no-store")
}

/// Indented JSON that no cache keeps.
#[must_use]
pub fn reply_json(status: u16, body: &Value) -> httpd::Response {
    httpd::Response::json_pretty(status, body).with_header("Cache-Control", "no-store")
}

/// Plain text that no cache keeps (a newline is added when missing).
#[must_use]
pub fn reply_text(status: u16, text: &str) -> httpd::Response {
    httpd::Response::text(status, text).with_header("Cache-Control", "no-store")
}

/// 405 with the methods that are allowed.
#[must_use]
pub fn method_not_allowed(allow: &str) -> httpd::Response {
    reply_text(405, "method not allowed").with_header("Allow", allow)
}

impl BasicAuth {
    /// Whether `request` carries the right credentials.
    #[must_use]
    pub fn authorizes(&self, request: &httpd::Request) -> bool {
        self.check_header(request.header("Authorization"))
    }

    /// 401 with a challenge.
    #[must_use]
    pub fn challenge_response() -> httpd::Response {
        httpd::Response::text(401, "authentication required").with_header("WWW-Authenticate", "Basic realm=\"router7\"")
    }
}

/// One listener per private address on the process's [`httpd::Server`],
/// kept in step with the addresses (router7's multilisten): new addresses
/// get a listener, vanished ones are closed. Never a wildcard address.
pub struct ListenerSet {
    server: httpd::Server,
    port: u16,
    handler: httpd::Handler,
    limits: httpd::Limits,
    /// Wanted address → the listener and the address it actually has.
    listeners: BTreeMap<SocketAddr, (httpd::ListenerId, SocketAddr)>,
}

impl std::fmt::Debug for ListenerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSet").field("port", &self.port).field("addrs", &self.listeners.keys()).finish()
    }
}

impl ListenerSet {
    /// A set for `port` (nothing listens until [`ListenerSet::update`]),
    /// served by `server` with `handler`.
    #[must_use]
    pub fn new(server: &httpd::Server, port: u16, handler: httpd::Handler) -> Self {
        Self::with_limits(server, port, handler, httpd::Limits::default())
    }

    /// Like [`ListenerSet::new`] with other limits.
    #[must_use]
    pub fn with_limits(server: &httpd::Server, port: u16, handler: httpd::Handler, limits: httpd::Limits) -> Self {
        Self { server: server.clone(), port, handler, limits, listeners: BTreeMap::new() }
    }

    /// Listens on exactly `addrs` (`(address, interface index)`; the index is the
    /// scope of link-local IPv6 addresses). Returns the errors of addresses that
    /// could not be bound; those are retried on the next update.
    pub fn update(&mut self, addrs: &[(IpAddr, u32)]) -> Vec<(SocketAddr, io::Error)> {
        let wanted: Vec<SocketAddr> = addrs
            .iter()
            .map(|&(ip, scope)| match ip {
                IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                    SocketAddr::V6(SocketAddrV6::new(v6, self.port, 0, scope))
                }
                _ => SocketAddr::new(ip, self.port),
            })
            .collect();
        let gone: Vec<SocketAddr> = self.listeners.keys().filter(|a| !wanted.contains(a)).copied().collect();
        for addr in gone {
            if let Some((id, _)) = self.listeners.remove(&addr) {
                self.server.close(id);
            }
        }
        let mut errors = Vec::new();
        for addr in wanted {
            if self.listeners.contains_key(&addr) {
                continue;
            }
            let started = bind_freely(addr).and_then(|l| {
                let local = l.local_addr()?;
                let id = self.server.listen_tcp(l, Arc::clone(&self.handler), self.limits)?;
                Ok((id, local))
            });
            match started {
                Ok(entry) => {
                    self.listeners.insert(addr, entry);
                }
                Err(e) => errors.push((addr, e)),
            }
        }
        errors
    }

    /// The addresses listened on (with the actual port when the set's port is 0).
    #[must_use]
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.values().map(|(_, local)| *local).collect()
    }
}

impl Drop for ListenerSet {
    fn drop(&mut self) {
        for (id, _) in self.listeners.values() {
            self.server.close(*id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    #[test]
    fn decodes_percent_escapes_and_plus() {
        assert_eq!(percent_decode("a%20b+c%2Fd"), "a b c/d");
        assert_eq!(percent_decode("bad%zzescape%"), "bad%zzescape%");
        assert_eq!(percent_decode("%e2%9c%94"), "✔");
    }

    #[test]
    fn basic_auth_accepts_only_the_right_credentials() {
        let auth = BasicAuth::new("s3cret");
        let good = format!("Basic {}", crate::base64::encode(b"router:s3cret"));
        assert!(auth.check_header(Some(&good)));
        for bad in [
            None,
            Some(String::from("Basic ")),
            Some(format!("Basic {}", crate::base64::encode(b"router:s3cre"))),
            Some(format!("Basic {}", crate::base64::encode(b"router:s3cret!"))),
            Some(format!("Basic {}", crate::base64::encode(b"admin:s3cret"))),
            Some(format!("Bearer {}", crate::base64::encode(b"router:s3cret"))),
            Some(String::from("Basic !!!!")),
        ] {
            assert!(!auth.check_header(bad.as_deref()), "{bad:?}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_inputs() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"\xff"));
        assert!(constant_time_eq(b"", b""));
    }

    fn get(addr: SocketAddr) -> io::Result<String> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"GET /x HTTP/1.0\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    fn answer_hi() -> httpd::Handler {
        Arc::new(|r: &httpd::Request| reply(200, "text/plain", format!("hi {}\n", r.path())).into())
    }

    #[test]
    fn listener_set_follows_the_address_set() {
        let server = httpd::Server::new().unwrap();
        let mut set = ListenerSet::new(&server, 0, answer_hi());
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo2: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(set.update(&[(lo, 1)]).is_empty());
        let first = set.local_addrs();
        assert_eq!(first.len(), 1);
        assert!(get(first[0]).unwrap().ends_with("hi /x\n"));
        // Same set again: the listener stays (same port).
        assert!(set.update(&[(lo, 1), (lo2, 1)]).is_empty());
        let both = set.local_addrs();
        assert_eq!(both.len(), 2);
        assert!(both.contains(&first[0]));
        for a in &both {
            assert!(get(*a).unwrap().contains("Cache-Control: no-store"), "{a}");
        }
        set.update(&[(lo2, 1)]);
        assert!(get(first[0]).is_err(), "a vanished address is no longer served, at once");
        drop(set);
        assert!(both.iter().all(|a| get(*a).is_err()), "dropping the set closes its listeners");
    }

    /// A LAN address announced by SIGUSR1 is often still tentative (IPv6
    /// DAD): binding it must not fail, or it is not listened on until the
    /// next change (seen on the image: `/metrics on [2001:db8:8000::1]:8068:
    /// Cannot assign requested address`). Documentation addresses stand in
    /// for addresses not yet usable; nothing here configures them.
    #[test]
    fn listener_set_binds_addresses_that_are_not_usable_yet() {
        let server = httpd::Server::new().unwrap();
        let mut set = ListenerSet::new(&server, 0, answer_hi());
        let v4: IpAddr = "192.0.2.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:7237::77".parse().unwrap();
        let errors = set.update(&[(v4, 0), (v6, 0)]);
        assert!(errors.is_empty(), "{errors:?}");
        let mut got: Vec<IpAddr> = set.local_addrs().iter().map(SocketAddr::ip).collect();
        got.sort();
        assert_eq!(got, [v4, v6]);
    }

    #[test]
    fn basic_auth_checks_requests_and_challenges() {
        let auth = BasicAuth::new("pw");
        let with = |h: &str| {
            httpd::Request::parse(format!("GET / HTTP/1.1\r\n{h}\r\n\r\n").as_bytes(), httpd::Peer::Unix).unwrap()
        };
        let good = format!("Authorization: Basic {}", crate::base64::encode(b"router:pw"));
        assert!(auth.authorizes(&with(&good)));
        assert!(!auth.authorizes(&with("X: y")));
        let c = BasicAuth::challenge_response();
        assert_eq!((c.status(), c.header("WWW-Authenticate")), (401, Some("Basic realm=\"router7\"")));
    }
}
