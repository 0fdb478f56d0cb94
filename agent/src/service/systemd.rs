//! systemd: the hardened unit from `packaging/systemd/steward-agent.service`, the service user
//! from `packaging/sysusers/steward-agent.conf` (systemd-sysusers), enabled with systemctl.
//!
//! Where the Debian package is installed its unit (`/usr/lib/systemd/system`) and sysusers file
//! are used as they are; a binary install writes its own under `/etc`, pointing at the binary it
//! copied to `/usr/local/bin`.

use std::path::Path;

use anyhow::Result;

use super::{Host, Log, PACKAGED_BINARY, SERVICE_NAME, SERVICE_USER, ServiceManager};

const UNIT: &str = include_str!("../../../packaging/systemd/steward-agent.service");
const SYSUSERS: &str = include_str!("../../../packaging/sysusers/steward-agent.conf");
const UNIT_FILE: &str = "steward-agent.service";
const LOCAL_UNIT: &str = "/etc/systemd/system/steward-agent.service";
const PACKAGED_UNITS: &[&str] = &[
    "/usr/lib/systemd/system/steward-agent.service",
    "/lib/systemd/system/steward-agent.service",
];
const LOCAL_SYSUSERS: &str = "/etc/sysusers.d/steward-agent.conf";
const PACKAGED_SYSUSERS: &str = "/usr/lib/sysusers.d/steward-agent.conf";

#[derive(Debug)]
pub struct Systemd;

/// systemd is the running init (sd_booted(3)), or the image ships it.
pub fn detect(host: &Host) -> bool {
    if host.live() {
        Path::new("/run/systemd/system").is_dir()
    } else {
        ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
            .iter()
            .any(|path| host.path(path).exists())
    }
}

/// The unit for this install: the packaged one with the binary, config and state directory
/// this host uses.
pub fn render_unit(host: &Host) -> String {
    let mut unit = UNIT
        .replace(
            "ExecStart=/usr/bin/steward-agent run --config /etc/steward/agent.toml",
            &format!(
                "ExecStart={} run --config {}",
                host.binary.display(),
                host.config.display()
            ),
        )
        .replace(
            "ConditionPathExists=/var/lib/steward-agent/agent.json",
            &format!(
                "ConditionPathExists={}",
                host.state_dir.join("agent.json").display()
            ),
        );
    // A state directory elsewhere than StateDirectory= must stay writable under
    // ProtectSystem=strict.
    if host.state_dir != Path::new(crate::config::DEFAULT_STATE_DIR) {
        unit = unit.replace(
            "StateDirectoryMode=0700\n",
            &format!(
                "StateDirectoryMode=0700\nReadWritePaths={}\n",
                host.state_dir.display()
            ),
        );
    }
    unit
}

fn packaged_unit(host: &Host) -> bool {
    host.binary == Path::new(PACKAGED_BINARY)
        && PACKAGED_UNITS.iter().any(|unit| host.path(unit).exists())
}

