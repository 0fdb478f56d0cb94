//! Starting and stopping the processes under test: a guard that kills what it started (also on
//! error paths), free loopback ports, and the two peer agents with the work a server gives them.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::procfs;

/// How long a started process gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Connect, read and write timeout for one request to a peer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest response read from a peer; node_exporter's /metrics is a few hundred kB.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;
/// How long `apt-get install` may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Worker processes zabbix_agentd is configured with (`StartAgents`).
pub const ZABBIX_START_AGENTS: u32 = 3;
/// The ports zabbix_agentd accepts as ListenPort.
pub const ZABBIX_PORTS: std::ops::RangeInclusive<u16> = 1024..=32767;

/// The Zabbix items polled each cycle: CPU, memory, filesystem and network, like a Steward report.
pub fn zabbix_items(iface: &str) -> Vec<String> {
    vec![
        "system.cpu.util".to_string(),
        "vm.memory.size[available]".to_string(),
        "vfs.fs.size[/,pused]".to_string(),
        format!("net.if.in[{iface}]"),
    ]
}

/// A process this benchmark started. Dropping it stops the process and any descendants it
/// forked: SIGTERM to the process, a bounded wait, then SIGKILL to whatever is left — always
/// by PID, never by name.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `program args`, with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &Path, args: &[String], log: &Path) -> Result<Proc> {
        Proc::spawn_with_env(name, program, args, &[], log)
    }

    /// [`Proc::spawn`] with extra environment variables.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        log: &Path,
    ) -> Result<Proc> {
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cannot reopen {}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails, with the end of the process's log, if it has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(anyhow!(
                "{} exited early ({status}); end of its log:\n{}",
                self.name,
                self.log_tail()
            )),
            Err(error) => Err(anyhow!("cannot check on {}: {error}", self.name)),
        }
    }

    /// The last lines of the process's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Waits (at most `timeout`) until `port` on loopback accepts connections.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let address = loopback(port);
        loop {
            self.ensure_running()?;
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept connections on {address} within {timeout:?}; end of its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Stops the process and its descendants (what Drop does), now.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.pid();
        // Remember each descendant's name now, so a PID reused later is never signalled.
        let forked: Vec<(u32, Option<String>)> = procfs::descendants(pid)
            .into_iter()
            .map(|child| (child, procfs::comm(child)))
            .collect();
        signal(pid, "TERM");
        let deadline = Instant::now() + STOP_GRACE;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Descendants normally exit with their parent (zabbix_agentd stops its workers); kill
        // any left over.
        for (child, name) in forked {
            if name.is_some() && procfs::comm(child) == name {
                signal(child, "KILL");
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Runs `program args` to completion (killed after `timeout`) and returns its stdout. Output
/// goes through files in `dir` named after `label`, so a chatty child can never block on a pipe.
pub fn run_to_completion(
    program: &Path,
    args: &[String],
    dir: &Path,
    label: &str,
    timeout: Duration,
) -> Result<String> {
    let out_path = dir.join(format!("{label}.out"));
    let err_path = dir.join(format!("{label}.err"));
    let out =
        File::create(&out_path).with_context(|| format!("cannot create {}", out_path.display()))?;
    let err =
        File::create(&err_path).with_context(|| format!("cannot create {}", err_path.display()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for a child")? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{label} took longer than {timeout:?}");
        }
        sleep(Duration::from_millis(20));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        bail!("{label} failed ({status}): {}", stderr.trim());
    }
    Ok(stdout)
}

/// Sends a signal to one PID with `kill(1)` (the workspace forbids unsafe code, so no libc).
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A loopback port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(loopback(0)).context("cannot bind 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("cannot read the bound address")?
        .port())
}

/// A free loopback port in `range`, for daemons that refuse ports outside it (zabbix_agentd
/// accepts ListenPort 1024-32767). Tries at most 2000 ports, starting at a PID-derived offset.
pub fn free_port_in(range: std::ops::RangeInclusive<u16>) -> Result<u16> {
    let (low, high) = (u32::from(*range.start()), u32::from(*range.end()));
    let span = high.saturating_sub(low) + 1;
    let offset = std::process::id() % span;
    for step in 0..span.min(2000) {
        let port = u16::try_from(low + (offset + step * 7) % span).context("port out of range")?;
        if TcpListener::bind(loopback(port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port in {range:?}")
}

/// `path` if it exists; else tries `apt-get install -y package` once. `None` when the peer is
/// not available.
pub fn ensure_installed(path: &Path, package: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    eprintln!(
        "{} is missing: trying apt-get install -y {package}",
        path.display()
    );
    match apt_install(package) {
        Ok(()) if path.is_file() => Some(path.to_path_buf()),
        Ok(()) => {
            eprintln!(
                "{package} installed but {} is still missing",
                path.display()
            );
            None
        }
        Err(error) => {
            eprintln!("cannot install {package}: {error:#}");
            None
        }
    }
}

fn apt_install(package: &str) -> Result<()> {
    let mut child = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run apt-get")?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for apt-get")? {
            if status.success() {
                return Ok(());
            }
            bail!("apt-get failed ({status})");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("apt-get took longer than {INSTALL_TIMEOUT:?}");
        }
        sleep(Duration::from_millis(200));
    }
}

/// Starts prometheus-node-exporter on loopback `port` and waits until it listens.
pub fn start_node_exporter(binary: &Path, port: u16, dir: &Path) -> Result<Proc> {
    let args = vec![format!("--web.listen-address=127.0.0.1:{port}")];
    let mut proc = Proc::spawn(
        "prometheus-node-exporter",
        binary,
        &args,
        &dir.join("node_exporter.log"),
    )?;
    proc.wait_for_port(port, Duration::from_secs(10))?;
    Ok(proc)
}

/// One Prometheus-style scrape: HTTP/1.0 GET /metrics, reading the whole response. Returns the
/// body size in bytes.
pub fn scrape_metrics(port: u16) -> Result<usize> {
    Ok(http_get(port, "/metrics")?.len())
}

/// HTTP/1.0 GET of `path` (with its query) on loopback `port`, reading the whole response
/// (no compression asked for). Returns the body; any status but 200 is an error.
pub fn http_get(port: u16, path: &str) -> Result<Vec<u8>> {
    let mut stream = connect(port)?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n")
                .as_bytes(),
        )
        .context("cannot send the scrape request")?;
    let mut response = read_all(stream)?;
    let head_end =
        find(&response, b"\r\n\r\n").ok_or_else(|| anyhow!("scrape response has no header end"))?;
    let status_line = response
        .split(|&b| b == b'\n')
        .next()
        .map(|line| String::from_utf8_lossy(line).trim().to_string())
        .unwrap_or_default();
    if !status_line.contains(" 200") {
        let body = String::from_utf8_lossy(&response[head_end + 4..]);
        bail!("scrape answered {status_line:?}: {}", body.trim());
    }
    Ok(response.split_off(head_end + 4))
}

/// Writes a zabbix_agentd config in `dir`, starts it in the foreground and waits until it
/// listens on loopback `port`.
pub fn start_zabbix(binary: &Path, port: u16, dir: &Path) -> Result<Proc> {
    let config = dir.join("zabbix_agentd.conf");
    let text = zabbix_config(port, &dir.join("zabbix.pid"));
    fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let args = vec![
        "-f".to_string(),
        "-c".to_string(),
        config.display().to_string(),
    ];
    let mut proc = Proc::spawn("zabbix_agentd", binary, &args, &dir.join("zabbix.log"))?;
    proc.wait_for_port(port, Duration::from_secs(10))?;
    Ok(proc)
}

fn zabbix_config(port: u16, pid_file: &Path) -> String {
    format!(
        "Server=127.0.0.1\nListenIP=127.0.0.1\nListenPort={port}\nAllowRoot=1\nLogType=console\n\
         PidFile={}\nStartAgents={ZABBIX_START_AGENTS}\n",
        pid_file.display()
    )
}

/// One passive check, as a Zabbix server does it: a connection per item, a ZBXD request, the
/// ZBXD reply read to the end. Returns the value; `ZBX_NOTSUPPORTED` is an error.
pub fn zabbix_get(port: u16, key: &str) -> Result<String> {
    let mut stream = connect(port)?;
    stream
        .write_all(&zbxd_frame(key.as_bytes()))
        .with_context(|| format!("cannot send {key}"))?;
    let reply = read_all(stream)?;
    let value = parse_zbxd(&reply).with_context(|| format!("reply to {key}"))?;
    if let Some(reason) = value.strip_prefix("ZBX_NOTSUPPORTED") {
        bail!(
            "{key} is not supported: {}",
            reason.trim_matches(char::from(0))
        );
    }
    Ok(value)
}

/// `ZBXD\x01`, the payload length as 8 bytes little-endian, the payload.
fn zbxd_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(13 + payload.len());
    frame.extend_from_slice(b"ZBXD\x01");
    frame.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn parse_zbxd(reply: &[u8]) -> Result<String> {
    let header = reply
        .get(..13)
        .ok_or_else(|| anyhow!("reply shorter than a ZBXD header"))?;
    if &header[..4] != b"ZBXD" {
        bail!("reply does not start with ZBXD");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[5..13]);
    let len = usize::try_from(u64::from_le_bytes(len)).context("reply length")?;
    let body = reply
        .get(13..13 + len)
        .ok_or_else(|| anyhow!("reply shorter than its header says"))?;
    Ok(String::from_utf8_lossy(body).into_owned())
}

fn connect(port: u16) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&loopback(port), IO_TIMEOUT)
        .with_context(|| format!("cannot connect to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Reads until the peer closes (bounded by size and by the read timeout).
fn read_all(stream: TcpStream) -> Result<Vec<u8>> {
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .context("cannot read the response")?;
    Ok(response)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zbxd_frame_layout() {
        let frame = zbxd_frame(b"agent.ping");
        assert_eq!(&frame[..5], b"ZBXD\x01");
        assert_eq!(&frame[5..13], &10u64.to_le_bytes());
        assert_eq!(&frame[13..], b"agent.ping");
        assert_eq!(parse_zbxd(&frame).unwrap(), "agent.ping");
    }

    #[test]
    fn short_zbxd_replies_are_errors() {
        assert!(parse_zbxd(b"ZBXD\x01").is_err());
        let mut frame = zbxd_frame(b"1");
        frame.pop();
        assert!(parse_zbxd(&frame).is_err());
        assert!(parse_zbxd(b"HTTP/1.0 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn zabbix_config_has_the_documented_settings() {
        let text = zabbix_config(10050, Path::new("/tmp/x/zabbix.pid"));
        for line in [
            "Server=127.0.0.1",
            "ListenIP=127.0.0.1",
            "ListenPort=10050",
            "AllowRoot=1",
            "LogType=console",
            "PidFile=/tmp/x/zabbix.pid",
            "StartAgents=3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}");
        }
    }
}
