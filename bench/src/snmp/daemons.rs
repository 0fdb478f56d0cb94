//! The SNMP agents the benchmark polls: net-snmp `snmpd` processes started the way the
//! collector's test harness starts one (`steward_collector::snmp::testing::snmpd`: `-f -Lo -C -I
//! -smux`, a config and persistent directory of its own, no MIB files loaded), except that one
//! process listens on many loopback addresses, so a few processes give 1,000 distinct targets.
//! Only 127.0.0.0/8 is used; each process is stopped by PID when dropped.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use steward_collector::snmp::walk::{WalkOptions, walk};
use steward_collector::snmp::{Credentials, Oid, SessionOptions, SnmpClient, SnmpSession};
use tokio::runtime::Runtime;

use crate::peers::{self, Proc};
use crate::procfs::{self, Sample};

/// The read-only v2c community of every daemon.
pub const COMMUNITY: &str = "steward-bench-ro";
/// Loopback addresses one daemon may listen on: snmpd multiplexes its sockets with select(),
/// which cannot watch descriptors past 1023.
pub const MAX_ADDRESSES_PER_DAEMON: usize = 900;
/// Listening addresses per /24 (x.x.x.1 to x.x.x.250).
const ADDRESSES_PER_BLOCK: usize = 250;
/// How long a daemon may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// hrProcessorLoad, which net-snmp fills in only after its first minute of load samples.
const HR_PROCESSOR_LOAD: &str = "1.3.6.1.2.1.25.3.3.1.2";
/// sysUpTime.0, asked to see whether a daemon answers.
const SYS_UP_TIME_0: &str = "1.3.6.1.2.1.1.3.0";

/// The v2c credentials the daemons accept.
pub fn credentials() -> Credentials {
    Credentials::V2c {
        community: COMMUNITY.into(),
    }
}

/// The `j`-th loopback address a daemon listens on: 127.0.1.1 to 127.0.1.250, then 127.0.2.1,
/// and so on. (127.0.0.0/8 is all loopback on Linux; 127.0.0.x is left alone.)
pub fn listen_address(j: usize) -> Ipv4Addr {
    // At most MAX_ADDRESSES_PER_DAEMON addresses are asked for, so the block fits a byte.
    let block = u8::try_from(1 + j / ADDRESSES_PER_BLOCK).unwrap_or(u8::MAX);
    let host = u8::try_from(1 + j % ADDRESSES_PER_BLOCK).unwrap_or(u8::MAX);
    Ipv4Addr::new(127, 0, block, host)
}

/// How many addresses each of `daemons` listens on so that `targets` targets exist.
pub fn addresses_per_daemon(targets: usize, daemons: usize) -> usize {
    targets.div_ceil(daemons.max(1))
}

/// Where target `t` lives: targets go round robin over the daemons, so consecutive targets
/// (polled at about the same time) load different processes. Returns (daemon, address index).
pub fn place(t: usize, daemons: usize) -> (usize, usize) {
    let daemons = daemons.max(1);
    (t % daemons, t / daemons)
}

/// The `-c`-file of a daemon: the harness's, with the community open to all of 127.0.0.0/8.
fn render_config(community: &str) -> String {
    format!(
        "# Written by steward-bench snmp.\nmaster no\nrocommunity {community} 127.0.0.0/8\n\
         sysName steward-bench-agent\nsysLocation steward bench\nsysContact nobody@example.invalid\n"
    )
}

