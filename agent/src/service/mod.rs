//! `steward-agent install` / `uninstall`: the agent as a system service.
//!
//! One [`ServiceManager`] per service manager, one file each, and one table, [`MANAGERS`]:
//!
//! | manager | file | used where |
//! | --- | --- | --- |
//! | systemd | `systemd.rs` | `/run/systemd/system` exists (an image: `lib/systemd/systemd`) |
//! | OpenRC | `openrc.rs` | `/run/openrc` exists (an image: `sbin/openrc-run`) — Alpine gateways |
//! | launchd | `launchd.rs` | macOS |
//! | Windows service | `windows.rs` | Windows |
//!
//! What every manager shares lives here: the privilege check, the binary and config placement,
//! the state directory, and running the manager's commands. Install plans first and acts after,
//! so a refusal (a config changed locally, no privilege) changes nothing. Both commands are
//! idempotent: a second install rewrites nothing that is already right, and an uninstall of
//! what is not installed succeeds saying so.
//!
//! `--image DIR` acts on an operating-system image instead of the running host: every path is
//! taken under DIR, the service is enabled offline where the manager can (systemd), and nothing
//! is started. The tests use it with a temporary directory.

mod launchd;
mod openrc;
mod systemd;
#[cfg(any(windows, test))]
mod windows;
#[cfg(windows)]
pub use windows::run_service;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::config::Config;

/// The service's name with every manager (the Windows service and launchd label differ; see
/// their files).
pub const SERVICE_NAME: &str = "steward-agent";
/// The unprivileged user the agent runs as where the manager supports it (systemd, OpenRC).
pub const SERVICE_USER: &str = "steward-agent";
/// The config every installed agent reads, as packaged.
pub const DEFAULT_CONFIG: &str = include_str!("../../../packaging/agent.toml");
/// Where the Debian package puts the binary; an install from elsewhere copies itself to
/// [`local_binary`]. Windows has no package (and no `--image`), so there the running program is
/// never this path and the binary is always [`local_binary`].
pub const PACKAGED_BINARY: &str = "/usr/bin/steward-agent";
#[cfg(not(windows))]
pub const LOCAL_BINARY: &str = "/usr/local/bin/steward-agent";
/// On Windows the fallback of [`local_binary`], which follows %ProgramFiles%.
#[cfg(windows)]
pub const LOCAL_BINARY: &str = r"C:\Program Files\Steward\steward-agent.exe";

/// Where a binary install puts the binary: [`LOCAL_BINARY`], on Windows under %ProgramFiles%.
#[cfg(not(windows))]
pub fn local_binary() -> PathBuf {
    PathBuf::from(LOCAL_BINARY)
}
#[cfg(windows)]
pub fn local_binary() -> PathBuf {
    crate::config::windows_path(
        std::env::var_os("ProgramFiles"),
        r"C:\Program Files",
        r"Steward\steward-agent.exe",
    )
}

/// A service manager `install` can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitSystem {
    Systemd,
    Openrc,
    Launchd,
    Windows,
}

/// How one service manager installs and removes the agent.
pub trait ServiceManager {
    /// Writes the manager's files (unit, script, plist, registration), enables the service and
    /// starts (or restarts) it when [`Host::start`] allows.
    fn install(&self, host: &Host, log: &mut Log) -> Result<()>;
    /// Stops the service and removes what `install` wrote, except the config and state.
    fn uninstall(&self, host: &Host, log: &mut Log) -> Result<()>;
    /// Called before install replaces the installed binary with a different one. Windows cannot
    /// replace the program file of a running process, so its manager stops the service here.
    fn before_binary_update(&self, host: &Host, log: &mut Log) -> Result<()> {
        let _ = (host, log);
        Ok(())
    }
}

/// One row of the table: a manager, how it is recognised, and how it is made.
pub struct Manager {
    pub init: InitSystem,
    /// Whether the host (or image) at this root runs this manager.
    pub detect: fn(&Host) -> bool,
    pub make: fn() -> Box<dyn ServiceManager>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Manager({:?})", self.init)
    }
}

/// Every service manager, in detection order.
pub const MANAGERS: &[Manager] = &[
    #[cfg(windows)]
    Manager {
        init: InitSystem::Windows,
        detect: |_| true,
        make: || Box::new(windows::WindowsService),
    },
    Manager {
        init: InitSystem::Launchd,
        detect: |_| cfg!(target_os = "macos"),
        make: || Box::new(launchd::Launchd),
    },
    Manager {
        init: InitSystem::Systemd,
        detect: systemd::detect,
        make: || Box::new(systemd::Systemd),
    },
    Manager {
        init: InitSystem::Openrc,
        detect: openrc::detect,
        make: || Box::new(openrc::OpenRc),
    },
];

