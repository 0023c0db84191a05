//! mkimage: builds the router7-rs disk image and runs it under QEMU.
//! See mkimage/README.md; `mkimage --help` lists the commands.
#![forbid(unsafe_code)]

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, anyhow, bail};
use mkimage::image::{self, Inputs, Target};
use mkimage::layout::{DEFAULT_DISK_SIZE, Slot};
use mkimage::password;
use mkimage::progress::Progress;
use mkimage::qemu::{Console, Machine, NetBackend};

const HELP: &str = "\
mkimage: builds the router7-rs disk image and runs it under QEMU.

USAGE:
  mkimage build --kernel BZIMAGE --bins DIR (--out FILE [--size SIZE] | --device DEV [--yes]) [OPTIONS]
  mkimage run IMAGE [--uplink user|tap:IF|none] [--lan tap:IF|none] [--memory MIB] [--snapshot] [--console terminal|stdout]
  mkimage boot-once IMAGE [COMMAND | --clear]
  mkimage update --host HOST (--image IMAGE | --kernel BZIMAGE --bins DIR [BUILD OPTIONS]) [UPDATE OPTIONS]
  mkimage rollback --host HOST [UPDATE OPTIONS]
  mkimage capture [--host HOST] [--iface NAME] [--replay N] [PASSWORD OPTIONS]   (pcapng on stdout)
  mkimage backup [--host HOST] [-o FILE] [PASSWORD OPTIONS]
  mkimage restore [--host HOST] [--yes] [PASSWORD OPTIONS] FILE

BUILD OPTIONS:
  --kernel BZIMAGE       the kernel (kernel-config/build prints its path)
  --bins DIR             the static binaries (ci/build-static prints the folder)
  --out FILE             write an image file (replaced if it exists; sparse)
  --size SIZE            its size: bytes or with K/M/G suffix (default 1G)
  --device DEV           write onto a block device, e.g. /dev/sdb (asks first)
  --yes                  do not ask before overwriting the device
  --hostname NAME        the router's host name (default router7)
  --password-file FILE   the password file (default ~/.config/router7-rs/<hostname>/password;
                         generated when missing)
  --interfaces FILE      /perm/interfaces.json (default ~/.config/router7-rs/<hostname>/interfaces.json
                         when present, else QEMU's two NICs)
  --default-slot a|b     the boot loader's default slot (default a)
  --services A,B,...     only these services (default: every one that is built and implemented)
  --version TEXT         version for /etc/router/version (default: $ROUTER7_VERSION or git describe)
  --report FILE          write the build report as JSON (default FILE.json next to --out)

  Timestamps come from $SOURCE_DATE_EPOCH (default: now): the same inputs and
  SOURCE_DATE_EPOCH give the same image bytes.

BOOT-ONCE:
  Shows, sets or clears syslinux's one-shot boot command on the image (file or
  device): e.g. \"b router.trial=1\" boots slot b once with that argument added,
  then the default slot again (a trial boot through the firmware, issue #11).

UPDATE, ROLLBACK:
  update writes the image's root and kernel into the router's inactive slot
  (progress bars; each upload's SHA-256 is checked), activates it (kexec unless
  --no-kexec) and waits for the trial boot: \"updated to X\" once the new slot is
  healthy and the loader's default, or \"rolled back to Y: why\" when the router
  came back on its old slot. Without --image it builds one from the BUILD
  OPTIONS first. rollback switches to the other slot (if the router says it
  may be activated), with the same trial. Exit status: 0 updated, 1 error,
  3 rolled back.
  Both first download a backup of /perm (backupd, port 8077 at the --host
  address, same password), checked completely, into the backup folder; when
  that fails they stop with exit status 1 and nothing sent to the router.
  --host HOST[:PORT]     the router (its LAN address or name)
  --hostname NAME        whose password to use (default router7)
  --password-file FILE   the password (default ~/.config/router7-rs/<hostname>/password)
  --no-kexec             activate through a firmware reboot (one-shot boot)
  --trial-seconds N      how long the new slot has to become healthy (default 120)
  --wait SECONDS         how long to wait for the outcome (default trial + 300)
  --backup-dir DIR       where the backup goes, as backup-<host>-<time>.tar.gz
                         (default ~/.config/router7-rs/<hostname>/backups/; created)
  --keep-backups N       then keep only the N newest backup-*.tar.gz there
                         (default 5; 0 keeps all; other files are left alone)
  --backup-wait SECONDS  how long to retry while the router refuses the
                         backup's connection, as right after a reboot (default 30)
  --no-backup            update or roll back without a backup first

CAPTURE, BACKUP, RESTORE:
  capture streams the router's packet ring buffer and then live packets as
  pcapng (captured, port 5022): mkimage capture | wireshark -k -i -
  --iface uplink0|lan0|all, --replay N (0 = live only; default: all buffered).
  backup downloads /perm as a gzip'd tar (backupd, port 8077) to FILE (default
  backup-<host>-<time>.tar.gz), checked completely before it gets that name.
  restore checks FILE as the router will, asks (unless --yes), uploads it and
  prints the router's summary: /perm becomes what FILE holds.
  --host HOST[:PORT]     the router (default router7)
  --hostname NAME        whose password to use (default: the host without port)
  --password-file FILE   the password (default ~/.config/router7-rs/<hostname>/password)

