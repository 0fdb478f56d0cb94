//! Man pages and shell completions for `steward-agent` and `steward-collector`, rendered from
//! the same clap definitions the binaries parse with (`steward_agent::cli::Cli`,
//! `steward_collector::cli::Cli`), so the packages never document a flag that does not exist.
//!
//! Layout written under the output directory (cargo-deb gzips the man pages it packages):
//!
//! ```text
//! man/steward-agent.1  man/steward-agent-enroll.1 ...  (one page per visible subcommand, git style)
//! completions/bash/steward-agent       completions/zsh/_steward-agent
//! completions/fish/steward-agent.fish  (and the same three for steward-collector)
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{Roff, roman};

/// One program the packages ship: its clap command and what its top-level man page adds.
struct Program {
    command: clap::Command,
    /// `FILES` section of the top-level page: (path, what it is).
    files: &'static [(&'static str, &'static str)],
}

fn programs() -> Vec<Program> {
    vec![
        Program {
            command: steward_agent::cli::Cli::command(),
            files: &[
                (
                    "/etc/steward/agent.toml",
                    "Configuration (a conffile; a missing file means the defaults).",
                ),
                (
                    "/etc/steward/asset.toml",
                    "Optional asset data of this host: asset tag, owner, location, warranty.",
                ),
                (
                    "/var/lib/steward-agent",
                    "State directory: key, certificate, pinned collector CA, spool. The service \
                     starts only once agent.json exists there, i.e. after enroll.",
                ),
            ],
        },
        Program {
            command: steward_collector::cli::Cli::command(),
            files: &[
                (
                    "/etc/steward/collector.toml",
                    "Configuration (a conffile), reached from the data directory through the \
                     link collector.toml.",
                ),
                (
                    "/var/lib/steward-collector",
                    "Data directory: database (steward.db), CA, server key, admin token, \
                     secrets key. The service starts only once init has created steward.db.",
                ),
                (
                    "/usr/share/doc/steward-collector/examples/",
                    "A configuration with every key and ticket connector, and example rules.",
                ),
            ],
        },
    ]
}

/// Writes every man page and completion file under `out`; returns the files written, sorted.
pub fn write_all(out: &Path) -> io::Result<Vec<PathBuf>> {
    let man_dir = out.join("man");
    std::fs::create_dir_all(&man_dir)?;
    let mut written = Vec::new();
    for program in programs() {
        let mut command = program.command.disable_help_subcommand(true);
        command.build();
        let name = command.get_name().to_owned();
        let source = format!(
            "Steward {}",
            command.get_version().unwrap_or(env!("CARGO_PKG_VERSION"))
        );
        write_pages(
            &command,
            None,
            &name,
            &source,
            program.files,
            &man_dir,
            &mut written,
        )?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let (dir, file) = match shell {
                Shell::Bash => ("bash", name.clone()),
                Shell::Zsh => ("zsh", format!("_{name}")),
                _ => ("fish", format!("{name}.fish")),
            };
            let dir = out.join("completions").join(dir);
            std::fs::create_dir_all(&dir)?;
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), name.as_str(), &mut text);
            let path = dir.join(file);
            std::fs::write(&path, text)?;
            written.push(path);
        }
    }
    written.sort();
    Ok(written)
}

/// The date of the newest entry of the Debian changelog, as YYYY-MM-DD: the pages' date, so
/// they change with a release and not with every build. (clap_mangen's default, an empty date,
/// shifts the `.TH` arguments: groff then shows the source as the manual's name.)
fn release_date() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let changelog = include_str!("../../debian/changelog");
    // The trailer line: " -- Name <email>  Fri, 04 Dec 2026 22:44:14 +0000".
    let date = changelog
        .lines()
        .find_map(|line| line.strip_prefix(" -- "))
        .and_then(|trailer| trailer.split_once(">  "))
        .map(|(_, date)| date.split_whitespace().collect::<Vec<_>>());
    match date.as_deref() {
        Some([_, day, month, year, ..]) => match MONTHS.iter().position(|m| m == month) {
            Some(index) => format!("{year}-{:02}-{day:0>2}", index + 1),
            None => (*year).to_owned(),
        },
        _ => String::from("-"),
    }
}

