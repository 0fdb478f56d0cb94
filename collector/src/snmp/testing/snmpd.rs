//! A real net-snmp `snmpd` on a free loopback UDP port, for tests that need an agent with real
//! encoding, real SNMPv3 cryptography and real engine boots.
//!
//! Each instance has its own directory (config, persistent state, log), reads no other
//! configuration (`-C`), never touches `/var/lib/snmp`, does not start an AgentX master, and is
//! killed by PID when dropped. The persistent directory survives [`Snmpd::restart`], so a
//! restart increments snmpEngineBoots exactly as a device reboot does.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::snmp::client::{AuthProto, Credentials, PrivProto, Privacy, Secret};

/// An SNMPv3 user the agent knows (`createUser` + `rouser`).
#[derive(Clone, Debug)]
pub struct SnmpdUser {
    pub name: String,
    pub auth: AuthProto,
    pub auth_pass: String,
    pub privacy: Option<(PrivProto, String)>,
}

impl SnmpdUser {
    /// The credentials a client uses to poll as this user.
    pub fn credentials(&self) -> Credentials {
        Credentials::V3 {
            user: self.name.clone(),
            auth: self.auth,
            auth_pass: Secret::new(self.auth_pass.clone()),
            privacy: self.privacy.as_ref().map(|(proto, pass)| Privacy {
                proto: *proto,
                pass: Secret::new(pass.clone()),
            }),
            context: String::new(),
        }
    }
}

/// What the agent serves and to whom.
#[derive(Clone, Debug)]
pub struct SnmpdConfig {
    /// The read-only v1/v2c community (also used to probe readiness).
    pub community: String,
    pub sys_name: String,
    pub users: Vec<SnmpdUser>,
    /// More `snmpd.conf` lines, verbatim.
    pub extra_lines: Vec<String>,
}

impl Default for SnmpdConfig {
    fn default() -> Self {
        SnmpdConfig {
            community: "steward-test-ro".into(),
            sys_name: "steward-test-agent".into(),
            users: Vec::new(),
            extra_lines: Vec::new(),
        }
    }
}

/// A running `snmpd`. See the module documentation.
#[derive(Debug)]
pub struct Snmpd {
    config: SnmpdConfig,
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// How long `snmpd` may take to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(15);

impl Snmpd {
    /// Starts `snmpd` (from `$STEWARD_SNMPD`, `/usr/sbin/snmpd` or `PATH`) and waits until it
    /// answers a v2c GET.
    pub fn start(config: SnmpdConfig) -> anyhow::Result<Snmpd> {
        let binary = find_snmpd()?;
        let dir = std::env::temp_dir().join(format!(
            "steward-snmpd-{}-{}",
            std::process::id(),
            hex::encode(crate::random_bytes::<6>()?)
        ));
        fs::create_dir_all(dir.join("persist"))
            .with_context(|| format!("creating {}", dir.display()))?;
        // Read with the config so state (engine ID and boots, users) survives restarts; created
        // empty so the first start does not warn that it is missing.
        fs::write(dir.join("persist/snmpd.conf"), "")?;
        fs::write(dir.join("snmpd.conf"), render_config(&config))?;
        let mut snmpd = Snmpd {
            config,
            binary,
            dir,
            port: 0,
            child: None,
        };
        // The port is found free and then given to snmpd, so another process may take it in
        // between: try a few.
        let mut last_error = None;
        for _ in 0..5 {
            snmpd.port = free_udp_port()?;
            match snmpd.spawn_and_wait() {
                Ok(()) => return Ok(snmpd),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("snmpd did not start")))
    }

    /// The agent's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn config(&self) -> &SnmpdConfig {
        &self.config
    }

    /// The process ID, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// v2c credentials with the agent's community.
    pub fn v2c(&self) -> Credentials {
        Credentials::V2c {
            community: Secret::new(self.config.community.clone()),
        }
    }

    /// v3 credentials of the configured user `name`.
    pub fn v3(&self, name: &str) -> Option<Credentials> {
        self.config
            .users
            .iter()
            .find(|u| u.name == name)
            .map(SnmpdUser::credentials)
    }