/// snmpd's listening address argument: `udp:A:PORT,udp:B:PORT,...`.
pub fn listen_spec(addresses: &[Ipv4Addr], port: u16) -> String {
    addresses
        .iter()
        .map(|a| format!("udp:{a}:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One running snmpd.
#[derive(Debug)]
pub struct Daemon {
    proc: Proc,
    port: u16,
    addresses: Vec<Ipv4Addr>,
}

impl Daemon {
    /// The address of its `j`-th listening address.
    pub fn target(&self, j: usize) -> Option<SocketAddr> {
        self.addresses
            .get(j)
            .map(|a| SocketAddr::from((*a, self.port)))
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn sample(&mut self) -> Result<Sample> {
        self.proc.ensure_running()?;
        procfs::sample_pid(self.pid())
    }
}

/// `$STEWARD_SNMPD` (as the harness reads it), else `/usr/sbin/snmpd`, installed if missing.
pub fn find_snmpd() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("STEWARD_SNMPD") {
        return Ok(PathBuf::from(path));
    }
    peers::ensure_installed(Path::new("/usr/sbin/snmpd"), "snmpd")
        .ok_or_else(|| anyhow!("snmpd is not installed (Debian: apt-get install snmpd)"))
}

/// Starts `count` daemons, each listening on `addresses` loopback addresses on a port of its
/// own, in `dir`, and waits until each answers on its first and last address.
pub fn start_all(
    binary: &Path,
    count: usize,
    addresses: usize,
    dir: &Path,
    runtime: &Runtime,
) -> Result<Vec<Daemon>> {
    let listen: Vec<Ipv4Addr> = (0..addresses).map(listen_address).collect();
    (0..count)
        .map(|k| {
            start(binary, &listen, &dir.join(format!("snmpd-{k}")), runtime)
                .with_context(|| format!("snmpd {k}"))
        })
        .collect()
}

fn start(binary: &Path, listen: &[Ipv4Addr], dir: &Path, runtime: &Runtime) -> Result<Daemon> {
    let persist = dir.join("persist");
    fs::create_dir_all(&persist).with_context(|| format!("cannot create {}", persist.display()))?;
    // Read with the config so state survives restarts; created empty so snmpd does not warn.
    fs::write(persist.join("snmpd.conf"), "")?;
    let config = dir.join("snmpd.conf");
    fs::write(&config, render_config(COMMUNITY))
        .with_context(|| format!("cannot write {}", config.display()))?;
    let env = [
        ("SNMP_PERSISTENT_DIR", persist.display().to_string()),
        ("SNMPCONFPATH", dir.display().to_string()),
        // Load no MIB files: the agent needs none, and Debian's trimmed set only warns.
        ("MIBS", String::new()),
    ];
    // A port found free may be taken before snmpd binds it: try a few.
    let mut last_error = None;
    for _ in 0..5 {
        let port = free_udp_port()?;
        let args = vec![
            "-f".to_string(),
            "-Lo".to_string(),
            "-C".to_string(),
            // No SMUX listener on TCP 199, which another snmpd may hold.
            "-I".to_string(),
            "-smux".to_string(),
            "-c".to_string(),
            format!(
                "{},{}",
                config.display(),
                persist.join("snmpd.conf").display()
            ),
            "-p".to_string(),
            dir.join("snmpd.pid").display().to_string(),
            listen_spec(listen, port),
        ];
        let mut proc = Proc::spawn_with_env("snmpd", binary, &args, &env, &dir.join("snmpd.log"))?;
        let daemon_addresses = listen.to_vec();
        let probe = |j: usize| SocketAddr::from((daemon_addresses[j], port));
        let last = listen.len().saturating_sub(1);
        match wait_until_answering(&mut proc, &[probe(0), probe(last)], runtime) {
            Ok(()) => {
                return Ok(Daemon {
                    proc,
                    port,
                    addresses: daemon_addresses,
                });
            }
            Err(error) => {
                proc.stop();
                last_error = Some(error);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("snmpd did not start")))
}

/// Asks sysUpTime.0 at each address until all answer, the process exits, or the time is up.
fn wait_until_answering(proc: &mut Proc, addrs: &[SocketAddr], runtime: &Runtime) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        proc.ensure_running()?;
        let answered = addrs
            .iter()
            .all(|addr| runtime.block_on(probe(*addr)).is_ok());
        if answered {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "snmpd did not answer on {addrs:?} within {START_TIMEOUT:?}; end of its log:\n{}",
                proc.log_tail()
            );
        }
        sleep(Duration::from_millis(100));
    }
}

async fn probe(addr: SocketAddr) -> Result<()> {
    let options = SessionOptions {
        timeout: Duration::from_millis(200),
        retries: 0,
    };
    let mut session = SnmpSession::new(addr, credentials(), options)?;
    let oid: Oid = SYS_UP_TIME_0.parse().map_err(|e: String| anyhow!(e))?;
    session.get(std::slice::from_ref(&oid)).await?;
    Ok(())
}

/// Waits (at most `timeout`) until `addr` serves hrProcessorLoad rows: net-snmp adds them after
/// its first minute, and until then a poll walks two varbinds fewer. Returns whether they came.
pub fn wait_for_processor_rows(addr: SocketAddr, timeout: Duration, runtime: &Runtime) -> bool {
    let deadline = Instant::now() + timeout;
    let Ok(root) = HR_PROCESSOR_LOAD.parse::<Oid>() else {
        return false;
    };
    while Instant::now() < deadline {
        let rows = runtime.block_on(async {
            let mut session =
                SnmpSession::new(addr, credentials(), SessionOptions::default()).ok()?;
            let walked = walk(&mut session, &root, &WalkOptions::default())
                .await
                .ok()?;
            Some(walked.varbinds.len())
        });
        if rows.is_some_and(|n| n > 0) {
            return true;
        }
        sleep(Duration::from_secs(2));
    }
    false
}

fn free_udp_port() -> Result<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0")?;
    Ok(socket.local_addr().context("no local address")?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_loopback_distinct_and_skip_127_0_0() {
        let addresses: Vec<Ipv4Addr> = (0..900).map(listen_address).collect();
        assert_eq!(addresses[0], Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(addresses[249], Ipv4Addr::new(127, 0, 1, 250));
        assert_eq!(addresses[250], Ipv4Addr::new(127, 0, 2, 1));
        let mut unique = addresses.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 900);
        assert!(
            addresses
                .iter()
                .all(|a| a.is_loopback() && a.octets()[2] != 0)
        );
    }

    #[test]
    fn targets_are_spread_round_robin_and_distinct() {
        let daemons = 4;
        let per = addresses_per_daemon(1000, daemons);
        assert_eq!(per, 250);
        assert_eq!(addresses_per_daemon(1001, 4), 251);
        let mut seen = std::collections::BTreeSet::new();
        for t in 0..1000 {
            let (k, j) = place(t, daemons);
            assert!(k < daemons && j < per, "target {t} placed at {k}/{j}");
            assert!(seen.insert((k, j)), "target {t} shares {k}/{j}");
        }
        assert_eq!(place(0, 4), (0, 0));
        assert_eq!(place(5, 4), (1, 1));
    }

    #[test]
    fn listen_spec_and_config() {
        let spec = listen_spec(&[listen_address(0), listen_address(1)], 16100);
        assert_eq!(spec, "udp:127.0.1.1:16100,udp:127.0.1.2:16100");
        let config = render_config("c");
        assert!(config.contains("rocommunity c 127.0.0.0/8\n"), "{config}");
        assert!(config.contains("master no\n"), "{config}");
    }
}