RUN:
  Boots the disk through SeaBIOS and syslinux in software emulation, serial
  console on the terminal (Ctrl-A X quits), uplink0 on QEMU's user network
  (or a tap), lan0 unplugged (or a tap), i6300esb watchdog.
";

/// Command-line arguments: `--name value`, `--name=value` and flags.
struct Args {
    rest: Vec<String>,
}

impl Args {
    fn take_flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != name);
        before != self.rest.len()
    }

    fn take(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(i) = self.rest.iter().position(|a| a.starts_with(&prefix)) {
            let a = self.rest.remove(i);
            return Ok(Some(a[prefix.len()..].to_owned()));
        }
        if let Some(i) = self.rest.iter().position(|a| a == name) {
            if i + 1 >= self.rest.len() {
                bail!("{name} needs a value");
            }
            let v = self.rest.remove(i + 1);
            self.rest.remove(i);
            return Ok(Some(v));
        }
        Ok(None)
    }

    fn positional(&mut self) -> Option<String> {
        let i = self.rest.iter().position(|a| !a.starts_with("--"))?;
        Some(self.rest.remove(i))
    }

    fn finish(self) -> Result<()> {
        if let Some(a) = self.rest.first() {
            bail!("unexpected argument {a:?} (see mkimage --help)");
        }
        Ok(())
    }
}

fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = digits.parse().with_context(|| format!("bad size {text:?}"))?;
    n.checked_mul(mult).ok_or_else(|| anyhow!("size {text:?} is too large"))
}

fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number")),
        Err(_) => {
            Ok(runtime::clock::wall_now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
        }
    }
}

fn default_version() -> String {
    if let Some(v) = std::env::var("ROUTER7_VERSION").ok().filter(|v| !v.trim().is_empty()) {
        return v.trim().to_owned();
    }
    let git = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty());
    match git {
        Some(g) => format!("{}+{g}", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_owned(),
    }
}

fn confirm_device(device: &Path) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("writing to {} needs a confirmation: run on a terminal or pass --yes", device.display());
    }
    eprint!(
        "This erases everything on {}. Type the device name ({}) to continue: ",
        device.display(),
        device.display()
    );
    std::io::stderr().flush().ok();
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if line.trim() != device.to_string_lossy() {
        bail!("not confirmed; nothing was written");
    }
    Ok(())
}

