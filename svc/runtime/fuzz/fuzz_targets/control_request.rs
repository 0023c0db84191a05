//! Control-API requests: any bytes, parsed as the server would, into the
//! standard API (runtime::control) of a service with a few events. Nothing
//! panics; every immediate answer is one of the API's statuses with a JSON
//! body; commands are queued only for POSTs to /v1/commands/<known>.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime::control::{Command, Control};
use runtime::httpd::{Outcome, Peer, Request};
use runtime::EventLoop;

struct Fixture {
    control: Control,
    // Never run; it only lends its waker. Kept here (not leaked) so the leak
    // checker sees it reachable until the end.
    _ev: EventLoop,
}

fn fixture() -> Fixture {
    let ev = EventLoop::new().expect("an event loop");
    let control = Control::new("fuzz", None, ev.waker());
    control.set_field("lease", serde_json::json!({"ip": "192.0.2.7"}));
    for topic in ["fuzz.lease.bound", "fuzz.lease.renewed", "fuzz.other"] {
        control.emit(topic, serde_json::json!({}));
    }
    Fixture { control, _ev: ev }
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}

fuzz_target!(|data: &[u8]| FIXTURE.with(|f| one(&f.control, data)));

fn one(c: &Control, data: &[u8]) {
    let Ok(request) = Request::parse(data, Peer::Unix) else { return };
    let outcome = c.handle(&request);
    let commands = c.take_commands();
    if let Outcome::Respond(r) = outcome {
        assert!([200, 202, 400, 404, 405].contains(&r.status()), "status {}", r.status());
        serde_json::from_slice::<serde_json::Value>(r.body_bytes()).expect("a JSON body");
        if r.status() == 202 {
            assert!(request.is("POST") && request.path().starts_with("/v1/commands/"));
            assert_eq!(commands.len(), 1);
            assert!(matches!(commands[0], Command::Reload | Command::Renew | Command::Stop));
        } else {
            assert!(commands.is_empty());
        }
    }
}
