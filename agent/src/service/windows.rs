//! The Windows service `StewardAgent` ("Steward agent"), through the windows-service crate:
//! registered with the service control manager (SCM) to run as LocalSystem, started at boot
//! (delayed automatic start) and restarted 10 s after a failure, a failure count reset after a
//! day. The SCM runs `steward-agent.exe run --windows-service --config FILE`.
//!
//! `install` registers the service, or changes an existing registration to the wanted one,
//! restricts `%ProgramData%\Steward` (SYSTEM and Administrators: full control; Users: read) and
//! the state directory (SYSTEM and Administrators only), and (re)starts the service once the
//! agent is enrolled. Windows cannot replace the program file of a running process: before an
//! upgrade replaces the binary the service is stopped and the old file moved aside
//! (`steward-agent.exe.old`, deleted as soon as nothing runs it). `uninstall` stops and deletes
//! the service; nothing installed is a success.
//!
//! Under the SCM, [`run_service`] hands the main thread to the SCM's dispatcher, which runs the
//! service on a thread of its own: the agent runs there on the same current-thread runtime as
//! `steward-agent run`, until a Stop or Shutdown control. A service has no console, so the log
//! goes to `%ProgramData%\Steward\agent.log`, moved to `agent.log.1` past 10 MiB (at start and
//! while running). The event log would need a registered event source and a message resource
//! to show more than "the description cannot be found"; a file needs neither and is read with
//! any editor or `Get-Content -Wait`.
//!
//! Everything that does not need Windows (the service's settings, the command line the SCM
//! runs, the directory ACLs, the log rotation, the stop and start waits) is plain code, compiled
//! and tested on every platform; only the calls into the SCM are Windows-only.

// The Windows-only callers of the shared part are not compiled in a test build on other
// platforms.
#![cfg_attr(not(windows), allow(dead_code))]

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

/// The service's name with the SCM (`sc.exe query StewardAgent`).
pub const SERVICE_NAME: &str = "StewardAgent";
pub const DISPLAY_NAME: &str = "Steward agent";
pub const DESCRIPTION: &str =
    "Reports this host's metrics and inventory to a Steward collector over mutual TLS.";
/// How long install and uninstall wait for the service to stop, and install for it to start.
pub const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(250);
/// How long the running service lets the agent finish after a stop request before it ends the
/// agent itself: well within [`WAIT`], and within the time Windows gives services at shutdown.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// The log file's name in `%ProgramData%\Steward`, and the size past which it is rotated.
pub const LOG_FILE: &str = "agent.log";
pub const LOG_LIMIT: u64 = 10 * 1024 * 1024;

/// Well-known SIDs, as icacls takes them (`*SID`).
const SYSTEM: &str = "*S-1-5-18";
const ADMINISTRATORS: &str = "*S-1-5-32-544";
const USERS: &str = "*S-1-5-32-545";

/// What the service is registered with: everything but the constants above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The installed binary.
    pub executable: PathBuf,
    /// What the SCM passes it (the launch arguments, not the service's start arguments).
    pub arguments: Vec<OsString>,
    /// Automatic start, delayed until the boot's other automatic services have started.
    pub delayed_auto_start: bool,
    /// The SCM's restart delays after the first, second and later failures.
    pub restart_delays: Vec<Duration>,
    /// A failure-free period after which the failure count starts again.
    pub failure_reset: Duration,
}

/// The registration for a binary and the config it reads.
pub fn service_spec(binary: &Path, config: &Path) -> ServiceSpec {
    ServiceSpec {
        executable: binary.to_path_buf(),
        arguments: vec![
            "run".into(),
            "--windows-service".into(),
            "--config".into(),
            config.as_os_str().to_os_string(),
        ],
        delayed_auto_start: true,
        restart_delays: vec![Duration::from_secs(10); 3],
        failure_reset: Duration::from_secs(24 * 3600),
    }
}

/// The command line the SCM stores and runs for the spec, quoted as the windows-service crate
/// quotes it (and as `CommandLineToArgvW` reads it back): a path with a space is quoted, so the
/// SCM never tries `C:\Program.exe`.
pub fn command_line(spec: &ServiceSpec) -> String {
    let mut line = quote(&spec.executable.to_string_lossy()).into_owned();
    for argument in &spec.arguments {
        line.push(' ');
        line.push_str(&quote(&argument.to_string_lossy()));
    }
    line
}