impl ServiceManager for Systemd {
    fn install(&self, host: &Host, log: &mut Log) -> Result<()> {
        // The service user.
        let sysusers = if host.path(PACKAGED_SYSUSERS).exists() {
            host.path(PACKAGED_SYSUSERS)
        } else {
            let path = host.path(LOCAL_SYSUSERS);
            super::write_file(&path, SYSUSERS.as_bytes(), 0o644, log)?;
            path
        };
        if super::lookup_user(host, SERVICE_USER).is_none() {
            let sysusers = sysusers.display().to_string();
            match &host.image {
                None => host.run("systemd-sysusers", &[&sysusers], log)?,
                Some(root) => {
                    let root = format!("--root={}", root.display());
                    if !host.run_quietly("systemd-sysusers", &[&root, &sysusers], log) {
                        log.line(format!(
                            "the {SERVICE_USER} user is created at first boot (systemd-sysusers)"
                        ));
                    }
                }
            }
        }
        #[cfg(unix)]
        super::own_state_dir(host, super::lookup_user(host, SERVICE_USER), log)?;

        // The unit.
        let local_unit = host.path(LOCAL_UNIT);
        if packaged_unit(host) {
            // A unit left by an earlier binary install would shadow the package's.
            let mut earlier = host.clone();
            earlier.binary = super::LOCAL_BINARY.into();
            if std::fs::read_to_string(&local_unit).ok() == Some(render_unit(&earlier)) {
                super::remove_file(&local_unit, log)?;
            }
            log.line(format!("using the packaged {UNIT_FILE}"));
        } else {
            super::write_file(&local_unit, render_unit(host).as_bytes(), 0o644, log)?;
        }

        // Enabled at boot; started now only when enrolled.
        match &host.image {
            None => {
                host.run("systemctl", &["daemon-reload"], log)?;
                host.run("systemctl", &["enable", UNIT_FILE], log)?;
                if host.start {
                    host.run("systemctl", &["restart", UNIT_FILE], log)?;
                    log.line(format!("started {SERVICE_NAME}"));
                }
            }
            Some(root) => {
                let root = format!("--root={}", root.display());
                host.run("systemctl", &[&root, "enable", UNIT_FILE], log)?;
            }
        }
        Ok(())
    }

    fn uninstall(&self, host: &Host, log: &mut Log) -> Result<()> {
        let local_unit = host.path(LOCAL_UNIT);
        let installed =
            local_unit.exists() || PACKAGED_UNITS.iter().any(|unit| host.path(unit).exists());
        if !installed {
            return Ok(());
        }
        match &host.image {
            None => {
                host.run_quietly("systemctl", &["disable", "--now", UNIT_FILE], log);
            }
            Some(root) => {
                let root = format!("--root={}", root.display());
                host.run_quietly("systemctl", &[&root, "disable", UNIT_FILE], log);
            }
        }
        super::remove_file(&local_unit, log)?;
        super::remove_file(&host.path(LOCAL_SYSUSERS), log)?;
        if host.live() {
            host.run_quietly("systemctl", &["daemon-reload"], log);
        }
        if PACKAGED_UNITS.iter().any(|unit| host.path(unit).exists()) {
            log.line(
                "the steward-agent package still provides the unit: remove it with `apt remove steward-agent`",
            );
        }
        log.line(format!(
            "kept the {SERVICE_USER} user (system users are not removed: files may still belong to it)"
        ));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn host(binary: &str, state_dir: &str) -> Host {
        Host {
            image: None,
            binary: PathBuf::from(binary),
            config: PathBuf::from("/etc/steward/agent.toml"),
            state_dir: PathBuf::from(state_dir),
            start: false,
            enrolled: false,
            purge: false,
        }
    }

    #[test]
    fn the_unit_runs_the_installed_binary_with_the_installed_config() {
        let unit = render_unit(&host(
            "/usr/local/bin/steward-agent",
            "/var/lib/steward-agent",
        ));
        assert!(unit.contains(
            "\nExecStart=/usr/local/bin/steward-agent run --config /etc/steward/agent.toml\n"
        ));
        assert!(!unit.contains("ReadWritePaths"));
        // The packaged unit is the render for the packaged binary.
        assert_eq!(
            render_unit(&host(PACKAGED_BINARY, "/var/lib/steward-agent")),
            UNIT
        );
    }

    #[test]
    fn a_state_directory_elsewhere_stays_writable_and_gates_the_start() {
        let unit = render_unit(&host(PACKAGED_BINARY, "/srv/steward"));
        assert!(unit.contains("\nReadWritePaths=/srv/steward\n"));
        assert!(unit.contains("\nConditionPathExists=/srv/steward/agent.json\n"));
    }

    #[test]
    fn the_unit_keeps_its_hardening() {
        for line in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=read-only",
            "PrivateTmp=yes",
            "StateDirectory=steward-agent",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
            "SystemCallFilter=@system-service",
            "CapabilityBoundingSet=CAP_DAC_READ_SEARCH",
            "MemoryMax=128M",
            "User=steward-agent",
        ] {
            assert!(UNIT.lines().any(|l| l == line), "the unit lacks {line}");
        }
    }
}
