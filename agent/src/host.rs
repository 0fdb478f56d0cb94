//! Who this host is: names, OS release, kernel, architecture, machine-id. Identity files are read
//! under the configured root so fixture trees can stand in for a real machine; the kernel and
//! architecture are the live host's.

use std::path::Path;

use steward_shared::v1::HostIdentity;

/// Reads the host identity. Missing files leave their fields empty: a host without
/// `/etc/machine-id` is still a host.
pub fn identity(root: &Path) -> HostIdentity {
    let live = root == Path::new("/");
    let hostname = if live {
        sysinfo::System::host_name().unwrap_or_default()
    } else {
        read_trimmed(root, "etc/hostname")
    };
    let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
    let fqdn = fqdn_from_hosts(&hostname, &hosts).unwrap_or_else(|| hostname.clone());
    let os_release = OS_RELEASE_FILES
        .iter()
        .find_map(|p| std::fs::read_to_string(root.join(p)).ok())
        .unwrap_or_default();
    let (os_name, os_version) = parse_os_release(&os_release);
    let machine_id = MACHINE_ID_FILES
        .iter()
        .map(|p| read_trimmed(root, p))
        .find(|id| !id.is_empty())
        .unwrap_or_default();
    HostIdentity {
        hostname,
        fqdn,
        os_name: if os_name.is_empty() && live {
            sysinfo::System::name().unwrap_or_default()
        } else {
            os_name
        },
        os_version: if os_version.is_empty() && live {
            sysinfo::System::os_version().unwrap_or_default()
        } else {
            os_version
        },
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        arch: sysinfo::System::cpu_arch(),
        machine_id,
        agent_version: crate::AGENT_VERSION.to_string(),
    }
}

/// Where os-release is, in order (relative to the root).
pub(crate) const OS_RELEASE_FILES: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
/// Where the machine id is, in order (relative to the root).
pub(crate) const MACHINE_ID_FILES: [&str; 2] = ["etc/machine-id", "var/lib/dbus/machine-id"];

fn read_trimmed(root: &Path, relative: &str) -> String {
    std::fs::read_to_string(root.join(relative))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `NAME` and `VERSION_ID` from os-release text (shell-style `KEY="value"` lines).
pub fn parse_os_release(text: &str) -> (String, String) {
    let mut name = String::new();
    let mut version = String::new();
    for (key, value) in os_release_pairs(text) {
        match key {
            "NAME" => name = value,
            "VERSION_ID" => version = value,
            _ => {}
        }
    }
    (name, version)
}

/// The `KEY=value` assignments of os-release text, values unquoted as os-release(5) says: in
/// double quotes `\"`, `\\`, `\$` and `` \` `` are escapes, single quotes are literal, an unquoted
/// value may escape any character. Comments and lines without `=` are skipped.
pub(crate) fn os_release_pairs(text: &str) -> impl Iterator<Item = (&str, String)> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.starts_with('#') {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        Some((key.trim(), unquote_shell_value(value.trim())))
    })
}

fn unquote_shell_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    match value.chars().next() {
        Some('\'') => out.extend(chars.skip(1).take_while(|c| *c != '\'')),
        Some('"') => {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                        Some(other) => {
                            out.push('\\');
                            out.push(other);
                        }
                        None => out.push('\\'),
                    },
                    c => out.push(c),
                }
            }
        }
        _ => {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
        }
    }
    out
}

/// The dotted name `/etc/hosts` gives for this hostname, as `hostname -f` finds it without DNS.
pub fn fqdn_from_hosts(hostname: &str, hosts: &str) -> Option<String> {
    if hostname.contains('.') {
        return Some(hostname.to_string());
    }
    if hostname.is_empty() {
        return None;
    }
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter_map(|line| {
            let names: Vec<&str> = line.split_whitespace().skip(1).collect();
            names.contains(&hostname).then(|| {
                names
                    .iter()
                    .find(|n| n.contains('.') && n.starts_with(hostname))
                    .map(|n| n.to_string())
            })?
        })
        .next()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn os_release_quoted_and_unquoted() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(
            parse_os_release(text),
            ("Debian GNU/Linux".into(), "12".into())
        );
        assert_eq!(
            parse_os_release("NAME=Alpine Linux\nVERSION_ID=3.20.3\n"),
            ("Alpine Linux".into(), "3.20.3".into())
        );
    }

    #[test]
    fn os_release_escapes() {
        let text = "# comment\nNAME=\"Acme \\\"Linux\\\" \\$HOME \\\\ \\x\"\nVERSION_ID='1.0 \\n'\nID=acme\\ os\n";
        let pairs: Vec<(&str, String)> = os_release_pairs(text).collect();
        assert_eq!(
            pairs,
            [
                ("NAME", "Acme \"Linux\" $HOME \\ \\x".to_string()),
                ("VERSION_ID", "1.0 \\n".to_string()),
                ("ID", "acme os".to_string()),
            ]
        );
    }

    #[test]
    fn fqdn_from_etc_hosts() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 web-01.example.org web-01 # static\n";
        assert_eq!(
            fqdn_from_hosts("web-01", hosts).as_deref(),
            Some("web-01.example.org")
        );
        assert_eq!(fqdn_from_hosts("db-02", hosts), None);
        assert_eq!(
            fqdn_from_hosts("db.example.net", "").as_deref(),
            Some("db.example.net")
        );
    }

    #[test]
    fn identity_comes_from_the_root_tree() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/hostname"), "gw-07\n").unwrap();
        std::fs::write(
            root.path().join("etc/machine-id"),
            "0123abcd0123abcd0123abcd0123abcd\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/os-release"),
            "NAME=\"Raspbian GNU/Linux\"\nVERSION_ID=\"11\"\n",
        )
        .unwrap();
        let id = identity(root.path());
        assert_eq!(id.hostname, "gw-07");
        assert_eq!(id.fqdn, "gw-07");
        assert_eq!(id.machine_id, "0123abcd0123abcd0123abcd0123abcd");
        assert_eq!(id.os_name, "Raspbian GNU/Linux");
        assert_eq!(id.os_version, "11");
        assert_eq!(id.agent_version, crate::AGENT_VERSION);
    }
}
