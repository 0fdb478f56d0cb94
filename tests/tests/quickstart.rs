//! `quickstart --once`: collector, local agent and the host's CI from one command.

use std::process::Command;

use steward_e2e::{bin, run, stderr, stdout};

#[test]
fn quickstart_once_shows_this_hosts_ci_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("qs");
    let hostname = String::from_utf8(Command::new("hostname").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    for round in 1..=2 {
        let out = run(Command::new(bin("steward-collector"))
            .args(["quickstart", "--once", "--data-dir"])
            .arg(&data));
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        let text = stdout(&out);
        // The class comes from this machine's inventory: a VM in CI, a server on bare metal.
        assert!(
            text.contains(&format!("  {hostname}  (server)"))
                || text.contains(&format!("  {hostname}  (virtual_machine)")),
            "round {round}: {text}"
        );
        assert!(
            text.contains("software (") && text.contains("inventory of"),
            "round {round}: the quickstart shows the inventory: {text}"
        );
        assert!(
            text.contains("latest metrics") && text.contains("memory"),
            "round {round}: {text}"
        );
        assert!(
            text.contains(&format!("reports     {round}")),
            "round {round}: {text}"
        );
    }
}