/// What install and uninstall act on.
#[derive(Debug, Clone)]
pub struct Host {
    /// The image root (`--image`), or `None` for the running host.
    pub image: Option<PathBuf>,
    /// The binary the service runs, as the host sees it.
    pub binary: PathBuf,
    /// The config file the service reads, as the host sees it.
    pub config: PathBuf,
    /// The agent's state directory, as the host sees it.
    pub state_dir: PathBuf,
    /// Start (or restart) the service after installing: not with `--no-start`, not in an
    /// image, and not before enrollment (there would be nothing to run).
    pub start: bool,
    /// Whether the agent is enrolled (its identity exists).
    pub enrolled: bool,
    /// `uninstall --purge`.
    pub purge: bool,
}

impl Host {
    /// A path of the host, under the image root when there is one.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        match &self.image {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }

    pub fn live(&self) -> bool {
        self.image.is_none()
    }

    /// Runs a service-manager command, failing with its output when it fails.
    pub fn run(&self, program: &str, args: &[&str], log: &mut Log) -> Result<()> {
        let output = Command::new(program)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        log.line(format!("ran: {program} {}", args.join(" ")));
        if !output.status.success() {
            bail!(
                "`{program} {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Runs a command whose failure is expected in some states (stopping a stopped service).
    pub fn run_quietly(&self, program: &str, args: &[&str], log: &mut Log) -> bool {
        let ok = Command::new(program)
            .args(args)
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false);
        log.line(format!(
            "ran: {program} {}{}",
            args.join(" "),
            if ok { "" } else { " (no effect)" }
        ));
        ok
    }
}

/// What install and uninstall did, printed line by line.
#[derive(Debug, Default)]
pub struct Log {
    pub lines: Vec<String>,
}

impl Log {
    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    pub fn text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            let _ = writeln!(text, "{line}");
        }
        text
    }
}

/// What a file write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Writes `bytes` to `path` atomically unless it already holds exactly them, creating parent
/// directories; `mode` applies on Unix.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, log: &mut Log) -> Result<Written> {
    let written = match std::fs::read(path) {
        Ok(existing) if existing == bytes => {
            set_mode(path, mode)?;
            return Ok(Written::Unchanged);
        }
        Ok(_) => Written::Updated,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Written::Created,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    crate::state::write_atomic(path, bytes, false)?;
    set_mode(path, mode)?;
    log.line(format!(
        "{} {}",
        if written == Written::Created {
            "wrote"
        } else {
            "updated"
        },
        path.display()
    ));
    Ok(written)
}

/// Removes a file if it exists, saying so.
pub fn remove_file(path: &Path, log: &mut Log) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            log.line(format!("removed {}", path.display()));
            Ok(true)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// What `install --config FILE` (or the packaged default) does to the installed config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPlan {
    /// Nothing there yet: write it.
    Write(Vec<u8>),
    /// The installed config is the shipped default, untouched: replace it with FILE.
    Replace(Vec<u8>),
    /// Already as wanted.
    Unchanged,
    /// Changed locally and no FILE given: keep it.
    KeepLocal,
}

/// Decides the installed config's fate. A config changed locally is never overwritten: with an
/// explicit FILE that differs from it, install refuses before touching anything.
pub fn plan_config(
    installed: Option<&[u8]>,
    wanted: Option<&[u8]>,
    path: &Path,
) -> Result<ConfigPlan> {
    let default = DEFAULT_CONFIG.as_bytes();
    Ok(match (installed, wanted) {
        (None, Some(wanted)) => ConfigPlan::Write(wanted.to_vec()),
        (None, None) => ConfigPlan::Write(default.to_vec()),
        (Some(installed), Some(wanted)) if installed == wanted => ConfigPlan::Unchanged,
        (Some(installed), Some(wanted)) if installed == default => {
            ConfigPlan::Replace(wanted.to_vec())
        }
        (Some(_), Some(_)) => bail!(
            "{} was changed locally and differs from the --config file: not overwriting it. \
             Merge the two by hand (or remove {}), then run install again",
            path.display(),
            path.display()
        ),
        (Some(installed), None) if installed == default => ConfigPlan::Unchanged,
        (Some(_), None) => ConfigPlan::KeepLocal,
    })
}

