//! init: the PID 1 of router7-rs. It mounts the file systems, finds and mounts
//! `/perm`, starts the services of the manifest unprivileged and supervises them
//! with backoff, keeps their logs (memory, console, `/perm`), serves the control
//! socket `/run/router/init.sock` and the web interface on private:80, pings
//! the hardware watchdog, and shuts down cleanly on SIGTERM/SIGUSR2.
//!
//! The library holds the testable parts: sans-IO cores ([`supervisor`],
//! [`logs`], [`console`], [`cmdline`], [`rootdev`], [`mounts`] behind a seam,
//! [`web`] routing, [`rescue`]'s prompt) and the shell that drives them
//! ([`shell`], [`spawn`], [`control_api`]). [`update`] owns updates: uploads
//! into the inactive slot, activation through kexec or the firmware, the trial
//! boot and its commit or automatic rollback (issue 11).
#![forbid(unsafe_code)]

pub mod cmdline;
pub mod console;
pub mod control_api;
pub mod kmsg;
pub mod logfile;
pub mod logs;
pub mod manifest;
pub mod mounts;
pub mod rescue;
pub mod rootdev;
pub mod routerctl;
pub mod shell;
pub mod spawn;
pub mod status;
pub mod supervisor;
pub mod sysinfo;
pub mod update;
pub mod web;
