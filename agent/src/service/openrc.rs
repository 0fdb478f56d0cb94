//! OpenRC (Alpine-based gateways): the init script from `packaging/openrc/steward-agent`, added
//! to the default runlevel. The script creates the service user and hands it the state
//! directory at each start, so an image prepared offline needs nothing more.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Host, Log, SERVICE_NAME, ServiceManager};

const SCRIPT: &str = include_str!("../../../packaging/openrc/steward-agent");
const SCRIPT_PATH: &str = "/etc/init.d/steward-agent";
const RUNLEVEL_LINK: &str = "/etc/runlevels/default/steward-agent";

#[derive(Debug)]
pub struct OpenRc;

/// OpenRC is the running init (it keeps `/run/openrc`), or the image ships it.
pub fn detect(host: &Host) -> bool {
    if host.live() {
        Path::new("/run/openrc").is_dir()
    } else {
        host.path("/sbin/openrc-run").exists() || host.path("/usr/sbin/openrc-run").exists()
    }
}

/// The init script for this install.
pub fn render_script(host: &Host) -> String {
    SCRIPT
        .replace("@BINARY@", &host.binary.display().to_string())
        .replace("@CONFIG@", &host.config.display().to_string())
        .replace("@STATE_DIR@", &host.state_dir.display().to_string())
}

impl ServiceManager for OpenRc {
    fn install(&self, host: &Host, log: &mut Log) -> Result<()> {
        super::write_file(
            &host.path(SCRIPT_PATH),
            render_script(host).as_bytes(),
            0o755,
            log,
        )?;
        #[cfg(unix)]
        super::own_state_dir(host, super::lookup_user(host, super::SERVICE_USER), log)?;
        match &host.image {
            None => {
                if !host.path(RUNLEVEL_LINK).exists() {
                    host.run("rc-update", &["add", SERVICE_NAME, "default"], log)?;
                }
                if host.start {
                    host.run("rc-service", &[SERVICE_NAME, "restart"], log)?;
                    log.line(format!("started {SERVICE_NAME}"));
                }
            }
            // What `rc-update add` does, offline.
            Some(_) => link_runlevel(host, log)?,
        }
        Ok(())
    }

    fn uninstall(&self, host: &Host, log: &mut Log) -> Result<()> {
        if !host.path(SCRIPT_PATH).exists() {
            return Ok(());
        }
        if host.live() {
            host.run_quietly("rc-service", &[SERVICE_NAME, "stop"], log);
            host.run_quietly("rc-update", &["del", SERVICE_NAME, "default"], log);
        }
        super::remove_file(&host.path(RUNLEVEL_LINK), log)?;
        super::remove_file(&host.path(SCRIPT_PATH), log)?;
        Ok(())
    }
}

fn link_runlevel(host: &Host, log: &mut Log) -> Result<()> {
    let link = host.path(RUNLEVEL_LINK);
    if link.symlink_metadata().is_ok() {
        return Ok(());
    }
    let dir = host.path("/etc/runlevels/default");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(SCRIPT_PATH, &link)
        .with_context(|| format!("cannot link {}", link.display()))?;
    log.line(format!("enabled in {}", link.display()));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_script_runs_the_installed_binary_unprivileged() {
        let host = Host {
            image: None,
            binary: PathBuf::from("/usr/local/bin/steward-agent"),
            config: PathBuf::from("/etc/steward/agent.toml"),
            state_dir: PathBuf::from("/var/lib/steward-agent"),
            start: false,
            enrolled: false,
            purge: false,
        };
        let script = render_script(&host);
        assert!(script.starts_with("#!/sbin/openrc-run\n"));
        assert!(script.contains("\ncommand=\"/usr/local/bin/steward-agent\"\n"));
        assert!(script.contains("\ncommand_args=\"run --config /etc/steward/agent.toml\"\n"));
        assert!(script.contains("\ncommand_user=\"steward-agent:steward-agent\"\n"));
        assert!(script.contains("\nstate_dir=\"/var/lib/steward-agent\"\n"));
        assert!(!script.contains('@'), "a placeholder is left");
    }
}
