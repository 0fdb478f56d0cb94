//! `steward-agent install` / `uninstall` through the real binary, against operating-system
//! images in temporary directories (`--image`): systemd (enabled offline by the real
//! `systemctl --root`, its user made by the real `systemd-sysusers --root`), OpenRC and launchd.
//! Idempotence, the config rules, the package's files, and the refusal without privilege.
#![allow(clippy::unwrap_used, clippy::expect_used)] // reason: test code

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use steward_e2e::{bin, run, stderr, stdout};

fn agent(args: &[&str]) -> Output {
    run(Command::new(bin("steward-agent")).args(args))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An empty image with systemd in it.
fn systemd_image() -> tempfile::TempDir {
    let image = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(image.path().join("lib/systemd")).unwrap();
    std::fs::write(image.path().join("lib/systemd/systemd"), "").unwrap();
    image
}

fn read(image: &Path, file: &str) -> String {
    std::fs::read_to_string(image.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn exists(image: &Path, file: &str) -> bool {
    image.join(file).symlink_metadata().is_ok()
}

fn installed(output: &Output) {
    assert!(
        output.status.success(),
        "install failed: {}\n{}",
        stdout(output),
        stderr(output)
    );
}

#[test]
fn systemd_install_is_complete_hardened_and_idempotent() {
    let image = systemd_image();
    let root = image.path();
    let first = agent(&["install", "--image", path(root)]);
    installed(&first);
    let out = stdout(&first);
    assert!(
        out.contains("not started: this agent is not enrolled yet"),
        "{out}"
    );

    // The binary, the default config, the unit pointing at both, the user, the state dir.
    let binary = std::fs::read(root.join("usr/local/bin/steward-agent")).unwrap();
    assert_eq!(binary, std::fs::read(bin("steward-agent")).unwrap());
    assert_eq!(
        std::fs::metadata(root.join("usr/local/bin/steward-agent"))
            .unwrap()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        read(root, "etc/steward/agent.toml"),
        read(&repo(), "packaging/agent.toml")
    );
    let unit = read(root, "etc/systemd/system/steward-agent.service");
    assert!(unit.contains(
        "\nExecStart=/usr/local/bin/steward-agent run --config /etc/steward/agent.toml\n"
    ));
    assert!(unit.contains("\nProtectSystem=strict\n"));
    // Enabled offline by systemctl itself.
    let wants = root.join("etc/systemd/system/multi-user.target.wants/steward-agent.service");
    assert_eq!(
        std::fs::read_link(&wants).unwrap(),
        PathBuf::from("/etc/systemd/system/steward-agent.service")
    );
    let passwd = read(root, "etc/passwd");
    let user = passwd
        .lines()
        .find(|l| l.starts_with("steward-agent:"))
        .unwrap_or_else(|| panic!("no steward-agent user in {passwd}"));
    let uid: u32 = user.split(':').nth(2).unwrap().parse().unwrap();
    let state = std::fs::metadata(root.join("var/lib/steward-agent")).unwrap();
    assert_eq!((state.uid(), state.mode() & 0o777), (uid, 0o700));

    // Again: nothing rewritten.
    let second = agent(&["install", "--image", path(root)]);
    installed(&second);
    let out = stdout(&second);
    assert!(!out.contains("wrote") && !out.contains("updated"), "{out}");
    assert!(out.contains("unchanged"), "{out}");

    // Uninstall keeps config and state, removes the rest; a second one has nothing to do.
    let removed = agent(&["uninstall", "--image", path(root)]);
    installed(&removed);
    for gone in [
        "etc/systemd/system/steward-agent.service",
        "etc/systemd/system/multi-user.target.wants/steward-agent.service",
        "usr/local/bin/steward-agent",
        "etc/sysusers.d/steward-agent.conf",
    ] {
        assert!(!exists(root, gone), "{gone} is still there");
    }
    assert!(exists(root, "etc/steward/agent.toml"));
    assert!(exists(root, "var/lib/steward-agent"));
    let again = agent(&["uninstall", "--image", path(root)]);
    installed(&again);
    assert!(
        stdout(&again).contains("not installed"),
        "{}",
        stdout(&again)
    );
    let purged = agent(&["uninstall", "--purge", "--image", path(root)]);
    installed(&purged);
    assert!(!exists(root, "etc/steward/agent.toml"));
    assert!(!exists(root, "var/lib/steward-agent"));
}

#[test]
fn a_config_changed_locally_is_never_overwritten() {
    let image = systemd_image();
    let root = image.path();
    std::fs::create_dir_all(root.join("etc/steward")).unwrap();
    std::fs::write(root.join("etc/steward/agent.toml"), "interval_secs = 30\n").unwrap();
    let other = root.join("other.toml");
    std::fs::write(&other, "interval_secs = 60\n").unwrap();

    // With a different --config: refused before anything is written.
    let refused = agent(&["install", "--config", path(&other), "--image", path(root)]);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("agent.toml was changed locally"),
        "{message}"
    );
    assert!(!exists(root, "etc/systemd/system/steward-agent.service"));
    assert!(!exists(root, "usr/local/bin/steward-agent"));
    assert_eq!(read(root, "etc/steward/agent.toml"), "interval_secs = 30\n");

    // Without one: kept, and the install goes on.
    let kept = agent(&["install", "--image", path(root)]);
    installed(&kept);
    assert!(
        stdout(&kept).contains("(changed locally)"),
        "{}",
        stdout(&kept)
    );
    assert_eq!(read(root, "etc/steward/agent.toml"), "interval_secs = 30\n");

    // The same content as --config: nothing to do.
    std::fs::write(&other, "interval_secs = 30\n").unwrap();
    let same = agent(&["install", "--config", path(&other), "--image", path(root)]);
    installed(&same);

    // A broken --config is a config error naming the file and line, and changes nothing.
    std::fs::write(&other, "interval_secs = 30\nbogus = 1\n").unwrap();
    let broken = agent(&["install", "--config", path(&other), "--image", path(root)]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        stderr(&broken).contains("other.toml"),
        "{}",
        stderr(&broken)
    );
    assert!(stderr(&broken).contains("line 2"), "{}", stderr(&broken));
}

#[test]
fn the_untouched_default_config_gives_way_to_an_explicit_one() {
    let image = systemd_image();
    let root = image.path();
    installed(&agent(&["install", "--image", path(root)]));
    let mine = root.join("mine.toml");
    std::fs::write(&mine, "interval_secs = 60\nstate_dir = \"/srv/steward\"\n").unwrap();
    installed(&agent(&[
        "install",
        "--config",
        path(&mine),
        "--image",
        path(root),
    ]));
    assert_eq!(
        read(root, "etc/steward/agent.toml"),
        read(root, "mine.toml")
    );
    // The unit follows the state directory the config names.
    let unit = read(root, "etc/systemd/system/steward-agent.service");
    assert!(unit.contains("\nReadWritePaths=/srv/steward\n"), "{unit}");
    assert!(unit.contains("\nConditionPathExists=/srv/steward/agent.json\n"));
    assert!(exists(root, "srv/steward"));
}

#[test]
fn a_packaged_agent_uses_the_packages_binary_and_unit() {
    let image = systemd_image();
    let root = image.path();
    for (file, text) in [
        ("usr/bin/steward-agent", "packaged binary"),
        (
            "usr/lib/systemd/system/steward-agent.service",
            &read(&repo(), "packaging/systemd/steward-agent.service"),
        ),
        (
            "usr/lib/sysusers.d/steward-agent.conf",
            &read(&repo(), "packaging/sysusers/steward-agent.conf"),
        ),
    ] {
        std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
        std::fs::write(root.join(file), text).unwrap();
    }
    let output = agent(&["install", "--image", path(root)]);
    installed(&output);
    assert!(stdout(&output).contains("using the packaged steward-agent.service"));
    assert!(!exists(root, "usr/local/bin/steward-agent"));
    assert!(!exists(root, "etc/systemd/system/steward-agent.service"));
    assert!(!exists(root, "etc/sysusers.d/steward-agent.conf"));
    assert!(exists(
        root,
        "etc/systemd/system/multi-user.target.wants/steward-agent.service"
    ));
    assert!(read(root, "etc/passwd").contains("steward-agent:"));
}

#[test]
fn openrc_install_writes_a_valid_script_in_the_default_runlevel() {
    let image = tempfile::tempdir().unwrap();
    let root = image.path();
    std::fs::create_dir_all(root.join("sbin")).unwrap();
    std::fs::write(root.join("sbin/openrc-run"), "").unwrap();
    let output = agent(&["install", "--image", path(root)]);
    installed(&output);
    let script = root.join("etc/init.d/steward-agent");
    assert_eq!(std::fs::metadata(&script).unwrap().mode() & 0o777, 0o755);
    let text = read(root, "etc/init.d/steward-agent");
    assert!(text.contains("command=\"/usr/local/bin/steward-agent\""));
    assert!(text.contains("command_user=\"steward-agent:steward-agent\""));
    let syntax = run(Command::new("sh").arg("-n").arg(&script));
    assert!(syntax.status.success(), "{}", stderr(&syntax));
    assert_eq!(
        std::fs::read_link(root.join("etc/runlevels/default/steward-agent")).unwrap(),
        PathBuf::from("/etc/init.d/steward-agent")
    );
    installed(&agent(&["install", "--image", path(root)]));

    installed(&agent(&["uninstall", "--image", path(root)]));
    assert!(!exists(root, "etc/init.d/steward-agent"));
    assert!(!exists(root, "etc/runlevels/default/steward-agent"));
}

#[test]
fn launchd_install_writes_a_launch_daemon() {
    let image = tempfile::tempdir().unwrap();
    let root = image.path();
    let output = agent(&["install", "--init", "launchd", "--image", path(root)]);
    installed(&output);
    let plist = std::fs::read(root.join("Library/LaunchDaemons/org.steward.agent.plist")).unwrap();
    let top = steward_agent::inventory::software::plist::top_level(&plist).unwrap();
    assert_eq!(top.string("Label"), Some("org.steward.agent"));
    let text = String::from_utf8(plist).unwrap();
    assert!(text.contains("<string>/usr/local/bin/steward-agent</string>"));
    assert!(text.contains("<key>/var/lib/steward-agent/agent.json</key>"));
    installed(&agent(&[
        "uninstall",
        "--init",
        "launchd",
        "--image",
        path(root),
    ]));
    assert!(!exists(
        root,
        "Library/LaunchDaemons/org.steward.agent.plist"
    ));
}

#[test]
fn an_image_without_a_known_service_manager_is_named() {
    let image = tempfile::tempdir().unwrap();
    let output = agent(&["install", "--image", path(image.path())]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no supported service manager found"),
        "{}",
        stderr(&output)
    );
    let missing = agent(&["install", "--image", "/nonexistent/steward-image"]);
    assert!(
        stderr(&missing).contains("not a directory"),
        "{}",
        stderr(&missing)
    );
}

/// On the live host, without root: refused with a message saying what to do, nothing written.
#[test]
fn installing_without_privilege_is_refused_clearly() {
    let copy = tempfile::tempdir().unwrap();
    // A copy nobody can run (the build tree may not be reachable for uid 65534).
    let binary = copy.path().join("steward-agent");
    std::fs::copy(bin("steward-agent"), &binary).unwrap();
    std::fs::set_permissions(
        copy.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let as_nobody = |args: &[&str]| {
        let mut command = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            c.arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        command.args(args).env("HOME", copy.path());
        run(&mut command)
    };
    for args in [
        &["install", "--init", "systemd"][..],
        &["uninstall", "--init", "systemd"][..],
    ] {
        let output = as_nobody(args);
        assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
        assert!(
            stderr(&output).contains("needs root: run it with sudo"),
            "{}",
            stderr(&output)
        );
    }
}

fn is_root() -> bool {
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().metadata().unwrap().uid() == 0
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The live path, on this host as root, without touching it: in a private mount namespace
/// `/etc`, `/usr/local` and `/var/lib` are overlays whose writes land in a scratch directory,
/// `/run/systemd/system` says systemd runs, the real `systemd-sysusers` makes the user, and a
/// stand-in `systemctl` records what the install asks of the service manager.
#[test]
fn live_systemd_install_enables_starts_once_enrolled_and_uninstalls() {
    if !is_root()
        || run(Command::new("unshare").args(["--mount", "true"]))
            .status
            .code()
            != Some(0)
    {
        eprintln!("skipped: needs root and mount namespaces (CI runs as root)");
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let script = results.path().join("live.sh");
    std::fs::write(
        &script,
        r#"set -eu
T=$1; R=$2; BIN=$3
mount -t tmpfs none "$T"
for d in etc usr/local var/lib; do
    mkdir -p "$T/up/$d" "$T/work/$d"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/up/$d,workdir=$T/work/$d" "/$d"
done
mount -t tmpfs none /run
mkdir -p /run/systemd/system "$T/fake"
printf '#!/bin/sh\necho "systemctl $*" >> %s/calls\n' "$R" > "$T/fake/systemctl"
chmod +x "$T/fake/systemctl"
export PATH="$T/fake:$PATH"
"$BIN" install > "$R/first.out" 2>&1
echo "--" >> "$R/calls"
# Enrolled (the identity exists): the second install starts the service.
echo '{}' > /var/lib/steward-agent/agent.json
"$BIN" install > "$R/second.out" 2>&1
stat -c '%U %a' /var/lib/steward-agent /var/lib/steward-agent/agent.json > "$R/owners"
cp -a "$T/up" "$R/up"
echo "--" >> "$R/calls"
"$BIN" uninstall --purge > "$R/uninstall.out" 2>&1
ls /etc/systemd/system /usr/local/bin > "$R/after" 2>&1
test ! -e /var/lib/steward-agent && echo purged >> "$R/after"
"#,
    )
    .unwrap();
    let output = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh"])
        .arg(&script)
        .arg(scratch.path())
        .arg(results.path())
        .arg(bin("steward-agent")));
    let r = results.path();
    let show = |f: &str| std::fs::read_to_string(r.join(f)).unwrap_or_default();
    assert!(
        output.status.success(),
        "{}\n{}\nfirst: {}\nsecond: {}",
        stdout(&output),
        stderr(&output),
        show("first.out"),
        show("second.out")
    );
    let calls = show("calls");
    let phases: Vec<&str> = calls.split("--\n").collect();
    assert_eq!(
        phases[0], "systemctl daemon-reload\nsystemctl enable steward-agent.service\n",
        "not enrolled: enabled, not started"
    );
    assert_eq!(
        phases[1],
        "systemctl daemon-reload\nsystemctl enable steward-agent.service\nsystemctl restart steward-agent.service\n"
    );
    assert_eq!(
        phases[2],
        "systemctl disable --now steward-agent.service\nsystemctl daemon-reload\n"
    );
    // The user was made for real, and owns the state directory and what root wrote into it.
    assert!(show("up/etc/passwd").contains("steward-agent:x:"));
    assert_eq!(show("owners"), "steward-agent 700\nsteward-agent 644\n");
    assert!(show("up/etc/systemd/system/steward-agent.service").contains("ProtectSystem=strict"));
    assert!(r.join("up/usr/local/bin/steward-agent").exists());
    assert!(
        show("second.out").contains("started steward-agent"),
        "{}",
        show("second.out")
    );
    let after = show("after");
    assert!(
        !after.contains("steward-agent.service") && !after.contains("steward-agent\n"),
        "{after}"
    );
    assert!(after.contains("purged"), "{after}");
}