/// One argument quoted for `CommandLineToArgvW`: as it is unless empty or holding a quote or
/// white space; else in quotes, with the backslashes before a quote (and before the closing
/// quote) doubled and the quote escaped.
fn quote(argument: &str) -> Cow<'_, str> {
    if !argument.is_empty() && !argument.contains(['"', ' ', '\t', '\n', '\u{b}']) {
        return Cow::Borrowed(argument);
    }
    let mut quoted = String::with_capacity(argument.len() + 2);
    quoted.push('"');
    let mut backslashes = 0;
    for c in argument.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                quoted.push_str(&"\\".repeat(backslashes * 2 + 1));
                quoted.push('"');
                backslashes = 0;
            }
            c => {
                quoted.push_str(&"\\".repeat(backslashes));
                quoted.push(c);
                backslashes = 0;
            }
        }
    }
    quoted.push_str(&"\\".repeat(backslashes * 2));
    quoted.push('"');
    Cow::Owned(quoted)
}

/// The icacls arguments that give a directory, and everything created in it, to SYSTEM and
/// Administrators (full control) and, with `users_read`, let Users read: what it inherited is
/// removed (`/inheritance:r`), earlier grants to these accounts replaced (`/grant:r`).
pub fn acl_args(dir: &str, users_read: bool) -> Vec<String> {
    let mut args = vec![
        dir.to_string(),
        "/inheritance:r".to_string(),
        "/grant:r".to_string(),
        format!("{SYSTEM}:(OI)(CI)F"),
        format!("{ADMINISTRATORS}:(OI)(CI)F"),
    ];
    if users_read {
        args.push(format!("{USERS}:(OI)(CI)RX"));
    }
    args
}

/// Where an old binary goes while something still runs it: `steward-agent.exe.old`.
pub fn aside(binary: &Path) -> PathBuf {
    let mut name = binary.file_name().unwrap_or_default().to_os_string();
    name.push(".old");
    binary.with_file_name(name)
}

/// Why the service stopped, as the exit code it reports to the SCM: zero for a requested stop
/// and for an agent not enrolled yet (nothing to restart), non-zero for a failure, which the SCM
/// answers with the failure actions (a restart after 10 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stopped,
    NotEnrolled,
    BadConfig,
    Failed,
}

impl Outcome {
    /// `None` for success, else the service-specific exit code (2 a config error, 1 another
    /// failure, as the command line's exit codes).
    pub fn exit_code(self) -> Option<u32> {
        match self {
            Outcome::Stopped | Outcome::NotEnrolled => None,
            Outcome::BadConfig => Some(2),
            Outcome::Failed => Some(1),
        }
    }
}

/// A service's state as the stop and start waits see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Stopped,
    StartPending,
    StopPending,
    Running,
    /// Paused, or on its way to or from it.
    Other,
}

/// What the waits need from a service (the SCM's, or a test's).
pub trait Control {
    fn phase(&self) -> Result<Phase>;
    /// Sends the stop control: `false` when the service cannot take it now (still starting).
    fn request_stop(&self) -> Result<bool>;
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It was not running.
    WasStopped,
    Stopped,
    /// Still not stopped when the wait ended.
    TimedOut,
}

/// Stops the service, waiting up to `timeout`. A service still starting is asked once it can
/// take the control; one already stopping is only waited for.
pub fn stop_and_wait(service: &impl Control, timeout: Duration, poll: Duration) -> Result<Stop> {
    let deadline = Instant::now() + timeout;
    let mut asked = false;
    loop {
        match service.phase()? {
            Phase::Stopped if asked => return Ok(Stop::Stopped),
            Phase::Stopped => return Ok(Stop::WasStopped),
            Phase::StopPending => asked = true,
            Phase::StartPending => {}
            Phase::Running | Phase::Other => {
                if !asked {
                    asked = service.request_stop()?;
                }
            }
        }
        if Instant::now() >= deadline {
            return Ok(Stop::TimedOut);
        }
        std::thread::sleep(poll);
    }
}

/// Waits up to `timeout` for a service just started to leave StartPending; its phase then.
pub fn wait_started(service: &impl Control, timeout: Duration, poll: Duration) -> Result<Phase> {
    let deadline = Instant::now() + timeout;
    loop {
        let phase = service.phase()?;
        if phase != Phase::StartPending || Instant::now() >= deadline {
            return Ok(phase);
        }
        std::thread::sleep(poll);
    }
}

/// Whether a log of `current` bytes must be rotated before `incoming` more are written: an
/// empty log never is, so one line longer than the limit is still written.
pub fn rotation_due(current: u64, incoming: u64, limit: u64) -> bool {
    current > 0 && current.saturating_add(incoming) > limit
}

/// An append-only log file that moves itself to `NAME.1` (replacing the one before) when the
/// next write would take it past `limit`: at most two files of about `limit` bytes each.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    file: Option<File>,
    /// Bytes in the file, or written since a rotation that failed.
    len: u64,
    limit: u64,
}