    /// What snmpd logged (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("snmpd.log")).unwrap_or_default()
    }

    /// Kills snmpd (SIGKILL, like a power cut) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts snmpd on the same port with the same persistent state, so its
    /// snmpEngineBoots goes up by one, as after a device reboot.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        // The port can be briefly unavailable right after the kill: try a few times.
        let mut last_error = None;
        for _ in 0..3 {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(error) => last_error = Some(error),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("snmpd did not restart")))
    }

    /// Stops snmpd, forgets its persistent state and starts it again: a new engine ID and
    /// snmpEngineBoots back to 1, as when a device is replaced or reset to factory settings.
    pub fn restart_with_fresh_state(&mut self) -> anyhow::Result<()> {
        self.stop();
        let persist = self.dir.join("persist");
        fs::remove_dir_all(&persist)?;
        fs::create_dir_all(&persist)?;
        fs::write(persist.join("snmpd.conf"), "")?;
        self.restart()
    }

    fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        let log = fs::File::create(self.dir.join("snmpd.log"))?;
        let config_files = format!(
            "{},{}",
            self.dir.join("snmpd.conf").display(),
            self.dir.join("persist/snmpd.conf").display()
        );
        let child = Command::new(&self.binary)
            // -I -smux: no SMUX listener on TCP 199, which another snmpd may hold.
            .args(["-f", "-Lo", "-C", "-I", "-smux", "-c", &config_files, "-p"])
            .arg(self.dir.join("snmpd.pid"))
            .arg(format!("udp:127.0.0.1:{}", self.port))
            .env("SNMP_PERSISTENT_DIR", self.dir.join("persist"))
            .env("SNMPCONFPATH", &self.dir)
            // Load no MIB files: the agent needs none, and Debian's trimmed set only warns.
            .env("MIBS", "")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        match self.wait_until_answering() {
            Ok(()) => Ok(()),
            Err(error) => {
                self.stop();
                Err(error.context(format!("snmpd log:\n{}", self.log())))
            }
        }
    }

    /// Polls with v2c GET sysUpTime.0 until snmpd answers or exits.
    fn wait_until_answering(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let sys_up_time = snmp2::Oid::from(&[1, 3, 6, 1, 2, 1, 1, 3, 0])
            .map_err(|e| anyhow::anyhow!("sysUpTime OID: {e:?}"))?;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "snmpd exited at start ({status}); opening udp:127.0.0.1:{} failed?",
                    self.port
                );
            }
            let mut probe = snmp2::SyncSession::new_v2c(
                self.addr(),
                self.config.community.as_bytes(),
                Some(Duration::from_millis(200)),
                1,
            )?;
            if probe.get(&sys_up_time).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "snmpd did not answer on {} within {START_TIMEOUT:?}",
            self.addr()
        )
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find_snmpd() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("STEWARD_SNMPD") {
        return Ok(PathBuf::from(path));
    }
    let sbin = Path::new("/usr/sbin/snmpd");
    if sbin.exists() {
        return Ok(sbin.to_path_buf());
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join("snmpd");
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("snmpd not found: install it (Debian: apt-get install snmpd) or set STEWARD_SNMPD")
}

fn free_udp_port() -> anyhow::Result<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(socket.local_addr()?.port())
}

/// net-snmp's names for the protocols.
fn auth_name(auth: AuthProto) -> &'static str {
    match auth {
        AuthProto::Md5 => "MD5",
        AuthProto::Sha1 => "SHA",
        AuthProto::Sha224 => "SHA-224",
        AuthProto::Sha256 => "SHA-256",
        AuthProto::Sha384 => "SHA-384",
        AuthProto::Sha512 => "SHA-512",
    }
}

fn priv_name(privacy: PrivProto) -> &'static str {
    match privacy {
        PrivProto::Des => "DES",
        PrivProto::Aes128 => "AES",
        PrivProto::Aes192 => "AES-192",
        PrivProto::Aes256 => "AES-256",
        PrivProto::Aes192c => "AES-192-C",
        PrivProto::Aes256c => "AES-256-C",
    }
}

fn render_config(config: &SnmpdConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Written by steward's test harness.");
    let _ = writeln!(out, "master no");
    let _ = writeln!(out, "rocommunity {} 127.0.0.1", config.community);
    let _ = writeln!(out, "sysName {}", config.sys_name);
    let _ = writeln!(out, "sysLocation steward test harness");
    let _ = writeln!(out, "sysContact nobody@example.invalid");
    for user in &config.users {
        let (level, privacy) = match &user.privacy {
            Some((proto, pass)) => ("authpriv", format!(" {} \"{pass}\"", priv_name(*proto))),
            None => ("auth", String::new()),
        };
        let _ = writeln!(
            out,
            "createUser {} {} \"{}\"{privacy}",
            user.name,
            auth_name(user.auth),
            user.auth_pass
        );
        let _ = writeln!(out, "rouser {} {level}", user.name);
    }
    for line in &config.extra_lines {
        let _ = writeln!(out, "{line}");
    }
    out
}