/// Asks a yes/no question on the terminal; no terminal means no.
fn confirm(question: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{question} needs a confirmation: run on a terminal or pass --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn build(mut args: Args) -> Result<()> {
    let kernel = args.take("--kernel")?.ok_or_else(|| anyhow!("--kernel is required (kernel-config/build)"))?;
    let bins = args.take("--bins")?.ok_or_else(|| anyhow!("--bins is required (ci/build-static)"))?;
    let out = args.take("--out")?;
    let device = args.take("--device")?;
    let size = args.take("--size")?;
    let yes = args.take_flag("--yes");
    let hostname = args.take("--hostname")?.unwrap_or_else(|| "router7".to_owned());
    let password_file = args.take("--password-file")?;
    let interfaces = args.take("--interfaces")?;
    let default_slot = match args.take("--default-slot")? {
        Some(s) => Slot::parse(&s).ok_or_else(|| anyhow!("--default-slot must be a or b"))?,
        None => Slot::A,
    };
    let only_services = args
        .take("--services")?
        .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect());
    let version = args.take("--version")?.unwrap_or_else(default_version);
    let report_path = args.take("--report")?;
    args.finish()?;

    if hostname.is_empty() || hostname.len() > 63 || !hostname.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        bail!("--hostname {hostname:?}: use letters, digits and '-' (at most 63)");
    }
    let target = match (out, device) {
        (Some(path), None) => {
            let size = size.map(|s| parse_size(&s)).transpose()?.unwrap_or(DEFAULT_DISK_SIZE);
            Target::File { path: PathBuf::from(path), size }
        }
        (None, Some(path)) => {
            if size.is_some() {
                bail!("--size applies to --out only: a device is used whole");
            }
            let path = PathBuf::from(path);
            if !yes {
                confirm_device(&path)?;
            }
            Target::Device { path }
        }
        _ => bail!("give exactly one of --out FILE and --device DEV"),
    };
    let config_dir = password::config_dir(&hostname);
    let password_file = match password_file {
        Some(p) => PathBuf::from(p),
        None => config_dir.as_ref().map_err(|e| anyhow!("{e}"))?.join("password"),
    };
    let password = password::load_or_create(&password_file)?;
    let interfaces = interfaces.map(PathBuf::from).or_else(|| {
        let p = config_dir.ok()?.join("interfaces.json");
        p.is_file().then_some(p)
    });
    let inputs = Inputs {
        kernel: PathBuf::from(kernel),
        bins: PathBuf::from(bins),
        hostname,
        password,
        interfaces,
        epoch: source_date_epoch()?,
        version,
        default_slot,
        only_services,
    };
    let report = image::build(&inputs, &target, &Progress::stderr())?;
    let json = serde_json::to_string_pretty(&report)? + "\n";
    let report_path = report_path.map(PathBuf::from).or_else(|| match &target {
        Target::File { path, .. } => Some(path.with_extension("json")),
        Target::Device { .. } => None,
    });
    if let Some(p) = &report_path {
        std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!("mkimage: wrote {} ({} MiB, disk signature {})", report.target, report.disk_size >> 20, report.disk_id);
    eprintln!(
        "  services: {}",
        if report.services.is_empty() { "none".to_owned() } else { report.services.join(", ") }
    );
    for l in &report.left_out {
        eprintln!("  left out: {} — {}", l.name, l.reason);
    }
    if report.init_placeholder {
        eprintln!("  init: still the placeholder of issue #9 (it exits at once; the kernel then panics)");
    }
    eprintln!("  password: {}{}", report.password_file, if report.password_created { " (generated now)" } else { "" });
    if let Some(p) = report_path {
        eprintln!("  report: {}", p.display());
    }
    Ok(())
}

fn run(mut args: Args) -> Result<()> {
    let image = args.positional().ok_or_else(|| anyhow!("run needs the image file"))?;
    let mut m = Machine::new(Path::new(&image));
    if let Some(u) = args.take("--uplink")? {
        m.uplink = NetBackend::parse(&u)?;
    }
    if let Some(l) = args.take("--lan")? {
        m.lan = NetBackend::parse(&l)?;
    }
    if let Some(mem) = args.take("--memory")? {
        m.memory_mib = mem.parse().with_context(|| format!("--memory {mem:?}"))?;
    }
    if let Some(c) = args.take("--console")? {
        m.console = match c.as_str() {
            "terminal" => Console::Terminal,
            "stdout" => Console::Stdout,
            _ => bail!("--console must be terminal or stdout"),
        };
    }
    m.snapshot = args.take_flag("--snapshot");
    args.finish()?;
    if !Path::new(&image).is_file() {
        bail!("{image}: no such image file (mkimage build --out {image} …)");
    }
    if m.console == Console::Terminal {
        eprintln!("mkimage: booting {image} under QEMU (software emulation); Ctrl-A X quits");
    }
    let status = Command::new("qemu-system-x86_64")
        .args(m.args())
        .status()
        .context("cannot start qemu-system-x86_64 (ci/setup installs it)")?;
    if !status.success() {
        bail!("qemu-system-x86_64 exited with {status}");
    }
    Ok(())
}