impl RotatingLog {
    /// Opens (creating) the log, first rotating one already past the limit.
    pub fn open(path: &Path, limit: u64) -> io::Result<RotatingLog> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut log = RotatingLog {
            path: path.to_path_buf(),
            file: None,
            len: std::fs::metadata(path).map_or(0, |m| m.len()),
            limit,
        };
        if rotation_due(log.len, 1, limit) {
            log.rotate();
        }
        log.file = Some(append(path)?);
        Ok(log)
    }

    /// The previous file's path: `agent.log.1`.
    pub fn previous(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".1");
        path.with_file_name(name)
    }

    /// Moves the file aside; the next write opens a new one. When the move fails (a reader
    /// holding the file open without sharing deletion) the log goes on in the same file, and the
    /// next attempt waits for another `limit` bytes rather than coming at every line.
    fn rotate(&mut self) {
        self.file = None;
        let _ = std::fs::rename(&self.path, Self::previous(&self.path));
        self.len = 0;
    }
}

fn append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl Write for RotatingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if rotation_due(self.len, buf.len() as u64, self.limit) {
            self.rotate();
        }
        let file = match &mut self.file {
            Some(file) => file,
            slot @ None => slot.insert(append(&self.path)?),
        };
        let written = file.write(buf)?;
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(windows)]
pub use scm::{WindowsService, check_privilege, restrict_dir, run_service};

/// The calls into the SCM: install, uninstall, and the service itself.
#[cfg(windows)]
mod scm {
    use std::ffi::{OsStr, OsString};
    use std::process::ExitCode;
    use std::sync::{Mutex, PoisonError};
    use std::time::Duration;

    use anyhow::{Context, Result, bail};
    use tokio::sync::watch;
    use tracing::{error, info, warn};
    use windows_service::service::{
        Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceControl,
        ServiceControlAccept, ServiceErrorControl, ServiceExitCode, ServiceFailureActions,
        ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus,
        ServiceType,
    };
    use windows_service::service_control_handler::{
        self, ServiceControlHandlerResult, ServiceStatusHandle,
    };
    use windows_service::service_dispatcher;
    use windows_service::service_manager::{ServiceManager as Scm, ServiceManagerAccess};

    use super::{
        Control, DESCRIPTION, DISPLAY_NAME, LOG_FILE, LOG_LIMIT, Outcome, POLL, Phase, RotatingLog,
        SERVICE_NAME, STOP_GRACE, ServiceSpec, Stop, WAIT, acl_args, aside, command_line,
        service_spec, stop_and_wait, wait_started,
    };
    use crate::config::{Config, LogLevel};
    use crate::service::{Host, Log, ServiceManager};

    // Win32 error codes the SCM answers with.
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
    const ERROR_SERVICE_CANNOT_ACCEPT_CTRL: i32 = 1061;
    const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
    const ERROR_SERVICE_MARKED_FOR_DELETE: i32 = 1072;

    const LOCAL_SYSTEM: &str = "LocalSystem";

    fn os_error(error: &windows_service::Error) -> Option<i32> {
        match error {
            windows_service::Error::Winapi(error) => error.raw_os_error(),
            _ => None,
        }
    }

    /// An SCM error with what was being done, and the way out where there is one.
    fn scm_error(error: windows_service::Error, doing: &str) -> anyhow::Error {
        match os_error(&error) {
            Some(ERROR_ACCESS_DENIED) => anyhow::anyhow!(
                "cannot {doing}: installing or removing the Windows service needs an elevated \
                 (Administrator) prompt: open PowerShell or Command Prompt with \"Run as \
                 administrator\" and run the command again"
            ),
            Some(ERROR_SERVICE_MARKED_FOR_DELETE) => anyhow::anyhow!(
                "cannot {doing}: the {SERVICE_NAME} service is marked for deletion and goes once \
                 nothing has it open: close the Services console (and Event Viewer, Task \
                 Manager), or restart Windows, then run the command again"
            ),
            _ => anyhow::Error::new(error).context(format!("cannot {doing}")),
        }
    }

    fn open_scm(access: ServiceManagerAccess) -> Result<Scm> {
        Scm::local_computer(None::<&str>, access)
            .map_err(|error| scm_error(error, "open the Windows service control manager"))
    }

    /// Installing needs the right to create services, which only an elevated prompt has.
    pub fn check_privilege() -> Result<()> {
        open_scm(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE).map(drop)
    }

    /// The service, or `None` when it is not installed.
    fn open_service(scm: &Scm, access: ServiceAccess) -> Result<Option<Service>> {
        match scm.open_service(SERVICE_NAME, access) {
            Ok(service) => Ok(Some(service)),
            Err(error) if os_error(&error) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => Ok(None),
            Err(error) => Err(scm_error(
                error,
                &format!("open the {SERVICE_NAME} service"),
            )),
        }
    }

