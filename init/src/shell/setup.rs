//! The start and the end of init's loop: folders, the password, the manifest,
//! the control socket, the web listeners, the console, the watchdog; and what
//! is left to do once every service has stopped.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Makes `dir` with `mode`, owned by root and `gid` (errors are reported, not fatal).
fn make_dir(dir: &Path, mode: u32, gid: Option<u32>) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some(g) = gid {
        std::os::unix::fs::chown(dir, Some(0), Some(g))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// Copies the image's password to `<perm>/router/password` when that is absent,
/// readable by root and group `gid` (the manifest's `password_gid`: captured
/// and backupd check it); an existing file and its folder get that group.
pub fn ensure_password(
    perm: &Path,
    image_password: &Path,
    gid: u32,
    root: bool,
) -> Result<(PathBuf, Option<String>), String> {
    let dir = perm.join("router");
    let file = dir.join("password");
    make_dir(&dir, 0o750, root.then_some(gid)).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut said = None;
    if !file.exists() {
        let text = std::fs::read(image_password).map_err(|e| format!("{}: {e}", image_password.display()))?;
        runtime::statefile::prepare(&file, &text, 0o640)
            .and_then(runtime::statefile::PreparedWrite::commit)
            .map_err(|e| e.to_string())?;
        said = Some(format!("copied the image's password from {} to {}", image_password.display(), file.display()));
    }
    if root {
        std::os::unix::fs::chown(&file, Some(0), Some(gid)).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((file, said))
}

/// Runs init until a shutdown has stopped every service.
pub fn run(cfg: Config, facts: BootFacts) -> Result<Finished, Box<dyn std::error::Error>> {
    // Before any thread exists, so every thread inherits the blocked signals.
    let mut ev =
        EventLoop::with_signals(&[Signal::Chld, Signal::Term, Signal::Int, Signal::Usr1, Signal::Usr2, Signal::Hup])?;
    let now = runtime::clock::now();
    let root = rustix::process::geteuid().is_root();
    if rustix::process::getpid().as_raw_nonzero().get() != 1 {
        // Orphans of our services come to us, not to the real init.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    }
    let mut notes: Vec<String> = Vec::new();
    let (manifest, manifest_error) = match Manifest::load(&cfg.manifest) {
        Ok(m) => (m, None),
        Err(e) => {
            notes.push(format!("MANIFEST NOT USED, no service runs: {e}"));
            let gid = manifest::DEFAULT_SHARED_GID;
            (Manifest { services: Vec::new(), shared_gid: gid, password_gid: gid }, Some(e.to_string()))
        }
    };
    let shared_gid = manifest.shared_gid;
    for (dir, mode, gid) in
        [(cfg.perm.join("init/logs"), 0o750, None), (cfg.run.join("router"), 0o1770, Some(shared_gid))]
    {
        if let Err(e) = make_dir(&dir, mode, if root { gid } else { None }) {
            notes.push(format!("{}: {e}", dir.display()));
        }
    }
    let password_file = match ensure_password(&cfg.perm, &cfg.image_password, manifest.password_gid, root) {
        Ok((file, said)) => {
            notes.extend(said);
            file
        }
        Err(e) => {
            notes.push(format!("web password: {e}"));
            cfg.perm.join("router/password")
        }
    };
    // mkimage writes {"version","build_time"} (pretty-printed JSON); older
    // images a plain line.
    let version = std::fs::read_to_string(&cfg.version_file)
        .ok()
        .map(|t| bootslot::api::ImageVersion::parse(&t).to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown version".into());

    let logs = Arc::new(LogStore::new());
    logs.add("init", INIT_LOG_LINES);
    logs.add("kernel", KERNEL_LOG_LINES);
    let mut files = HashMap::new();
    let log_dir = cfg.perm.join("init/logs");
    for (name, lines) in [("init", INIT_LOG_LINES), ("kernel", KERNEL_LOG_LINES)]
        .into_iter()
        .chain(manifest.services.iter().map(|s| (s.name.as_str(), s.log_lines)))
    {
        logs.add(name, lines);
        files.insert(name.to_owned(), LogFile::new(log_dir.join(format!("{name}.log")), cfg.log_file_bytes));
    }

    let shared = Arc::new(Shared::new(
        SharedInit {
            hostname: facts.hostname.clone(),
            version: version.clone(),
            mode: cfg.mode,
            boot: facts.boot.clone(),
            perm: facts.perm.clone(),
            run_dir: cfg.run.clone(),
        },
        Arc::clone(&logs),
        ev.waker(),
        now,
    ));
    let control = Control::new("init", Some(cfg.perm.join("init/events.jsonl")), ev.waker());
    control.set_condition(
        "ManifestValid",
        Some(manifest_error.is_none()),
        if manifest_error.is_none() { "Parsed" } else { "Invalid" },
        manifest_error.as_deref().unwrap_or("services.json parsed and validated"),
    );
    let persistent = facts.perm.state != crate::mounts::PermState::Temporary;
    control.set_condition(
        "PermPersistent",
        Some(persistent),
        if persistent { "Mounted" } else { "Temporary" },
        &facts.perm.detail,
    );
    let update_setup = crate::update::Setup {
        dir: cfg.perm.join("init"),
        cmdline: crate::cmdline::KernelCmdline {
            root: facts.boot.root.clone(),
            slot: facts.boot.slot,
            trial: facts.boot.trial,
            ignored: Vec::new(),
        },
        version_file: cfg.version_file.clone(),
        hostname: facts.hostname.clone(),
        mode: cfg.mode,
        devices: if cfg.mode == Mode::Pid1 {
            crate::update::Devices::from_root(facts.boot.root.as_deref(), Path::new("/sys"), Path::new("/dev"))
        } else {
            crate::update::Devices::from_options(&cfg.update)
        },
    };
    crate::update::Updater::start(update_setup, Arc::clone(&shared), control.clone());
    let socket = runtime::control::socket_path(&cfg.run, "init");
    // One HTTP server thread for the control socket and the web interface.
    let server = runtime::httpd::Server::new()?;
    control.listen_with(&server, &socket, Some(crate::control_api::extension(control.clone(), Arc::clone(&shared))))?;
    ev.attach_control(control.clone());

    let auth = Arc::new(RwLock::new(None));
    let site = web::Site::new(Arc::clone(&shared), Arc::clone(&auth), web::new_token());
    let handler: runtime::httpd::Handler = Arc::new(move |request| site.handle(request));
    // Forms are small; update uploads stream from the connection (web::MAX_BODY).
    let limits = runtime::httpd::Limits { max_body: web::MAX_BODY, ..runtime::httpd::Limits::default() };
    let pool = ListenerSet::with_limits(&server, cfg.http_port, handler, limits);

    let console = match &cfg.console {
        Some(path) => match open_console(path) {
            Ok(fd) => Some(Console { fd, queue: ConsoleQueue::new(crate::console::DEFAULT_LIMIT) }),
            Err(e) => {
                notes.push(format!("console {}: {e}", path.display()));
                None
            }
        },
        None => None,
    };
    let watchdog = match &cfg.watchdog {
        Some(path) if path.exists() => match Watchdog::open(path) {
            Ok(w) => {
                notes.push(format!("watchdog {} armed, pinged every {:?}", path.display(), WATCHDOG_INTERVAL));
                Some(w)
            }
            Err(e) => {
                notes.push(format!("watchdog {}: {e}", path.display()));
                None
            }
        },
        _ => None,
    };
    let kmsg = if cfg.kmsg {
        use rustix::fs::{Mode as FsMode, OFlags};
        match rustix::fs::open("/dev/kmsg", OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, FsMode::empty()) {
            Ok(fd) => {
                ev.registry().register(&mut SourceFd(&fd.as_raw_fd()), KMSG_TOKEN, Interest::READABLE)?;
                Some(fd)
            }
            Err(e) => {
                notes.push(format!("/dev/kmsg: {e}"));
                None
            }
        }
    } else {
        None
    };
    let rescue = match &cfg.rescue {
        Some(rc) => match crate::rescue::RescueShell::new(rc.clone(), password_file.clone()) {
            Ok(r) => {
                ev.registry().register(&mut SourceFd(&r.input().as_raw_fd()), CONSOLE_IN_TOKEN, Interest::READABLE)?;
                Some(r)
            }
            Err(e) => {
                notes.push(format!("console input: {e}"));
                None
            }
        },
        None => None,
    };

    let autostart: Vec<bool> = manifest.services.iter().map(|s| s.autostart).collect();
    let mut init = Init {
        spawn_cfg: spawn::SpawnConfig {
            perm: cfg.perm.clone(),
            run: cfg.run.clone(),
            drop_privileges: root,
            last_cap: spawn::last_cap(),
        },
        sup: Supervisor::new(cfg.policy, &autostart, now),
        specs: manifest.services,
        autostart,
        shared,
        logs,
        control,
        files,
        console,
        console_timer: false,
        pipes: HashMap::new(),
        busy: BTreeSet::new(),
        next_token: FIRST_PIPE_TOKEN,
        kmsg,
        auth,
        password_file,
        pool: Some(pool),
        listener_errors: BTreeMap::new(),
        watchdog,
        watchdog_withheld: false,
        shutdown: None,
        manifest_error,
        dirty: true,
        last_now: now,
        rescue,
        cfg,
    };
    init.say(
        None,
        format!(
            "router7 init, {version}, {} mode, {} service(s)",
            if init.cfg.mode == Mode::Pid1 { "PID 1" } else { "supervise-only" },
            init.specs.len()
        ),
    );
    for note in notes {
        init.say(None, note);
    }
    if !root {
        init.say(None, "not root: services run as init's own user, without capability changes".into());
    }
    if init.kmsg.is_some() {
        init.busy.insert(KMSG_TOKEN);
    }
    init.refresh();
    let actions = init.sup.start_all(&init.autostart.clone(), now);
    init.apply(ev.registry(), actions, now);
    init.publish();
    ev.add_timer(now + WATCHDOG_INTERVAL, TIMER_WATCHDOG);
    ev.add_timer(now + LISTENER_INTERVAL, TIMER_LISTENERS);
    ev.add_timer(now + REAP_INTERVAL, TIMER_REAP);
    if let Some(w) = init.watchdog.as_mut() {
        let _ = w.ping();
    }
    ev.run(&mut init)?;
    Ok(init.finish(ev.registry()))
}

impl Init {
    /// After the loop: the last output, the pid files, the listeners.
    pub(super) fn finish(mut self, registry: &Registry) -> Finished {
        let outcome = self.shutdown.unwrap_or(Outcome::Reboot);
        let tokens: Vec<Token> = self.pipes.keys().copied().collect();
        for t in tokens {
            // Services are gone; what is left in their pipes is read once more.
            self.read_pipe(registry, t);
        }
        self.pool = None;
        self.publish();
        self.say(None, format!("every service stopped; {}", outcome.name()));
        for f in self.files.values_mut() {
            f.flush();
        }
        // A blocking last write: these lines matter and nothing else is left to do.
        if let Some(c) = self.console.as_mut() {
            let deadline = runtime::clock::now() + Duration::from_secs(2);
            while !c.queue.is_empty() && runtime::clock::now() < deadline {
                match rustix::io::write(&c.fd, c.queue.pending()) {
                    Ok(n) => c.queue.consumed(n),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        Finished { outcome, watchdog: self.watchdog.take() }
    }
}
