//! Helpers for the end-to-end tests: locate the built binaries, run a real collector in a
//! temporary directory on a free loopback port, enroll real agents against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test support code

pub mod proxy;
pub mod rt;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary in the same target profile as this test
/// (`target/debug/deps/<test>` → `target/debug/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the end-to-end tests",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a command to completion, with a bound on its time. Its output is drained while it runs,
/// so a command printing more than a pipe holds never blocks.
pub fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command timed out: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A real collector: `init` in a temporary directory, then `serve` until dropped.
pub struct Collector {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub fingerprint: String,
    child: Option<Child>,
}

impl Collector {
    pub fn start() -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let out = run(Command::new(bin("steward-collector"))
            .args(["init", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen", &format!("127.0.0.1:{port}")]));
        assert!(out.status.success(), "init failed: {}", stderr(&out));
        let fingerprint = stdout(&out).lines().last().unwrap().to_string();
        let mut collector = Collector {
            dir,
            port,
            fingerprint,
            child: None,
        };
        collector.serve();
        collector
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Starts `serve` and waits until the port accepts connections.
    pub fn serve(&mut self) {
        self.spawn_serve(Stdio::null());
    }

    /// Starts `serve` (its stdout to `stdout`, its log to `serve.log`) and waits until the
    /// port accepts connections.
    fn spawn_serve(&mut self, stdout: impl Into<Stdio>) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let child = Command::new(bin("steward-collector"))
            .args(["serve", "--data-dir"])
            .arg(self.data_dir())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "collector did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops `serve` (SIGKILL: nothing acknowledged may depend on a clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops `serve` the way a service manager does (SIGTERM) and waits for it (at most 60 s);
    /// returns how it exited and how long that took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        self.sigterm();
        self.wait_exit()
    }

    /// Sends `serve` SIGTERM without waiting.
    pub fn sigterm(&self) {
        let child = self.child.as_ref().expect("serve is not running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "cannot send SIGTERM");
    }

    /// Waits for `serve` to exit (at most 60 s); how it exited and how long that took.
    pub fn wait_exit(&mut self) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().expect("serve is not running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("serve did not exit within 60 s: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops `serve`, replaces text in `collector.toml` (each `from` must be there), serves again.
    pub fn reconfigure(&mut self, replacements: &[(&str, &str)]) {
        self.kill();
        let path = self.data_dir().join("collector.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in replacements {
            assert!(text.contains(from), "collector.toml has no {from:?}");
            text = text.replace(from, to);
        }
        std::fs::write(&path, text).unwrap();
        self.serve();
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Runs an admin subcommand against this collector through `--data-dir`.
    pub fn admin(&self, args: &[&str]) -> Output {
        run(Command::new(bin("steward-collector"))
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir()))
    }

    pub fn admin_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.admin(args);
        assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs an admin command with `--json` until `check` accepts its answer (at most 30 s),
    /// or fails with the last answer and the collector's log.
    pub fn wait_for_json(
        &self,
        args: &[&str],
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.admin_json(args);
            if check(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {answer:#}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn token(&self, extra: &[&str]) -> String {
        let mut args = vec!["enroll-token", "create"];
        args.extend_from_slice(extra);
        let out = self.admin(&args);
        assert!(out.status.success(), "token: {}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// Enrolls a new agent with its own state directory; returns that directory.
    pub fn enroll_agent(&self, name: &str) -> PathBuf {
        let state = self.dir.path().join(name);
        let token = self.token(&[]);
        let out = enroll(&self.url(), &token, &self.fingerprint, &state);
        assert!(out.status.success(), "enroll failed: {}", stderr(&out));
        state
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn enroll(url: &str, token: &str, fingerprint: &str, state: &Path) -> Output {
    run(Command::new(bin("steward-agent"))
        .args([
            "enroll",
            "--collector",
            url,
            "--token",
            token,
            "--ca-fingerprint",
            fingerprint,
            "--state-dir",
        ])
        .arg(state))
}

pub fn agent_once(state: &Path) -> Output {
    run(Command::new(bin("steward-agent"))
        .args(["run", "--once", "--state-dir"])
        .arg(state))
}

/// A copy of the agent's hardware fixture tree `name` (`agent/tests/fixtures/hardware/NAME/root`)
/// at `dir/NAME`, for an agent to report as its host with `--root`.
pub fn fixture_root(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    if !root.exists() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../agent/tests/fixtures/hardware")
            .join(name)
            .join("root");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&fixture)
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success(), "cannot copy {}", fixture.display());
    }
    root
}

/// `steward-agent run --once` reporting the host under `root`.
pub fn agent_once_on(state: &Path, root: &Path) -> Output {
    run(Command::new(bin("steward-agent"))
        .args(["run", "--once", "--state-dir"])
        .arg(state)
        .arg("--root")
        .arg(root))
}

impl Collector {
    /// Like [`Collector::serve`], but what `serve` prints on stdout is kept too
    /// (`serve.stdout.log`, see [`Collector::stdout_log`]): for tests that read all it prints.
    pub fn serve_keeping_stdout(&mut self) {
        self.kill();
        let out = std::fs::File::create(self.dir.path().join("serve.stdout.log")).unwrap();
        self.spawn_serve(out);
    }

    pub fn stdout_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.stdout.log")).unwrap_or_default()
    }
}
