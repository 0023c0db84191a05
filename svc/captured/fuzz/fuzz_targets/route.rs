//! Any method and URL through captured's request routing: it never panics,
//! and a stream it accepts names at least one interface; the client's own
//! paths route to the stream they describe.
#![no_main]

use captured::request::{Route, route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (method, url) = text.split_once(' ').unwrap_or(("GET", &text));
    if let Route::Capture(r) = route(method, url, ["uplink0", "lan0"]) {
        assert!(!r.selection.ifaces().is_empty());
    }
    // The host tool's client builds paths the server must route back.
    let options = captured::client::StreamOptions { iface: Some(text.to_string()), replay: Some(data.len() as u32) };
    if let Route::Capture(r) = route("GET", &options.path(), ["uplink0", "lan0"]) {
        assert_eq!(r.replay, data.len());
    }
});