fn boot_once(mut args: Args) -> Result<()> {
    let image = args.positional().ok_or_else(|| anyhow!("boot-once needs the image file or device"))?;
    let clear = args.take_flag("--clear");
    let command = args.positional();
    args.finish()?;
    let file =
        std::fs::OpenOptions::new().read(true).write(true).open(&image).with_context(|| format!("opening {image}"))?;
    let boot = mkimage::mbr::Region::partition(&file, 1)?;
    match (command, clear) {
        (Some(_), true) => bail!("give a command or --clear, not both"),
        (Some(cmd), false) => {
            mkimage::adv::set_boot_once(boot, Some(&cmd))?;
            eprintln!("mkimage: the next boot of {image} runs \"{cmd}\" once");
        }
        (None, true) => {
            mkimage::adv::set_boot_once(boot, None)?;
            eprintln!("mkimage: no one-shot boot on {image}");
        }
        (None, false) => match mkimage::adv::boot_once(boot)? {
            Some(cmd) => println!("{cmd}"),
            None => eprintln!("mkimage: no one-shot boot set on {image}"),
        },
    }
    file.sync_all().with_context(|| format!("syncing {image}"))?;
    Ok(())
}

/// Exit status of `update`/`rollback` when the router rolled back.
const EXIT_ROLLED_BACK: u8 = 3;

/// What `update` and `rollback` need: the router, its password, the backup to take first.
struct UpdateSetup {
    client: mkimage::update::Client,
    opts: mkimage::update::Options,
    hostname: String,
    host: String,
    password: String,
    /// The backup to take first; `None`: `--no-backup`.
    backup: Option<mkimage::backups::Plan>,
}

fn update_options(args: &mut Args) -> Result<UpdateSetup> {
    let host = args.take("--host")?.ok_or_else(|| anyhow!("--host is required (the router's address)"))?;
    let hostname = args.take("--hostname")?.unwrap_or_else(|| "router7".to_owned());
    let password_file = match args.take("--password-file")? {
        Some(p) => PathBuf::from(p),
        None => password::config_dir(&hostname)?.join("password"),
    };
    let text = std::fs::read_to_string(&password_file).with_context(|| {
        format!("the router's password ({}; mkimage build keeps it there)", password_file.display())
    })?;
    let password = text.lines().next().unwrap_or("").trim().to_owned();
    let kexec = !args.take_flag("--no-kexec");
    let trial_seconds = match args.take("--trial-seconds")? {
        Some(s) => s.parse().ok().filter(|t| bootslot::api::TRIAL_SECONDS_RANGE.contains(t)).ok_or_else(|| {
            let r = bootslot::api::TRIAL_SECONDS_RANGE;
            anyhow!("--trial-seconds {s:?}: {}..={}", r.start(), r.end())
        })?,
        None => bootslot::api::DEFAULT_TRIAL_SECONDS,
    };
    let wait = match args.take("--wait")? {
        Some(s) => s.parse().with_context(|| format!("--wait {s:?}"))?,
        None => trial_seconds + 300,
    };
    let no_backup = args.take_flag("--no-backup");
    let backup_dir = args.take("--backup-dir")?;
    let keep = args.take("--keep-backups")?;
    let backup_wait = args.take("--backup-wait")?;
    let backup = if no_backup {
        if backup_dir.is_some() || keep.is_some() || backup_wait.is_some() {
            bail!("--no-backup takes no backup: drop --backup-dir, --keep-backups and --backup-wait, or --no-backup");
        }
        None
    } else {
        let dir = match backup_dir {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            Some(_) => bail!("--backup-dir needs a folder"),
            None => mkimage::backups::default_dir(&hostname).context("the backup folder (or pass --backup-dir)")?,
        };
        let keep = match keep {
            Some(n) => n.parse().with_context(|| format!("--keep-backups {n:?}: a number (0 keeps all)"))?,
            None => mkimage::backups::DEFAULT_KEEP,
        };
        let wait = match backup_wait {
            Some(s) => {
                std::time::Duration::from_secs(s.parse().with_context(|| format!("--backup-wait {s:?}: seconds"))?)
            }
            None => mkimage::backups::DEFAULT_WAIT,
        };
        Some(mkimage::backups::Plan { dir, keep, wait })
    };
    let client = mkimage::update::Client::new(&host, &password);
    let opts = mkimage::update::Options {
        kexec,
        trial_seconds,
        wait: std::time::Duration::from_secs(wait),
        progress: Progress::stderr(),
    };
    Ok(UpdateSetup { client, opts, hostname, host, password, backup })
}