    struct Live<'a>(&'a Service);

    impl Control for Live<'_> {
        fn phase(&self) -> Result<Phase> {
            let status = self
                .0
                .query_status()
                .map_err(|error| scm_error(error, &format!("query the {SERVICE_NAME} service")))?;
            Ok(match status.current_state {
                ServiceState::Stopped => Phase::Stopped,
                ServiceState::StartPending => Phase::StartPending,
                ServiceState::StopPending => Phase::StopPending,
                ServiceState::Running => Phase::Running,
                _ => Phase::Other,
            })
        }

        fn request_stop(&self) -> Result<bool> {
            match self.0.stop() {
                Ok(_) => Ok(true),
                Err(error)
                    if matches!(
                        os_error(&error),
                        Some(ERROR_SERVICE_CANNOT_ACCEPT_CTRL | ERROR_SERVICE_NOT_ACTIVE)
                    ) =>
                {
                    Ok(false)
                }
                Err(error) => Err(scm_error(
                    error,
                    &format!("stop the {SERVICE_NAME} service"),
                )),
            }
        }
    }

    /// Stops the service within [`WAIT`], or fails saying what to do.
    fn stop(service: &Service, log: &mut Log, why: &str) -> Result<()> {
        match stop_and_wait(&Live(service), WAIT, POLL)? {
            Stop::WasStopped => {}
            Stop::Stopped => log.line(format!("stopped {SERVICE_NAME}")),
            Stop::TimedOut => bail!(
                "the {SERVICE_NAME} service did not stop within {} s ({why}): stop it \
                 (`sc.exe stop {SERVICE_NAME}`, or end steward-agent.exe in Task Manager) and \
                 run the command again",
                WAIT.as_secs()
            ),
        }
        Ok(())
    }

    fn service_info(spec: &ServiceSpec, account: Option<&str>) -> ServiceInfo {
        ServiceInfo {
            name: SERVICE_NAME.into(),
            display_name: DISPLAY_NAME.into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: spec.executable.clone(),
            launch_arguments: spec.arguments.clone(),
            dependencies: Vec::new(),
            // `None`: LocalSystem when creating, unchanged when changing.
            account_name: account.map(OsString::from),
            // LocalSystem has no password: an empty one, as the SCM documents.
            account_password: account.map(|_| OsString::new()),
        }
    }

    fn failure_actions(spec: &ServiceSpec) -> ServiceFailureActions {
        ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(spec.failure_reset),
            reboot_msg: None,
            command: None,
            actions: Some(
                spec.restart_delays
                    .iter()
                    .map(|delay| ServiceAction {
                        action_type: ServiceActionType::Restart,
                        delay: *delay,
                    })
                    .collect(),
            ),
        }
    }

    /// Restricts `%ProgramData%\Steward` (the config's directory, never a shared parent): the
    /// service reads its config and asset file there as LocalSystem, so only administrators may
    /// write there, where %ProgramData% lets every user create files.
    fn secure_data_dir(host: &Host, log: &mut Log) -> Result<()> {
        let Some(dir) = host.config.parent() else {
            return Ok(());
        };
        if dir.file_name() != Some(OsStr::new("Steward")) {
            return Ok(());
        }
        crate::service::create_dir(dir, log)?;
        restrict_dir(host, dir, true, log)
    }

    /// Gives `dir` to SYSTEM and Administrators (and, with `users_read`, lets Users read), with
    /// icacls: see [`acl_args`].
    pub fn restrict_dir(
        host: &Host,
        dir: &std::path::Path,
        users_read: bool,
        log: &mut Log,
    ) -> Result<()> {
        let args = acl_args(&dir.display().to_string(), users_read);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        host.run("icacls", &args, log)
    }

    /// Moves the binary aside (renaming a running program is allowed, replacing it is not) and
    /// deletes it there unless something still runs it.
    fn move_aside(binary: &std::path::Path, log: &mut Log) -> Result<()> {
        let old = aside(binary);
        let _ = std::fs::remove_file(&old);
        match std::fs::rename(binary, &old) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("cannot move {} aside to replace it", binary.display())
                });
            }
        }
        if std::fs::remove_file(&old).is_err() {
            log.line(format!(
                "moved {} to {} (still running: deleted by the next install or uninstall)",
                binary.display(),
                old.display()
            ));
        }
        Ok(())
    }

    fn is_this_program(binary: &std::path::Path) -> bool {
        let this = std::env::current_exe().and_then(std::fs::canonicalize);
        matches!((this, std::fs::canonicalize(binary)), (Ok(a), Ok(b)) if a == b)
    }

    #[derive(Debug)]
    pub struct WindowsService;

    impl ServiceManager for WindowsService {
        fn before_binary_update(&self, host: &Host, log: &mut Log) -> Result<()> {
            let scm = open_scm(ServiceManagerAccess::CONNECT)?;
            if let Some(service) =
                open_service(&scm, ServiceAccess::QUERY_STATUS | ServiceAccess::STOP)?
            {
                stop(&service, log, "its binary cannot be replaced while it runs")?;
            }
            // The process may still be ending, and another may run the same file.
            move_aside(&host.path(&host.binary), log)
        }

        fn install(&self, host: &Host, log: &mut Log) -> Result<()> {
            if !host.live() {
                bail!("a Windows service cannot be installed into an image");
            }
            secure_data_dir(host, log)?;
            crate::service::own_state_dir(host, log)?;

            let spec = service_spec(&host.binary, &host.config);
            let command = command_line(&spec);
            let scm =
                open_scm(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
            let access = ServiceAccess::QUERY_CONFIG
                | ServiceAccess::CHANGE_CONFIG
                | ServiceAccess::QUERY_STATUS
                | ServiceAccess::START
                | ServiceAccess::STOP;
            let service = match open_service(&scm, access)? {
                Some(service) => {
                    let current = service.query_config().map_err(|error| {
                        scm_error(
                            error,
                            &format!("read the {SERVICE_NAME} service's settings"),
                        )
                    })?;
                    // Someone moved it to another account: back to LocalSystem.
                    let account = match &current.account_name {
                        Some(name) if !name.eq_ignore_ascii_case(LOCAL_SYSTEM) => {
                            Some(LOCAL_SYSTEM)
                        }
                        _ => None,
                    };
                    let wanted = current.executable_path.as_os_str() == OsStr::new(&command)
                        && current.start_type == ServiceStartType::AutoStart
                        && current.error_control == ServiceErrorControl::Normal
                        && current.service_type == ServiceType::OWN_PROCESS
                        && current.display_name == OsStr::new(DISPLAY_NAME)
                        && account.is_none();
                    if !wanted {
                        service
                            .change_config(&service_info(&spec, account))
                            .map_err(|error| {
                                scm_error(error, &format!("change the {SERVICE_NAME} service"))
                            })?;
                        log.line(format!("updated the {SERVICE_NAME} service: {command}"));
                    }
                    service
                }
                None => {
                    let service = scm
                        .create_service(&service_info(&spec, None), access)
                        .map_err(|error| {
                            scm_error(error, &format!("create the {SERVICE_NAME} service"))
                        })?;
                    log.line(format!(
                        "registered the {SERVICE_NAME} service (\"{DISPLAY_NAME}\"): {command}"
                    ));
                    service
                }
            };
            let configure =
                |error| scm_error(error, &format!("configure the {SERVICE_NAME} service"));
            service.set_description(DESCRIPTION).map_err(configure)?;
            service
                .set_delayed_auto_start(spec.delayed_auto_start)
                .map_err(configure)?;
            service
                .update_failure_actions(failure_actions(&spec))
                .map_err(configure)?;
            service
                .set_failure_actions_on_non_crash_failures(true)
                .map_err(configure)?;

            if host.start {
                // A running service restarts, so a new binary or config takes effect.
                stop(&service, log, "to restart it")?;
                service.start(&[] as &[&OsStr]).map_err(|error| {
                    scm_error(error, &format!("start the {SERVICE_NAME} service"))
                })?;
                match wait_started(&Live(&service), WAIT, POLL)? {
                    Phase::Running => log.line(format!("started {SERVICE_NAME}")),
                    Phase::StartPending => log.line(format!(
                        "{SERVICE_NAME} is still starting after {} s",
                        WAIT.as_secs()
                    )),
                    _ => bail!(
                        "the {SERVICE_NAME} service stopped right after it started: see {}",
                        log_path().display()
                    ),
                }
            }
            // An old binary moved aside by an upgrade, now that nothing runs it.
            let _ = std::fs::remove_file(aside(&host.path(&host.binary)));
            Ok(())
        }

        fn uninstall(&self, host: &Host, log: &mut Log) -> Result<()> {
            let scm = open_scm(ServiceManagerAccess::CONNECT)?;
            let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
            if let Some(service) = open_service(&scm, access)? {
                match stop_and_wait(&Live(&service), WAIT, POLL)? {
                    Stop::WasStopped => {}
                    Stop::Stopped => log.line(format!("stopped {SERVICE_NAME}")),
                    Stop::TimedOut => log.line(format!(
                        "{SERVICE_NAME} did not stop within {} s: Windows removes it once it stops",
                        WAIT.as_secs()
                    )),
                }
                match service.delete() {
                    Ok(()) => log.line(format!("removed the {SERVICE_NAME} service")),
                    Err(error) if os_error(&error) == Some(ERROR_SERVICE_MARKED_FOR_DELETE) => {
                        log.line(format!(
                            "the {SERVICE_NAME} service was already marked for deletion: it goes \
                             once nothing has it open"
                        ));
                    }
                    Err(error) => {
                        return Err(scm_error(
                            error,
                            &format!("delete the {SERVICE_NAME} service"),
                        ));
                    }
                }
            }
            let binary = host.path(&host.binary);
            if is_this_program(&binary) {
                // Windows cannot delete a running program, only rename it.
                move_aside(&binary, log)?;
                if let Some(dir) = binary.parent() {
                    log.line(format!(
                        "{} is this running program: delete {} once this command has ended",
                        binary.display(),
                        dir.display()
                    ));
                }
            } else {
                let _ = std::fs::remove_file(aside(&binary));
            }
            if host.purge {
                let log_file = log_path();
                crate::service::remove_file(&RotatingLog::previous(&log_file), log)?;
                crate::service::remove_file(&log_file, log)?;
            }
            Ok(())
        }
    }

    /// `%ProgramData%\Steward\agent.log`.
    fn log_path() -> std::path::PathBuf {
        crate::config::windows_data_file(LOG_FILE)
    }

    /// The config (or why there is none) from `main`, for the service thread.
    static LAUNCH: Mutex<Option<Result<Config, String>>> = Mutex::new(None);

    /// `steward-agent run --windows-service`: connects to the SCM, which then runs the service
    /// on a thread of its own; returns when the service has stopped. From a console, where no
    /// SCM is waiting, it fails at once.
    pub fn run_service(config: Result<Config, String>) -> ExitCode {
        *LAUNCH.lock().unwrap_or_else(PoisonError::into_inner) = Some(config);
        match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!(
                    "error: --windows-service is only for the Windows service control manager \
                     (run the agent in a console without it): {:#}",
                    anyhow::Error::new(error)
                );
                ExitCode::from(2)
            }
        }
    }

    // The entry point the SCM calls on its thread. The macro's `unsafe` block (reading the
    // arguments the SCM passes) is the crate's, inside its macro: this crate writes none.
    windows_service::define_windows_service!(ffi_service_main, service_main);

    fn service_main(_arguments: Vec<OsString>) {
        let launch = LAUNCH
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| Err("the service started without its configuration".into()));
        let level = launch
            .as_ref()
            .map_or(LogLevel::Info, |config| config.log_level);
        // Nowhere to report a log that cannot be opened; the exit code still tells the SCM.
        if let Ok(log) = RotatingLog::open(&log_path(), LOG_LIMIT) {
            let _ = tracing_subscriber::fmt()
                .with_writer(Mutex::new(log))
                .with_max_level(tracing::Level::from(level))
                .with_target(false)
                .with_ansi(false)
                .try_init();
        }

        // The handler runs on the dispatcher's thread and must return at once: it only signals.
        let (stop_tx, stop_rx) = watch::channel(false);
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                stop_tx.send_replace(true);
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let status = match service_control_handler::register(SERVICE_NAME, handler) {
            Ok(status) => status,
            Err(error) => {
                error!(error = %anyhow::Error::new(error), "cannot register the service control handler");
                return;
            }
        };
        report(
            &status,
            ServiceState::StartPending,
            None,
            Duration::from_secs(10),
        );
        let outcome = serve(launch, &status, stop_rx);
        // The last report: nothing may follow a Stopped.
        report(
            &status,
            ServiceState::Stopped,
            outcome.exit_code(),
            Duration::ZERO,
        );
    }

    fn serve(
        launch: Result<Config, String>,
        status: &ServiceStatusHandle,
        stop: watch::Receiver<bool>,
    ) -> Outcome {
        let config = match launch {
            Ok(config) => config,
            Err(message) => {
                error!("{message}");
                return Outcome::BadConfig;
            }
        };
        if !crate::state::StateDir::new(&config.state_dir).is_enrolled() {
            // As the systemd unit's ConditionPathExists: not a failure to restart from.
            warn!(
                state_dir = %config.state_dir.display(),
                "not enrolled: the service stops. Run `steward-agent enroll`, then `steward-agent install` again (or `sc.exe start {SERVICE_NAME}`)"
            );
            return Outcome::NotEnrolled;
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                error!(%error, "cannot start the runtime");
                return Outcome::Failed;
            }
        };
        report(status, ServiceState::Running, None, Duration::ZERO);
        info!("running as the {SERVICE_NAME} Windows service");
        let result = runtime.block_on(async {
            let agent = crate::run::run(&config, false, stop_requested(stop.clone()));
            tokio::pin!(agent);
            tokio::select! {
                result = &mut agent => result,
                () = async {
                    stop_requested(stop.clone()).await;
                    report(status, ServiceState::StopPending, None, STOP_GRACE + Duration::from_secs(5));
                    tokio::time::sleep(STOP_GRACE).await;
                } => {
                    warn!("the agent did not stop within {} s of the stop request: ending it", STOP_GRACE.as_secs());
                    Ok(())
                }
            }
        });
        // Work left on blocking threads must not keep the service from reporting Stopped.
        runtime.shutdown_timeout(Duration::from_secs(2));
        match result {
            Ok(()) => {
                info!("the {SERVICE_NAME} service stopped");
                Outcome::Stopped
            }
            Err(error) => {
                error!("{error:#}");
                Outcome::Failed
            }
        }
    }

    /// Resolves on a Stop or Shutdown control (or, equally, when the handler is gone).
    async fn stop_requested(mut stop: watch::Receiver<bool>) {
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// Reports the service's state; Running accepts Stop and Shutdown, other states nothing.
    fn report(
        status: &ServiceStatusHandle,
        state: ServiceState,
        exit_code: Option<u32>,
        wait_hint: Duration,
    ) {
        let pending = matches!(
            state,
            ServiceState::StartPending | ServiceState::StopPending
        );
        let status_now = ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: exit_code
                .map_or(ServiceExitCode::NO_ERROR, ServiceExitCode::ServiceSpecific),
            checkpoint: u32::from(pending),
            wait_hint: if pending { wait_hint } else { Duration::ZERO },
            process_id: None,
        };
        if let Err(error) = status.set_service_status(status_now) {
            warn!(error = %anyhow::Error::new(error), ?state, "cannot report the service state");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    #[test]
    fn the_service_runs_the_installed_binary_with_the_installed_config() {
        let spec = service_spec(
            Path::new(r"C:\Program Files\Steward\steward-agent.exe"),
            Path::new(r"C:\ProgramData\Steward\agent.toml"),
        );
        assert_eq!(
            spec.arguments,
            [
                "run",
                "--windows-service",
                "--config",
                r"C:\ProgramData\Steward\agent.toml"
            ]
            .map(OsString::from)
        );
        // The path with a space is quoted: never `C:\Program.exe`.
        assert_eq!(
            command_line(&spec),
            r#""C:\Program Files\Steward\steward-agent.exe" run --windows-service --config C:\ProgramData\Steward\agent.toml"#
        );
        assert!(spec.delayed_auto_start);
        assert_eq!(spec.restart_delays, vec![Duration::from_secs(10); 3]);
        assert_eq!(spec.failure_reset, Duration::from_secs(86_400));
        assert_eq!(SERVICE_NAME, "StewardAgent");
        assert_eq!(DISPLAY_NAME, "Steward agent");
    }

    #[test]
    fn the_command_line_parses_back_to_the_same_arguments() {
        let spec = service_spec(
            Path::new(r"D:\Apps\steward-agent.exe"),
            Path::new(r"D:\My Configs\agent.toml"),
        );
        assert_eq!(
            command_line(&spec),
            r#"D:\Apps\steward-agent.exe run --windows-service --config "D:\My Configs\agent.toml""#
        );
        // Backslashes are doubled only before a quote, the closing one included.
        assert_eq!(quote(r"C:\dir with space\"), r#""C:\dir with space\\""#);
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote(r#"a\"b"#), r#""a\\\"b""#);
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote(r"C:\plain\path"), r"C:\plain\path");
        assert_eq!(quote("tab\there"), "\"tab\there\"");
    }

    #[test]
    fn directories_are_given_to_system_and_administrators() {
        assert_eq!(
            acl_args(r"C:\ProgramData\Steward\state", false),
            [
                r"C:\ProgramData\Steward\state",
                "/inheritance:r",
                "/grant:r",
                "*S-1-5-18:(OI)(CI)F",
                "*S-1-5-32-544:(OI)(CI)F",
            ]
        );
        let data = acl_args(r"C:\ProgramData\Steward", true);
        assert_eq!(data.last().unwrap(), "*S-1-5-32-545:(OI)(CI)RX");
        assert_eq!(data.len(), 6);
    }

    #[test]
    fn an_old_binary_goes_beside_the_new_one() {
        let binary = Path::new("dir").join("steward-agent.exe");
        assert_eq!(
            aside(&binary),
            Path::new("dir").join("steward-agent.exe.old")
        );
        let log = Path::new("dir").join("agent.log");
        assert_eq!(
            RotatingLog::previous(&log),
            Path::new("dir").join("agent.log.1")
        );
    }

    #[test]
    fn only_failures_have_a_nonzero_exit_code() {
        assert_eq!(Outcome::Stopped.exit_code(), None);
        assert_eq!(Outcome::NotEnrolled.exit_code(), None);
        assert_eq!(Outcome::BadConfig.exit_code(), Some(2));
        assert_eq!(Outcome::Failed.exit_code(), Some(1));
    }

    /// A service that goes through the given phases, one per query (the last one repeats).
    struct Fake {
        phases: RefCell<Vec<Phase>>,
        /// `request_stop` answers: false while the service "cannot accept" it.
        accepts: RefCell<Vec<bool>>,
        stop_requests: Cell<u32>,
    }

    impl Fake {
        fn new(phases: &[Phase], accepts: &[bool]) -> Fake {
            Fake {
                phases: RefCell::new(phases.iter().rev().copied().collect()),
                accepts: RefCell::new(accepts.iter().rev().copied().collect()),
                stop_requests: Cell::new(0),
            }
        }
    }

    impl Control for Fake {
        fn phase(&self) -> Result<Phase> {
            let mut phases = self.phases.borrow_mut();
            Ok(if phases.len() > 1 {
                phases.pop().unwrap()
            } else {
                phases[0]
            })
        }

        fn request_stop(&self) -> Result<bool> {
            self.stop_requests.set(self.stop_requests.get() + 1);
            Ok(self.accepts.borrow_mut().pop().unwrap_or(true))
        }
    }

    const TICK: Duration = Duration::from_millis(1);

    #[test]
    fn a_stopped_service_is_not_asked_to_stop() {
        let fake = Fake::new(&[Phase::Stopped], &[]);
        assert_eq!(stop_and_wait(&fake, WAIT, TICK).unwrap(), Stop::WasStopped);
        assert_eq!(fake.stop_requests.get(), 0);
    }

    #[test]
    fn a_running_service_is_asked_once_and_waited_for() {
        use Phase::*;
        let fake = Fake::new(&[Running, StopPending, StopPending, Stopped], &[]);
        assert_eq!(stop_and_wait(&fake, WAIT, TICK).unwrap(), Stop::Stopped);
        assert_eq!(fake.stop_requests.get(), 1);
    }

    #[test]
    fn a_starting_service_is_asked_once_it_can_take_the_stop() {
        use Phase::*;
        let fake = Fake::new(
            &[StartPending, Running, Running, StopPending, Stopped],
            &[false],
        );
        assert_eq!(stop_and_wait(&fake, WAIT, TICK).unwrap(), Stop::Stopped);
        assert_eq!(fake.stop_requests.get(), 2);
        // Already stopping: waited for, never asked.
        let fake = Fake::new(&[StopPending, Stopped], &[]);
        assert_eq!(stop_and_wait(&fake, WAIT, TICK).unwrap(), Stop::Stopped);
        assert_eq!(fake.stop_requests.get(), 0);
    }

    #[test]
    fn the_waits_are_bounded() {
        let fake = Fake::new(&[Phase::Running], &[]);
        let started = Instant::now();
        let timeout = Duration::from_millis(30);
        assert_eq!(stop_and_wait(&fake, timeout, TICK).unwrap(), Stop::TimedOut);
        assert!(started.elapsed() >= timeout);
        assert_eq!(fake.stop_requests.get(), 1);
        let fake = Fake::new(&[Phase::StartPending], &[]);
        assert_eq!(
            wait_started(&fake, timeout, TICK).unwrap(),
            Phase::StartPending
        );
        let fake = Fake::new(&[Phase::StartPending, Phase::Stopped], &[]);
        assert_eq!(wait_started(&fake, WAIT, TICK).unwrap(), Phase::Stopped);
    }

    #[test]
    fn rotation_is_due_past_the_limit_but_never_for_an_empty_log() {
        assert!(!rotation_due(0, 100, 10));
        assert!(!rotation_due(5, 5, 10));
        assert!(rotation_due(5, 6, 10));
        assert!(rotation_due(11, 1, 10));
        assert!(!rotation_due(u64::MAX, 0, u64::MAX));
    }

    #[test]
    fn the_log_rotates_at_start_and_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("agent.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "old run\n".repeat(4)).unwrap();
        // Past the limit at start: moved to agent.log.1 before anything is written.
        let mut log = RotatingLog::open(&path, 16).unwrap();
        let previous = RotatingLog::previous(&path);
        assert_eq!(
            std::fs::read_to_string(&previous).unwrap(),
            "old run\n".repeat(4)
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        log.write_all(b"line one\n").unwrap();
        log.write_all(b"line 2\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "line one\nline 2\n"
        );
        // The next line would pass 16 bytes: the log moves aside, replacing the older one.
        log.write_all(b"line three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&previous).unwrap(),
            "line one\nline 2\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line three\n");
        // A line longer than the limit still goes into an empty log.
        let mut log = RotatingLog::open(&dir.path().join("big.log"), 4).unwrap();
        log.write_all(b"longer than four\n").unwrap();
        log.flush().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("big.log")).unwrap(),
            "longer than four\n"
        );
        // Under the limit at start: appended to.
        drop(log);
        let mut log = RotatingLog::open(&path, 1024).unwrap();
        log.write_all(b"next run\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "line three\nnext run\n"
        );
    }
}
