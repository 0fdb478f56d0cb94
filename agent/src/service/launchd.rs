//! launchd (macOS): a launch daemon from `packaging/launchd/org.steward.agent.plist` in
//! `/Library/LaunchDaemons`, bootstrapped into the system domain. launchd keeps the agent
//! running while its identity file exists, so it starts by itself after enrollment.

use anyhow::Result;

use super::{Host, Log, ServiceManager};

const PLIST: &str = include_str!("../../../packaging/launchd/org.steward.agent.plist");
pub const LABEL: &str = "org.steward.agent";
const PLIST_PATH: &str = "/Library/LaunchDaemons/org.steward.agent.plist";

#[derive(Debug)]
pub struct Launchd;

/// The property list for this install.
pub fn render_plist(host: &Host) -> String {
    PLIST
        .replace("@BINARY@", &xml_escape(&host.binary.display().to_string()))
        .replace("@CONFIG@", &xml_escape(&host.config.display().to_string()))
        .replace(
            "@STATE_DIR@",
            &xml_escape(&host.state_dir.display().to_string()),
        )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl ServiceManager for Launchd {
    fn install(&self, host: &Host, log: &mut Log) -> Result<()> {
        let plist = host.path(PLIST_PATH);
        let written = super::write_file(&plist, render_plist(host).as_bytes(), 0o644, log)?;
        #[cfg(unix)]
        super::own_state_dir(host, None, log)?;
        if host.live() {
            let service = format!("system/{LABEL}");
            let plist = plist.display().to_string();
            host.run("launchctl", &["enable", &service], log)?;
            if host.start || written != super::Written::Unchanged {
                // Reload so a changed plist or binary takes effect; not loaded yet is fine.
                host.run_quietly("launchctl", &["bootout", &service], log);
                host.run("launchctl", &["bootstrap", "system", &plist], log)?;
            }
        }
        Ok(())
    }

    fn uninstall(&self, host: &Host, log: &mut Log) -> Result<()> {
        let plist = host.path(PLIST_PATH);
        if !plist.exists() {
            return Ok(());
        }
        if host.live() {
            host.run_quietly("launchctl", &["bootout", &format!("system/{LABEL}")], log);
        }
        super::remove_file(&plist, log)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_plist_names_the_binary_config_and_identity_escaped() {
        let host = Host {
            image: None,
            binary: PathBuf::from("/usr/local/bin/steward-agent"),
            config: PathBuf::from("/etc/steward/agent.toml"),
            state_dir: PathBuf::from("/Library/Steward & Co"),
            start: false,
            enrolled: false,
            purge: false,
        };
        let plist = render_plist(&host);
        assert!(plist.contains("<string>/usr/local/bin/steward-agent</string>"));
        assert!(plist.contains("<string>/etc/steward/agent.toml</string>"));
        assert!(plist.contains("<key>/Library/Steward &amp; Co/agent.json</key>"));
        assert!(!plist.contains('@'), "a placeholder is left");
    }
}