/// `steward-agent install`.
pub fn install(
    target: &crate::cli::ServiceTarget,
    config_file: Option<&Path>,
    config: &Config,
    no_start: bool,
) -> Result<Log> {
    let mut log = Log::default();
    let (manager, mut host) = prepare(target, config)?;
    // The plan: everything that can refuse is decided before anything is written.
    let installed_config_path = host.path(&host.config);
    let installed_config = read_optional(&installed_config_path)?;
    let wanted = match config_file {
        Some(file) => {
            Some(std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?)
        }
        None => None,
    };
    let plan = plan_config(
        installed_config.as_deref(),
        wanted.as_deref(),
        &installed_config_path,
    )?;
    let source_binary = std::env::current_exe().context("cannot find this program's path")?;
    host.binary = choose_binary(&host, &source_binary);

    // Act.
    let service = (manager.make)();
    place_binary(&host, &source_binary, service.as_ref(), &mut log)?;
    match plan {
        ConfigPlan::Write(bytes) | ConfigPlan::Replace(bytes) => {
            write_file(&installed_config_path, &bytes, 0o644, &mut log)?;
        }
        ConfigPlan::Unchanged => log.line(format!(
            "config {} unchanged",
            installed_config_path.display()
        )),
        ConfigPlan::KeepLocal => log.line(format!(
            "kept {} (changed locally)",
            installed_config_path.display()
        )),
    }
    host.start = !no_start && host.live() && host.enrolled;
    service.install(&host, &mut log)?;
    if !host.enrolled {
        log.line(format!(
            "not started: this agent is not enrolled yet. Run\n  steward-agent enroll --collector URL --token TOKEN --ca-fingerprint FP\nthen run `steward-agent install` again (or start the {SERVICE_NAME} service)."
        ));
    } else if no_start {
        log.line("not started (--no-start)");
    }
    Ok(log)
}

/// `steward-agent uninstall`.
pub fn uninstall(target: &crate::cli::ServiceTarget, config: &Config, purge: bool) -> Result<Log> {
    let mut log = Log::default();
    let (manager, mut host) = prepare(target, config)?;
    host.purge = purge;
    host.binary = choose_binary(&host, &local_binary());
    (manager.make)().uninstall(&host, &mut log)?;
    // A binary install copied itself to /usr/local/bin; the package owns /usr/bin.
    remove_file(&host.path(local_binary()), &mut log)?;
    let removed_service = !log.lines.is_empty();
    if purge {
        remove_file(&host.path(&host.config), &mut log)?;
        let state = host.path(&host.state_dir);
        match std::fs::remove_dir_all(&state) {
            Ok(()) => log.line(format!("removed {}", state.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot remove {}", state.display()));
            }
        }
    } else if removed_service {
        log.line(format!(
            "kept {} and {} (remove them with `uninstall --purge`)",
            host.path(&host.config).display(),
            host.path(&host.state_dir).display()
        ));
    }
    if log.lines.is_empty() {
        log.line("not installed: nothing to do");
    }
    Ok(log)
}

/// Chooses the manager and checks privilege.
fn prepare(
    target: &crate::cli::ServiceTarget,
    config: &Config,
) -> Result<(&'static Manager, Host)> {
    let mut host = Host {
        image: target.image.clone(),
        binary: local_binary(),
        config: crate::config::default_config_path(),
        state_dir: config.state_dir.clone(),
        start: false,
        enrolled: false,
        purge: false,
    };
    if let Some(image) = &host.image
        && !image.is_dir()
    {
        bail!("--image {}: not a directory", image.display());
    }
    // A Windows host's paths are not those of an image's system.
    #[cfg(windows)]
    if host.image.is_some() {
        bail!("--image is not supported on Windows: prepare an image from Linux or macOS");
    }
    host.enrolled = crate::state::StateDir::new(host.path(&host.state_dir)).is_enrolled();
    let manager = match target.init {
        Some(init) => MANAGERS
            .iter()
            .find(|m| m.init == init)
            .with_context(|| format!("{init:?} services cannot be installed from this build"))?,
        None => MANAGERS.iter().find(|m| (m.detect)(&host)).context(
            "no supported service manager found (systemd, OpenRC, launchd, Windows); name one with --init",
        )?,
    };
    if host.live() {
        require_privilege()?;
    }
    Ok((manager, host))
}

/// The binary the service runs: the packaged one when this program is it, else the local copy.
fn choose_binary(host: &Host, running: &Path) -> PathBuf {
    if running == Path::new(PACKAGED_BINARY)
        || (!host.live() && host.path(PACKAGED_BINARY).exists())
    {
        PathBuf::from(PACKAGED_BINARY)
    } else {
        local_binary()
    }
}

/// Copies this program to the binary path unless it is already there (an upgrade of a binary
/// install is: download the new binary, run its `install`).
fn place_binary(
    host: &Host,
    source: &Path,
    service: &dyn ServiceManager,
    log: &mut Log,
) -> Result<()> {
    let destination = host.path(&host.binary);
    if host.binary == Path::new(PACKAGED_BINARY) {
        return Ok(());
    }
    if std::fs::canonicalize(&destination).ok() == std::fs::canonicalize(source).ok() {
        return Ok(());
    }
    let bytes =
        std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    if destination.exists() && std::fs::read(&destination).ok().as_deref() != Some(&bytes[..]) {
        service.before_binary_update(host, log)?;
    }
    write_file(&destination, &bytes, 0o755, log)?;
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Installing a service needs root (Unix) or an elevated prompt (Windows: the service control
/// manager must open with the right to create services).
fn require_privilege() -> Result<()> {
    #[cfg(unix)]
    if !rustix::process::geteuid().is_root() {
        bail!(
            "installing or removing a system service needs root: run it with sudo (or prepare an image with --image DIR)"
        );
    }
    #[cfg(windows)]
    windows::check_privilege()?;
    Ok(())
}

/// Makes the state directory (0700) and gives it, and everything in it, to the service user.
/// Files `enroll` wrote as root before the service existed become the service's.
#[cfg(unix)]
pub fn own_state_dir(host: &Host, user: Option<(u32, u32)>, log: &mut Log) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = host.path(&host.state_dir);
    create_dir(&dir, log)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    if let Some((uid, gid)) = user {
        chown_tree(&dir, uid, gid)?;
    }
    Ok(())
}

/// Makes the state directory and restricts it to SYSTEM (the service's account) and
/// Administrators, inherited by everything in it, in place of what it inherited from
/// %ProgramData% (where Users may read). Files `enroll` wrote before get the new inherited ACL.
#[cfg(windows)]
pub fn own_state_dir(host: &Host, log: &mut Log) -> Result<()> {
    let dir = host.path(&host.state_dir);
    create_dir(&dir, log)?;
    windows::restrict_dir(host, &dir, false, log)
}

/// Creates a directory (and its parents) unless it exists, saying so.
fn create_dir(dir: &Path, log: &mut Log) -> Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        log.line(format!("created {}", dir.display()));
    }
    Ok(())
}

