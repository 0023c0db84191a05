//! `init`: the PID 1 of router7-rs (see the library's docs and init/README.md).
//!
//! As PID 1 it mounts, finds `/perm`, supervises, and finally syncs, unmounts
//! `/perm` and reboots or powers off; it never exits. With `--supervise-only`
//! it is a plain supervisor rooted in the folders given (tests, trying it out):
//! no mounts, and a reboot or power-off request stops every service and exits 0.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use runtime::cli::{CliError, Opt, Spec};

use init::cmdline::KernelCmdline;
use init::manifest::Manifest;
use init::mounts::{self, PermState, RealSystem};
use init::shell::{self, BootFacts, Config, Finished, Outcome};
use init::status::{BootInfo, Mode, PermInfo};
use init::supervisor::Policy;

const SPEC: Spec = Spec {
    name: "init",
    about: "router7-rs PID 1: mounts, supervision, logs, web interface",
    uplink: false,
    lan: true,
    options: &[
        Opt {
            name: "supervise-only",
            value: None,
            help: "run as a plain supervisor: no mounts, no reboot (not PID 1)",
        },
        Opt { name: "manifest", value: Some("FILE"), help: "service manifest [default: /etc/router/services.json]" },
        Opt { name: "console", value: Some("FILE"), help: "mirror log lines here [PID 1: /dev/console]" },
        Opt { name: "watchdog", value: Some("FILE"), help: "hardware watchdog device [PID 1: /dev/watchdog]" },
        Opt { name: "http-port", value: Some("PORT"), help: "web interface port [default: 80]" },
        Opt { name: "http-addr", value: Some("IP,…"), help: "listen on these instead of the private addresses" },
        Opt {
            name: "image-password",
            value: Some("FILE"),
            help: "password copied to <perm>/router/password when absent [default: /etc/router/password]",
        },
        Opt { name: "version-file", value: Some("FILE"), help: "version line [default: /etc/router/version]" },
        Opt {
            name: "stop-timeout",
            value: Some("SECONDS"),
            help: "SIGTERM, then SIGKILL after this long [default: 10]",
        },
        Opt { name: "log-file-bytes", value: Some("BYTES"), help: "cap of each persisted log file [default: 1048576]" },
        Opt {
            name: "update-boot",
            value: Some("DIR"),
            help: "supervise-only: a folder standing in for the boot partition (updates)",
        },
        Opt {
            name: "update-slot-a",
            value: Some("FILE"),
            help: "supervise-only: a file standing in for slot a's root",
        },
        Opt {
            name: "update-slot-b",
            value: Some("FILE"),
            help: "supervise-only: a file standing in for slot b's root",
        },
        Opt {
            name: "cmdline",
            value: Some("FILE"),
            help: "supervise-only: read the kernel command line (slot, trial) here [default: /proc/cmdline]",
        },
        Opt {
            name: "check-manifest",
            value: Some("FILE"),
            help: "validate a manifest, print the result and exit (for mkimage)",
        },
    ],
};

