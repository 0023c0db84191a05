//! What an HTTP request to port 5022 asks for, decided from its method and
//! URL alone (authentication is checked before, by the shell).
//!
//! | request | meaning |
//! |---|---|
//! | `GET /capture.pcapng` | the stream: the ring, then live packets |
//! | `?iface=NAME[,NAME]` | only these interfaces (`uplink0`, `lan0`; `all` for both) |
//! | `?replay=N` | replay at most the last N buffered packets (0: live only); default all of the ring |
//! | `GET /metrics` | Prometheus text (no authentication, like every service's metrics) |
//!
//! Anything else is 404, a wrong method 405, an unknown or malformed query parameter 400.

use crate::hub::Selection;
use crate::ring::Iface;

/// The stream a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRequest {
    /// Its interfaces.
    pub selection: Selection,
    /// Replay at most this many buffered packets.
    pub replay: usize,
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Stream packets.
    Capture(StreamRequest),
    /// Metrics.
    Metrics,
    /// 400 with this reason.
    BadRequest(String),
    /// 404.
    NotFound,
    /// 405, allowing this method.
    MethodNotAllowed(&'static str),
}

/// The path of the stream.
pub const CAPTURE_PATH: &str = "/capture.pcapng";

/// Routes a request. `names` are the interface names (uplink, LAN).
#[must_use]
pub fn route(method: &str, url: &str, names: [&str; 2]) -> Route {
    let (path, query) = runtime::control::split_query(url);
    let get = method == "GET" || method == "HEAD";
    match path {
        CAPTURE_PATH if get => match stream_request(&query, names) {
            Ok(r) => Route::Capture(r),
            Err(e) => Route::BadRequest(e),
        },
        "/metrics" if get => Route::Metrics,
        CAPTURE_PATH | "/metrics" => Route::MethodNotAllowed("GET"),
        _ => Route::NotFound,
    }
}

fn stream_request(query: &[(String, String)], names: [&str; 2]) -> Result<StreamRequest, String> {
    let mut request = StreamRequest { selection: Selection::ALL, replay: usize::MAX };
    let (mut seen_iface, mut seen_replay) = (false, false);
    for (key, value) in query {
        match key.as_str() {
            "iface" if !seen_iface => {
                seen_iface = true;
                request.selection = selection(value, names)?;
            }
            "replay" if !seen_replay => {
                seen_replay = true;
                request.replay =
                    value.parse::<u32>().map_err(|_| format!("replay must be a number of packets, not {value:?}"))?
                        as usize;
            }
            "iface" | "replay" => return Err(format!("{key} given twice")),
            _ => return Err(format!("unknown parameter {key:?} (known: iface, replay)")),
        }
    }
    Ok(request)
}

fn selection(value: &str, names: [&str; 2]) -> Result<Selection, String> {
    if value == "all" {
        return Ok(Selection::ALL);
    }
    let mut ifaces = Vec::new();
    for name in value.split(',') {
        let iface = Iface::ALL
            .into_iter()
            .find(|i| names[i.index()] == name)
            .ok_or_else(|| format!("unknown interface {name:?} (known: {}, {}, all)", names[0], names[1]))?;
        ifaces.push(iface);
    }
    Ok(Selection::of(&ifaces))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 2] = ["uplink0", "lan0"];

    fn capture(url: &str) -> StreamRequest {
        match route("GET", url, NAMES) {
            Route::Capture(r) => r,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn the_stream_defaults_to_both_interfaces_and_the_whole_ring() {
        assert_eq!(capture("/capture.pcapng"), StreamRequest { selection: Selection::ALL, replay: usize::MAX });
    }

    #[test]
    fn iface_and_replay_narrow_the_stream() {
        let r = capture("/capture.pcapng?iface=uplink0&replay=100");
        assert_eq!(r, StreamRequest { selection: Selection::of(&[Iface::Uplink]), replay: 100 });
        assert_eq!(capture("/capture.pcapng?iface=lan0,uplink0").selection, Selection::ALL);
        assert_eq!(capture("/capture.pcapng?iface=all&replay=0").replay, 0);
        assert_eq!(capture("/capture.pcapng?iface=lan%30").selection, Selection::of(&[Iface::Lan]));
    }

    #[test]
    fn bad_queries_are_400_with_a_reason() {
        for url in [
            "/capture.pcapng?iface=eth0",
            "/capture.pcapng?iface=",
            "/capture.pcapng?replay=-1",
            "/capture.pcapng?replay=lots",
            "/capture.pcapng?replay=99999999999",
            "/capture.pcapng?replay=1&replay=2",
            "/capture.pcapng?snaplen=10",
        ] {
            assert!(matches!(route("GET", url, NAMES), Route::BadRequest(_)), "{url}");
        }
    }

    #[test]
    fn other_paths_and_methods() {
        assert_eq!(route("GET", "/metrics", NAMES), Route::Metrics);
        assert_eq!(route("POST", "/capture.pcapng", NAMES), Route::MethodNotAllowed("GET"));
        assert_eq!(route("GET", "/", NAMES), Route::NotFound);
        assert_eq!(route("GET", "/capture.pcap", NAMES), Route::NotFound);
    }
}