/// The page of `command` and, recursively, of each visible subcommand (`steward-agent-run.1`,
/// `steward-collector-ci-conflicts-list.1`). clap's `build` has set each subcommand's display
/// name to the hyphenated path.
fn write_pages(
    command: &clap::Command,
    parent: Option<&str>,
    top: &str,
    source: &str,
    files: &[(&str, &str)],
    man_dir: &Path,
    written: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let page = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    let man = clap_mangen::Man::new(command.clone())
        .date(release_date())
        .source(source)
        .manual("Steward Manual");
    let mut text = Vec::new();
    man.render(&mut text)?;
    let mut roff = Roff::default();
    if parent.is_none() && !files.is_empty() {
        roff.control("SH", ["FILES"]);
        for (path, what) in files {
            roff.control("TP", []);
            roff.text([roman(*path)]);
            roff.text([roman(*what)]);
        }
    }
    let mut see_also: Vec<String> = Vec::new();
    if let Some(parent) = parent {
        see_also.push(format!("{parent}(1)"));
        if parent != top {
            see_also.push(format!("{top}(1)"));
        }
    }
    if top == "steward-agent" {
        see_also.push("steward-collector(1)".into());
    } else if parent.is_none() {
        see_also.push("steward-agent(1)".into());
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(see_also.join(", "))]);
    // `to_roff`, not `to_writer`: the apostrophe preamble is already at the top of the page.
    text.extend_from_slice(roff.to_roff().as_bytes());
    let path = man_dir.join(format!("{page}.1"));
    let mut file = std::fs::File::create(&path)?;
    file.write_all(&text)?;
    file.flush()?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, Some(&page), top, source, &[], man_dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(dir: &Path, path: &str) -> String {
        let text = std::fs::read_to_string(dir.join(path)).unwrap();
        assert!(text.len() > 200, "{path} is only {} bytes", text.len());
        text
    }

    #[test]
    fn writes_man_pages_and_completions() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path()).unwrap();

        let agent = read(dir.path(), "man/steward-agent.1");
        assert!(agent.contains("\n.TH steward-agent 1 "), "{agent}");
        assert_eq!(agent.matches(".ds Aq").count(), 2, "one preamble: {agent}");
        let date = release_date();
        assert!(
            date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
            "{date}"
        );
        assert!(
            agent.contains(&format!(
                ".TH steward-agent 1 {date} \"Steward {}\" \"Steward Manual\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{agent}"
        );
        assert!(
            agent.contains("enroll") && agent.contains("/etc/steward/agent.toml"),
            "{agent}"
        );
        let enroll = read(dir.path(), "man/steward-agent-enroll.1");
        assert!(enroll.contains("ca\\-fingerprint"), "{enroll}");
        assert!(enroll.contains("steward\\-agent(1)"), "{enroll}");
        read(dir.path(), "man/steward-agent-run.1");
        read(dir.path(), "man/steward-collector.1");
        read(dir.path(), "man/steward-collector-init.1");
        // Nested subcommands get their own pages too, named by their whole path.
        let list = read(dir.path(), "man/steward-collector-agents-list.1");
        assert!(list.contains("steward\\-collector\\-agents(1)"), "{list}");
        // No page for clap's `help` subcommand or for hidden arguments.
        assert!(!dir.path().join("man/steward-agent-help.1").exists());
        assert!(!read(dir.path(), "man/steward-agent-run.1").contains("windows"));

        let bash = read(dir.path(), "completions/bash/steward-agent");
        assert!(bash.contains("enroll") && bash.contains("--ca-fingerprint"));
        assert!(read(dir.path(), "completions/bash/steward-collector").contains("enroll-token"));
        assert!(
            read(dir.path(), "completions/zsh/_steward-agent")
                .starts_with("#compdef steward-agent")
        );
        assert!(read(dir.path(), "completions/zsh/_steward-collector").contains("quickstart"));
        assert!(read(dir.path(), "completions/fish/steward-agent.fish").contains("inventory"));
        assert!(read(dir.path(), "completions/fish/steward-collector.fish").contains("silence"));

        // Every file written is under the output directory, and nothing is written twice.
        let mut unique = written.clone();
        unique.dedup();
        assert_eq!(unique.len(), written.len());
        assert!(written.iter().all(|p| p.starts_with(dir.path())));
        assert!(written.len() > 20, "{written:?}");
    }
}