/// The backup of /perm before `command` changes anything: taken, or the
/// command stops here with nothing sent to the router's update endpoint.
fn backup_first(setup: &UpdateSetup, command: &str) -> Result<()> {
    let Some(plan) = &setup.backup else {
        eprintln!("mkimage: --no-backup: no backup of /perm is taken before this {command}");
        return Ok(());
    };
    let waiting = |line: &str| eprintln!("mkimage: {line}");
    let taken = mkimage::backups::take(&setup.host, &setup.password, plan, runtime::clock::wall_now(), waiting)
        .map_err(|e| {
            anyhow!(
                "{e}; the {command} was not started and nothing was sent to the router. \
                 Fix that, or pass --no-backup to {command} without a backup"
            )
        })?;
    let got = &taken.download;
    eprintln!("mkimage: backed up /perm to {} ({})", got.path.display(), got.summary());
    for p in &taken.removed {
        eprintln!("mkimage: removed the old backup {} (keeping the {} newest)", p.display(), plan.keep);
    }
    for (p, why) in &taken.not_removed {
        eprintln!("mkimage: warning: cannot remove the old backup {}: {why}", p.display());
    }
    Ok(())
}

fn report_outcome(outcome: &mkimage::update::Outcome) -> ExitCode {
    println!("{outcome}");
    match outcome {
        mkimage::update::Outcome::Updated { .. } => ExitCode::SUCCESS,
        mkimage::update::Outcome::RolledBack { .. } => ExitCode::from(EXIT_ROLLED_BACK),
    }
}

fn update_cmd(mut args: Args) -> Result<ExitCode> {
    let setup = update_options(&mut args)?;
    let hostname = setup.hostname.clone();
    let image = match args.take("--image")? {
        Some(path) => {
            args.finish()?;
            mkimage::update::read_image(Path::new(&path))?
        }
        None => {
            // Build first, with the build's own options (the same host name, so the same password).
            let dir = std::env::temp_dir().join(format!("mkimage-update-{}", std::process::id()));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let out = dir.join("update.img");
            let mut rest = std::mem::take(&mut args.rest);
            rest.extend(["--out".to_owned(), out.display().to_string(), "--hostname".to_owned(), hostname]);
            let built = build(Args { rest }).and_then(|()| Ok(mkimage::update::read_image(&out)?));
            let _ = std::fs::remove_dir_all(&dir);
            built?
        }
    };
    eprintln!(
        "mkimage: image {} (slot {} of it): root {} bytes, kernel {} bytes",
        image.version,
        image.slot,
        image.root.len(),
        image.kernel.len()
    );
    backup_first(&setup, "update")?;
    Ok(report_outcome(&mkimage::update::update(&setup.client, &image, &setup.opts)?))
}

fn rollback_cmd(mut args: Args) -> Result<ExitCode> {
    let setup = update_options(&mut args)?;
    args.finish()?;
    backup_first(&setup, "rollback")?;
    Ok(report_outcome(&mkimage::update::rollback(&setup.client, &setup.opts)?))
}

