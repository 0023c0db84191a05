//! Update requests as they arrive over HTTP: any bytes through runtime's
//! request parser (the head init's listener reads), then the update
//! endpoints' header and query checks ([`init::update::web`]). Nothing
//! panics; a change passes only with `X-Router-Update: 1` and no `Origin`;
//! an accepted activation is within the protocol's bounds; the declared
//! length an upload would be checked with is the parsed `Content-Length`.
#![no_main]

use bootslot::api::TRIAL_SECONDS_RANGE;
use init::update::web::{parse_activation, refuse_change};
use libfuzzer_sys::fuzz_target;
use runtime::httpd::parse::Framing;
use runtime::httpd::{Peer, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = Request::parse(data, Peer::Unix) else { return };
    let headers = request.headers();
    let allowed = refuse_change(headers).is_none();
    let update = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-router-update")).map(|(_, v)| v.trim());
    let origin = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("origin"));
    assert_eq!(allowed, update == Some("1") && !origin, "{headers:?}");
    if let Ok(a) = parse_activation(&request.query()) {
        assert!(TRIAL_SECONDS_RANGE.contains(&a.trial_seconds));
        assert!(a.kind == "update" || a.kind == "rollback");
    }
    // Framing agrees with the Content-Length header the client sent.
    match request.framing() {
        Framing::Length(n) => {
            let declared = request.header("Content-Length").and_then(|v| v.split(',').next()?.trim().parse().ok());
            assert_eq!(declared, Some(n));
        }
        Framing::Chunked => assert!(request.header("Transfer-Encoding").is_some()),
        Framing::None => {}
    }
});
