//! The lease table for people (HTML, like router7's status page) and for
//! programs (router7's JSON), rendered from what is on disk plus the
//! configured static leases. Every value from a client is escaped.

use std::fmt::Write as _;
use std::time::Duration;

use runtime::perm::Dhcp4dLease;
use runtime::timefmt::Timestamp;

use crate::config::StaticLease;

pub use runtime::http::html_escape as escape;

struct Row<'a> {
    addr: String,
    hostname: &'a str,
    overridden: bool,
    mac: &'a str,
    last_ack: Option<Timestamp>,
    expiry: Option<Timestamp>,
    static_lease: bool,
}

fn ago(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

fn row(out: &mut String, r: &Row<'_>, now: Timestamp) {
    let _ = write!(out, "<tr><td class=\"ipaddr\">{}</td><td>{}", escape(&r.addr), escape(r.hostname));
    if r.overridden {
        out.push_str(" <span class=\"hostname-override\" title=\"name set by hand\">!</span>");
    }
    let _ = write!(out, "</td><td class=\"hwaddr\">{}</td>", escape(r.mac));
    match r.last_ack {
        Some(t) if !t.is_go_zero() => {
            let _ = write!(out, "<td title=\"{t}\">{}</td>", ago(t.until(now)));
        }
        _ => out.push_str("<td>never</td>"),
    }
    match r.expiry {
        _ if r.static_lease => out.push_str("<td><span class=\"static\">static</span></td>"),
        Some(t) if t > now => {
            let _ = write!(out, "<td title=\"{t}\">in {} <span class=\"active\">active</span></td>", {
                let left = now.until(t).as_secs();
                if left >= 3600 { format!("{} h", left / 3600) } else { format!("{} min", left.div_ceil(60)) }
            });
        }
        Some(t) => {
            let _ = write!(out, "<td title=\"{t}\">{} <span class=\"expired\">expired</span></td>", ago(t.until(now)));
        }
        None => out.push_str("<td></td>"),
    }
    out.push_str("</tr>\n");
}

const HEAD: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<title>DHCPv4 status</title>\n<style>\n\
body { margin-left: 1em; font-family: sans-serif; }\n\
td, th { padding: 0 1em .25em .25em; text-align: left; }\n\
span.active, span.expired, span.static, span.hostname-override { display: inline-block; min-width: 5em; \
text-align: center; border: 1px solid grey; border-radius: 5px; }\n\
span.active { background-color: #00f000; } span.expired { background-color: #f00000; }\n\
span.hostname-override { min-width: 1em; background-color: orange; }\n\
.ipaddr, .hwaddr { font-family: monospace; }\n\
tr:nth-child(even) { background: #eee; }\n\
</style></head><body>\n<h1>DHCPv4 status</h1>\n";

const COLUMNS: &str =
    "<tr><th>IP address</th><th>Hostname</th><th>MAC address</th><th>Last ACK</th><th>Expiry</th></tr>\n";

/// The status page: static leases (by address), then dynamic ones (latest
/// expiry first), at wall time `now`.
#[must_use]
pub fn render_html(leases: &[Dhcp4dLease], statics: &[StaticLease], now: Timestamp) -> String {
    let mut static_rows: Vec<(u32, Row<'_>)> = Vec::new();
    let mut dynamic_rows: Vec<Row<'_>> = Vec::new();
    let configured = |mac: &str| statics.iter().any(|s| runtime::netif::parse_mac(mac) == Some(s.mac));
    for l in leases {
        let r = Row {
            addr: l.addr.map(|a| a.to_string()).unwrap_or_default(),
            hostname: l.name(),
            overridden: !l.hostname_override.is_empty(),
            mac: &l.hardware_addr,
            last_ack: Some(l.last_ack),
            expiry: Some(l.expiry),
            static_lease: l.is_static() || configured(&l.hardware_addr),
        };
        if r.static_lease {
            static_rows.push((l.addr.map_or(0, u32::from), r));
        } else {
            dynamic_rows.push(r);
        }
    }
    let macs: Vec<String> = statics.iter().map(|s| runtime::netif::format_mac(s.mac)).collect();
    for (s, mac) in statics.iter().zip(&macs) {
        if !leases.iter().any(|l| runtime::netif::parse_mac(&l.hardware_addr) == Some(s.mac)) {
            static_rows.push((
                u32::from(s.addr),
                Row {
                    addr: s.addr.to_string(),
                    hostname: s.hostname.as_deref().unwrap_or(""),
                    overridden: false,
                    mac,
                    last_ack: None,
                    expiry: None,
                    static_lease: true,
                },
            ));
        }
    }
    static_rows.sort_by_key(|(a, _)| *a);
    dynamic_rows.sort_by_key(|r| std::cmp::Reverse(r.expiry));
    let mut out = String::from(HEAD);
    let _ = writeln!(out, "<h2>Static leases ({})</h2>\n<table>", static_rows.len());
    out.push_str(COLUMNS);
    for (_, r) in &static_rows {
        row(&mut out, r, now);
    }
    let _ = writeln!(out, "</table>\n<h2>Dynamic leases ({})</h2>\n<table>", dynamic_rows.len());
    out.push_str(COLUMNS);
    for r in &dynamic_rows {
        row(&mut out, r, now);
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

/// router7's `X-Lease-Active` for `/lease/<hostname>`: renewed within the last
/// third of the lease time (expiry more than two thirds of it away).
#[must_use]
pub fn lease_active(lease: &Dhcp4dLease, now: Timestamp, lease_time: Duration) -> bool {
    !lease.is_static() && lease.expiry > now.plus(lease_time * 2 / 3)
}

/// The lease published under `hostname` (the override, else the client's name).
#[must_use]
pub fn find_by_hostname<'a>(leases: &'a [Dhcp4dLease], hostname: &str) -> Option<&'a Dhcp4dLease> {
    leases.iter().filter(|l| !hostname.is_empty() && l.name() == hostname).max_by_key(|l| (l.is_static(), l.expiry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn at(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    fn lease(addr: u8, mac: &str, host: &str, expiry: Timestamp) -> Dhcp4dLease {
        Dhcp4dLease {
            num: i64::from(addr) - 2,
            addr: Some(Ipv4Addr::new(192, 168, 42, addr)),
            hardware_addr: mac.into(),
            hostname: host.into(),
            hostname_override: String::new(),
            expiry,
            last_ack: at(1_000),
        }
    }

    #[test]
    fn escapes_everything_a_client_controls() {
        assert_eq!(escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        let evil = lease(5, "02:00:00:00:00:05\"><script>", "<script>alert(1)</script>", at(5_000));
        let html = render_html(&[evil], &[], at(2_000));
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn lists_static_then_dynamic_latest_first() {
        let statics = [
            StaticLease { mac: [2, 0, 0, 0, 0, 9], addr: Ipv4Addr::new(192, 168, 42, 9), hostname: Some("nas".into()) },
            StaticLease { mac: [2, 0, 0, 0, 0, 3], addr: Ipv4Addr::new(192, 168, 42, 3), hostname: None },
        ];
        let leases = [
            lease(20, "02:00:00:00:00:20", "old", at(1_500)),
            lease(21, "02:00:00:00:00:21", "new", at(9_000)),
            lease(4, "02:00:00:00:00:04", "router7-static", Timestamp::GO_ZERO),
            lease(3, "02:00:00:00:00:03", "printer", at(8_000)),
        ];
        let html = render_html(&leases, &statics, at(2_000));
        let pos = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} missing:\n{html}"));
        assert!(html.contains("Static leases (3)") && html.contains("Dynamic leases (2)"), "{html}");
        assert!(pos("192.168.42.3<") < pos("192.168.42.4<") && pos("192.168.42.4<") < pos("192.168.42.9<"));
        assert!(pos("Dynamic leases") < pos("new") && pos("new") < pos(">old<"));
        assert!(html.contains("expired") && html.contains("active"));
        assert!(html.contains(">nas<"), "a configured static lease never seen is listed");
    }

    #[test]
    fn lease_is_active_like_router7_says() {
        let lt = Duration::from_secs(1200);
        let now = at(10_000);
        assert!(lease_active(&lease(5, "m", "h", at(10_000 + 1200)), now, lt));
        assert!(!lease_active(&lease(5, "m", "h", at(10_000 + 700)), now, lt));
        assert!(!lease_active(&lease(5, "m", "h", at(9_000)), now, lt));
        let mut overridden = lease(5, "m", "client", at(1));
        overridden.hostname_override = "mine".into();
        let leases = [overridden, lease(6, "n", "mine", at(0))];
        assert_eq!(find_by_hostname(&leases, "mine").map(|l| l.num), Some(3));
        assert!(find_by_hostname(&leases, "client").is_none());
        assert!(find_by_hostname(&leases, "").is_none());
    }
}