/// The router and its password for capture, backup and restore. The password
/// is read, never generated: a new one would not be the router's.
fn remote_options(args: &mut Args) -> Result<(String, String)> {
    let host = args.take("--host")?.unwrap_or_else(|| "router7".to_owned());
    let hostname = match args.take("--hostname")? {
        Some(h) => h,
        None => mkimage::backups::host_of(&host).to_owned(),
    };
    let password_file = match args.take("--password-file")? {
        Some(p) => PathBuf::from(p),
        None => password::config_dir(&hostname)?.join("password"),
    };
    let text = std::fs::read_to_string(&password_file).with_context(|| {
        format!("the router's password ({}; mkimage build keeps it there)", password_file.display())
    })?;
    let password = text.lines().next().unwrap_or("").trim().to_owned();
    if password.is_empty() {
        bail!("{}: empty password", password_file.display());
    }
    Ok((host, password))
}

fn capture_cmd(mut args: Args) -> Result<ExitCode> {
    let (host, password) = remote_options(&mut args)?;
    let iface = args.take("--iface")?;
    let replay = match args.take("--replay")? {
        Some(n) => Some(n.parse::<u32>().with_context(|| format!("--replay {n:?}"))?),
        None => None,
    };
    args.finish()?;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        bail!("the capture is binary pcapng: pipe it, e.g. `mkimage capture | wireshark -k -i -` or `| tshark -r -`");
    }
    let options = captured::client::StreamOptions { iface, replay };
    let bytes = captured::client::stream(&host, &password, &options, &mut stdout.lock())?;
    eprintln!("mkimage: capture ended after {bytes} bytes");
    Ok(ExitCode::SUCCESS)
}

fn backup_cmd(mut args: Args) -> Result<ExitCode> {
    let (host, password) = remote_options(&mut args)?;
    let out = match args.take("-o")?.or(args.take("--out")?) {
        Some(p) => PathBuf::from(p),
        None => {
            mkimage::backups::next_path(Path::new(""), mkimage::backups::host_of(&host), runtime::clock::wall_now())
        }
    };
    args.finish()?;
    let got = backupd::client::download(&host, &password, &out)?;
    println!("{}: {}", got.path.display(), got.summary());
    Ok(ExitCode::SUCCESS)
}

fn restore_cmd(mut args: Args) -> Result<ExitCode> {
    let (host, password) = remote_options(&mut args)?;
    let yes = args.take_flag("--yes");
    let file = PathBuf::from(args.positional().ok_or_else(|| anyhow!("restore needs the backup FILE"))?);
    args.finish()?;
    if !yes
        && !confirm(&format!("Replace /perm on {host} with {}? Files it does not hold are removed.", file.display()))?
    {
        bail!("not restored");
    }
    let summary = backupd::client::restore(&host, &password, &file)?;
    println!("{summary:#}");
    eprintln!(
        "mkimage: restored; reboot the router so no service writes old state back (POST /reboot, or routerctl reboot)"
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let mut all: Vec<String> = std::env::args().skip(1).collect();
    if all.is_empty() || all.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return if all.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    }
    let command = all.remove(0);
    let args = Args { rest: all };
    let result = match command.as_str() {
        "build" => build(args).map(|()| ExitCode::SUCCESS),
        "run" => run(args).map(|()| ExitCode::SUCCESS),
        "boot-once" => boot_once(args).map(|()| ExitCode::SUCCESS),
        "update" => update_cmd(args),
        "rollback" => rollback_cmd(args),
        "capture" => capture_cmd(args),
        "backup" => backup_cmd(args),
        "restore" => restore_cmd(args),
        other => Err(anyhow!(
            "unknown command {other:?} (build, run, boot-once, update, rollback, capture, backup, restore; see --help)"
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mkimage: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("700M").unwrap(), 700 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn args_take_both_forms_and_reject_leftovers() {
        let mut a = Args { rest: ["--out", "x.img", "--size=2G", "--yes", "extra"].map(String::from).to_vec() };
        assert_eq!(a.take("--out").unwrap().as_deref(), Some("x.img"));
        assert_eq!(a.take("--size").unwrap().as_deref(), Some("2G"));
        assert!(a.take_flag("--yes"));
        assert!(a.take("--hostname").unwrap().is_none());
        assert!(a.finish().is_err(), "extra is left over");
        let mut b = Args { rest: vec!["--kernel".into()] };
        assert!(b.take("--kernel").is_err());
    }
}