fn parse_args(args: &runtime::cli::Args, mode: Mode) -> Result<Config, String> {
    let path = |name: &str, default: &str| PathBuf::from(args.value(name).unwrap_or(default));
    let http_port = match args.value("http-port") {
        Some(p) => p.parse().map_err(|_| format!("--http-port {p:?} is not a port"))?,
        None => 80,
    };
    let http_addrs = match args.value("http-addr") {
        Some(list) => Some(
            list.split(',')
                .map(|a| a.trim().parse::<IpAddr>().map_err(|_| format!("--http-addr: {a:?} is not an address")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let mut policy = Policy::default();
    if let Some(s) = args.value("stop-timeout") {
        let secs: f64 =
            s.parse().ok().filter(|v: &f64| v.is_finite() && *v > 0.0).ok_or(format!("--stop-timeout {s:?}"))?;
        policy.stop_timeout = Duration::from_secs_f64(secs);
    }
    let log_file_bytes = match args.value("log-file-bytes") {
        Some(b) => b.parse().map_err(|_| format!("--log-file-bytes {b:?}"))?,
        None => init::logfile::DEFAULT_CAP,
    };
    let pid1 = mode == Mode::Pid1;
    let console = args.value("console").map(PathBuf::from).or_else(|| pid1.then(|| "/dev/console".into()));
    Ok(Config {
        mode,
        manifest: path("manifest", "/etc/router/services.json"),
        perm: args.perm.clone(),
        run: args.run.clone(),
        console: console.clone(),
        watchdog: args.value("watchdog").map(PathBuf::from).or_else(|| pid1.then(|| "/dev/watchdog".into())),
        http_port,
        http_addrs,
        lan: args.lan.clone(),
        image_password: path("image-password", "/etc/router/password"),
        version_file: path("version-file", "/etc/router/version"),
        policy,
        log_file_bytes,
        kmsg: pid1,
        rescue: console
            .filter(|_| pid1)
            .map(|console| init::rescue::RescueConfig { console, program: "/perm/init/rescue".into() }),
        update: init::update::Options {
            boot: args.value("update-boot").map(PathBuf::from),
            roots: [args.value("update-slot-a").map(PathBuf::from), args.value("update-slot-b").map(PathBuf::from)],
        },
    })
}

fn boot_info(cmdline: &KernelCmdline) -> BootInfo {
    BootInfo {
        root: cmdline.root.clone(),
        slot: cmdline.slot,
        trial: cmdline.trial,
        cmdline_ignored: cmdline.ignored.clone(),
    }
}

fn check_manifest(file: &Path) -> ExitCode {
    match Manifest::load(file) {
        Ok(m) => {
            println!("{}: {} service(s), valid", file.display(), m.services.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn supervise_only(cfg: Config, cmdline_file: &Path) -> ExitCode {
    let cmdline = std::fs::read_to_string(cmdline_file).map(|t| KernelCmdline::parse(&t)).unwrap_or_default();
    let facts = BootFacts {
        hostname: rustix::system::uname().nodename().to_string_lossy().into_owned(),
        boot: boot_info(&cmdline),
        perm: PermInfo {
            path: cfg.perm.clone(),
            state: PermState::Folder,
            device: None,
            detail: format!("{} (a folder: supervise-only)", cfg.perm.display()),
            usage: None,
        },
    };
    match shell::run(cfg, facts) {
        Ok(Finished { outcome, watchdog }) => {
            if let Some(w) = watchdog {
                let _ = w.magic_close();
            }
            let what = match outcome {
                Outcome::Reboot => "reboot",
                Outcome::Poweroff => "power off",
                Outcome::Kexec => "kexec into the new kernel",
            };
            eprintln!("init: supervise-only: would now {what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("init: {e}");
            ExitCode::FAILURE
        }
    }
}

/// PID 1: fds 0-2 on the console, whatever the kernel gave us.
fn console_stdio(console: &Path) {
    if let Ok(fd) = std::fs::OpenOptions::new().read(true).append(true).open(console) {
        let _ = rustix::stdio::dup2_stdin(&fd);
        let _ = rustix::stdio::dup2_stdout(&fd);
        let _ = rustix::stdio::dup2_stderr(&fd);
    }
}

fn pid1(args: Result<runtime::cli::Args, String>) -> ! {
    // The kernel passes stray command-line words to init; never die of them.
    let (args, ignored) = match args {
        Ok(a) => (a, None),
        Err(e) => (SPEC.parse(std::iter::empty()).unwrap_or_else(|_| unreachable_defaults()), Some(e)),
    };
    let mut sys = RealSystem;
    let report = mounts::boot(&mut sys);
    let config = parse_args(&args, Mode::Pid1).or_else(|e| {
        // A bad option must not cost the router its services: run with the defaults.
        let defaults = SPEC.parse(std::iter::empty()).map_err(|_| e.clone())?;
        parse_args(&defaults, Mode::Pid1).map_err(|_| e)
    });
    let console = config.as_ref().ok().and_then(|c| c.console.clone()).unwrap_or_else(|| "/dev/console".into());
    console_stdio(&console);
    eprintln!("init: router7 PID 1 starting");
    if let Some(e) = ignored {
        eprintln!("init: ignoring arguments: {e}");
    }
    for (warning, text) in &report.messages {
        eprintln!("init: {}{text}", if *warning { "WARNING: " } else { "" });
    }
    let finished = match config {
        Ok(cfg) => {
            let facts = BootFacts {
                hostname: report.hostname.clone(),
                boot: boot_info(&report.cmdline),
                perm: PermInfo {
                    path: PathBuf::from(mounts::PERM),
                    state: report.perm.state,
                    device: report.perm.device.clone(),
                    detail: report.perm.detail.clone(),
                    usage: None,
                },
            };
            shell::run(cfg, facts).map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    let (outcome, watchdog) = match finished {
        Ok(f) => (f.outcome, f.watchdog),
        Err(e) => {
            eprintln!("init: FATAL: {e}; rebooting in 10 s");
            std::thread::sleep(Duration::from_secs(10));
            (Outcome::Reboot, None)
        }
    };
    power_down(outcome, watchdog)
}

/// The defaults, which parsing an empty command line always gives.
fn unreachable_defaults() -> runtime::cli::Args {
    eprintln!("init: FATAL: cannot build the default command line; rebooting in 10 s");
    std::thread::sleep(Duration::from_secs(10));
    power_down(Outcome::Reboot, None)
}

/// The last steps as PID 1: sync, unmount /perm, disarm the watchdog, reboot(2).
fn power_down(outcome: Outcome, watchdog: Option<shell::Watchdog>) -> ! {
    use rustix::mount::{MountFlags, UnmountFlags};
    rustix::fs::sync();
    if let Err(e) = rustix::mount::unmount(mounts::PERM, UnmountFlags::empty()) {
        eprintln!("init: unmount /perm: {e}; remounting it read-only");
        let _ = rustix::mount::mount_remount(mounts::PERM, MountFlags::RDONLY, "");
    }
    rustix::fs::sync();
    if let Some(w) = watchdog {
        let _ = w.magic_close();
    }
    let cmd = match outcome {
        Outcome::Reboot => rustix::system::RebootCommand::Restart,
        Outcome::Poweroff => rustix::system::RebootCommand::PowerOff,
        Outcome::Kexec => rustix::system::RebootCommand::Kexec,
    };
    eprintln!(
        "init: {}",
        match outcome {
            Outcome::Reboot => "rebooting",
            Outcome::Poweroff => "powering off",
            Outcome::Kexec => "rebooting into the new kernel (kexec)",
        }
    );
    if let Err(e) = rustix::system::reboot(cmd) {
        eprintln!("init: reboot(2): {e}");
        if outcome == Outcome::Kexec {
            // The same trial through the firmware: the one-shot boot, then a reset.
            eprintln!("init: kexec failed: {}; rebooting through the firmware", init::update::after_failed_kexec());
            rustix::fs::sync();
            if let Err(e) = rustix::system::reboot(rustix::system::RebootCommand::Restart) {
                eprintln!("init: reboot(2): {e}");
            }
        }
    }
    // PID 1 must never exit (the kernel would panic); wait for the end.
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn main() -> ExitCode {
    // One malloc arena, as every service (runtime::service::start): before any thread.
    runtime::sys::single_malloc_arena();
    let parsed = SPEC.parse(std::env::args().skip(1));
    let is_pid1 = rustix::process::getpid().as_raw_nonzero().get() == 1;
    let args = match parsed {
        Ok(a) => a,
        Err(CliError::Help(text)) if !is_pid1 => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(CliError::Usage(text)) if !is_pid1 => {
            eprintln!("{text}");
            return ExitCode::from(2);
        }
        Err(CliError::Help(t) | CliError::Usage(t)) => pid1(Err(t)),
    };
    if let Some(file) = args.value("check-manifest") {
        return check_manifest(Path::new(file));
    }
    if args.flag("supervise-only") {
        return match parse_args(&args, Mode::SuperviseOnly) {
            Ok(cfg) => supervise_only(cfg, Path::new(args.value("cmdline").unwrap_or("/proc/cmdline"))),
            Err(e) => {
                eprintln!("init: {e}");
                ExitCode::from(2)
            }
        };
    }
    if !is_pid1 {
        eprintln!("init: not PID 1; to supervise services here use --supervise-only (see --help)");
        return ExitCode::from(2);
    }
    pid1(Ok(args))
}
