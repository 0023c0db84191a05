//! netconfigd: turns interfaces.json, portforwardings.json, config.json and the
//! DHCPv4/DHCPv6 leases into links, addresses, routes, sysctls and the nftables
//! firewall; see the library's docs and README.md.
#![forbid(unsafe_code)]

mod shell;

use runtime::cli::{Opt, Spec};

const SPEC: Spec = Spec {
    name: "netconfigd",
    about: "links, addresses, routes, sysctls and the nftables firewall",
    uplink: true,
    lan: true,
    options: &[
        Opt {
            name: "listen-port",
            value: Some("PORT"),
            help: "port of /metrics on the private addresses [default: 8066]",
        },
        Opt {
            name: "resolv-conf",
            value: Some("FILE"),
            help: "resolv.conf to create if missing [default: /tmp/resolv.conf]",
        },
        Opt {
            name: "signal-init",
            value: None,
            help: "send SIGHUP to PID 1 after each apply (on the device; never in tests outside a PID namespace)",
        },
    ],
};

fn main() -> std::process::ExitCode {
    runtime::service::main(&SPEC, |mut base| {
        let mut shell = shell::Shell::new(base.args.clone(), base.control.clone(), &base.httpd)?;
        base.event_loop.add_timer(runtime::clock::now(), shell::APPLY_TAG);
        Ok(base.event_loop.run(&mut shell)?)
    })
}
