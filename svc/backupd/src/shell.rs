//! The loop: listeners on the private addresses (re-made on SIGUSR1), the
//! password, the control API. The transfers themselves run on their own
//! threads (`server.rs`).

use std::sync::Arc;

use backupd::restore::Limits;
use runtime::control::{Control, Phase};
use runtime::http::ListenerSet;
use runtime::httpd;
use runtime::service::Base;
use runtime::{Context, Handler, log_info, log_warn, netif};
use serde_json::json;

use crate::server::{self, Shared};

struct Shell {
    lan: String,
    control: Control,
    shared: Arc<Shared>,
    pool: ListenerSet,
    password_logged: bool,
}

/// Runs backupd until it is stopped.
pub fn run(mut base: Base) -> Result<i32, Box<dyn std::error::Error>> {
    let port: u16 = match base.args.value("port") {
        Some(p) => p.parse().map_err(|_| format!("--port {p}: not a port"))?,
        None => backupd::PORT,
    };
    let shared =
        Arc::new(Shared::new(base.args.perm.clone(), base.args.run.clone(), Limits::default(), base.control.clone()));
    // Leftovers of a restore or upload cut short by a crash.
    let scratch = shared.scratch();
    if scratch.exists() {
        match std::fs::remove_dir_all(&scratch) {
            Ok(()) => log_info!("removed leftovers in {}", scratch.display()),
            Err(e) => log_warn!("cannot remove {}: {e}", scratch.display()),
        }
    }
    let handler_shared = Arc::clone(&shared);
    let handler: httpd::Handler = Arc::new(move |request: &httpd::Request| server::handle(&handler_shared, request));
    let mut shell = Shell {
        lan: base.args.lan.clone(),
        control: base.control.clone(),
        shared,
        pool: ListenerSet::new(&base.httpd, port, handler),
        password_logged: false,
    };
    shell.reload();
    let code = base.event_loop.run(&mut shell)?;
    Ok(code)
}

impl Shell {
    fn reload(&mut self) {
        match self.shared.load_password() {
            Ok(()) => {
                self.password_logged = false;
                self.control.set_condition("PasswordSet", Some(true), "Loaded", "/perm/router/password");
            }
            Err(e) => {
                if !self.password_logged {
                    log_warn!("{e}; every backup and restore is refused until it exists");
                    self.password_logged = true;
                }
                self.control.set_condition("PasswordSet", Some(false), "Missing", &e);
            }
        }
        match netif::private_addrs(&self.lan) {
            Ok(addrs) => {
                for (addr, e) in self.pool.update(&addrs) {
                    log_warn!("cannot listen on {addr}: {e}");
                }
            }
            Err(e) => log_warn!("cannot list addresses: {e}"),
        }
        let listening: Vec<String> = self.pool.local_addrs().iter().map(ToString::to_string).collect();
        let mut c = self.control.update();
        c.set_phase(if listening.is_empty() { Phase::Pending } else { Phase::Up });
        c.set_field("listening", json!(listening));
        let l = self.shared.limits;
        c.set_field(
            "limits",
            json!({"max_upload": l.max_upload, "max_total": l.max_total, "max_file": l.max_file, "max_entries": l.max_entries}),
        );
    }
}

impl Handler for Shell {
    fn on_reload(&mut self, _cx: &mut Context<'_>) {
        log_info!("reloading");
        self.reload();
    }
}