#[cfg(unix)]
fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("cannot give {} to uid {uid}", path.display()))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
        {
            let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// The uid and gid of a user in the host's (or image's) `/etc/passwd`.
pub fn lookup_user(host: &Host, name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(host.path("/etc/passwd")).ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests
mod tests {
    use super::*;

    const PATH: &str = "/etc/steward/agent.toml";

    #[test]
    fn a_missing_config_is_written_from_the_file_or_the_default() {
        let path = Path::new(PATH);
        assert_eq!(
            plan_config(None, Some(b"x"), path).unwrap(),
            ConfigPlan::Write(b"x".to_vec())
        );
        assert_eq!(
            plan_config(None, None, path).unwrap(),
            ConfigPlan::Write(DEFAULT_CONFIG.as_bytes().to_vec())
        );
    }

    #[test]
    fn an_untouched_default_is_replaced_but_a_local_change_never() {
        let path = Path::new(PATH);
        let default = DEFAULT_CONFIG.as_bytes();
        assert_eq!(
            plan_config(Some(default), Some(b"mine"), path).unwrap(),
            ConfigPlan::Replace(b"mine".to_vec())
        );
        assert_eq!(
            plan_config(Some(b"mine"), Some(b"mine"), path).unwrap(),
            ConfigPlan::Unchanged
        );
        assert_eq!(
            plan_config(Some(b"edited"), None, path).unwrap(),
            ConfigPlan::KeepLocal
        );
        assert_eq!(
            plan_config(Some(default), None, path).unwrap(),
            ConfigPlan::Unchanged
        );
        let refused = plan_config(Some(b"edited"), Some(b"other"), path)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("/etc/steward/agent.toml was changed locally"),
            "{refused}"
        );
    }

    #[test]
    fn the_shipped_default_config_is_valid() {
        Config::parse(DEFAULT_CONFIG).unwrap();
    }

    #[test]
    fn users_are_read_from_the_image_passwd() {
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("etc")).unwrap();
        std::fs::write(
            image.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nsteward-agent:x:998:997::/var/lib/steward-agent:/usr/sbin/nologin\n",
        )
        .unwrap();
        let host = Host {
            image: Some(image.path().to_path_buf()),
            binary: PathBuf::from(LOCAL_BINARY),
            config: PathBuf::from(PATH),
            state_dir: PathBuf::from("/var/lib/steward-agent"),
            start: false,
            enrolled: false,
            purge: false,
        };
        assert_eq!(lookup_user(&host, "steward-agent"), Some((998, 997)));
        assert_eq!(lookup_user(&host, "nobody"), None);
        assert_eq!(host.path("/etc/x"), image.path().join("etc/x"));
    }
}
